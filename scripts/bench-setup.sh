#!/usr/bin/env bash
# Benchmark: `orch setup` on 5 lab hosts, cold (empty hosts, no SSH connection up) and warm
# (nothing changed: a rerun), side by side with an Ansible playbook doing the same work (copy
# the binary with a checksum, unarchive ZooKeeper, template zoo.cfg and myid) and with raw
# parallel scp of the same bytes. Needs root, hyperfine, ansible-core and Debian's zookeeper
# package; writes docs/bench-setup.md.
#
#   sudo scripts/bench-setup.sh
#
# orch-node is built from a copy of the source tree taken at the start (or from
# $ORCH_SOURCE_DIR if set), so edits made while the benchmark runs do not trigger builds. The
# build itself is not measured: every timed run finds it in the build cache.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
command -v ansible-playbook >/dev/null || pip install -q ansible-core
cargo build --release -q -p orch
ORCH=${CARGO_TARGET_DIR:-$PWD/target}/release/orch

# Short: the SSH master sockets live below it, and socket paths are limited to 107 bytes.
WORK=$(mktemp -d /var/tmp/obs.XXXXXX)
export ORCH_LAB_DIR=$WORK/state
LAB=bset
NET=10.249
N=5
cleanup() { "$ORCH" lab down --name "$LAB" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

if [ -z "${ORCH_SOURCE_DIR:-}" ]; then
    mkdir -p "$WORK/src"
    tar --exclude=./.git --exclude=target -cf - . | tar -xf - -C "$WORK/src"
    export ORCH_SOURCE_DIR=$WORK/src
fi

"$ORCH" lab up --hosts "$N" --name "$LAB" --net "$NET" -i "$WORK/lab.yaml" >/dev/null
STATE=$ORCH_LAB_DIR/$LAB
KEY=$STATE/id_ed25519
KNOWN=$STATE/known_hosts
SSH_OPTS="-i $KEY -o UserKnownHostsFile=$KNOWN -o StrictHostKeyChecking=yes -o BatchMode=yes"
ADDRS=$(seq -f "$NET.%g.2" 1 "$N" | tr '\n' ' ')

scripts/make-zk-tarball.sh "$WORK/apache-zookeeper-3.8.0-bin.tar.gz" 2>/dev/null >/dev/null
TARBALL=$WORK/apache-zookeeper-3.8.0-bin.tar.gz
{ cat "$WORK/lab.yaml"; echo "zookeeper:"; echo "  tarball: $TARBALL"; } > "$WORK/orch.yaml"

# Build (not measured), then find the binary every tool pushes.
"$ORCH" -i "$WORK/orch.yaml" setup >/dev/null 2>&1
BUILD_DIR=${CARGO_TARGET_DIR:-$ORCH_SOURCE_DIR/target}/orch-artifacts
if [ "${CARGO_TARGET_DIR:-}" ] && [ "${CARGO_TARGET_DIR#/}" = "$CARGO_TARGET_DIR" ]; then
    BUILD_DIR=$ORCH_SOURCE_DIR/$CARGO_TARGET_DIR/orch-artifacts
fi
BINARY=$(sed -n 's/^path=//p' "$BUILD_DIR/stamps/orch-node-x86_64")
BYTES=$(( $(wc -c < "$BINARY") + $(wc -c < "$TARBALL") ))

# The Ansible side: the same files, the same templates, its own directory on the hosts.
{
    echo "[lab]"
    i=1
    for a in $ADDRS; do echo "$a zk_id=$i"; i=$((i + 1)); done
    echo "[lab:vars]"
    echo "ansible_user=root"
    echo "ansible_python_interpreter=/usr/bin/python3"
    echo "ansible_ssh_private_key_file=$KEY"
    echo "ansible_ssh_common_args='-o UserKnownHostsFile=$KNOWN -o StrictHostKeyChecking=yes'"
} > "$WORK/ansible.ini"
cat > "$WORK/zoo.cfg.j2" <<'EOF'
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/root/.orch-ansible/zk-data
clientPort=2181
4lw.commands.whitelist=srvr, stat, ruok, mntr
admin.enableServer=false
{% for h in groups['lab'] %}
server.{{ hostvars[h].zk_id }}={{ h }}:4888:5888
{% endfor %}
EOF
printf '{{ zk_id }}\n' > "$WORK/myid.j2"
cat > "$WORK/setup.yml" <<EOF
- hosts: lab
  gather_facts: false
  vars:
    d: /root/.orch-ansible
  tasks:
    - file: {path: "{{ d }}/{{ item }}", state: directory}
      loop: [bin, conf, zk-data, zookeeper]
    - copy: {src: "$BINARY", dest: "{{ d }}/bin/orch-node", mode: "0755", checksum: "$(sha1sum < "$BINARY" | cut -c1-40)"}
    - unarchive: {src: "$TARBALL", dest: "{{ d }}/zookeeper", creates: "{{ d }}/zookeeper/apache-zookeeper-3.8.0-bin/bin/zkServer.sh"}
    - template: {src: "$WORK/zoo.cfg.j2", dest: "{{ d }}/conf/zoo.cfg"}
    - template: {src: "$WORK/myid.j2", dest: "{{ d }}/zk-data/myid"}
EOF

# Closes every SSH master whose socket lives under a directory.
exit_masters() {
    { find "$1" -type s 2>/dev/null || true; } | while read -r s; do ssh -O exit -S "$s" x 2>/dev/null || true; done
}
# Empties every host and closes every connection: the next run starts from nothing.
reset_hosts() {
    for i in $(seq 1 "$N"); do
        home=$STATE/hosts/h$i/home
        rm -rf "$home/.orch" "$home/.orch-ansible" "$home/orch-node" "$home/apache-zookeeper-3.8.0-bin.tar.gz"
    done
    exit_masters "$STATE/ssh"
    exit_masters "$WORK/ansible-cp"
}
export -f exit_masters reset_hosts
export STATE N WORK

ORCH_SETUP="$ORCH -i $WORK/orch.yaml setup >/dev/null 2>&1"
ANSIBLE="ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_PIPELINING=True ANSIBLE_SSH_CONTROL_PATH_DIR=$WORK/ansible-cp ansible-playbook -i $WORK/ansible.ini -f $N $WORK/setup.yml >/dev/null"
SCP="for a in $ADDRS; do scp -q $SSH_OPTS $BINARY $TARBALL root@\$a: & done; wait"

# Bytes orch sends cold and warm, from its own summary line.
reset_hosts
COLD_LINE=$("$ORCH" -i "$WORK/orch.yaml" setup 2>&1 >/dev/null | grep '^setup: ')
WARM_LINE=$("$ORCH" -i "$WORK/orch.yaml" setup 2>&1 >/dev/null | grep '^setup: ')

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine --shell bash --style basic --runs 10 --export-markdown "$WORK/results.md" \
    --export-json "$WORK/results.json" \
    --prepare "reset_hosts" -n "orch setup, cold" "$ORCH_SETUP" \
    --prepare "true" -n "orch setup, warm (nothing changed)" "$ORCH_SETUP" \
    --prepare "reset_hosts" -n "ansible-playbook, cold" "$ANSIBLE" \
    --prepare "true" -n "ansible-playbook, warm (nothing changed)" "$ANSIBLE" \
    --prepare "reset_hosts" -n "raw parallel scp of the same bytes, cold" "$SCP" \
    >/dev/null

# Both tools did the whole job: check every host after one more cold run of each.
reset_hosts
eval "$ANSIBLE"
eval "$ORCH_SETUP"
for i in $(seq 1 "$N"); do
    for d in "$STATE/hosts/h$i/home/.orch" "$STATE/hosts/h$i/home/.orch-ansible"; do
        cmp -s "$BINARY" "$d/bin/orch-node"
        [ "$(grep -c '^server\.' "$d/conf/zoo.cfg")" = "$N" ]
        [ "$(cat "$d/zk-data/myid")" = "$i" ]
        ls "$d"/zookeeper/*/bin/zkServer.sh >/dev/null
    done
done

{
    echo "# orch setup vs Ansible vs raw scp"
    echo
    echo "Produced by \`sudo scripts/bench-setup.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, kernel $(uname -r),"
    echo "$(ssh -V 2>&1), $(ansible-playbook --version 2>/dev/null | head -1), hyperfine 10 runs each."
    echo
    echo "Work: $N lab hosts each get orch-node ($(wc -c < "$BINARY") bytes, x86_64 musl) and a"
    echo "ZooKeeper tarball ($(wc -c < "$TARBALL") bytes, made by scripts/make-zk-tarball.sh), unpacked,"
    echo "plus a rendered zoo.cfg (5 servers) and myid: $BYTES bytes per host, $((BYTES * N)) in all."
    echo "*Cold*: every host empty and no SSH connection up (the orch-node build is cached, as"
    echo "after any earlier setup). *Warm*: a rerun with nothing changed, connections up (orch's"
    echo "masters persist 10 minutes; Ansible's ControlPersist 60 s). Raw scp copies the two files"
    echo "into the home directory (a new connection each time, one scp per host, all hosts in"
    echo "parallel) and unpacks nothing."
    echo
    echo "orch's own summary, cold then warm:"
    echo
    echo "    $COLD_LINE"
    echo "    $WARM_LINE"
    echo
    cat "$WORK/results.md"
    echo
    python3 - "$WORK/results.json" <<'PY'
import json, sys
mean = {r["command"]: r["mean"] for r in json.load(open(sys.argv[1]))["results"]}
warm = mean["orch setup, warm (nothing changed)"]
ansible = mean["ansible-playbook, warm (nothing changed)"]
cold, scp = mean["orch setup, cold"], mean["raw parallel scp of the same bytes, cold"]
print("Against the targets:")
print()
print(f"- warm rerun: {warm:.3f} s (target: under 1 s);")
print(f"- Ansible's warm rerun takes {ansible / warm:.0f}x as long (target: at least 10x);")
print(f"- cold: {cold / scp:.2f}x the time of raw parallel scp of the same bytes (target: within 2x).")
PY
    echo
    echo "The machine was not idle: load average $LOAD (1, 5, 15 min) when the runs started, from"
    echo "other work sharing its cores; absolute times carry that noise, the ratios less so."
} > docs/bench-setup.md
echo "wrote docs/bench-setup.md"
