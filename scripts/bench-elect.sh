#!/usr/bin/env bash
# docs/bench-elect.md from `orch run` of the three shipped lab election scenarios on a 5-host
# lab (network namespaces with real sshd, emulated WAN delays, the TCP mesh, eBPF RTTs):
#   scenarios/election-detection-lab.yaml        detection and failover per fdMode
#   scenarios/election-false-positives-lab.yaml  false positives with a live leader
#   scenarios/election-petition-lab.yaml         petitions move the leader
# Every number in the document comes from the runs' cells.json / summary.json. Needs root.
#
#   scripts/bench-elect.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=docs/bench-elect.md
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')

cargo build --release -q -p orch
orch=$PWD/target/release/orch
work=$(mktemp -d /var/tmp/be.XXXXXX)  # short: sockets live under it
export ORCH_LAB_DIR=$work/lab
trap '"$orch" lab down --name belect >/dev/null || true; rm -rf "$work"' EXIT

"$orch" lab up --hosts 5 --name belect --net 10.190 -i "$work/lab.yaml" >/dev/null
scripts/make-zk-tarball.sh "$work/zk.tar.gz"
"$orch" -i "$work/lab.yaml" setup --zookeeper "$work/zk.tar.gz" >/dev/null

: > "$work/times"
for s in detection false-positives petition; do
    start=$SECONDS
    "$orch" -i "$work/lab.yaml" run --scenario "scenarios/election-$s-lab.yaml" \
        --results "$work/results" > "$work/$s.out" 2> "$work/$s.err" ||
        { tail -20 "$work/$s.err"; exit 1; }
    echo "$s $((SECONDS - start))" >> "$work/times"
done

python3 - "$work" "$DATE" "$LOAD" "$(nproc)" "$(uname -r)" > "$OUT" <<'EOF'
import json, sys, pathlib
work, date, load, cores, kernel = sys.argv[1:]
work = pathlib.Path(work)
times = dict(l.split() for l in (work / "times").read_text().splitlines())
def run(name):
    d = work / "results" / f"election-{name}-lab" / "latest"
    return json.loads((d / "cells.json").read_text()), json.loads((d / "summary.json").read_text())
def m(cell, name):
    for n, d in cell["metrics"]:
        if n == name:
            return d
    return None
def f(d, digits=1):
    if d is None:
        return "-"
    ci = f" ± {d['ci95']:.{digits}f}" if d.get("ci95") is not None else ""
    return f"{d['mean']:.{digits}f}{ci}"
def rng(d):
    return "-" if d is None else f"{d['min']:.1f}-{d['max']:.1f}"

print("# Benchmark: the election experiments, run by `orch run`\n")
print("```\nsudo scripts/bench-elect.sh\n```\n")
print(f"- date: {date}; {cores} cores, kernel {kernel}; load average at start {load}")
print("- a 5-host lab (`orch lab up --hosts 5`: network namespaces with real sshd), delays by")
print("  the emulator (`orch-node delay`, this kernel has no netem), the replicas' RTTs from the TCP")
print("  mesh (`traffic: mesh`, 100 ms interval) through the eBPF RTT source (`tcp_monitor: true`)")
print("- wall time of each `orch run` (setup excluded): " + ", ".join(f"{k} {float(v):.0f} s" for k, v in times.items()))
print("- mean ± half-width of the 95 % Student-t confidence interval; detection and failover")
print("  samples are pooled over the repetitions (n counts leader failures)\n")

cells, summary = run("detection")
print("## 1. Failure detection (scenarios/election-detection-lab.yaml)\n")
print("The seed's profile: 15 ms ± 5 ms (normal) on every host's egress, 2 ms ± 1 ms on host2's;")
print("a leader goes silent after 15 heartbeats; every run has three failures (the third leaves")
print("no majority, so it has a detection time but no failover).\n")
print("| cell | runs | detection n | detection ms | range | failover n | failover ms | range | first leader ms | safety violations |")
print("|---|---|---|---|---|---|---|---|---|---|")
for c in cells:
    det, fo = m(c, "detection_ms"), m(c, "failover_ms")
    viol = m(c, "terms_with_several_leaders")
    print(f"| {c['cell']} | {c['runs']} | {det['n'] if det else 0} | {f(det)} | {rng(det)} | "
          f"{fo['n'] if fo else 0} | {f(fo)} | {rng(fo)} | {f(m(c, 'first_leader_ms'))} | "
          f"{0 if viol is None else int(viol['max'])} |")
print("\nArmed election timeouts (the mode's own rule; medians per run, averaged over the runs)")
print("next to the leader srtt the replicas measured, and the mode's formula at the medians:\n")
print("| cell | timeout median ms | timeout p99 ms | formula at medians ms | median / formula | leader srtt median ms |")
print("|---|---|---|---|---|---|")
for c in cells:
    med, form = m(c, "timeout_median_ms"), m(c, "timeout_formula_ms")
    ratio = "-" if not (med and form) else f"{med['mean'] / form['mean']:.3f}"
    print(f"| {c['cell']} | {f(med)} | {f(m(c, 'timeout_p99_ms'))} | {f(form)} | {ratio} | {f(m(c, 'leader_srtt_median_ms'))} |")

cells, summary = run("false-positives")
print("\n## 2. False positives with a live leader (scenarios/election-false-positives-lab.yaml)\n")
print("100 ms ± 100 ms (normal) on every host's egress, no failure injected, `checkFalsePositiveRate`.\n")
print("| cell | runs | false positives | per minute of live leader | elections | terms | timeout median ms | leader srtt median ms |")
print("|---|---|---|---|---|---|---|---|")
for c in cells:
    print(f"| {c['cell']} | {c['runs']} | {f(m(c, 'false_positives'), 0)} | {f(m(c, 'false_positives_per_min'), 2)} | "
          f"{f(m(c, 'elections'), 0)} | {f(m(c, 'terms'), 0)} | {f(m(c, 'timeout_median_ms'))} | {f(m(c, 'leader_srtt_median_ms'))} |")

cells, summary = run("petition")
print("\n## 3. Petitions (scenarios/election-petition-lab.yaml)\n")
print("host5 120 ms from the rest, host2 2 ms, the others 15 ms; latencyThreshold 25 ms. Replica")
print("ids are inventory order (replica 1 = host2).\n")
print("| run | terms | petitions sent | petitions accepted | final leader | lowest penalty | penalty scores |")
print("|---|---|---|---|---|---|---|")
for r in summary["runs"]:
    e = r["election"]
    scores = ", ".join(f"{k}: {v:.1f}" for k, v in sorted(e["penalty_scores"].items()))
    print(f"| {r['label']} | {len(e['leaders'])} | {e['petitions_sent']} | {e['petitions_accepted']} | "
          f"{e['final_leader']} | {e['lowest_penalty']} | {scores} |")
EOF
echo "wrote $OUT"
