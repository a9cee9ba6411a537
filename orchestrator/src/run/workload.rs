//! The workload phase: YCSB load then run on the client host, through `orch-node ycsb` (or a
//! real YCSB installation named by the scenario), output copied to the controller, with a
//! progress line fed by YCSB's own status lines while a phase runs.
//!
//! Real YCSB (`ycsb_home`) is started with `java` directly, not through `bin/ycsb` (a Python
//! script; stock Debian and Ubuntu have no `python`) or `bin/ycsb.sh` (which calls Maven in a
//! source checkout): the classpath covers both a release tarball and a built source checkout.
//! Its ZooKeeper binding needs the chroot znode before `load`; `orch-node chroot` creates it,
//! as the seed did by hand with `create /benchmark`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use orch_common::agent::Agent;

use super::hosts::{must, RunHost};
use super::zookeeper::{socket_ip, Ensemble};
use crate::inventory::Inventory;
use crate::output::OpsProgress;
use crate::remote::{quote, Cmd, Conn};
use crate::scenario::{builtin_workload, Connect, Workload, WorkloadPlan};

/// The znode under which YCSB's records live, as in the seed's experiment.
pub const CHROOT: &str = "/benchmark";

/// How long one YCSB phase may take when the workload sets no `maxexecutiontime`.
const DEFAULT_LIMIT: Duration = Duration::from_secs(6 * 3600);

/// How often the progress line reads the phase's latest status line.
const PROGRESS_EVERY: Duration = Duration::from_secs(3);

/// Real YCSB's entry point and ZooKeeper binding (package `site.ycsb` since 0.16; the binding
/// is newer than that).
const YCSB_MAIN: &str = "site.ycsb.Client";
const YCSB_ZK_DB: &str = "site.ycsb.db.zookeeper.ZKClient";

/// Runs load (if asked) and run; returns (phase, local output file) for each. `run_started`
/// is told when `ycsb run` has started.
pub async fn run(
    inventory: &Inventory,
    plan: &WorkloadPlan,
    ensemble: &Ensemble,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
    local: &Path,
    mut run_started: Option<tokio::sync::oneshot::Sender<()>>,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let (conn, rh) = &conns[&plan.client];
    if let Some(home) = &plan.ycsb_home {
        check_ycsb_home(conn, home).await?;
    }
    let text = match &plan.workload {
        Workload::Builtin(name) => builtin_workload(name).expect("validated").to_string(),
        Workload::File(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read workload file {}", path.display()))?,
    };
    let workload_path = format!("{}/workload", rh.dir(label));
    conn.upload(text.as_bytes(), text.len() as u64, &workload_path, 0o644)
        .await?;
    let connect = connect_string(inventory, plan, ensemble);
    let limit = plan
        .properties
        .get("maxexecutiontime")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(DEFAULT_LIMIT, |s| Duration::from_secs(s + 120));

    let phases: Vec<&str> = if plan.load {
        vec!["load", "run"]
    } else {
        vec!["run"]
    };
    let mut outputs = Vec::new();
    for phase in phases {
        if phase == "load" && plan.ycsb_home.is_some() {
            let chroot = Cmd::new(&rh.agent(Agent::Chroot {
                connect: connect.clone(),
            }))
            .timeout(Some(Duration::from_secs(60)));
            must(conn, &chroot, &format!("create the chroot {connect}")).await?;
        }
        let export = format!("{}/ycsb-{phase}.txt", rh.dir(label));
        let argv = ycsb_argv(rh, plan, phase, &workload_path, &connect, &export);
        let name = format!("ycsb-{phase}");
        must(
            conn,
            &rh.start(label, &name, &BTreeMap::new(), &argv),
            "start YCSB",
        )
        .await?;
        if phase == "run" {
            // The faults are timed from here; a dropped receiver just means no faults.
            if let Some(tx) = run_started.take() {
                let _ = tx.send(());
            }
        }
        let log = format!("{}/{name}.log", rh.proc_dir(label));
        let total = operations(&text, &plan.properties, phase);
        let progress = OpsProgress::new(&format!("ycsb {phase}"), total);
        let wait_cmd = rh.wait(label, &name, limit);
        let wait = must(conn, &wait_cmd, "wait for YCSB");
        tokio::pin!(wait);
        let waited = loop {
            tokio::select! {
                r = &mut wait => break r,
                _ = tokio::time::sleep(PROGRESS_EVERY) => {
                    if let Some(s) = latest_status(conn, &log).await {
                        progress.update(s.done, s.ops_per_sec);
                    }
                }
            }
        };
        progress.finish();
        waited?;
        // YCSB writes its export file only once the phase completed; its absence is the failure.
        let dest = local.join(format!("ycsb-{phase}.txt"));
        let file = tokio::fs::File::create(&dest).await?;
        if let Err(e) = conn.download(&export, file).await {
            bail!(
                "{}: YCSB {phase} ended without results ({e}); see {}/proc/{name}.log",
                plan.client,
                rh.dir(label)
            );
        }
        // The status lines (-s: ops/s every 10 s) feed the throughput-over-time plot.
        let status = local.join(format!("ycsb-{phase}.status.txt"));
        conn.download(&log, tokio::fs::File::create(&status).await?)
            .await?;
        let failed = std::fs::read_to_string(&dest)
            .ok()
            .and_then(|t| orch_analysis::ycsb::parse(&t).ok())
            .map(|r| (r.failed(), r.attempted()))
            .filter(|(failed, _)| *failed > 0)
            .map(|(failed, all)| format!("; {failed} of {all} operations FAILED"))
            .unwrap_or_default();
        eprintln!("   ycsb {phase}: done ({}){failed}", dest.display());
        outputs.push((phase.to_string(), dest));
    }
    Ok(outputs)
}

/// `ip:port,...` of the servers the client talks to, with the chroot.
fn connect_string(inventory: &Inventory, plan: &WorkloadPlan, ensemble: &Ensemble) -> String {
    let port = inventory.zookeeper.client_port;
    let addr = |name: &str| {
        let ip = inventory.host(name).expect("validated").experiment_ip;
        format!("{}:{port}", socket_ip(&ip))
    };
    let servers: Vec<String> = match &plan.connect {
        Connect::Leader => vec![addr(&ensemble.leader)],
        Connect::Host(h) => vec![addr(h)],
        Connect::All => ensemble.modes.iter().map(|(n, _)| addr(n)).collect(),
    };
    format!("{}{CHROOT}", servers.join(","))
}

/// Where real YCSB keeps its jars: a release tarball (`lib/`, `zookeeper-binding/lib/`) or a
/// source checkout built with `mvn -pl site.ycsb:zookeeper-binding -am package`
/// (`zookeeper/target/`, its `dependency/`, `core/target/`). Java skips missing entries.
fn ycsb_classpath(home: &str) -> String {
    let home = home.trim_end_matches('/');
    [
        "zookeeper-binding/conf",
        "conf",
        "lib/*",
        "zookeeper-binding/lib/*",
        "zookeeper/conf",
        "zookeeper/target/*",
        "zookeeper/target/dependency/*",
        "core/target/*",
    ]
    .map(|p| format!("{home}/{p}"))
    .join(":")
}

/// Checks on the client host that `home` holds a usable YCSB with its ZooKeeper binding and
/// that `java` runs, before anything starts; the error names the host and every missing part.
async fn check_ycsb_home(conn: &Conn, home: &str) -> anyhow::Result<()> {
    let out = conn.run(&Cmd::script(&check_script(home))).await?;
    let missing: Vec<&str> = out.stdout.lines().filter(|l| !l.is_empty()).collect();
    if !out.status.success() || !missing.is_empty() {
        bail!(
            "{}: the YCSB installation `ycsb_home: {home}` is not usable:\n  {}",
            conn.host(),
            if missing.is_empty() {
                out.stderr.trim().to_string()
            } else {
                missing.join("\n  ")
            }
        );
    }
    Ok(())
}

/// One line per missing part on stdout, nothing when all is there.
fn check_script(home: &str) -> String {
    let h = quote::path(home.trim_end_matches('/'));
    format!(
        r#"h={h}
some() {{ for f in "$@"; do [ -f "$f" ] && return 0; done; return 1; }}
[ -d "$h" ] || {{ echo "no directory $h"; exit 0; }}
command -v java >/dev/null 2>&1 && java -version >/dev/null 2>&1 || echo "no working java on PATH (set \`java: install\` in the inventory)"
some "$h"/lib/core-*.jar "$h"/zookeeper/target/dependency/core-*.jar "$h"/core/target/core-*.jar || echo "no YCSB core jar (core-*.jar) under $h/lib, $h/zookeeper/target/dependency or $h/core/target"
some "$h"/zookeeper-binding/lib/zookeeper-binding-*.jar "$h"/zookeeper/target/zookeeper-binding-*.jar || echo "no ZooKeeper binding (zookeeper-binding-*.jar) under $h/zookeeper-binding/lib or $h/zookeeper/target: unpack ycsb-zookeeper-binding-VERSION.tar.gz there, or build it with mvn -pl site.ycsb:zookeeper-binding -am clean package"
some "$h"/zookeeper-binding/lib/zookeeper-[0-9]*.jar "$h"/lib/zookeeper-[0-9]*.jar "$h"/zookeeper/target/dependency/zookeeper-[0-9]*.jar || echo "no ZooKeeper client jar (zookeeper-3.*.jar) next to the binding"
"#
    )
}

/// The YCSB command line: `orch-node ycsb`, or real YCSB's `Client` under `java`, with the
/// same properties.
fn ycsb_argv(
    rh: &RunHost,
    plan: &WorkloadPlan,
    phase: &str,
    workload: &str,
    connect: &str,
    export: &str,
) -> Vec<String> {
    let mut argv = match &plan.ycsb_home {
        Some(home) => vec![
            "java".to_string(),
            "-cp".to_string(),
            ycsb_classpath(home),
            YCSB_MAIN.to_string(),
            "-db".to_string(),
            YCSB_ZK_DB.to_string(),
            if phase == "load" { "-load" } else { "-t" }.to_string(),
        ],
        None => rh.agent(Agent::Ycsb {
            args: vec![phase.to_string()],
        }),
    };
    argv.extend(["-s".to_string(), "-P".to_string(), workload.to_string()]);
    argv.extend(["-threads".to_string(), plan.threads.to_string()]);
    argv.extend([
        "-p".to_string(),
        format!("zookeeper.connectString={connect}"),
    ]);
    argv.extend(["-p".to_string(), format!("exportfile={export}")]);
    for (k, v) in &plan.properties {
        argv.extend(["-p".to_string(), format!("{k}={v}")]);
    }
    argv
}

/// How many operations a phase does, for the progress bar: `operationcount` (run) or
/// `insertcount`, else `recordcount` (load), from the `-p` properties over the workload file.
fn operations(workload: &str, properties: &BTreeMap<String, String>, phase: &str) -> Option<u64> {
    let keys: &[&str] = if phase == "load" {
        &["insertcount", "recordcount"]
    } else {
        &["operationcount"]
    };
    let from_file = |key: &str| {
        workload.lines().rev().find_map(|l| {
            let l = l.trim();
            let (k, v) = l.split_once(['=', ':'])?;
            (!l.starts_with(['#', '!']) && k.trim() == key).then(|| v.trim().to_string())
        })
    };
    keys.iter()
        .find_map(|k| properties.get(*k).cloned().or_else(|| from_file(k)))
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
}

/// What YCSB's latest `-s` line says.
#[derive(Debug, PartialEq)]
struct StatusLine {
    done: u64,
    ops_per_sec: Option<f64>,
}

/// `2017-10-06 09:49:35:996 429 sec: 9866978 operations; 19046.59 current ops/sec; ...`.
fn parse_status(line: &str) -> Option<StatusLine> {
    let (_, rest) = line.split_once(" sec: ")?;
    let (done, rest) = rest.split_once(" operations;")?;
    let ops_per_sec = rest
        .split_once(" current ops/sec")
        .and_then(|(n, _)| n.trim().parse().ok());
    Some(StatusLine {
        done: done.trim().parse().ok()?,
        ops_per_sec,
    })
}

/// The latest status line of a running phase, `None` before the first one.
async fn latest_status(conn: &Conn, log: &str) -> Option<StatusLine> {
    let script = format!("grep ' sec: ' {} | tail -n 1", quote::path(log));
    let out = conn.run(&Cmd::script(&script)).await.ok()?;
    parse_status(out.stdout.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Connect;

    fn host() -> RunHost {
        let inv = Inventory::parse(
            "hosts:\n  - name: h1\n    address: 10.0.0.1\n    experiment_ip: 10.0.1.2\n",
            Path::new("i.yaml"),
        )
        .unwrap();
        RunHost::new(&inv.hosts[0], "/home/me", "r")
    }

    fn plan(ycsb_home: Option<&str>) -> WorkloadPlan {
        WorkloadPlan {
            client: "h1".into(),
            connect: Connect::Leader,
            workload: Workload::Builtin("workloadb".into()),
            threads: 2,
            properties: BTreeMap::from([("recordcount".to_string(), "100".to_string())]),
            load: true,
            ycsb_home: ycsb_home.map(String::from),
            max_error_pct: 0.0,
        }
    }

    /// Real YCSB cannot be built here (its Maven dependencies are out of reach), so this checks
    /// the command line orch gives it against YCSB's `Client` options: `-db`, `-load` / `-t`,
    /// `-P`, `-p`, `-threads`, `-s`, the binding's `zookeeper.connectString`.
    #[test]
    fn real_ycsb_runs_under_java_with_the_binding_class() {
        let argv = ycsb_argv(
            &host(),
            &plan(Some("/opt/ycsb/")),
            "load",
            "/w",
            "10.0.1.2:2181/benchmark",
            "/out.txt",
        );
        assert_eq!(argv[0], "java");
        assert_eq!(argv[1], "-cp");
        let cp: Vec<&str> = argv[2].split(':').collect();
        assert!(cp.contains(&"/opt/ycsb/lib/*"), "{cp:?}");
        assert!(cp.contains(&"/opt/ycsb/zookeeper-binding/lib/*"), "{cp:?}");
        assert!(
            cp.contains(&"/opt/ycsb/zookeeper/target/dependency/*"),
            "{cp:?}"
        );
        assert_eq!(
            argv[3..].join(" "),
            "site.ycsb.Client -db site.ycsb.db.zookeeper.ZKClient -load -s -P /w -threads 2 \
             -p zookeeper.connectString=10.0.1.2:2181/benchmark -p exportfile=/out.txt \
             -p recordcount=100"
        );
        let run = ycsb_argv(&host(), &plan(Some("/opt/ycsb")), "run", "/w", "c", "/o");
        assert_eq!(run[6], "-t");
        let ours = ycsb_argv(&host(), &plan(None), "run", "/w", "c", "/o");
        assert_eq!(ours[..3], ["/home/me/.orch/bin/orch-node", "ycsb", "run"]);
    }

    #[test]
    fn the_installation_check_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap();
        let run = |script: &str| {
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .env("PATH", "/nonexistent")
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        let empty = run(&check_script(home));
        assert!(empty.contains("no working java on PATH"), "{empty}");
        assert!(empty.contains("no YCSB core jar"), "{empty}");
        assert!(empty.contains("no ZooKeeper binding"), "{empty}");
        // A release tarball's layout satisfies every jar check.
        for f in [
            "lib/core-0.17.0.jar",
            "zookeeper-binding/lib/zookeeper-binding-0.17.0.jar",
            "zookeeper-binding/lib/zookeeper-3.4.6.jar",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        let release = run(&check_script(home));
        assert_eq!(release.lines().count(), 1, "{release}");
        assert!(release.contains("java"), "{release}");
        let gone = run(&check_script(&format!("{home}/nope")));
        assert!(gone.starts_with("no directory"), "{gone}");
    }

    #[test]
    fn operation_counts_for_the_progress_bar() {
        let file = "# comment\nrecordcount=1000\noperationcount = 1000\n";
        let none = BTreeMap::new();
        assert_eq!(operations(file, &none, "run"), Some(1000));
        assert_eq!(operations(file, &none, "load"), Some(1000));
        let p = BTreeMap::from([("operationcount".to_string(), "50".to_string())]);
        assert_eq!(operations(file, &p, "run"), Some(50));
        assert_eq!(operations("#operationcount=5\n", &none, "run"), None);
    }

    #[test]
    fn status_lines_of_real_ycsb_and_ours() {
        // Real YCSB 0.12.0 (analysis/tests/fixtures/ycsb-0.12.0-load.txt).
        let real = "2017-10-06 09:49:35:996 429 sec: 9866978 operations; 19046.59 current ops/sec; est completion in 6 seconds [INSERT: Count=190523, Max=172543]";
        assert_eq!(
            parse_status(real),
            Some(StatusLine {
                done: 9866978,
                ops_per_sec: Some(19046.59)
            })
        );
        let first = "2017-10-06 09:42:26:050 0 sec: 0 operations; est completion in 0 seconds";
        assert_eq!(parse_status(first).unwrap().ops_per_sec, None);
        assert_eq!(parse_status("Loading workload..."), None);
    }
}
