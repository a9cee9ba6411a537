//! `orch lab up --user NAME`: the hosts are logged into as a normal user with passwordless sudo,
//! as on CloudLab. A user account and a sudoers drop-in are machine-wide (every lab host shares
//! `/etc`), so both are recorded in the lab state before they are created and `down` removes
//! exactly what `up` created: never an account that existed before.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::cmd::{find_in_path, run};

/// Where the lab's sudoers drop-ins go (Debian's sudoers has `@includedir /etc/sudoers.d`).
const SUDOERS_DIR: &str = "/etc/sudoers.d";

/// The lab's user, as recorded in its state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LabUser {
    pub name: String,
    /// True if `up` created the account (then `down` deletes it).
    pub created: bool,
    /// The account's home directory from the password database: each host mounts its own
    /// directory over it.
    pub home: PathBuf,
    /// True if `up` created that directory on the machine (an empty mount point).
    pub home_created: bool,
    /// The sudoers drop-in `up` wrote, once recorded.
    pub sudoers: Option<PathBuf>,
}

/// An account's ids and home, from `getent passwd`.
pub(super) struct Account {
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

/// Fails unless `name` is a portable user name (what `useradd` accepts everywhere) and not root.
pub(super) fn validate_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = name.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        bail!(
            "--user {name:?} is not a valid user name: use up to 32 lowercase letters, digits, \
             `_` or `-`, starting with a letter or `_`"
        );
    }
    if name == "root" {
        bail!("--user root is what the lab uses without --user; leave the flag out");
    }
    Ok(())
}

/// The sudoers drop-in of lab `lab` (no dot in the name: sudo skips such files).
pub(super) fn sudoers_path(lab: &str) -> PathBuf {
    Path::new(SUDOERS_DIR).join(format!("orch-lab-{lab}"))
}

/// The account `name`, if it exists.
pub(super) fn lookup(name: &str) -> Result<Option<Account>> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .context("could not run `getent passwd`")?;
    // getent exits 2 for "no such key".
    if out.status.code() == Some(2) {
        return Ok(None);
    }
    if !out.status.success() {
        bail!("`getent passwd {name}` failed ({})", out.status);
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = line.trim_end().split(':').collect();
    let parse = |i: usize| -> Result<u32> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("`getent passwd {name}` printed {line:?}"))
    };
    let home = fields
        .get(5)
        .filter(|h| h.starts_with('/'))
        .with_context(|| format!("`getent passwd {name}` printed {line:?}: no home directory"))?;
    Ok(Some(Account {
        uid: parse(2)?,
        gid: parse(3)?,
        home: PathBuf::from(home),
    }))
}

/// Fails if the lab cannot use `name`: tools missing, its sudoers drop-in taken, or an existing
/// account that sshd would refuse (locked) or whose home cannot be a per-host mount point.
pub(super) fn check_usable(lab: &str, name: &str) -> Result<()> {
    for (tool, package) in [
        ("useradd", "passwd"),
        ("userdel", "passwd"),
        ("sudo", "sudo"),
        ("visudo", "sudo"),
        ("getent", "libc-bin"),
    ] {
        if find_in_path(tool).is_none() {
            bail!("--user needs `{tool}`; install it with `apt-get install -y {package}`");
        }
    }
    let sudoers = sudoers_path(lab);
    if sudoers.exists() {
        bail!(
            "{} exists but does not belong to lab {lab}; remove it if it is left over, or \
             choose another --name",
            sudoers.display()
        );
    }
    let Some(account) = lookup(name)? else {
        return Ok(());
    };
    let home = &account.home;
    if home.starts_with("/tmp") || home.starts_with("/root") || home == Path::new("/") {
        bail!(
            "user {name}'s home is {}; the lab mounts a private home over it on every host, \
             which cannot be /, or under /tmp or /root (the hosts' own); choose another --user",
            home.display()
        );
    }
    if password_locked(name)? {
        bail!(
            "user {name} exists and its password is locked (`!` in /etc/shadow); the lab's sshd \
             (no PAM) refuses key logins to locked accounts. Run `usermod -p '*' {name}` (no \
             password, not locked) or choose another --user"
        );
    }
    Ok(())
}

/// True if `/etc/shadow` marks the account's password as locked (starts with `!`).
fn password_locked(name: &str) -> Result<bool> {
    let shadow = match fs::read_to_string("/etc/shadow") {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).context("cannot read /etc/shadow"),
    };
    Ok(shadow
        .lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(user, rest)| user == name && rest.starts_with('!')))
}

/// Creates the account (no password, which is not locked: `*`), with its own group and bash.
/// The home directory is not created here: it is a mount point, made by [`create_home`].
pub(super) fn create_account(name: &str, home: &Path) -> Result<()> {
    let shell = ["/bin/bash", "/bin/sh"]
        .into_iter()
        .find(|s| Path::new(s).exists())
        .unwrap_or("/bin/sh");
    run(Command::new("useradd")
        .args(["--no-create-home", "--user-group", "--password", "*"])
        .args(["--shell", shell, "--home-dir"])
        .arg(home)
        .arg(name))
    .map(drop)
}

/// The home directory of a new account, where each host mounts the user's private home.
pub(super) fn default_home(name: &str) -> PathBuf {
    Path::new("/home").join(name)
}

/// Creates the (empty, root-owned) mount point for the hosts' private homes.
pub(super) fn create_home(home: &Path) -> Result<()> {
    if let Some(parent) = home.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    fs::DirBuilder::new()
        .mode(0o755)
        .create(home)
        .with_context(|| format!("cannot create {}", home.display()))
}

/// Writes the drop-in that gives `user` passwordless sudo, checked by `visudo` before it takes
/// effect: a broken file under /etc/sudoers.d would break sudo for the whole machine.
pub(super) fn write_sudoers(path: &Path, user: &str) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new(SUDOERS_DIR));
    let write = || -> Result<()> {
        // The temporary name starts with a dot, so sudo ignores it until the rename.
        let mut tmp = tempfile::Builder::new()
            .prefix(".orch-lab")
            .tempfile_in(dir)?;
        writeln!(
            tmp,
            "# written by `orch lab up`; removed by `orch lab down`\n{user} ALL=(ALL:ALL) NOPASSWD: ALL"
        )?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o440))?;
        run(Command::new("visudo")
            .args(["-c", "-q", "-f"])
            .arg(tmp.path()))?;
        tmp.persist(path)?;
        Ok(())
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// Makes a host's private home for the user: owned by the user, mode 0700, with
/// `.ssh/authorized_keys` holding the lab's key (as CloudLab puts the user's keys there).
pub(super) fn populate_home(home: &Path, account: &Account, public_key: &str) -> Result<()> {
    let own = |p: &Path| {
        std::os::unix::fs::chown(p, Some(account.uid), Some(account.gid))
            .with_context(|| format!("cannot chown {}", p.display()))
    };
    let mkdir = |p: &Path| -> Result<()> {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(p)
            .with_context(|| format!("cannot create {}", p.display()))?;
        own(p)
    };
    mkdir(home)?;
    let ssh = home.join(".ssh");
    mkdir(&ssh)?;
    let keys = ssh.join("authorized_keys");
    super::state::write_atomic(&keys, public_key, 0o600)?;
    own(&keys)
}

/// Removes what `up` created for the user, in reverse order; returns a message per thing that
/// could not be removed and keeps exactly those in `user`.
pub(super) fn remove(user: &mut LabUser, failures: &mut Vec<String>) {
    if let Some(path) = user.sudoers.clone() {
        match fs::remove_file(&path) {
            Ok(()) => user.sudoers = None,
            Err(e) if e.kind() == ErrorKind::NotFound => user.sudoers = None,
            Err(e) => failures.push(format!("cannot remove {}: {e}", path.display())),
        }
    }
    if user.created {
        let exists = lookup(&user.name);
        match exists {
            Ok(None) => user.created = false,
            Ok(Some(_)) => match run(Command::new("userdel").arg(&user.name)) {
                Ok(_) => user.created = false,
                Err(e) => failures.push(format!("{e:#}")),
            },
            Err(e) => failures.push(format!("{e:#}")),
        }
    }
    if user.home_created {
        match fs::remove_dir(&user.home) {
            Ok(()) => user.home_created = false,
            Err(e) if e.kind() == ErrorKind::NotFound => user.home_created = false,
            Err(e) => failures.push(format!(
                "cannot remove the mount point {}: {e}",
                user.home.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_checked() {
        for good in ["researcher", "_x", "a-b_1"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "Root", "1abc", "a b", "a.b", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        let root = validate_name("root").unwrap_err().to_string();
        assert!(root.contains("leave the flag out"), "{root}");
    }

    #[test]
    fn sudoers_names_have_no_dot() {
        let path = sudoers_path("u1");
        assert_eq!(path, Path::new("/etc/sudoers.d/orch-lab-u1"));
        assert!(!path.file_name().unwrap().to_str().unwrap().contains('.'));
    }
}
