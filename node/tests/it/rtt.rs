//! `orch-node rtt` against `ss -ti` on real loopback TCP connections (root: loads eBPF).
//!
//! Each test owns a pair of loopback addresses, so the path (source, destination) it looks at
//! carries only its own connection. Traffic is a request/response exchange driven by the test
//! thread, then the connection is left quiet so `ss` and the monitor look at the same state.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{root, turn, NODE};

/// Agreement required: 10 % or 20 µs, whichever is larger.
fn assert_close(what: &str, got: f64, ss: f64) {
    let tolerance = (ss * 0.1).max(20.0);
    assert!(
        (got - ss).abs() <= tolerance,
        "{what}: {got} µs, ss -ti shows {ss} µs (tolerance {tolerance} µs)"
    );
}

/// Both ends of one TCP connection from `src` to `dst`.
struct Conn {
    client: TcpStream,
    server: TcpStream,
    src: IpAddr,
    dst: IpAddr,
}

impl Conn {
    fn open(src: &str, dst: &str) -> Self {
        let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let listener = TcpListener::bind(SocketAddr::new(dst, 0)).unwrap();
        let socket = connect_from(src, listener.local_addr().unwrap());
        let (server, _) = listener.accept().unwrap();
        for s in [&socket, &server] {
            s.set_nodelay(true).unwrap();
        }
        Self {
            client: socket,
            server,
            src,
            dst,
        }
    }

    /// `rounds` request/response exchanges of 64 bytes; the server answers after `delay`.
    fn exchange(&mut self, rounds: usize, delay: Duration) {
        let mut buf = [7u8; 64];
        for _ in 0..rounds {
            self.client.write_all(&buf).unwrap();
            self.server.read_exact(&mut buf).unwrap();
            std::thread::sleep(delay);
            self.server.write_all(&buf).unwrap();
            self.client.read_exact(&mut buf).unwrap();
        }
    }

    /// (srtt, rttvar) in µs of the client socket, as `ss -ti` shows them.
    fn ss(&self) -> (f64, f64) {
        let out = Command::new("ss")
            .args(["-tinH", "state", "established", "src"])
            .arg(self.src.to_string())
            .arg("dst")
            .arg(self.dst.to_string())
            .output()
            .expect("ss (iproute2) is needed for this test");
        let text = String::from_utf8(out.stdout).unwrap();
        let rtts: Vec<(f64, f64)> = text
            .split_whitespace()
            .filter_map(|t| t.strip_prefix("rtt:"))
            .map(|v| {
                let (s, var) = v.split_once('/').unwrap();
                (ms_to_us(s), ms_to_us(var))
            })
            .collect();
        assert_eq!(rtts.len(), 1, "one connection expected in:\n{text}");
        rtts[0]
    }
}

fn ms_to_us(ms: &str) -> f64 {
    (ms.parse::<f64>().unwrap() * 1000.0).round()
}

/// A client socket bound to `src` (std has no bind-then-connect; a tokio socket does it).
fn connect_from(src: IpAddr, dst: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(src, 0)).unwrap();
        let stream = socket.connect(dst).await.unwrap().into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

/// A running `orch-node rtt --json`, killed (by handle) when dropped.
struct Monitor {
    child: Child,
    /// When the monitor was spawned: its `elapsed_ms` counts from about then.
    spawned: Instant,
    lines: Receiver<(Instant, Value)>,
    stderr: Arc<Mutex<String>>,
}

impl Monitor {
    /// Starts the monitor and waits until it says which source it uses.
    fn start(source: &str, conn: &Conn) -> Self {
        root::require("the monitor loads eBPF and reads every socket");
        let spawned = Instant::now();
        let mut child = Command::new(NODE)
            .args(["rtt", "--json", "--interval", "50", "--source", source])
            .args([
                "--src",
                &conn.src.to_string(),
                "--dst",
                &conn.dst.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let v: Value = serde_json::from_str(&line.unwrap()).unwrap();
                if tx.send((Instant::now(), v)).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready) = channel();
        let sink = stderr.clone();
        let err = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in err.lines() {
                let line = line.unwrap();
                let is_source = line.starts_with("rtt: source ");
                sink.lock().unwrap().push_str(&(line + "\n"));
                if is_source {
                    let _ = ready_tx.send(());
                }
            }
        });
        // Loading the program (and parsing the kernel's BTF) takes seconds in a debug build,
        // and ten times that in the emulated VMs of scripts/kernel-test.sh.
        ready
            .recv_timeout(Duration::from_secs(90))
            .unwrap_or_else(|_| panic!("orch-node rtt did not start: {}", stderr.lock().unwrap()));
        Self {
            child,
            spawned,
            lines,
            stderr,
        }
    }

    /// The first refresh the monitor made at least `quiet` after `since`, by its own clock
    /// (`elapsed_ms`): on a busy machine its lines can arrive late, so the time a line is read
    /// says little about when its values were taken. (source, srtt µs, rttvar µs).
    fn reading_after(&self, since: Instant, quiet: Duration) -> (String, f64, f64) {
        let wanted = (since + quiet).duration_since(self.spawned).as_millis();
        loop {
            let (_, v) = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("no output: {}", self.stderr.lock().unwrap()));
            if v["elapsed_ms"].as_u64().unwrap_or(0) < wanted as u64 {
                continue;
            }
            let path = &v["paths"][0];
            if path.is_null() {
                continue;
            }
            return (
                v["source"].as_str().unwrap().to_string(),
                path["srtt_us"].as_f64().unwrap(),
                path["rttvar_us"].as_f64().unwrap(),
            );
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One refresh of `orch-node rtt --count 1` run as `prefix... orch-node ...`: (stderr, reading).
fn one_shot(prefix: &[&str], source: &str, conn: &Conn) -> (String, String, f64) {
    let bin = NODE;
    let (program, args) = match prefix {
        [] => (bin, Vec::new()),
        [first, rest @ ..] => (*first, [rest, &[bin]].concat()),
    };
    let out = Command::new(program)
        .args(args)
        .args(["rtt", "--json", "--count", "1", "--interval", "50"])
        .args(["--source", source, "--src", &conn.src.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "orch-node rtt failed: {stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = v["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["dst"] == conn.dst.to_string())
        .unwrap_or_else(|| panic!("no path to {} in {v}", conn.dst));
    (
        stderr,
        v["source"].as_str().unwrap().to_string(),
        path["srtt_us"].as_f64().unwrap(),
    )
}

/// How long the connection stays idle before the monitor's reading counts.
const QUIET: Duration = Duration::from_millis(200);

/// `auto` uses eBPF where the kernel has `sock:sk_data_ready` (6.3+), and netlink, saying why,
/// where it has not; either way the numbers are those of `ss -ti`.
#[test]
fn auto_uses_ebpf_where_exact_and_agrees_with_ss() {
    let _turn = turn();
    let mut conn = Conn::open("127.0.0.21", "127.0.0.22");
    let monitor = Monitor::start("auto", &conn);
    let exact = kernel_has_tracepoint("sk_data_ready");
    // Fast answers (tens of µs on loopback), then answers after 2 ms.
    for delay in [Duration::ZERO, Duration::from_millis(2)] {
        conn.exchange(60, delay);
        let (source, srtt, rttvar) = monitor.reading_after(Instant::now(), QUIET);
        let (ss_srtt, ss_rttvar) = conn.ss();
        eprintln!("delay {delay:?}: {source} {srtt}/{rttvar} µs, ss {ss_srtt}/{ss_rttvar} µs");
        let stderr = monitor.stderr.lock().unwrap().clone();
        assert_eq!(source == "ebpf", exact, "{stderr}");
        assert_close("auto srtt", srtt, ss_srtt);
        assert_close("auto rttvar", rttvar, ss_rttvar);
    }
    let stderr = monitor.stderr.lock().unwrap();
    if exact {
        assert!(!stderr.contains("falling back"), "{stderr}");
    } else {
        assert!(
            stderr.contains("falling back to netlink") && stderr.contains("sock:sk_data_ready"),
            "{stderr}"
        );
    }
}

/// Whether the running kernel defines tracepoint `name` (its symbol table lists the
/// tracepoint's iterator; independent of tracefs being mounted).
fn kernel_has_tracepoint(name: &str) -> bool {
    let symbol = format!("__traceiter_{name}");
    std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some(symbol.as_str()))
}

/// eBPF, netlink and `ss -ti` agree; before 6.3 a forced eBPF source warns that it lags
/// instead (and only netlink is compared).
#[test]
fn netlink_source_gives_the_same_as_ebpf_and_ss() {
    let _turn = turn();
    let mut conn = Conn::open("127.0.0.23", "127.0.0.24");
    let monitor = Monitor::start("ebpf", &conn);
    conn.exchange(60, Duration::from_millis(1));
    let (_, ebpf, _) = monitor.reading_after(Instant::now(), QUIET);
    let (_, source, netlink) = one_shot(&[], "netlink", &conn);
    let (ss, _) = conn.ss();
    eprintln!("ebpf {ebpf} µs, netlink {netlink} µs, ss {ss} µs");
    assert_ne!(source, "ebpf");
    assert_close("netlink", netlink, ss);
    if kernel_has_tracepoint("sk_data_ready") {
        assert_close("ebpf", ebpf, ss);
        assert_close("ebpf vs netlink", ebpf, netlink);
    } else {
        let stderr = monitor.stderr.lock().unwrap();
        assert!(stderr.contains("without sock:sk_data_ready"), "{stderr}");
    }
}

#[test]
fn auto_falls_back_to_netlink_without_bpf_privilege() {
    let _turn = turn();
    let mut conn = Conn::open("127.0.0.25", "127.0.0.26");
    conn.exchange(30, Duration::ZERO);
    let no_bpf = ["setpriv", "--bounding-set=-bpf,-sys_admin,-perfmon"];
    let (stderr, source, srtt) = one_shot(&no_bpf, "auto", &conn);
    let (ss, _) = conn.ss();
    assert!(stderr.contains("falling back to netlink"), "{stderr}");
    assert_ne!(source, "ebpf");
    assert_close("fallback", srtt, ss);
}

#[test]
fn forced_ebpf_without_privilege_fails_with_advice() {
    let _turn = turn();
    let conn = Conn::open("127.0.0.27", "127.0.0.28");
    let out = Command::new("setpriv")
        .arg("--bounding-set=-bpf,-sys_admin,-perfmon")
        .arg(NODE)
        .args(["rtt", "--source", "ebpf", "--count", "1", "--src"])
        .arg(conn.src.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--source netlink"), "{stderr}");
}
