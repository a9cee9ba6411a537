//! `orch-node ycsb` against a real standalone ZooKeeper (Debian's `zookeeper` package, started
//! with `java ... QuorumPeerMain`), checked by an independent client: kazoo (PyPI) if python3
//! can import it, else Debian's `zkCli.sh`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{turn, NODE};

const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// A standalone ZooKeeper server on 127.0.0.1 with its own port and data directory; killed (by
/// the handle of the process it spawned) when dropped.
struct ZooKeeper {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl ZooKeeper {
    fn start() -> Self {
        assert!(
            Path::new(ZOOKEEPER_JAR).exists(),
            "{ZOOKEEPER_JAR} missing: apt-get install zookeeper"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=ruok\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut classpath = ZOOKEEPER_JAR.to_string();
        if Path::new("/usr/share/java/slf4j-simple.jar").exists() {
            classpath.push_str(":/usr/share/java/slf4j-simple.jar");
        }
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new("java")
            .args(["-Xmx256m", "-cp", &classpath])
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("java (a JRE) is needed to run ZooKeeper");
        let zk = Self { dir, port, child };
        let end = Instant::now() + Duration::from_secs(30);
        while ruok(port).as_deref() != Some("imok") {
            assert!(
                Instant::now() < end,
                "ZooKeeper did not answer ruok within 30 s; its log:\n{}",
                std::fs::read_to_string(zk.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        zk
    }

    fn connect_string(&self, chroot: &str) -> String {
        format!("127.0.0.1:{}{chroot}", self.port)
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ruok(port: u16) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"ruok").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn ycsb(args: &[&str]) -> Output {
    let out = Command::new(NODE).arg("ycsb").args(args).output().unwrap();
    eprintln!(
        "orch-node ycsb {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs a command that must succeed; its stdout and stderr.
fn ycsb_ok(args: &[&str]) -> (String, String) {
    let out = ycsb(args);
    assert!(
        out.status.success(),
        "orch-node ycsb failed: {:?}",
        out.status
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every child of `parent` with its data, as an independent client reads them.
fn records(servers: &str, parent: &str) -> BTreeMap<String, String> {
    let kazoo = Command::new("python3")
        .args(["-c", "import kazoo"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if kazoo {
        eprintln!("independent client: kazoo");
        records_by_kazoo(servers, parent)
    } else {
        eprintln!("independent client: zkCli.sh (kazoo not importable)");
        records_by_zkcli(servers, parent)
    }
}

fn records_by_kazoo(servers: &str, parent: &str) -> BTreeMap<String, String> {
    let script = r#"
import json, sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=20)
out = {c: zk.get(sys.argv[2] + "/" + c)[0].decode() for c in zk.get_children(sys.argv[2])}
zk.stop()
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script, servers, parent])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kazoo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn records_by_zkcli(servers: &str, parent: &str) -> BTreeMap<String, String> {
    let zkcli = |commands: &str| -> Vec<String> {
        let mut child = Command::new(ZKCLI)
            .args(["-server", servers])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    };
    let listing = zkcli(&format!("ls {parent}\n"));
    let children: Vec<String> = listing
        .iter()
        .rev()
        .find(|l| l.starts_with('['))
        .map(|l| {
            l.trim_matches(['[', ']'])
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let gets: String = children
        .iter()
        .map(|c| format!("get {parent}/{c}\n"))
        .collect();
    let data: Vec<String> = zkcli(&gets)
        .into_iter()
        .filter(|l| l.starts_with('{'))
        .collect();
    assert_eq!(data.len(), children.len(), "zkCli printed one line per get");
    children.into_iter().zip(data).collect()
}

/// Asserts every record is a flat JSON object with field0..field9 of 100 characters each.
fn assert_ycsb_records(records: &BTreeMap<String, String>, count: usize) {
    assert_eq!(records.len(), count);
    let want: Vec<String> = (0..10).map(|i| format!("field{i}")).collect();
    for (key, data) in records {
        assert!(key.starts_with("user"), "{key}");
        let fields: BTreeMap<String, Value> = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("{key}: not a JSON object ({e}): {data}"));
        let names: Vec<&String> = fields.keys().collect();
        assert_eq!(names, want.iter().collect::<Vec<_>>(), "{key}");
        for (name, value) in &fields {
            let text = value.as_str().unwrap_or_else(|| panic!("{key}.{name}"));
            assert_eq!(text.chars().count(), 100, "{key}.{name}");
        }
    }
}

/// YCSB's workloads/workloadb, as shipped.
const WORKLOADB: &str = "\
# Yahoo! Cloud System Benchmark
# Workload B: Read mostly workload
#   Application example: photo tagging; add a tag is an update, but most operations are to read tags
#
#   Read/update ratio: 95/5
#   Default data size: 1 KB records (10 fields, 100 bytes each, plus key)
#   Request distribution: zipfian

recordcount=1000
operationcount=1000
workload=site.ycsb.workloads.CoreWorkload

readallfields=true

readproportion=0.95
updateproportion=0.05
scanproportion=0
insertproportion=0

requestdistribution=zipfian
";

#[test]
fn load_then_run_like_the_seed_seen_by_an_independent_client() {
    let _turn = turn();
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("workloadb");
    std::fs::write(&workload, WORKLOADB).unwrap();
    let workload = workload.to_str().unwrap();
    let connect = format!(
        "zookeeper.connectString={}",
        zk.connect_string("/benchmark")
    );

    let out = ycsb(&["run", "-P", workload, "-p", &connect]);
    assert!(!out.status.success(), "run before load must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/benchmark does not exist"), "{err}");

    let (load, status) = ycsb_ok(&[
        "load",
        "-s",
        "-P",
        workload,
        "-p",
        &connect,
        "-p",
        "recordcount=200",
        "-threads",
        "4",
    ]);
    let last = status.lines().last().unwrap_or_default();
    assert!(
        last.contains(" sec: 200 operations; "),
        "final status line: {last}"
    );
    assert!(last.contains("[INSERT: Count="), "{last}");
    let report = orch_analysis::ycsb::parse(&load).unwrap();
    let insert = report.operation("INSERT").expect("[INSERT]");
    assert_eq!((insert.count, insert.returned("OK")), (200, 200));
    assert_eq!(report.operation("CLEANUP").map(|c| c.count), Some(4));
    assert!(report.runtime_ms.unwrap() > 0.0);
    assert_ycsb_records(&records(&zk.connect_string(""), "/benchmark"), 200);

    let out_file = dir.path().join("run.txt");
    let (stdout, _) = ycsb_ok(&[
        "run",
        "-threads",
        "1",
        "-P",
        workload,
        "-p",
        &connect,
        "-p",
        "recordcount=200",
        "-p",
        "operationcount=500",
        "-p",
        "readproportion=0.1",
        "-p",
        "updateproportion=0.9",
        "-p",
        "hdrhistogram.percentiles=10,25,50,75,90,95,99,99.9",
        "-p",
        "histogram.buckets=500",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(stdout.is_empty(), "--out takes the results: {stdout}");
    let text = std::fs::read_to_string(&out_file).unwrap();
    let report = orch_analysis::ycsb::parse(&text).unwrap();
    let read = report.operation("READ").expect("[READ]");
    let update = report.operation("UPDATE").expect("[UPDATE]");
    assert_eq!(read.count + update.count, 500, "{text}");
    assert_eq!(read.returned("OK"), read.count);
    assert_eq!(update.returned("OK"), update.count);
    assert!(update.count > read.count, "90% updates: {text}");
    let percentiles: Vec<f64> = update.percentiles.iter().map(|p| p.percentile).collect();
    assert_eq!(
        percentiles,
        [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9]
    );
    assert!(
        text.contains("[UPDATE], 99.9PercentileLatency(us), "),
        "{text}"
    );
    let (runtime, throughput) = (report.runtime_ms.unwrap(), report.throughput.unwrap());
    assert!((throughput - 500_000.0 / runtime).abs() < 1e-6, "{text}");
    let (min, max, avg) = (
        update.min_us.unwrap(),
        update.max_us.unwrap(),
        update.average_us.unwrap(),
    );
    assert!(min > 0.0 && min <= avg && avg <= max, "{text}");

    // Updates merged one field into each record: every record still has all ten.
    assert_ycsb_records(&records(&zk.connect_string(""), "/benchmark"), 200);
}

#[test]
fn properties_it_cannot_honor_are_rejected_before_connecting() {
    let _turn = turn();
    let cases = [
        (vec!["-p", "scanproportion=0.05"], "scanproportion=0.05"),
        (
            vec!["-p", "requestdistribution=hotspot"],
            "requestdistribution=hotspot",
        ),
        (
            vec!["-p", "zookeeper.sessiontimeout=5000"],
            "zookeeper.sessiontimeout",
        ),
        (
            vec!["-p", "zookeeper.watchFlag=true"],
            "zookeeper.watchFlag=true",
        ),
        (vec!["-p", "operationcount=0"], "operationcount is 0"),
        (
            vec!["-p", "measurement.interval=wall"],
            "measurement.interval=wall: expected op",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec![
            "run",
            "-p",
            "operationcount=10",
            "-p",
            "zookeeper.connectString=127.0.0.1:1/nowhere",
        ];
        args.extend(extra);
        let out = ycsb(&args);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}

/// What real YCSB's ZooKeeper binding needs before `load` (the seed's `create /benchmark`):
/// `orch-node chroot` creates it with its parents, again without complaint, and needs a chroot.
#[test]
fn chroot_creates_the_znode_real_ycsb_needs() {
    let _turn = turn();
    let zk = ZooKeeper::start();
    let chroot = |connect: &str| {
        Command::new(NODE)
            .args(["chroot", "--connect", connect])
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let out = chroot(&zk.connect_string("/exp/benchmark"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let children = records(&zk.connect_string(""), "/exp");
    assert_eq!(children.keys().collect::<Vec<_>>(), ["benchmark"]);
    let out = chroot(&zk.connect_string(""));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no chroot"));
}

fn workspace_file(rel: &str) -> String {
    format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// Every core workload file orch ships (scenarios/workloads/) loads and runs as it is, with
/// no failed operation (workloade, all scans, is refused by `scanproportion`: see
/// properties_it_cannot_honor_are_rejected_before_connecting).
#[test]
fn every_shipped_core_workload_loads_and_runs() {
    let _turn = turn();
    let zk = ZooKeeper::start();
    for (i, name) in [
        "workloada",
        "workloadb",
        "workloadc",
        "workloadd",
        "workloadf",
    ]
    .iter()
    .enumerate()
    {
        let file = workspace_file(&format!("scenarios/workloads/{name}"));
        let connect = format!(
            "zookeeper.connectString={}",
            zk.connect_string(&format!("/w{i}"))
        );
        let small = ["-p", "recordcount=40", "-p", "operationcount=60"];
        let mut load = vec!["load", "-P", &file, "-p", &connect];
        load.extend(small);
        let (text, _) = ycsb_ok(&load);
        let report = orch_analysis::ycsb::parse(&text).unwrap();
        assert_eq!(report.failed(), 0, "{name} load: {text}");
        let mut run = vec!["run", "-P", &file, "-p", &connect];
        run.extend(small);
        let (text, _) = ycsb_ok(&run);
        let report = orch_analysis::ycsb::parse(&text).unwrap();
        assert_eq!(
            (report.attempted() > 0, report.failed()),
            (true, 0),
            "{name} run: {text}"
        );
    }
}

/// The seed's run line asks for `histogram.buckets=500`, which real YCSB honours only with
/// `measurementtype=histogram`: then the output has YCSB's histogram lines (variance, 95th
/// and 99th percentile at 1 ms resolution) and still parses.
#[test]
fn histogram_measurement_type_with_the_seeds_buckets() {
    let _turn = turn();
    let zk = ZooKeeper::start();
    let file = workspace_file("scenarios/workloads/workloadb");
    let connect = format!(
        "zookeeper.connectString={}",
        zk.connect_string("/benchmark")
    );
    ycsb_ok(&["load", "-P", &file, "-p", &connect, "-p", "recordcount=50"]);
    let (text, status) = ycsb_ok(&[
        "run",
        "-s",
        "-P",
        &file,
        "-p",
        &connect,
        "-p",
        "recordcount=50",
        "-p",
        "operationcount=200",
        "-p",
        "readproportion=0.1",
        "-p",
        "updateproportion=0.9",
        "-p",
        "measurementtype=histogram",
        "-p",
        "histogram.buckets=500",
    ]);
    let report = orch_analysis::ycsb::parse(&text).unwrap();
    let update = report.operation("UPDATE").unwrap();
    assert_eq!(update.returned("OK"), update.count);
    assert!(
        update.other.iter().any(|m| m.name == "LatencyVariance(us)"),
        "{text}"
    );
    let ps: Vec<f64> = update.percentiles.iter().map(|p| p.percentile).collect();
    assert_eq!(ps, [95.0, 99.0], "{text}");
    assert!(
        update
            .percentiles
            .iter()
            .all(|p| p.latency_us % 1000.0 == 0.0),
        "{text}"
    );
    let last = status.lines().last().unwrap_or_default();
    assert!(last.contains("[UPDATE AverageLatency(us)="), "{last}");
}

/// Sends `signal` (`-STOP`, `-CONT`) to the test's own ZooKeeper, by the pid it spawned.
fn signal(zk: &ZooKeeper, signal: &str) {
    let pid = zk.child.id().to_string();
    let status = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// `measurement.interval=both`: every operation also under `Intended-<OP>`, measured from when
/// the target throughput scheduled it. Without a target that is when it started, so both
/// sections hold the same latencies. With a target of 200 ops/s and the server stopped
/// (SIGSTOP) for a second, the operation in flight waits a second and the ~200 due during the
/// stall start late: their op latency is the server's usual one, their intended latency counts
/// the wait. Intended latencies are never below op latencies, and here they are far above.
#[test]
fn intended_latency_counts_the_wait_behind_a_stall() {
    let _turn = turn();
    let zk = ZooKeeper::start();
    let file = workspace_file("scenarios/workloads/workloada");
    let connect = format!(
        "zookeeper.connectString={}",
        zk.connect_string("/benchmark")
    );
    let common = [
        "-P",
        &file,
        "-p",
        &connect,
        "-p",
        "recordcount=50",
        "-p",
        "measurement.interval=both",
        "-p",
        "hdrhistogram.percentiles=50,90,99",
    ];
    let mut load = vec!["load"];
    load.extend(common);
    ycsb_ok(&load);

    let mut unthrottled = vec!["run", "-p", "operationcount=100"];
    unthrottled.extend(common);
    let (text, _) = ycsb_ok(&unthrottled);
    let report = orch_analysis::ycsb::parse(&text).unwrap();
    for op in ["READ", "UPDATE", "CLEANUP"] {
        let (actual, intended) = (
            report.operation(op).expect(op),
            report
                .operation(&format!("Intended-{op}"))
                .unwrap_or_else(|| panic!("no [Intended-{op}] in\n{text}")),
        );
        assert_eq!(
            (intended.count, intended.average_us, intended.max_us),
            (actual.count, actual.average_us, actual.max_us),
            "no target: the intended start is the actual one\n{text}"
        );
        assert!(intended.returns.is_empty(), "{text}");
    }

    let mut throttled = vec![
        "run",
        "-s",
        "-target",
        "200",
        "-p",
        "operationcount=500",
        "-p",
        "status.interval=1",
    ];
    throttled.extend(common);
    let child = Command::new(NODE)
        .arg("ycsb")
        .args(&throttled)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    signal(&zk, "-STOP");
    std::thread::sleep(Duration::from_secs(1));
    signal(&zk, "-CONT");
    let out = child.wait_with_output().unwrap();
    let (text, status) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{status}");
    assert!(
        status.contains("[Intended-UPDATE: Count="),
        "status lines carry the intended measurements: {status}"
    );
    let report = orch_analysis::ycsb::parse(&text).unwrap();
    assert_eq!((report.attempted(), report.failed()), (500, 0), "{text}");
    for op in ["READ", "UPDATE"] {
        let actual = report.operation(op).expect(op);
        let intended = report
            .operation(&format!("Intended-{op}"))
            .unwrap_or_else(|| panic!("no [Intended-{op}] in\n{text}"));
        assert_eq!(intended.count, actual.count, "{text}");
        let pairs = [
            (intended.min_us, actual.min_us),
            (intended.average_us, actual.average_us),
            (intended.max_us, actual.max_us),
        ];
        for (i, a) in pairs
            .into_iter()
            .chain([50.0, 90.0, 99.0].map(|p| (intended.percentile(p), actual.percentile(p))))
        {
            assert!(i.unwrap() >= a.unwrap(), "{op}: {i:?} < {a:?}\n{text}");
        }
        let (i, a) = (intended.average_us.unwrap(), actual.average_us.unwrap());
        eprintln!("{op}: average {a} us from the start, {i} us from the intended start");
        assert!(
            i >= 100_000.0 && i >= 5.0 * a,
            "{op}: the stall's wait is in the intended latency only: {i} vs {a} us\n{text}"
        );
    }
}
