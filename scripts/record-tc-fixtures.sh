#!/usr/bin/env bash
# Records what the real tc prints for orch's netem setup, as fixtures for the unit tests of
# orchestrator/src/delay/netem.rs: `scripts/record-tc-fixtures.sh OUTDIR` (as root, on a kernel
# with sch_netem; scripts/kernel-test.sh --record runs it in the VM on each kernel).
#
# In a scratch network namespace it creates a dummy interface, runs the exact commands that
# netem.rs's unit test expects `netem::install` to produce (they are saved as commands.txt and
# the unit test compares them with `netem::install`, so the fixtures cannot drift from the
# code), and records `tc -j qdisc show`, `tc class show`, `tc -j class show` and
# `tc -j filter show` before, during and after (`tc qdisc del ... root`), and a root netem as
# the seed made it (a root orch must not replace). SOURCE.md says which
# tc, kernel and commands produced them.
set -euo pipefail

out=${1:?usage: $0 OUTDIR}
iface=enp6s0f0
ns=orch-k-record-$$
mkdir -p "$out"

cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link add "$iface" type dummy
ip -n "$ns" link set "$iface" up

cat >"$out/commands.txt" <<EOF
tc qdisc replace dev $iface root handle 4f52: htb
tc class add dev $iface parent 4f52: classid 4f52:1 htb rate 100gbit quantum 60000
tc qdisc add dev $iface parent 4f52:1 handle 5001: netem limit 100000 delay 6000us 3000us distribution pareto
tc filter add dev $iface parent 4f52: protocol ip pref 1 u32 match ip dst 10.0.2.2/32 flowid 4f52:1
tc class add dev $iface parent 4f52: classid 4f52:2 htb rate 100gbit quantum 60000
tc qdisc add dev $iface parent 4f52:2 handle 5002: netem limit 100000 delay 20000us loss 1.5%
tc filter add dev $iface parent 4f52: protocol ip pref 1 u32 match ip dst 10.0.3.2/32 flowid 4f52:2
EOF

show() { # show STAGE: the four read-backs of the interface, named after STAGE
    ip netns exec "$ns" tc -j qdisc show dev "$iface" >"$out/$1-qdisc.json"
    ip netns exec "$ns" tc class show dev "$iface" >"$out/$1-class.txt"
    ip netns exec "$ns" tc -j class show dev "$iface" >"$out/$1-class-j.txt"
    ip netns exec "$ns" tc -j filter show dev "$iface" >"$out/$1-filter.json"
}

show before
while read -r line; do
    # shellcheck disable=SC2086
    ip netns exec "$ns" $line
done <"$out/commands.txt"
show installed
ip netns exec "$ns" tc qdisc del dev "$iface" root
show removed
# The seed's own setup, a root qdisc orch did not make (it must refuse to replace it).
ip netns exec "$ns" tc qdisc add dev "$iface" root netem delay 6ms 3ms distribution pareto
ip netns exec "$ns" tc -j qdisc show dev "$iface" >"$out/foreign-qdisc.json"

cat >"$out/SOURCE.md" <<EOF
Recorded by \`scripts/record-tc-fixtures.sh\` on $(date -u +%Y-%m-%d), not edited by hand.

- tc: \`$(tc -V)\`
- kernel: \`$(uname -r)\` ($(uname -v))
- interface: a dummy \`$iface\` in a scratch network namespace

\`before-*\`: the fresh interface; \`installed-*\`: after the commands in \`commands.txt\`;
\`removed-*\`: after \`tc qdisc del dev $iface root\`. Each stage has \`tc -j qdisc show dev
$iface\` (\`*-qdisc.json\`), \`tc class show dev $iface\` (\`*-class.txt\`), \`tc -j class show
dev $iface\` (\`*-class-j.txt\`: iproute2 6.1 prints HTB classes as text even with \`-j\`) and
\`tc -j filter show dev $iface\` (\`*-filter.json\`). \`foreign-qdisc.json\`: \`tc -j qdisc show\`
after the seed's \`tc qdisc add dev $iface root netem delay 6ms 3ms distribution pareto\`.
EOF
echo "recorded into $out"
