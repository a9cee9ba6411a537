//! `orch-node relay-serve`: lends this host's artifacts to the other hosts of a setup, so the
//! controller sends each artifact once instead of once per host (docs/setup.md, "Relay").
//!
//! The protocol is one line per TCP connection, `<token> <artifact name>\n`, answered with the
//! file's bytes and a close. The fetching host checks the SHA-256 before the file gets its final
//! name, so the server only needs to serve what its directory holds. The token (the first line
//! on stdin, never in argv where `ps` shows it) keeps stray connections from being answered. The
//! server lives as long as its stdin is open: the controller closes it when every host has
//! fetched, and the host's `timeout` stops it if the controller disappears.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How long a client may take to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest request line accepted (a token and a `<sha256>-<name>`).
const MAX_REQUEST: u64 = 512;

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
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (dir, token) = (dir.clone(), token.clone());
            std::thread::spawn(move || {
                if let Err(e) = answer(stream, &dir, &token) {
                    eprintln!("relay: {e:#}");
                }
            });
        }
    });
    // Until the controller closes stdin (or the connection dies).
    std::io::copy(&mut std::io::stdin(), &mut std::io::sink())?;
    Ok(())
}

/// Answers one connection: checks the token and the name, then sends the file.
fn answer(stream: TcpStream, dir: &Path, token: &str) -> Result<()> {
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
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    std::io::copy(&mut file, &mut &stream)
        .with_context(|| format!("{peer}: sending {}", path.display()))?;
    Ok(())
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
