//! `orch-node relay-serve`: lends this host's artifacts to the other hosts of a setup, so the
//! controller sends each artifact once instead of once per host (docs/setup.md, "Relay").
//!
//! The protocol is one line per TCP connection, `<token> <artifact name>\n`, answered with the
//! file's bytes and a close. The fetching host checks the SHA-256 before the file gets its final
//! name, so the server only needs to serve what its directory holds. The token (the first line
//! on stdin, never in argv where `ps` shows it) keeps stray connections from being answered. The
//! server lives as long as its stdin is open: the controller closes it when every host has
//! fetched, and the host's `timeout` stops it if the controller disappears.
//!
//! An artifact may still be arriving on this host when it is asked for: the controller uploads
//! it as `.orch-partial.<name>` and renames it when complete. The server then sends what is
//! there, follows the file as it grows, and ends once the rename made it `<name>` (the same
//! file) and everything was sent, so the bytes pass on to the other hosts as they arrive. A
//! request for a name that is not there yet waits for it; a later stdin line `gone <name>`
//! (the controller's upload failed) or the partial file vanishing without a final name ends
//! it early, and the fetching host's hash check catches the short file.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use orch_common::agent::RELAY_PARTIAL_PREFIX;

/// How long a client may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request line accepted (a token and a `<sha256>-<name>`).
const MAX_REQUEST: u64 = 512;
/// How long a request waits for its artifact to start arriving, or to grow.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(600);
/// How often a growing or missing file is looked at again.
const POLL: Duration = Duration::from_millis(5);

/// The names the controller said will not arrive.
type Gone = Arc<Mutex<HashSet<String>>>;

/// Serves the files of `dir` on `listen` (port 0: any free port, printed as `port N`).
pub fn serve(dir: &Path, listen: &str) -> Result<()> {
    let mut token = String::new();
    std::io::stdin()
        .read_line(&mut token)
        .context("cannot read the token from stdin")?;
    let token = token.trim().to_string();
    if token.len() < 16 {
        bail!("the token on stdin is missing or shorter than 16 characters");
    }
    let listener =
        TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let port = listener.local_addr()?.port();
    println!("port {port}");
    std::io::stdout().flush()?;
    let dir = dir.to_path_buf();
    let gone = Gone::default();
    let given_up = gone.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (dir, token, gone) = (dir.clone(), token.clone(), gone.clone());
            std::thread::spawn(move || {
                if let Err(e) = answer(stream, &dir, &token, &gone) {
                    eprintln!("relay: {e:#}");
                }
            });
        }
    });
    // Until the controller closes stdin (or the connection dies).
    for line in std::io::stdin().lock().lines() {
        if let Some(name) = line?.strip_prefix("gone ") {
            given_up
                .lock()
                .expect("not poisoned")
                .insert(name.to_string());
        }
    }
    Ok(())
}

/// Answers one connection: checks the token and the name, then sends the file.
fn answer(stream: TcpStream, dir: &Path, token: &str, gone: &Gone) -> Result<()> {
    let peer = stream.peer_addr()?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_line(&mut line)?;
    if line.is_empty() {
        return Ok(()); // a reachability probe: connected and closed
    }
    let Some((given, name)) = line.trim_end().split_once(' ') else {
        bail!("{peer}: malformed request");
    };
    if given != token {
        bail!("{peer}: wrong token");
    }
    let path = artifact_path(dir, name).with_context(|| format!("{peer}: request for {name:?}"))?;
    let partial = dir.join(format!("{RELAY_PARTIAL_PREFIX}{name}"));
    let is_gone = || gone.lock().expect("not poisoned").contains(name);
    send(&stream, &path, &partial, is_gone)
        .with_context(|| format!("{peer}: sending {}", path.display()))
}

/// Sends the file at `path`, or the one growing at `partial` until it is renamed to `path`.
fn send(mut to: impl Write, path: &Path, partial: &Path, gone: impl Fn() -> bool) -> Result<()> {
    let limit = Instant::now() + ARRIVAL_LIMIT;
    let (mut file, mut complete) = loop {
        if let Ok(f) = File::open(path) {
            break (f, true);
        }
        if let Ok(f) = File::open(partial) {
            break (f, false);
        }
        if gone() || Instant::now() > limit {
            bail!("it did not arrive");
        }
        std::thread::sleep(POLL);
    };
    let inode = file.metadata()?.ino();
    let mut buf = vec![0u8; 1 << 16];
    let mut idle_since = Instant::now();
    loop {
        let n = file.read(&mut buf)?;
        if n > 0 {
            to.write_all(&buf[..n])?;
            idle_since = Instant::now();
            continue;
        }
        if complete {
            return Ok(());
        }
        // At the end of a growing file: renamed into place means written to the end (one more
        // read picks up what came in after the last one); gone, it will not be.
        match std::fs::metadata(path) {
            Ok(m) if m.ino() == inode => complete = true,
            _ if gone() || !partial.exists() => bail!("its upload broke off"),
            _ if idle_since.elapsed() > ARRIVAL_LIMIT => bail!("its upload stalled"),
            _ => std::thread::sleep(POLL),
        }
    }
}

/// `dir/<name>` if `name` is an artifact's name, `<64 hex digits>-<letters, digits, . _ ->`:
/// nothing outside the directory can be asked for.
fn artifact_path(dir: &Path, name: &str) -> Result<PathBuf> {
    let valid = name.split_once('-').is_some_and(|(hash, rest)| {
        hash.len() == 64
            && hash.bytes().all(|c| c.is_ascii_hexdigit())
            && !rest.is_empty()
            && !rest.starts_with('.')
            && rest
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
    });
    if !valid {
        bail!("not an artifact name");
    }
    Ok(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_growing_file_is_followed_until_it_is_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let (path, partial) = (dir.path().join("a"), dir.path().join(".orch-partial.a"));
        let writer = {
            let (path, partial) = (path.clone(), partial.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                let mut f = File::create(&partial).unwrap();
                for i in 0..20u8 {
                    f.write_all(&[i; 1000]).unwrap();
                    std::thread::sleep(Duration::from_millis(3));
                }
                std::fs::rename(&partial, &path).unwrap();
            })
        };
        let mut got = Vec::new();
        send(&mut got, &path, &partial, || false).unwrap();
        writer.join().unwrap();
        let want: Vec<u8> = (0..20u8).flat_map(|i| [i; 1000]).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_vanished_or_given_up_upload_ends_the_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let (path, partial) = (dir.path().join("a"), dir.path().join(".orch-partial.a"));
        std::fs::write(&partial, b"half").unwrap();
        let remover = {
            let partial = partial.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                std::fs::remove_file(&partial).unwrap();
            })
        };
        let mut got = Vec::new();
        let e = send(&mut got, &path, &partial, || false).unwrap_err();
        remover.join().unwrap();
        assert_eq!(e.to_string(), "its upload broke off");
        assert_eq!(got, b"half");
        let e = send(Vec::new(), &path, &partial, || true).unwrap_err();
        assert_eq!(e.to_string(), "it did not arrive");
    }

    #[test]
    fn only_artifact_names_are_served() {
        let dir = Path::new("/a");
        let hash = "ab".repeat(32);
        let ok = artifact_path(dir, &format!("{hash}-orch-node")).unwrap();
        assert_eq!(ok, dir.join(format!("{hash}-orch-node")));
        for bad in [
            "orch-node".to_string(),
            format!("{hash}-../x"),
            format!("{hash}-"),
            format!("{}-x", "ab".repeat(31)),
            format!("{hash}-a/b"),
            format!("{hash}-..x"),
        ] {
            assert!(artifact_path(dir, &bad).is_err(), "{bad}");
        }
    }
}
