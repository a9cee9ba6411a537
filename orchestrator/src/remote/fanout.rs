//! Running the same work on many hosts in parallel, bounded, with progress.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

use super::{Conn, RemoteError};
use crate::inventory::Host;
use crate::output::Progress;

/// The outcome of the work on one host.
pub struct HostResult<T> {
    pub host: String,
    pub elapsed: Duration,
    pub result: Result<T, RemoteError>,
}

/// Connects to every host (at most `parallel` at a time) and runs `work` on each connection.
///
/// Results come back in inventory order. A host that cannot be reached yields
/// [`RemoteError::Unreachable`] while the others carry on.
pub async fn each<T, F, Fut>(
    hosts: &[&Host],
    parallel: usize,
    progress: &Progress,
    work: F,
) -> Vec<HostResult<T>>
where
    F: Fn(Conn) -> Fut,
    Fut: Future<Output = Result<T, RemoteError>>,
{
    let work = &work;
    let mut results: Vec<(usize, HostResult<T>)> = stream::iter(hosts.iter().enumerate())
        .map(|(i, host)| async move {
            let started = Instant::now();
            let result = match Conn::open(host).await {
                Ok(conn) => work(conn).await,
                Err(e) => Err(e),
            };
            progress.tick(&host.name);
            let r = HostResult {
                host: host.name.clone(),
                elapsed: started.elapsed(),
                result,
            };
            (i, r)
        })
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
