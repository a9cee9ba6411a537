#!/usr/bin/env bash
# Benchmarks `orch-node delay`, the user-space netem stand-in, between two network namespaces
# joined by a veth pair (namespace a delays what it sends to b):
#   1. accuracy: 1000 pings at 200/s with one-way delays of 5, 20 and 40 ms; the added delay of
#      each ping is its RTT minus the mean RTT without the emulator; prints the mean and p99 of
#      (added - configured) and the emulator's own view of its release lateness;
#   2. load: 64-byte UDP packets (iperf3) at rising rates through a 1 ms delay, with pings on
#      the same path; prints the packet rate reached, the emulator's own added delay (ping RTT
#      - base - 1 ms: mean and p99), its CPU use and CPU per 1,000 packets/s. (1 ms, not more:
#      a held packet stays charged to the sending socket, so with a long delay iperf3's socket
#      buffer, not the emulator, would cap the rate; netem behaves the same.)
# Needs root, iproute2, iputils-ping and iperf3. Writes docs/bench-emulator.md.
#
#   sudo scripts/bench-emulator.sh         # ORCH_NODE=path overrides the binary
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in ip ping iperf3; do
    command -v "$tool" >/dev/null || {
        echo "$0: needs $tool (apt-get install iproute2 iputils-ping iperf3)" >&2
        exit 1
    }
done
BIN=${ORCH_NODE:-target/release/orch-node}
if [ ! -x "$BIN" ]; then
    cargo build --release -p orch-node
fi
NA=obench-a NB=obench-b
IPB=10.254.0.2
WORK=$(mktemp -d)
EMU="" SERVER=""

cleanup() {
    [ -n "$EMU" ] && kill "$EMU" 2>/dev/null && wait "$EMU" 2>/dev/null
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    ip netns del "$NA" 2>/dev/null || true
    ip netns del "$NB" 2>/dev/null || true
    rm -rf "$WORK" docs/bench-emulator.md.tmp
}
trap cleanup EXIT

ip netns del "$NA" 2>/dev/null || true
ip netns del "$NB" 2>/dev/null || true
ip netns add "$NA"
ip netns add "$NB"
ip link add obench0 netns "$NA" type veth peer name obench1 netns "$NB"
ip -n "$NA" addr add 10.254.0.1/24 dev obench0
ip -n "$NB" addr add "$IPB"/24 dev obench1
for ns in "$NA:obench0" "$NB:obench1"; do
    ip -n "${ns%%:*}" link set "${ns#*:}" up
    ip -n "${ns%%:*}" link set lo up
done

# RTTs (ms) of COUNT pings at INTERVAL, one per line.
pings() {
    ip netns exec "$NA" ping -n -c "$1" -i "$2" "$IPB" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p'
}

# Starts the emulator with a DELAY_MS rule to b.
start() {
    printf 'stats_secs: 0\nrules:\n  - {dst: %s, delay_ms: %s}\n' "$IPB" "$1" >"$WORK/rules.yaml"
    ip netns exec "$NA" "$BIN" delay --rules "$WORK/rules.yaml" 2>"$WORK/emu.log" &
    EMU=$!
    for _ in $(seq 50); do
        grep -q '"event":"ready"' "$WORK/emu.log" && return
        sleep 0.1
    done
    echo "emulator did not start" >&2
    cat "$WORK/emu.log" >&2
    exit 1
}

stop() {
    kill "$EMU"
    wait "$EMU" || true
    EMU=""
}

# The emulator's final statistics: "late_mean_us late_p99_us".
lateness() {
    grep '"event":"exit"' "$WORK/emu.log" |
        sed -n 's/.*"late_mean_us":\([0-9.]*\),"late_p99_us":\([0-9.]*\).*/\1 \2/p'
}

# Mean and p99 of the numbers on stdin.
mean_p99() {
    sort -g | awk '{ v[NR] = $1; s += $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f %.3f\n", s / NR, v[i] }'
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
packets() {
    ip netns exec "$NA" "$BIN" delay --show --rules "$WORK/rules.yaml" |
        sed -n 's/.*"packets":\([0-9]*\).*/\1/p'
}

OUT=docs/bench-emulator.md
exec 3>&1 >"$OUT.tmp"
cat <<EOF
# Benchmark: \`orch-node delay\`, the user-space netem stand-in

Written by \`sudo scripts/bench-emulator.sh\` (binary: \`$BIN\`). Two network namespaces joined
by a veth pair; the emulator in the first delays what it sends to the second (one direction
only, so a ping's RTT is the configured delay plus the base RTT). netem against the emulator on
the same hosts, with YCSB on top: [bench-delay.md](bench-delay.md).

Machine: $(nproc) cores, kernel $(uname -r), load average at the start
$(cut -d' ' -f1-3 /proc/loadavg).
EOF
BASE=$(pings 200 0.005 | mean_p99 | cut -d' ' -f1)
cat <<EOF

## Accuracy

1000 pings at 200/s per row. Error = the ping's RTT - the mean RTT without the emulator
($BASE ms) - the configured delay, so it includes the kernel's NFQUEUE round trip, not only the
emulator's timing. "late" is the emulator's own record of how long after its release time each
verdict went out.

EOF
echo "| one-way delay | mean error | p99 error | emulator: late mean / p99 |"
echo "|---|---|---|---|"
for d in 5 20 40; do
    start "$d"
    pings 1000 0.005 >"$WORK/rtt"
    stop
    read -r mean p99 < <(awk -v b="$BASE" -v d="$d" '{ print $1 - b - d }' "$WORK/rtt" | mean_p99)
    read -r lmean lp99 < <(lateness)
    echo "| $d ms | $mean ms | $p99 ms | $lmean / $lp99 µs |"
done

cat <<EOF

## Packet rate and CPU

64-byte UDP packets from iperf3 through a 1 ms delay, with 300 pings (100/s) on the same path
during each 5 s run. Own delay = ping RTT - base RTT - 1 ms. CPU = the emulator's user + system
time over the run (100% = one core). A 1 ms delay, not more: a held packet stays charged to the
sending socket, so with a long delay the sender's socket buffer, not the emulator, would cap the
rate (netem holds packets the same way).

EOF
HZ=$(getconf CLK_TCK)
echo "| offered pkt/s | delayed pkt/s | own delay mean | own delay p99 | emulator CPU | CPU per 1,000 pkt/s |"
echo "|---|---|---|---|---|---|"
for rate in 1000 5000 10000 20000 50000 100000; do
    ip netns exec "$NB" iperf3 -s -1 -B "$IPB" >/dev/null 2>&1 &
    SERVER=$!
    start 1
    secs=5
    p0=$(packets)
    c0=$(cpu_ticks "$EMU")
    t0=$(date +%s.%N)
    ip netns exec "$NA" iperf3 -c "$IPB" -u -l 64 -b $((rate * 64 * 8)) -t "$secs" >"$WORK/iperf" 2>&1 &
    load=$!
    sleep 0.5
    pings 300 0.01 >"$WORK/rtt"
    wait "$load" || cat "$WORK/iperf" >&2
    c1=$(cpu_ticks "$EMU")
    p1=$(packets)
    t1=$(date +%s.%N)
    stop
    wait "$SERVER" || true
    SERVER=""
    elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    pps=$(awk -v n=$((p1 - p0)) -v e="$elapsed" 'BEGIN { printf "%d", n / e }')
    read -r own p99 < <(awk -v b="$BASE" '{ print $1 - b - 1 }' "$WORK/rtt" | mean_p99)
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v e="$elapsed" 'BEGIN { printf "%.1f", 100 * t / hz / e }')
    per=$(awk -v c="$cpu" -v p="$pps" 'BEGIN { if (p > 0) printf "%.2f", c / (p / 1000); else print "-" }')
    echo "| $rate | $pps | $own ms | $p99 ms | $cpu % | $per % |"
done
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
exec >&3
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
