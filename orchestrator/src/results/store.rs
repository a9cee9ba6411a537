//! The results store on the controller: `results/<scenario>/<run-id>/` per run (Jepsen-style),
//! with a `latest` link per scenario. A run directory describes itself: the scenario it ran,
//! the artifacts it used, its summaries and, once fetched, its logs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// A run's directory on the controller.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub scenario: String,
    pub run_id: String,
    pub path: PathBuf,
}

impl RunDir {
    /// The scenario text recorded at the start of the run, if any.
    pub fn scenario_text(&self) -> Option<String> {
        std::fs::read_to_string(self.path.join("scenario.yaml")).ok()
    }

    /// Artifact name -> content hash recorded for the run, if any.
    pub fn artifacts(&self) -> std::collections::BTreeMap<String, String> {
        std::fs::read(self.path.join("artifacts.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// Finds the directory of run `run_id` under `root` (any scenario).
pub fn find_run(root: &Path, run_id: &str) -> Option<RunDir> {
    scenarios(root).into_iter().find_map(|(scenario, dir)| {
        let path = dir.join(run_id);
        path.is_dir().then(|| RunDir {
            scenario,
            run_id: run_id.to_string(),
            path,
        })
    })
}

/// The most recent run under `root`: the newest `latest` link of any scenario.
pub fn latest_run(root: &Path) -> anyhow::Result<RunDir> {
    let mut best: Option<(std::time::SystemTime, RunDir)> = None;
    for (scenario, dir) in scenarios(root) {
        let link = dir.join("latest");
        let Ok(target) = std::fs::read_link(&link) else {
            continue;
        };
        let path = dir.join(&target);
        let Ok(modified) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
            continue;
        };
        let run_id = target.to_string_lossy().into_owned();
        if best.as_ref().is_none_or(|(t, _)| modified > *t) {
            best = Some((
                modified,
                RunDir {
                    scenario: scenario.clone(),
                    run_id,
                    path,
                },
            ));
        }
    }
    match best {
        Some((_, run)) => Ok(run),
        None => bail!(
            "no run found under {}; pass --run ID (the run id `orch run` printed)",
            root.display()
        ),
    }
}

/// Creates `root/<scenario>/<run_id>/` and points `latest` at it.
pub fn create_run(root: &Path, scenario: &str, run_id: &str) -> anyhow::Result<RunDir> {
    let dir = root.join(scenario);
    let path = dir.join(run_id);
    std::fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    let tmp = dir.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(run_id, &tmp)
        .and_then(|()| std::fs::rename(&tmp, dir.join("latest")))
        .with_context(|| format!("cannot update {}/latest", dir.display()))?;
    Ok(RunDir {
        scenario: scenario.to_string(),
        run_id: run_id.to_string(),
        path,
    })
}

fn scenarios(root: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_and_find() {
        let root = tempfile::tempdir().unwrap();
        assert!(latest_run(root.path()).is_err());
        create_run(root.path(), "zk", "r1").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        create_run(root.path(), "other", "r2").unwrap();
        assert_eq!(latest_run(root.path()).unwrap().run_id, "r2");
        let found = find_run(root.path(), "r1").unwrap();
        assert_eq!(found.scenario, "zk");
        assert!(find_run(root.path(), "r3").is_none());
        create_run(root.path(), "zk", "r3").unwrap();
        let latest = std::fs::read_link(root.path().join("zk/latest")).unwrap();
        assert_eq!(latest, Path::new("r3"));
    }
}
