//! The lab's ownership record: everything `up` creates is written here *before* it is created,
//! so that `down` removes exactly that, even after a crash, and nothing else.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::process::ProcId;
use super::uplink::Uplink;
use super::user::LabUser;

const STATE_FILE: &str = "state.yaml";

/// What one lab owns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct State {
    pub name: String,
    pub hosts: usize,
    pub net: [u8; 2],
    /// The inventory the user asked for (maybe outside the state directory).
    pub inventory: PathBuf,
    /// Set when `up` finished; a lab without it was interrupted.
    pub complete: bool,
    pub bridge: Option<String>,
    pub netns: Vec<String>,
    pub veths: Vec<String>,
    pub processes: Vec<HostProcess>,
    /// Files written outside the state directory.
    pub external_files: Vec<PathBuf>,
    /// `--control-net`: the control network's first two octets (SSH), `net` is then the
    /// experiment network only.
    #[serde(default)]
    pub control_net: Option<[u8; 2]>,
    /// The control network's bridge (its veths are in `veths`).
    #[serde(default)]
    pub control_bridge: Option<String>,
    /// `--user`: the account the inventory logs in with.
    #[serde(default)]
    pub user: Option<LabUser>,
    /// `--uplink`: the shaped bridge and its rate.
    #[serde(default)]
    pub uplink: Option<Uplink>,
}

/// A process started for one host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct HostProcess {
    pub host: String,
    pub kind: ProcessKind,
    pub proc: ProcId,
}

/// Which of a host's two processes this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ProcessKind {
    /// The `unshare` that created the host's pid namespace and waits for it.
    Launcher,
    /// The host's sshd: pid 1 of its pid namespace; when it dies, every process of the host dies.
    Sshd,
}

impl State {
    /// Reads the state of the lab in `dir`; `None` if there is no lab there.
    pub(super) fn load(dir: &Path) -> Result<Option<State>> {
        let path = dir.join(STATE_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let state = serde_saphyr::from_str(&text)
            .with_context(|| format!("{} is not a valid lab state file", path.display()))?;
        Ok(Some(state))
    }

    /// Writes the state atomically, so a crash leaves either the old or the new record.
    pub(super) fn save(&self, dir: &Path) -> Result<()> {
        let text = serde_saphyr::to_string(self).context("cannot serialize the lab state")?;
        write_atomic(&dir.join(STATE_FILE), &text, 0o600)
    }

    /// Applies `change` (which adds a resource about to be created) and saves it.
    pub(super) fn record(&mut self, dir: &Path, change: impl FnOnce(&mut State)) -> Result<()> {
        change(self);
        self.save(dir)
    }

    /// The sshd process of `host`, if it was started.
    pub(super) fn sshd_of(&self, host: &str) -> Option<ProcId> {
        self.processes
            .iter()
            .find(|p| p.host == host && p.kind == ProcessKind::Sshd)
            .map(|p| p.proc)
    }
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename.
pub(super) fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        tmp.write_all(contents.as_bytes())?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))?;
        tmp.persist(path)?;
        Ok(())
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = State {
            name: "t".into(),
            hosts: 2,
            net: [10, 7],
            inventory: dir.path().join("inventory.yaml"),
            complete: false,
            bridge: None,
            netns: vec!["orch-t-h1".into()],
            veths: vec![],
            processes: vec![],
            external_files: vec![],
            control_net: None,
            control_bridge: None,
            user: None,
            uplink: None,
        };
        state.save(dir.path()).unwrap();
        state
            .record(dir.path(), |s| {
                s.bridge = Some("olbr-t".into());
                s.processes.push(HostProcess {
                    host: "host1".into(),
                    kind: ProcessKind::Sshd,
                    proc: ProcId {
                        pid: 12,
                        start_time: 345,
                    },
                });
            })
            .unwrap();
        let back = State::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.net, [10, 7]);
        assert_eq!(back.bridge.as_deref(), Some("olbr-t"));
        assert_eq!(back.netns, ["orch-t-h1"]);
        assert_eq!(back.sshd_of("host1").unwrap().start_time, 345);
        assert!(back.sshd_of("host2").is_none());
    }

    #[test]
    fn no_state_file_means_no_lab() {
        let dir = tempfile::tempdir().unwrap();
        assert!(State::load(dir.path()).unwrap().is_none());
    }
}
