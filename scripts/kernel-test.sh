#!/usr/bin/env bash
# The real-kernel tier: runs the tests that need a kernel with sch_netem and kprobes (this
# project's build machines have neither) inside a VM booted on real Debian kernels.
#
#   scripts/kernel-test.sh [--record] [--only TEST] [KERNEL...]
#
# KERNEL is `6.1` or `6.12` (the newest /boot/vmlinuz-6.1.* or -6.12.*), a release such as
# `6.1.0-57-amd64`, or a path to a vmlinuz; with none, both 6.1 and 6.12. scripts/install-deps.sh
# installs the kernels, QEMU, busybox-static and virtme-ng. Needs root (the lab tests create
# network namespaces) and runs as root inside the VM. docs/kernel-tier.md explains the tier.
#
# The test executables are built here before any VM boots (never inside it); virtme-ng boots
# each kernel with this machine's filesystem as a read-only root with overlays, so the VM runs
# the very binaries built here. KVM hangs at boot on the project's machines (nested
# virtualization), so the VM runs under TCG, about 10x slower. Per kernel the VM runs:
#   - orchestrator/tests/it/kernel.rs with --include-ignored: `orch check` (netem, kprobes),
#     netem delays between lab hosts applied, read back, measured with ping and removed, and
#     netem's reordering of one flow against the delay model;
#   - node/tests/it/rtt.rs: the eBPF RTT source against `ss -ti` (and its fallbacks).
# With --only TEST the VM runs just the tests of orchestrator/tests/it/kernel.rs whose names
# contain TEST (e.g. `--only netem_reorders`), and not node/tests/it/rtt.rs.
# With --record it instead records tc's output into orchestrator/tests/fixtures/tc/KERNEL/
# (scripts/record-tc-fixtures.sh).
#
# Logs: target/kernel-test/KERNEL/*.log. Exit status: 0 only if every kernel passed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Inside the VM (`vng --exec` runs this script again): run each test binary, write its log and
# exit status into the results directory.
if [ "${1:-}" = --guest ]; then
    results=$2
    shift 2
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
    export HOME=/root
    status=0
    {
        echo "kernel: $(uname -r)"
        echo "tc: $(tc -V)"
    } >"$results/guest.log"
    for entry in "$@"; do
        name=${entry%%=*}
        command=${entry#*=}
        start=$(date +%s)
        rc=0
        # shellcheck disable=SC2086
        (cd "$root" && $command) >"$results/$name.log" 2>&1 || rc=$?
        echo "$name: rc=$rc in $(($(date +%s) - start)) s" >>"$results/guest.log"
        [ "$rc" = 0 ] || status=1
    done
    echo "$status" >"$results/status"
    exit 0
fi

record=false
if [ "${1:-}" = --record ]; then
    record=true
    shift
fi
only=""
if [ "${1:-}" = --only ]; then
    only=${2:?--only needs a test name}
    shift 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "$0 must run as root (the lab tests create network namespaces)" >&2
    exit 1
fi
for tool in vng qemu-system-x86_64; do
    command -v "$tool" >/dev/null || {
        echo "$0: $tool is missing; run scripts/install-deps.sh" >&2
        exit 1
    }
done

# The vmlinuz of a kernel argument.
vmlinuz_of() {
    case "$1" in
    /*) echo "$1" ;;
    *.*.*) echo "/boot/vmlinuz-$1" ;;
    *) find /boot -maxdepth 1 -name "vmlinuz-$1.*-amd64" | sort -V | tail -n 1 ;;
    esac
}

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)
images=()
for k in "${kernels[@]}"; do
    image=$(vmlinuz_of "$k")
    if [ -z "$image" ] || [ ! -r "$image" ]; then
        echo "$0: no kernel image for $k in /boot; run scripts/install-deps.sh" >&2
        exit 1
    fi
    images+=("$image")
done

# The path of the test executable `cargo test ARGS --no-run` builds.
test_binary() {
    cargo test "$@" --no-run --message-format=json |
        python3 -c 'import json,sys
paths=[m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]]
print(paths[-1])'
}

tests=()
if ! $record; then
    echo "building the test executables"
    orch_tests=$(test_binary -p orch --test it)
    # The lab tests inside the VM run one at a time: TCG makes everything ~10x slower, and
    # parallel SSH handshakes only slow each other down. --nocapture: the logs keep what the
    # tests measured (RTTs, sources) even when they pass. Each crate has one test binary; the
    # filter picks its kernel module (orch) and its rtt module (orch-node).
    tests=("orch-kernel=$orch_tests kernel::$only --include-ignored --test-threads 1 --nocapture")
    if [ -z "$only" ]; then
        node_tests=$(test_binary -p orch-node --test it)
        tests+=("node-rtt=$node_tests rtt:: --test-threads 1 --nocapture")
    fi
fi

failed=0
for image in "${images[@]}"; do
    release=${image##*/vmlinuz-}
    results=$root/target/kernel-test/$release
    rm -rf "$results"
    mkdir -p "$results"
    guest=("${tests[@]}")
    if $record; then
        guest=("record=$root/scripts/record-tc-fixtures.sh $results/tc")
    fi
    echo "== $release: booting ($image)"
    start=$(date +%s)
    # The VM gets 2 vCPUs and 2 GiB; the limit catches a VM that hangs instead of failing.
    # --empty-passwords: virtme-ng otherwise locks every account in the VM's /etc/shadow, and
    # sshd refuses a locked root even with a key (the lab's sshd allows keys only).
    timeout 1500 vng -r "$image" --disable-kvm --force-9p --memory 2G --cpus 2 --empty-passwords \
        --rwdir "$results" --exec "$root/scripts/kernel-test.sh --guest $results ${guest[*]@Q}" \
        >"$results/vm.log" 2>&1 || echo "vng exited with $?" >>"$results/vm.log"
    wall=$(($(date +%s) - start))
    if [ "$(cat "$results/status" 2>/dev/null)" = 0 ]; then
        echo "== $release: passed in $wall s"
    else
        echo "== $release: FAILED in $wall s (logs: $results)"
        tail -n 30 "$results/vm.log"
        failed=1
    fi
    cat "$results/guest.log" 2>/dev/null | sed 's/^/   /'
    if $record && [ -d "$results/tc" ]; then
        rm -rf "orchestrator/tests/fixtures/tc/$release"
        mkdir -p orchestrator/tests/fixtures/tc
        cp -r "$results/tc" "orchestrator/tests/fixtures/tc/$release"
        echo "   fixtures: orchestrator/tests/fixtures/tc/$release"
    fi
done
exit $failed
