//! Where the ZooKeeper that hosts with the zookeeper role get comes from: an Apache binary
//! tarball on the controller (pushed like any artifact and unpacked once per host), or an
//! installation the hosts already have.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::artifacts::Artifact;
use crate::inventory::{Inventory, ZookeeperSource};

/// How hosts get ZooKeeper; either way `<orch_dir>/zookeeper/current` ends up pointing at it.
#[derive(Debug, Clone)]
pub enum Install {
    /// Push `artifact` and unpack it into `zookeeper/<dir>`.
    Tarball { artifact: Artifact, dir: String },
    /// Use this directory on the host (`~/` allowed): nothing is pushed.
    Existing { dir: String },
}

/// Decides what hosts get, from `--zookeeper TARBALL` or else the inventory. `None` when no
/// selected host has the zookeeper role; an error if one has but no ZooKeeper is named.
pub fn resolve(
    inventory: &Inventory,
    flag: Option<&Path>,
    zookeeper_hosts: &[&str],
) -> anyhow::Result<Option<Install>> {
    if zookeeper_hosts.is_empty() {
        return Ok(None);
    }
    let source = match flag {
        Some(path) => ZookeeperSource::Tarball(path.to_path_buf()),
        None => inventory.zookeeper.source.clone().with_context(|| {
            format!(
                "{} have the zookeeper role, but {} names no ZooKeeper: add `zookeeper: {{tarball: \
                 apache-zookeeper-3.8.4-bin.tar.gz}}` (or `version:` or `install_dir:`) to it, or \
                 pass --zookeeper TARBALL",
                zookeeper_hosts.join(", "),
                inventory.path.display()
            )
        })?,
    };
    let tarball = match source {
        ZookeeperSource::InstallDir(dir) => return Ok(Some(Install::Existing { dir })),
        ZookeeperSource::Tarball(path) => path,
        ZookeeperSource::Version(version) => {
            let path = download_dir().join(format!("apache-zookeeper-{version}-bin.tar.gz"));
            if !path.is_file() {
                anyhow::bail!(
                    "ZooKeeper {version} (zookeeper.version in {}) is not on this machine; \
                     download it with:\n\n    mkdir -p {dir} && curl -fL -o {file} \
                     https://archive.apache.org/dist/zookeeper/zookeeper-{version}/apache-zookeeper-{version}-bin.tar.gz\n",
                    inventory.path.display(),
                    dir = path.parent().expect("a file in a directory").display(),
                    file = path.display(),
                );
            }
            path
        }
    };
    let dir = top_directory(&tarball)?;
    let artifact = Artifact::from_file(&format!("{dir}.tar.gz"), &tarball, false)
        .with_context(|| format!("cannot read {}", tarball.display()))?;
    Ok(Some(Install::Tarball { artifact, dir }))
}

/// Where `zookeeper.version` looks for Apache's tarball: `$XDG_CACHE_HOME/orch/zookeeper`,
/// else `~/.cache/orch/zookeeper`.
pub fn download_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    cache.join("orch/zookeeper")
}

/// The one top directory of an Apache binary tarball, `apache-zookeeper-<version>-bin`, read
/// from its first entry (only the first few KiB are decompressed).
fn top_directory(tarball: &Path) -> anyhow::Result<String> {
    let not_zookeeper = |why: &str| {
        anyhow::anyhow!(
            "{} is not an Apache ZooKeeper binary tarball (like apache-zookeeper-3.8.4-bin.tar.gz, \
             with one directory apache-zookeeper-VERSION-bin/ holding bin/, conf/ and lib/): {why}",
            tarball.display()
        )
    };
    let file = std::fs::File::open(tarball)
        .with_context(|| format!("cannot open ZooKeeper tarball {}", tarball.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut entries = archive
        .entries()
        .map_err(|e| not_zookeeper(&e.to_string()))?;
    let first = entries
        .next()
        .ok_or_else(|| not_zookeeper("it is empty"))?
        .map_err(|e| not_zookeeper(&e.to_string()))?;
    let path = first.path().map_err(|e| not_zookeeper(&e.to_string()))?;
    let top = path
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    let version = top
        .strip_prefix("apache-zookeeper-")
        .and_then(|rest| rest.strip_suffix("-bin"));
    let plain = |v: &str| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    match version {
        Some(v) if plain(v) => Ok(top),
        _ => Err(not_zookeeper(&format!(
            "its first entry is `{}`",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(dir: &Path, top: &str) -> PathBuf {
        let path = dir.join(format!("{}.tar.gz", top.replace('/', "_")));
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(gz);
        let script = b"#!/bin/sh\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(script.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{top}/bin/zkServer.sh"), &script[..])
            .unwrap();
        builder.into_inner().unwrap().finish().unwrap();
        path
    }

    fn inventory(zookeeper: &str) -> Inventory {
        let text = format!(
            "hosts:\n  - {{name: a, address: 10.0.0.1, experiment_ip: 10.0.1.1, roles: [zookeeper], zk_id: 1}}\n{zookeeper}"
        );
        Inventory::parse(&text, Path::new("inv.yaml")).unwrap()
    }

    #[test]
    fn a_tarball_gives_its_versioned_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = tarball(dir.path(), "apache-zookeeper-3.8.4-bin");
        let inv = inventory(&format!("zookeeper:\n  tarball: {}\n", path.display()));
        match resolve(&inv, None, &["a"]).unwrap() {
            Some(Install::Tarball { artifact, dir }) => {
                assert_eq!(dir, "apache-zookeeper-3.8.4-bin");
                assert_eq!(artifact.name, "apache-zookeeper-3.8.4-bin.tar.gz");
                assert_eq!(artifact.path, path);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_flag_wins_and_no_zookeeper_host_needs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = tarball(dir.path(), "apache-zookeeper-3.9.0-bin");
        let inv = inventory("zookeeper:\n  install_dir: /opt/zk\n");
        assert!(matches!(
            resolve(&inv, None, &["a"]).unwrap(),
            Some(Install::Existing { dir }) if dir == "/opt/zk"
        ));
        assert!(matches!(
            resolve(&inv, Some(&path), &["a"]).unwrap(),
            Some(Install::Tarball { dir, .. }) if dir == "apache-zookeeper-3.9.0-bin"
        ));
        assert!(resolve(&inv, Some(&path), &[]).unwrap().is_none());
    }

    #[test]
    fn mistakes_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let none = format!("{:#}", resolve(&inventory(""), None, &["a"]).unwrap_err());
        assert!(none.contains("a have the zookeeper role"), "{none}");
        assert!(none.contains("--zookeeper TARBALL"), "{none}");

        let wrong = tarball(dir.path(), "zookeeper-3.8.4");
        let err = format!(
            "{:#}",
            resolve(&inventory(""), Some(&wrong), &["a"]).unwrap_err()
        );
        assert!(
            err.contains("first entry is `zookeeper-3.8.4/bin/zkServer.sh`"),
            "{err}"
        );

        let garbage = dir.path().join("garbage.tar.gz");
        std::fs::write(&garbage, "not gzip").unwrap();
        let err = format!(
            "{:#}",
            resolve(&inventory(""), Some(&garbage), &["a"]).unwrap_err()
        );
        assert!(
            err.contains("is not an Apache ZooKeeper binary tarball"),
            "{err}"
        );

        let err = resolve(&inventory("zookeeper:\n  version: 0.0.1\n"), None, &["a"]).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("curl -fL -o "), "{err}");
        assert!(
            err.contains("https://archive.apache.org/dist/zookeeper/zookeeper-0.0.1/apache-zookeeper-0.0.1-bin.tar.gz"),
            "{err}"
        );
    }
}
