//! The build cache. After a build, a stamp file records the hash of the recipe's inputs and the
//! file the build produced (path, hash, size, modification time). Next time, if the inputs
//! hash the same and the file is untouched, the build is skipped without even starting cargo.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::Context;

use super::{Artifact, Recipe, SourceTree};
use crate::inventory::Arch;

/// What the last build of a recipe for an architecture saw and made.
#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    inputs: String,
    path: PathBuf,
    sha256: String,
    len: u64,
    mtime_ns: u128,
}

impl Stamp {
    fn parse(text: &str) -> Option<Stamp> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        };
        Some(Stamp {
            inputs: get("inputs")?.to_string(),
            path: PathBuf::from(get("path")?),
            sha256: get("sha256")?.to_string(),
            len: get("len")?.parse().ok()?,
            mtime_ns: get("mtime_ns")?.parse().ok()?,
        })
    }

    fn render(&self) -> String {
        format!(
            "inputs={}\npath={}\nsha256={}\nlen={}\nmtime_ns={}\n",
            self.inputs,
            self.path.display(),
            self.sha256,
            self.len,
            self.mtime_ns
        )
    }
}

fn stamp_path(tree: &SourceTree, recipe: &Recipe, arch: Arch) -> PathBuf {
    tree.build_dir
        .join("stamps")
        .join(format!("{}-{}", recipe.name, arch.as_str()))
}

/// Size and modification time (ns since the epoch) of a file, if it exists.
fn file_id(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), mtime.as_nanos()))
}

/// The artifact of the last build if it is still current; otherwise why a build is needed.
pub fn check(
    tree: &SourceTree,
    recipe: &Recipe,
    arch: Arch,
) -> anyhow::Result<Result<Artifact, String>> {
    let inputs = tree.hash_inputs(recipe.inputs)?;
    let stamp = std::fs::read_to_string(stamp_path(tree, recipe, arch))
        .ok()
        .and_then(|t| Stamp::parse(&t));
    let Some(stamp) = stamp else {
        return Ok(Err("not built yet".into()));
    };
    if stamp.inputs != inputs {
        return Ok(Err("sources changed since the last build".into()));
    }
    if file_id(&stamp.path) != Some((stamp.len, stamp.mtime_ns)) {
        return Ok(Err(format!(
            "{} changed or is gone since the last build",
            stamp.path.display()
        )));
    }
    Ok(Ok(Artifact {
        name: recipe.name.to_string(),
        path: stamp.path,
        sha256: stamp.sha256,
        len: stamp.len,
        executable: recipe.executable,
    }))
}

/// Builds, hashes the result and records the stamp. The stamp is only written if the inputs
/// did not change while the build ran, so an edit made during a build triggers the next one.
pub fn build(tree: &SourceTree, recipe: &Recipe, arch: Arch) -> anyhow::Result<Artifact> {
    let before = tree.hash_inputs(recipe.inputs)?;
    let path = (recipe.build)(tree, arch)?;
    let artifact = Artifact::from_file(recipe.name, &path, recipe.executable)
        .with_context(|| format!("cannot read the built {}", path.display()))?;
    let after = tree.hash_inputs(recipe.inputs)?;
    let Some((len, mtime_ns)) = file_id(&path) else {
        anyhow::bail!("the built {} disappeared", path.display());
    };
    if before == after {
        let stamp = Stamp {
            inputs: after,
            path,
            sha256: artifact.sha256.clone(),
            len,
            mtime_ns,
        };
        write_atomically(&stamp_path(tree, recipe, arch), &stamp.render())?;
    }
    Ok(artifact)
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().expect("stamps live in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::fs::write(tmp.path(), text)?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_build(tree: &SourceTree, _: Arch) -> anyhow::Result<PathBuf> {
        let out = tree.root.join("out/thing");
        std::fs::create_dir_all(out.parent().unwrap())?;
        let source = std::fs::read(tree.root.join("src/input"))?;
        std::fs::write(&out, [b"built from ".as_slice(), &source].concat())?;
        Ok(out)
    }

    const RECIPE: Recipe = Recipe {
        name: "thing",
        install_as: "bin/thing",
        executable: false,
        inputs: &["src"],
        build: fake_build,
        missing_tools: |_, _| Vec::new(),
    };

    #[test]
    fn a_build_is_reused_until_inputs_or_output_change() {
        let dir = tempfile::tempdir().unwrap();
        let tree = SourceTree {
            root: dir.path().to_path_buf(),
            build_dir: dir.path().join("build"),
        };
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/input"), "v1").unwrap();
        let arch = Arch::X86_64;
        assert_eq!(
            check(&tree, &RECIPE, arch).unwrap(),
            Err("not built yet".to_string())
        );
        let built = build(&tree, &RECIPE, arch).unwrap();
        assert_eq!(built.len, "built from v1".len() as u64);
        assert_eq!(check(&tree, &RECIPE, arch).unwrap(), Ok(built.clone()));
        assert!(check(&tree, &RECIPE, Arch::Aarch64).unwrap().is_err());

        std::fs::write(dir.path().join("src/input"), "v2").unwrap();
        let stale = check(&tree, &RECIPE, arch).unwrap().unwrap_err();
        assert_eq!(stale, "sources changed since the last build");
        let rebuilt = build(&tree, &RECIPE, arch).unwrap();
        assert_ne!(rebuilt.sha256, built.sha256);

        std::fs::write(&rebuilt.path, "tampered").unwrap();
        let stale = check(&tree, &RECIPE, arch).unwrap().unwrap_err();
        assert!(stale.contains("changed or is gone"), "{stale}");
    }

    #[test]
    fn stamps_round_trip() {
        let stamp = Stamp {
            inputs: "ab".into(),
            path: PathBuf::from("/t/x y"),
            sha256: "cd".into(),
            len: 7,
            mtime_ns: 1_700_000_000_123_456_789,
        };
        assert_eq!(Stamp::parse(&stamp.render()), Some(stamp));
        assert_eq!(Stamp::parse("inputs=ab\n"), None);
    }
}
