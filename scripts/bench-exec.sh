#!/usr/bin/env bash
# Benchmark: `orch exec -- true` on 5 and 20 lab hosts, side by side with raw parallel ssh and
# Ansible ad-hoc (`ansible all -m raw -a true -f 20`), cold (no SSH connection up) and warm
# (master connections up). Needs root, hyperfine and ansible-core; writes docs/bench-exec.md.
#
#   sudo scripts/bench-exec.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
command -v ansible >/dev/null || pip install -q ansible-core
cargo build --release -q -p orch
ORCH=$PWD/target/release/orch

WORK=$(mktemp -d /var/tmp/orch-bench.XXXXXX)
export ORCH_LAB_DIR=$WORK/state
LAB=bench
cleanup() { "$ORCH" lab down --name "$LAB" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

"$ORCH" lab up --hosts 20 --name "$LAB" --net 10.250 -i "$WORK/lab.yaml" >/dev/null
STATE=$ORCH_LAB_DIR/$LAB
KEY=$STATE/id_ed25519
KNOWN=$STATE/known_hosts
SSH_OPTS="-i $KEY -o UserKnownHostsFile=$KNOWN -o StrictHostKeyChecking=yes -o BatchMode=yes"

# Closes every SSH master whose socket lives under a directory.
exit_masters() { find "$1" -type s 2>/dev/null | while read -r s; do ssh -O exit -S "$s" x 2>/dev/null || true; done; }
export -f exit_masters

OUT=$WORK/results.md
: > "$OUT"
for N in 5 20; do
    HOSTS=$(seq -f 'host%g' 1 "$N" | paste -sd, -)
    ADDRS=$(seq -f '10.250.%g.2' 1 "$N" | tr '\n' ' ')
    {
        echo "[lab]"
        for a in $ADDRS; do echo "$a"; done
        echo "[lab:vars]"
        echo "ansible_user=root"
        echo "ansible_ssh_private_key_file=$KEY"
        echo "ansible_ssh_common_args='-o UserKnownHostsFile=$KNOWN -o StrictHostKeyChecking=yes'"
    } > "$WORK/ansible-$N.ini"
    RAW_COLD="for a in $ADDRS; do ssh $SSH_OPTS root@\$a true & done; wait"
    RAW_WARM="for a in $ADDRS; do ssh $SSH_OPTS -o ControlMaster=auto -o ControlPath=$WORK/raw-%h -o ControlPersist=120 root@\$a true & done; wait"
    ANSIBLE="ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_CONTROL_PATH_DIR=$WORK/ansible-cp ansible all -i $WORK/ansible-$N.ini -m raw -a true -f 20 >/dev/null"
    hyperfine --shell bash --style basic --warmup 1 --runs 10 --export-markdown "$WORK/n$N.md" \
        --prepare "exit_masters $STATE/ssh" -n "orch exec, cold ($N hosts)" "$ORCH -i $WORK/lab.yaml exec --hosts $HOSTS -- true" \
        --prepare "true" -n "orch exec, warm ($N hosts)" "$ORCH -i $WORK/lab.yaml exec --hosts $HOSTS -- true" \
        --prepare "true" -n "raw parallel ssh, cold ($N hosts)" "$RAW_COLD" \
        --prepare "true" -n "raw parallel ssh + ControlMaster, warm ($N hosts)" "$RAW_WARM" \
        --prepare "exit_masters $WORK/ansible-cp" -n "ansible -m raw, cold ($N hosts)" "$ANSIBLE" \
        --prepare "true" -n "ansible -m raw, warm ($N hosts)" "$ANSIBLE" \
        >/dev/null
    cat "$WORK/n$N.md" >> "$OUT"
    echo >> "$OUT"
    exit_masters "$WORK"
done

{
    echo "# orch exec vs raw ssh vs Ansible"
    echo
    echo "Produced by \`sudo scripts/bench-exec.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r),"
    echo "$(ssh -V 2>&1), $(ansible --version | head -1), hyperfine 10 runs each (warm runs reuse"
    echo "the masters the previous run left; cold runs close every master first)."
    echo
    cat "$OUT"
} > docs/bench-exec.md
exit_masters "$STATE/ssh"
echo "wrote docs/bench-exec.md"
