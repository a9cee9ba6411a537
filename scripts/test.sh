#!/usr/bin/env bash
# Every test: installs what they need (scripts/install-deps.sh), runs `cargo test --workspace`
# (unit tests, and the lab tests: namespaced hosts with real sshd, ZooKeeper, the kernel), then
# the real-kernel tier (scripts/kernel-test.sh: netem, kprobes and eBPF in VMs on Debian's 6.1
# and 6.12 kernels) and a VM with a clock of its own (scripts/clock-vm-test.sh). Needs root: run as root it goes ahead (no sudo needed), run as a user it
# re-executes itself through sudo. .ci/run calls it after fmt and clippy.
#
#   scripts/test.sh
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "test.sh needs root (network namespaces, VMs): run it as root; sudo is not installed" >&2
        exit 1
    fi
    exec sudo -- "$0" "$@"
fi
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo test --workspace
scripts/kernel-test.sh
scripts/clock-vm-test.sh
