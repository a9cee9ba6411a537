//! Uploading artifacts to a host, every byte counted into the shared progress bar.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::artifacts::Artifact;
use crate::output::Progress;
use crate::remote::{Conn, RemoteError};

/// Uploads `bytes` (the content of `artifact`, hashed when they were read) to
/// `<orch_dir>/artifacts/<sha256>-<name>`. `Conn::upload` writes a temporary name and renames
/// it only once every byte arrived (and SSH's MAC vouches for each of them), so the final name
/// never holds anything but exactly these bytes. Returns the bytes sent.
pub async fn push(
    conn: &Conn,
    orch_dir: &str,
    artifact: &Artifact,
    bytes: &[u8],
    progress: &Progress,
) -> Result<u64, RemoteError> {
    let remote = format!(
        "{}/artifacts/{}",
        orch_dir.trim_end_matches('/'),
        artifact.remote_name()
    );
    let mode = if artifact.executable { 0o755 } else { 0o644 };
    let reader = Counting {
        inner: bytes,
        progress,
    };
    conn.upload(reader, bytes.len() as u64, &remote, mode)
        .await?;
    Ok(bytes.len() as u64)
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
