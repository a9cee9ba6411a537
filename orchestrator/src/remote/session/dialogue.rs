//! A command whose standard input and output stay open for an exchange of lines on one SSH
//! channel (the clock measurement's ping-pong): each line costs one round trip, not a channel.

use std::time::Duration;

use openssh::{ChildStdin, ChildStdout, Session, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};

use super::{Cmd, Conn};
use crate::remote::RemoteError;

/// A running command with piped stdin and stdout, line by line.
pub struct Dialogue<'s> {
    host: String,
    command: String,
    child: openssh::Child<&'s Session>,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every read and write must finish within this.
    limit: Duration,
}

impl Conn {
    /// Starts `cmd` with its stdin and stdout piped for [`Dialogue::send`] and
    /// [`Dialogue::receive`]; each of those fails after `limit`.
    pub async fn dialogue(&self, cmd: &Cmd, limit: Duration) -> Result<Dialogue<'_>, RemoteError> {
        let command = cmd.describe();
        let mut child = self
            .session
            .raw_command(cmd.render(self.sudo))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| RemoteError::Command {
                host: self.host.clone(),
                command: command.clone(),
                reason: e.to_string(),
            })?;
        let stdin = child.stdin().take().expect("stdin is piped");
        let stdout = child.stdout().take().expect("stdout is piped");
        Ok(Dialogue {
            host: self.host.clone(),
            command,
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            limit,
        })
    }
}

impl Dialogue<'_> {
    /// Writes `line` and a newline, flushed.
    pub async fn send(&mut self, line: &str) -> Result<(), RemoteError> {
        let write = async {
            self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
            self.stdin.flush().await
        };
        match tokio::time::timeout(self.limit, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.failed(e.to_string())),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// The next line of the command's output; an error (with its stderr) if the output ended.
    pub async fn receive(&mut self) -> Result<String, RemoteError> {
        match tokio::time::timeout(self.limit, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => Ok(line),
            Ok(Ok(None)) => {
                let why = self.stderr().await;
                Err(self.failed(format!("its output ended: {why}")))
            }
            Ok(Err(e)) => Err(self.failed(e.to_string())),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Closes stdin and waits for the command to exit; an error (with its stderr) if it failed.
    pub async fn close(self) -> Result<(), RemoteError> {
        let Dialogue {
            host,
            command,
            mut child,
            stdin,
            lines,
            limit,
        } = self;
        // Dropping closes the pipe: the command reads the end of its input.
        drop(stdin);
        drop(lines);
        let mut why = String::new();
        if let Some(mut err) = child.stderr().take() {
            let _ = tokio::time::timeout(limit, err.read_to_string(&mut why)).await;
        }
        let failed = |reason: String| RemoteError::Command {
            host: host.clone(),
            command: command.clone(),
            reason,
        };
        match tokio::time::timeout(limit, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(failed(format!("{status}: {}", why.trim()))),
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(_) => Err(RemoteError::Timeout {
                host,
                command,
                after: limit,
            }),
        }
    }

    /// What the command wrote on stderr so far, up to its end (bounded by the limit).
    async fn stderr(&mut self) -> String {
        let Some(mut err) = self.child.stderr().take() else {
            return String::new();
        };
        let mut text = String::new();
        let _ = tokio::time::timeout(self.limit, err.read_to_string(&mut text)).await;
        text.trim().to_string()
    }

    fn failed(&self, reason: String) -> RemoteError {
        RemoteError::Command {
            host: self.host.clone(),
            command: self.command.clone(),
            reason,
        }
    }

    fn timed_out(&self) -> RemoteError {
        RemoteError::Timeout {
            host: self.host.clone(),
            command: self.command.clone(),
            after: self.limit,
        }
    }
}
