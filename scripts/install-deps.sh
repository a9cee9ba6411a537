#!/usr/bin/env bash
# Installs what building orch and orch-node, the lab and the tests need on a Debian machine
# (as root). Every step is skipped when already done, so it is cheap to run again.
# Used by .ci/run and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "$0 must run as root (it installs Debian packages)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# openssh-server: each lab host runs sshd. zookeeper + unzip: the ZooKeeper tarball the lab
# installs (scripts/make-zk-tarball.sh). qemu-user-static: the aarch64 orch-node test.
# nftables + iputils-ping: the delay emulator's tests. sudo: hosts with `sudo: true`.
# fonts-dejavu-core: the font of the result plots' PNGs.
# The real-kernel tier (scripts/kernel-test.sh, docs/kernel-tier.md): qemu-system-x86 runs the
# VM, busybox-static goes into virtme-ng's initramfs (it replaces the dynamic busybox), and the
# kernels it boots are Debian's 6.1 (linux-image-amd64) and 6.12 (linux-image-6.12-amd64).
packages="openssh-server openssh-client iproute2 procps coreutils sudo zookeeper unzip \
qemu-user-static nftables iputils-ping llvm-22-dev fonts-dejavu-core \
qemu-system-x86 busybox-static linux-image-amd64 linux-image-6.12-amd64"
missing=""
for p in $packages; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# kazoo: the independent ZooKeeper client the YCSB tests check the data layout with.
python3 -c 'import kazoo' 2>/dev/null || python3 -m pip install -q kazoo
# virtme-ng (`vng`): boots an installed kernel in QEMU with this machine's filesystem as root.
command -v vng >/dev/null || python3 -m pip install -q virtme-ng==1.42

rustup component add clippy rustfmt >/dev/null 2>&1 || true
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl >/dev/null

# The eBPF toolchain node/build.rs needs (docs/rtt.md): LLVM 22 for bpf-linker (above), the
# nightly pinned in bpf/rust-toolchain.toml with rust-src, and bpf-linker.
BPF_TOOLCHAIN=$(sed -n 's/^channel = "\(.*\)"$/\1/p' bpf/rust-toolchain.toml)
BPF_SYSROOT=$(rustup run "$BPF_TOOLCHAIN" rustc --print sysroot 2>/dev/null || true)
if [ -z "$BPF_SYSROOT" ] || [ ! -d "$BPF_SYSROOT/lib/rustlib/src/rust/library/core" ]; then
    rustup toolchain install "$BPF_TOOLCHAIN" --profile minimal --component rust-src
fi
command -v bpf-linker >/dev/null ||
    LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --no-default-features --features llvm-22
