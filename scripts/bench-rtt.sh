#!/usr/bin/env bash
# Benchmark: single-stream loopback TCP throughput (iperf3, 10 s per run) without and with the
# RTT eBPF programs attached (an `orch-node rtt --source ebpf` running), alternating so drift in
# machine load hits both alike; plus the CPU time iperf3's two ends spent per GB (loopback softirq
# work, where the programs run, is charged to them), which other load on the machine disturbs
# less than throughput. iperf3 runs at nice -10 for the same reason.
# Needs root and iperf3; writes docs/bench-rtt.md.
#
#   sudo scripts/bench-rtt.sh [PAIRS]      # PAIRS of runs, default 5
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${1:-5}
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
SECONDS_PER_RUN=10
CLIENT=127.0.0.30
SERVER=127.0.0.31
PORT=5231

command -v iperf3 >/dev/null || apt-get install -y -qq iperf3 >/dev/null
cargo build --release -q -p orch-node
NODE=${CARGO_TARGET_DIR:-$PWD/target}/release/orch-node

WORK=$(mktemp -d /var/tmp/orch-bench-rtt.XXXXXX)
MONITOR=
cleanup() {
    [ -n "$MONITOR" ] && kill "$MONITOR" 2>/dev/null || true
    [ -f "$WORK/iperf3.pid" ] && kill "$(cat "$WORK/iperf3.pid")" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

nice -n -10 iperf3 -s -B "$SERVER" -p "$PORT" -D --pidfile "$WORK/iperf3.pid"
sleep 0.5

# Prints "<receiver Gbit/s> <CPU seconds of both ends per GB received>" of an iperf3 JSON report.
summarize() {
    python3 -c '
import json, sys
end = json.load(open(sys.argv[1]))["end"]
rx, cpu = end["sum_received"], end["cpu_utilization_percent"]
cpu_s = (cpu["host_total"] + cpu["remote_total"]) / 100 * rx["seconds"]
print("%.2f %.3f" % (rx["bits_per_second"] / 1e9, cpu_s / (rx["bytes"] / 1e9)))
' "$1"
}

run_iperf() {
    nice -n -10 iperf3 -c "$SERVER" -B "$CLIENT" -p "$PORT" -t "$SECONDS_PER_RUN" -J > "$WORK/run.json"
    summarize "$WORK/run.json"
}

# Starts the monitor (programs attached) and waits until it reports its source.
start_monitor() {
    "$NODE" rtt --source ebpf --src "$CLIENT" --dst "$SERVER" --interval 1000 --json \
        > "$WORK/monitor.out" 2> "$WORK/monitor.err" &
    MONITOR=$!
    for _ in $(seq 100); do
        grep -q "^rtt: source ebpf" "$WORK/monitor.err" && return
        sleep 0.1
    done
    echo "orch-node rtt did not attach the eBPF programs:" >&2
    cat "$WORK/monitor.err" >&2
    exit 1
}

stop_monitor() {
    kill "$MONITOR"
    wait "$MONITOR" 2>/dev/null || true
    MONITOR=
}

ROWS=$WORK/rows.md
RESULTS=$WORK/results.txt
: > "$ROWS"
: > "$RESULTS"
for i in $(seq "$PAIRS"); do
    read -r off off_cpu <<< "$(run_iperf)"
    start_monitor
    read -r on on_cpu <<< "$(run_iperf)"
    sleep 1.2
    stop_monitor
    srtt=$(tail -n 1 "$WORK/monitor.out" | python3 -c 'import json,sys; p=json.load(sys.stdin)["paths"]; print(p[0]["srtt_us"] if p else "none")')
    echo "| $i | $off | $on | $off_cpu | $on_cpu | $srtt |" >> "$ROWS"
    echo "$off $on $off_cpu $on_cpu" >> "$RESULTS"
    echo "pair $i: without $off Gbit/s ($off_cpu CPU s/GB), with $on Gbit/s ($on_cpu CPU s/GB), monitor srtt $srtt us"
done

SUMMARY=$(python3 -c '
import statistics, sys
rows = [[float(x) for x in line.split()] for line in open(sys.argv[1])]
med = [statistics.median(r[i] for r in rows) for i in range(4)]
ratio = statistics.median(r[1] / r[0] for r in rows)
print(f"| median | {med[0]:.2f} | {med[1]:.2f} | {med[2]:.3f} | {med[3]:.3f} | |")
print()
print(f"- Throughput with the programs attached vs without: medians **{(med[1] / med[0] - 1) * 100:+.2f} %**,")
print(f"  median of the per-pair ratios **{(ratio - 1) * 100:+.2f} %** (target: a loss under 2 %).")
print(f"- CPU time per GB with vs without (medians): **{(med[3] / med[2] - 1) * 100:+.2f} %**.")
' "$RESULTS")

{
    echo "# Loopback TCP throughput with and without the RTT eBPF programs"
    echo
    echo "Produced by \`sudo scripts/bench-rtt.sh $PAIRS\` on $(date -u +%Y-%m-%d): $(nproc) cores, kernel $(uname -r),"
    echo "load average before the run $LOAD, $(iperf3 --version | head -1 | cut -d' ' -f1-2)."
    echo "Each run is \`nice -n -10 iperf3 -c $SERVER -B $CLIENT -p $PORT -t $SECONDS_PER_RUN\` (one stream, receiver"
    echo "throughput; CPU s/GB is the user+system time of both iperf3 ends per GB received). \"With\" runs"
    echo "have \`orch-node rtt --source ebpf --src $CLIENT --dst $SERVER\` running, i.e. the tp_btf programs on"
    echo "\`tcp:tcp_probe\` and \`sock:sk_data_ready\` attached, recording every received segment of every TCP"
    echo "socket. Runs alternate without/with."
    echo
    echo "| pair | without (Gbit/s) | with (Gbit/s) | without (CPU s/GB) | with (CPU s/GB) | srtt shown by the monitor (us) |"
    echo "|---|---|---|---|---|---|"
    cat "$ROWS"
    echo "$SUMMARY"
} > docs/bench-rtt.md
echo "wrote docs/bench-rtt.md"
