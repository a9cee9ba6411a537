//! `orch-node zk-write`: whether, and from when, one ZooKeeper server serves writes again. It
//! opens a session with that server alone and creates an ephemeral sequential znode, again
//! every `interval` until one succeeds (a server without a quorum refuses sessions, and a
//! write goes through the leader), and prints the host's clock at the success. The znode goes
//! with the session when the tool exits.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use zookeeper_client::{Acls, Client, CreateMode};

/// Where the probes write: ephemeral sequential znodes under the root.
const PROBE: &str = "/orch-write-probe-";

/// Tries to write through `server` (HOST:PORT) until it works or `limit` passes; prints
/// `wrote PATH at N ns after K attempts`.
pub fn run(server: &str, limit: Duration, interval: Duration) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(until_written(server, limit, interval))
}

async fn until_written(server: &str, limit: Duration, interval: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt = tokio::time::timeout(interval.max(Duration::from_millis(500)), write(server));
        let last = match attempt.await {
            Ok(Ok((path, client))) => {
                let ns = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                println!("wrote {path} at {ns} ns after {attempts} attempts");
                drop(client);
                return Ok(());
            }
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => "no answer in time".into(),
        };
        if Instant::now() >= deadline {
            bail!(
                "{server}: no write succeeded within {limit:?} ({attempts} attempts; last: {last})"
            );
        }
        tokio::time::sleep(interval).await;
    }
}

/// One session, one create; the client is kept until the caller has taken the time.
async fn write(server: &str) -> anyhow::Result<(String, Client)> {
    let client = Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(server)
        .await
        .with_context(|| format!("no session with {server}"))?;
    let (_, seq) = client
        .create(
            PROBE,
            b"orch",
            &CreateMode::EphemeralSequential.with_acls(Acls::anyone_all()),
        )
        .await
        .with_context(|| format!("create {PROBE} on {server}"))?;
    Ok((format!("{PROBE}{seq}"), client))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_dead_server_is_reported_with_the_attempts() {
        let err = super::run(
            "127.0.0.1:1",
            Duration::from_millis(300),
            Duration::from_millis(100),
        )
        .unwrap_err();
        let e = format!("{err:#}");
        assert!(
            e.contains("no write succeeded") && e.contains("attempts"),
            "{e}"
        );
    }
}
