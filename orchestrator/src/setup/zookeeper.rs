//! Where the ZooKeeper that hosts with the zookeeper role get comes from: an Apache binary
//! tarball on the controller (pushed like any artifact and unpacked once per host), or an
//! installation the hosts already have.
//!
//! Hosts get the tarball as a plain `.tar`, its gzip layer removed: the controller sends the
//! `.tar.gz` bytes (gzip on the wire, as every compressed push), the receiving host's upload
//! decompresses them, and a relay seed passes the plain `.tar` on, so only the seed
//! decompresses. Apache's jars are compressed already (the tar is only 6 % larger than the
//! `.tar.gz`), and at 64 hosts sharing a machine `gzip -d` on every host was a quarter of a
//! cold setup's CPU time.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::artifacts::Artifact;
use crate::inventory::{Inventory, ZookeeperSource};

/// How hosts get ZooKeeper; either way `<orch_dir>/zookeeper/current` ends up pointing at it.
#[derive(Debug, Clone)]
pub enum Install {
    /// Push `artifact` (the plain tar of `origin`, the `.tar.gz` on this machine: its `path`
    /// is `origin`'s) and unpack it into `zookeeper/<dir>`.
    Tarball {
        artifact: Artifact,
        dir: String,
        origin: Artifact,
    },
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
    let origin = Artifact::from_file(&format!("{dir}.tar.gz"), &tarball, false)
        .with_context(|| format!("cannot read {}", tarball.display()))?;
    let artifact = plain(&origin, super::push::cache_dir().as_deref())?;
    Ok(Some(Install::Tarball {
        artifact,
        dir,
        origin,
    }))
}

/// The plain tar of the gzipped tarball `origin`: its hash and length from `cache`
/// (`<sha256 of the .tar.gz>.tar`: `SHA256 LEN`) if an earlier run left them there, else
/// decompressed and hashed, and left there, so a setup with nothing to do does not decompress.
pub fn plain(origin: &Artifact, cache: Option<&Path>) -> anyhow::Result<Artifact> {
    let name = origin.name.trim_end_matches(".gz").to_string();
    let entry = cache.map(|c| c.join(format!("{}.tar", origin.sha256)));
    let cached = entry
        .as_ref()
        .and_then(|e| std::fs::read_to_string(e).ok())
        .and_then(|text| {
            let (sha, len) = text.trim().split_once(' ')?;
            Some((sha.to_string(), len.parse::<u64>().ok()?))
        })
        .filter(|(sha, _)| sha.len() == 64);
    let (sha256, len) = match cached {
        Some(known) => known,
        None => {
            let bytes = gunzip(
                &std::fs::read(&origin.path)
                    .with_context(|| format!("cannot read {}", origin.path.display()))?,
            )
            .with_context(|| format!("cannot decompress {}", origin.path.display()))?;
            let known = (crate::artifacts::sha256_bytes(&bytes), bytes.len() as u64);
            if let Some(e) = &entry {
                let stored = e
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(e, format!("{} {}\n", known.0, known.1)));
                if let Err(err) = stored {
                    tracing::debug!(error = %err, "cannot keep the plain tarball's hash");
                }
            }
            known
        }
    };
    Ok(Artifact {
        name,
        path: origin.path.clone(),
        sha256,
        len,
        executable: false,
    })
}

/// The bytes gzip `gz` holds.
pub fn gunzip(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut out)?;
    Ok(out)
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
            Some(Install::Tarball {
                artifact,
                dir,
                origin,
            }) => {
                assert_eq!(dir, "apache-zookeeper-3.8.4-bin");
                assert_eq!(origin.name, "apache-zookeeper-3.8.4-bin.tar.gz");
                assert_eq!(origin.path, path);
                assert_eq!(artifact.name, "apache-zookeeper-3.8.4-bin.tar");
                let tar = gunzip(&std::fs::read(&path).unwrap()).unwrap();
                assert_eq!(artifact.sha256, crate::artifacts::sha256_bytes(&tar));
                assert_eq!(artifact.len, tar.len() as u64);
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
