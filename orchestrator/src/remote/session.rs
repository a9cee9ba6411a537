//! One SSH connection per host: an OpenSSH ControlMaster that every command reuses, kept alive
//! between `orch` invocations so a second command on the same hosts skips the handshake.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

mod dialogue;
mod unreachable;

pub use dialogue::Dialogue;

use super::quote;
use super::RemoteError;
use crate::inventory::{Host, HostKeyPolicy, SshTarget};

/// How long an idle master connection stays up after the last command.
const MASTER_IDLE: Duration = Duration::from_secs(600);

/// A live connection to one host.
pub struct Conn {
    host: String,
    sudo: bool,
    session: Session,
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A command to run on a host: its argv (each argument quoted on the way) and how.
#[derive(Debug, Clone)]
pub struct Cmd {
    argv: Vec<String>,
    script: Option<String>,
    sudo: bool,
    timeout: Option<Duration>,
}

impl Cmd {
    /// A program and its arguments, each passed literally.
    pub fn new<S: AsRef<str>>(argv: &[S]) -> Cmd {
        Cmd {
            argv: argv.iter().map(|a| a.as_ref().to_string()).collect(),
            script: None,
            sudo: false,
            timeout: None,
        }
    }

    /// A shell script orch wrote itself; it runs under `sh -c` and may use pipes and `$VARS`.
    pub fn script(script: &str) -> Cmd {
        Cmd {
            argv: Vec::new(),
            script: Some(script.to_string()),
            sudo: false,
            timeout: None,
        }
    }

    /// Run through `sudo -n` when the host's inventory entry asks for sudo.
    pub fn privileged(mut self) -> Cmd {
        self.sudo = true;
        self
    }

    /// Kill the command (and its process group, on the host) after this long.
    pub fn timeout(mut self, after: Option<Duration>) -> Cmd {
        self.timeout = after;
        self
    }

    /// The command line the remote login shell receives.
    pub fn render(&self, host_uses_sudo: bool) -> String {
        let mut argv: Vec<String> = Vec::new();
        if self.sudo && host_uses_sudo {
            argv.extend(["sudo", "-n", "--"].map(String::from));
        }
        if let Some(t) = self.timeout {
            argv.extend(["timeout", "-k", "2"].map(String::from));
            argv.push(format!("{}", t.as_secs_f64().max(0.001)));
        }
        match &self.script {
            Some(s) => argv.extend(["sh".to_string(), "-c".to_string(), s.clone()]),
            None => argv.extend(self.argv.iter().cloned()),
        }
        quote::join(&argv)
    }

    fn describe(&self) -> String {
        match &self.script {
            Some(_) => "(orch script)".to_string(),
            None => quote::join(&self.argv),
        }
    }
}

/// The result of a finished command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Conn {
    /// Connects to `host`, reusing a live master connection if an earlier `orch` left one.
    pub async fn open(host: &Host) -> Result<Conn, RemoteError> {
        let target = &host.ssh;
        let dir = master_dir(target);
        let started = Instant::now();
        let session = match resume(&dir, target.connect_timeout).await {
            Some(s) => s,
            None => tokio::time::timeout(
                target.connect_timeout + Duration::from_secs(1),
                launch(target, &dir),
            )
            .await
            .map_err(|_| RemoteError::Unreachable {
                host: host.name.clone(),
                reason: format!(
                    "no answer within {:.1} s",
                    target.connect_timeout.as_secs_f64()
                ),
            })?
            .map_err(|e| unreachable::reason(&host.name, target, e))?,
        };
        tracing::debug!(host = %host.name, elapsed_ms = started.elapsed().as_millis() as u64, "connected");
        Ok(Conn {
            host: host.name.clone(),
            sudo: host.sudo,
            session,
        })
    }

    /// The inventory name of the host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The SSH session, for a command that outlives one call (the relay's server).
    pub(crate) fn session(&self) -> &Session {
        &self.session
    }

    /// Runs a command to completion and collects its output.
    pub async fn run(&self, cmd: &Cmd) -> Result<Output, RemoteError> {
        let mut stdout = String::new();
        let mut stderr = String::new();
        let status = self
            .stream(cmd, |stream, line| {
                let buf = match stream {
                    Stream::Stdout => &mut stdout,
                    Stream::Stderr => &mut stderr,
                };
                buf.push_str(line);
                buf.push('\n');
            })
            .await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs a command and hands every output line to `on_line` as it arrives.
    pub async fn stream(
        &self,
        cmd: &Cmd,
        mut on_line: impl FnMut(Stream, &str),
    ) -> Result<ExitStatus, RemoteError> {
        let line = cmd.render(self.sudo);
        let failed = |e: openssh::Error| RemoteError::Command {
            host: self.host.clone(),
            command: cmd.describe(),
            reason: e.to_string(),
        };
        let mut child = self
            .session
            .raw_command(&line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(failed)?;
        let out = child.stdout().take().expect("stdout is piped");
        let err = child.stderr().take().expect("stderr is piped");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let readers = futures::future::join(
            forward_lines(out, Stream::Stdout, tx.clone()),
            forward_lines(err, Stream::Stderr, tx),
        );
        let consume = async {
            while let Some((stream, text)) = rx.recv().await {
                on_line(stream, &text);
            }
        };
        let local_limit = cmd.timeout.map(|t| t + Duration::from_secs(5));
        let work = async {
            futures::future::join(readers, consume).await;
            child.wait().await
        };
        let status = match local_limit {
            Some(limit) => {
                tokio::time::timeout(limit, work)
                    .await
                    .map_err(|_| RemoteError::Timeout {
                        host: self.host.clone(),
                        command: cmd.describe(),
                        after: limit,
                    })?
            }
            None => work.await,
        };
        status.map_err(failed)
    }
}

impl Conn {
    /// Writes `len` bytes from `reader` to `path` on the host (`~/` allowed) with `mode`.
    ///
    /// The bytes go to a temporary name in the same directory, which is renamed only once the
    /// host has received exactly `len` bytes: a host never sees a half-written file under
    /// `path`, even if the connection dies halfway.
    pub async fn upload(
        &self,
        reader: impl AsyncRead + Unpin,
        len: u64,
        path: &str,
        mode: u32,
    ) -> Result<(), RemoteError> {
        self.upload_encoded(reader, len, None, path, None, mode)
            .await
    }

    /// [`Conn::upload`] of `wire_len` bytes that `decode` (a command on the host, `gzip -dc`)
    /// turns into the file's `len` bytes; `None`: the bytes are the file. The decoder checks
    /// its own framing (gzip: CRC and length), the script checks the length. `temp` names the
    /// file in the same directory that holds the bytes while they arrive (default
    /// `.orch-upload.<pid>`), for a reader that follows it (the relay's seed).
    pub async fn upload_encoded(
        &self,
        mut reader: impl AsyncRead + Unpin,
        wire_len: u64,
        decode: Option<(&str, u64)>,
        path: &str,
        temp: Option<&str>,
        mode: u32,
    ) -> Result<(), RemoteError> {
        let (decoder, len) = decode.unwrap_or(("cat", wire_len));
        let temp = temp.map_or_else(|| ".orch-upload.$$".to_string(), quote::quote);
        let script = format!(
            r#"set -e
f={file}
d=$(dirname "$f")
mkdir -p "$d"
t="$d/"{temp}
trap 'rm -f "$t"' EXIT
{decoder} > "$t"
n=$(wc -c < "$t")
if [ "$n" -ne {len} ]; then echo "received $n of {len} bytes" >&2; exit 1; fi
chmod {mode:o} "$t"
mv -f "$t" "$f"
trap - EXIT"#,
            file = quote::path(path),
        );
        let cmd = Cmd::script(&script);
        let failed = |reason: String| RemoteError::Command {
            host: self.host.clone(),
            command: format!("upload to {path}"),
            reason,
        };
        let mut child = self
            .session
            .raw_command(cmd.render(false))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut stdin = child.stdin().take().expect("stdin is piped");
        let mut stderr = child.stderr().take().expect("stderr is piped");
        let send = async {
            let sent = tokio::io::copy(&mut (&mut reader).take(wire_len), &mut stdin).await;
            drop(stdin);
            sent
        };
        let mut errors = String::new();
        let (sent, _) = futures::future::join(send, stderr.read_to_string(&mut errors)).await;
        let status = child.wait().await.map_err(|e| failed(e.to_string()))?;
        match sent {
            Ok(n) if n == wire_len && status.success() => Ok(()),
            Ok(n) if n != wire_len => Err(failed(format!(
                "the source ended after {n} of {wire_len} bytes"
            ))),
            Ok(_) => Err(failed(errors.trim().to_string())),
            Err(e) => Err(failed(format!("{e}; {}", errors.trim()))),
        }
    }

    /// Streams the file at `path` on the host (`~/` allowed) into `writer`; returns its size.
    pub async fn download(
        &self,
        path: &str,
        writer: impl AsyncWrite + Unpin,
    ) -> Result<u64, RemoteError> {
        let cmd = Cmd::script(&format!("exec cat -- {}", quote::path(path)));
        self.pipe(&cmd, &format!("download of {path}"), writer)
            .await
    }

    /// Runs `cmd` and streams its standard output into `writer`; returns the byte count. A
    /// non-zero exit is an error carrying the command's stderr; `what` names the work in it.
    pub async fn pipe(
        &self,
        cmd: &Cmd,
        what: &str,
        mut writer: impl AsyncWrite + Unpin,
    ) -> Result<u64, RemoteError> {
        let failed = |reason: String| RemoteError::Command {
            host: self.host.clone(),
            command: what.to_string(),
            reason,
        };
        let mut child = self
            .session
            .raw_command(cmd.render(self.sudo))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut stdout = child.stdout().take().expect("stdout is piped");
        let mut stderr = child.stderr().take().expect("stderr is piped");
        let mut errors = String::new();
        let (copied, _) = futures::future::join(
            tokio::io::copy(&mut stdout, &mut writer),
            stderr.read_to_string(&mut errors),
        )
        .await;
        let status = child.wait().await.map_err(|e| failed(e.to_string()))?;
        writer.flush().await.map_err(|e| failed(e.to_string()))?;
        match copied {
            Ok(n) if status.success() => Ok(n),
            Ok(_) => Err(failed(errors.trim().to_string())),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

async fn forward_lines(
    reader: impl AsyncRead + Unpin,
    stream: Stream,
    tx: tokio::sync::mpsc::UnboundedSender<(Stream, String)>,
) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if tx.send((stream, line)).is_err() {
            break;
        }
    }
}

/// The directory holding the master socket for one SSH target: a stable name derived from every
/// connection parameter, so two inventories that reach the same host the same way share it.
fn master_dir(target: &SshTarget) -> PathBuf {
    let mut h = DefaultHasher::new();
    (
        &target.destination,
        &target.user,
        target.port,
        &target.identity_file,
        &target.jump,
        target.host_key,
        &target.known_hosts_file,
    )
        .hash(&mut h);
    let base = target
        .control_dir
        .clone()
        .unwrap_or_else(default_control_dir);
    base.join(format!("{:016x}", h.finish()))
}

fn default_control_dir() -> PathBuf {
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(run).join("orch/ssh");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/tmp".into());
    home.join(".cache/orch/ssh")
}

/// Finds a master an earlier run left in `dir` and checks that it still answers.
async fn resume(dir: &Path, limit: Duration) -> Option<Session> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let sub = entry.path();
        let socket = sub.join("master");
        if !socket.exists() {
            let _ = std::fs::remove_dir_all(&sub);
            continue;
        }
        let session = Session::resume_mux(
            socket.into_boxed_path(),
            Some(sub.join("log").into_boxed_path()),
        );
        let probe = limit.min(Duration::from_secs(2));
        match tokio::time::timeout(probe, session.check()).await {
            Ok(Ok(())) => return Some(session),
            _ => {
                let _ = std::fs::remove_dir_all(&sub);
            }
        }
    }
    None
}

/// Starts a new master connection in `dir` and leaves it running for later invocations.
async fn launch(target: &SshTarget, dir: &Path) -> Result<Session, openssh::Error> {
    create_private_dir(dir).map_err(openssh::Error::Master)?;
    let mut b = SessionBuilder::default();
    b.control_directory(dir)
        .control_persist(ControlPersist::IdleFor(
            std::num::NonZeroUsize::new(MASTER_IDLE.as_secs() as usize).expect("non-zero"),
        ))
        .connect_timeout(target.connect_timeout)
        .server_alive_interval(Duration::from_secs(5))
        .known_hosts_check(match target.host_key {
            HostKeyPolicy::Strict => KnownHosts::Strict,
            HostKeyPolicy::AcceptNew => KnownHosts::Add,
        });
    if let Some(user) = &target.user {
        b.user(user.clone());
    }
    if let Some(port) = target.port {
        b.port(port);
    }
    if let Some(key) = &target.identity_file {
        b.keyfile(key);
    }
    if let Some(jump) = &target.jump {
        b.jump_hosts([jump]);
    }
    if let Some(known) = &target.known_hosts_file {
        b.user_known_hosts_file(known);
    }
    let tempdir = b.launch_master(&target.destination).await?;
    let sub = tempdir.keep();
    Ok(Session::resume_mux(
        sub.join("master").into_boxed_path(),
        Some(sub.join("log").into_boxed_path()),
    ))
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
