#!/usr/bin/env bash
# Builds a ZooKeeper binary tarball in the layout of Apache's apache-zookeeper-X.Y.Z-bin.tar.gz
# (one top directory apache-zookeeper-X.Y.Z-bin/ with bin/, conf/ and lib/) from Debian's
# `zookeeper` package, for tests and benchmarks that cannot download Apache's. The result is
# byte-for-byte reproducible: the same installed package always gives the same file (and hash).
#
#   scripts/make-zk-tarball.sh OUT.tar.gz
#
# Needs Debian's zookeeper package (`apt-get install -y zookeeper`: Apache ZooKeeper 3.8.0 jars
# in /usr/share/java, scripts in /usr/share/zookeeper/bin) and unzip.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT.tar.gz" >&2
    exit 2
fi
out=$1
java_dir=/usr/share/java
script_dir=/usr/share/zookeeper/bin

if [ ! -f "$script_dir/zkServer.sh" ] || [ ! -f "$java_dir/zookeeper.jar" ]; then
    echo "$0: Debian's zookeeper package is not installed; install it with: apt-get install -y zookeeper" >&2
    exit 1
fi
if ! command -v unzip >/dev/null; then
    echo "$0: unzip is missing; install it with: apt-get install -y unzip" >&2
    exit 1
fi

versioned=$(cd "$java_dir" && ls zookeeper-[0-9]*.jar | head -n 1)
version=${versioned#zookeeper-}
version=${version%.jar}
top=apache-zookeeper-$version-bin

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$top/bin" "$stage/$top/conf" "$stage/$top/lib"

# Jars: zookeeper.jar and everything its manifest's Class-Path names, transitively, plus the
# slf4j binding to log4j 1.2 that Debian's build logs through.
class_path() {
    unzip -p "$1" META-INF/MANIFEST.MF 2>/dev/null | tr -d '\r' |
        awk '/^Class-Path:/ { on = 1; sub(/^Class-Path: ?/, ""); printf "%s", $0; next }
             on && /^ / { sub(/^ /, ""); printf "%s", $0; next }
             { on = 0 }' | tr ' ' '\n' | grep -v '^$' || true
}
queue=("$java_dir/zookeeper.jar" "$java_dir/slf4j-log4j12.jar" "$java_dir/log4j-1.2.jar")
declare -A seen=()
while [ ${#queue[@]} -gt 0 ]; do
    jar=${queue[0]}
    queue=("${queue[@]:1}")
    case $jar in /*) ;; *) jar=$java_dir/$jar ;; esac
    [ -n "${seen[$jar]:-}" ] && continue
    seen[$jar]=1
    if [ ! -f "$jar" ]; then
        # Optional dependencies Debian does not install (jline for zkCli's line editing).
        echo "$0: skipping $jar: named by a manifest but not installed" >&2
        continue
    fi
    cp -L "$jar" "$stage/$top/lib/$(basename "$jar")"
    while read -r dep; do queue+=("$dep"); done < <(class_path "$jar")
done

for s in zkServer.sh zkCli.sh zkCleanup.sh; do
    install -m 0755 "$script_dir/$s" "$stage/$top/bin/$s"
done

# Debian's zkEnv.sh points at /etc/zookeeper; this one finds everything relative to bin/, like
# Apache's, and honours the same variables (ZOOCFGDIR, ZOOCFG, ZOO_LOG_DIR, JAVA_HOME, ...).
cat > "$stage/$top/bin/zkEnv.sh" <<'EOF'
#!/usr/bin/env bash
# Environment of the ZooKeeper scripts, in the manner of Apache's zkEnv.sh: everything is found
# relative to this directory unless the caller sets ZOOCFGDIR, ZOOCFG, ZOO_LOG_DIR or JAVA_HOME.
ZOOBINDIR="${ZOOBINDIR:-/usr/bin}"
ZOOKEEPER_PREFIX="${ZOOBINDIR}/.."

if [ "x$ZOOCFGDIR" = "x" ]; then
    ZOOCFGDIR="$ZOOKEEPER_PREFIX/conf"
fi
if [ -f "${ZOOCFGDIR}/zookeeper-env.sh" ]; then
    . "${ZOOCFGDIR}/zookeeper-env.sh"
fi
if [ "x$ZOOCFG" = "x" ]; then
    ZOOCFG="zoo.cfg"
fi
ZOOCFG="$ZOOCFGDIR/$ZOOCFG"
if [ -f "$ZOOCFGDIR/java.env" ]; then
    . "$ZOOCFGDIR/java.env"
fi
if [ "x${ZOO_LOG_DIR}" = "x" ]; then
    ZOO_LOG_DIR="$ZOOKEEPER_PREFIX/logs"
fi
if [ "x${ZOO_LOG4J_PROP}" = "x" ]; then
    ZOO_LOG4J_PROP="INFO,CONSOLE"
fi

if [ -n "$JAVA_HOME" ] && [ -x "$JAVA_HOME/bin/java" ]; then
    JAVA="$JAVA_HOME/bin/java"
elif type -p java >/dev/null; then
    JAVA=java
else
    echo "Error: JAVA_HOME is not set and java could not be found in PATH." 1>&2
    exit 1
fi

CLASSPATH="$ZOOCFGDIR:$CLASSPATH"
for i in "$ZOOBINDIR"/../lib/*.jar; do
    CLASSPATH="$i:$CLASSPATH"
done
export CLASSPATH

ZK_SERVER_HEAP="${ZK_SERVER_HEAP:-1000}"
export SERVER_JVMFLAGS="-Xmx${ZK_SERVER_HEAP}m -Dzookeeper.root.logger=${ZOO_LOG4J_PROP} $SERVER_JVMFLAGS"
ZK_CLIENT_HEAP="${ZK_CLIENT_HEAP:-256}"
export CLIENT_JVMFLAGS="-Xmx${ZK_CLIENT_HEAP}m -Dzookeeper.root.logger=${ZOO_LOG4J_PROP:-INFO,CONSOLE} $CLIENT_JVMFLAGS"
EOF
chmod 0755 "$stage/$top/bin/zkEnv.sh"

cp /etc/zookeeper/conf_example/log4j.properties "$stage/$top/conf/log4j.properties"
cp /etc/zookeeper/conf_example/configuration.xsl "$stage/$top/conf/configuration.xsl"
cat > "$stage/$top/conf/zoo_sample.cfg" <<'EOF'
# A single-server example; `orch setup` writes the real configuration to <orch_dir>/conf/zoo.cfg.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=/tmp/zookeeper
clientPort=2181
EOF

mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "$top" |
    gzip -n -9 > "$out.tmp"
mv -f "$out.tmp" "$out"
echo "$out: $top, $(ls "$stage/$top/lib" | wc -l) jars, $(wc -c < "$out") bytes"
