#!/usr/bin/env bash
# Benchmark: the lab scenario's delays applied by tc netem and by orch-node's emulator on the
# same hosts in one `orch run`, and where its YCSB tail comes from. Writes docs/bench-delay.md.
#
#   sudo scripts/bench-delay.sh     # KERNEL=6.12 (a Debian kernel in /boot, for netem), ORCH=binary
#   sudo PARTS=vm scripts/bench-delay.sh   # measure only the VM part again (or PARTS=host)
#
# 1. Here (this kernel; the build machines have no netem, so the emulator): a 5-host lab runs
#    scripts/bench-delay/tail-lab.yaml, the shipped lab scenario's workload with no delays, its
#    delays without jitter and as shipped, with YCSB's 1 ms histogram of every operation; then
#    again with ZooKeeper's forceSync=no (the transaction log's fsync out of the write path).
# 2. In a VM on Debian's kernel (virtme-ng under TCG, as scripts/kernel-test.sh; netem there):
#    a 5-host lab runs scripts/bench-delay/methods-lab.yaml, one matrix over the declared delays
#    by netem and by the emulator, with and without jitter. TCG runs everything ~10x slower, so
#    the VM's latencies compare the two methods with each other, not with the host's.
# Every run measures its delays (declared vs measured per pair, delays.json) and YCSB's latency
# per operation; scripts/bench-delay/report.py turns the two results stores into the doc.
# orch-node's emulator microbenchmark (accuracy, packet rate, CPU) is scripts/bench-emulator.sh.
set -euo pipefail
trap 'echo "bench-delay.sh: line $LINENO failed (status $?): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
root=$PWD

# Brings up lab NAME on NET with 5 hosts, its inventory at DIR/lab.yaml. NAME NET DIR [slow]
lab_up() {
    local attempt
    for attempt in 1 2 3; do
        "$ORCH" lab up --hosts 5 --name "$1" --net "$2" -i "$3/lab.yaml" && break
        # Under TCG on a busy machine a host's namespaces can miss their start deadline.
        [ -n "${4:-}" ] && [ "$attempt" -lt 3 ] || return 1
    done
    if [ -n "${4:-}" ]; then
        # TCG: SSH handshakes take longer than the lab's 2 s connect timeout.
        sed -i 's/connect_timeout_secs: 2$/connect_timeout_secs: 30/' "$3/lab.yaml"
    fi
}

# `orch setup` and `orch run` of SCENARIO with INVENTORY into DIR/results. A run that fails (a
# delay off by more than the tolerance, YCSB errors) is still reported: the report shows each
# run's status. INVENTORY SCENARIO DIR
setup_run() {
    mkdir -p "$3"
    "$ORCH" -i "$1" setup --zookeeper "$TARBALL"
    local rc=0
    "$ORCH" -i "$1" run --scenario "$2" --results "$3/results" 2> >(tee "$3/run.log" >&2) || rc=$?
    [ "$rc" = 0 ] || echo "orch run exited with $rc" >>"$3/status"
    {
        echo "kernel: $(uname -r)"
        echo "cpus: $(nproc)"
        echo "load after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$3/machine"
}

if [ "${1:-}" = --guest ]; then
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH HOME=/root
    ORCH=$2 TARBALL=$3 out=$4
    export ORCH_LAB_DIR=/var/tmp/obd-vm
    trap '"$ORCH" lab down --name bdv >/dev/null 2>&1 || true' EXIT
    {
        modprobe sch_netem
        lab_up bdv 10.192 "$out" slow
        setup_run "$out/lab.yaml" scripts/bench-delay/methods-lab.yaml "$out"
    } >"$out/guest.log" 2>&1 || echo "guest failed: $?" >>"$out/status"
    exit 0
fi

if [ "$(id -u)" != 0 ]; then
    echo "$0 must run as root (the lab creates network namespaces)" >&2
    exit 1
fi
KERNEL=${KERNEL:-6.12}
image=$(find /boot -maxdepth 1 -name "vmlinuz-$KERNEL.*-amd64" | sort -V | tail -n 1)
[ -n "$image" ] || {
    echo "$0: no Debian kernel $KERNEL in /boot; run scripts/install-deps.sh" >&2
    exit 1
}
if [ -z "${ORCH:-}" ]; then
    cargo build --release -q -p orch
    ORCH=$root/target/release/orch
fi
# Results (kept: `orch report` can re-analyse them) under target/bench-delay; the lab's state
# and SSH sockets in a short temporary directory (socket paths are limited to 107 bytes).
work=$root/target/bench-delay
PARTS=${PARTS:-host vm}
for part in host vm; do
    case " $PARTS " in *" $part "*) rm -rf "$work/$part" "$work/$part-no-fsync" ;; esac
done
mkdir -p "$work"
state=$(mktemp -d /var/tmp/obd.XXXXXX)
trap 'rm -rf "$state"' EXIT
TARBALL=$work/apache-zookeeper-bin.tar.gz
scripts/make-zk-tarball.sh "$TARBALL" >/dev/null
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

case " $PARTS " in *" host "*)
echo "== this machine: scripts/bench-delay/tail-lab.yaml, with fsync and without"
export ORCH_LAB_DIR=$state/lab
trap '"$ORCH" lab down --name bdh >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
lab_up bdh 10.191 "$work"
setup_run "$work/lab.yaml" scripts/bench-delay/tail-lab.yaml "$work/host"
printf 'templates:\n  zoo.cfg: %s\n' "$root/scripts/bench-delay/zoo-no-fsync.cfg.tera" >>"$work/lab.yaml"
setup_run "$work/lab.yaml" scripts/bench-delay/tail-lab.yaml "$work/host-no-fsync"
"$ORCH" lab down --name bdh
;; esac
case " $PARTS " in *" vm "*)
echo "== VM on $image: scripts/bench-delay/methods-lab.yaml"
# The VM sees this filesystem, so its setup finds orch-node's build in target/orch-artifacts and
# starts no cargo (the VM has no toolchain on its PATH, and building under TCG would take an
# hour): a setup of a one-host lab here makes sure that build matches the sources.
export ORCH_LAB_DIR=$state/lab
trap '"$ORCH" lab down --name bdb >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
"$ORCH" lab up --hosts 1 --name bdb --net 10.193 -i "$state/build.yaml"
"$ORCH" -i "$state/build.yaml" setup --zookeeper "$TARBALL"
"$ORCH" lab down --name bdb
mkdir -p "$work/vm"
timeout 3000 vng -r "$image" --disable-kvm --force-9p --memory 4G --cpus 2 --empty-passwords \
    --rwdir "$work/vm" --exec "$root/scripts/bench-delay.sh --guest $ORCH $TARBALL $work/vm" \
    >"$work/vm/vm.log" 2>&1 || echo "vng exited with $?" >>"$work/vm/status"
if [ -s "$work/vm/status" ] || [ ! -d "$work/vm/results" ]; then
    tail -n 40 "$work/vm/vm.log" "$work/vm/guest.log" >&2 || true
fi
;; esac

python3 scripts/bench-delay/report.py --load-start "$load_start" \
    --load-end "$(cut -d' ' -f1-3 /proc/loadavg)" "$work/host" "$work/host-no-fsync" "$work/vm" >docs/bench-delay.md.tmp
mv docs/bench-delay.md.tmp docs/bench-delay.md
echo "wrote docs/bench-delay.md; results in $work"
