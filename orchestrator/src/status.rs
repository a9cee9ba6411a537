//! `orch status`: what is alive on the hosts. Each ZooKeeper server's mode, as
//! `zkServer.sh status` prints it, and every process a run started that is still running.

use orch_common::agent::proc::StatusRow;

use crate::inventory::{Host, Inventory, Role};
use crate::output::{table, Progress};
use crate::remote::{self, quote, Cmd};
use crate::run::zookeeper::{parse_mode, socket_ip};

/// One row of the status table.
struct Row {
    host: String,
    zookeeper: String,
    processes: Vec<String>,
}

/// Prints ZooKeeper modes and live run processes on `hosts`; returns false if a host could
/// not be asked.
pub async fn status(inventory: &Inventory, hosts: &[&Host], parallel: usize) -> bool {
    let port = inventory.zookeeper.client_port;
    let progress = Progress::new("status", hosts.len());
    let results = remote::each(hosts, parallel, &progress, |conn| async move {
        let host = hosts.iter().find(|h| h.name == conn.host()).expect("selected");
        let node = format!("{}/bin/orch-node", host.orch_dir.trim_end_matches('/'));
        let runs = format!("{}/runs", host.orch_dir.trim_end_matches('/'));
        // Every proc directory of every run, then the live records in each.
        let script = format!(
            r#"node={node}
[ -x "$node" ] || {{ echo "no-node"; exit 0; }}
for d in {runs}/*/*/proc; do
  [ -d "$d" ] || continue
  "$node" proc status --dir "$d" --json | tr -d '\n'; echo " $d"
done
{zk}"#,
            node = quote::path(&node),
            runs = quote::path(&runs),
            zk = if host.has_role(Role::Zookeeper) {
                format!(
                    "\"$node\" fourlw --server {} srvr 2>&1 | grep '^Mode:' || echo 'Mode: not running'",
                    quote::quote(&format!("{}:{port}", socket_ip(&host.experiment_ip)))
                )
            } else {
                String::new()
            },
        );
        conn.run(&Cmd::script(&script)).await
    })
    .await;
    progress.finish();

    let mut rows = Vec::new();
    let mut all = true;
    for r in results {
        match r.result {
            Ok(out) => rows.push(parse(&r.host, &out.stdout)),
            Err(e) => {
                all = false;
                eprintln!("{e}");
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.host.clone(),
                r.zookeeper.clone(),
                if r.processes.is_empty() {
                    "-".into()
                } else {
                    r.processes.join(", ")
                },
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &["HOST", "ZOOKEEPER", "RUNNING (run/label/name pid)"],
            &cells
        )
    );
    all
}

/// Reads the probe's output: `Mode:` lines and one JSON array per proc directory.
fn parse(host: &str, text: &str) -> Row {
    let mut row = Row {
        host: host.to_string(),
        zookeeper: "-".into(),
        processes: Vec::new(),
    };
    for line in text.lines() {
        if line == "no-node" {
            row.zookeeper = "orch-node not installed (orch setup)".into();
        } else if let Some(mode) = parse_mode(line) {
            row.zookeeper = mode;
        } else if let Some((json, dir)) = line.rsplit_once(' ') {
            let Ok(records) = serde_json::from_str::<Vec<StatusRow>>(json) else {
                continue;
            };
            let run = dir
                .trim_end_matches("/proc")
                .rsplitn(3, '/')
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("/");
            for r in records.iter().filter(|r| r.alive) {
                row.processes.push(format!("{run}/{} {}", r.name, r.pid));
            }
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, pid: i32, alive: bool) -> StatusRow {
        StatusRow {
            name: name.into(),
            pid,
            pgid: pid,
            alive,
            processes: usize::from(alive),
            uptime_s: alive.then_some(12.5),
            argv: vec!["java".into()],
            started_unix_ns: 1,
            log: format!("/h/{name}.log").into(),
        }
    }

    #[test]
    fn parses_modes_and_live_records() {
        let rows = [row("zookeeper", 41, true), row("traffic", 42, false)];
        let text = format!(
            "{} /h/.orch/runs/20261125-1-zk/r01-rep1/proc\nMode: leader\n",
            serde_json::to_string(&rows).unwrap()
        );
        let row = parse("h1", &text);
        assert_eq!(row.zookeeper, "leader");
        assert_eq!(row.processes, ["20261125-1-zk/r01-rep1/zookeeper 41"]);
    }
}
