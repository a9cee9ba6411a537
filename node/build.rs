//! Builds the RTT eBPF program (`../bpf/rtt-ebpf`) with the nightly pinned in
//! `../bpf/rust-toolchain.toml` and bpf-linker, and leaves it as `$OUT_DIR/rtt-ebpf.o` for
//! `include_bytes_aligned!` in `src/rtt/ebpf.rs`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const BPF_TARGET: &str = "bpfel-unknown-none";

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let bpf = manifest
        .parent()
        .expect("node/ is inside the workspace")
        .join("bpf");
    for input in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        ".cargo/config.toml",
        "rtt-common/Cargo.toml",
        "rtt-common/src",
        "rtt-ebpf/Cargo.toml",
        "rtt-ebpf/src",
    ] {
        println!("cargo:rerun-if-changed={}", bpf.join(input).display());
    }

    let toolchain = pinned_toolchain(&bpf.join("rust-toolchain.toml"));
    check_toolchain(&toolchain);

    // One BPF target directory for every profile and for check/clippy/test of node, so the
    // nested build (core for BPF takes a while) is done once.
    let target_dir = shared_target_dir(&out_dir).join("bpf");
    let mut cargo = Command::new("rustup");
    cargo
        .args(["run", &toolchain, "cargo", "build", "--release", "--locked"])
        .args([
            "--target",
            BPF_TARGET,
            "-Z",
            "build-std=core",
            "-p",
            "rtt-ebpf",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&bpf);
    // The outer build's compiler, wrappers (clippy-driver) and flags are for the host, not BPF.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        let outer = (key.starts_with("CARGO") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS")
            || (key.starts_with("RUST") && key != "RUSTUP_HOME");
        if outer {
            cargo.env_remove(key.as_ref());
        }
    }
    let output = cargo
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run rustup: {e}")));
    if !output.status.success() {
        fail(&format!(
            "building the eBPF program in {} failed:\n{}",
            bpf.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let object = target_dir.join(BPF_TARGET).join("release").join("rtt-ebpf");
    fs::copy(&object, out_dir.join("rtt-ebpf.o")).unwrap_or_else(|e| {
        fail(&format!("cannot copy {}: {e}", object.display()));
    });
}

/// The `channel = "..."` of bpf/rust-toolchain.toml (the only place the date is written).
fn pinned_toolchain(file: &Path) -> String {
    let text = fs::read_to_string(file)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", file.display())));
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("channel"))
        .filter_map(|rest| rest.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .next()
        .unwrap_or_else(|| fail(&format!("no `channel = \"...\"` in {}", file.display())))
}

/// Fails with the install commands when the nightly, its rust-src or bpf-linker is missing.
fn check_toolchain(toolchain: &str) {
    let sysroot = Command::new("rustup")
        .args(["run", toolchain, "rustc", "--print", "sysroot"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let has_src = sysroot
        .as_ref()
        .is_some_and(|s| s.join("lib/rustlib/src/rust/library/core").is_dir());
    let has_linker = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_src && has_linker {
        return;
    }
    let missing = match (sysroot.is_some(), has_src, has_linker) {
        (false, _, _) => format!("the Rust toolchain {toolchain}"),
        (true, false, _) => format!("the rust-src component of {toolchain}"),
        _ => "bpf-linker".to_string(),
    };
    fail(&format!(
        "orch-node embeds an eBPF program; building it needs {missing}, which is not \
         installed. Install the eBPF toolchain (as root on Debian; .ci/run does the same) and \
         build again:\n\
         \n    apt-get install -y llvm-22-dev\
         \n    rustup toolchain install {toolchain} --profile minimal --component rust-src\
         \n    LLVM_PREFIX=/usr/lib/llvm-22 cargo install bpf-linker --no-default-features --features llvm-22\n"
    ));
}

/// `<target>/` (or `<target>/<triple>/`) of the outer build, found above `OUT_DIR`
/// (`.../<profile>/build/<pkg>-<hash>/out`); `OUT_DIR` itself if the layout is unexpected.
fn shared_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()?.parent())
        .unwrap_or(out_dir)
        .to_path_buf()
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1);
}
