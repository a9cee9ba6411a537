//! Finding the orch source tree that artifacts are built from, and hashing the parts of it a
//! build depends on.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

/// The orch workspace on the controller: a `Cargo.toml` with `[workspace]` next to `node/`.
#[derive(Debug, Clone)]
pub struct SourceTree {
    pub root: PathBuf,
    /// Where artifact builds put their output (see [`SourceTree::at`]).
    pub build_dir: PathBuf,
}

impl SourceTree {
    /// `$ORCH_SOURCE_DIR` if set; else the first workspace found walking up from the current
    /// directory, then from the directory of the running `orch` executable.
    ///
    /// Not the directory orch was compiled in: an installed `orch` must not build whatever
    /// tree happens to sit at that path, and the working directory is what a user controls.
    pub fn locate() -> anyhow::Result<SourceTree> {
        if let Some(dir) = std::env::var_os("ORCH_SOURCE_DIR") {
            let root = PathBuf::from(&dir);
            if !is_workspace(&root) {
                anyhow::bail!(
                    "ORCH_SOURCE_DIR={} is not the orch source tree (expected Cargo.toml with \
                     [workspace] and node/Cargo.toml there)",
                    root.display()
                );
            }
            return Ok(SourceTree::at(root));
        }
        let cwd = std::env::current_dir().ok();
        let exe = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf));
        for start in cwd.iter().chain(exe.iter()) {
            if let Some(root) = start.ancestors().find(|d| is_workspace(d)) {
                return Ok(SourceTree::at(root.to_path_buf()));
            }
        }
        anyhow::bail!(
            "cannot find the orch source tree to build orch-node from: run orch inside it, or set \
             ORCH_SOURCE_DIR=/path/to/orch"
        )
    }

    /// The tree at `root`, building into `orch-artifacts/` of the workspace's target directory
    /// (`$CARGO_TARGET_DIR`, else `target/`): a directory of its own, so building never waits
    /// for the lock of a `cargo test` that is running `orch`.
    pub fn at(root: PathBuf) -> SourceTree {
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                if dir.is_absolute() {
                    dir
                } else {
                    root.join(dir)
                }
            }
            None => root.join("target"),
        };
        SourceTree {
            build_dir: target.join("orch-artifacts"),
            root,
        }
    }

    /// SHA-256 over the paths, sizes and contents of `inputs` (relative to the root; files or
    /// directories, walked in name order; absent ones and `target` directories skipped).
    pub fn hash_inputs(&self, inputs: &[&str]) -> anyhow::Result<String> {
        let mut hasher = Sha256::new();
        for input in inputs {
            hash_path(&self.root, Path::new(input), &mut hasher)?;
        }
        Ok(hex::encode(hasher.finalize()))
    }
}

fn is_workspace(dir: &Path) -> bool {
    dir.join("node/Cargo.toml").is_file()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
}

fn hash_path(root: &Path, relative: &Path, hasher: &mut Sha256) -> anyhow::Result<()> {
    let path = root.join(relative);
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(());
    };
    if meta.is_dir() {
        if relative.file_name().is_some_and(|n| n == "target") {
            return Ok(());
        }
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .with_context(|| format!("cannot list {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            hash_path(root, &relative.join(name), hasher)?;
        }
    } else if meta.is_file() {
        let content =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = relative.to_string_lossy();
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_hash_follows_content_and_names_but_not_target() {
        let dir = tempfile::tempdir().unwrap();
        let tree = SourceTree {
            root: dir.path().to_path_buf(),
            build_dir: dir.path().join("build"),
        };
        let write = |p: &str, c: &str| {
            let p = dir.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c).unwrap();
        };
        write("node/src/main.rs", "fn main() {}");
        write("Cargo.lock", "lock");
        let inputs = ["Cargo.lock", "node", "missing"];
        let first = tree.hash_inputs(&inputs).unwrap();
        write("node/target/x", "build output");
        assert_eq!(tree.hash_inputs(&inputs).unwrap(), first);
        write("node/src/main.rs", "fn main() { }");
        let changed = tree.hash_inputs(&inputs).unwrap();
        assert_ne!(changed, first);
        write("node/src/a.rs", "");
        assert_ne!(tree.hash_inputs(&inputs).unwrap(), changed);
    }

    #[test]
    fn the_workspace_is_found_from_below() {
        let here = std::env::current_dir().unwrap();
        let root = here.ancestors().find(|d| is_workspace(d)).unwrap();
        assert!(root.join("node/Cargo.toml").is_file());
        assert!(!is_workspace(&root.join("node")));
    }
}
