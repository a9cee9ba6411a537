//! Round-trip-time statistics of the paths from this host to its peers.
//!
//! Latency-aware leader election needs, per destination, the smoothed RTT and its variance
//! (the numbers `ss -ti` shows) and a history of samples. [`RttSource`] abstracts where they
//! come from so an eBPF source can replace the netlink one without touching the consumers.
//!
//! - this module: the samples, their history, the [`RttSource`] trait and [`SockDiag`] (netlink
//!   `sock_diag`, the fallback);
//! - [`ebpf`]: the aya eBPF source (`tp_btf` programs, field offsets from BTF in `ebpf/btf.rs`);
//! - [`source`]: picks one (`--source auto|ebpf|netlink`) and logs why it fell back;
//! - [`cmd`]: `orch-node rtt`, the live table.

pub mod cmd;
pub mod ebpf;
pub mod source;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use anyhow::{bail, Context, Result};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{
    nlas::Nla, ExtensionFlags, InetRequest, SocketId, StateFlags,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

/// How many samples are kept per destination, as in the prototype.
pub const HISTORY_LEN: usize = 1000;

/// One observation of a path: smoothed RTT and RTT variance, microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttSample {
    /// Smoothed round-trip time, µs.
    pub srtt_us: f64,
    /// Round-trip time variance (mean deviation), µs.
    pub rttvar_us: f64,
}

/// The last [`HISTORY_LEN`] samples of one (source, destination) path.
#[derive(Debug, Clone, Default)]
pub struct RttHistory {
    samples: VecDeque<RttSample>,
}

impl RttHistory {
    /// Appends a sample, forgetting the oldest beyond [`HISTORY_LEN`].
    pub fn push(&mut self, sample: RttSample) {
        if self.samples.len() == HISTORY_LEN {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The most recent sample.
    pub fn latest(&self) -> Option<RttSample> {
        self.samples.back().copied()
    }

    /// Whether no sample was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The srtt samples, oldest first, in milliseconds.
    pub fn srtt_ms(&self) -> impl Iterator<Item = f64> + Clone + '_ {
        self.samples.iter().map(|s| s.srtt_us / 1000.0)
    }

    /// Mean srtt over the history, milliseconds.
    pub fn mean_srtt_ms(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        Some(self.srtt_ms().sum::<f64>() / self.samples.len() as f64)
    }
}

/// RFC 6298 smoothing of single round-trip measurements (UDP probes), kept as a history.
#[derive(Debug, Clone, Default)]
pub struct Smoothed {
    history: RttHistory,
}

impl Smoothed {
    /// Folds one measured round trip (µs) into srtt/rttvar and records the result.
    pub fn observe(&mut self, rtt_us: f64) {
        let next = match self.history.latest() {
            None => RttSample {
                srtt_us: rtt_us,
                rttvar_us: rtt_us / 2.0,
            },
            Some(prev) => RttSample {
                rttvar_us: 0.75 * prev.rttvar_us + 0.25 * (prev.srtt_us - rtt_us).abs(),
                srtt_us: 0.875 * prev.srtt_us + 0.125 * rtt_us,
            },
        };
        self.history.push(next);
    }

    /// The smoothed samples so far.
    pub fn history(&self) -> &RttHistory {
        &self.history
    }
}

/// A provider of per-destination RTT statistics for one source address.
pub trait RttSource {
    /// Short name recorded in events (`tcp`, later `ebpf`).
    fn name(&self) -> &'static str;
    /// Takes a new round of samples; called periodically.
    fn refresh(&mut self) -> Result<()>;
    /// Samples of the path to `dst`, if any were seen.
    fn history(&self, dst: IpAddr) -> Option<&RttHistory>;
    /// Destinations with at least one sample, in no particular order.
    fn destinations(&self) -> Vec<IpAddr>;
}

/// Byte offsets of `rtt` and `rttvar` (u32, µs) in the kernel's `struct tcp_info` (uapi ABI).
const TCP_INFO_RTT: usize = 68;
const TCP_INFO_RTTVAR: usize = 72;

/// Reads `tcp_info` of established TCP sockets bound to one address via netlink sock_diag.
pub struct SockDiag {
    src: IpAddr,
    socket: Socket,
    paths: HashMap<IpAddr, RttHistory>,
}

impl SockDiag {
    /// Opens a NETLINK_SOCK_DIAG socket that reports sockets whose local address is `src`.
    pub fn new(src: IpAddr) -> Result<Self> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)
            .context("cannot open a NETLINK_SOCK_DIAG socket (is this Linux?)")?;
        socket
            .bind_auto()
            .context("cannot bind the sock_diag netlink socket")?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .context("cannot connect the sock_diag netlink socket to the kernel")?;
        Ok(Self {
            src,
            socket,
            paths: HashMap::new(),
        })
    }

    /// One dump: (destination, srtt µs, rttvar µs) of every established socket from `src`.
    fn dump(&self) -> Result<Vec<(IpAddr, u32, u32)>> {
        let family = if self.src.is_ipv4() {
            AF_INET
        } else {
            AF_INET6
        };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        let mut request = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::INFO,
                states: StateFlags::ESTABLISHED,
                socket_id: if self.src.is_ipv4() {
                    SocketId::new_v4()
                } else {
                    SocketId::new_v6()
                },
            })
            .into(),
        );
        request.finalize();
        let mut buf = vec![0; request.buffer_len()];
        request.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .context("cannot send the sock_diag dump request")?;

        let mut found = Vec::new();
        loop {
            let (data, _) = self
                .socket
                .recv_from_full()
                .context("cannot read the sock_diag dump")?;
            let mut offset = 0;
            while offset < data.len() {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&data[offset..])
                    .context("malformed sock_diag reply from the kernel")?;
                let len = msg.header.length as usize;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(found),
                    NetlinkPayload::Error(e) => bail!("sock_diag dump failed: {e:?}"),
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(resp)) => {
                        let id = &resp.header.socket_id;
                        if id.source_address != self.src {
                            continue_offset(&mut offset, len, data.len());
                            continue;
                        }
                        let info = resp.nlas.iter().find_map(|nla| match nla {
                            Nla::TcpInfo(bytes) => Some(bytes),
                            _ => None,
                        });
                        if let Some((rtt, rttvar)) = info.and_then(|b| tcp_info_rtt(b)) {
                            if rtt > 0 {
                                found.push((id.destination_address, rtt, rttvar));
                            }
                        }
                    }
                    _ => {}
                }
                continue_offset(&mut offset, len, data.len());
            }
        }
    }
}

/// Advances past one netlink message; a zero length would loop forever, so it ends the buffer.
fn continue_offset(offset: &mut usize, len: usize, total: usize) {
    *offset = if len == 0 { total } else { *offset + len };
}

/// Extracts (rtt, rttvar) in µs from raw `tcp_info` bytes.
fn tcp_info_rtt(bytes: &[u8]) -> Option<(u32, u32)> {
    let field = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    Some((field(TCP_INFO_RTT)?, field(TCP_INFO_RTTVAR)?))
}

impl RttSource for SockDiag {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn destinations(&self) -> Vec<IpAddr> {
        self.paths
            .iter()
            .filter(|(_, h)| !h.is_empty())
            .map(|(dst, _)| *dst)
            .collect()
    }

    /// Adds one sample per destination: the mean over its established sockets.
    fn refresh(&mut self) -> Result<()> {
        let mut per_dst: HashMap<IpAddr, (f64, f64, u32)> = HashMap::new();
        for (dst, rtt, rttvar) in self.dump()? {
            let e = per_dst.entry(dst).or_default();
            e.0 += f64::from(rtt);
            e.1 += f64::from(rttvar);
            e.2 += 1;
        }
        for (dst, (rtt, rttvar, n)) in per_dst {
            let n = f64::from(n);
            self.paths.entry(dst).or_default().push(RttSample {
                srtt_us: rtt / n,
                rttvar_us: rttvar / n,
            });
        }
        Ok(())
    }

    fn history(&self, dst: IpAddr) -> Option<&RttHistory> {
        self.paths.get(&dst).filter(|h| !h.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn history_keeps_the_last_thousand_samples() {
        let mut h = RttHistory::default();
        for i in 0..1500 {
            h.push(RttSample {
                srtt_us: f64::from(i) * 1000.0,
                rttvar_us: 1.0,
            });
        }
        assert_eq!(h.srtt_ms().count(), HISTORY_LEN);
        assert_eq!(h.srtt_ms().next(), Some(500.0));
        assert_eq!(h.latest().unwrap().srtt_us, 1_499_000.0);
        assert_eq!(h.mean_srtt_ms(), Some(999.5));
    }

    #[test]
    fn smoothing_follows_rfc6298() {
        let mut s = Smoothed::default();
        s.observe(8000.0);
        assert_eq!(
            s.history().latest(),
            Some(RttSample {
                srtt_us: 8000.0,
                rttvar_us: 4000.0
            })
        );
        s.observe(16000.0);
        assert_eq!(
            s.history().latest(),
            Some(RttSample {
                srtt_us: 9000.0,
                rttvar_us: 5000.0
            })
        );
        assert_eq!(s.history().srtt_ms().count(), 2);
    }

    #[test]
    fn tcp_info_offsets_need_enough_bytes() {
        let mut b = vec![0u8; 76];
        b[68..72].copy_from_slice(&1234u32.to_ne_bytes());
        b[72..76].copy_from_slice(&56u32.to_ne_bytes());
        assert_eq!(tcp_info_rtt(&b), Some((1234, 56)));
        assert_eq!(tcp_info_rtt(&b[..75]), None);
    }

    /// A real loopback TCP connection from 127.0.0.9 shows up with a plausible srtt.
    #[tokio::test]
    async fn sock_diag_sees_an_established_loopback_connection() {
        let src: IpAddr = "127.0.0.9".parse().unwrap();
        let listener = TcpListener::bind("127.0.0.10:0").unwrap();
        let dst = listener.local_addr().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(src, 0)).unwrap();
        let client = socket.connect(dst).await.unwrap().into_std().unwrap();
        client.set_nonblocking(false).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let mut client: TcpStream = client;
        for _ in 0..20 {
            let mut b = [0u8; 4];
            client.write_all(b"ping").unwrap();
            server.read_exact(&mut b).unwrap();
            server.write_all(b"pong").unwrap();
            client.read_exact(&mut b).unwrap();
        }
        let mut diag = SockDiag::new(src).unwrap();
        diag.refresh().unwrap();
        let h = diag.history(dst.ip()).expect("a sample for 127.0.0.10");
        let s = h.latest().unwrap();
        assert!(s.srtt_us > 0.0 && s.srtt_us < 1_000_000.0, "{s:?}");
        assert!(diag.history("127.0.0.11".parse().unwrap()).is_none());
    }
}
