//! Relay push: the controller sends each missing artifact to one seed host, which lends it to
//! the others over the hosts' own network, so the bytes leaving the controller stay the same
//! however many hosts there are (docs/setup.md, "Relay").
//!
//! The seed is the host that lacks the fewest bytes (a host that already has everything costs
//! the controller nothing). It runs `orch-node relay-serve`; every other host fetches with
//! bash's `/dev/tcp`, checks the SHA-256 (openssl, else sha256sum) before the file gets its
//! final name, and runs its setup script in the same round trip. A host that cannot reach the
//! seed, lacks bash or a hash tool, or gets bytes with the wrong hash is pushed to directly
//! afterwards, and the summary says why.

mod script;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use openssh::Stdio;
use orch_common::agent::Agent;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::inspect::Observed;
use super::plan::Action;
use super::push::{self, Payload};
use crate::artifacts::Artifact;
use crate::inventory::{Arch, Host};
use crate::output::Progress;
use crate::remote::quote::{path, quote};
use script::{fetch_script, parse_report, report_problem};

use crate::remote::{Cmd, Conn};

/// From how many hosts needing a push `--relay auto` relays. Relaying costs two round trips
/// more (start the seed's server, then fetch) and makes the other hosts wait for the seed's
/// copy; from four hosts on it cuts the controller's bytes at least fourfold, which pays on
/// any uplink that is not much faster than the hosts' disks, and the measured cold setups in
/// docs/bench-scale.md are not slower with it on the lab's LAN either.
pub const MIN_HOSTS: usize = 4;

/// How long the seed's server may live at most (the controller normally stops it much earlier).
const SERVE_LIMIT: Duration = Duration::from_secs(1800);

/// `orch setup --relay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Relay when at least [`MIN_HOSTS`] hosts need an upload.
    Auto,
    On,
    Off,
}

impl Mode {
    pub fn wanted(self, hosts_needing_pushes: usize) -> bool {
        match self {
            Mode::Auto => hosts_needing_pushes >= MIN_HOSTS,
            Mode::On => hosts_needing_pushes >= 2,
            Mode::Off => false,
        }
    }
}

/// A host setup can reach, with what it has.
pub struct Candidate<'a> {
    pub host: &'a Host,
    pub arch: Arch,
    pub observed: &'a Observed,
}

/// Who seeds, and what it lacks: its own orch-node first (its server runs it), then the rest.
pub struct Choice<'c, 'a> {
    pub seed: &'c Candidate<'a>,
    first: Option<Artifact>,
    rest: Vec<Artifact>,
}

/// Picks the seed among `candidates` for the pushes of `plans`, if any host can serve; `node`
/// is each architecture's orch-node.
pub fn choose<'c, 'a>(
    candidates: &'c [Candidate<'a>],
    plans: &HashMap<String, Vec<Action>>,
    node: &HashMap<Arch, Artifact>,
) -> Option<Choice<'c, 'a>> {
    let mut all: BTreeMap<String, Artifact> = BTreeMap::new();
    for c in candidates {
        for a in pushes(plans, &c.host.name) {
            all.insert(a.remote_name(), a);
        }
    }
    let (seed, mut rest) = choose_seed(candidates, &all, node)?;
    let own = &node[&seed.arch];
    let first = rest.iter().position(|a| a == own).map(|i| rest.remove(i));
    Some(Choice { seed, first, rest })
}

/// What a host is to push, by its plan.
pub fn pushes(plans: &HashMap<String, Vec<Action>>, host: &str) -> Vec<Artifact> {
    plans.get(host).map_or(Vec::new(), |actions| {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Push(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    })
}

/// Artifacts now on a host (remote name, the line for its change list), with the bytes that
/// cost: sent by the controller for the seed, fetched from the seed for the others.
#[derive(Default)]
pub struct Delivered {
    pub artifacts: Vec<(String, String)>,
    pub bytes: u64,
}

/// What a host's fetch did.
#[derive(Default)]
pub struct Fetched {
    pub delivered: Delivered,
    /// Why artifacts are to be pushed directly after all.
    pub fallbacks: Vec<String>,
    /// How the setup script went, if every artifact arrived and it ran.
    pub installed: Option<Result<(), String>>,
}

/// A relay under way: the seed's server runs, and the other hosts may fetch.
pub struct Relay<'c> {
    pub seed: String,
    server: Server<'c>,
    endpoints: Vec<(String, u16)>,
    token: String,
    /// What the seed received before its server started.
    pub first: Delivered,
}

impl<'c> Relay<'c> {
    /// Pushes the seed its own orch-node if it lacks it and starts its server; `conn` is the
    /// seed's connection. An error says why there is no relay.
    pub async fn start(
        conn: &'c Conn,
        choice: &Choice<'_, '_>,
        node: &HashMap<Arch, Artifact>,
        contents: &HashMap<&str, Payload>,
        bar: &Progress,
    ) -> Result<Relay<'c>, String> {
        let seed = choice.seed;
        let mut first = Delivered::default();
        if let Some(a) = &choice.first {
            let payload = &contents[a.sha256.as_str()];
            first.bytes = push::push(conn, &seed.host.orch_dir, a, payload, false, bar)
                .await
                .map_err(|e| format!("relay: seeding failed: {e}; pushing directly"))?;
            first
                .artifacts
                .push((a.remote_name(), push_line(a, payload)));
        }
        let token = token();
        let server = Server::start(conn, seed, &node[&seed.arch], &token)
            .await
            .map_err(|e| format!("relay: {}: {e}; pushing directly", seed.host.name))?;
        let endpoints = endpoints(seed.host, server.port);
        Ok(Relay {
            seed: seed.host.name.clone(),
            server,
            endpoints,
            token,
            first,
        })
    }

    /// Pushes the seed the rest of what it lacks, each artifact where the server follows it as
    /// it arrives; after a failure, tells the server that the rest will not come. Returns what
    /// arrived and, on a failure, why the rest did not.
    pub async fn seed_rest(
        &self,
        choice: &Choice<'_, '_>,
        contents: &HashMap<&str, Payload>,
        bar: &Progress,
    ) -> (Delivered, Option<String>) {
        let seed = choice.seed.host;
        let conn = self.server.conn;
        let mut done = Delivered::default();
        for (i, a) in choice.rest.iter().enumerate() {
            let payload = &contents[a.sha256.as_str()];
            match push::push(conn, &seed.orch_dir, a, payload, true, bar).await {
                Ok(n) => {
                    done.bytes += n;
                    done.artifacts
                        .push((a.remote_name(), push_line(a, payload)));
                }
                Err(e) => {
                    for lost in &choice.rest[i..] {
                        self.server.give_up(&lost.remote_name()).await;
                    }
                    return (done, Some(format!("relay: seeding failed: {e}")));
                }
            }
        }
        (done, None)
    }

    /// Has the host of `conn` fetch `list` from the seed and, if all of it arrived, run
    /// `then` (its setup script) in the same round trip. Returns what arrived, a line per
    /// artifact that did not (it is to be pushed directly), and how `then` went if it ran.
    pub async fn fetch(
        &self,
        conn: &Conn,
        orch_dir: &str,
        list: &[Artifact],
        then: &str,
        contents: &HashMap<&str, Payload>,
        bar: &Progress,
    ) -> Fetched {
        let (host, seed) = (conn.host(), &self.seed);
        let script = fetch_script(orch_dir, &self.endpoints, &self.token, list, then);
        let mut got = Fetched::default();
        let out = match conn.run(&Cmd::script(&script)).await {
            Ok(o) => o,
            Err(e) => {
                got.fallbacks
                    .push(format!("{host}: relay failed ({e}); pushing directly"));
                return got;
            }
        };
        let report = parse_report(&out.stdout);
        for a in list {
            match report.get(&a.remote_name()) {
                Some(Ok(())) => {
                    bar.sent(contents[a.sha256.as_str()].wire_len());
                    got.delivered.bytes += a.len;
                    let line = format!(
                        "relay   {} ({}) from {seed}",
                        a.name,
                        super::human_bytes(a.len)
                    );
                    got.delivered.artifacts.push((a.remote_name(), line));
                }
                Some(Err(why)) => got.fallbacks.push(format!(
                    "{host}: relay of {} from {seed} failed ({why}); pushing directly",
                    a.name
                )),
                None => got.fallbacks.push(format!(
                    "{host}: relay of {} from {seed} did not happen ({}); pushing directly",
                    a.name,
                    report_problem(&out.stdout, &out.stderr, out.status)
                )),
            }
        }
        got.installed = out.stdout.lines().find_map(|l| match l {
            "installed" => Some(Ok(())),
            l => l
                .strip_prefix("install-failed ")
                .map(|st| Err(format!("exit status {st}; stderr: {}", out.stderr.trim()))),
        });
        got
    }

    /// Stops the seed's server; its complaints are the error.
    pub async fn stop(self) -> Result<(), String> {
        let seed = self.seed.clone();
        self.server
            .stop()
            .await
            .map_err(|e| format!("relay: {seed}: {e}"))
    }
}

/// The `push` line of a change list, with what went on the wire.
pub fn push_line(a: &Artifact, payload: &Payload) -> String {
    let wire = match &payload.gzip {
        Some(z) => format!(", {} gzip", super::human_bytes(z.len() as u64)),
        None => String::new(),
    };
    format!(
        "push    {} ({}{wire}, {})",
        a.name,
        super::human_bytes(a.len),
        a.short_hash()
    )
}

/// The host lacking the fewest bytes of `all` plus its own orch-node, and what it lacks.
fn choose_seed<'c, 'a>(
    candidates: &'c [Candidate<'a>],
    all: &BTreeMap<String, Artifact>,
    node: &HashMap<Arch, Artifact>,
) -> Option<(&'c Candidate<'a>, Vec<Artifact>)> {
    candidates
        .iter()
        .filter_map(|c| {
            let own = node.get(&c.arch)?;
            let mut lacking: Vec<Artifact> = all
                .values()
                .filter(|a| !c.observed.artifacts.contains(&a.remote_name()))
                .cloned()
                .collect();
            if !c.observed.artifacts.contains(&own.remote_name())
                && !lacking.iter().any(|a| a == own)
            {
                // Its orch-node is not among the pushes: it was built but nobody needs it yet.
                return None;
            }
            lacking.sort_by_key(|a| a.remote_name());
            Some((c, lacking))
        })
        .min_by_key(|(_, lacking)| lacking.iter().map(|a| a.len).sum::<u64>())
}

/// Where the other hosts may reach the seed: its experiment address, then its SSH address.
fn endpoints(seed: &Host, port: u16) -> Vec<(String, u16)> {
    let mut list = vec![(seed.experiment_ip.to_string(), port)];
    if seed.ssh.destination != list[0].0 {
        list.push((seed.ssh.destination.clone(), port));
    }
    list
}

/// 32 hex digits from the kernel's random source.
fn token() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if read.is_err() {
        // Without /dev/urandom: the clock and pid, still unguessable enough for a LAN handshake.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        return crate::artifacts::sha256_bytes(seed.as_bytes())[..32].to_string();
    }
    hex::encode(bytes)
}

/// `orch-node relay-serve` running on the seed, as long as its stdin is open.
struct Server<'c> {
    conn: &'c Conn,
    child: openssh::Child<&'c openssh::Session>,
    /// Its stdin: `gone NAME` lines, and closed to stop it.
    stdin: tokio::sync::Mutex<Option<openssh::ChildStdin>>,
    port: u16,
}

impl<'c> Server<'c> {
    async fn start(
        conn: &'c Conn,
        seed: &Candidate<'_>,
        node: &Artifact,
        token: &str,
    ) -> Result<Server<'c>, String> {
        let serve = Agent::RelayServe {
            dir: ".".into(),
            listen: "0.0.0.0:0".into(),
        };
        let argv: Vec<String> = serve.argv().iter().map(|a| quote(a)).collect();
        let script = format!(
            "cd {}/artifacts && exec ./{} {}",
            path(&seed.host.orch_dir),
            quote(&node.remote_name()),
            argv.join(" ")
        );
        let cmd = Cmd::script(&script).timeout(Some(SERVE_LIMIT));
        let mut child = conn
            .session()
            .raw_command(cmd.render(false))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| format!("cannot start orch-node relay-serve: {e}"))?;
        let stdin = child.stdin().as_mut().expect("stdin is piped");
        stdin
            .write_all(format!("{token}\n").as_bytes())
            .await
            .map_err(|e| format!("cannot hand relay-serve its token: {e}"))?;
        stdin.flush().await.map_err(|e| e.to_string())?;
        let mut line = String::new();
        let stdout = child.stdout().as_mut().expect("stdout is piped");
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse::<u16>().ok());
        match (read, port) {
            (Ok(Ok(_)), Some(port)) => {
                let stdin = tokio::sync::Mutex::new(child.stdin().take());
                Ok(Server {
                    conn,
                    child,
                    stdin,
                    port,
                })
            }
            _ => {
                let mut err = String::new();
                if let Some(e) = child.stderr().as_mut() {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), e.read_to_string(&mut err))
                            .await;
                }
                Err(format!(
                    "orch-node relay-serve did not start (said {:?}; stderr: {})",
                    line.trim(),
                    err.trim()
                ))
            }
        }
    }

    /// Closes the server's stdin, so it exits, and waits for it; its complaints are the error.
    /// Tells the server that artifact `name` will not arrive, so requests for it end.
    async fn give_up(&self, name: &str) {
        if let Some(stdin) = self.stdin.lock().await.as_mut() {
            let _ = stdin.write_all(format!("gone {name}\n").as_bytes()).await;
            let _ = stdin.flush().await;
        }
    }

    async fn stop(mut self) -> Result<(), String> {
        drop(self.stdin.into_inner());
        let mut err = String::new();
        if let Some(e) = self.child.stderr().as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), e.read_to_string(&mut err)).await;
        }
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        match status {
            Ok(Ok(s)) if s.success() && err.trim().is_empty() => Ok(()),
            Ok(Ok(s)) if s.success() => Err(format!("relay-serve reported: {}", err.trim())),
            Ok(Ok(s)) => Err(format!("relay-serve ended with {s}: {}", err.trim())),
            Ok(Err(e)) => Err(format!("relay-serve: {e}")),
            Err(_) => Err("relay-serve did not stop within 5 s of its stdin closing".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_relays_from_min_hosts_on() {
        assert!(!Mode::Auto.wanted(MIN_HOSTS - 1));
        assert!(Mode::Auto.wanted(MIN_HOSTS));
        assert!(Mode::On.wanted(2));
        assert!(!Mode::On.wanted(1), "one host has nobody to relay to");
        assert!(!Mode::Off.wanted(64));
    }
}
