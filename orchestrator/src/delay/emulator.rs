//! Delays with `orch-node delay`, for hosts whose kernel has no netem: the rule file it reads
//! (the shared contract `orch_common::delay`), its start and stop on a host as an
//! `orch-node proc` record like every other process orch starts ([`apply`], [`remove`]), and
//! the check of what it installed (its `--show` read-back of the kernel's nftables table). Two
//! instances may run on a host, one per [`Layer`]: the scenario's delays and a network fault's
//! rules on top of them.

use std::path::PathBuf;
use std::time::Duration;

use orch_common::agent::proc::StatusRow;
use orch_common::agent::{Agent, Proc};
use orch_common::delay::{Rule, RuleFile, Shown, FAULT_QUEUE, FAULT_TABLE, QUEUE, TABLE};

use super::spec::Egress;
use super::{checked, failure, NODE_BIN_ENV};
use crate::remote::{Cmd, Conn, RemoteError};

/// An emulator started on a host: what finds its records again (`binary`, `orch_dir`,
/// `layer`), and its pid.
#[derive(Debug, Clone)]
pub struct Running {
    pub binary: String,
    pub orch_dir: String,
    pub pid: u32,
    pub layer: Layer,
}

impl Running {
    fn paths(&self) -> Paths {
        Paths::new(&self.orch_dir, self.layer)
    }
}

/// Which emulator instance: each has its own folder (`<orch_dir>/<name>/`), `orch-node proc`
/// record, nftables table and queues, so a fault's rules can come and go while the scenario's
/// delays stay in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The scenario's `delays:`, for the whole run.
    Delays,
    /// A network fault (partition, loss, delay spike), for its duration.
    Fault,
}

impl Layer {
    /// The folder and the `orch-node proc` record name.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Delays => "delay",
            Layer::Fault => "fault",
        }
    }

    fn table(self) -> (&'static str, u16) {
        match self {
            Layer::Delays => (TABLE, QUEUE),
            Layer::Fault => (FAULT_TABLE, FAULT_QUEUE),
        }
    }
}

/// Seconds between SIGTERM (the emulator deletes its table and releases held packets) and
/// SIGKILL (the kernel deletes the owned table anyway).
pub const GRACE_SECS: u64 = 3;
/// How long the emulator may take to install its table after it started. An emulator that
/// exits fails at once, so this only bounds a slow start (TCG, a loaded host).
pub const READY_WITHIN: Duration = Duration::from_secs(20);

/// Where an emulator's files live on a host: `<orch_dir>/<layer>/`, its `orch-node proc`
/// records and log in `<orch_dir>/<layer>/proc/`.
pub struct Paths {
    pub layer: Layer,
    pub dir: String,
    pub rules: String,
    pub proc_dir: String,
    pub log: String,
}

/// Gives the emulator's folder back to the user sudo ran for (`SUDO_UID`): `orch-node proc`
/// runs as root there and its records and log would otherwise be root's, in the user's orch
/// directory. Nothing to do without sudo.
pub fn hand_back_script(paths: &Paths) -> String {
    format!(
        r#"if [ -n "${{SUDO_UID:-}}" ]; then chown -R "$SUDO_UID:${{SUDO_GID:-$SUDO_UID}}" {}; fi"#,
        crate::remote::quote::quote(&paths.dir)
    )
}

impl Paths {
    pub fn new(orch_dir: &str, layer: Layer) -> Paths {
        let name = layer.name();
        let dir = format!("{}/{name}", orch_dir.trim_end_matches('/'));
        Paths {
            layer,
            dir: dir.clone(),
            rules: format!("{dir}/rules.json"),
            proc_dir: format!("{dir}/proc"),
            log: format!("{dir}/proc/{name}.log"),
        }
    }
}

/// The rule file for a host's egress rules, in their order (rule `i` queues to the layer's
/// first queue + `i`).
pub fn rule_file(rules: &[&Egress], layer: Layer) -> RuleFile {
    let (table, queue) = layer.table();
    RuleFile::new(
        table,
        queue,
        rules
            .iter()
            .map(|r| Rule {
                dst: r.dst,
                interface: r.interface.clone(),
                delay_ms: r.link.delay_ms,
                jitter_ms: r.link.jitter_ms,
                distribution: r.link.distribution,
                loss_pct: r.link.loss_pct,
            })
            .collect(),
    )
}

/// The rule file's text (JSON, which the emulator reads as YAML).
pub fn rule_text(file: &RuleFile) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(file).expect("a rule file serialises")
    )
}

fn node(binary: &str, agent: Agent) -> Vec<String> {
    [vec![binary.to_string()], agent.argv()].concat()
}

/// `orch-node proc start` of the emulator on the rule file.
pub fn start(binary: &str, paths: &Paths) -> Vec<String> {
    let delay = node(binary, show(paths, false));
    node(
        binary,
        Agent::Proc {
            command: Proc::Start {
                dir: PathBuf::from(&paths.proc_dir),
                name: paths.layer.name().into(),
                cwd: None,
                env: Vec::new(),
                argv: delay,
            },
        },
    )
}

/// `orch-node proc stop-all` of the emulator's records: this run's, or one an interrupted
/// run left.
pub fn stop(binary: &str, paths: &Paths) -> Vec<String> {
    node(
        binary,
        Agent::Proc {
            command: Proc::StopAll {
                dir: PathBuf::from(&paths.proc_dir),
                grace: GRACE_SECS,
            },
        },
    )
}

fn show(paths: &Paths, show: bool) -> Agent {
    Agent::Delay {
        rules: PathBuf::from(&paths.rules),
        show,
    }
}

/// The read-back command: the emulator's `--show` of its table.
pub fn show_command(binary: &str, paths: &Paths) -> Vec<String> {
    node(binary, show(paths, true))
}

/// `orch-node proc status --json` of the emulator's records.
pub fn status_command(binary: &str, paths: &Paths) -> Vec<String> {
    node(
        binary,
        Agent::Proc {
            command: Proc::Status {
                dir: PathBuf::from(&paths.proc_dir),
                json: true,
            },
        },
    )
}

/// Parses a `--show` read-back.
pub fn parse_show(text: &str) -> Result<Shown, String> {
    serde_json::from_str(text).map_err(|e| format!("unreadable `orch-node delay --show`: {e}"))
}

/// Compares the `--show` read-back with the host's rules; every difference, naming the peer.
pub fn verify(rules: &[&Egress], layer: Layer, shown: &Shown) -> Result<(), Vec<String>> {
    let wrong = shown.differences(&rule_file(rules, layer), |i| {
        format!("{} ({})", rules[i].to, rules[i].dst)
    });
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong)
    }
}

/// The last statistics line (`"event":"exit"`) of the emulator's log.
pub fn exit_stats(log: &str) -> Option<&str> {
    log.lines().rev().find(|l| l.contains("\"event\":\"exit\""))
}

/// Where orch-node is on a host whose orch directory is `root`.
fn node_binary(root: &str) -> String {
    match std::env::var(NODE_BIN_ENV) {
        Ok(b) if !b.is_empty() => b,
        _ => format!("{root}/bin/orch-node"),
    }
}

/// Starts the emulator of `layer` on the host with `rules` and waits until its table is
/// installed as they say; stopped again if it is not.
pub async fn apply(
    conn: &Conn,
    orch_dir: &str,
    rules: &[Egress],
    layer: Layer,
) -> Result<Running, RemoteError> {
    let root = orch_dir.trim_end_matches('/');
    let binary = node_binary(root);
    let paths = Paths::new(root, layer);
    let refs: Vec<&Egress> = rules.iter().collect();
    let file = rule_text(&rule_file(&refs, layer));
    conn.upload(file.as_bytes(), file.len() as u64, &paths.rules, 0o644)
        .await?;
    // An emulator an interrupted run left holds the queues: stop it first.
    let stop = Cmd::new(&stop(&binary, &paths)).privileged();
    checked(conn, &stop, "orch-node proc stop-all (emulator leftovers)").await?;
    let start = Cmd::new(&start(&binary, &paths)).privileged();
    let out = checked(conn, &start, "orch-node proc start (emulator)").await?;
    hand_back(conn, &paths).await?;
    let running = Running {
        binary,
        orch_dir: root.to_string(),
        pid: out.trim().parse().unwrap_or(0),
        layer,
    };
    if let Err(e) = wait_installed(conn, &running, &refs).await {
        let _ = remove(conn, &running).await;
        return Err(e);
    }
    Ok(running)
}

/// Waits until the emulator's `--show` read-back matches `rules`: the table appears once the
/// emulator has bound its queues and installed it, some milliseconds after `proc start`
/// returned on an idle host, seconds on a busy one or under TCG (where failing at the first
/// read-back failed every emulator of a run). Fails at once, with the log's tail, if the
/// emulator exits first, and with the read-back's differences after [`READY_WITHIN`].
async fn wait_installed(
    conn: &Conn,
    running: &Running,
    rules: &[&Egress],
) -> Result<(), RemoteError> {
    let (binary, paths) = (&running.binary, running.paths());
    let show = Cmd::new(&show_command(binary, &paths)).privileged();
    let status = Cmd::new(&status_command(binary, &paths)).privileged();
    let deadline = std::time::Instant::now() + READY_WITHIN;
    loop {
        // `--show` fails while the table is not there yet: that is "not yet", like a table
        // that differs, until the emulator exits or the deadline passes.
        let wrong = match checked(conn, &show, "orch-node delay --show").await {
            Ok(text) => {
                let shown =
                    parse_show(&text).map_err(|e| failure(conn, "orch-node delay --show", e))?;
                match verify(rules, paths.layer, &shown) {
                    Ok(()) => return Ok(()),
                    Err(wrong) => wrong,
                }
            }
            Err(not_yet) => vec![not_yet.to_string()],
        };
        let rows = checked(conn, &status, "orch-node proc status").await?;
        let rows: Vec<StatusRow> = serde_json::from_str(&rows)
            .map_err(|e| failure(conn, "orch-node proc status --json", e.to_string()))?;
        if !rows.iter().any(|r| r.name == paths.layer.name() && r.alive) {
            return Err(failure(
                conn,
                "orch-node delay",
                format!("the emulator exited: {}", log_tail(conn, &paths).await),
            ));
        }
        if std::time::Instant::now() >= deadline {
            return Err(failure(conn, "orch-node delay --show", wrong.join("; ")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// [`hand_back_script`]: the emulator's records and log belong to the host's user.
async fn hand_back(conn: &Conn, paths: &Paths) -> Result<(), RemoteError> {
    let chown = Cmd::script(&hand_back_script(paths)).privileged();
    checked(conn, &chown, "chown of the emulator's folder").await?;
    Ok(())
}

/// The last lines of the emulator's log, for an error message.
async fn log_tail(conn: &Conn, paths: &Paths) -> String {
    let tail = Cmd::new(&["tail", "-n", "20", &paths.log]).privileged();
    match conn.run(&tail).await {
        Ok(out) => out.stdout.trim().to_string(),
        Err(e) => format!("(log {} unreadable: {e})", paths.log),
    }
}

/// Stops the emulator and checks that its table is gone.
pub async fn remove(conn: &Conn, running: &Running) -> Result<(), RemoteError> {
    let (binary, paths) = (&running.binary, running.paths());
    let stop = Cmd::new(&stop(binary, &paths)).privileged();
    checked(conn, &stop, "orch-node proc stop-all (emulator)").await?;
    hand_back(conn, &paths).await?;
    let log = log_tail(conn, &paths).await;
    if let Some(stats) = exit_stats(&log) {
        tracing::info!(host = conn.host(), stats, "emulator stopped");
    }
    let show = Cmd::new(&show_command(binary, &paths)).privileged();
    let text = checked(conn, &show, "orch-node delay --show").await?;
    let shown = parse_show(&text).map_err(|e| failure(conn, "orch-node delay --show", e))?;
    if !shown.installed.is_empty() {
        return Err(failure(
            conn,
            "orch-node delay --show",
            format!(
                "table {} is still installed after the emulator stopped: {text}",
                shown.table
            ),
        ));
    }
    Ok(())
}

/// Stops the emulator of `layer` that an interrupted run left on the host (its `orch-node proc`
/// records under `<orch_dir>/<layer>/proc`) and checks that its table is gone: teardown's safety
/// net for a fault's, and what a run clears before it measures the base round trips. Nothing to
/// do where that layer never ran.
pub async fn clear(conn: &Conn, orch_dir: &str, layer: Layer) -> Result<(), RemoteError> {
    let root = orch_dir.trim_end_matches('/');
    let paths = Paths::new(root, layer);
    let ran = conn.run(&Cmd::new(&["test", "-e", &paths.rules])).await?;
    if !ran.status.success() {
        return Ok(());
    }
    let running = Running {
        binary: node_binary(root),
        orch_dir: root.to_string(),
        pid: 0,
        layer,
    };
    remove(conn, &running).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delay::spec::{Distribution, Link};

    fn egress(to: &str, dst: &str, iface: Option<&str>, delay: f64) -> Egress {
        Egress {
            to: to.into(),
            dst: dst.parse().unwrap(),
            interface: iface.map(String::from),
            link: Link {
                delay_ms: delay,
                jitter_ms: 0.0,
                distribution: Distribution::Uniform,
                loss_pct: 0.0,
            },
        }
    }

    #[test]
    fn rule_file_is_the_shared_contract() {
        let r = [egress("host2", "10.0.2.2", Some("eth0"), 5.0)];
        let r: Vec<&Egress> = r.iter().collect();
        let back = RuleFile::parse(&rule_text(&rule_file(&r, Layer::Delays))).unwrap();
        assert_eq!((back.table.as_str(), back.queue), (TABLE, QUEUE));
        let fault = RuleFile::parse(&rule_text(&rule_file(&r, Layer::Fault))).unwrap();
        assert_eq!(
            (fault.table.as_str(), fault.queue),
            (FAULT_TABLE, FAULT_QUEUE)
        );
        assert_eq!(back.rules[0].dst.to_string(), "10.0.2.2");
        assert_eq!(back.rules[0].interface.as_deref(), Some("eth0"));
        assert_eq!(back.rules[0].delay_ms, 5.0);
    }

    #[test]
    fn commands_go_through_proc() {
        let p = Paths::new("/h/my orch/", Layer::Delays);
        assert_eq!(p.rules, "/h/my orch/delay/rules.json");
        let s = start("/opt/orch-node", &p);
        let want = [
            "/opt/orch-node",
            "proc",
            "start",
            "--dir",
            "/h/my orch/delay/proc",
            "--name",
            "delay",
            "--",
            "/opt/orch-node",
            "delay",
            "--rules",
            "/h/my orch/delay/rules.json",
        ];
        assert_eq!(s, want);
        assert_eq!(
            stop("/opt/orch-node", &p)[1..4],
            ["proc", "stop-all", "--dir"]
        );
        assert_eq!(show_command("/opt/orch-node", &p).last().unwrap(), "--show");
        let f = Paths::new("/h/o", Layer::Fault);
        assert_eq!(
            (f.rules.as_str(), f.log.as_str()),
            ("/h/o/fault/rules.json", "/h/o/fault/proc/fault.log")
        );
        assert_eq!(
            start("/n", &f)[4..7],
            ["/h/o/fault/proc", "--name", "fault"]
        );
    }

    const SHOWN: &str = r#"{"installed":[{"family":"ip","owner":true,"rules":[
        {"bypass":true,"dst":"10.0.2.2","interface":null,"packets":5,"queue":4200},
        {"bypass":true,"dst":"10.0.3.2","interface":null,"packets":0,"queue":4201}],"table":"orch_delay"}],"table":"orch_delay"}"#;

    #[test]
    fn read_back_matches_and_names_differences() {
        let r = [
            egress("host2", "10.0.2.2", None, 5.0),
            egress("host3", "10.0.3.2", None, 20.0),
        ];
        let r: Vec<&Egress> = r.iter().collect();
        let shown = parse_show(SHOWN).unwrap();
        verify(&r, Layer::Delays, &shown).unwrap();
        assert!(
            verify(&r, Layer::Fault, &shown).is_err(),
            "another layer's table"
        );
        let wrong = verify(&r[1..], Layer::Delays, &shown).unwrap_err();
        assert!(
            wrong[0].contains("host3 (10.0.3.2): no rule queueing it to 4200"),
            "{wrong:?}"
        );
        assert!(wrong[1].contains("2 rules installed, 1 expected"));
        let none = parse_show(r#"{"installed":[],"table":"orch_delay"}"#).unwrap();
        assert!(verify(&r, Layer::Delays, &none).unwrap_err()[0].contains("no nftables table"));
        assert!(parse_show("garbage").is_err());
        let log = "{\"event\":\"ready\"}\n{\"event\":\"exit\",\"held\":0}\nstopped\n";
        assert_eq!(exit_stats(log), Some("{\"event\":\"exit\",\"held\":0}"));
    }
}
