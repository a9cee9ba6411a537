#!/usr/bin/env bash
# Benchmark: `orch-node ycsb run` side by side with the ceiling (a minimal loop written directly
# on the zookeeper-client crate, doing the same getData / getData+setData) and a kazoo loop doing
# the same, with 1, 4 and 16 client threads (one ZooKeeper session each) against a 3-server
# ZooKeeper ensemble on 127.0.0.11-13. 10% reads, 90% updates of 1000 loaded records, uniform
# keys, as the seed's YCSB runs. Every (threads, client) cell runs ROUNDS times, interleaved
# in rotating order; the table shows the median round. Needs Java, Debian's zookeeper and kazoo (installed if
# missing); writes docs/bench-ycsb.md.
#
#   scripts/bench-ycsb.sh            # SECS=10 ROUNDS=5 by default
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-5}
RECORDS=1000

[ -f /usr/share/java/zookeeper.jar ] || apt-get install -y -qq zookeeper >/dev/null
python3 -c 'import kazoo' 2>/dev/null || pip install -q kazoo
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p orch-node
NODE=$CARGO_TARGET_DIR/release/orch-node

WORK=$(mktemp -d /var/tmp/orch-bench-ycsb.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# The ceiling: the same operations with nothing else around them (same crate versions as
# orch-node through a copy of the workspace lock file).
mkdir -p "$WORK/ceiling/src"
cp Cargo.lock "$WORK/ceiling/"
cat > "$WORK/ceiling/Cargo.toml" <<'EOF'
[package]
name = "zk-ceiling"
version = "0.1.0"
edition = "2021"

[dependencies]
hdrhistogram = { version = "7.6.0", default-features = false }
tokio = { version = "1.54.1", features = ["rt-multi-thread", "time"] }
zookeeper-client = { version = "0.11.2", features = ["tokio"] }

[workspace]
EOF
cat > "$WORK/ceiling/src/main.rs" <<'EOF'
//! usage: zk-ceiling CONNECT THREADS SECS RECORDS
//! Each thread: its own session, a closed loop of 10% getData and 90% getData+setData (the
//! data it read) on /user<uniform key>. Prints YCSB-style result lines.
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use zookeeper_client::Client;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let threads: usize = a[2].parse().unwrap();
    let secs: u64 = a[3].parse().unwrap();
    let records: u64 = a[4].parse().unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.min(cores))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..threads {
            clients.push(Client::connector().with_session_timeout(Duration::from_secs(30)).connect(&a[1]).await.unwrap());
        }
        let start = Instant::now();
        let end = start + Duration::from_secs(secs);
        let tasks: Vec<_> = clients.into_iter().enumerate().map(|(i, zk)| tokio::spawn(async move {
            let mut reads = Histogram::<u64>::new(3).unwrap();
            let mut updates = Histogram::<u64>::new(3).unwrap();
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1) ^ start.elapsed().as_nanos() as u64;
            while Instant::now() < end {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                let path = format!("/user{}", x % records);
                let st = Instant::now();
                if (x >> 40) % 10 == 0 {
                    zk.get_data(&path).await.unwrap();
                    reads.record(st.elapsed().as_micros() as u64).unwrap();
                } else {
                    let (data, _) = zk.get_data(&path).await.unwrap();
                    zk.set_data(&path, &data, None).await.unwrap();
                    updates.record(st.elapsed().as_micros() as u64).unwrap();
                }
            }
            (reads, updates)
        })).collect();
        let mut reads = Histogram::<u64>::new(3).unwrap();
        let mut updates = Histogram::<u64>::new(3).unwrap();
        for t in tasks {
            let (r, u) = t.await.unwrap();
            reads.add(&r).unwrap();
            updates.add(&u).unwrap();
        }
        let ms = start.elapsed().as_millis() as u64;
        println!("[OVERALL], RunTime(ms), {ms}");
        println!("[OVERALL], Throughput(ops/sec), {}", 1000.0 * (reads.len() + updates.len()) as f64 / ms as f64);
        for (name, h) in [("READ", &reads), ("UPDATE", &updates)] {
            println!("[{name}], Operations, {}", h.len());
            println!("[{name}], AverageLatency(us), {}", h.mean());
            println!("[{name}], 50thPercentileLatency(us), {}", h.value_at_percentile(50.0));
            println!("[{name}], 99thPercentileLatency(us), {}", h.value_at_percentile(99.0));
        }
    });
}
EOF
cargo build --release -q --manifest-path "$WORK/ceiling/Cargo.toml"
CEILING=$CARGO_TARGET_DIR/release/zk-ceiling

cat > "$WORK/kazoo_loop.py" <<'EOF'
"""usage: kazoo_loop.py CONNECT THREADS SECS RECORDS -- the ceiling's loop on kazoo."""
import random, sys, threading, time
from kazoo.client import KazooClient

connect, threads, secs, records = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
clients = [KazooClient(hosts=connect, timeout=30) for _ in range(threads)]
for zk in clients:
    zk.start(timeout=30)
lat = {"READ": [], "UPDATE": []}
lock = threading.Lock()
go = threading.Event()
times = {}

def worker(zk):
    rnd = random.Random()
    mine = {"READ": [], "UPDATE": []}
    go.wait()
    end = times["start"] + secs
    while time.perf_counter() < end:
        path = "/user%d" % rnd.randrange(records)
        st = time.perf_counter()
        if rnd.random() < 0.1:
            zk.get(path)
            op = "READ"
        else:
            data, _ = zk.get(path)
            zk.set(path, data)
            op = "UPDATE"
        mine[op].append((time.perf_counter() - st) * 1e6)
    with lock:
        for k, v in mine.items():
            lat[k].extend(v)

workers = [threading.Thread(target=worker, args=(zk,)) for zk in clients]
for w in workers:
    w.start()
times["start"] = time.perf_counter()
go.set()
for w in workers:
    w.join()
ms = (time.perf_counter() - times["start"]) * 1000
for zk in clients:
    zk.stop()
print("[OVERALL], RunTime(ms), %d" % ms)
print("[OVERALL], Throughput(ops/sec), %s" % (1000.0 * sum(len(v) for v in lat.values()) / ms))
for name, v in lat.items():
    v.sort()
    print("[%s], Operations, %d" % (name, len(v)))
    if v:
        print("[%s], AverageLatency(us), %s" % (name, sum(v) / len(v)))
        print("[%s], 50thPercentileLatency(us), %d" % (name, v[len(v) // 2]))
        print("[%s], 99thPercentileLatency(us), %d" % (name, v[min(len(v) - 1, int(len(v) * 0.99))]))
EOF

# The ensemble: three servers on 127.0.0.11-13, client port 22181, own data dirs.
CP=/usr/share/java/zookeeper.jar
[ -f /usr/share/java/slf4j-simple.jar ] && CP=$CP:/usr/share/java/slf4j-simple.jar
for i in 1 2 3; do
    d=$WORK/zk$i
    mkdir -p "$d/data"
    echo "$i" > "$d/data/myid"
    cat > "$d/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$d/data
clientPort=22181
clientPortAddress=127.0.0.1$i
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
server.1=127.0.0.11:22888:23888
server.2=127.0.0.12:22888:23888
server.3=127.0.0.13:22888:23888
EOF
    java -Xmx512m -cp "$CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" \
        > "$d/server.log" 2>&1 &
    PIDS+=($!)
done
fourlw() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/22181; printf $2 >&3; cat <&3" 2>/dev/null || true; }
LEADER=
for _ in $(seq 100); do
    for i in 1 2 3; do
        fourlw "127.0.0.1$i" srvr | grep -q "Mode: leader" && LEADER=127.0.0.1$i:22181
    done
    [ -n "$LEADER" ] && break
    sleep 0.3
done
if [ -z "$LEADER" ]; then
    tail -n 20 "$WORK"/zk*/server.log >&2
    echo "no ZooKeeper leader elected" >&2
    exit 1
fi
CONNECT=$LEADER/benchmark

COMMON=(-p "zookeeper.connectString=$CONNECT" -p recordcount=$RECORDS -p insertorder=ordered)
"$NODE" ycsb load "${COMMON[@]}" -threads 4 > "$WORK/load.txt" 2>/dev/null
RUN=("${COMMON[@]}" -p requestdistribution=uniform -p readproportion=0.1 -p updateproportion=0.9
     -p operationcount=0 -p maxexecutiontime=$SECS)
# Warm the servers' JIT before measuring.
"$NODE" ycsb run "${RUN[@]}" -threads 4 -p maxexecutiontime=5 > /dev/null 2>&1

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# One client run: CLIENT THREADS ROUND.
measure() {
    local out=$WORK/$1-$2-$3.txt
    case $1 in
        ceiling) "$CEILING" "$CONNECT" "$2" "$SECS" "$RECORDS" > "$out" ;;
        orch) "$NODE" ycsb run "${RUN[@]}" -threads "$2" > "$out" 2>/dev/null ;;
        kazoo) python3 "$WORK/kazoo_loop.py" "$CONNECT" "$2" "$SECS" "$RECORDS" > "$out" 2>/dev/null ;;
    esac
}
# Rounds rotate the order of the clients, so none always follows the same one.
CLIENTS=(ceiling orch kazoo)
for round in $(seq "$ROUNDS"); do
    for t in 1 4 16; do
        for k in 0 1 2; do
            measure "${CLIENTS[$(( (round + k) % 3 ))]}" "$t" "$round"
        done
    done
done

python3 - "$WORK" "$ROUNDS" > "$WORK/table.md" <<'EOF'
import re, sys
work, rounds = sys.argv[1], int(sys.argv[2])
def parse(path):
    out = {}
    for line in open(path):
        m = re.match(r"\[(\w+)\], ([^,]+), (\S+)", line.strip())
        if m:
            out[(m[1], m[2])] = float(m[3])
    return out
names = {"ceiling": "ceiling: zookeeper-client loop", "orch": "`orch-node ycsb`", "kazoo": "kazoo loop"}
TPUT = ("OVERALL", "Throughput(ops/sec)")
print("| threads | client | ops/s | % of ceiling | ops/s, all rounds | UPDATE avg (us) | UPDATE p50 | UPDATE p99 | READ avg (us) | READ p99 |")
print("|---:|---|---:|---:|---|---:|---:|---:|---:|---:|")
for t in (1, 4, 16):
    median, spread = {}, {}
    for tool in ("ceiling", "orch", "kazoo"):
        runs = [parse(f"{work}/{tool}-{t}-{r}.txt") for r in range(1, rounds + 1)]
        runs.sort(key=lambda r: r[TPUT])
        median[tool] = runs[len(runs) // 2]
        spread[tool] = " ".join(f"{r[TPUT]:.0f}" for r in runs)
    ceiling = median["ceiling"][TPUT]
    for tool in ("ceiling", "orch", "kazoo"):
        r = median[tool]
        tput = r[TPUT]
        g = lambda op, m: r.get((op, m), float("nan"))
        print(f"| {t} | {names[tool]} | {tput:.0f} | {100 * tput / ceiling:.0f}% | {spread[tool]} | "
              f"{g('UPDATE', 'AverageLatency(us)'):.0f} | {g('UPDATE', '50thPercentileLatency(us)'):.0f} | "
              f"{g('UPDATE', '99thPercentileLatency(us)'):.0f} | {g('READ', 'AverageLatency(us)'):.0f} | "
              f"{g('READ', '99thPercentileLatency(us)'):.0f} |")
EOF

{
    echo "# orch-node ycsb vs the zookeeper-client ceiling vs kazoo"
    echo
    echo "Produced by \`scripts/bench-ycsb.sh\` (SECS=$SECS ROUNDS=$ROUNDS) on $(date -u +%Y-%m-%d), $(nproc) cores,"
    echo "kernel $(uname -r), ZooKeeper $(dpkg-query -W -f '${Version}' zookeeper 2>/dev/null || echo '?') (3 servers on"
    echo "127.0.0.11-13, clients on the leader), $(java -version 2>&1 | head -1),"
    echo "kazoo $(python3 -c 'import kazoo; print(kazoo.__version__)'), $(python3 --version). Load average before"
    echo "the runs $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg) (servers and clients share the cores)."
    echo
    echo "Each client thread has its own ZooKeeper session and runs a closed loop for $SECS s over"
    echo "$RECORDS records loaded by \`orch-node ycsb load\`: 10% reads (getData), 90% updates"
    echo "(getData + setData), uniform keys. \`orch-node ycsb\` also parses and rewrites the JSON"
    echo "record as YCSB's binding does; the ceiling and kazoo write back the bytes they read. Each"
    echo "row is the round with the median ops/s of $ROUNDS interleaved rounds (client order rotating);"
    echo "all rounds' ops/s are listed sorted; latencies in microseconds."
    echo
    echo "\`\`\`"
    echo "orch-node ycsb run -threads N -p zookeeper.connectString=LEADER:22181/benchmark -p recordcount=$RECORDS \\"
    echo "    -p insertorder=ordered -p requestdistribution=uniform -p readproportion=0.1 \\"
    echo "    -p updateproportion=0.9 -p operationcount=0 -p maxexecutiontime=$SECS"
    echo "\`\`\`"
    echo
    cat "$WORK/table.md"
} > docs/bench-ycsb.md.new
mv docs/bench-ycsb.md.new docs/bench-ycsb.md
echo "wrote docs/bench-ycsb.md"
