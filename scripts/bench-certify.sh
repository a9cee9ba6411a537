#!/usr/bin/env bash
# The delay certification's false-alarm rate and its power, on a 5-host lab:
#   1. clean: the shipped lab scenario's delays (15 +- 5 ms normal, host2 2 +- 1 ms) for RUNS
#      repetitions (default 20) through `orch run`; every pair of every run is certified, and a
#      failed pair on a clean lab is a false alarm;
#   2. distorted: the same for DISTORTED repetitions (default 5) with a second `orch-node delay`
#      started by hand on host3 (its own table and queues, unknown to orch) adding 0 ms with
#      20 ms pareto jitter; every run must fail, naming exactly host3's four pairs.
# Needs root and what the lab needs (scripts/install-deps.sh). Writes docs/bench-certify.md.
#
#   sudo scripts/bench-certify.sh            # RUNS=20 DISTORTED=5
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-20}
DISTORTED=${DISTORTED:-5}
# The debug builds: orch only drives the hosts, whose orch-node is the release build `orch
# setup` pushes; the intruder's speed does not matter.
cargo build -q -p orch -p orch-node
ORCH=$PWD/target/debug/orch
NODE=$PWD/target/debug/orch-node
# Short: the lab keeps its SSH control sockets under it, and a socket path has 108 bytes.
WORK=$(mktemp -d /var/tmp/obc.XXXXXX)
export ORCH_LAB_DIR=$WORK/lab
LAB=bc NET=10.176
INTRUDER=""

cleanup() {
    [ -n "$INTRUDER" ] && kill "$INTRUDER" 2>/dev/null && wait "$INTRUDER" 2>/dev/null
    "$ORCH" lab down --name "$LAB" >/dev/null 2>&1 || true
    rm -rf "$WORK" docs/bench-certify.md.tmp
}
trap cleanup EXIT

"$ORCH" lab up --hosts 5 --name "$LAB" --net "$NET" -i "$WORK/lab.yaml" >/dev/null
scripts/make-zk-tarball.sh "$WORK/zk.tar.gz" >/dev/null
"$ORCH" -i "$WORK/lab.yaml" setup --zookeeper "$WORK/zk.tar.gz" >"$WORK/setup.log" 2>&1 || {
    cat "$WORK/setup.log" >&2
    exit 1
}

# The lab scenario's delays alone, repeated.
scenario() { # name repetitions
    cat <<EOF
name: $1
repetitions: $2
delays:
$(sed -n '/^delays:/,/^[a-z]/p' scenarios/zk-leader-placement-lab.yaml | sed '1d;$d')
EOF
}

# Per run: its label, how many of its pairs passed and failed, and the failed pairs.
tally() { # results-dir
    python3 - "$1" <<'EOF'
import json, os, sys
root = sys.argv[1]
for label in sorted(os.listdir(root)):
    path = os.path.join(root, label, "delays.json")
    if not os.path.isfile(path):
        continue
    pairs = json.load(open(path))["pairs"]
    failed = [f"{p['from']}-{p['to']}" for p in pairs if not p["ok"]]
    worst = max(
        (abs(c["realised_ms"] - c["declared_ms"]) / max(c["allowed_ms"], 1e-9), c["stat"], f"{p['from']}-{p['to']}")
        for p in pairs for c in p["checks"]
    )
    print(f"{label}\t{len(pairs) - len(failed)}\t{len(failed)}\t{' '.join(failed) or '-'}\t{worst[0]:.2f} ({worst[1]} {worst[2]})")
EOF
}

load_before=$(uptime)
scenario certify-clean "$RUNS" >"$WORK/clean.yaml"
"$ORCH" -i "$WORK/lab.yaml" run --scenario "$WORK/clean.yaml" --results "$WORK/results" \
    >"$WORK/clean.log" 2>&1 || true
clean=$(tally "$WORK/results/certify-clean/latest")

host_ip() { echo "$NET.$1.2"; }
rules="["
for i in 1 2 4 5; do
    rules="$rules{\"dst\":\"$(host_ip $i)\",\"delay_ms\":0,\"jitter_ms\":20,\"distribution\":\"pareto\"},"
done
echo "{\"table\":\"intruder\",\"queue\":5300,\"rules\":${rules%,}]}" >"$WORK/intruder.json"
ip netns exec "orch-$LAB-h3" "$NODE" delay --rules "$WORK/intruder.json" 2>/dev/null &
INTRUDER=$!
sleep 2
scenario certify-distorted "$DISTORTED" >"$WORK/distorted.yaml"
"$ORCH" -i "$WORK/lab.yaml" run --scenario "$WORK/distorted.yaml" --results "$WORK/results" \
    >"$WORK/distorted.log" 2>&1 || true
distorted=$(tally "$WORK/results/certify-distorted/latest")
load_after=$(uptime)

false_alarms=$(echo "$clean" | awk -F'\t' '$3 > 0' | wc -l)
clean_pairs=$(echo "$clean" | awk -F'\t' '{n += $2 + $3} END {print n}')
caught=$(echo "$distorted" | awk -F'\t' '$4 == "host1-host3 host2-host3 host3-host4 host3-host5"' | wc -l)
table() {
    echo "| run | pairs passed | pairs failed | failed pairs | largest deviation / allowed (statistic, pair) |"
    echo "|---|---:|---:|---|---|"
    echo "$1" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'
}

{
    echo "# Delay certification: false alarms and power"
    echo
    echo "Written by \`sudo scripts/bench-certify.sh\` (RUNS=$RUNS, DISTORTED=$DISTORTED) on $(date -u +%Y-%m-%d)."
    echo "Machine: $(nproc) cores, $(uname -r). Load before: \`${load_before# }\`; after: \`${load_after# }\`."
    echo
    echo "The rule (docs/delay.md, \"Certified delays\"): per pair, p10, p50, p90, p99 and the standard"
    echo "deviation of 1000 pings against the model of the declared delays; the last column is the"
    echo "largest |realised - declared| of the run divided by its tolerance (the rule also widens each"
    echo "statistic by its sampling interval, so a ratio above 1 can still pass)."
    echo
    echo "## Clean lab: the shipped lab scenario's delays"
    echo
    echo "**$false_alarms false alarms in $RUNS runs** ($clean_pairs pairs judged)."
    echo
    table "$clean"
    echo
    echo "## Distorted: 0 ms + 20 ms pareto on host3, unknown to orch"
    echo
    echo "**$caught of $DISTORTED runs failed exactly host3's four pairs.**"
    echo
    table "$distorted"
} >docs/bench-certify.md.tmp
mv docs/bench-certify.md.tmp docs/bench-certify.md
echo "false alarms: $false_alarms/$RUNS runs; distorted caught: $caught/$DISTORTED"
