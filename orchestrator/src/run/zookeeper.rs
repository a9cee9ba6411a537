//! The ZooKeeper phase: a fresh ensemble per run with the designated leader made leader
//! deterministically, then verified with `srvr` on every server.
//!
//! How the leader is chosen: ZooKeeper's fast leader election prefers, among equally
//! up-to-date servers, the one with the highest server id. Every run starts from empty data
//! directories (all servers equally up to date), the designated leader gets the highest id of
//! the run, and it is started first and answers `ruok` before any other server starts, so it
//! takes part in the first round of votes that can form a quorum. The result is then checked:
//! if any server other than the designated one reports `Mode: leader`, the run fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use orch_common::agent::Agent;

use super::hosts::{must, RunHost};
use crate::inventory::Inventory;
use crate::remote::{Cmd, Conn};
use crate::scenario::ZookeeperPlan;
use crate::setup::render;

/// How long one four-letter word may take (orch-node's own default).
pub(super) const FOURLW_TIMEOUT_MS: u64 = 2000;

/// The mode each server reported, in server order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    pub modes: Vec<(String, String)>,
    pub leader: String,
    /// Server id given to each host for this run.
    pub ids: Vec<(String, u8)>,
}

/// Server ids for one run: the designated leader gets the highest, the others keep inventory
/// order below it.
pub fn assign_ids(servers: &[String], leader: Option<&str>) -> Vec<(String, u8)> {
    let mut order: Vec<&String> = servers
        .iter()
        .filter(|s| Some(s.as_str()) != leader)
        .collect();
    if let Some(l) = servers.iter().find(|s| Some(s.as_str()) == leader) {
        order.push(l);
    }
    order
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), (i + 1) as u8))
        .collect()
}

/// The `Mode:` line of a `srvr` answer.
pub fn parse_mode(srvr: &str) -> Option<String> {
    srvr.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(|m| m.trim().to_string())
}

/// The command that runs one server in the foreground (orch-node proc detaches it, its output
/// going to the run's `proc/zookeeper.log`). The distribution's `conf/` comes first on the
/// classpath, as ZooKeeper's own zkEnv.sh puts it, so the server logs with the distribution's
/// logging configuration (`log4j.properties` up to 3.7 and in Debian's build, `logback.xml`
/// from Apache's 3.8): INFO and up to the console. Without it log4j finds no configuration and
/// the log holds nothing but its `No appenders` warnings.
pub(super) fn server_argv(install_dir: &str, zk_dir: &str) -> Vec<String> {
    vec![
        "java".into(),
        format!("-Dzookeeper.log.dir={zk_dir}"),
        "-Dzookeeper.root.logger=INFO,CONSOLE".into(),
        "-Xmx512m".into(),
        "-cp".into(),
        format!("{install_dir}/conf:{install_dir}/lib/*:{install_dir}/*"),
        "org.apache.zookeeper.server.quorum.QuorumPeerMain".into(),
        format!("{zk_dir}/zoo.cfg"),
    ]
}

/// Starts the ensemble of `plan` for run `label` and verifies its leader.
pub async fn start(
    inventory: &Inventory,
    plan: &ZookeeperPlan,
    label: &str,
    conns: &BTreeMap<String, (Conn, RunHost)>,
) -> anyhow::Result<Ensemble> {
    let ids = assign_ids(&plan.servers, plan.leader.as_deref());
    let renderer = render::Renderer::load(inventory)?;
    let client_port = inventory.zookeeper.client_port;
    ports_free(inventory, &plan.servers, conns).await?;

    // Configuration of every server first, so a template problem stops the run before any
    // server starts.
    let mut files = Vec::new();
    for (name, _) in &ids {
        let (_, rh) = &conns[name];
        let zk_dir = format!("{}/zk", rh.dir(label));
        let ctx = render::run_context(
            inventory,
            &rh.host,
            &rh.orch_dir,
            &ids,
            &format!("{zk_dir}/data"),
        );
        let zoo = renderer.render(&render::TEMPLATES[0], &ctx)?;
        let myid = renderer.render(&render::TEMPLATES[1], &ctx)?;
        files.push((name.clone(), zk_dir, zoo, myid));
    }
    futures::future::try_join_all(files.iter().map(|(name, zk_dir, zoo, myid)| async move {
        let (conn, _) = &conns[name];
        conn.upload(
            zoo.as_bytes(),
            zoo.len() as u64,
            &format!("{zk_dir}/zoo.cfg"),
            0o644,
        )
        .await?;
        conn.upload(
            myid.as_bytes(),
            myid.len() as u64,
            &format!("{zk_dir}/data/myid"),
            0o644,
        )
        .await
    }))
    .await?;

    let install = |name: &str| format!("{}/zookeeper/current", conns[name].1.orch_dir);
    let launch = |name: String| {
        let zk_dir = files
            .iter()
            .find(|f| f.0 == name)
            .expect("rendered")
            .1
            .clone();
        let install = install(&name);
        async move {
            let (conn, rh) = &conns[&name];
            let argv = server_argv(&install, &zk_dir);
            must(
                conn,
                &rh.start(label, "zookeeper", &BTreeMap::new(), &argv),
                "start ZooKeeper",
            )
            .await
        }
    };
    let ask = |name: String, word: &'static str| async move {
        let (conn, rh) = &conns[&name];
        let server = format!("{}:{client_port}", socket_ip(&rh.host.experiment_ip));
        let cmd = Cmd::new(&rh.agent(Agent::Fourlw {
            server,
            word: word.into(),
            timeout_ms: FOURLW_TIMEOUT_MS,
        }));
        conn.run(&cmd).await.map(|o| o.stdout)
    };

    let deadline = Instant::now() + plan.quorum_timeout;
    if let Some(leader) = &plan.leader {
        launch(leader.clone()).await?;
        loop {
            if ask(leader.clone(), "ruok").await?.contains("imok") {
                break;
            }
            if Instant::now() > deadline {
                bail!("{leader}: the designated leader's ZooKeeper did not answer `ruok` within {:?}; see its log under {}/proc", plan.quorum_timeout, conns[leader].1.dir(label));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let others: Vec<String> = ids
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| Some(n) != plan.leader.as_ref())
        .collect();
    futures::future::try_join_all(others.iter().cloned().map(launch)).await?;

    let modes = loop {
        let answers =
            futures::future::join_all(ids.iter().map(|(n, _)| ask(n.clone(), "srvr"))).await;
        let modes: Vec<(String, Option<String>)> = ids
            .iter()
            .zip(answers)
            .map(|((n, _), a)| (n.clone(), a.ok().and_then(|t| parse_mode(&t))))
            .collect();
        let serving = modes
            .iter()
            .all(|(_, m)| matches!(m.as_deref(), Some("leader" | "follower" | "standalone")));
        if serving {
            break modes
                .into_iter()
                .map(|(n, m)| (n, m.expect("checked")))
                .collect::<Vec<_>>();
        }
        if Instant::now() > deadline {
            let state: Vec<String> = modes
                .iter()
                .map(|(n, m)| format!("{n}: {}", m.as_deref().unwrap_or("not serving")))
                .collect();
            bail!(
                "no serving ZooKeeper quorum within {:?} ({})",
                plan.quorum_timeout,
                state.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let leader = modes
        .iter()
        .find(|(_, m)| m == "leader" || m == "standalone")
        .map(|(n, _)| n.clone())
        .context("every server is serving but none says it is the leader")?;
    if let Some(want) = &plan.leader {
        if &leader != want {
            bail!("ZooKeeper elected {leader}, not the designated leader {want} (srvr on every server: {modes:?})");
        }
    }
    Ok(Ensemble { modes, leader, ids })
}

/// Refuses to start the ensemble when anything already listens on a ZooKeeper port of a
/// server host (a ZooKeeper left from elsewhere would answer `srvr` for the run's servers, or
/// ours would fail to bind), naming host, port and process.
async fn ports_free(
    inventory: &Inventory,
    servers: &[String],
    conns: &BTreeMap<String, (Conn, RunHost)>,
) -> anyhow::Result<()> {
    let z = &inventory.zookeeper;
    let script = listeners_script(&[z.client_port, z.quorum_port, z.election_port]);
    let answers = futures::future::join_all(servers.iter().map(|name| {
        let script = script.clone();
        async move {
            let (conn, _) = &conns[name];
            (name, conn.run(&Cmd::script(&script)).await)
        }
    }))
    .await;
    let mut taken = Vec::new();
    for (name, answer) in answers {
        let out = answer?;
        if !out.status.success() {
            bail!(
                "{name}: cannot check which ports are in use: {}",
                out.stderr.trim()
            );
        }
        taken.extend(out.stdout.lines().filter_map(|l| parse_listener(name, l)));
    }
    if !taken.is_empty() {
        bail!(
            "cannot start ZooKeeper, its ports are in use (stop these first):\n  {}",
            taken.join("\n  ")
        );
    }
    Ok(())
}

/// Prints `PORT <ss line>` for every TCP socket listening on one of `ports`.
fn listeners_script(ports: &[u16]) -> String {
    let filter: Vec<String> = ports.iter().map(|p| format!("sport = :{p}")).collect();
    format!(
        "command -v ss >/dev/null 2>&1 || {{ echo 'ss (iproute2) is missing' >&2; exit 1; }}\n\
         ss -Hltnp '( {} )'\n",
        filter.join(" or ")
    )
}

/// `LISTEN 0 50 *:2181 *:* users:(("java",pid=4242,fd=52))` -> `host: port 2181 (java, pid
/// 4242)`; the process is unknown when `ss` may not see it (not root).
fn parse_listener(host: &str, line: &str) -> Option<String> {
    let local = line.split_whitespace().nth(3)?;
    let port = local.rsplit(':').next()?;
    let process = line
        .split_once("users:((\"")
        .and_then(|(_, rest)| {
            let (name, rest) = rest.split_once('"')?;
            let pid = rest.split_once("pid=")?.1.split([',', ')']).next()?;
            Some(format!("{name}, pid {pid}"))
        })
        .unwrap_or_else(|| "process not visible to this user".to_string());
    Some(format!("{host}: port {port} on {local} ({process})"))
}

/// An IP as it goes before `:port`.
pub fn socket_ip(ip: &std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_designated_leader_gets_the_highest_id() {
        let servers: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let ids = assign_ids(&servers, Some("b"));
        assert_eq!(ids.iter().find(|(n, _)| n == "b").unwrap().1, 5);
        assert_eq!(ids[0], ("a".to_string(), 1));
        assert_eq!(ids[1], ("c".to_string(), 2));
        let plain = assign_ids(&servers, None);
        assert_eq!(plain.last().unwrap(), &("e".to_string(), 5));
    }

    #[test]
    fn listeners_name_host_port_and_process() {
        // Lines as `ss -Hltnp` (iproute2 6.1) prints them.
        let java = "LISTEN 0      50                 *:2181             *:*    users:((\"java\",pid=4242,fd=52))";
        assert_eq!(
            parse_listener("node1", java).as_deref(),
            Some("node1: port 2181 on *:2181 (java, pid 4242)")
        );
        let hidden = "LISTEN 0      128    10.0.1.2:4888 0.0.0.0:*";
        assert_eq!(
            parse_listener("node2", hidden).as_deref(),
            Some("node2: port 4888 on 10.0.1.2:4888 (process not visible to this user)")
        );
        assert_eq!(parse_listener("node2", ""), None);
    }

    #[test]
    fn the_listener_script_finds_a_listening_socket_here() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let out = std::process::Command::new("sh")
            .args(["-c", &listeners_script(&[port, 1])])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let found: Vec<String> = stdout
            .lines()
            .filter_map(|l| parse_listener("me", l))
            .collect();
        assert_eq!(found.len(), 1, "{stdout}");
        assert!(
            found[0].starts_with(&format!("me: port {port} on 127.0.0.1:{port} (")),
            "{found:?}"
        );
        drop(listener);
    }

    #[test]
    fn srvr_mode() {
        let answer = "Zookeeper version: 3.8.0-5a02a05eddb59aee6ac762f7ea82e92a68eb9c0f, built on 2022-02-25 08:49 UTC\nLatency min/avg/max: 0/0.0/0\nReceived: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x100000000\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(answer).as_deref(), Some("follower"));
        assert_eq!(
            parse_mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }
}
