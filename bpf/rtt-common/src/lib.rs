//! Types shared by the RTT eBPF program (`rtt-ebpf`) and its loader in `orch-node`.
//!
//! Everything is `#[repr(C)]` without padding so both sides agree on the bytes of the map
//! entries and of the configuration the loader patches into the program before loading it.
#![no_std]

/// Name of the per-path map (`PathKey` -> `PathRtt`) in the object file.
pub const PATHS_MAP: &str = "PATHS";
/// Name of the read-only global holding the [`Offsets`] of the running kernel.
pub const OFFSETS_GLOBAL: &str = "OFFSETS";
/// Name of the program on `tcp:tcp_probe` (a segment arrives), and of that tracepoint.
pub const ARRIVAL_PROGRAM: &str = "tcp_probe";
/// Name of the program on `sock:sk_data_ready` (its data was queued), and of that tracepoint.
pub const DATA_READY_PROGRAM: &str = "sk_data_ready";
/// Most paths tracked at once; the least recently updated is evicted beyond that (LRU map).
pub const MAX_PATHS: u32 = 4096;
/// `Offsets` field value meaning "this kernel has no such field" (IPv6 built out).
pub const NO_FIELD: u32 = u32::MAX;

/// One network path: local and remote address of TCP sockets, both as IPv6 addresses
/// (IPv4 as IPv4-mapped `::ffff:a.b.c.d`, so dual-stack sockets land on the same path).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PathKey {
    /// Local address (`skc_rcv_saddr` / `skc_v6_rcv_saddr`), network byte order.
    pub saddr: [u8; 16],
    /// Remote address (`skc_daddr` / `skc_v6_daddr`), network byte order.
    pub daddr: [u8; 16],
}

/// The kernel's RTT estimate of the last socket on a path that received a segment: as it was
/// when the segment arrived, then, for a segment with data, after its ACK was processed.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathRtt {
    /// Smoothed RTT, µs: `tcp_sock.srtt_us >> 3`, exactly `tcpi_rtt` (`ss -ti` "rtt:").
    pub srtt_us: u32,
    /// RTT mean deviation, µs: `tcp_sock.mdev_us >> 2`, exactly `tcpi_rttvar`.
    pub rttvar_us: u32,
    /// Segments received on this path since the program was attached.
    pub samples: u64,
}

/// Byte offsets, from the start of `struct tcp_sock` (= `struct sock`), of the fields the
/// programs read. The loader finds them in the running kernel's BTF, so nothing is hard-coded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// `__sk_common.skc_family` (u16).
    pub family: u32,
    /// `__sk_common.skc_daddr` (IPv4, 4 bytes).
    pub daddr: u32,
    /// `__sk_common.skc_rcv_saddr` (IPv4, 4 bytes).
    pub saddr: u32,
    /// `__sk_common.skc_v6_daddr` (16 bytes) or [`NO_FIELD`].
    pub v6_daddr: u32,
    /// `__sk_common.skc_v6_rcv_saddr` (16 bytes) or [`NO_FIELD`].
    pub v6_saddr: u32,
    /// `tcp_sock.srtt_us` (u32, µs << 3).
    pub srtt_us: u32,
    /// `tcp_sock.mdev_us` (u32, µs << 2).
    pub mdev_us: u32,
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` structs of integers and byte arrays without padding.
    unsafe impl aya::Pod for super::PathKey {}
    // SAFETY: as above (u32, u32, u64: no padding).
    unsafe impl aya::Pod for super::PathRtt {}
    // SAFETY: as above (seven u32).
    unsafe impl aya::Pod for super::Offsets {}
}
