#!/usr/bin/env bash
# Benchmark: orch at scale, one lab per size on 5, 20 and 64 lab hosts, side by side with what
# users would otherwise run: `orch exec -- true` (cold and warm) against raw parallel ssh (warm:
# with ControlMaster) and Ansible ad-hoc; `orch setup` (cold and warm) against an Ansible
# playbook and a pyinfra deploy doing the same work, and raw parallel scp of the same bytes;
# orch's peak RSS and open file descriptors. Then the laptop case: a lab whose controller
# uplink is limited (`orch lab up --uplink 20mbit`), cold `orch setup` on 5 and 20 hosts.
# Writes docs/bench-scale.md. Needs root and Debian's zookeeper package; installs pyinfra and
# ansible-core from PyPI into a venv under /var/tmp (not part of CI).
#
# orch's, raw ssh's and raw scp's runs take seconds, so each is repeated $REPEAT times (default
# 5) and the table gives the median with min and max: one run on a shared 2-core machine can
# catch a load spike. Ansible's and pyinfra's runs take up to minutes at 64 hosts and run once;
# so do the uplink runs (orch with `--relay off` behind 20 Mbit/s takes a minute and a half).
#
#   sudo scripts/bench-scale.sh                  # SIZES="5 20 64" UPLINK_SIZES="5 20"
#   sudo SIZES="5 20" REPEAT=3 scripts/bench-scale.sh
#
# Lab names and networks: $LAB/$NET (default sa, 10.110) and $UPLINK_LAB/$UPLINK_NET (sb,
# 10.111). orch-node is built from a copy of the source tree taken at the start, so edits made
# while the benchmark runs trigger no build; the build is not measured. It goes to
# $BENCH_TARGET (default target/bench-scale), kept between runs.
set -euo pipefail
trap 'echo "bench-scale.sh: line $LINENO failed (status $?): $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."

SIZES=${SIZES-5 20 64}
UPLINK_SIZES=${UPLINK_SIZES-5 20}
UPLINK=${UPLINK:-20mbit}
REPEAT=${REPEAT:-5}
LAB=${LAB:-sa}
NET=${NET:-10.110}
UPLINK_LAB=${UPLINK_LAB:-sb}
UPLINK_NET=${UPLINK_NET:-10.111}
VENV=${VENV:-/var/tmp/orch-bench-venv}

[ -x "$VENV/bin/pyinfra" ] && [ -x "$VENV/bin/ansible" ] || {
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q pyinfra ansible-core
}
if [ -z "${ORCH:-}" ]; then
    cargo build --release -q -p orch
    ORCH=${CARGO_TARGET_DIR:-$PWD/target}/release/orch
fi

# Short: SSH master sockets live below it, and socket paths are limited to 107 bytes.
WORK=$(mktemp -d /var/tmp/obsc.XXXXXX)
export ORCH_LAB_DIR=$WORK/state
cleanup() {
    "$ORCH" lab down --name "$LAB" >/dev/null 2>&1 || true
    "$ORCH" lab down --name "$UPLINK_LAB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/src"
tar --exclude=./.git --exclude=target -cf - . | tar -xf - -C "$WORK/src"
export ORCH_SOURCE_DIR=$WORK/src
# orch-node is built into a target directory that outlives the run: identical sources match its
# stamp (which hashes the sources, not their path), and cargo is not even started; changed ones
# are rebuilt incrementally.
export CARGO_TARGET_DIR=${BENCH_TARGET:-$PWD/target/bench-scale}
BUILD_DIR=$CARGO_TARGET_DIR/orch-artifacts
scripts/make-zk-tarball.sh "$WORK/apache-zookeeper-3.8.0-bin.tar.gz" >/dev/null 2>&1
TARBALL=$WORK/apache-zookeeper-3.8.0-bin.tar.gz
RESULTS=$WORK/results.tsv
: > "$RESULTS"

# One result: size, what, seconds (the median of the runs), a free-form note, and the runs'
# min, max and count (one run: min = max = seconds).
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" "${5:-$3}" "${6:-$3}" "${7:-1}" \
        >> "$RESULTS"
}
now() { date +%s.%N; }
# Seconds `eval "$2"` took; fails the benchmark if the command fails.
timed() {
    local t0 t1
    t0=$(now)
    if ! eval "$1" > "$WORK/last.out" 2>&1; then
        echo "failed: $1" >&2
        tail -20 "$WORK/last.out" >&2
        exit 1
    fi
    t1=$(now)
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}
# Closes every SSH master whose socket lives under a directory.
exit_masters() {
    { find "$1" -type s 2>/dev/null || true; } | while read -r s; do
        ssh -O exit -S "$s" x 2>/dev/null || true
    done
}
# Runs orch with ARGS and samples its open descriptors and peak RSS (VmHWM) until it exits;
# prints "seconds max_fds peak_rss_kB" and leaves its stderr in $WORK/orch.err.
orch_sampled() {
    local t0 t1 pid fds=0 rss=0 n r
    t0=$(now)
    "$ORCH" "$@" >/dev/null 2>"$WORK/orch.err" &
    pid=$!
    while [ -d "/proc/$pid" ]; do
        # The process may exit between the test and the listing (pipefail would stop the run).
        n=$({ ls "/proc/$pid/fd" 2>/dev/null || true; } | wc -l)
        r=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status" 2>/dev/null || true)
        [ "$n" -gt "$fds" ] && fds=$n
        [ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
        sleep 0.02
    done
    if ! wait "$pid"; then
        echo "failed: orch $*" >&2
        tail -20 "$WORK/orch.err" >&2
        exit 1
    fi
    t1=$(now)
    python3 -c "print(f'{$t1 - $t0:.3f}', $fds, $rss)"
}

# orch_sampled ARGS..., its three numbers left in $t, $fds and $rss.
sampled() {
    orch_sampled "$@" > "$WORK/sample"
    read -r t fds rss < "$WORK/sample"
}
# Records size $1, name $2: the seconds command $3 took, once.
measure() {
    local v
    v=$(timed "$3")
    record "$1" "$2" "$v"
}
# Records size $1, name $2: command $4 run $REPEAT times, each after $3 (not timed; `:` for
# nothing); the median, min and max. The note ($5, default empty) gets the `setup:` summary of
# the median run when the command printed one.
repeated() {
    local runs=$WORK/runs v i
    : > "$runs"
    for i in $(seq "$REPEAT"); do
        eval "$3"
        v=$(timed "$4")
        printf '%s\t%s\n' "$v" "$(grep '^setup: ' "$WORK/last.out" || true)" >> "$runs"
    done
    python3 - "$runs" "$1" "$2" "${5:-}" >> "$RESULTS" <<'PY'
import sys
runs, size, what, note = sys.argv[1:]
rows = sorted((float(t), s) for t, s in (l.rstrip("\n").split("\t") for l in open(runs)))
median = rows[(len(rows) - 1) // 2]
note = "; ".join(x for x in (note, median[1]) if x)
print(f"{size}\t{what}\t{median[0]:.3f}\t{note}\t{rows[0][0]:.3f}\t{rows[-1][0]:.3f}\t{len(rows)}")
PY
}
# "fds=N rss_kb=N" of one run of orch with ARGS, after $1 (not timed; `:` for nothing): what
# orch holds at most, from a run of its own, since sampling slows what it measures.
footprint() {
    local prep=$1
    shift
    eval "$prep"
    sampled "$@"
    echo "fds=$fds rss_kb=$rss"
}
# Records size $1, name $2: `orch setup` (more ARGS after $5) on lab $3 with $4 hosts, from
# empty hosts, repeated; checks every host's result after each run.
cold_setup() {
    local n=$1 what=$2 lab=$3 hosts=$4 inv=$WORK/$3/orch.yaml note
    shift 4
    note=$(footprint "reset_hosts $lab $hosts" -i "$inv" setup "$@")
    repeated "$n" "$what" "verify $lab $hosts .orch; reset_hosts $lab $hosts" \
        "'$ORCH' -i '$inv' setup $*" "$note"
    verify "$lab" "$hosts" .orch
}

# `ssh [OPTS] root@ADDR true` to every address of $addrs at once; fails if any failed.
par_ssh() {
    local pids=() a p failed=0
    # shellcheck disable=SC2086
    for a in $addrs; do ssh $ssh_opts "$@" "root@$a" true & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
    return $failed
}
# scp of orch-node and the tarball to every address of $addrs at once.
par_scp() {
    local pids=() a p failed=0
    # shellcheck disable=SC2086
    for a in $addrs; do scp -q $ssh_opts "$BINARY" "$TARBALL" "root@$a:" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
    return $failed
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

# Brings lab $1 up with $2 hosts on net $3 (more flags after), writes $WORK/$1/ files.
lab_up() {
    local name=$1 n=$2 net=$3
    shift 3
    mkdir -p "$WORK/$name"
    "$ORCH" lab up --hosts "$n" --name "$name" --net "$net" -i "$WORK/$name/lab.yaml" "$@" >/dev/null
    { cat "$WORK/$name/lab.yaml"; echo "zookeeper:"; echo "  tarball: $TARBALL"; } > "$WORK/$name/orch.yaml"
}

# Every host of lab $1 ($2 hosts) empty, every connection closed.
reset_hosts() {
    local state=$ORCH_LAB_DIR/$1
    for i in $(seq 1 "$2"); do
        home=$state/hosts/h$i/home
        rm -rf "$home/.orch" "$home/.orch-ansible" "$home/.orch-pyinfra" "$home/orch-node" \
            "$home/apache-zookeeper-3.8.0-bin.tar.gz"
    done
    exit_masters "$state/ssh"
    exit_masters "$WORK/ansible-cp"
    exit_masters "$WORK/cm"
}

# Checks that directory $3 on every host of lab $1 ($2 hosts) has the whole job done.
verify() {
    local state=$ORCH_LAB_DIR/$1 d
    for i in $(seq 1 "$2"); do
        d=$state/hosts/h$i/home/$3
        cmp -s "$BINARY" "$d/bin/orch-node" || { echo "$3 on host$i: orch-node differs" >&2; exit 1; }
        [ "$(cat "$d/zk-data/myid")" = "$i" ] || { echo "$3 on host$i: myid" >&2; exit 1; }
        [ "$(grep -c '^server\.' "$d/conf/zoo.cfg")" = "$2" ] || { echo "$3 on host$i: zoo.cfg" >&2; exit 1; }
        ls "$d"/zookeeper/*/bin/zkServer.sh >/dev/null || { echo "$3 on host$i: no ZooKeeper" >&2; exit 1; }
    done
}

# The Ansible and pyinfra sides for $2 hosts of lab $1: the same files, their own directories.
write_tools() {
    local name=$1 n=$2 net=$3 state=$ORCH_LAB_DIR/$1 dir=$WORK/$1
    local key=$state/id_ed25519 known=$state/known_hosts
    {
        echo "[lab]"
        for i in $(seq 1 "$n"); do echo "$net.$i.2 zk_id=$i"; done
        echo "[lab:vars]"
        echo "ansible_user=root"
        echo "ansible_python_interpreter=/usr/bin/python3"
        echo "ansible_ssh_private_key_file=$key"
        echo "ansible_ssh_common_args='-o UserKnownHostsFile=$known -o StrictHostKeyChecking=yes'"
    } > "$dir/ansible.ini"
    {
        echo "tickTime=2000"
        echo "dataDir=DIR/zk-data"
        echo "clientPort=2181"
        for i in $(seq 1 "$n"); do echo "server.$i=$net.$i.2:4888:5888"; done
    } > "$dir/zoo.cfg"
    cat > "$dir/setup.yml" <<EOF
- hosts: lab
  gather_facts: false
  vars:
    d: /root/.orch-ansible
  tasks:
    - file: {path: "{{ d }}/{{ item }}", state: directory}
      loop: [bin, conf, zk-data, zookeeper]
    - copy: {src: "$BINARY", dest: "{{ d }}/bin/orch-node", mode: "0755"}
    - unarchive: {src: "$TARBALL", dest: "{{ d }}/zookeeper", creates: "{{ d }}/zookeeper/apache-zookeeper-3.8.0-bin/bin/zkServer.sh"}
    - template: {src: "$dir/zoo.cfg", dest: "{{ d }}/conf/zoo.cfg"}
    - copy: {content: "{{ zk_id }}\n", dest: "{{ d }}/zk-data/myid"}
EOF
    {
        echo "hosts = ["
        for i in $(seq 1 "$n"); do
            echo "    ('$net.$i.2', {'zk_id': $i, 'ssh_user': 'root', 'ssh_key': '$key',"
            echo "     'ssh_known_hosts_file': '$known', 'ssh_strict_host_key_checking': 'yes'}),"
        done
        echo "]"
    } > "$dir/inventory.py"
    cat > "$dir/deploy.py" <<EOF
from io import StringIO
from pyinfra import host
from pyinfra.operations import files, server

d = "/root/.orch-pyinfra"
for sub in ["bin", "conf", "zk-data", "zookeeper"]:
    files.directory(name=f"directory {sub}", path=f"{d}/{sub}")
files.put(name="orch-node", src="$BINARY", dest=f"{d}/bin/orch-node", mode="755")
files.put(name="tarball", src="$TARBALL", dest=f"{d}/apache-zookeeper-3.8.0-bin.tar.gz")
server.shell(
    name="unpack",
    commands=[f"[ -f {d}/zookeeper/apache-zookeeper-3.8.0-bin/bin/zkServer.sh ] || "
              f"tar -xzf {d}/apache-zookeeper-3.8.0-bin.tar.gz -C {d}/zookeeper"],
)
files.put(name="zoo.cfg", src="$dir/zoo.cfg", dest=f"{d}/conf/zoo.cfg")
files.put(name="myid", src=StringIO(f"{host.data.zk_id}\n"), dest=f"{d}/zk-data/myid")
EOF
}

# Writes docs/bench-scale.md from the sizes done so far ($done, $done_up): after every size, so
# a run cut short still leaves what it measured.
write_doc() {
python3 - "$RESULTS" "$BYTES" "$UPLINK" "$(wc -c < "$BINARY")" "$(wc -c < "$TARBALL")" \
    "$(nproc)" "$(uname -r)" "$(ssh -V 2>&1)" "$("$VENV/bin/ansible" --version | sed -n 1p)" \
    "$("$VENV/bin/pyinfra" --version 2>&1 | sed -n 1p)" "$done" "$done_up" \
    > docs/bench-scale.md <<'PY'
import re, sys, datetime
(results, per_host, uplink, node, tarball, cores, kernel, ssh, ansible, pyinfra, sizes,
 uplink_sizes) = [a.strip() for a in sys.argv[1:]]
per_host = int(per_host)
rows = {}
for line in open(results):
    size, what, value, note, low, high, runs = line.rstrip("\n").split("\t")
    rows.setdefault(size, {})[what] = (value, note, low, high, int(runs))

def t(size, what):
    return float(rows[size][what][0])

def sent(note):
    m = re.search(r"; (\d+) bytes \(.*?\) sent by the controller", note)
    return int(m.group(1)) if m else None

out = []
p = out.append
p("# orch at scale: exec and setup on 5, 20 and 64 hosts, and behind a slow uplink")
p("")
p(f"Produced by `sudo scripts/bench-scale.sh` on {datetime.date.today()} "
  f"(SIZES=\"{sizes}\", UPLINK_SIZES=\"{uplink_sizes}\"), {cores} cores, kernel {kernel},")
p(f"{ssh}, {ansible}, {pyinfra}. orch's, raw ssh's and raw scp's measurements are repeated")
p("(the runs column) and *seconds* is their median, with min and max beside it, so that one load")
p("spike on this shared 2-core machine does not decide a verdict; the verdicts compare medians.")
p("Ansible's and pyinfra's runs (minutes at 64 hosts) and the uplink runs are single runs. The")
p("fds and rss of orch's rows come from one more run of its own, sampled every 20 ms (the sampling")
p("would slow the timed runs).")
p("")
p(f"Work per host: orch-node ({node} bytes, x86_64 musl) and a ZooKeeper tarball ({tarball} bytes),")
p(f"unpacked, plus zoo.cfg and myid: {per_host} bytes per host. *Cold*: hosts empty, no SSH")
p("connection up. *Warm*: a rerun with nothing changed (orch and Ansible keep their SSH masters;")
p("raw ssh uses ControlMaster; pyinfra connects anew each run, as it always does). Raw scp copies")
p("the two files, one scp per host, all hosts at once, and unpacks nothing. orch sends the")
p("tarball's gzip bytes and its hosts keep the plain tar they unpack (docs/setup.md).")
for size in sizes.split():
    r = rows[size]
    p("")
    p(f"## {size} hosts")
    p("")
    p(f"Load average (1, 5, 15 min) before: {r['load'][0]}; after: {r['load-after'][0]}.")
    p("")
    p("| what | seconds | min | max | runs | note |")
    p("|---|---:|---:|---:|---:|---|")
    for what, (value, note, low, high, runs) in r.items():
        if not what.startswith("load"):
            p(f"| {what} | {float(value):.3f} | {float(low):.3f} | {float(high):.3f} | {runs} "
              f"| {note} |")
    p("")
    warm = t(size, "orch setup, warm")
    pyw, anw = t(size, "pyinfra deploy, warm"), t(size, "ansible-playbook, warm")
    cold, scp = t(size, "orch setup, cold"), t(size, "raw parallel scp of the same bytes, cold")
    ew, sw = t(size, "orch exec, warm"), t(size, "raw parallel ssh, warm (ControlMaster)")
    def verdict(ok):
        return "met" if ok else "NOT met"
    p(f"- warm `orch setup`: {warm:.3f} s (under 1 s: {verdict(warm < 1)}); pyinfra's warm run "
      f"takes {pyw / warm:.1f}x as long, Ansible's {anw / warm:.1f}x (at least 10x: "
      f"{verdict(pyw >= 10 * warm and anw >= 10 * warm)})")
    p(f"- warm `orch exec -- true`: {ew:.3f} s against {sw:.3f} s for raw ssh with ControlMaster "
      f"(no slower: {verdict(ew <= sw)})")
    off = t(size, "orch setup --relay off, cold")
    p(f"- cold `orch setup`: {cold / scp:.2f}x the time of raw parallel scp (within 2x: "
      f"{verdict(cold <= 2 * scp)}); with `--relay off` {off / scp:.2f}x")
if uplink_sizes.split():
    rate = int(re.match(r"\d+", uplink).group()) * {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9}[
        re.sub(r"\d+", "", uplink)]
    once = per_host * 8 / rate
    p("")
    p(f"## Behind a {uplink} controller uplink (`orch lab up --uplink {uplink}`)")
    p("")
    p(f"Sending the artifacts' {per_host} bytes once over that link takes {once:.2f} s.")
    p("")
    p("| hosts | what | seconds | controller's summary |")
    p("|---:|---|---:|---|")
    for size in uplink_sizes.split():
        for what, (value, note, *_) in rows["up" + size].items():
            if not what.startswith("load"):
                p(f"| {size} | {what} | {float(value):.3f} | `{note}` |")
    p("")
    for size in uplink_sizes.split():
        r = rows["up" + size]
        p(f"- {size} hosts: load average before {r['load'][0]}, after {r['load-after'][0]}")
    sizes_up = uplink_sizes.split()
    last = sizes_up[-1]
    cold = t("up" + last, "orch setup, cold")
    p(f"- cold `orch setup` on {last} hosts: {cold:.2f} s = {cold / once:.2f}x sending the bytes "
      f"once (at most 1.5x: {'met' if cold <= 1.5 * once else 'NOT met'})")
    counts = {s: sent(rows["up" + s]["orch setup, cold"][1]) for s in sizes_up}
    same = len(set(counts.values())) == 1
    shown = ", ".join(f"{s} hosts: {c} bytes" for s, c in counts.items())
    verdict = ("not shown (one size)" if len(counts) < 2 else "met" if same else "NOT met")
    p(f"- controller's sent bytes ({shown}) do not grow with the hosts: {verdict}")
print("\n".join(out))
PY

}

# The first setup builds orch-node (not measured); then the binary every tool pushes is known.
lab_up "$LAB" 1 "$NET"
"$ORCH" -i "$WORK/$LAB/orch.yaml" setup >/dev/null 2>&1
"$ORCH" lab down --name "$LAB" >/dev/null
BINARY=$(sed -n 's/^path=//p' "$BUILD_DIR/stamps/orch-node-x86_64")
BYTES=$(( $(wc -c < "$BINARY") + $(wc -c < "$TARBALL") ))

# One cold `orch setup` (more ARGS after $2) on the $1 hosts of the uplink lab, recorded as $2
# with orch's summary line, its result checked.
uplink_setup() {
    local n=$1 what=$2
    shift 2
    reset_hosts "$UPLINK_LAB" "$n"
    sampled -i "$WORK/$UPLINK_LAB/orch.yaml" setup "$@"
    record "up$n" "$what" "$t" "$(grep '^setup: ' "$WORK/orch.err")"
    verify "$UPLINK_LAB" "$n" .orch
}

done=
done_up=
for n in $UPLINK_SIZES; do
    echo "== $n hosts behind a $UPLINK uplink" >&2
    record "up$n" load "$(load)"
    lab_up "$UPLINK_LAB" "$n" "$UPLINK_NET" --uplink "$UPLINK"
    uplink_setup "$n" "orch setup, cold"
    uplink_setup "$n" "orch setup --relay off, cold" --relay off
    "$ORCH" lab down --name "$UPLINK_LAB" >/dev/null
    record "up$n" load-after "$(load)"
    done_up="$done_up $n"
    write_doc
done

for n in $SIZES; do
    echo "== $n hosts" >&2
    record "$n" load "$(load)"
    lab_up "$LAB" "$n" "$NET"
    state=$ORCH_LAB_DIR/$LAB
    write_tools "$LAB" "$n" "$NET"
    inv=$WORK/$LAB/orch.yaml
    ssh_opts="-i $state/id_ed25519 -o UserKnownHostsFile=$state/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes"
    addrs=$(seq -f "$NET.%g.2" 1 "$n" | tr '\n' ' ')
    ansible_env="ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_PIPELINING=True ANSIBLE_SSH_CONTROL_PATH_DIR=$WORK/ansible-cp"

    # exec: orch, raw ssh, Ansible ad-hoc.
    reset_hosts "$LAB" "$n"
    closed="exit_masters $state/ssh"
    exec_cmd="'$ORCH' -i '$inv' exec -- true"
    fp=$(footprint "$closed" -i "$inv" exec -- true)
    repeated "$n" "orch exec, cold" "$closed" "$exec_cmd" "$fp"
    fp=$(footprint : -i "$inv" exec -- true)
    repeated "$n" "orch exec, warm" : "$exec_cmd" "$fp"
    repeated "$n" "raw parallel ssh, cold" : par_ssh
    mkdir -p "$WORK/cm"
    cm="-o ControlPath=$WORK/cm/%h"
    for a in $addrs; do ssh $ssh_opts $cm -o ControlMaster=yes -o ControlPersist=300 -fN "root@$a" & done
    wait
    repeated "$n" "raw parallel ssh, warm (ControlMaster)" : "par_ssh $cm"
    adhoc="$ansible_env $VENV/bin/ansible lab -i $WORK/$LAB/ansible.ini -f $n -m command -a true"
    measure "$n" "ansible ad-hoc, cold" "$adhoc"
    measure "$n" "ansible ad-hoc, warm" "$adhoc"

    # setup: orch, Ansible, pyinfra, raw scp; every tool's result is checked after its runs.
    cold_setup "$n" "orch setup, cold" "$LAB" "$n"
    fp=$(footprint : -i "$inv" setup)
    repeated "$n" "orch setup, warm" : "'$ORCH' -i '$inv' setup" "$fp"
    verify "$LAB" "$n" .orch
    cold_setup "$n" "orch setup --relay off, cold" "$LAB" "$n" --relay off
    reset_hosts "$LAB" "$n"
    playbook="$ansible_env $VENV/bin/ansible-playbook -i $WORK/$LAB/ansible.ini -f $n $WORK/$LAB/setup.yml"
    measure "$n" "ansible-playbook, cold" "$playbook"
    measure "$n" "ansible-playbook, warm" "$playbook"
    verify "$LAB" "$n" .orch-ansible
    reset_hosts "$LAB" "$n"
    deploy="$VENV/bin/pyinfra -y --parallel $n $WORK/$LAB/inventory.py $WORK/$LAB/deploy.py"
    measure "$n" "pyinfra deploy, cold" "$deploy"
    measure "$n" "pyinfra deploy, warm" "$deploy"
    verify "$LAB" "$n" .orch-pyinfra
    repeated "$n" "raw parallel scp of the same bytes, cold" "reset_hosts $LAB $n" par_scp
    reset_hosts "$LAB" "$n"
    "$ORCH" lab down --name "$LAB" >/dev/null
    record "$n" load-after "$(load)"
    done="$done $n"
    write_doc
done

echo "wrote docs/bench-scale.md"
