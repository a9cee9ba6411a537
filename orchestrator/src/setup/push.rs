//! Uploading artifacts to a host, every byte counted into the shared progress bar.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::plan::INCOMING;
use crate::artifacts::Artifact;
use crate::output::Progress;
use crate::remote::{Conn, RemoteError};

/// Uploads `artifact` to `<orch_dir>/artifacts/.incoming/` (atomically: a broken transfer
/// leaves nothing under that name either); the setup script checks its hash and moves it into
/// `artifacts/`. Returns the bytes sent.
pub async fn push(
    conn: &Conn,
    orch_dir: &str,
    artifact: &Artifact,
    progress: &Progress,
) -> Result<u64, RemoteError> {
    let file = tokio::fs::File::open(&artifact.path)
        .await
        .map_err(|e| RemoteError::Command {
            host: conn.host().to_string(),
            command: format!("upload of {}", artifact.path.display()),
            reason: format!("cannot read it on this machine: {e}"),
        })?;
    let remote = format!(
        "{}/{INCOMING}/{}",
        orch_dir.trim_end_matches('/'),
        artifact.remote_name()
    );
    let mode = if artifact.executable { 0o755 } else { 0o644 };
    let reader = Counting {
        inner: file,
        progress,
    };
    conn.upload(reader, artifact.len, &remote, mode).await?;
    Ok(artifact.len)
}

/// A reader that reports how much passed through it.
struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<'_, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.progress.sent((buf.filled().len() - before) as u64);
        }
        polled
    }
}
