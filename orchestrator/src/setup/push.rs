//! Uploading artifacts to a host, gzip-compressed where that pays, every byte counted into the
//! shared progress bar.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use orch_common::agent::RELAY_PARTIAL_PREFIX;
use tokio::io::{AsyncRead, ReadBuf};

use crate::artifacts::Artifact;
use crate::output::Progress;
use crate::remote::{Conn, RemoteError};

/// Compressed sizes above this share of the original are sent as they are: decompressing on
/// the host would cost more than the few bytes saved.
const WORTH_IT: f64 = 0.9;
/// How many compressed artifacts [`Payload::cached`] keeps (the most recently used ones).
const CACHE_KEEP: usize = 16;

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

    /// [`Payload::new`] of bytes that hash to `sha256`, their gzip taken from `cache` if an
    /// earlier run left it there, else made and left there: compressing orch-node costs a
    /// second or more on a busy machine, and the same build is pushed by many setups. The
    /// hosts check the decompressed length and gzip's CRC, so a damaged entry fails the push
    /// instead of installing wrong bytes.
    pub fn cached(bytes: Vec<u8>, sha256: &str, cache: Option<&Path>) -> Payload {
        let Some(dir) = cache.filter(|_| !is_compressed(&bytes)) else {
            return Payload::new(bytes);
        };
        let (gz, raw) = (
            dir.join(format!("{sha256}.gz")),
            dir.join(format!("{sha256}.raw")),
        );
        let touch = |path: &Path| {
            let _ = std::fs::File::options()
                .append(true)
                .open(path)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        };
        if raw.is_file() {
            touch(&raw);
            return Payload { bytes, gzip: None };
        }
        if let Ok(z) = std::fs::read(&gz) {
            if z.starts_with(b"\x1f\x8b") {
                touch(&gz);
                return Payload {
                    bytes,
                    gzip: Some(z),
                };
            }
        }
        let payload = Payload::new(bytes);
        let (path, content) = match &payload.gzip {
            Some(z) => (gz, z.as_slice()),
            None => (raw, &[][..]),
        };
        if let Err(e) = store(dir, &path, content) {
            tracing::debug!(error = %e, "cannot keep the compressed artifact");
        }
        payload
    }

    /// The bytes a push sends.
    pub fn wire_len(&self) -> u64 {
        self.gzip.as_ref().unwrap_or(&self.bytes).len() as u64
    }
}

/// Where [`Payload::cached`] keeps compressed artifacts: `$XDG_CACHE_HOME/orch/gzip`, else
/// `~/.cache/orch/gzip`.
pub fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("orch/gzip"))
}

/// Writes `content` to `path` in `dir` (temporary name, then rename) and removes all but the
/// [`CACHE_KEEP`] most recently used entries.
fn store(dir: &Path, path: &Path, content: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(".tmp.{}", std::process::id()));
    std::fs::write(&temp, content)?;
    std::fs::rename(&temp, path)?;
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, old) in entries.into_iter().skip(CACHE_KEEP) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
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
/// `partial`: the bytes arrive under `.orch-partial.<name>`, where the relay's server on the
/// seed follows them. Returns the bytes sent.
pub async fn push(
    conn: &Conn,
    orch_dir: &str,
    artifact: &Artifact,
    payload: &Payload,
    partial: bool,
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
    let temp = partial.then(|| format!("{RELAY_PARTIAL_PREFIX}{}", artifact.remote_name()));
    conn.upload_encoded(
        reader,
        wire.len() as u64,
        decode,
        &remote,
        temp.as_deref(),
        mode,
    )
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
        assert!(
            Payload::new(noise.clone()).gzip.is_none(),
            "incompressible bytes"
        );

        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("gzip");
        let first = Payload::cached(text.clone(), "aa", Some(&dir));
        assert_eq!(std::fs::read(dir.join("aa.gz")).unwrap(), compressed);
        // The second run takes the cached bytes, whatever they are.
        std::fs::write(dir.join("aa.gz"), b"\x1f\x8bcached").unwrap();
        let second = Payload::cached(text, "aa", Some(&dir));
        assert_eq!(second.gzip.as_deref(), Some(&b"\x1f\x8bcached"[..]));
        assert_eq!(first.bytes, second.bytes);
        assert!(Payload::cached(noise.clone(), "bb", Some(&dir))
            .gzip
            .is_none());
        assert!(
            dir.join("bb.raw").is_file(),
            "incompressible is remembered too"
        );
        for i in 0..CACHE_KEEP + 3 {
            Payload::cached(noise.clone(), &format!("n{i}"), Some(&dir));
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), CACHE_KEEP);
    }
}
