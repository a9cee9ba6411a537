//! `orch setup`: makes every selected host ready for experiments. Builds what hosts need on
//! this machine (only if its sources changed), pushes it by content hash (only what a host
//! lacks), installs ZooKeeper on the zookeeper hosts and renders their configuration.
//!
//! Per host it costs one round trip to look (see [`inspect`]) and, only if something is
//! missing, the uploads plus one round trip to put everything in place (see [`plan`]). A
//! second run with nothing changed therefore only looks, and sends nothing.

mod apply;
mod inspect;
mod plan;
mod push;
pub mod relay;
pub mod render;
mod zookeeper;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::artifacts::{self, Planned, Resolved, SourceTree};
use crate::inventory::{Arch, Host, Inventory, JavaPolicy, Role};
use crate::output::{table, Progress};
use crate::remote::{self, Cmd, RemoteError};

pub use plan::{absolute, human_bytes, ARTIFACTS_RECORD};

/// What `orch setup` was asked to do.
pub struct Options {
    /// Only print what would be done; build nothing, change nothing.
    pub dry_run: bool,
    /// A ZooKeeper tarball that replaces the inventory's `zookeeper:` source.
    pub zookeeper: Option<PathBuf>,
    pub parallel: usize,
    /// Whether the controller sends each artifact once and hosts relay it (see [`relay`]).
    pub relay: relay::Mode,
}

/// How setup went on one host.
pub struct HostOutcome {
    pub host: String,
    pub result: Result<Done, String>,
    pub elapsed: Duration,
}

/// What was (or, in a dry run, would be) done on a host that succeeded.
pub struct Done {
    pub arch: Arch,
    /// Bytes the controller sent to the host (compressed, as they went on the wire).
    pub bytes_sent: u64,
    /// Bytes the host fetched from another host instead.
    pub bytes_relayed: u64,
    /// One line per change; empty when the host was up to date.
    pub changes: Vec<String>,
}

/// The outcome of a whole run.
pub struct Summary {
    pub dry_run: bool,
    /// One line per artifact and architecture: up to date, built, or would be built.
    pub builds: Vec<String>,
    pub hosts: Vec<HostOutcome>,
    /// What did not go as planned but was made up for (a relay that fell back to a push).
    pub notes: Vec<String>,
    /// How long each phase took, in order (inspect, build, read, seed, relay, put in place).
    pub phases: Vec<(&'static str, Duration)>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn all_ok(&self) -> bool {
        self.hosts.iter().all(|h| h.result.is_ok())
    }

    /// Bytes the controller uploaded to all hosts together (in a dry run: would at most).
    pub fn bytes_sent(&self) -> u64 {
        self.hosts
            .iter()
            .filter_map(|h| h.result.as_ref().ok())
            .map(|d| d.bytes_sent)
            .sum()
    }

    /// Bytes hosts fetched from each other.
    pub fn bytes_relayed(&self) -> u64 {
        self.hosts
            .iter()
            .filter_map(|h| h.result.as_ref().ok())
            .map(|d| d.bytes_relayed)
            .sum()
    }

    /// Prints the per-host table (or, in a dry run, the plan) and the totals.
    pub fn print(&self) {
        for line in &self.builds {
            println!("{line}");
        }
        let mut rows = Vec::new();
        for h in &self.hosts {
            match &h.result {
                Ok(done) if self.dry_run => {
                    if done.changes.is_empty() {
                        println!("{}  up to date", h.host);
                    }
                    for change in &done.changes {
                        println!("{}  {change}", h.host);
                    }
                }
                Ok(done) => rows.push(vec![
                    h.host.clone(),
                    done.arch.as_str().to_string(),
                    human_bytes(done.bytes_sent),
                    format!("{:.2} s", h.elapsed.as_secs_f64()),
                    count_changes(&done.changes),
                ]),
                Err(_) => rows.push(vec![
                    h.host.clone(),
                    "-".into(),
                    "-".into(),
                    format!("{:.2} s", h.elapsed.as_secs_f64()),
                    "FAILED".into(),
                ]),
            }
        }
        if !rows.is_empty() {
            println!(
                "{}",
                table(&["HOST", "ARCH", "SENT", "TIME", "CHANGES"], &rows)
            );
        }
        for h in &self.hosts {
            if let Err(e) = &h.result {
                eprintln!("{e}");
            }
        }
        for note in &self.notes {
            eprintln!("{note}");
        }
        let failed = self.hosts.iter().filter(|h| h.result.is_err()).count();
        let bytes = self.bytes_sent();
        let line = format!(
            "{} hosts, {} ok, {failed} failed; {bytes} bytes ({})",
            self.hosts.len(),
            self.hosts.len() - failed,
            human_bytes(bytes)
        );
        if self.dry_run {
            eprintln!("setup --dry-run: {line} would be sent; nothing was changed");
            return;
        }
        let relayed = match self.bytes_relayed() {
            0 => String::new(),
            n => format!(", {n} bytes ({}) relayed between hosts,", human_bytes(n)),
        };
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(what, took)| format!("{what} {:.2} s", took.as_secs_f64()))
            .collect();
        eprintln!(
            "setup: {line} sent by the controller{relayed} in {:.2} s ({})",
            self.elapsed.as_secs_f64(),
            phases.join(", ")
        );
    }
}

/// `push 2, unpack 1, link 2, write 3`, or `up to date`.
fn count_changes(changes: &[String]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for change in changes {
        let verb = change.split_whitespace().next().unwrap_or("");
        match counts.iter_mut().find(|(v, _)| *v == verb) {
            Some((_, n)) => *n += 1,
            None => counts.push((verb, 1)),
        }
    }
    if counts.is_empty() {
        return "up to date".into();
    }
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{v} {n}")).collect();
    parts.join(", ")
}

/// What the first pass learned about a host.
struct Looked {
    arch: Arch,
    observed: inspect::Observed,
}

/// Runs setup on `hosts` (a selection of `inventory`).
pub async fn run(
    inventory: &Inventory,
    hosts: &[&Host],
    opts: &Options,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let zookeeper_hosts: Vec<&str> = hosts
        .iter()
        .filter(|h| h.has_role(Role::Zookeeper))
        .map(|h| h.name.as_str())
        .collect();
    let install = zookeeper::resolve(inventory, opts.zookeeper.as_deref(), &zookeeper_hosts)?;
    let renderer = render::Renderer::load(inventory)?;
    let tree = SourceTree::locate()?;

    let mut phases = Vec::new();
    let mut phase = Instant::now();
    let looked = look(hosts, install.as_ref(), opts.parallel).await;
    phases.push(("inspect", phase.elapsed()));
    phase = Instant::now();
    let mut archs: Vec<Arch> = Vec::new();
    for host in hosts {
        if let (_, Ok(l)) = &looked[&host.name] {
            if !archs.contains(&l.arch) {
                archs.push(l.arch);
            }
        }
    }
    let planned = tokio::task::block_in_place(|| artifacts::resolve(&tree, &archs, !opts.dry_run))?;
    let builds = build_lines(&planned);
    phases.push(("build", phase.elapsed()));

    let mut plans: HashMap<String, Vec<plan::Action>> = HashMap::new();
    let mut outcomes: Vec<HostOutcome> = Vec::new();
    for host in hosts {
        let (elapsed, result) = &looked[&host.name];
        let result = match result {
            Ok(l) => {
                let for_arch = planned
                    .iter()
                    .find(|(a, _)| *a == l.arch)
                    .map_or(&[][..], |(_, p)| p.as_slice());
                host_plan(inventory, host, l, for_arch, install.as_ref(), &renderer).map(
                    |actions| {
                        let done = Done {
                            arch: l.arch,
                            bytes_sent: pushed_bytes(&actions),
                            bytes_relayed: 0,
                            changes: actions.iter().map(plan::Action::describe).collect(),
                        };
                        plans.insert(host.name.clone(), actions);
                        done
                    },
                )
            }
            Err(e) => Err(e.clone()),
        };
        outcomes.push(HostOutcome {
            host: host.name.clone(),
            result,
            elapsed: *elapsed,
        });
    }

    let mut notes = Vec::new();
    if !opts.dry_run {
        let candidates: Vec<relay::Candidate> = hosts
            .iter()
            .filter_map(|h| match &looked[&h.name].1 {
                Ok(l) => Some(relay::Candidate {
                    host: h,
                    arch: l.arch,
                    observed: &l.observed,
                }),
                Err(_) => None,
            })
            .collect();
        let node = node_per_arch(&planned);
        let work = apply::Work {
            hosts,
            plans: &plans,
            candidates: &candidates,
            node: &node,
            parallel: opts.parallel,
            relay: opts.relay,
            zookeeper: install.as_ref(),
        };
        notes = apply::apply(&work, &mut outcomes, &mut phases).await?;
    }
    Ok(Summary {
        dry_run: opts.dry_run,
        builds,
        hosts: outcomes,
        notes,
        phases,
        elapsed: started.elapsed(),
    })
}

/// The first pass: one inspection script per host, then the checks that need its answer.
async fn look(
    hosts: &[&Host],
    install: Option<&zookeeper::Install>,
    parallel: usize,
) -> HashMap<String, (Duration, Result<Looked, String>)> {
    let mut scripts: HashMap<String, String> = HashMap::new();
    for host in hosts {
        let zookeeper = install.filter(|_| host.has_role(Role::Zookeeper));
        let mut links: Vec<&str> = artifacts::RECIPES.iter().map(|r| r.install_as).collect();
        if zookeeper.is_some() {
            links.push(plan::ZOOKEEPER_LINK);
        }
        let probe = inspect::Probe {
            orch_dir: &host.orch_dir,
            links,
            files: render::TEMPLATES
                .iter()
                .filter(|t| host.has_role(t.role))
                .map(|t| t.dest)
                .chain([plan::ARTIFACTS_RECORD])
                .collect(),
            unpacked: match zookeeper {
                Some(zookeeper::Install::Tarball { dir, .. }) => Some(dir),
                _ => None,
            },
            existing: match zookeeper {
                Some(zookeeper::Install::Existing { dir }) => Some(dir),
                _ => None,
            },
        };
        scripts.insert(host.name.clone(), probe.script());
    }
    let scripts = &scripts;
    let progress = Progress::new("inspect", hosts.len());
    let results = remote::each(hosts, parallel, &progress, |conn| async move {
        let out = conn.run(&Cmd::script(&scripts[conn.host()])).await?;
        inspect::parse(&out.stdout).map_err(|reason| RemoteError::Command {
            host: conn.host().to_string(),
            command: "setup inspection".into(),
            reason: format!("{reason}; stderr: {}", out.stderr.trim()),
        })
    })
    .await;
    progress.finish();
    hosts
        .iter()
        .zip(results)
        .map(|(host, r)| {
            let result = r
                .result
                .map_err(|e| e.to_string())
                .and_then(|observed| check_host(host, observed, install));
            (host.name.clone(), (r.elapsed, result))
        })
        .collect()
}

/// What must hold before anything is changed on a host: orch builds for its architecture, it
/// matches the inventory, and a ZooKeeper host can run ZooKeeper.
fn check_host(
    host: &Host,
    observed: inspect::Observed,
    install: Option<&zookeeper::Install>,
) -> Result<Looked, String> {
    let name = &host.name;
    let arch = Arch::from_uname(&observed.arch).ok_or_else(|| {
        format!(
            "{name}: architecture `{}` is not one orch builds orch-node for (x86_64, aarch64)",
            observed.arch
        )
    })?;
    if let Some(stated) = host.arch.filter(|a| *a != arch) {
        return Err(format!(
            "{name}: the inventory says `arch: {}` (line {}), but the host is {}; fix or remove \
             `arch`",
            stated.as_str(),
            host.line,
            arch.as_str()
        ));
    }
    let install_java = host.java == JavaPolicy::Install && !observed.java;
    if install_java {
        let pm = observed.package_manager.as_deref().unwrap_or("none");
        if plan::java_install_script(pm).is_none() {
            return Err(format!(
                "{name}: `java: install` (line {}), but the host has none of the package managers \
                 orch knows (apt-get, dnf, yum, zypper, apk); install a JRE by hand",
                host.line
            ));
        }
        if !observed.root && !host.sudo {
            return Err(format!(
                "{name}: `java: install` (line {}) needs root: log in as root or set `sudo: true`",
                host.line
            ));
        }
    }
    if host.has_role(Role::Zookeeper) {
        match install {
            Some(_) if !observed.java && !install_java => {
                return Err(format!(
                    "{name}: no `java` on the PATH, and this host has the zookeeper role; install \
                     Java on it (sudo apt-get install -y default-jre-headless), or set \
                     `java: install` in the inventory and orch setup will"
                ))
            }
            Some(zookeeper::Install::Existing { dir }) if !observed.existing => {
                return Err(format!(
                    "{name}: no ZooKeeper at {dir} (zookeeper.install_dir): {dir}/bin/zkServer.sh \
                     is missing"
                ))
            }
            _ => {}
        }
    }
    Ok(Looked { arch, observed })
}

/// What changes on one host.
fn host_plan(
    inventory: &Inventory,
    host: &Host,
    looked: &Looked,
    artifacts: &[Planned],
    install: Option<&zookeeper::Install>,
    renderer: &render::Renderer,
) -> Result<Vec<plan::Action>, String> {
    let orch_dir = plan::absolute(&host.orch_dir, &looked.observed.home);
    let context = render::context(inventory, host, &orch_dir);
    let mut files = Vec::new();
    for template in render::TEMPLATES.iter().filter(|t| host.has_role(t.role)) {
        let text = renderer
            .render(template, &context)
            .map_err(|e| format!("{}: {e:#}", host.name))?;
        files.push((template.dest, text));
    }
    let zookeeper = install.filter(|_| host.has_role(Role::Zookeeper));
    files.push((
        plan::ARTIFACTS_RECORD,
        plan::artifacts_record(artifacts, zookeeper),
    ));
    let wanted = plan::Wanted {
        artifacts,
        zookeeper,
        files,
    };
    let mut actions = plan::actions(&wanted, &looked.observed);
    if host.java == JavaPolicy::Install && !looked.observed.java {
        let package_manager = looked
            .observed
            .package_manager
            .clone()
            .expect("checked in check_host");
        actions.insert(0, plan::Action::InstallJava { package_manager });
    }
    Ok(actions)
}

/// Each architecture's orch-node, the binary a relay seed serves with.
fn node_per_arch(planned: &[(Arch, Vec<Planned>)]) -> HashMap<Arch, artifacts::Artifact> {
    planned
        .iter()
        .filter_map(|(arch, list)| {
            list.iter().find_map(|p| match &p.resolved {
                Resolved::Ready(a) if p.install_as == "bin/orch-node" => Some((*arch, a.clone())),
                _ => None,
            })
        })
        .collect()
}

fn pushed_bytes(actions: &[plan::Action]) -> u64 {
    actions
        .iter()
        .map(|a| match a {
            plan::Action::Push(artifact) => artifact.len,
            _ => 0,
        })
        .sum()
}

fn build_lines(planned: &[(Arch, Vec<Planned>)]) -> Vec<String> {
    let mut lines = Vec::new();
    for (arch, list) in planned {
        for p in list {
            lines.push(match &p.resolved {
                Resolved::Ready(a) => format!(
                    "build  {} for {}: {} ({}, {})",
                    a.name,
                    arch.as_str(),
                    if p.built { "built" } else { "up to date" },
                    a.short_hash(),
                    human_bytes(a.len)
                ),
                Resolved::Stale { name, reason } => {
                    format!(
                        "build  {name} for {}: would build ({reason})",
                        arch.as_str()
                    )
                }
            });
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_counted_by_kind() {
        let changes = [
            "push    a".to_string(),
            "push    b".into(),
            "link    x".into(),
            "write   y".into(),
        ];
        assert_eq!(count_changes(&changes), "push 2, link 1, write 1");
        assert_eq!(count_changes(&[]), "up to date");
    }

    fn host(settings: &str) -> Host {
        let text = format!(
            "defaults:\n{settings}hosts:\n  - name: h1\n    address: 10.0.0.1\n    \
             experiment_ip: 10.0.1.2\n    roles: [zookeeper]\n    zk_id: 1\n"
        );
        Inventory::parse(&text, std::path::Path::new("inv.yaml"))
            .unwrap_or_else(|e| panic!("{e}"))
            .hosts
            .remove(0)
    }

    fn without_java(pm: Option<&str>, root: bool) -> inspect::Observed {
        inspect::Observed {
            arch: "x86_64".into(),
            home: "/home/u".into(),
            java: false,
            package_manager: pm.map(String::from),
            root,
            existing: true,
            ..inspect::Observed::default()
        }
    }

    #[test]
    fn java_install_needs_a_known_package_manager_and_root_or_sudo() {
        let zk = zookeeper::Install::Existing { dir: "/zk".into() };
        let ok = |h: &Host, o| check_host(h, o, Some(&zk)).map(|_| ());
        let require = host("");
        let e = ok(&require, without_java(Some("apt-get"), true)).unwrap_err();
        assert!(e.contains("set `java: install`"), "{e}");

        let install = host("  java: install\n");
        assert_eq!(install.java, JavaPolicy::Install);
        let e = ok(&install, without_java(None, true)).unwrap_err();
        assert!(e.contains("none of the package managers"), "{e}");
        let e = ok(&install, without_java(Some("apt-get"), false)).unwrap_err();
        assert!(e.contains("needs root"), "{e}");
        let with_sudo = host("  java: install\n  sudo: true\n");
        let looked = check_host(&with_sudo, without_java(Some("dnf"), false), Some(&zk));
        assert!(looked.is_ok(), "{:?}", looked.err());
    }

    #[test]
    fn java_install_scripts_per_package_manager() {
        let apt = plan::java_install_script("apt-get").unwrap();
        assert!(apt.contains("apt-get install -y -q default-jre-headless || { apt-get update"));
        assert!(apt.contains("command -v java"), "{apt}");
        assert!(plan::java_install_script("dnf")
            .unwrap()
            .contains("dnf install -y java-headless"));
        assert!(plan::java_install_script("pacman").is_none());
        // The script is valid sh.
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &apt])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
