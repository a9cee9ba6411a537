//! Network delays on the hosts: what a scenario's `delays:` section asks for ([`DelaySpec`]),
//! applied per host with the kernel's netem where `orch check` found it and with the
//! `orch-node delay` user-space emulator elsewhere, verified by reading the result back, and
//! always removed again. See docs/delay.md.

pub mod certify;
mod emulator;
pub mod measure;
mod model;
mod netem;
pub mod reorder;
mod spec;

pub use emulator::{clear, Layer};
pub use model::RoundTrip;
pub use spec::{
    truncated, DelaySpec, Delays, Distribution, Egress, InterfaceDelay, Link, Method, PairDelay,
    Tolerance,
};

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Result};

use crate::facts::Facts;
use crate::inventory::Host;
use crate::output::Progress;
use crate::remote::{self, Cmd, Conn, RemoteError};

/// Overrides where `orch-node` is on the hosts (default `<orch_dir>/bin/orch-node`, where
/// `orch setup` installs it); the lab tests point it at the binary they built, which the lab
/// hosts see through the shared filesystem.
pub const NODE_BIN_ENV: &str = "ORCH_NODE_BIN";

/// A host to put delays on, as the run holds it: its open connection (the run's own: no new
/// SSH session), its orch directory with `~` already expanded (privileged commands run with
/// root's `$HOME`), and its facts (probed once per scenario).
pub struct Target<'a> {
    pub host: &'a Host,
    pub conn: &'a Conn,
    pub orch_dir: &'a str,
    pub facts: &'a Facts,
}

/// Delays in force on the hosts, and what is needed to take them away again.
#[derive(Debug)]
pub struct AppliedDelays {
    hosts: Vec<Applied>,
    /// What they are, for progress lines and errors: `delays` or `fault`.
    what: &'static str,
}

#[derive(Debug, Clone)]
struct Applied {
    host: Host,
    rules: Vec<Egress>,
    made: Made,
}

/// How a host's delays were made: the one interface to both methods is [`Made::apply`] and
/// [`Made::remove`], each verified by reading back what the kernel holds.
#[derive(Debug, Clone)]
enum Made {
    /// HTB + netem on these interfaces; each had a kernel default root qdisc of this kind
    /// (`None`: orch's own leftover from an interrupted run was found instead).
    Netem {
        interfaces: Vec<(String, Option<String>)>,
    },
    /// `orch-node delay`, an `orch-node proc` record under `<orch_dir>/<layer>/proc`.
    Emulator(emulator::Running),
}

/// The method for one host's rules.
#[derive(Debug, Clone, Copy)]
enum How {
    Netem,
    Emulator(Layer),
}

impl Made {
    async fn apply(t: &Target<'_>, rules: &[Egress], how: How) -> Result<Made, RemoteError> {
        match how {
            How::Netem => apply_netem(t.conn, rules).await,
            How::Emulator(layer) => emulator::apply(t.conn, t.orch_dir, rules, layer)
                .await
                .map(Made::Emulator),
        }
    }

    async fn remove(&self, conn: &Conn) -> Result<(), RemoteError> {
        match self {
            Made::Netem { interfaces } => remove_netem(conn, interfaces).await,
            Made::Emulator(running) => emulator::remove(conn, running).await,
        }
    }
}

/// Applies `delays` to the hosts that have any, all at once, with the method [`uses_netem`]
/// picks per host. Every host is verified by reading back what the kernel holds. If any host
/// fails, the delays already in place on the others are removed again before the error (naming
/// every failed host) is returned.
pub async fn apply(targets: &[Target<'_>], delays: &Delays) -> Result<AppliedDelays> {
    let mut plan = Vec::new();
    for (name, rules) in &delays.hosts {
        let t = privileged(targets, name, "delays")?;
        let how = match uses_netem(delays.method, name, t.facts)? {
            true => How::Netem,
            false => How::Emulator(Layer::Delays),
        };
        plan.push((t, rules.as_slice(), how));
    }
    apply_all(targets, plan, "delays").await
}

/// Puts a network fault's egress rules on the hosts (`hosts`: each with its rules), always with
/// the emulator's [`Layer::Fault`], beside whatever delays the scenario has; verified like
/// delays, undone with [`remove`], and by [`clear`] after an interrupted run.
pub async fn apply_fault(
    targets: &[Target<'_>],
    hosts: &[(String, Vec<Egress>)],
) -> Result<AppliedDelays> {
    let mut plan = Vec::new();
    for (name, rules) in hosts {
        let t = privileged(targets, name, "network faults")?;
        plan.push((t, rules.as_slice(), How::Emulator(Layer::Fault)));
    }
    apply_all(targets, plan, "fault").await
}

/// The target called `name`, if it may change the network (root or passwordless sudo).
fn privileged<'t, 'a>(targets: &'t [Target<'a>], name: &str, what: &str) -> Result<&'t Target<'a>> {
    let Some(t) = targets.iter().find(|t| t.host.name == name) else {
        bail!("{name}: has {what} but is not among the hosts of this run");
    };
    if !t.facts.privileged() {
        bail!(
            "{name}: {what} need root or passwordless sudo (sudo: {})",
            t.facts.sudo
        );
    }
    Ok(t)
}

/// Applies every host's rules of `plan` at once; on any failure removes what the others got.
async fn apply_all(
    targets: &[Target<'_>],
    plan: Vec<(&Target<'_>, &[Egress], How)>,
    label: &'static str,
) -> Result<AppliedDelays> {
    let progress = Progress::new(label, plan.len());
    let results = futures::future::join_all(plan.iter().map(|(t, rules, how)| async {
        let made = Made::apply(t, rules, *how).await;
        progress.tick(&t.host.name);
        made.map(|made| Applied {
            host: t.host.clone(),
            rules: rules.to_vec(),
            made,
        })
    }))
    .await;
    progress.finish();
    let mut applied = AppliedDelays {
        hosts: Vec::new(),
        what: label,
    };
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(a) => applied.hosts.push(a),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if failed.is_empty() {
        return Ok(applied);
    }
    if let Err(e) = remove(applied, &targets.iter().map(|t| t.conn).collect::<Vec<_>>()).await {
        failed.push(format!("removing the delays of the other hosts: {e}"));
    }
    bail!("applying {label} failed:\n{}", failed.join("\n"))
}

/// Whether host `name` gets netem: `auto` uses it where `orch check` found it (`yes`, or
/// `module`: tc loads it), `emulator` never, and `netem` always, refusing a host without it.
pub fn uses_netem(method: Method, name: &str, facts: &Facts) -> Result<bool> {
    let has = facts.netem.usable();
    match method {
        Method::Auto => Ok(has),
        Method::Emulator => Ok(false),
        Method::Netem if has => Ok(true),
        Method::Netem => bail!(
            "{name}: `delays.method: netem`, but its kernel {} has no netem (`orch check` says netem: {}); use `method: auto` or `emulator`, or load sch_netem there",
            facts.kernel,
            facts.netem
        ),
    }
}

/// Removes every delay `applied` made, through `conns` (the run's connections), and checks
/// that it is gone: the emulator stopped and its table absent, or the interface's previous
/// default root qdisc back. Tries every host even if some fail; the error names each one that
/// did (a host without a connection among `conns` too).
pub async fn remove(applied: AppliedDelays, conns: &[&Conn]) -> Result<()> {
    let what = applied.what;
    let progress = Progress::new(&format!("remove {what}"), applied.hosts.len());
    let results = futures::future::join_all(applied.hosts.iter().map(|a| async {
        let done = match conns.iter().find(|c| c.host() == a.host.name) {
            Some(conn) => a.made.remove(conn).await.map_err(|e| e.to_string()),
            None => Err(format!(
                "{}: no connection to remove its {what}",
                a.host.name
            )),
        };
        progress.tick(&a.host.name);
        done
    }))
    .await;
    progress.finish();
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("removing {what} failed:\n{}", failed.join("\n"))
    }
}

impl AppliedDelays {
    /// The delays in use and the method per host, for `orch run`'s output and the run record.
    pub fn report(&self) -> String {
        let mut out = String::from("delays (one-way, on each host's egress):\n");
        for a in &self.hosts {
            let method = match &a.made {
                Made::Netem { interfaces } => {
                    let names: Vec<&str> = interfaces.iter().map(|(i, _)| i.as_str()).collect();
                    format!("tc netem on {}", names.join(", "))
                }
                Made::Emulator(running) => {
                    format!("orch-node delay emulator, pid {}", running.pid)
                }
            };
            let _ = writeln!(out, "  {}: {method}", a.host.name);
            for r in &a.rules {
                let via = r
                    .interface
                    .as_ref()
                    .map(|i| format!(" via {i}"))
                    .unwrap_or_default();
                let _ = writeln!(out, "    -> {} ({}){via}: {}", r.to, r.dst, r.link);
            }
        }
        out
    }
}

pub(super) fn failure(conn: &Conn, command: &str, reason: impl Into<String>) -> RemoteError {
    RemoteError::Command {
        host: conn.host().to_string(),
        command: command.to_string(),
        reason: reason.into(),
    }
}

/// Runs `cmd`; a non-zero exit is an error carrying its stderr.
pub(super) async fn checked(conn: &Conn, cmd: &Cmd, what: &str) -> Result<String, RemoteError> {
    let out = conn.run(cmd).await?;
    if !out.status.success() {
        return Err(failure(conn, what, out.stderr.trim()));
    }
    Ok(out.stdout)
}

/// Removes the scenario's delays an interrupted run left on the hosts of `delays` (an emulator,
/// or, where [`uses_netem`], orch's own root qdisc on an interface the rules leave through), so
/// that a round trip measured before [`apply`] is the testbed's own.
pub async fn clear_leftovers(targets: &[Target<'_>], delays: &Delays) -> Result<()> {
    let mut netem_hosts = Vec::new();
    for (name, rules) in &delays.hosts {
        let t = privileged(targets, name, "delays")?;
        netem_hosts.push((
            t,
            uses_netem(delays.method, name, t.facts)?.then_some(rules),
        ));
    }
    let each = netem_hosts.into_iter().map(|(t, netem_rules)| async move {
        emulator::clear(t.conn, t.orch_dir, Layer::Delays).await?;
        let Some(rules) = netem_rules else {
            return Ok(());
        };
        for iface in interfaces_of(t.conn, rules).await?.keys() {
            let show = Cmd::new(&["tc", "-j", "qdisc", "show", "dev", iface]).privileged();
            let text = checked(t.conn, &show, &format!("tc -j qdisc show dev {iface}")).await?;
            let root = netem::root_qdisc(&text).map_err(|e| failure(t.conn, "tc qdisc show", e))?;
            if root.is_ours() {
                let del = Cmd::new(&netem::restore(iface)).privileged();
                checked(t.conn, &del, &format!("tc qdisc del dev {iface} root")).await?;
            }
        }
        Ok::<(), RemoteError>(())
    });
    futures::future::try_join_all(each).await?;
    Ok(())
}

async fn apply_netem(conn: &Conn, rules: &[Egress]) -> Result<Made, RemoteError> {
    let by_iface = interfaces_of(conn, rules).await?;
    let mut done: Vec<(String, Option<String>)> = Vec::new();
    for (iface, rules) in &by_iface {
        match install_netem(conn, iface, rules).await {
            Ok(previous) => done.push((iface.clone(), previous)),
            Err(e) => {
                let _ = remove_netem(conn, &done).await;
                return Err(e);
            }
        }
    }
    Ok(Made::Netem { interfaces: done })
}

/// Groups the rules by the interface their packets leave through: the one the spec names, or
/// the one the host's routing table picks for the destination (`ip route get`).
async fn interfaces_of<'a>(
    conn: &Conn,
    rules: &'a [Egress],
) -> Result<BTreeMap<String, Vec<&'a Egress>>, RemoteError> {
    let mut out: BTreeMap<String, Vec<&Egress>> = BTreeMap::new();
    for r in rules {
        let iface = match &r.interface {
            Some(i) => i.clone(),
            None => {
                let cmd = Cmd::new(&["ip", "-o", "route", "get", &r.dst.to_string()]);
                let text = checked(conn, &cmd, &format!("ip route get {}", r.dst)).await?;
                let dev = text
                    .split_whitespace()
                    .skip_while(|w| *w != "dev")
                    .nth(1)
                    .map(String::from);
                dev.ok_or_else(|| {
                    failure(
                        conn,
                        "ip route get",
                        format!("no route to {} ({})", r.to, r.dst),
                    )
                })?
            }
        };
        out.entry(iface).or_default().push(r);
    }
    Ok(out)
}

/// Installs and verifies the rules of one interface; returns the kind of the default root it
/// replaced.
async fn install_netem(
    conn: &Conn,
    iface: &str,
    rules: &[&Egress],
) -> Result<Option<String>, RemoteError> {
    let show = |what: &str| Cmd::new(&["tc", "-j", what, "show", "dev", iface]);
    let text = checked(
        conn,
        &show("qdisc"),
        &format!("tc -j qdisc show dev {iface}"),
    )
    .await?;
    let root = netem::root_qdisc(&text).map_err(|e| failure(conn, "tc qdisc show", e))?;
    if !root.is_default() && !root.is_ours() {
        return Err(failure(
            conn,
            "tc",
            format!(
                "{iface} already has root qdisc {} {} that orch did not make; remove it first (`tc qdisc del dev {iface} root`)",
                root.kind, root.handle
            ),
        ));
    }
    let previous = root.is_default().then(|| root.kind.clone());
    let script: Vec<String> = netem::install(iface, rules)
        .iter()
        .map(|argv| remote::quote::join(argv))
        .collect();
    let script = format!("set -e\n{}", script.join("\n"));
    let installed = checked(conn, &Cmd::script(&script).privileged(), "tc netem setup").await;
    let verified = match installed {
        Ok(_) => {
            let (q, c, f) = read_back(conn, iface).await?;
            netem::verify(rules, &q, &c, &f).map_err(|wrong| {
                failure(
                    conn,
                    "tc read-back",
                    format!("{iface}: {}", wrong.join("; ")),
                )
            })
        }
        Err(e) => Err(e),
    };
    if let Err(e) = verified {
        let _ = conn
            .run(&Cmd::new(&netem::restore(iface)).privileged())
            .await;
        return Err(e);
    }
    Ok(previous)
}

/// What tc holds on `iface`: `tc -j qdisc show`, `tc class show` (text: see `netem`) and
/// `tc -j filter show`.
async fn read_back(conn: &Conn, iface: &str) -> Result<(String, String, String), RemoteError> {
    let qdiscs = Cmd::new(&["tc", "-j", "qdisc", "show", "dev", iface]);
    let classes = Cmd::new(&["tc", "class", "show", "dev", iface]);
    let filters = Cmd::new(&["tc", "-j", "filter", "show", "dev", iface]);
    Ok((
        checked(conn, &qdiscs, &format!("tc -j qdisc show dev {iface}")).await?,
        checked(conn, &classes, &format!("tc class show dev {iface}")).await?,
        checked(conn, &filters, &format!("tc -j filter show dev {iface}")).await?,
    ))
}

async fn remove_netem(
    conn: &Conn,
    interfaces: &[(String, Option<String>)],
) -> Result<(), RemoteError> {
    let mut wrong = Vec::new();
    for (iface, previous) in interfaces {
        let cmd = Cmd::new(&netem::restore(iface)).privileged();
        if let Err(e) = checked(conn, &cmd, &format!("tc qdisc del dev {iface} root")).await {
            wrong.push(e.to_string());
            continue;
        }
        let (q, c, f) = match read_back(conn, iface).await {
            Ok(shown) => shown,
            Err(e) => {
                wrong.push(e.to_string());
                continue;
            }
        };
        match netem::root_qdisc(&q) {
            Ok(root) => {
                if let Some(kind) = previous
                    .as_ref()
                    .filter(|k| !root.is_default() || &root.kind != *k)
                {
                    wrong.push(format!(
                        "{iface}: root qdisc is {} {} after teardown, was {kind}",
                        root.kind, root.handle
                    ));
                }
            }
            Err(e) => wrong.push(format!("{iface}: {e}")),
        }
        match netem::leftovers(&q, &c, &f) {
            Ok(left) if left.is_empty() => {}
            Ok(left) => wrong.push(format!(
                "{iface}: still there after teardown: {}",
                left.join(", ")
            )),
            Err(e) => wrong.push(format!("{iface}: {e}")),
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(failure(conn, "netem teardown", wrong.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Bpf, Kprobes, Netem, Sudo};

    fn facts(netem: Netem) -> Facts {
        Facts {
            user: "root".into(),
            sudo: Sudo::Root,
            arch: "x86_64".into(),
            kernel: "6.1.0-57-amd64".into(),
            distro: "Debian GNU/Linux 12 (bookworm)".into(),
            java: "none".into(),
            netem,
            kprobes: Kprobes::Yes,
            bpf: Bpf::Yes,
            disk_free_kib: 1,
        }
    }

    #[test]
    fn method_picks_netem_where_the_host_has_it() {
        for (netem, auto) in [
            (Netem::Yes, true),
            (Netem::Module, true),
            (Netem::No, false),
            (Netem::Unknown, false),
        ] {
            let f = facts(netem);
            assert_eq!(uses_netem(Method::Auto, "h1", &f).unwrap(), auto, "{netem}");
            assert!(!uses_netem(Method::Emulator, "h1", &f).unwrap());
            match uses_netem(Method::Netem, "h1", &f) {
                Ok(yes) => assert!(auto && yes),
                Err(e) => {
                    assert!(!auto);
                    let e = e.to_string();
                    assert!(
                        e.starts_with("h1: `delays.method: netem`, but its kernel 6.1.0-57-amd64 has no netem"),
                        "{e}"
                    );
                    assert!(e.contains(&format!("netem: {netem}")), "{e}");
                }
            }
        }
    }
}
