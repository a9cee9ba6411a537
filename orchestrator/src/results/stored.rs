//! `orch report`: a stored results directory read back without any host: every finished run
//! (its `run.json` and the files beside it) rebuilt, then summaries, cells and plots written
//! again, exactly as `orch run` writes them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::cells::{self, Cell};
use super::record;
use crate::results::report::{self, RunResult};
use crate::results::store::RunDir;

/// A results directory read back.
pub struct Stored {
    pub dir: RunDir,
    pub results: Vec<RunResult>,
}

/// Reads the finished runs of the results directory `path` (`results/<scenario>/<run-id>`).
pub fn load(path: &Path) -> anyhow::Result<Stored> {
    // `results/<scenario>/latest` names the run it points to.
    let resolved = std::fs::canonicalize(path)
        .with_context(|| format!("no results directory {}", path.display()))?;
    let path = resolved.as_path();
    let scenario_file = path.join("scenario.yaml");
    let text = std::fs::read_to_string(&scenario_file).with_context(|| {
        format!(
            "{} is not a results directory of `orch run` (no scenario.yaml)",
            path.display()
        )
    })?;
    let scenario =
        scenario_name(&text).with_context(|| format!("{}: no `name:`", scenario_file.display()))?;
    let mut labels: Vec<(usize, PathBuf)> = std::fs::read_dir(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(record::DONE).is_file())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let index = name.strip_prefix('r')?.split('-').next()?.parse().ok()?;
            Some((index, p))
        })
        .collect();
    labels.sort();
    let mut results = Vec::new();
    for (_, dir) in &labels {
        results.extend(record::load(dir)?);
    }
    if results.is_empty() {
        bail!(
            "{}: no finished run (no */{} inside)",
            path.display(),
            record::DONE
        );
    }
    let run_id = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Stored {
        dir: RunDir {
            scenario,
            run_id,
            path: path.to_path_buf(),
        },
        results,
    })
}

/// Rewrites summary.json/csv, cells.json/csv and the plots of `stored`; returns the cells.
pub fn rewrite(stored: &Stored) -> anyhow::Result<Vec<Cell>> {
    let (reports, cells) = report::write(&stored.dir, &stored.dir.scenario, &stored.results)?;
    crate::run::write_plots(&stored.dir, &stored.results, &reports);
    Ok(cells)
}

/// The cells of several stored runs of one scenario together, as if they were one run.
pub fn combined(stored: &[Stored]) -> Vec<Cell> {
    let per_run: Vec<_> = stored
        .iter()
        .flat_map(|s| &s.results)
        .map(|r| {
            let run = r
                .outputs
                .iter()
                .find(|(phase, _)| phase == "run")
                .and_then(|(_, p)| std::fs::read_to_string(p).ok())
                .and_then(|t| orch_analysis::ycsb::parse(&t).ok());
            (r, cells::metrics(r, run.as_ref()))
        })
        .collect();
    cells::aggregate(&per_run)
}

/// The `name:` of a scenario file, without validating the rest (no inventory needed).
fn scenario_name(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("name:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        .filter(|v| !v.is_empty())
}
