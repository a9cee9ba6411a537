//! `orch-node delay`: a user-space stand-in for netem, for kernels built without `sch_netem`.
//!
//! It owns an nftables table (one per address family) whose rules send packets leaving this host
//! for the listed destinations to NFQUEUE, holds each packet until its drawn delay has passed and
//! then accepts it (or drops it, with the rule's loss probability). The table is created with the
//! `owner` flag and the queue rules with `bypass`, so if the process dies in any way the kernel
//! deletes the table and nothing stays delayed or blocked. See docs/delay.md.

mod hold;
mod nft;
mod nl;
mod queue;
mod rules;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::RngExt;
use serde_json::json;

use hold::{Counters, Hold};
use nl::{Batch, Socket};
use orch_common::delay::{Family, Rule, RuleFile, Shown};
use queue::{Packet, Verdict};

/// Receive buffer of the queue socket: room for bursts while we are busy releasing.
const RECEIVE_BUFFER: i32 = 16 << 20;
/// The most wake-up lateness the release loop compensates for: beyond it the host is
/// overloaded and waking earlier would only burn CPU.
const MAX_LATENESS_NS: f64 = 300_000.0;
/// Verdicts are sent in bursts of at most this many bytes.
const SEND_BURST: usize = 48 << 10;

static STOP: AtomicBool = AtomicBool::new(false);
static REPORT: AtomicBool = AtomicBool::new(false);

/// Runs the emulator for the rule file until SIGTERM/SIGINT, or with `show` prints what the
/// kernel has installed for it (JSON) and exits.
pub fn run(path: &Path, show: bool) -> Result<()> {
    let file = rules::load(path)?;
    if show {
        return print_installed(&file);
    }
    let ppoll_mask = block_signals().context("setting up signal handling")?;
    let mut emulator = Emulator::start(file)?;
    emulator.serve(&ppoll_mask)?;
    emulator.stop()
}

/// Prints the tables of `file` as the kernel reports them back.
fn print_installed(file: &RuleFile) -> Result<()> {
    let sock = Socket::open().context("opening a netfilter netlink socket")?;
    sock.set_receive_timeout(Duration::from_secs(2))?;
    let mut installed = Vec::new();
    for family in [Family::Ip, Family::Ip6] {
        let table = nft::show(&sock, family, &file.table)
            .with_context(|| format!("reading table {} {}", family.name(), file.table))?;
        installed.extend(table);
    }
    let shown = Shown {
        table: file.table.clone(),
        installed,
    };
    println!("{}", serde_json::to_string(&shown)?);
    Ok(())
}

struct Emulator {
    file: RuleFile,
    families: Vec<Family>,
    /// Owns the tables: they live exactly as long as this socket.
    nft: Socket,
    queue: Socket,
    hold: Hold,
    counters: Vec<Counters>,
    rng: StdRng,
    out: Batch,
    epoch: Instant,
}

impl Emulator {
    /// Binds the queues first, then installs the tables, so a packet never finds a rule
    /// without a listener (it would pass undelayed thanks to `bypass`, but needlessly).
    fn start(file: RuleFile) -> Result<Emulator> {
        // SAFETY: prctl with an integer argument; 1 ns slack makes timed waits wake on time.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        if file.realtime_priority > 0 {
            if let Err(e) = realtime(file.realtime_priority) {
                eprintln!(
                    "running without realtime priority ({e}): releases may be late on a busy host"
                );
            }
        }
        let queue = Socket::open().context("opening the NFQUEUE netlink socket")?;
        queue
            .set_option(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RECEIVE_BUFFER)
            .or_else(|_| queue.set_option(libc::SOL_SOCKET, libc::SO_RCVBUF, RECEIVE_BUFFER))
            .context("sizing the NFQUEUE socket buffer")?;
        queue
            .set_option(libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, 1)
            .context("setting NETLINK_NO_ENOBUFS")?;
        queue.set_receive_timeout(Duration::from_secs(2))?;
        let count = file.rules.len() as u16;
        queue::bind(&queue, file.queue, count, file.limit).with_context(|| {
            format!(
                "binding NFQUEUE {}..{} (another emulator on this host?)",
                file.queue,
                file.queue + count - 1
            )
        })?;

        let nft = Socket::open().context("opening the nftables netlink socket")?;
        nft.set_receive_timeout(Duration::from_secs(2))?;
        let mut families = Vec::new();
        for family in [Family::Ip, Family::Ip6] {
            let rules: Vec<(u16, &Rule)> = file
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| Family::of(&r.dst) == family)
                .map(|(i, r)| (file.queue + i as u16, r))
                .collect();
            if rules.is_empty() {
                continue;
            }
            nft::install(&nft, family, &file.table, &rules).with_context(|| {
                format!(
                    "installing nftables table {} {} (needs root, kernel >= 5.12, nft_compat and the NFQUEUE target)",
                    family.name(), file.table
                )
            })?;
            families.push(family);
        }
        eprintln!(
            "{}",
            json!({
                "event": "ready",
                "pid": std::process::id(),
                "table": file.table,
                "families": families,
                "first_queue": file.queue,
                "rules": file.rules,
            })
        );
        Ok(Emulator {
            counters: file.rules.iter().map(|_| Counters::default()).collect(),
            file,
            families,
            nft,
            queue,
            hold: Hold::default(),
            rng: rand::make_rng(),
            out: Batch::new(),
            epoch: Instant::now(),
        })
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Receives, holds and releases packets until asked to stop.
    ///
    /// A timed sleep ends some tens of microseconds late (timer and scheduler latency, more in a
    /// VM). The loop learns that lateness (a moving average over timed wake-ups) and asks to
    /// be woken that much before the next release, then waits out the rest by polling, so
    /// releases are on time on average without spinning through the whole delay.
    fn serve(&mut self, ppoll_mask: &libc::sigset_t) -> Result<()> {
        let mut buf = vec![0u8; 1 << 16];
        let stats_every = Duration::from_secs(self.file.stats_secs);
        let mut next_stats = Instant::now() + stats_every;
        let mut lateness_ns = 0.0_f64;
        while !STOP.load(Ordering::Relaxed) {
            self.release_due()?;
            self.receive(&mut buf)?;
            self.flush()?;
            if REPORT.swap(false, Ordering::Relaxed)
                || (self.file.stats_secs > 0 && Instant::now() >= next_stats)
            {
                self.print_stats("stats");
                next_stats = Instant::now() + stats_every;
            }
            let mut wait = Duration::from_secs(1);
            if self.file.stats_secs > 0 {
                wait = wait.min(next_stats.saturating_duration_since(Instant::now()));
            }
            let now = self.now_ns();
            let mut wake_at = None;
            if let Some(at) = self.hold.next_release() {
                let early = at.saturating_sub(lateness_ns as u64);
                wait = wait.min(Duration::from_nanos(early.saturating_sub(now)));
                if early > now {
                    wake_at = Some(early);
                }
            }
            let timed_out = wait_readable(&self.queue, wait, ppoll_mask)?;
            if let (true, Some(target)) = (timed_out, wake_at) {
                let late = self.now_ns().saturating_sub(target) as f64;
                lateness_ns = (lateness_ns * 15.0 + late.min(MAX_LATENESS_NS)) / 16.0;
            }
        }
        Ok(())
    }

    /// Reads every packet notice queued on the socket.
    fn receive(&mut self, buf: &mut [u8]) -> Result<()> {
        loop {
            let n = match self.queue.recv(buf, false) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e).context("receiving from NFQUEUE"),
            };
            let now = self.now_ns();
            for packet in queue::packets(&buf[..n]) {
                self.arrived(packet, now);
            }
            if self.out.len() >= SEND_BURST {
                self.flush()?;
            }
        }
    }

    /// Decides a new packet's fate: drop, or hold until now + a drawn delay.
    fn arrived(&mut self, packet: Packet, now: u64) {
        let Some(index) = packet.queue.checked_sub(self.file.queue).map(usize::from) else {
            return;
        };
        let Some(rule) = self.file.rules.get(index) else {
            return;
        };
        if rule.loss_pct > 0.0 && self.rng.random::<f64>() * 100.0 < rule.loss_pct {
            self.counters[index].dropped += 1;
            queue::verdict(&mut self.out, packet, Verdict::Drop);
            return;
        }
        let delay = orch_common::dist::sample_ns(
            rule.distribution,
            rule.delay_ms * 1e6,
            rule.jitter_ms * 1e6,
            self.rng.random::<f64>(),
        );
        if delay == 0 {
            self.counters[index].released(0, 0);
            queue::verdict(&mut self.out, packet, Verdict::Accept);
        } else {
            self.hold.push(packet, now, now + delay);
        }
    }

    /// Accepts every held packet whose time has come.
    fn release_due(&mut self) -> Result<()> {
        let now = self.now_ns();
        while let Some(due) = self.hold.pop_due(now) {
            let index = usize::from(due.packet.queue - self.file.queue);
            self.counters[index].released(due.added_ns, now - due.release_ns);
            queue::verdict(&mut self.out, due.packet, Verdict::Accept);
            if self.out.len() >= SEND_BURST {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let sent = self.queue.send(self.out.bytes());
        self.out.clear();
        sent.context("sending verdicts")
    }

    /// Removes the tables, lets every held packet go and prints the final statistics.
    fn stop(mut self) -> Result<()> {
        for family in &self.families {
            if let Err(e) = nft::delete(&self.nft, *family, &self.file.table) {
                eprintln!("deleting table {} {}: {e}", family.name(), self.file.table);
            }
        }
        for packet in self.hold.drain() {
            queue::verdict(&mut self.out, packet, Verdict::Accept);
            if self.out.len() >= SEND_BURST {
                self.flush()?;
            }
        }
        self.flush()?;
        self.print_stats("exit");
        Ok(())
    }

    fn print_stats(&self, event: &str) {
        let kernel = kernel_drops();
        let rules: Vec<_> = self
            .file
            .rules
            .iter()
            .zip(&self.counters)
            .enumerate()
            .map(|(i, (rule, c))| {
                let queue = self.file.queue + i as u16;
                json!({
                    "dst": rule.dst,
                    "interface": rule.interface,
                    "queue": queue,
                    "delay_ms": rule.delay_ms,
                    "jitter_ms": rule.jitter_ms,
                    "stats": c.summary(),
                    "kernel_dropped": kernel.iter().find(|(q, _)| *q == queue).map_or(0, |(_, d)| *d),
                })
            })
            .collect();
        eprintln!(
            "{}",
            json!({ "event": event, "held": self.hold.len(), "rules": rules })
        );
    }
}

/// Switches this process to SCHED_FIFO at `priority`.
fn realtime(priority: u8) -> io::Result<()> {
    // SAFETY: sched_param is plain integers; all-zero is valid (musl has extra fields).
    let mut param: libc::sched_param = unsafe { std::mem::zeroed() };
    param.sched_priority = i32::from(priority);
    // SAFETY: `param` outlives the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Per queue, packets the kernel dropped because the queue was full or we could not take them
/// (`/proc/net/netfilter/nfnetlink_queue`: columns 6 and 7).
fn kernel_drops() -> Vec<(u16, u64)> {
    let text = std::fs::read_to_string("/proc/net/netfilter/nfnetlink_queue").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let queue = f.first()?.parse().ok()?;
            let full: u64 = f.get(5)?.parse().ok()?;
            let user: u64 = f.get(6)?.parse().ok()?;
            Some((queue, full + user))
        })
        .collect()
}

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGUSR1 {
        REPORT.store(true, Ordering::Relaxed);
    } else {
        STOP.store(true, Ordering::Relaxed);
    }
}

/// Installs the handlers and blocks the signals outside `ppoll`, so a signal can only arrive
/// while we wait and is never lost between checking the flags and going to sleep. Returns the
/// mask to wait with.
fn block_signals() -> io::Result<libc::sigset_t> {
    // SAFETY: sigset and sigaction calls on local, initialised structures.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1] {
            libc::sigaddset(&mut set, sig);
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            return Err(io::Error::last_os_error());
        }
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1] {
            libc::sigdelset(&mut old, sig);
        }
        Ok(old)
    }
}

/// Sleeps until the socket is readable, `limit` passes or a signal arrives; true if `limit`
/// passed.
fn wait_readable(sock: &Socket, limit: Duration, mask: &libc::sigset_t) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd: sock.raw(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: limit.as_secs() as libc::time_t,
        tv_nsec: limit.subsec_nanos() as libc::c_long,
    };
    // SAFETY: all pointers refer to live locals.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, mask) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).context("waiting for packets");
        }
    }
    Ok(rc == 0)
}
