//! `orch check`: what each host is (user, sudo, arch, kernel, distribution, Java, netem,
//! kprobes, BPF, free disk), learned in one round trip. Later commands use these facts to
//! decide what to build and which delay method a host gets.

use std::collections::BTreeMap;

use crate::inventory::{Arch, Host};
use crate::output::{table, Progress};
use crate::remote::{self, quote, Cmd, RemoteError};

/// An enum of the words the probe prints for one fact, shown back as the same words.
macro_rules! fact {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            fn parse(word: &str) -> Option<Self> {
                match word {
                    $($word => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// The probe's word for it, as `orch check` shows it.
            pub fn word(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.word())
            }
        }
    };
}

fact! {
    /// Whether privileged commands (tc, BPF, namespaces) run.
    Sudo {
        Root = "root",
        /// Passwordless sudo works.
        Yes = "yes",
        No = "no",
    }
}

fact! {
    /// The kernel's netem qdisc.
    Netem {
        /// Built in or loaded.
        Yes = "yes",
        /// A module tc loads on first use.
        Module = "module",
        /// Not configured, or configured as a module that is not installed.
        No = "no",
        /// The kernel config is not readable.
        Unknown = "unknown",
    }
}

fact! {
    /// Kprobes (`CONFIG_KPROBES=y`, or the kernel's kprobe perf event source exists). The
    /// prototype's BCC RTT program needed them; orch's eBPF RTT source does not (docs/rtt.md).
    Kprobes {
        Yes = "yes",
        No = "no",
        /// Kernel config not readable and no kprobe event source.
        Unknown = "unknown",
    }
}

fact! {
    /// Whether orch-node can load eBPF programs, or why not.
    Bpf {
        Yes = "yes",
        NoBtf = "no-btf",
        NoSyscall = "no-syscall",
        NoPrivilege = "no-privilege",
    }
}

impl Netem {
    /// Whether tc can make netem qdiscs now (`yes`) or after loading the module (`module`).
    pub fn usable(self) -> bool {
        matches!(self, Netem::Yes | Netem::Module)
    }
}

/// What one host told us about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub user: String,
    pub sudo: Sudo,
    pub arch: String,
    pub kernel: String,
    pub distro: String,
    /// First line of `java -version`, or `none`.
    pub java: String,
    pub netem: Netem,
    pub kprobes: Kprobes,
    pub bpf: Bpf,
    /// Free space where orch keeps its files, in KiB.
    pub disk_free_kib: u64,
}

impl Facts {
    /// The architecture orch builds for, if it is one orch supports.
    pub fn arch(&self) -> Option<Arch> {
        Arch::from_uname(&self.arch)
    }

    /// Can we run privileged commands (tc, BPF, namespaces) on this host?
    pub fn privileged(&self) -> bool {
        matches!(self.sudo, Sudo::Root | Sudo::Yes)
    }

    fn parse(text: &str) -> Result<Facts, String> {
        let map: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let get = |k: &str| {
            map.get(k)
                .map(|v| v.trim().to_string())
                .ok_or_else(|| format!("the probe printed no `{k}` line"))
        };
        fn word<T>(k: &str, v: String, parse: fn(&str) -> Option<T>) -> Result<T, String> {
            parse(&v)
                .ok_or_else(|| format!("the probe printed `{k}={v}`, which orch does not know"))
        }
        Ok(Facts {
            user: get("user")?,
            sudo: word("sudo", get("sudo")?, Sudo::parse)?,
            arch: get("arch")?,
            kernel: get("kernel")?,
            distro: get("distro")?,
            java: get("java")?,
            netem: word("netem", get("netem")?, Netem::parse)?,
            kprobes: word("kprobes", get("kprobes")?, Kprobes::parse)?,
            bpf: word("bpf", get("bpf")?, Bpf::parse)?,
            disk_free_kib: get("disk_kib")?
                .parse()
                .map_err(|e| format!("bad disk_kib: {e}"))?,
        })
    }
}

/// The probe: a POSIX shell script that prints `key=value` lines and never fails.
fn probe_script(orch_dir: &str) -> String {
    let dir = quote::path(orch_dir);
    format!(
        r#"
echo "user=$(id -un)"
if [ "$(id -u)" = 0 ]; then echo sudo=root; elif sudo -n true 2>/dev/null; then echo sudo=yes; else echo sudo=no; fi
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
echo "distro=$( . /etc/os-release 2>/dev/null; echo "${{PRETTY_NAME:-unknown}}")"
if command -v java >/dev/null 2>&1; then echo "java=$(java -version 2>&1 | head -n 1)"; else echo java=none; fi
cfg=$( (zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null) | grep -E '^CONFIG_(NET_SCH_NETEM|BPF_SYSCALL|KPROBES)=' )
case "$cfg" in
  *CONFIG_NET_SCH_NETEM=y*) echo netem=yes ;;
  *CONFIG_NET_SCH_NETEM=m*)
    if [ -d /sys/module/sch_netem ]; then echo netem=yes
    elif ! command -v modinfo >/dev/null 2>&1 || modinfo -n sch_netem >/dev/null 2>&1; then echo netem=module
    else echo netem=no; fi ;;
  *CONFIG_BPF_SYSCALL*) echo netem=no ;;
  *) if [ -d /sys/module/sch_netem ]; then echo netem=yes; else echo netem=unknown; fi ;;
esac
if [ -d /sys/bus/event_source/devices/kprobe ]; then echo kprobes=yes
else case "$cfg" in
  *CONFIG_KPROBES=y*) echo kprobes=yes ;;
  *CONFIG_BPF_SYSCALL*) echo kprobes=no ;;
  *) echo kprobes=unknown ;;
esac; fi
priv=no; if [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then priv=yes; fi
if [ ! -e /sys/kernel/btf/vmlinux ]; then echo bpf=no-btf
elif [ -n "$cfg" ] && ! echo "$cfg" | grep -q CONFIG_BPF_SYSCALL=y; then echo bpf=no-syscall
elif [ $priv = no ]; then echo bpf=no-privilege
else echo bpf=yes; fi
d={dir}
while [ ! -d "$d" ]; do d=$(dirname "$d"); done
echo "disk_kib=$(df -Pk "$d" | awk 'NR==2 {{print $4}}')"
"#
    )
}

/// Probes one connected host.
pub async fn probe(conn: &remote::Conn, orch_dir: &str) -> Result<Facts, RemoteError> {
    let out = conn.run(&Cmd::script(&probe_script(orch_dir))).await?;
    Facts::parse(&out.stdout).map_err(|reason| RemoteError::Command {
        host: conn.host().to_string(),
        command: "facts probe".into(),
        reason: format!("{reason}; stderr: {}", out.stderr.trim()),
    })
}

/// Probes every host and prints one row per host. Returns the facts of the reachable hosts and
/// whether every host answered.
pub async fn check(hosts: &[&Host], parallel: usize) -> (Vec<(String, Facts)>, bool) {
    let progress = Progress::new("check", hosts.len());
    let results = remote::each(hosts, parallel, &progress, |conn| async move {
        let dir = hosts
            .iter()
            .find(|h| h.name == conn.host())
            .map(|h| h.orch_dir.clone())
            .unwrap_or_else(|| "~/.orch".into());
        probe(&conn, &dir).await
    })
    .await;
    progress.finish();

    let mut rows = Vec::new();
    let mut facts = Vec::new();
    let mut problems = Vec::new();
    for r in results {
        match r.result {
            Ok(f) => {
                rows.push(vec![
                    r.host.clone(),
                    "yes".into(),
                    f.user.clone(),
                    f.sudo.to_string(),
                    f.arch.clone(),
                    f.kernel.clone(),
                    f.distro.clone(),
                    short_java(&f.java),
                    f.netem.to_string(),
                    f.kprobes.to_string(),
                    f.bpf.to_string(),
                    format!("{:.1}G", f.disk_free_kib as f64 / 1024.0 / 1024.0),
                ]);
                facts.push((r.host, f));
            }
            Err(e) => {
                let mut row = vec![r.host.clone(), "NO".into()];
                row.extend(std::iter::repeat_n("-".to_string(), 10));
                rows.push(row);
                problems.push(e.to_string());
            }
        }
    }
    println!(
        "{}",
        table(
            &[
                "HOST",
                "REACHABLE",
                "USER",
                "SUDO",
                "ARCH",
                "KERNEL",
                "DISTRO",
                "JAVA",
                "NETEM",
                "KPROBES",
                "BPF",
                "DISK FREE"
            ],
            &rows
        )
    );
    for p in &problems {
        eprintln!("{p}");
    }
    let all = problems.is_empty();
    (facts, all)
}

/// `openjdk version "17.0.15" 2025-04-15` -> `openjdk 17.0.15`.
fn short_java(line: &str) -> String {
    if line == "none" {
        return line.to_string();
    }
    let vendor = line.split_whitespace().next().unwrap_or("java");
    match line.split('"').nth(1) {
        Some(v) => format!("{vendor} {v}"),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probe_output() {
        let text = "user=root\nsudo=root\narch=x86_64\nkernel=6.18.0\ndistro=Debian GNU/Linux 12 (bookworm)\njava=openjdk version \"17.0.15\" 2025-04-15\nnetem=no\nkprobes=no\nbpf=yes\ndisk_kib=1048576\n";
        let f = Facts::parse(text).unwrap();
        assert_eq!(f.arch(), Some(Arch::X86_64));
        assert!(f.privileged());
        assert_eq!(f.disk_free_kib, 1048576);
        assert_eq!(short_java(&f.java), "openjdk 17.0.15");
    }

    #[test]
    fn missing_line_is_named() {
        let err = Facts::parse("user=x\n").unwrap_err();
        assert!(err.contains("`sudo`"), "{err}");
    }

    #[test]
    fn probe_runs_in_a_local_shell() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe_script("~/.orch-probe-test/sub dir"))
            .output()
            .unwrap();
        let f = Facts::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(
            f.kernel,
            String::from_utf8(
                std::process::Command::new("uname")
                    .arg("-r")
                    .output()
                    .unwrap()
                    .stdout
            )
            .unwrap()
            .trim()
        );
        assert!(f.disk_free_kib > 0);
    }
}
