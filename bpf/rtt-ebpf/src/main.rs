//! Records, per TCP path (local address, remote address), the kernel's own RTT estimate
//! (`srtt_us`, `mdev_us` of `struct tcp_sock`) from two BTF-enabled tracepoints (tp_btf):
//! `tcp:tcp_probe`, at the top of `tcp_rcv_established`, for every segment an established socket
//! receives (before the segment is processed), and `sock:sk_data_ready`, after a segment's ACK was
//! processed and its data queued, so that for data segments the entry includes the RTT sample
//! the segment carried. The field offsets come from the loader, which reads them from the
//! running kernel's BTF (see `OFFSETS`), so no kernel layout is compiled in.
#![no_std]
#![no_main]

use core::ffi::c_void;

use aya_ebpf::helpers::bpf_skc_to_tcp_sock;
use aya_ebpf::macros::{btf_tracepoint, map};
use aya_ebpf::maps::LruHashMap;
use aya_ebpf::programs::BtfTracePointContext;
use aya_ebpf::Global;
use rtt_common::{Offsets, PathKey, PathRtt, MAX_PATHS, NO_FIELD};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Latest estimate per path; user space reads (and never writes) it.
#[map]
static PATHS: LruHashMap<PathKey, PathRtt> = LruHashMap::with_max_entries(MAX_PATHS, 0);

/// Field offsets of the running kernel, patched in by the loader before the program is loaded
/// (read-only data). Left at `NO_FIELD`, the verifier rejects the programs.
#[unsafe(no_mangle)]
static OFFSETS: Global<Offsets> = Global::new(Offsets {
    family: NO_FIELD,
    daddr: NO_FIELD,
    saddr: NO_FIELD,
    v6_daddr: NO_FIELD,
    v6_saddr: NO_FIELD,
    srtt_us: NO_FIELD,
    mdev_us: NO_FIELD,
});

/// The kernel only lets GPL-compatible programs attach to tracepoints.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// `tcp_probe(const struct sock *sk, const struct sk_buff *skb)`.
#[btf_tracepoint(function = "tcp_probe")]
pub fn tcp_probe(ctx: BtfTracePointContext) -> i32 {
    record(ctx.arg(0), Event::Arrival);
    0
}

/// `sk_data_ready(const struct sock *sk)`, for any socket type.
#[btf_tracepoint(function = "sk_data_ready")]
pub fn sk_data_ready(ctx: BtfTracePointContext) -> i32 {
    record(ctx.arg(0), Event::DataReady);
    0
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Event {
    /// A segment arrived on an established TCP socket: counted, may create the path.
    Arrival,
    /// Data was queued on some socket: only refreshes a TCP path already known.
    DataReady,
}

/// Reads through `sk` are plain loads the verifier checks against the kernel's BTF: the offsets
/// are constants to it (frozen read-only data), so a wrong offset fails the load instead of
/// reading garbage, and no helper call is paid per field.
#[inline(always)]
fn record(sk: *const u8, event: Event) {
    // SAFETY: the helper accepts any socket pointer and returns null unless it is a full TCP
    // socket, so `sk_data_ready` of other sockets stops here.
    let tp = unsafe { bpf_skc_to_tcp_sock(sk as *mut c_void) } as *const u8;
    if tp.is_null() {
        return;
    }
    let off = OFFSETS.load();
    let srtt: u32 = field(tp, off.srtt_us);
    if srtt == 0 {
        // No RTT measured on this socket yet.
        return;
    }
    let key = match field::<u16>(sk, off.family) {
        AF_INET => PathKey {
            saddr: v4_mapped(field(sk, off.saddr)),
            daddr: v4_mapped(field(sk, off.daddr)),
        },
        AF_INET6 if off.v6_daddr != NO_FIELD => PathKey {
            saddr: v6(sk, off.v6_saddr),
            daddr: v6(sk, off.v6_daddr),
        },
        _ => return,
    };
    let (srtt_us, rttvar_us) = (srtt >> 3, field::<u32>(tp, off.mdev_us) >> 2);
    match PATHS.get_ptr_mut(key) {
        // SAFETY: the pointer is the map's value slot for `key`; a concurrent update on another
        // CPU can at worst lose one `samples` increment or mix two sockets of the path.
        Some(v) => unsafe {
            (*v).srtt_us = srtt_us;
            (*v).rttvar_us = rttvar_us;
            if event == Event::Arrival {
                (*v).samples += 1;
            }
        },
        None if event == Event::Arrival => {
            let first = PathRtt {
                srtt_us,
                rttvar_us,
                samples: 1,
            };
            // A full map (LRU) evicts the stalest path, so insertion only fails on races.
            let _ = PATHS.insert(key, first, 0);
        }
        None => {}
    }
}

/// The `T` at `offset` bytes into a BTF-typed kernel object.
#[inline(always)]
fn field<T: Copy>(object: *const u8, offset: u32) -> T {
    // SAFETY: the verifier only accepts the load if `offset` and `size_of::<T>()` match a member
    // of the object's BTF type; a fault while loading reads as zero (BPF_PROBE_MEM).
    unsafe { object.wrapping_add(offset as usize).cast::<T>().read() }
}

/// A 16-byte IPv6 address at `offset`, loaded as four words (no memcpy in BPF).
#[inline(always)]
fn v6(sk: *const u8, offset: u32) -> [u8; 16] {
    let words: [u32; 4] = [
        field(sk, offset),
        field(sk, offset + 4),
        field(sk, offset + 8),
        field(sk, offset + 12),
    ];
    // SAFETY: [u32; 4] and [u8; 16] have the same size and no invalid bit patterns.
    unsafe { core::mem::transmute(words) }
}

/// `a.b.c.d` (as loaded, network byte order) as `::ffff:a.b.c.d`.
#[inline(always)]
fn v4_mapped(addr: u32) -> [u8; 16] {
    let words: [u32; 4] = [0, 0, u32::from_ne_bytes([0, 0, 0xff, 0xff]), addr];
    // SAFETY: as in `v6`.
    unsafe { core::mem::transmute(words) }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
