#!/usr/bin/env bash
# The main job on the embedded default: the seed's ZooKeeper leader-placement experiment on a
# local lab of 5 hosts (network namespaces with their own sshd; no cluster needed). Needs root:
# run as root it goes ahead (no sudo needed), run as a user it re-executes itself through sudo.
#
#   scripts/demo.sh                 # results land in ./results/zk-leader-placement-lab/latest/
#
# Steps, each an ordinary orch command: install what is missing, build, `orch lab up`,
# `orch setup` (orch-node + a ZooKeeper tarball made from Debian's package), `orch run` of
# scenarios/zk-leader-placement-lab.yaml, `orch fetch-logs`, and `orch lab down` (always).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "demo.sh needs root (network namespaces): run it as root; sudo is not installed" >&2
        exit 1
    fi
    exec sudo -- "$0" "$@"
fi
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release -q -p orch
orch=$PWD/target/release/orch
work=$(mktemp -d /var/tmp/orch-demo.XXXXXX)
export ORCH_LAB_DIR=$work/lab
trap '"$orch" lab down --name demo; rm -rf "$work"' EXIT

"$orch" lab up --hosts 5 --name demo -i "$work/lab.yaml"
scripts/make-zk-tarball.sh "$work/zk.tar.gz"
"$orch" -i "$work/lab.yaml" setup --zookeeper "$work/zk.tar.gz"
"$orch" -i "$work/lab.yaml" run --scenario scenarios/zk-leader-placement-lab.yaml
"$orch" -i "$work/lab.yaml" fetch-logs
