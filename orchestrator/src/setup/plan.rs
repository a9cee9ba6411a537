//! What a host needs, compared with what it has: the actions that close the gap, and the one
//! shell script that carries out all of them except the uploads.
//!
//! Layout under the orch directory:
//!
//! ```text
//! artifacts/<sha256>-<name>         immutable, content addressed
//! bin/orch-node -> ../artifacts/<sha256>-orch-node
//! zookeeper/apache-zookeeper-<v>-bin/   unpacked from the pushed tarball (.orch-tarball = its hash)
//! zookeeper/current -> apache-zookeeper-<v>-bin (or the inventory's install_dir)
//! conf/zoo.cfg, conf/replica.yaml, zk-data/myid
//! artifacts.json                    name -> sha256 of what is installed (for fetch-logs)
//! ```

use crate::artifacts::{Artifact, Planned, Resolved};
use crate::remote::quote::{path, quote};

use super::inspect::Observed;
use super::zookeeper::Install;

/// The link to the ZooKeeper installation, whichever way it was installed.
pub const ZOOKEEPER_LINK: &str = "zookeeper/current";

/// Under the orch directory: name -> SHA-256 of every artifact setup put in place, which
/// `orch fetch-logs` copies into each host's entry of the MANIFEST.
pub const ARTIFACTS_RECORD: &str = "artifacts.json";

/// The content of [`ARTIFACTS_RECORD`] for what `artifacts` and `zookeeper` install (artifacts
/// still to be built, in a dry run, have no hash yet and are left out).
pub fn artifacts_record(artifacts: &[Planned], zookeeper: Option<&Install>) -> String {
    let mut record = std::collections::BTreeMap::new();
    for p in artifacts {
        if let Resolved::Ready(a) = &p.resolved {
            record.insert(a.name.clone(), a.sha256.clone());
        }
    }
    if let Some(Install::Tarball { origin, .. }) = zookeeper {
        record.insert(origin.name.clone(), origin.sha256.clone());
    }
    serde_json::to_string_pretty(&record).expect("a map of strings") + "\n"
}

/// Everything one host should have.
pub struct Wanted<'a> {
    /// The host's artifacts, for its architecture.
    pub artifacts: &'a [Planned],
    pub zookeeper: Option<&'a Install>,
    /// Rendered files: path under the orch directory, content.
    pub files: Vec<(&'static str, String)>,
}

/// One change to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Upload to `artifacts/<sha256>-<name>`.
    Push(Artifact),
    /// Dry run only: this artifact would be built, then pushed and linked.
    Build { name: String, reason: String },
    /// Point the symlink `path` at `target`.
    Link { path: String, target: String },
    /// Unpack the pushed tar into `zookeeper/<dir>`, marked with `origin`, the SHA-256 of the
    /// `.tar.gz` it came from.
    Unpack {
        artifact: Artifact,
        dir: String,
        origin: String,
    },
    /// Write a rendered file (`changed`: it existed with other content).
    Write {
        path: &'static str,
        content: String,
        changed: bool,
    },
    /// Install a headless JRE with the host's package manager (`java: install`), as root.
    InstallJava { package_manager: String },
}

/// The install command of a headless JRE per package manager. apt-get retries after an
/// `update` (a fresh cloud image often has no package lists yet).
pub fn java_install_script(package_manager: &str) -> Option<String> {
    let install = match package_manager {
        "apt-get" => {
            let apt = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q default-jre-headless";
            format!("{apt} || {{ apt-get update -q && {apt}; }}")
        }
        "dnf" | "yum" => format!("{package_manager} install -y java-headless"),
        "zypper" => "zypper --non-interactive install java-headless".to_string(),
        "apk" => "apk add --no-cache openjdk17-jre-headless".to_string(),
        _ => return None,
    };
    Some(format!(
        "set -e\n{install}\ncommand -v java >/dev/null 2>&1 || {{ echo \"no java on the PATH after: {install}\" >&2; exit 1; }}\n"
    ))
}

impl Action {
    /// One line for people: what changes on the host.
    pub fn describe(&self) -> String {
        match self {
            Action::Push(a) => format!(
                "push    {} ({}, {}) -> artifacts/{}",
                a.name,
                human_bytes(a.len),
                a.short_hash(),
                short_remote(a)
            ),
            Action::Build { name, reason } => {
                format!("build   {name} ({reason}), then push and link it")
            }
            Action::Link { path, target } => format!("link    {path} -> {target}"),
            Action::Unpack { artifact, dir, .. } => {
                format!("unpack  {} -> zookeeper/{dir}", artifact.name)
            }
            Action::Write { path, changed, .. } => {
                let why = if *changed { "changed" } else { "new" };
                format!("write   {path} ({why})")
            }
            Action::InstallJava { package_manager } => {
                format!("install java (a headless JRE, with {package_manager})")
            }
        }
    }
}

fn short_remote(a: &Artifact) -> String {
    format!("{}…-{}", a.short_hash(), a.name)
}

/// `~/x` with the host's home put in: symlink targets and configuration files need real paths.
pub fn absolute(remote: &str, home: &str) -> String {
    match remote.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", home.trim_end_matches('/')),
        None => remote.to_string(),
    }
}

/// The link target of an artifact installed as `install_as` (relative, so the orch directory
/// can move): `bin/orch-node` -> `../artifacts/<sha>-orch-node`.
fn link_target(install_as: &str, artifact: &Artifact) -> String {
    let depth = install_as.matches('/').count();
    format!(
        "{}artifacts/{}",
        "../".repeat(depth),
        artifact.remote_name()
    )
}

/// The actions that turn `observed` into `wanted`; empty when the host is up to date.
pub fn actions(wanted: &Wanted, observed: &Observed) -> Vec<Action> {
    let mut out = Vec::new();
    let link = |out: &mut Vec<Action>, path: &str, target: String| {
        if observed.links.get(path) != Some(&target) {
            out.push(Action::Link {
                path: path.to_string(),
                target,
            });
        }
    };
    for planned in wanted.artifacts {
        match &planned.resolved {
            Resolved::Ready(a) => {
                if !observed.artifacts.contains(&a.remote_name()) {
                    out.push(Action::Push(a.clone()));
                }
                link(
                    &mut out,
                    planned.install_as,
                    link_target(planned.install_as, a),
                );
            }
            Resolved::Stale { name, reason } => out.push(Action::Build {
                name: name.clone(),
                reason: reason.clone(),
            }),
        }
    }
    match wanted.zookeeper {
        Some(Install::Tarball {
            artifact,
            dir,
            origin,
        }) => {
            if observed.unpacked.as_deref() != Some(origin.sha256.as_str()) {
                if !observed.artifacts.contains(&artifact.remote_name()) {
                    out.push(Action::Push(artifact.clone()));
                }
                out.push(Action::Unpack {
                    artifact: artifact.clone(),
                    dir: dir.clone(),
                    origin: origin.sha256.clone(),
                });
            }
            link(&mut out, ZOOKEEPER_LINK, dir.clone());
        }
        Some(Install::Existing { dir }) => {
            link(&mut out, ZOOKEEPER_LINK, absolute(dir, &observed.home));
        }
        None => {}
    }
    for (file, content) in &wanted.files {
        let hash = crate::artifacts::sha256_bytes(content.as_bytes());
        let current = observed.files.get(*file);
        if current != Some(&hash) {
            out.push(Action::Write {
                path: file,
                content: content.clone(),
                changed: current.is_some(),
            });
        }
    }
    // Pushes first: they are uploads, and the script that follows relies on them.
    out.sort_by_key(|a| !matches!(a, Action::Push(_)));
    out
}

/// The script that carries out every action but the uploads (which must have happened), in
/// the orch directory: unpack, link, write. `set -e`: it stops at the first failure, and every
/// step leaves a complete old or new state behind. It starts few processes (one `mkdir` for
/// every directory, parents computed here rather than with `dirname`): at 64 hosts sharing a
/// machine, process starts were a quarter of a cold setup's CPU time.
pub fn script(orch_dir: &str, actions: &[Action]) -> String {
    let mut dirs: Vec<String> = vec![".".into()];
    let mut parent = |p: &str| {
        if let Some((dir, _)) = p.rsplit_once('/') {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_string());
            }
        }
    };
    for action in actions {
        match action {
            Action::Unpack { .. } => parent("zookeeper/.unpack/x"),
            Action::Link { path, .. } => parent(path),
            Action::Write { path, .. } => parent(path),
            _ => {}
        }
    }
    let mut s = String::from("set -e\n");
    let unpacking = actions.iter().any(|a| matches!(a, Action::Unpack { .. }));
    if unpacking {
        // What an interrupted earlier unpack left behind.
        s.push_str(&format!(
            "for old in {d}/zookeeper/.unpack {d}/zookeeper/.old; do if [ -e \"$old\" ]; then rm -rf \"$old\"; fi; done\n",
            d = path(orch_dir)
        ));
    }
    let made: Vec<String> = dirs
        .iter()
        .map(|d| match d.as_str() {
            "." => path(orch_dir),
            d => format!("{}/{}", path(orch_dir), quote(d)),
        })
        .collect();
    s.push_str(&format!(
        "mkdir -p {}\ncd {}\n",
        made.join(" "),
        path(orch_dir)
    ));
    for action in actions {
        if let Action::Unpack {
            artifact,
            dir,
            origin,
        } = action
        {
            let tarball = quote(&format!("artifacts/{}", artifact.remote_name()));
            let fresh = quote(&format!("zookeeper/.unpack/{dir}"));
            let target = quote(&format!("zookeeper/{dir}"));
            s.push_str(&format!(
                "tar -xf {tarball} -C zookeeper/.unpack\n\
                 if [ ! -f {fresh}/bin/zkServer.sh ]; then echo {missing} >&2; exit 1; fi\n\
                 echo {sha} > {fresh}/.orch-tarball\n\
                 if [ -e {target} ]; then mv {target} zookeeper/.old; fi\n\
                 mv {fresh} {target}\n\
                 if [ -e zookeeper/.old ]; then rm -rf zookeeper/.old; fi\n\
                 rm -rf zookeeper/.unpack\n",
                sha = quote(origin),
                missing = quote(&format!(
                    "{} has no {dir}/bin/zkServer.sh: not a ZooKeeper binary tarball",
                    artifact.name
                )),
            ));
        }
    }
    for action in actions {
        match action {
            Action::Link { path: link, target } => {
                let tmp = quote(&format!("{link}.orch-tmp"));
                s.push_str(&format!(
                    "ln -sfn {t} {tmp}\nmv -Tf {tmp} {l}\n",
                    l = quote(link),
                    t = quote(target),
                ));
            }
            Action::Write {
                path: file,
                content,
                ..
            } => {
                let tmp = quote(&format!("{file}.orch-tmp"));
                s.push_str(&format!(
                    "printf '%s' {c} > {tmp}\nmv -f {tmp} {f}\n",
                    f = quote(file),
                    c = quote(content),
                ));
            }
            Action::Push(_)
            | Action::Build { .. }
            | Action::Unpack { .. }
            | Action::InstallJava { .. } => {}
        }
    }
    s
}

/// `2.8 MB`-style sizes (decimal units, like scp and hyperfine).
pub fn human_bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::process::Command;

    fn artifact(name: &str, content: &str) -> Artifact {
        Artifact {
            name: name.to_string(),
            path: PathBuf::from("/nonexistent"),
            sha256: crate::artifacts::sha256_bytes(content.as_bytes()),
            len: content.len() as u64,
            executable: true,
        }
    }

    fn node(content: &str) -> Vec<Planned> {
        vec![Planned {
            resolved: Resolved::Ready(artifact("orch-node", content)),
            install_as: "bin/orch-node",
            built: false,
        }]
    }

    #[test]
    fn an_empty_host_gets_everything_and_a_current_one_nothing() {
        let node = node("binary");
        let tarball = Install::Tarball {
            artifact: artifact("apache-zookeeper-3.8.0-bin.tar", "tar"),
            dir: "apache-zookeeper-3.8.0-bin".into(),
            origin: artifact("apache-zookeeper-3.8.0-bin.tar.gz", "tgz"),
        };
        let wanted = Wanted {
            artifacts: &node,
            zookeeper: Some(&tarball),
            files: vec![("zk-data/myid", "1\n".into())],
        };
        let empty = Observed {
            home: "/root".into(),
            ..Observed::default()
        };
        let all = actions(&wanted, &empty);
        let kinds: Vec<String> = all
            .iter()
            .map(|a| a.describe().split_whitespace().next().unwrap().to_string())
            .collect();
        assert_eq!(kinds, ["push", "push", "link", "unpack", "link", "write"]);

        let Install::Tarball {
            artifact: tar,
            origin,
            ..
        } = &tarball
        else {
            unreachable!()
        };
        let node_name = node_artifact(&node).remote_name();
        let current = Observed {
            home: "/root".into(),
            artifacts: [node_name.clone(), tar.remote_name()].into(),
            links: BTreeMap::from([
                ("bin/orch-node".into(), format!("../artifacts/{node_name}")),
                (
                    "zookeeper/current".into(),
                    "apache-zookeeper-3.8.0-bin".into(),
                ),
            ]),
            files: BTreeMap::from([(
                "zk-data/myid".into(),
                crate::artifacts::sha256_bytes(b"1\n"),
            )]),
            unpacked: Some(origin.sha256.clone()),
            ..Observed::default()
        };
        assert_eq!(actions(&wanted, &current), []);

        let mut without_tarball = current;
        without_tarball.artifacts.remove(&tar.remote_name());
        assert_eq!(actions(&wanted, &without_tarball), [], "unpacked is enough");
    }

    fn node_artifact(planned: &[Planned]) -> &Artifact {
        match &planned[0].resolved {
            Resolved::Ready(a) => a,
            Resolved::Stale { .. } => unreachable!(),
        }
    }

    #[test]
    fn an_existing_installation_is_linked_with_the_home_put_in() {
        let existing = Install::Existing { dir: "~/zk".into() };
        let wanted = Wanted {
            artifacts: &[],
            zookeeper: Some(&existing),
            files: vec![],
        };
        let observed = Observed {
            home: "/home/me/".into(),
            ..Observed::default()
        };
        assert_eq!(
            actions(&wanted, &observed),
            [Action::Link {
                path: "zookeeper/current".into(),
                target: "/home/me/zk".into()
            }]
        );
    }

    /// Runs the script of `actions` for real in a temporary home, after "uploading" the pushes.
    fn apply(home: &std::path::Path, actions: &[Action], uploads: &[(&Artifact, &[u8])]) -> bool {
        let artifacts = home.join(".orch/artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        for (a, bytes) in uploads {
            std::fs::write(artifacts.join(a.remote_name()), bytes).unwrap();
        }
        Command::new("sh")
            .arg("-c")
            .arg(script("~/.orch", actions))
            .env("HOME", home)
            .status()
            .unwrap()
            .success()
    }

    #[test]
    fn the_script_puts_everything_in_place() {
        let home = tempfile::tempdir().unwrap();
        let node = node("binary v1");
        let a = node_artifact(&node);
        let wanted = Wanted {
            artifacts: &node,
            zookeeper: None,
            files: vec![("conf/zoo.cfg", "it's $HOME `x`\n".into())],
        };
        let todo = actions(&wanted, &Observed::default());
        assert!(apply(home.path(), &todo, &[(a, b"binary v1")]));
        let orch = home.path().join(".orch");
        assert_eq!(
            std::fs::read(orch.join("bin/orch-node")).unwrap(),
            b"binary v1"
        );
        assert_eq!(
            std::fs::read_to_string(orch.join("conf/zoo.cfg")).unwrap(),
            "it's $HOME `x`\n"
        );

        let v2 = self::node("binary v2");
        let b = node_artifact(&v2);
        let relink = vec![
            Action::Push(b.clone()),
            Action::Link {
                path: "bin/orch-node".into(),
                target: link_target("bin/orch-node", b),
            },
        ];
        assert!(apply(home.path(), &relink, &[(b, b"binary v2")]));
        assert_eq!(
            std::fs::read(orch.join("bin/orch-node")).unwrap(),
            b"binary v2"
        );
        assert!(orch.join("artifacts").join(a.remote_name()).is_file());
    }

    /// A gzipped tarball of `files` (path, content), made with the system's tar, as setup
    /// installs it: the plain tar, the `.tar.gz` and the plain tar's bytes.
    fn tarball(dir: &std::path::Path, files: &[(&str, &str)]) -> (Artifact, Artifact, Vec<u8>) {
        let tree = dir.join("tree");
        for (file, content) in files {
            let path = tree.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        let out = dir.join("zk.tar.gz");
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&out)
            .arg("-C")
            .arg(&tree)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_dir_all(&tree).unwrap();
        let origin = Artifact::from_file("apache-zookeeper-9.9-bin.tar.gz", &out, false).unwrap();
        let plain = super::super::zookeeper::plain(&origin, None).unwrap();
        let bytes = super::super::zookeeper::gunzip(&std::fs::read(&out).unwrap()).unwrap();
        (plain, origin, bytes)
    }

    #[test]
    fn zookeeper_is_unpacked_whole_or_not_at_all() {
        let home = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let dir = "apache-zookeeper-9.9-bin".to_string();
        let (good, origin, bytes) = tarball(
            work.path(),
            &[("apache-zookeeper-9.9-bin/bin/zkServer.sh", "v1")],
        );
        assert_eq!(good.name, "apache-zookeeper-9.9-bin.tar");
        let install = Install::Tarball {
            artifact: good.clone(),
            dir: dir.clone(),
            origin: origin.clone(),
        };
        let wanted = Wanted {
            artifacts: &[],
            zookeeper: Some(&install),
            files: vec![],
        };
        let todo = actions(&wanted, &Observed::default());
        assert!(apply(home.path(), &todo, &[(&good, &bytes)]));
        let zk = home.path().join(".orch/zookeeper");
        assert_eq!(
            std::fs::read_to_string(zk.join("current/bin/zkServer.sh")).unwrap(),
            "v1"
        );
        assert_eq!(
            std::fs::read_to_string(zk.join(format!("{dir}/.orch-tarball"))).unwrap(),
            format!("{}\n", origin.sha256),
            "the marker names the .tar.gz"
        );

        let work = tempfile::tempdir().unwrap();
        let (bad, origin, bytes) =
            tarball(work.path(), &[("apache-zookeeper-9.9-bin/README", "x")]);
        let unpack = vec![Action::Unpack {
            artifact: bad.clone(),
            dir: dir.clone(),
            origin: origin.sha256,
        }];
        assert!(!apply(home.path(), &unpack, &[(&bad, &bytes)]));
        assert_eq!(
            std::fs::read_to_string(zk.join("current/bin/zkServer.sh")).unwrap(),
            "v1",
            "a broken tarball replaced the installation"
        );
    }

    #[test]
    fn sizes_read_like_scp() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(2_808_288), "2.8 MB");
        assert_eq!(human_bytes(8_464_902), "8.5 MB");
        assert_eq!(human_bytes(1_500), "1.5 kB");
    }
}
