#!/usr/bin/env bash
# A host with a clock of its own: boots Debian's kernel in a VM (virtme-ng, TCG) that runs sshd
# behind a QEMU user-network port forward, and runs the ignored test
# `clocks::a_vm_clock_shifted_by_40_ms_is_measured_and_corrected` on this machine (the
# controller) against it. The kernel tier's VM cannot do this: it runs the controller and the
# lab hosts in one kernel, which has one CLOCK_REALTIME (time namespaces leave it alone).
#
#   scripts/clock-vm-test.sh [KERNEL]      # 6.1 (default), 6.12, a release or a vmlinuz path
#
# Needs root, vng and qemu-system-x86_64 (scripts/install-deps.sh). The VM boots this machine's
# filesystem read-only with overlays, so it runs the orch-node built here; only the scratch
# directory (keys, sshd config, the VM's log) is written through. Everything is removed at the
# end, also on failure: the VM is stopped through a file it watches, then by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Inside the VM: the network QEMU forwards to, sshd on it, until the controller is done.
if [ "${1:-}" = --guest ]; then
    dir=$2
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    nic=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
    ip link set "$nic" up
    ip addr add 10.0.2.15/24 dev "$nic"
    mkdir -p /run/sshd
    /usr/sbin/sshd -f /dev/null -h "$dir/host_key" -o ListenAddress=10.0.2.15 \
        -o AuthorizedKeysFile="$dir/authorized_keys" -o PermitRootLogin=prohibit-password \
        -o StrictModes=no -o UsePAM=no -o PidFile="$dir/sshd.pid" -E "$dir/sshd.log"
    echo "guest: $(uname -r), sshd on $nic" >"$dir/guest.log"
    for _ in $(seq 900); do
        [ -e "$dir/stop" ] && break
        sleep 1
    done
    exit 0
fi

[ "$(id -u)" = 0 ] || { echo "$0 must run as root" >&2; exit 1; }
case "${1:-6.1}" in
/*) image=$1 ;;
*.*.*) image=/boot/vmlinuz-$1 ;;
*) image=$(find /boot -maxdepth 1 -name "vmlinuz-${1:-6.1}.*-amd64" | sort -V | tail -n 1) ;;
esac
[ -r "$image" ] || { echo "$0: no kernel image ${1:-6.1} in /boot" >&2; exit 1; }

echo "building orch-node and the test executable"
cargo build -q -p orch-node
tests=$(cargo test -p orch --test it --no-run --message-format=json |
    python3 -c 'import json,sys
paths=[m["executable"] for m in map(json.loads, sys.stdin) if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["kind"]==["test"]]
print(paths[-1])')

dir=$(mktemp -d /var/tmp/orch-clock-vm.XXXXXX)
vm=
cleanup() {
    touch "$dir/stop"
    if [ -n "$vm" ]; then
        for _ in $(seq 60); do kill -0 "$vm" 2>/dev/null || break; sleep 1; done
        kill "$vm" 2>/dev/null || true
        wait "$vm" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$dir/host_key.pub")" >"$dir/known_hosts"
mkdir -p "$dir/orch/bin"
ln -s "$root/target/debug/orch-node" "$dir/orch/bin/orch-node"
cat >"$dir/inventory.yaml" <<YAML
defaults:
  user: root
  identity_file: $dir/id_ed25519
  known_hosts_file: $dir/known_hosts
  control_dir: $dir/ssh
  host_key: strict
  connect_timeout_secs: 30
  orch_dir: $dir/orch
hosts:
  - name: vm
    address: 127.0.0.1
    port: $port
    experiment_ip: 10.0.2.15
YAML

echo "booting $image (TCG), sshd forwarded to 127.0.0.1:$port"
vng -r "$image" --disable-kvm --force-9p --memory 1G --cpus 2 --empty-passwords --rwdir "$dir" \
    --qemu-opts="-netdev user,id=clk,hostfwd=tcp:127.0.0.1:$port-10.0.2.15:22 -device virtio-net-pci,netdev=clk" \
    --exec "$root/scripts/clock-vm-test.sh --guest $dir" >"$dir/vm.log" 2>&1 &
vm=$!
up=false
for _ in $(seq 180); do
    if ssh -q -p "$port" -i "$dir/id_ed25519" -o UserKnownHostsFile="$dir/known_hosts" \
        -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -o BatchMode=yes root@127.0.0.1 true; then
        up=true
        break
    fi
    kill -0 "$vm" 2>/dev/null || break
    sleep 1
done
if ! $up; then
    echo "the VM's sshd did not answer; its console:" >&2
    tail -n 40 "$dir/vm.log" >&2
    cat "$dir/sshd.log" >&2 2>/dev/null || true
    exit 1
fi
cat "$dir/guest.log"
ORCH_CLOCK_VM_INVENTORY=$dir/inventory.yaml "$tests" clocks::a_vm_clock --include-ignored --nocapture
