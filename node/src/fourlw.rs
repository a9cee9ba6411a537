//! ZooKeeper's four-letter-word commands (`srvr`, `ruok`, `mntr`, `stat`), asked from the host
//! itself: the experiment network is often unreachable from the controller, and hosts may have
//! neither `nc` nor bash's `/dev/tcp`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};

/// Sends `word` to the server at `addr` and returns its whole answer.
pub fn ask(addr: &str, word: &str, timeout: Duration) -> anyhow::Result<String> {
    if !matches!(
        word,
        "srvr" | "ruok" | "mntr" | "stat" | "conf" | "envi" | "isro"
    ) {
        bail!("`{word}`: orch asks only srvr, ruok, mntr, stat, conf, envi or isro");
    }
    let target: SocketAddr = addr
        .to_socket_addrs()
        .with_context(|| format!("`{addr}` is not HOST:PORT"))?
        .next()
        .with_context(|| format!("`{addr}` resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .with_context(|| format!("cannot connect to ZooKeeper at {target}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .with_context(|| format!("no complete answer to `{word}` from {target}"))?;
    if answer.contains("is not executed because it is not in the whitelist") {
        bail!("{target}: `{word}` is not in 4lw.commands.whitelist of its zoo.cfg");
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn sends_the_word_and_reads_to_the_end() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut word = [0u8; 4];
            s.read_exact(&mut word).unwrap();
            assert_eq!(&word, b"srvr");
            s.write_all(b"Zookeeper version: 3.8.0\nMode: leader\n")
                .unwrap();
        });
        let answer = ask(&addr, "srvr", Duration::from_secs(2)).unwrap();
        assert!(answer.contains("Mode: leader"));
        server.join().unwrap();
    }

    #[test]
    fn refuses_unknown_words_and_dead_servers() {
        assert!(ask("127.0.0.1:1", "kill", Duration::from_secs(1)).is_err());
        let err = ask("127.0.0.1:1", "ruok", Duration::from_millis(500)).unwrap_err();
        assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
    }
}
