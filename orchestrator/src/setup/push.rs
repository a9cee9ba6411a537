//! Uploading artifacts to a host, gzip-compressed where that pays, every byte counted into the
//! shared progress bar.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::artifacts::Artifact;
use crate::output::Progress;
use crate::remote::{Conn, RemoteError};

/// Compressed sizes above this share of the original are sent as they are: decompressing on
/// the host would cost more than the few bytes saved.
const WORTH_IT: f64 = 0.9;

/// What goes on the wire for one artifact: its bytes, and their gzip where that pays. gzip
/// because hosts already need it (`tar -xzf` of the ZooKeeper tarball); orch-node shrinks to
/// about 40 %, an already compressed tarball not at all and is not even tried.
pub struct Payload {
    pub bytes: Vec<u8>,
    pub gzip: Option<Vec<u8>>,
}

impl Payload {
    pub fn new(bytes: Vec<u8>) -> Payload {
        let gzip = (!is_compressed(&bytes))
            .then(|| gzip(&bytes))
            .filter(|z| (z.len() as f64) < WORTH_IT * bytes.len() as f64);
        Payload { bytes, gzip }
    }

    /// The bytes a push sends.
    pub fn wire_len(&self) -> u64 {
        self.gzip.as_ref().unwrap_or(&self.bytes).len() as u64
    }
}

/// gzip, xz, zstd, bzip2 and zip files start with these.
fn is_compressed(bytes: &[u8]) -> bool {
    const MAGIC: [&[u8]; 5] = [
        b"\x1f\x8b",
        b"\xfd7zXZ",
        b"\x28\xb5\x2f\xfd",
        b"BZh",
        b"PK\x03\x04",
    ];
    MAGIC.iter().any(|m| bytes.starts_with(m))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(bytes).expect("writing to memory");
    z.finish().expect("writing to memory")
}

/// Uploads `payload` (the content of `artifact`, hashed when it was read) to
/// `<orch_dir>/artifacts/<sha256>-<name>`. `Conn::upload` writes a temporary name and renames
/// it only once every byte arrived (and SSH's MAC vouches for each of them; gzip's CRC for the
/// decompressed ones), so the final name never holds anything but exactly these bytes.
/// Returns the bytes sent.
pub async fn push(
    conn: &Conn,
    orch_dir: &str,
    artifact: &Artifact,
    payload: &Payload,
    progress: &Progress,
) -> Result<u64, RemoteError> {
    let remote = format!(
        "{}/artifacts/{}",
        orch_dir.trim_end_matches('/'),
        artifact.remote_name()
    );
    let mode = if artifact.executable { 0o755 } else { 0o644 };
    let (wire, decode) = match &payload.gzip {
        Some(z) => (z.as_slice(), Some(("gzip -dc", payload.bytes.len() as u64))),
        None => (payload.bytes.as_slice(), None),
    };
    let reader = Counting {
        inner: wire,
        progress,
    };
    conn.upload_encoded(reader, wire.len() as u64, decode, &remote, mode)
        .await?;
    Ok(wire.len() as u64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_used_where_it_pays() {
        let text = b"orch-node orch-node orch-node ".repeat(1000);
        let p = Payload::new(text.clone());
        assert!(p.wire_len() < text.len() as u64 / 10, "{}", p.wire_len());
        let compressed = p.gzip.clone().unwrap();
        let again = Payload::new(compressed.clone());
        assert!(again.gzip.is_none(), "a gzip file is sent as it is");
        assert_eq!(again.wire_len(), compressed.len() as u64);
        use sha2::Digest;
        let noise: Vec<u8> = (0..256u32)
            .flat_map(|i| sha2::Sha256::digest(i.to_le_bytes()).to_vec())
            .collect();
        assert!(Payload::new(noise).gzip.is_none(), "incompressible bytes");
    }
}
