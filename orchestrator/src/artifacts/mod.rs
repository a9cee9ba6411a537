//! Artifacts: files built on the controller and pushed to hosts, named by the SHA-256 of their
//! content so a host that already has a file is never sent it again.
//!
//! What hosts get is the list [`RECIPES`]: each recipe names a file, says where hosts find it
//! and how to build it for an architecture. Building is skipped entirely when the recipe's
//! inputs (source files) hash to what the last build recorded (see [`stamp`]).

mod cargo;
mod source;
mod stamp;

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::inventory::Arch;

pub use source::SourceTree;

/// A file on the controller, identified by its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// What the file is, e.g. `orch-node`; the part of its host file name after the hash.
    pub name: String,
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    pub len: u64,
    /// Whether hosts get it with mode 0755 (else 0644).
    pub executable: bool,
}

impl Artifact {
    /// Hashes the file at `path`.
    pub fn from_file(name: &str, path: &Path, executable: bool) -> std::io::Result<Artifact> {
        let (sha256, len) = sha256_file(path)?;
        Ok(Artifact {
            name: name.to_string(),
            path: path.to_path_buf(),
            sha256,
            len,
            executable,
        })
    }

    /// The file name on hosts, under `<orch_dir>/artifacts/`: `<sha256>-<name>`. Content
    /// addressed, so a name that exists on a host always holds exactly these bytes.
    pub fn remote_name(&self) -> String {
        format!("{}-{}", self.sha256, self.name)
    }

    /// The first 12 hex digits of the hash, for people.
    pub fn short_hash(&self) -> &str {
        &self.sha256[..12]
    }
}

/// How one file that every host gets is made.
pub struct Recipe {
    /// The artifact's name (see [`Artifact::name`]).
    pub name: &'static str,
    /// Where hosts find it: a symlink under the orch directory that points at the artifact.
    pub install_as: &'static str,
    pub executable: bool,
    /// Files and directories of the source tree whose content decides whether to rebuild
    /// (missing ones are skipped; `target` directories are ignored).
    pub inputs: &'static [&'static str],
    /// Builds the file for an architecture and returns where it is.
    pub build: fn(&SourceTree, Arch) -> anyhow::Result<PathBuf>,
    /// Checks for everything the build needs; returns install commands for what is missing.
    pub missing_tools: fn(&SourceTree, &[Arch]) -> Vec<String>,
}

/// Everything built on the controller for hosts. Adding a file means adding a recipe here.
pub const RECIPES: &[Recipe] = &[Recipe {
    name: "orch-node",
    install_as: "bin/orch-node",
    executable: true,
    inputs: &[
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "rust-toolchain.toml",
        "rust-toolchain",
        "node",
        "bpf",
    ],
    build: cargo::build_node,
    missing_tools: cargo::missing_tools,
}];

/// A recipe's file for one architecture: built (or found up to date), or, when building was
/// not allowed, what would be built and why.
#[derive(Debug, Clone)]
pub enum Resolved {
    Ready(Artifact),
    Stale { name: String, reason: String },
}

/// A recipe resolved for an architecture, with where hosts install it.
#[derive(Debug, Clone)]
pub struct Planned {
    pub resolved: Resolved,
    pub install_as: &'static str,
    /// Built by this call (not found up to date).
    pub built: bool,
}

/// The musl target triple orch builds static binaries for.
pub fn musl_triple(arch: Arch) -> String {
    format!("{}-unknown-linux-musl", arch.as_str())
}

/// Resolves every recipe for every architecture in `archs`. With `build` false (dry run)
/// nothing is built; stale recipes come back as [`Resolved::Stale`].
///
/// Missing build tools for all stale recipes are reported together in one error, with the
/// commands that install them.
pub fn resolve(
    tree: &SourceTree,
    archs: &[Arch],
    build: bool,
) -> anyhow::Result<Vec<(Arch, Vec<Planned>)>> {
    let mut states = Vec::new();
    for recipe in RECIPES {
        for &arch in archs {
            let state = stamp::check(tree, recipe, arch)?;
            states.push((recipe, arch, state));
        }
    }
    if build {
        let mut missing: Vec<String> = Vec::new();
        for recipe in RECIPES {
            let stale: Vec<Arch> = states
                .iter()
                .filter(|(r, _, s)| std::ptr::eq(*r, recipe) && s.is_err())
                .map(|(_, a, _)| *a)
                .collect();
            if !stale.is_empty() {
                for command in (recipe.missing_tools)(tree, &stale) {
                    if !missing.contains(&command) {
                        missing.push(command);
                    }
                }
            }
        }
        if !missing.is_empty() {
            anyhow::bail!(
                "cannot build the artifacts hosts need: the toolchain is incomplete. Install \
                 what is missing with:\n\n    {}\n",
                missing.join("\n    ")
            );
        }
    }
    let mut out: Vec<(Arch, Vec<Planned>)> = archs.iter().map(|&a| (a, Vec::new())).collect();
    for (recipe, arch, state) in states {
        let built = build && state.is_err();
        let resolved = match state {
            Ok(artifact) => Resolved::Ready(artifact),
            Err(reason) if !build => Resolved::Stale {
                name: recipe.name.to_string(),
                reason,
            },
            Err(reason) => {
                eprintln!("building {} for {} ({reason})", recipe.name, arch.as_str());
                Resolved::Ready(stamp::build(tree, recipe, arch)?)
            }
        };
        let slot = out
            .iter_mut()
            .find(|(a, _)| *a == arch)
            .expect("every arch");
        slot.1.push(Planned {
            resolved,
            install_as: recipe.install_as,
            built,
        });
    }
    Ok(out)
}

/// SHA-256 (hex) and length of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), len))
}

/// SHA-256 (hex) of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_are_named_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let a = Artifact::from_file("thing", &path, false).unwrap();
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(a.sha256, abc);
        assert_eq!(a.len, 3);
        assert_eq!(a.remote_name(), format!("{abc}-thing"));
        assert_eq!(a.short_hash(), "ba7816bf8f01");
        assert_eq!(sha256_bytes(b"abc"), abc);
    }

    #[test]
    fn triples_are_musl() {
        assert_eq!(musl_triple(Arch::Aarch64), "aarch64-unknown-linux-musl");
        assert_eq!(musl_triple(Arch::X86_64), "x86_64-unknown-linux-musl");
    }
}
