//! The sending side: one persistent, paced TCP connection to a peer, re-established after
//! failures.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{sleep, timeout, Instant};

use super::stats::Stats;

/// A connection attempt to a host that does not answer gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The token bucket holds one write plus this much traffic: enough to absorb late timer
/// wake-ups (and rates above one write per timer tick) without losing rate, too little for a
/// catch-up burst after a stall.
const SLACK: Duration = Duration::from_millis(20);

/// What a sender writes: `len` bytes per `period`, evenly spread.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Bytes per write.
    pub len: usize,
    /// Time per write.
    pub period: Duration,
}

/// Token bucket releasing `len`-byte writes at the pace's average rate.
struct Bucket {
    len: f64,
    bytes_per_sec: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket: the first write goes out at once.
    fn new(pace: Pace) -> Self {
        let len = pace.len as f64;
        let bytes_per_sec = len / pace.period.as_secs_f64();
        let capacity = len + bytes_per_sec * SLACK.as_secs_f64();
        Self {
            len,
            bytes_per_sec,
            capacity,
            tokens: len,
            last: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let earned = (now - self.last).as_secs_f64() * self.bytes_per_sec;
        self.tokens = (self.tokens + earned).min(self.capacity);
        self.last = now;
    }

    /// Waits until the next write may go. Cancel-safe: tokens are taken only on return.
    async fn ready(&mut self) {
        self.refill();
        if self.tokens < self.len {
            let wait = (self.len - self.tokens) / self.bytes_per_sec;
            sleep(Duration::from_secs_f64(wait)).await;
            self.refill();
        }
        self.tokens -= self.len;
    }
}

/// Keeps one connection from `bind` to `peer` and writes to it at `pace`, forever; after a
/// failure waits `reconnect` and connects again. Reads and discards what the peer sends.
pub async fn keep_sending(
    bind: IpAddr,
    peer: SocketAddr,
    pace: Pace,
    reconnect: Duration,
    stats: Arc<Stats>,
) {
    let ip = peer.ip();
    let mut had_connection = false;
    let mut failing = false;
    loop {
        match connect(bind, peer).await {
            Ok(stream) => {
                stats.update(ip, |p| {
                    p.connects += 1;
                    p.reconnects += u64::from(had_connection);
                    p.connected = true;
                });
                eprintln!("traffic: {bind} -> {peer}: connected");
                failing = false;
                let why = pump(stream, pace, &stats, ip).await;
                stats.update(ip, |p| {
                    p.connected = false;
                    p.disconnects += 1;
                });
                eprintln!(
                    "traffic: {bind} -> {peer}: connection lost ({why}); reconnecting in {} ms",
                    reconnect.as_millis()
                );
                had_connection = true;
            }
            Err(e) => {
                stats.update(ip, |p| p.connect_errors += 1);
                if !failing {
                    eprintln!(
                        "traffic: {bind} -> {peer}: cannot connect ({e}); retrying every {} ms",
                        reconnect.as_millis()
                    );
                    failing = true;
                }
            }
        }
        sleep(reconnect).await;
    }
}

/// Connects from `bind` (any port) to `peer`, with Nagle off so every write leaves at once.
async fn connect(bind: IpAddr, peer: SocketAddr) -> io::Result<TcpStream> {
    let socket = match bind {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(bind, 0))?;
    let stream = timeout(CONNECT_TIMEOUT, socket.connect(peer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Writes at `pace` and discards what arrives, until the connection fails; returns why.
async fn pump(stream: TcpStream, pace: Pace, stats: &Stats, ip: IpAddr) -> String {
    let (mut rd, mut wr) = stream.into_split();
    let payload = vec![0u8; pace.len];
    let mut incoming = vec![0u8; 64 * 1024];
    let mut bucket = Bucket::new(pace);
    loop {
        tokio::select! {
            () = bucket.ready() => {
                if let Err(e) = wr.write_all(&payload).await {
                    return e.to_string();
                }
                stats.update(ip, |p| p.sent_bytes += pace.len as u64);
            }
            read = rd.read(&mut incoming) => match read {
                Ok(0) => return "closed by the peer".into(),
                Ok(n) => stats.update(ip, |p| p.recv_bytes += n as u64),
                Err(e) => return e.to_string(),
            },
        }
    }
}
