//! Building `orch-node` as a static musl binary with cargo, for any architecture from any
//! Linux controller: the musl targets ship their own C runtime, and rust-lld (part of every
//! rustup toolchain) links for every architecture, so no cross C toolchain is needed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use super::{musl_triple, SourceTree};
use crate::inventory::Arch;

const INSTALL_RUSTUP: &str = "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh";

fn cargo_bin() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The environment variable that sets the linker of a target, as cargo spells it.
fn linker_var(triple: &str) -> String {
    format!(
        "CARGO_TARGET_{}_LINKER",
        triple.to_ascii_uppercase().replace('-', "_")
    )
}

/// The sysroot of the toolchain cargo uses in this tree, if rustc runs at all.
fn sysroot(root: &Path) -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .current_dir(root)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn has_rust_lld(sysroot: &Path) -> bool {
    std::fs::read_dir(sysroot.join("lib/rustlib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|host| host.path().join("bin/rust-lld").is_file())
}

/// The commands that install what building orch-node for `archs` lacks: cargo, the musl
/// standard libraries, rust-lld.
pub fn missing_tools(tree: &SourceTree, archs: &[Arch]) -> Vec<String> {
    let cargo_runs = Command::new(cargo_bin())
        .arg("--version")
        .current_dir(&tree.root)
        .output()
        .is_ok_and(|o| o.status.success());
    let Some(sysroot) = sysroot(&tree.root).filter(|_| cargo_runs) else {
        return vec![INSTALL_RUSTUP.to_string()];
    };
    missing_in(&sysroot, archs)
}

/// What `missing_tools` reports once rustc and cargo run: targets without a standard library
/// in `sysroot`, and rust-lld if a target without a linker of the user's needs it.
fn missing_in(sysroot: &Path, archs: &[Arch]) -> Vec<String> {
    let mut commands = Vec::new();
    let missing: Vec<String> = archs
        .iter()
        .map(|&a| musl_triple(a))
        .filter(|t| !sysroot.join("lib/rustlib").join(t).join("lib").is_dir())
        .collect();
    if !missing.is_empty() {
        commands.push(format!("rustup target add {}", missing.join(" ")));
    }
    let needs_lld = archs
        .iter()
        .any(|&a| std::env::var_os(linker_var(&musl_triple(a))).is_none());
    if needs_lld && !has_rust_lld(sysroot) {
        commands.push(INSTALL_RUSTUP.to_string());
    }
    commands
}

/// `cargo build --release -p orch-node --target <arch>-unknown-linux-musl`, linked with
/// rust-lld (unless `CARGO_TARGET_<TRIPLE>_LINKER` says otherwise) and stripped. Returns the
/// binary cargo reports.
pub fn build_node(tree: &SourceTree, arch: Arch) -> anyhow::Result<PathBuf> {
    let triple = musl_triple(arch);
    let mut cmd = Command::new(cargo_bin());
    cmd.current_dir(&tree.root)
        .args(["build", "--release", "-p", "orch-node", "--target", &triple])
        .arg("--message-format=json-render-diagnostics")
        .arg("--target-dir")
        .arg(&tree.build_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if std::env::var_os(linker_var(&triple)).is_none() {
        cmd.env(linker_var(&triple), "rust-lld");
    }
    if std::env::var_os("CARGO_PROFILE_RELEASE_STRIP").is_none() {
        cmd.env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    }
    let shown = format!(
        "cd {} && cargo build --release -p orch-node --target {triple} --target-dir {}",
        tree.root.display(),
        tree.build_dir.display()
    );
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut binary = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.with_context(|| format!("reading the output of `{shown}`"))?;
        if let Some(path) = executable_of(&line, "orch-node") {
            binary = Some(path);
        }
    }
    let status = child.wait().with_context(|| format!("`{shown}` failed"))?;
    if !status.success() {
        anyhow::bail!("`{shown}` failed ({status}); cargo's messages are above");
    }
    binary.with_context(|| format!("`{shown}` reported no orch-node binary"))
}

/// The executable of a cargo `compiler-artifact` message for the binary target `name`.
fn executable_of(line: &str, name: &str) -> Option<PathBuf> {
    let message: serde_json::Value = serde_json::from_str(line).ok()?;
    if message["reason"] != "compiler-artifact" || message["target"]["name"] != name {
        return None;
    }
    message["executable"].as_str().map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linker_variables_follow_cargo() {
        assert_eq!(
            linker_var("aarch64-unknown-linux-musl"),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"
        );
    }

    #[test]
    fn the_binary_comes_from_cargo_messages() {
        let artifact = r#"{"reason":"compiler-artifact","target":{"name":"orch-node","kind":["bin"]},"executable":"/t/x86_64-unknown-linux-musl/release/orch-node"}"#;
        assert_eq!(
            executable_of(artifact, "orch-node"),
            Some(PathBuf::from(
                "/t/x86_64-unknown-linux-musl/release/orch-node"
            ))
        );
        let library =
            r#"{"reason":"compiler-artifact","target":{"name":"tokio"},"executable":null}"#;
        assert_eq!(executable_of(library, "tokio"), None);
        assert_eq!(executable_of("Compiling", "orch-node"), None);
        let finished = r#"{"reason":"build-finished","success":true}"#;
        assert_eq!(executable_of(finished, "orch-node"), None);
    }

    #[test]
    fn missing_pieces_come_as_install_commands() {
        let dir = tempfile::tempdir().unwrap();
        let rustlib = dir.path().join("lib/rustlib");
        std::fs::create_dir_all(rustlib.join("x86_64-unknown-linux-musl/lib")).unwrap();
        let both = [Arch::X86_64, Arch::Aarch64];
        assert_eq!(
            missing_in(dir.path(), &both),
            [
                "rustup target add aarch64-unknown-linux-musl",
                INSTALL_RUSTUP
            ]
        );
        std::fs::create_dir_all(rustlib.join("x86_64-unknown-linux-gnu/bin")).unwrap();
        std::fs::write(rustlib.join("x86_64-unknown-linux-gnu/bin/rust-lld"), "").unwrap();
        assert_eq!(
            missing_in(dir.path(), &both),
            ["rustup target add aarch64-unknown-linux-musl"]
        );
        assert!(missing_in(dir.path(), &[Arch::X86_64]).is_empty());
    }
}
