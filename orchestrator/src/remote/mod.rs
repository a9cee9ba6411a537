//! The remote layer: SSH connections to hosts and running work on many hosts at once.

mod fanout;
pub mod quote;
mod session;

pub use fanout::{each, HostResult};
pub use session::{Cmd, Conn, Dialogue, Output, Stream};

use std::time::Duration;

/// Why work on a host did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No SSH connection could be made.
    #[error("{host}: unreachable: {reason}")]
    Unreachable { host: String, reason: String },
    /// A command could not be started or its connection broke.
    #[error("{host}: `{command}` failed: {reason}")]
    Command {
        host: String,
        command: String,
        reason: String,
    },
    /// A command ran past its time limit and was killed.
    #[error("{host}: `{command}` timed out after {:.1} s", after.as_secs_f64())]
    Timeout {
        host: String,
        command: String,
        after: Duration,
    },
}
