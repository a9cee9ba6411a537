//! The receiving side: accept connections from anyone and discard what they send.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::stats::Stats;

/// Listens on `bind:port`. Address reuse lets a restarted process bind again at once while
/// connections of its predecessor linger in TIME_WAIT.
pub fn listen(bind: IpAddr, port: u16) -> Result<TcpListener> {
    let addr = SocketAddr::new(bind, port);
    let socket = match bind {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .and_then(|()| socket.listen(128))
        .with_context(|| {
            format!("cannot listen on {addr}: is --bind an address of this host and the port free?")
        })
}

/// Accepts connections forever, each drained by its own task.
pub async fn accept_all(listener: TcpListener, stats: Arc<Stats>) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                stats.update(from.ip(), |p| {
                    p.accepts += 1;
                    p.inbound += 1;
                });
                tokio::spawn(drain(stream, from.ip(), stats.clone()));
            }
            Err(e) => {
                eprintln!("traffic: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads and counts until the peer closes the connection or it fails.
async fn drain(mut stream: TcpStream, from: IpAddr, stats: Arc<Stats>) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n @ 1..) = stream.read(&mut buf).await {
        stats.update(from, |p| p.recv_bytes += n as u64);
    }
    stats.update(from, |p| p.inbound -= 1);
}
