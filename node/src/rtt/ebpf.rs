//! The eBPF RTT source: the kernel's own srtt and rttvar per TCP path, recorded by the programs
//! in `bpf/rtt-ebpf` at the BTF-enabled tracepoints `tcp:tcp_probe` and `sock:sk_data_ready`
//! (no kprobes needed). docs/rtt.md explains the choice and how struct offsets are found.

mod btf;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

use anyhow::{ensure, Context, Result};
use aya::maps::{HashMap as BpfHashMap, MapData, MapError};
use aya::programs::BtfTracePoint;
use aya::{include_bytes_aligned, Ebpf, EbpfLoader};
use rtt_common::{
    Offsets, PathKey, PathRtt, ARRIVAL_PROGRAM, DATA_READY_PROGRAM, NO_FIELD, OFFSETS_GLOBAL,
    PATHS_MAP,
};

use crate::rtt::{RttHistory, RttSample, RttSource};
use btf::Btf;

/// Where the running kernel describes its types.
const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The program object, built from bpf/rtt-ebpf by build.rs.
static OBJECT: &[u8] = include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rtt-ebpf.o"));

/// The kernel's latest estimate for one path (local address -> remote address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStat {
    /// Local address of the sockets.
    pub src: IpAddr,
    /// Remote address.
    pub dst: IpAddr,
    /// Smoothed RTT, µs (`ss -ti` "rtt:" first number, in µs).
    pub srtt_us: u32,
    /// RTT mean deviation, µs (`ss -ti` "rtt:" second number).
    pub rttvar_us: u32,
    /// Segments received on the path since the program was attached.
    pub samples: u64,
}

/// The RTT programs, loaded and attached; the kernel detaches them when this is dropped.
pub struct Probe {
    ebpf: Ebpf,
}

impl Probe {
    /// Reads the struct offsets from the kernel's BTF, loads the programs with them and
    /// attaches them. Fails when the kernel has no BTF or no `tcp_probe`, or without privilege.
    /// Without `sk_data_ready` (before Linux 6.3) entries are updated only when a segment
    /// arrives, before it is processed, so they lag what `ss -ti` shows (on 6.1, by far more
    /// than one sample: docs/kernel-tier.md). Then it fails if `exact`, and otherwise says so
    /// on stderr and carries on.
    pub fn attach(exact: bool) -> Result<Self> {
        let raw = std::fs::read(KERNEL_BTF).with_context(|| {
            format!("cannot read {KERNEL_BTF}: the eBPF RTT source needs a kernel with BTF (CONFIG_DEBUG_INFO_BTF)")
        })?;
        let offsets = kernel_offsets(&Btf::parse(&raw).context("cannot parse the kernel's BTF")?)?;
        let mut ebpf = EbpfLoader::new()
            .override_global(OFFSETS_GLOBAL, &offsets, true)
            .load(OBJECT)
            .context(
                "cannot load the eBPF RTT program (run as root, or with CAP_BPF and CAP_PERFMON)",
            )?;
        let kernel = aya::Btf::from_sys_fs().context("cannot read the kernel's BTF")?;
        attach_tracepoint(&mut ebpf, ARRIVAL_PROGRAM, &kernel)?;
        if let Err(e) = attach_tracepoint(&mut ebpf, DATA_READY_PROGRAM, &kernel) {
            if exact {
                return Err(e.context(
                    "no sock:sk_data_ready tracepoint (Linux 6.3+): eBPF values would lag `ss -ti`",
                ));
            }
            eprintln!(
                "rtt: eBPF without sock:sk_data_ready ({e:#}): values lag `ss -ti` (they are read before each segment is processed)"
            );
        }
        Ok(Self { ebpf })
    }

    /// Every path the programs have seen, with its latest estimate.
    pub fn paths(&self) -> Result<Vec<PathStat>> {
        let map = self
            .ebpf
            .map(PATHS_MAP)
            .context("the embedded eBPF object has no paths map")?;
        let map: BpfHashMap<&MapData, PathKey, PathRtt> = BpfHashMap::try_from(map)?;
        let mut paths = Vec::new();
        for entry in map.iter() {
            match entry {
                Ok((key, rtt)) => paths.push(PathStat {
                    src: address(key.saddr),
                    dst: address(key.daddr),
                    srtt_us: rtt.srtt_us,
                    rttvar_us: rtt.rttvar_us,
                    samples: rtt.samples,
                }),
                // Evicted (LRU) between listing the key and reading it.
                Err(MapError::KeyNotFound) => {}
                Err(e) => return Err(e).context("cannot read the eBPF RTT map"),
            }
        }
        Ok(paths)
    }
}

/// Loads and attaches the program named after the BTF tracepoint `name`.
fn attach_tracepoint(ebpf: &mut Ebpf, name: &str, kernel: &aya::Btf) -> Result<()> {
    let program: &mut BtfTracePoint = ebpf
        .program_mut(name)
        .with_context(|| format!("the embedded eBPF object has no program {name}"))?
        .try_into()?;
    program.load(name, kernel).with_context(|| {
        format!(
            "the kernel refused the eBPF program for tracepoint {name} (needs tp_btf, Linux 5.5+)"
        )
    })?;
    program
        .attach()
        .with_context(|| format!("cannot attach the eBPF program to tracepoint {name}"))?;
    Ok(())
}

/// Offsets, from the start of the socket, of the fields the programs read.
fn kernel_offsets(btf: &Btf) -> Result<Offsets> {
    // The programs get a `struct sock *` and read `tcp_sock` fields through it.
    let sock_in_tcp_sock = btf.member_offset("tcp_sock", &["inet_conn", "icsk_inet", "sk"])?;
    ensure!(
        sock_in_tcp_sock == 0,
        "struct sock is not at the start of struct tcp_sock in this kernel"
    );
    let common = |field: &str| btf.member_offset("sock", &["__sk_common", field]);
    // Kernels built without IPv6 have neither field; the program then skips IPv6 sockets.
    let (v6_daddr, v6_saddr) = match (common("skc_v6_daddr"), common("skc_v6_rcv_saddr")) {
        (Ok(d), Ok(s)) => (d, s),
        _ => (NO_FIELD, NO_FIELD),
    };
    Ok(Offsets {
        family: common("skc_family")?,
        daddr: common("skc_daddr")?,
        saddr: common("skc_rcv_saddr")?,
        v6_daddr,
        v6_saddr,
        srtt_us: btf.member_offset("tcp_sock", &["srtt_us"])?,
        mdev_us: btf.member_offset("tcp_sock", &["mdev_us"])?,
    })
}

/// A map address (IPv6, IPv4 mapped) as the caller knows it: IPv4 for IPv4.
fn address(bytes: [u8; 16]) -> IpAddr {
    Ipv6Addr::from(bytes).to_canonical()
}

/// [`RttSource`] over the eBPF program, for the paths from one local address.
pub struct EbpfRtt {
    probe: Probe,
    src: IpAddr,
    /// Kernel sample count per destination at the last refresh.
    seen: HashMap<IpAddr, u64>,
    paths: HashMap<IpAddr, RttHistory>,
}

impl EbpfRtt {
    /// Attaches the program (see [`Probe::attach`], `exact` as there) and follows paths whose
    /// local address is `src`.
    pub fn new(src: IpAddr, exact: bool) -> Result<Self> {
        Ok(Self {
            probe: Probe::attach(exact)?,
            src: src.to_canonical(),
            seen: HashMap::new(),
            paths: HashMap::new(),
        })
    }
}

impl RttSource for EbpfRtt {
    fn name(&self) -> &'static str {
        "ebpf"
    }

    /// Adds one sample per destination whose path processed segments since the last refresh,
    /// so idle paths do not fill the history with repeats.
    fn refresh(&mut self) -> Result<()> {
        for p in self.probe.paths()? {
            if p.src != self.src || self.seen.insert(p.dst, p.samples) == Some(p.samples) {
                continue;
            }
            self.paths.entry(p.dst).or_default().push(RttSample {
                srtt_us: f64::from(p.srtt_us),
                rttvar_us: f64::from(p.rttvar_us),
            });
        }
        Ok(())
    }

    fn history(&self, dst: IpAddr) -> Option<&RttHistory> {
        self.paths.get(&dst.to_canonical())
    }

    fn destinations(&self) -> Vec<IpAddr> {
        self.paths.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_addresses_are_shown_as_the_socket_family() {
        let mut v4 = [0u8; 16];
        v4[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 21]);
        assert_eq!(address(v4), "127.0.0.21".parse::<IpAddr>().unwrap());
        let v6: Ipv6Addr = "fd00::1".parse().unwrap();
        assert_eq!(address(v6.octets()), IpAddr::V6(v6));
    }

    #[test]
    fn offsets_come_from_the_running_kernel() {
        let Ok(raw) = std::fs::read(KERNEL_BTF) else {
            return;
        };
        let o = kernel_offsets(&Btf::parse(&raw).unwrap()).unwrap();
        assert_ne!(o.v6_daddr, NO_FIELD);
        assert!(o.srtt_us > o.v6_saddr && o.mdev_us > o.v6_saddr, "{o:?}");
    }
}
