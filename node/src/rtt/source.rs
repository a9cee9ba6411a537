//! Choosing the RTT source: the eBPF program when it can be loaded and gives exactly what
//! `ss -ti` shows, netlink sock_diag (those numbers) otherwise: without privilege, on a kernel
//! without BTF, or before Linux 6.3 (no `sock:sk_data_ready`, so eBPF would lag).

use std::net::IpAddr;

use anyhow::{Context, Result};

use crate::rtt::ebpf::EbpfRtt;
use crate::rtt::{RttSource, SockDiag};

/// Which RTT source to use (`--source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceKind {
    /// eBPF, falling back to netlink when the program cannot be loaded or the kernel has no
    /// `sock:sk_data_ready` (before 6.3).
    Auto,
    /// The eBPF program only (fail if it cannot be loaded; without `sock:sk_data_ready` it
    /// warns and runs, lagging `ss -ti`).
    Ebpf,
    /// Netlink sock_diag only.
    Netlink,
}

/// An open RTT source and, when `auto` fell back to netlink, why.
pub struct Opened {
    /// The source in use; `source.name()` says which.
    pub source: Box<dyn RttSource>,
    /// Why the eBPF source could not be used (only for [`SourceKind::Auto`]).
    pub fallback: Option<String>,
}

/// Opens the RTT source of `kind` for the TCP paths whose local address is `src`.
pub fn open(kind: SourceKind, src: IpAddr) -> Result<Opened> {
    let netlink = || -> Result<Box<dyn RttSource>> { Ok(Box::new(SockDiag::new(src)?)) };
    let ebpf = |exact: bool| -> Result<Box<dyn RttSource>> {
        Ok(Box::new(EbpfRtt::new(src, exact).context(
            "eBPF RTT source unavailable (--source netlink reads the same numbers via sock_diag)",
        )?))
    };
    Ok(match kind {
        SourceKind::Ebpf => Opened {
            source: ebpf(false)?,
            fallback: None,
        },
        SourceKind::Netlink => Opened {
            source: netlink()?,
            fallback: None,
        },
        SourceKind::Auto => match ebpf(true) {
            Ok(source) => Opened {
                source,
                fallback: None,
            },
            Err(e) => Opened {
                source: netlink()?,
                fallback: Some(format!("{e:#}")),
            },
        },
    })
}
