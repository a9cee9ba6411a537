#!/usr/bin/env bash
# How often jittered delays reorder the packets of one flow, with the emulator and with netem,
# against the delay model (docs/delay.md, "Reordering"). It runs the two tests that measure it
# and collects the rows they print:
#   - the emulator on this machine: `cargo test -p orch --test it reorder:: -- --nocapture`
#     (tests/it/reorder.rs: a 3-host lab, `method: emulator`);
#   - netem in the kernel tier's VMs: `scripts/kernel-test.sh --only netem_reorders KERNEL`
#     (tests/it/kernel.rs, the same measurement with `method: netem`).
# Per link (15 +- 5, 2 +- 1, 100 +- 100 ms normal, a fixed 15 ms) and spacing (1, 10, 50 ms): a
# UDP flow of sequence-numbered packets; the share of adjacent pairs that arrive swapped, the
# model's P(D2 < D1 - gap) at the real spacing, and the share of packets that arrive after a
# later one. Needs root and what both tests need. Writes docs/bench-reorder.md.
#
#   sudo scripts/bench-reorder.sh [KERNEL...]     # kernels as kernel-test.sh takes them; default 6.1 6.12
set -euo pipefail
cd "$(dirname "$0")/.."

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)
work=$(mktemp -d)
trap 'rm -rf "$work" docs/bench-reorder.md.tmp' EXIT

# The rows of a test log as Markdown table rows.
rows() {
    sed -nE 's/^([a-z]+): (host[0-9]->host[0-9]) (.*), every ([0-9.]+) ms: ([0-9]+\/[0-9]+) received; adjacent pairs swapped ([0-9.]+%) \(model ([0-9.]+%), allowed ±([0-9.]+)\); packets arriving after a later one ([0-9.]+%)$/| \1 | \2 | \3 | \4 ms | \5 | \6 | \7 | ±\8 | \9 |/p' "$1"
}

load_before=$(uptime)
rc=0
cargo test -p orch --test it reorder:: -- --nocapture >"$work/emulator.log" 2>&1 || rc=$?
results=("emulator (this machine, $(uname -r)): test rc=$rc")
rows "$work/emulator.log" >"$work/rows"
for k in "${kernels[@]}"; do
    rc=0
    scripts/kernel-test.sh --only netem_reorders "$k" >"$work/kernel.log" 2>&1 || rc=$?
    release=$(sed -n 's/^== \([^:]*\): booting.*/\1/p' "$work/kernel.log")
    results+=("netem (VM, kernel $release): kernel-test.sh rc=$rc")
    rows "target/kernel-test/$release/orch-kernel.log" | sed "s/^| netem |/| netem $release |/" >>"$work/rows"
done
load_after=$(uptime)

{
    echo "# Reordering of one flow by jittered delays"
    echo
    echo "Written by \`scripts/bench-reorder.sh ${kernels[*]}\` on $(date -u '+%Y-%m-%d %H:%M UTC'); see"
    echo "[delay.md](delay.md#reordering). Load before: \`$load_before\`; after: \`$load_after\`."
    echo
    for r in "${results[@]}"; do
        echo "- $r"
    done
    echo
    echo "One UDP flow per link, all links at once, one spacing after the other (1000, 300 and 80"
    echo "packets); \"swapped\": adjacent packets (i, i + 1) that arrived in the opposite order;"
    echo "\"model\": P(D2 < D1 - gap) of the link's delay distribution at each pair's real spacing,"
    echo "averaged; \"allowed\": the test's tolerance in points (4 sampling sd + 3 points; for the fixed"
    echo "delay 0 with the emulator, 1 point with netem); \"after a later one\": packets that arrived"
    echo "after a packet sent after them (RFC 4737)."
    echo
    echo "| method | link | delay | spacing | received | swapped | model | allowed | after a later one |"
    echo "|---|---|---|---|---|---|---|---|---|"
    cat "$work/rows"
} >docs/bench-reorder.md.tmp
mv docs/bench-reorder.md.tmp docs/bench-reorder.md
cat docs/bench-reorder.md
