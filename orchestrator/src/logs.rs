//! `orch fetch-logs`: every host streams its run directory as a tar over SSH; orch checks each
//! entry (no absolute paths, no `..`, no links leading outside, no device files) and gathers
//! everything into one `logs.tar.gz` with a folder per host and a MANIFEST of sha256 sums.
//! Remote logs are deleted only on request, and only after the tarball is written and verified.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::inventory::Host;
use crate::output::Progress;
use crate::remote::{self, quote, Cmd};

/// What to fetch and where to put it.
pub struct FetchOptions {
    pub run_id: String,
    /// The tarball to write; its directory also holds the temporary files.
    pub output: PathBuf,
    /// Delete each host's run directory once the tarball is verified.
    pub prune: bool,
    /// Fetch ZooKeeper's data directories too (see [`ZK_DATA`]).
    pub include_zk_data: bool,
    pub parallel: usize,
    /// The scenario text, recorded in the MANIFEST when known.
    pub scenario: Option<String>,
    /// Artifact name -> content hash, recorded in the MANIFEST when known.
    pub artifacts: BTreeMap<String, String>,
}

/// ZooKeeper's transaction logs and snapshots under each run's `zk/data/` (the designated
/// leader's ensemble starts empty every run): tens of MB per server and run, mostly the
/// preallocated log file, and no help in reading what happened. Left out unless asked for.
pub const ZK_DATA: &str = "*/zk/data/version-2";

/// One entry a host sent that orch did not write, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Refused {
    pub host: String,
    pub path: String,
    pub reason: String,
}

/// The MANIFEST stored at the top of every logs tarball.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub orch_version: String,
    pub run_id: String,
    pub created_unix: u64,
    pub hosts: Vec<ManifestHost>,
    pub scenario: Option<String>,
    pub artifacts: BTreeMap<String, String>,
    pub files: Vec<ManifestFile>,
    pub refused: Vec<Refused>,
    /// Paths left out on the hosts (tar `--exclude` patterns), e.g. [`ZK_DATA`].
    #[serde(default)]
    pub excluded: Vec<String>,
}

/// A host and how its fetch went.
#[derive(Debug, Serialize, Deserialize)]
pub struct ManifestHost {
    pub name: String,
    pub experiment_ip: String,
    /// `ok`, or the error that kept its logs out.
    pub status: String,
    /// Name -> SHA-256 of what `orch setup` installed on the host (its `artifacts.json`).
    #[serde(default)]
    pub artifacts: BTreeMap<String, String>,
}

/// One file of the tarball.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// What a fetch produced.
#[derive(Debug)]
pub struct FetchReport {
    pub output: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub refused: Vec<Refused>,
    pub failed_hosts: Vec<(String, String)>,
    pub pruned: Vec<String>,
}

/// Run ids become file names on the controller and arguments on hosts: keep them plain.
pub fn validate_run_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        bail!("run id `{id}`: use letters, digits, `-`, `_` and `.` only, not starting with `.` or `-`");
    }
    Ok(())
}

/// The run directory of `run_id` on a host.
pub fn remote_run_dir(host: &Host, run_id: &str) -> String {
    format!("{}/runs/{run_id}", host.orch_dir.trim_end_matches('/'))
}

/// Each host's record of what `orch setup` installed (`<orch_dir>/artifacts.json`); a host
/// without one (set up by an older orch) or that does not answer is left out.
async fn installed_artifacts(
    hosts: &[&Host],
    parallel: usize,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let progress = Progress::new("artifacts", hosts.len());
    let results = remote::each(hosts, parallel, &progress, |conn| async move {
        let host = hosts
            .iter()
            .find(|h| h.name == conn.host())
            .expect("selected host");
        let record = format!(
            "{}/{}",
            host.orch_dir.trim_end_matches('/'),
            crate::setup::ARTIFACTS_RECORD
        );
        conn.run(&Cmd::script(&format!(
            "cat {} 2>/dev/null || true",
            quote::path(&record)
        )))
        .await
    })
    .await;
    progress.finish();
    results
        .into_iter()
        .filter_map(|r| {
            let out = r.result.ok()?;
            let map = serde_json::from_str(&out.stdout).ok()?;
            Some((r.host, map))
        })
        .collect()
}

/// Fetches the run's logs from every host into one verified tarball.
pub async fn fetch(hosts: &[&Host], opts: &FetchOptions) -> anyhow::Result<FetchReport> {
    validate_run_id(&opts.run_id)?;
    let dir = opts
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let spool = tempfile::Builder::new()
        .prefix(".orch-fetch-")
        .tempdir_in(&dir)
        .with_context(|| format!("cannot create a temporary directory in {}", dir.display()))?;

    let progress = Progress::new("fetch-logs", hosts.len());
    let spool_dir = spool.path();
    let results = remote::each(hosts, opts.parallel, &progress, |conn| async move {
        let host = hosts
            .iter()
            .find(|h| h.name == conn.host())
            .expect("selected host");
        let runs = format!("{}/runs", host.orch_dir.trim_end_matches('/'));
        let exclude = if opts.include_zk_data {
            String::new()
        } else {
            format!("--exclude={} ", quote::quote(ZK_DATA))
        };
        let cmd = Cmd::script(&format!(
            "cd {} && exec tar -cf - {exclude}-- {}",
            quote::path(&runs),
            quote::quote(&opts.run_id)
        ));
        let file = tokio::fs::File::create(spool_dir.join(format!("{}.tar", host.name)))
            .await
            .map_err(|e| remote::RemoteError::Command {
                host: host.name.clone(),
                command: "spool".into(),
                reason: e.to_string(),
            })?;
        conn.pipe(
            &cmd,
            &format!("tar of {}", remote_run_dir(host, &opts.run_id)),
            file,
        )
        .await
    })
    .await;
    progress.finish();

    let mut fetched = Vec::new();
    let mut failed_hosts = Vec::new();
    for (host, r) in hosts.iter().zip(results) {
        match r.result {
            Ok(_) => fetched.push(*host),
            Err(e) => failed_hosts.push((host.name.clone(), e.to_string())),
        }
    }

    let installed = installed_artifacts(&fetched, opts.parallel).await;
    let manifest_hosts = hosts
        .iter()
        .map(|h| ManifestHost {
            name: h.name.clone(),
            experiment_ip: h.experiment_ip.to_string(),
            artifacts: installed.get(&h.name).cloned().unwrap_or_default(),
            status: failed_hosts
                .iter()
                .find(|(n, _)| n == &h.name)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| "ok".into()),
        })
        .collect();
    let mut manifest = Manifest {
        orch_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: opts.run_id.clone(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        hosts: manifest_hosts,
        scenario: opts.scenario.clone(),
        artifacts: opts.artifacts.clone(),
        files: Vec::new(),
        refused: Vec::new(),
        excluded: if opts.include_zk_data {
            Vec::new()
        } else {
            vec![ZK_DATA.to_string()]
        },
    };

    let names: Vec<String> = fetched.iter().map(|h| h.name.clone()).collect();
    let spool_path = spool.path().to_path_buf();
    let output = opts.output.clone();
    let run_id = opts.run_id.clone();
    let manifest = tokio::task::spawn_blocking(move || -> anyhow::Result<Manifest> {
        write_tarball(&spool_path, &names, &run_id, &output, &mut manifest)?;
        verify(&output, &manifest)?;
        Ok(manifest)
    })
    .await
    .context("the archive writer panicked")??;
    drop(spool);

    let mut pruned = Vec::new();
    if opts.prune {
        let clean: Vec<&Host> = fetched
            .iter()
            .copied()
            .filter(|h| !manifest.refused.iter().any(|r| r.host == h.name))
            .collect();
        let clean = &clean;
        let progress = Progress::new("prune", clean.len());
        let results = remote::each(clean, opts.parallel, &progress, |conn| async move {
            let host = clean
                .iter()
                .find(|h| h.name == conn.host())
                .expect("selected host");
            let line = format!(
                "rm -rf -- {}",
                quote::path(&remote_run_dir(host, &opts.run_id))
            );
            conn.run(&Cmd::script(&line)).await
        })
        .await;
        progress.finish();
        for r in results {
            match r.result {
                Ok(out) if out.status.success() => pruned.push(r.host),
                Ok(out) => {
                    failed_hosts.push((r.host, format!("prune failed: {}", out.stderr.trim())))
                }
                Err(e) => failed_hosts.push((r.host, format!("prune failed: {e}"))),
            }
        }
    }

    Ok(FetchReport {
        output: opts.output.clone(),
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.size).sum(),
        refused: manifest.refused,
        failed_hosts,
        pruned,
    })
}

/// Copies every acceptable entry of every host's spooled tar into `output` (written to a
/// temporary name, renamed when complete) and fills the manifest.
fn write_tarball(
    spool: &Path,
    hosts: &[String],
    run_id: &str,
    output: &Path,
    manifest: &mut Manifest,
) -> anyhow::Result<()> {
    let dir = output.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".logs-")
        .suffix(".tar.gz.partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let gz = flate2::write::GzEncoder::new(tmp.reopen()?, flate2::Compression::default());
    let mut out = tar::Builder::new(gz);
    out.mode(tar::HeaderMode::Deterministic);
    for host in hosts {
        let file = File::open(spool.join(format!("{host}.tar")))?;
        copy_host(file, host, run_id, &mut out, manifest)
            .with_context(|| format!("{host}: reading its tar stream"))?;
    }
    let body = serde_json::to_vec_pretty(&*manifest)?;
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    out.append_data(&mut header, "MANIFEST", &body[..])?;
    let gz = out.into_inner()?;
    gz.finish()?.sync_all()?;
    tmp.persist(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}

/// Copies one host's entries under `<host>/`, refusing anything that could escape.
fn copy_host<W: Write>(
    tar_stream: impl Read,
    host: &str,
    run_id: &str,
    out: &mut tar::Builder<W>,
    manifest: &mut Manifest,
) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(tar_stream);
    let mut files_seen: HashSet<PathBuf> = HashSet::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let refuse = |reason: &str, manifest: &mut Manifest| {
            manifest.refused.push(Refused {
                host: host.to_string(),
                path: raw.clone(),
                reason: reason.to_string(),
            })
        };
        let rel = match inside_run(&raw, run_id) {
            Ok(Some(rel)) => rel,
            Ok(None) => continue,
            Err(reason) => {
                refuse(reason, manifest);
                continue;
            }
        };
        let dest = Path::new(host).join(&rel);
        let kind = entry.header().entry_type();
        let mut header = entry.header().clone();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut hashing = HashingReader::new(&mut entry);
                out.append_data(&mut header, &dest, &mut hashing)?;
                let (size, sha256) = hashing.finish();
                files_seen.insert(rel);
                manifest.files.push(ManifestFile {
                    path: dest.to_string_lossy().into_owned(),
                    size,
                    sha256,
                });
            }
            tar::EntryType::Directory => out.append_data(&mut header, &dest, io::empty())?,
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if !link_stays_inside(&rel, &target) {
                    refuse("symbolic link leading outside the run directory", manifest);
                    continue;
                }
                out.append_link(&mut header, &dest, &target)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                match inside_run(&target.to_string_lossy(), run_id) {
                    Ok(Some(t)) if files_seen.contains(&t) => {
                        out.append_link(&mut header, &dest, Path::new(host).join(t))?
                    }
                    _ => refuse("hard link to a file outside the run directory", manifest),
                }
            }
            _ => refuse(
                "not a regular file, directory or link (device, fifo, ...)",
                manifest,
            ),
        }
    }
    Ok(())
}

/// The path of an entry relative to the run directory, `None` for the run directory itself,
/// or why the path is refused.
fn inside_run(raw: &str, run_id: &str) -> Result<Option<PathBuf>, &'static str> {
    let path = Path::new(raw);
    if path.is_absolute() {
        return Err("absolute path");
    }
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
        }
    }
    match parts.split_first() {
        Some((first, rest)) if *first == run_id => {
            Ok((!rest.is_empty()).then(|| rest.iter().collect()))
        }
        _ => Err("outside the run directory"),
    }
}

/// True if a symlink at `link` (relative to the run directory) pointing at `target` resolves,
/// lexically, to a place inside the run directory.
fn link_stays_inside(link: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> = link
        .parent()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    for c in target.components() {
        match c {
            Component::Normal(p) => depth.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Re-reads the written tarball and checks every file against the manifest.
pub fn verify(path: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("cannot reopen {}", path.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type().is_file() {
            let name = entry.path()?.to_string_lossy().into_owned();
            let mut hashing = HashingReader::new(&mut entry);
            io::copy(&mut hashing, &mut io::sink())?;
            found.insert(name, hashing.finish());
        }
    }
    for f in &manifest.files {
        match found.get(&f.path) {
            Some((size, sum)) if *size == f.size && *sum == f.sha256 => {}
            Some(_) => bail!(
                "{}: {} does not match its MANIFEST entry",
                path.display(),
                f.path
            ),
            None => bail!("{}: {} is missing", path.display(), f.path),
        }
    }
    Ok(())
}

/// Reads the MANIFEST of a logs tarball.
pub fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.path()?.as_os_str() == "MANIFEST" {
            return Ok(serde_json::from_reader(entry)?);
        }
    }
    bail!("{} has no MANIFEST", path.display())
}

/// A reader that counts and hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (u64, String) {
        (self.size, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream with raw entry names, as a hostile host could send.
    fn hostile_tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            let body: &[u8] = if kind.is_file() { b"data" } else { b"" };
            h.set_size(body.len() as u64);
            h.set_cksum();
            b.append(&h, body).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn manifest() -> Manifest {
        Manifest {
            orch_version: "test".into(),
            run_id: "r1".into(),
            created_unix: 0,
            hosts: Vec::new(),
            scenario: None,
            artifacts: BTreeMap::new(),
            files: Vec::new(),
            refused: Vec::new(),
            excluded: Vec::new(),
        }
    }

    #[test]
    fn hostile_entries_are_refused_and_the_rest_is_kept() {
        use tar::EntryType::*;
        let stream = hostile_tar(&[
            ("r1/", Directory, ""),
            ("r1/ok.log", Regular, ""),
            ("../evil", Regular, ""),
            ("r1/../../evil2", Regular, ""),
            ("/etc/evil3", Regular, ""),
            ("other/file", Regular, ""),
            ("r1/link-out", Symlink, "../../etc/passwd"),
            ("r1/link-abs", Symlink, "/etc/passwd"),
            ("r1/link-in", Symlink, "ok.log"),
            ("r1/hard-out", Link, "/etc/shadow"),
            ("r1/hard-in", Link, "r1/ok.log"),
            ("r1/dev", Char, ""),
            ("r1/fifo", Fifo, ""),
        ]);
        let mut m = manifest();
        let mut out = tar::Builder::new(Vec::new());
        copy_host(&stream[..], "h1", "r1", &mut out, &mut m).unwrap();
        let refused: Vec<&str> = m.refused.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            refused,
            [
                "../evil",
                "r1/../../evil2",
                "/etc/evil3",
                "other/file",
                "r1/link-out",
                "r1/link-abs",
                "r1/hard-out",
                "r1/dev",
                "r1/fifo"
            ]
        );
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.files[0].path, "h1/ok.log");
        let written = out.into_inner().unwrap();
        let names: Vec<String> = tar::Archive::new(&written[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["h1/ok.log", "h1/link-in", "h1/hard-in"]);
    }

    #[test]
    fn run_ids_are_plain() {
        for good in ["20261125-201500-zk", "a.b_c-1"] {
            validate_run_id(good).unwrap();
        }
        for bad in ["", "../x", "-rf", ".hidden", "a b", "a/b", "$(id)"] {
            assert!(validate_run_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn symlink_containment_is_lexical() {
        assert!(link_stays_inside(Path::new("a/b/l"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("a/l"), Path::new("../../c")));
        assert!(!link_stays_inside(Path::new("l"), Path::new("/c")));
    }
}
