//! Jittered delays reorder the packets of one flow as the delay model predicts
//! (`orch::delay::reorder`, docs/delay.md "Reordering"), and a fixed delay never does. The
//! measurement is shared: here with the emulator (`method: emulator` on a 3-host lab), and in
//! the kernel tier with netem (kernel.rs, `netem_reorders_one_flow_as_the_model_predicts`),
//! both through `delay::apply` as `orch run` applies delays.
//!
//! The workload: per delayed link, one UDP flow of sequence-numbered packets, sent every `gap`
//! ms by a thread inside the sender's network namespace to a receiver inside the other host's;
//! the sender records when each packet left, the receiver the order of arrival. The flows of
//! all links run at once, one spacing after the other.
//!
//! What is compared: the share of adjacent packets (i, i + 1) that arrive swapped, against the
//! model's P(D2 < D1 - gap) for each pair's real spacing (the sender's sleeps are late on a
//! busy machine, so the real spacing is used, not the nominal one), averaged. The tolerance is
//! four standard deviations of that share if the pairs were independent Bernoulli trials
//! (adjacent pairs share a packet and are negatively correlated, so the real spread is smaller:
//! a correct emulation fails about once in 15 000), plus [`SLACK`] for what the model leaves
//! out. A fixed delay swaps none with the emulator and at most 1 % with netem
//! ([`fixed_allowed`]). Also shown, not compared: the share of packets that arrive after a later
//! one (RFC 4737's reordered packets; what `ping` shows as a lower icmp_seq after a higher one).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use orch::config::Problems;
use orch::delay::reorder::Swaps;
use orch::delay::{self, DelaySpec, Link};
use orch::inventory::Inventory;

use crate::util::{in_netns, node_binary, DelayHosts, Lab};

/// The delayed links, one way each: the seed's profiles (15 ± 5 ms and 2 ± 1 ms normal, the
/// false-positive scenario's 100 ± 100 ms normal) and a fixed delay as the control.
const LINKS: [(usize, usize, &str); 4] = [
    (1, 2, "delay_ms: 15, jitter_ms: 5, distribution: normal"),
    (1, 3, "delay_ms: 2, jitter_ms: 1, distribution: normal"),
    (
        2,
        3,
        "delay_ms: 100, jitter_ms: 100, distribution: normal, allow_truncation: true",
    ),
    (3, 1, "delay_ms: 15"),
];

/// Spacing of a flow's packets (ms) and how many it sends: about 1 to 4 s per flow.
const FLOWS: [(f64, usize); 3] = [(1.0, 1000), (10.0, 300), (50.0, 80)];

/// Absolute allowance on the swapped share beyond sampling: what the model leaves out (the
/// emulator stamps a packet's arrival when it reads it from its queue, so packets read in one
/// batch get one arrival time; a VM's timers fire late).
const SLACK: f64 = 0.03;

/// The share of adjacent pairs a fixed delay may swap with `method`. None with the emulator: one
/// thread releases the packets in order, and each release delivers its packet before the next
/// (the verdict's syscall runs the receive path). With netem, 1 %: the netem of the 6.1 VM
/// swapped 1 pair of 999 (and 8 packets of 1000 arrived after a later one) on a fixed 15 ms,
/// while the 6.12 VM swapped none. netem releases from two contexts, its timer and the sender's
/// own transmit path, which can run on different vCPUs, and between lab hosts a released packet
/// is handed to the receiving side on the CPU that released it (veth, bridge); two CPUs can
/// then deliver in either order. That explanation fits, but was not traced; on a real NIC the
/// released packets queue in order. With jitter 44 % are swapped: 1 % still tells them apart.
fn fixed_allowed(method: &str) -> f64 {
    if method == "netem" {
        0.01
    } else {
        0.0
    }
}

/// One flow through one link.
struct Outcome {
    from: usize,
    to: usize,
    link: Link,
    gap_ms: f64,
    sent: usize,
    received: usize,
    /// Adjacent pairs with both packets received, and how many of them arrived swapped.
    pairs: usize,
    swapped: usize,
    /// The model's mean P(swap) over those pairs at their real spacing, and its sampling sd.
    predicted: f64,
    sd: f64,
    /// Packets that arrived after a packet sent later.
    late: usize,
}

impl Outcome {
    fn share(&self) -> f64 {
        self.swapped as f64 / self.pairs.max(1) as f64
    }

    /// How far the swapped share may be from the model's.
    fn allowed(&self, method: &str) -> f64 {
        if self.link.jitter_ms == 0.0 {
            fixed_allowed(method)
        } else {
            4.0 * self.sd + SLACK
        }
    }

    fn row(&self, method: &str) -> String {
        format!(
            "{method}: host{}->host{} {}, every {} ms: {}/{} received; adjacent pairs swapped {:.1}% (model {:.1}%, allowed ±{:.1}); packets arriving after a later one {:.1}%",
            self.from,
            self.to,
            self.link,
            self.gap_ms,
            self.received,
            self.sent,
            self.share() * 100.0,
            self.predicted * 100.0,
            self.allowed(method) * 100.0,
            self.late as f64 / self.received.max(1) as f64 * 100.0,
        )
    }

    /// What is wrong with it, if anything.
    fn wrong(&self, method: &str) -> Option<&'static str> {
        if self.received * 100 < self.sent * 99 {
            return Some("more than 1% of the packets lost");
        }
        let why = if self.link.jitter_ms == 0.0 {
            "a fixed delay reordered more than allowed"
        } else {
            "swapped share off the model"
        };
        ((self.share() - self.predicted).abs() > self.allowed(method)).then_some(why)
    }
}

/// One flow of `count` packets `gap_ms` apart from host `a` to host `b`: when each packet left
/// (ms after the first) and the sequence numbers in order of arrival.
fn flow(lab: &Lab, a: usize, b: usize, gap_ms: f64, count: usize) -> (Vec<f64>, Vec<u32>) {
    let to: IpAddr = lab.address(b).parse().unwrap();
    let receiver = in_netns(&lab.netns(b), || UdpSocket::bind((to, 0)).unwrap());
    let addr: SocketAddr = receiver.local_addr().unwrap();
    // A flow is over when nothing arrives for this long (the longest delay drawn is 500 ms;
    // the kernel tier's VM stalls for seconds at worst).
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let sender = in_netns(&lab.netns(a), || {
        let s = UdpSocket::bind(("0.0.0.0", 0)).unwrap();
        s.connect(addr).unwrap();
        s
    });
    std::thread::scope(|s| {
        let arrivals = s.spawn(|| {
            let mut order = Vec::with_capacity(count);
            let mut buf = [0u8; 16];
            while order.len() < count {
                match receiver.recv(&mut buf) {
                    Ok(4) => order.push(u32::from_be_bytes(buf[..4].try_into().unwrap())),
                    Ok(n) => panic!("a {n}-byte datagram"),
                    Err(_) => break,
                }
            }
            order
        });
        let start = Instant::now();
        let mut sent = Vec::with_capacity(count);
        for seq in 0..count as u32 {
            let due = start + Duration::from_secs_f64(f64::from(seq) * gap_ms / 1e3);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            sent.push(start.elapsed().as_secs_f64() * 1e3);
            sender.send(&seq.to_be_bytes()).unwrap();
        }
        (sent, arrivals.join().unwrap())
    })
}

/// Counts what the flow's arrival order shows and what the model predicts for it.
fn outcome(from: usize, to: usize, link: Link, gap_ms: f64, flow: (Vec<f64>, Vec<u32>)) -> Outcome {
    let (sent, order) = flow;
    let mut position = vec![None; sent.len()];
    for (i, seq) in order.iter().enumerate() {
        position[*seq as usize] = Some(i);
    }
    let swaps = Swaps::of(&link);
    let (mut pairs, mut swapped, mut sum, mut var) = (0, 0, 0.0, 0.0);
    for i in 0..sent.len() - 1 {
        let (Some(p), Some(q)) = (position[i], position[i + 1]) else {
            continue;
        };
        pairs += 1;
        swapped += usize::from(q < p);
        let chance = swaps.share(sent[i + 1] - sent[i]);
        sum += chance;
        var += chance * (1.0 - chance);
    }
    let mut highest = None;
    let mut late = 0;
    for seq in &order {
        if highest.is_some_and(|h| h > *seq) {
            late += 1;
        }
        highest = highest.max(Some(*seq));
    }
    let n = pairs.max(1) as f64;
    Outcome {
        from,
        to,
        link,
        gap_ms,
        sent: sent.len(),
        received: order.len(),
        pairs,
        swapped,
        predicted: sum / n,
        sd: var.sqrt() / n,
        late,
    }
}

/// Applies [`LINKS`] with `method` through `delay::apply`, runs [`FLOWS`] through every link,
/// removes the delays, then checks every flow against the model (a fixed delay: nothing
/// reordered) and prints them all.
pub fn measure_and_check(lab: &Lab, method: &str) {
    let mut yaml = format!("method: {method}\npairs:\n");
    for (a, b, link) in LINKS {
        yaml.push_str(&format!("  - {{from: host{a}, to: host{b}, {link}}}\n"));
    }
    let spec: DelaySpec = serde_saphyr::from_str(&yaml).unwrap();
    let inventory = Inventory::load(&lab.inventory).unwrap();
    let hosts: Vec<_> = inventory.hosts.iter().collect();
    let mut problems = Problems::new(Path::new("scenario.yaml"));
    let delays = spec
        .validate(&hosts, &mut problems)
        .expect("a valid delay section");
    let link_of = |a: usize, b: usize| -> Link {
        let (_, rules) = delays
            .hosts
            .iter()
            .find(|(h, _)| *h == format!("host{a}"))
            .unwrap();
        let to = format!("host{b}");
        rules.iter().find(|e| e.to == to).unwrap().link
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let on = rt.block_on(DelayHosts::connect(&hosts));
    let applied = rt.block_on(delay::apply(&on.targets(), &delays)).unwrap();
    let report = applied.report();
    let shown = if method == "netem" {
        "tc netem on eth0"
    } else {
        "orch-node delay emulator"
    };
    let mut measured = Vec::new();
    for (gap, count) in FLOWS {
        let flows: Vec<_> = std::thread::scope(|s| {
            let running: Vec<_> = LINKS
                .iter()
                .map(|(a, b, _)| s.spawn(move || flow(lab, *a, *b, gap, count)))
                .collect();
            running.into_iter().map(|f| f.join().unwrap()).collect()
        });
        for ((a, b, _), f) in LINKS.iter().zip(flows) {
            measured.push(outcome(*a, *b, link_of(*a, *b), gap, f));
        }
    }
    rt.block_on(delay::remove(applied, &on.conns())).unwrap();

    for i in 1..=3 {
        assert!(report.contains(&format!("host{i}: {shown}")), "{report}");
    }
    let mut wrong = Vec::new();
    for m in &measured {
        let row = m.row(method);
        eprintln!("{row}");
        if let Some(why) = m.wrong(method) {
            wrong.push(format!("{why}: {row}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn emulator_reorders_one_flow_as_the_model_predicts() {
    let lab = Lab::up("ro", "10.73", 3);
    std::env::set_var(delay::NODE_BIN_ENV, node_binary());
    measure_and_check(&lab, "emulator");
}
