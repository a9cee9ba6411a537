//! One sshd per host, each in the host's network namespace plus its own mount and pid namespaces:
//! a private `/root` and `/tmp`, and sshd as pid 1 so that killing it ends the whole host.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::cmd::run;
use super::net::port_open;
use super::process::{children_of, is_namespace_init, ProcId};

/// The OpenSSH server the lab runs (Debian's path; `prereq` installs it when missing).
pub(super) const SSHD: &str = "/usr/sbin/sshd";
/// How long every sshd gets to accept TCP connections.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `unshare` gets to fork the namespace's init. A launcher that exits fails at once,
/// so this only bounds a slow start: 2 s was missed in the kernel tier's VM (TCG) on a busy
/// machine, three times in a row.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs in the new mount and pid namespaces: bind the host's directories (`SOURCE TARGET` pairs
/// up to `--`: home, tmp and the lab user's home), then become sshd.
const HOST_INIT: &str =
    r#"while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec "$@""#;
/// Starts the rest of the arguments in a new session, detached from us, and prints its pid.
const DETACH: &str = r#"log=$1; shift; setsid "$@" </dev/null >>"$log" 2>&1 & echo $!"#;

/// The files of one host, under `<state>/hosts/h<i>/`.
pub(super) struct HostDir(pub PathBuf);

impl HostDir {
    pub(super) fn home(&self) -> PathBuf {
        self.0.join("home")
    }
    pub(super) fn tmp(&self) -> PathBuf {
        self.0.join("tmp")
    }
    /// The lab user's private home on this host (`--user`).
    pub(super) fn user_home(&self) -> PathBuf {
        self.0.join("user-home")
    }
    pub(super) fn host_key(&self) -> PathBuf {
        self.0.join("ssh_host_ed25519_key")
    }
    pub(super) fn log(&self) -> PathBuf {
        self.0.join("sshd.log")
    }
    fn pid_file(&self) -> PathBuf {
        self.0.join("sshd.pid")
    }

    /// Creates the directory, its home (0700, like /root) and tmp (1777, like /tmp), and the
    /// host key.
    pub(super) fn create(&self) -> Result<()> {
        let mkdir = |p: &Path, mode: u32| -> Result<()> {
            fs::DirBuilder::new()
                .mode(mode)
                .create(p)
                .and_then(|()| fs::set_permissions(p, fs::Permissions::from_mode(mode)))
                .with_context(|| format!("cannot create {}", p.display()))
        };
        mkdir(&self.0, 0o755)?;
        mkdir(&self.home(), 0o700)?;
        mkdir(&self.tmp(), 0o1777)?;
        generate_key(&self.host_key())
    }

    /// The host's public key as `type base64`, for known_hosts.
    pub(super) fn public_key(&self) -> Result<String> {
        let path = self.host_key().with_extension("pub");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let fields: Vec<&str> = text.split_whitespace().take(2).collect();
        if fields.len() != 2 {
            bail!("{} is not an SSH public key", path.display());
        }
        Ok(fields.join(" "))
    }

    /// Where the sshd log is and its last lines, to show why a host did not come up (the log
    /// itself is gone once a failed `up` has cleaned up).
    fn log_report(&self) -> String {
        let text = fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join("\n");
        if tail.trim().is_empty() {
            format!("its log {} is empty", self.log().display())
        } else {
            format!("its log {} ends with:\n{tail}", self.log().display())
        }
    }
}

/// Generates an ed25519 key pair without a passphrase at `path` and `path.pub`.
pub(super) fn generate_key(path: &Path) -> Result<()> {
    run(Command::new("ssh-keygen")
        .args(["-t", "ed25519", "-N", "", "-q", "-C", "orch-lab", "-f"])
        .arg(path))
    .map(drop)
}

/// Starts the sshd of the host in `ns` listening on `addr`, detached from this process, with
/// the host's own `/root`, `/tmp` and, given `user_home` (the lab user's home directory), the
/// user's home. Returns the `unshare` process that holds the host's pid namespace.
pub(super) fn launch(
    ns: &str,
    addr: Ipv4Addr,
    dir: &HostDir,
    authorized_keys: &Path,
    user_home: Option<&Path>,
) -> Result<ProcId> {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", DETACH, "sh"])
        .arg(dir.log())
        .args(["ip", "netns", "exec", ns])
        .args(["unshare", "--mount", "--pid", "--fork", "--kill-child"])
        .args(["--mount-proc", "--propagation", "private"])
        .args(["sh", "-c", HOST_INIT, "sh"])
        .arg(dir.home())
        .arg("/root")
        .arg(dir.tmp())
        .arg("/tmp");
    if let Some(home) = user_home {
        cmd.arg(dir.user_home()).arg(home);
    }
    cmd.args(["--", SSHD, "-D", "-e", "-f", "/dev/null"]);
    for option in sshd_options(addr, dir, authorized_keys, user_home.is_some()) {
        cmd.arg("-o").arg(option);
    }
    let out = run(&mut cmd)?;
    let pid: u32 = out
        .trim()
        .parse()
        .with_context(|| format!("the shell that starts sshd printed {out:?}, not a pid"))?;
    ProcId::of(pid).ok_or_else(|| anyhow!("sshd exited at once; {}", dir.log_report()))
}

/// The whole sshd configuration: nothing comes from /etc/ssh. Root's key is in the state
/// directory; a normal user's sshd cannot read that (it reads keys as the user), so a user's key
/// is in the user's own `~/.ssh/authorized_keys`, as on CloudLab.
///
/// Key exchange is plain curve25519: OpenSSH 9's default, sntrup761x25519, measured 0.23 s of
/// CPU per handshake and side on the 2-core machine the lab was built on (curve25519: 0.03 s),
/// and every lab handshake runs both sides on this one machine, so 64 hosts connecting at once
/// spent half a minute of CPU on it. Post-quantum resistance protects nothing on a bridge that
/// never leaves the machine.
fn sshd_options(
    addr: Ipv4Addr,
    dir: &HostDir,
    authorized_keys: &Path,
    user_keys: bool,
) -> Vec<String> {
    let keys = if user_keys {
        format!("{} .ssh/authorized_keys", authorized_keys.display())
    } else {
        authorized_keys.display().to_string()
    };
    vec![
        format!("ListenAddress={addr}:22"),
        format!("HostKey={}", dir.host_key().display()),
        format!("PidFile={}", dir.pid_file().display()),
        format!("AuthorizedKeysFile={keys}"),
        "PermitRootLogin=prohibit-password".into(),
        "PasswordAuthentication=no".into(),
        "KbdInteractiveAuthentication=no".into(),
        "UsePAM=no".into(),
        "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org".into(),
        "StrictModes=no".into(),
        "PrintLastLog=no".into(),
        "MaxSessions=100".into(),
        "MaxStartups=200".into(),
        "LogLevel=ERROR".into(),
        "Subsystem=sftp internal-sftp".into(),
    ]
}

/// Finds pid 1 of the pid namespace `launcher` (an `unshare --fork`) created. Signals to the
/// launcher do not reach it: `unshare` blocks SIGTERM while it waits.
pub(super) fn find_init(launcher: ProcId, dir: &HostDir) -> Result<ProcId> {
    let deadline = Instant::now() + INIT_TIMEOUT;
    loop {
        if let Some(init) = children_of(launcher)
            .into_iter()
            .find(|&c| is_namespace_init(c))
        {
            return Ok(init);
        }
        if !launcher.is_running() || Instant::now() >= deadline {
            bail!("sshd did not start; {}", dir.log_report());
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A host whose sshd `wait_listening` waits for.
pub(super) struct Starting<'a> {
    pub name: &'a str,
    pub addr: Ipv4Addr,
    pub sshd: ProcId,
    pub dir: &'a HostDir,
}

/// Waits until every host's port 22 accepts TCP connections; fails on the first host whose sshd
/// exited or that is still closed after 10 s.
pub(super) fn wait_listening(hosts: &[Starting]) -> Result<()> {
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    let mut pending: Vec<&Starting> = hosts.iter().collect();
    while !pending.is_empty() {
        let host = pending[0];
        let why = if !host.sshd.is_running() {
            "sshd exited"
        } else if Instant::now() >= deadline {
            "sshd does not accept connections on port 22 after 10 s"
        } else {
            if port_open(
                SocketAddr::from((host.addr, 22)),
                Duration::from_millis(200),
            ) {
                pending.remove(0);
            } else {
                thread::sleep(Duration::from_millis(50));
            }
            continue;
        };
        bail!(
            "{} ({}): {why}; {}",
            host.name,
            host.addr,
            host.dir.log_report()
        );
    }
    Ok(())
}
