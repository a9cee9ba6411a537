//! The hosts' clocks of `orch run` on a 3-host lab: every run's clocks.json gives each host's
//! offset against the controller at the start and the end, with its bound, and the replica
//! kill's detection and failover carry the bound of the two hosts' clocks. Lab hosts share
//! the controller's clock, so the truth is known: every offset is 0, so it must lie within
//! its bound of 0. Needs root, the musl target and Debian's zookeeper package (.ci/run).

use crate::util::{leftovers, setup, Lab};

/// Three replicas; the leader is killed once, 4 s in, and restarted 2 s later.
const SCENARIO: &str = "\
name: clocks
election:
  hosts: role:replica
  duration_s: 16
  config: {fdMode: raft}
faults:
  - {every_s: 4, count: 1, duration_s: 2, action: kill, target: replica-leader}
";

fn json(path: &std::path::Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

fn ms(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn every_host_gets_an_offset_within_its_bound_and_intervals_their_bounds() {
    let lab = Lab::up("clka", "10.241", 3);
    setup(&lab);
    let latest = lab.run_ok("clocks", SCENARIO);
    let run = latest.join("r01-rep1");
    let clocks = json(&run.join("clocks.json"));
    eprintln!("{}", serde_json::to_string_pretty(&clocks).unwrap());
    assert!(
        clocks["reference"]
            .as_str()
            .unwrap()
            .starts_with("the controller"),
        "{clocks}"
    );
    let has_chronyc = std::process::Command::new("sh")
        .args(["-c", "command -v chronyc"])
        .output()
        .unwrap()
        .status
        .success();
    let hosts = clocks["hosts"].as_object().unwrap();
    let names: Vec<&str> = hosts.keys().map(String::as_str).collect();
    assert_eq!(names, ["host1", "host2", "host3"]);
    for (name, c) in hosts {
        for when in ["start", "end"] {
            let m = &c[when];
            let (offset, bound, rtt) = (ms(&m["offset_ms"]), ms(&m["bound_ms"]), ms(&m["rtt_ms"]));
            assert!(
                offset.abs() <= bound,
                "{name} {when}: one clock, offset 0: {m}"
            );
            assert!(
                bound < 5.0 && rtt > 0.0 && bound >= rtt / 2.0,
                "{name} {when}: {m}"
            );
            assert_eq!(m["samples"], 20, "{name} {when}: {m}");
            // The hosts see this machine's programs: no chronyc here, no chrony view there.
            assert!(m.as_object().unwrap().contains_key("chrony"), "{m}");
            assert!(has_chronyc || m["chrony"].is_null(), "{name} {when}: {m}");
        }
        let r = &c["run"];
        assert_eq!(r["host"].as_str(), Some(name.as_str()));
        assert!(
            ms(&r["offset_ms"]).abs() <= ms(&r["bound_ms"]),
            "{name}: {r}"
        );
    }
    let replicas: Vec<&str> = clocks["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(replicas, ["host1", "host2", "host3"]);
    let bound_of = |replica: &serde_json::Value| {
        let host = replicas[replica.as_u64().unwrap() as usize];
        ms(&hosts[host]["run"]["bound_ms"])
    };

    // summary.json holds the same clocks, and the kill's intervals with their bounds.
    let summary = json(&latest.join("summary.json"));
    let r = &summary["runs"][0];
    assert_eq!(r["clocks"], clocks);
    let failures = r["election"]["failures"].as_array().unwrap();
    let killed = failures
        .iter()
        .find(|f| f["how"] == "killed")
        .unwrap_or_else(|| panic!("no kill among {failures:?}"));
    let detection = ms(&killed["detection_ms"]);
    let detection_bound = ms(&killed["detection_bound_ms"]);
    let expected = bound_of(&killed["node"]) + bound_of(&killed["detected_by"]);
    assert!((detection_bound - expected).abs() < 1e-9, "{killed}");
    let failover_bound = ms(&killed["failover_bound_ms"]);
    let expected = bound_of(&killed["node"]) + bound_of(&killed["new_leader"]);
    assert!((failover_bound - expected).abs() < 1e-9, "{killed}");
    // The large-bound field says exactly what the bounds say.
    let large =
        detection_bound > 0.05 * detection || failover_bound > 0.05 * ms(&killed["failover_ms"]);
    let said = r["clock_bound_large"].as_array().unwrap();
    assert_eq!(!said.is_empty(), large, "{r}");

    // faults.jsonl: the same intervals and bounds; the rejoin is across the replica's host
    // and the controller.
    let lines = std::fs::read_to_string(run.join("faults.jsonl")).unwrap();
    let fault: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!(fault["start_clock"], fault["hosts"][0], "{fault}");
    let b = &fault["clock_bounds"];
    assert_eq!(ms(&b["detection_ms"]), detection_bound, "{fault}");
    assert_eq!(ms(&fault["detection_ms"]), detection, "{fault}");
    assert_eq!(ms(&b["new_leader_ms"]), failover_bound, "{fault}");
    let host = fault["hosts"][0].as_str().unwrap();
    assert_eq!(
        ms(&b["rejoined_ms"]),
        ms(&hosts[host]["run"]["bound_ms"]),
        "{fault}"
    );

    let text = std::fs::read_to_string(run.join("election.txt")).unwrap();
    assert!(
        text.contains(&format!("detected after {detection:.1} ± ")),
        "{text}"
    );
    assert!(text.contains("node 0 on host1: "), "{text}");
    assert_eq!(leftovers(&lab), "", "processes left on the hosts");
}

/// Moves CLOCK_REALTIME of the machine it runs on by argv[1] ns in one step
/// (clock_adjtime with ADJ_SETOFFSET | ADJ_NANO): no gap between reading and setting the clock.
const SHIFT: &str = r#"
import ctypes, sys
L, I = ctypes.c_long, ctypes.c_int
class Timeval(ctypes.Structure):
    _fields_ = [("sec", L), ("usec", L)]
class Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", L), ("freq", L), ("maxerror", L),
                ("esterror", L), ("status", I), ("constant", L), ("precision", L),
                ("tolerance", L), ("time", Timeval), ("tick", L), ("ppsfreq", L),
                ("jitter", L), ("shift", I), ("stabil", L), ("jitcnt", L), ("calcnt", L),
                ("errcnt", L), ("stbcnt", L), ("tai", I), ("pad", I * 11)]
t = Timex(modes=0x0100 | 0x2000)
t.time.sec, t.time.usec = divmod(int(sys.argv[1]), 10**9)
libc = ctypes.CDLL(None, use_errno=True)
if libc.clock_adjtime(0, ctypes.byref(t)) < 0:
    raise OSError(ctypes.get_errno(), "clock_adjtime(CLOCK_REALTIME, ADJ_SETOFFSET)")
"#;

/// The shift of the VM's clock, ms.
const SHIFT_MS: f64 = 40.0;

/// Run by scripts/clock-vm-test.sh, which boots a VM (its own kernel, its own clock) with sshd
/// and names its inventory in ORCH_CLOCK_VM_INVENTORY. The VM's clock is moved by +40 ms in
/// one step: the measured offset must move by 40 ms within the two measurements' bounds. Then
/// an interval across the VM and the controller, measured apart from the clock measurement
/// (the controller's clock before opening a channel that runs `date +%s%N` on the VM, and after
/// it returns), put on the controller's clock by orch's correction, must lie between 0 and that
/// round trip within the bound, while the uncorrected one is off by the VM's offset.
#[test]
#[ignore = "needs a VM: scripts/clock-vm-test.sh"]
fn a_vm_clock_shifted_by_40_ms_is_measured_and_corrected() {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use orch::remote::{Cmd, Conn};
    use orch::run::RunHost;

    let path = std::env::var("ORCH_CLOCK_VM_INVENTORY")
        .expect("ORCH_CLOCK_VM_INVENTORY: run scripts/clock-vm-test.sh");
    let inventory = orch::inventory::Inventory::load(std::path::Path::new(&path)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let host = &inventory.hosts[0];
        let conn = Conn::open(host).await.unwrap();
        let home = conn
            .run(&Cmd::script("printf %s \"$HOME\""))
            .await
            .unwrap()
            .stdout;
        let rh = RunHost::new(host, &home, "clock-vm");
        let conns = BTreeMap::from([(host.name.clone(), (conn, rh))]);
        let measure = || async { orch::clock::measure::all(&conns).await.unwrap()["vm"].clone() };
        let before = measure().await;
        let shift = format!(
            "/usr/bin/python3 -c {} {}",
            orch::remote::quote::quote(SHIFT),
            SHIFT_MS * 1e6
        );
        let out = conns["vm"].0.run(&Cmd::script(&shift)).await.unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        let after = measure().await;
        let moved = after.offset_ms - before.offset_ms;
        let bound = before.bound_ms + after.bound_ms;
        eprintln!("before {before:?}\nafter {after:?}\nmoved {moved:.3} ms, bound {bound:.3} ms");
        assert!(
            (moved - SHIFT_MS).abs() <= bound,
            "the offset moved {moved:.3} ms for a shift of {SHIFT_MS} ms, bound {bound:.3} ms"
        );

        // Stamps from another program (date, in a shell reading lines) over one channel, each
        // between two readings of the controller's clock.
        let now = || {
            let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            since.unwrap().as_nanos() as u64
        };
        let stamps = Cmd::script("while read -r _; do date +%s%N; done");
        let mut d = conns["vm"]
            .0
            .dialogue(&stamps, Duration::from_secs(60))
            .await
            .unwrap();
        let mut exchanges = Vec::new();
        for _ in 0..5 {
            let sent = now();
            d.send("t").await.unwrap();
            let stamp: u64 = d.receive().await.unwrap().trim().parse().unwrap();
            exchanges.push((sent, stamp, now()));
        }
        d.close().await.unwrap();
        let end = measure().await;
        let clocks = orch::clock::combine(
            BTreeMap::from([("vm".to_string(), after)]),
            BTreeMap::from([("vm".to_string(), end)]),
            &[],
        )
        .unwrap();
        let offset = clocks.of("vm").unwrap().offset_ms;
        for (sent, stamp, back) in exchanges {
            // The VM's reading minus the controller's, as a replica's rejoin is recorded.
            let raw_ms = (stamp as f64 - sent as f64) / 1e6;
            let line = serde_json::json!({
                "entry": 0, "action": "kill", "target": "replica-leader", "hosts": ["vm"],
                "process": "replica", "replica": 0, "leader_before": "vm",
                "start_unix_ns": sent, "start_s": 0.0, "end_s": 0.0, "end_unix_ns": sent,
                "new_leader": null, "new_leader_ms": null, "rejoined_ms": raw_ms, "error": null
            });
            let mut records = [serde_json::from_value(line).unwrap()];
            orch::clock::correct::faults(&clocks, &mut records);
            let corrected = records[0].rejoined_ms.unwrap();
            let b = records[0]
                .clock_bounds
                .as_ref()
                .unwrap()
                .rejoined_ms
                .unwrap();
            let rtt_ms = (back - sent) as f64 / 1e6;
            eprintln!(
                "interval: raw {raw_ms:.3} ms, corrected {corrected:.3} ± {b:.3} ms, \
                 true within 0..{rtt_ms:.3} ms; offset {offset:.3} ms"
            );
            assert!(
                -b <= corrected && corrected <= rtt_ms + b,
                "corrected {corrected:.3} ± {b:.3} ms outside 0..{rtt_ms:.3} ms"
            );
            assert!((raw_ms - corrected - offset).abs() < 1e-6);
        }
    });
}
