//! `<label>/run.json`: one finished run of the matrix, written atomically after everything
//! else of the run is on the controller, so its presence means "done". Paths are stored
//! relative to the run's directory, so a results directory can be moved and re-analysed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use orch_analysis::elect;
use serde::{Deserialize, Serialize};

use crate::results::report::RunResult;

/// The done marker's file name inside a run's directory.
pub const DONE: &str = "run.json";

#[derive(Serialize, Deserialize)]
struct Record {
    label: String,
    matrix: Vec<(String, String)>,
    repetition: u32,
    leader: Option<String>,
    zk_modes: Vec<(String, String)>,
    threads: Option<u32>,
    /// (phase, file name in the run's directory).
    outputs: Vec<(String, String)>,
    /// Number of replica event logs (`replica-<id>.jsonl`); 0 without an election phase.
    replicas: usize,
    failure: Option<String>,
}

/// Writes `dir/run.json` for `result` (temp file + rename).
pub fn save(dir: &Path, result: &RunResult) -> anyhow::Result<()> {
    let record = Record {
        label: result.label.clone(),
        matrix: result.matrix.clone(),
        repetition: result.repetition,
        leader: result.leader.clone(),
        zk_modes: result.zk_modes.clone(),
        threads: result.threads,
        outputs: result
            .outputs
            .iter()
            .map(|(phase, path)| {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                (phase.clone(), name.unwrap_or_default())
            })
            .collect(),
        replicas: result.election.as_ref().map_or(0, |s| s.files),
        failure: result.failure.clone(),
    };
    let tmp = dir.join(format!(".{DONE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&record)?)?;
    std::fs::rename(&tmp, dir.join(DONE))
        .with_context(|| format!("cannot write {}", dir.join(DONE).display()))
}

/// Rebuilds the result of the finished run in `dir`, or `None` if it has no done marker;
/// the election summary is recomputed from the stored event logs, on the controller's clock
/// when the run's clocks.json is there.
pub fn load(dir: &Path) -> anyhow::Result<Option<RunResult>> {
    let path = dir.join(DONE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let r: Record = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a run record", path.display()))?;
    let mut faults = crate::results::faults::read(dir)?;
    let clocks = crate::clock::load(dir)?;
    if let Some(c) = &clocks {
        crate::clock::correct::faults(c, &mut faults);
    }
    let election = if r.replicas > 0 {
        let files: Vec<PathBuf> = (0..r.replicas)
            .map(|id| dir.join(format!("replica-{id}.jsonl")))
            .collect();
        let kills = crate::results::faults::kills(&faults);
        let offsets = crate::clock::correct::replicas(clocks.as_ref()).unwrap_or_default();
        let summary = elect::summarize_files_with(&files, &kills, &offsets)
            .map_err(|e| anyhow::anyhow!(e))?;
        // The kills' detection and failover as this analysis computes them.
        crate::results::faults::add_election(&mut faults, &summary, None);
        Some(summary)
    } else {
        None
    };
    Ok(Some(RunResult {
        label: r.label,
        matrix: r.matrix,
        repetition: r.repetition,
        leader: r.leader,
        zk_modes: r.zk_modes,
        threads: r.threads,
        outputs: r
            .outputs
            .into_iter()
            .map(|(phase, name)| (phase, dir.join(name)))
            .collect(),
        election,
        failure: r.failure,
        delays: read_json(&dir.join("delays.json"))?,
        faults,
        clocks,
    }))
}

/// The JSON file at `path`, or `None` if there is none.
fn read_json(path: &Path) -> anyhow::Result<Option<serde_json::Value>> {
    match std::fs::read(path) {
        Ok(b) => {
            Ok(Some(serde_json::from_slice(&b).with_context(|| {
                format!("{}: not JSON", path.display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
