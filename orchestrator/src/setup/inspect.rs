//! What a host already has, learned in one round trip: its architecture and home, whether Java
//! runs, which artifacts it holds, where orch's links point, the hashes of the rendered files
//! and which ZooKeeper tarball its unpacked directory came from.
//!
//! This is deliberately not `facts::probe`: that one starts a JVM (`java -version`) and reads
//! the kernel configuration, which would cost the no-change rerun most of its time.

use std::collections::{BTreeMap, BTreeSet};

use crate::remote::quote::{path, quote};

/// What to look at on a host.
pub struct Probe<'a> {
    /// The orch directory as the inventory gives it (`~/` allowed).
    pub orch_dir: &'a str,
    /// Symlinks under the orch directory whose targets matter.
    pub links: Vec<&'a str>,
    /// Files under the orch directory whose content hashes matter.
    pub files: Vec<&'a str>,
    /// `zookeeper/<dir>` whose `.orch-tarball` marker says which tarball it was unpacked from.
    pub unpacked: Option<&'a str>,
    /// An existing ZooKeeper installation (`~/` allowed) that must have `bin/zkServer.sh`.
    pub existing: Option<&'a str>,
}

/// The answer to a [`Probe`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// `uname -m`.
    pub arch: String,
    pub home: String,
    /// An executable `java` is on the PATH.
    pub java: bool,
    /// The package manager that could install Java (`apt-get`, `dnf`, `yum`, `zypper`, `apk`).
    pub package_manager: Option<String>,
    /// The login user is root (no sudo needed to install packages).
    pub root: bool,
    /// File names under `artifacts/`.
    pub artifacts: BTreeSet<String>,
    /// Link path -> target, for the probed links that exist.
    pub links: BTreeMap<String, String>,
    /// File path -> SHA-256, for the probed files that exist.
    pub files: BTreeMap<String, String>,
    /// The tarball hash recorded in the probed ZooKeeper directory, if it is there.
    pub unpacked: Option<String>,
    /// The probed existing installation has `bin/zkServer.sh`.
    pub existing: bool,
}

impl Probe<'_> {
    /// The POSIX shell script that prints the `key=value` lines [`parse`] reads.
    pub fn script(&self) -> String {
        let mut s = format!(
            r#"echo "arch=$(uname -m)"
echo "home=$HOME"
if j=$(command -v java 2>/dev/null) && [ -x "$j" ]; then echo java=yes; else echo java=no; fi
for pm in apt-get dnf yum zypper apk; do command -v $pm >/dev/null 2>&1 && {{ echo "pm=$pm"; break; }}; done
echo "uid=$(id -u)"
if cd {dir} 2>/dev/null; then
  for f in artifacts/*; do [ -f "$f" ] && echo "artifact=${{f#artifacts/}}"; done
"#,
            dir = path(self.orch_dir)
        );
        for link in &self.links {
            let l = quote(link);
            s.push_str(&format!(
                "  [ -L {l} ] && printf 'link=%s=%s\\n' {l} \"$(readlink {l})\"\n"
            ));
        }
        if !self.files.is_empty() {
            let files: Vec<String> = self.files.iter().map(|f| quote(f)).collect();
            s.push_str(&format!(
                "  sha256sum {} 2>/dev/null | while read -r h f; do echo \"file=$f=$h\"; done\n",
                files.join(" ")
            ));
        }
        if let Some(dir) = self.unpacked {
            let marker = quote(&format!("zookeeper/{dir}/.orch-tarball"));
            s.push_str(&format!(
                "  [ -f {marker} ] && echo \"unpacked=$(cat {marker})\"\n"
            ));
        }
        s.push_str("fi\n");
        if let Some(dir) = self.existing {
            let server = format!("{}/bin/zkServer.sh", path(dir));
            s.push_str(&format!("[ -f {server} ] && echo existing=yes\n"));
        }
        s.push_str("echo end=1\n");
        s
    }
}

/// Reads the output of [`Probe::script`].
pub fn parse(text: &str) -> Result<Observed, String> {
    let mut o = Observed::default();
    let mut complete = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match key {
            "arch" => o.arch = value.to_string(),
            "home" => o.home = value.to_string(),
            "java" => o.java = value == "yes",
            "pm" => o.package_manager = Some(value.to_string()),
            "uid" => o.root = value == "0",
            "artifact" => {
                o.artifacts.insert(value.to_string());
            }
            "link" | "file" => {
                let Some((name, v)) = value.split_once('=') else {
                    return Err(format!("malformed line `{line}`"));
                };
                let map = if key == "link" {
                    &mut o.links
                } else {
                    &mut o.files
                };
                map.insert(name.to_string(), v.to_string());
            }
            "unpacked" => o.unpacked = Some(value.trim().to_string()),
            "existing" => o.existing = value == "yes",
            "end" => complete = true,
            _ => {}
        }
    }
    if !complete || o.arch.is_empty() || o.home.is_empty() {
        return Err(format!(
            "the inspection script's output is incomplete: {text:?}"
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn the_script_reports_what_is_there_in_a_local_shell() {
        let home = tempfile::tempdir().unwrap();
        let orch = home.path().join("my orch");
        let zk = orch.join("zookeeper/apache-zookeeper-3.8.0-bin");
        std::fs::create_dir_all(orch.join("artifacts")).unwrap();
        std::fs::create_dir_all(orch.join("bin")).unwrap();
        std::fs::create_dir_all(orch.join("conf")).unwrap();
        std::fs::create_dir_all(&zk).unwrap();
        std::fs::write(orch.join("artifacts/abc-orch-node"), "x").unwrap();
        std::fs::write(orch.join("artifacts/.orch-upload.123"), "half").unwrap();
        std::os::unix::fs::symlink("../artifacts/abc-orch-node", orch.join("bin/orch-node"))
            .unwrap();
        std::fs::write(orch.join("conf/zoo.cfg"), "abc").unwrap();
        std::fs::write(zk.join(".orch-tarball"), "f00d\n").unwrap();
        let probe = Probe {
            orch_dir: "~/my orch",
            links: vec!["bin/orch-node", "zookeeper/current"],
            files: vec!["conf/zoo.cfg", "zk-data/myid"],
            unpacked: Some("apache-zookeeper-3.8.0-bin"),
            existing: Some("~/nowhere"),
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(probe.script())
            .env("HOME", home.path())
            .output()
            .unwrap();
        let o = parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(o.home, home.path().to_str().unwrap());
        assert!(!o.arch.is_empty());
        assert_eq!(o.artifacts, BTreeSet::from(["abc-orch-node".to_string()]));
        assert_eq!(
            o.links,
            BTreeMap::from([(
                "bin/orch-node".to_string(),
                "../artifacts/abc-orch-node".to_string()
            )])
        );
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            o.files,
            BTreeMap::from([("conf/zoo.cfg".to_string(), abc.to_string())])
        );
        assert_eq!(o.unpacked.as_deref(), Some("f00d"));
        assert!(!o.existing);
        // Whoever runs the test, and apt-get where the machine has it (first in the list).
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        assert_eq!(o.root, String::from_utf8_lossy(&uid).trim() == "0");
        let apt = std::path::Path::new("/usr/bin/apt-get").exists();
        assert_eq!(o.package_manager.as_deref() == Some("apt-get"), apt);
    }

    #[test]
    fn an_empty_host_is_fine_and_truncated_output_is_not() {
        let home = tempfile::tempdir().unwrap();
        let probe = Probe {
            orch_dir: "~/.orch",
            links: vec!["bin/orch-node"],
            files: vec!["conf/zoo.cfg"],
            unpacked: None,
            existing: None,
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(probe.script())
            .env("HOME", home.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let o = parse(&text).unwrap();
        assert!(o.artifacts.is_empty() && o.links.is_empty() && o.files.is_empty());
        assert!(parse("arch=x86_64\nhome=/root\n").is_err());
    }
}
