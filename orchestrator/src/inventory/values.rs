//! Rules for single inventory values (names, addresses, ports, paths): each returns the
//! message to report at the value, or the parsed value.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Arch, HostKeyPolicy, JavaPolicy};

/// Checks a host name or SSH user: letters, digits, `.`, `_`, `-`, not starting with `-` (which
/// ssh would read as an option).
pub(super) fn check_word(s: &str, max: usize) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > max {
        return Err(format!("`{s}` is longer than {max} characters"));
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` must not start with '-'"));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        Some(c) => Err(format!(
            "`{s}` contains {c:?}; only letters, digits, '.', '_' and '-' are allowed"
        )),
        None => Ok(()),
    }
}

pub(super) fn check_name(s: &str) -> Result<(), String> {
    if s == "all" {
        return Err("`all` is reserved: it selects every host".into());
    }
    check_word(s, 63)
}

pub(super) fn check_user(s: &str) -> Result<(), String> {
    check_word(s, 32)
}

pub(super) fn check_port(port: u16) -> Result<u16, String> {
    match port {
        0 => Err("0 is not a port; use 1..=65535".into()),
        p => Ok(p),
    }
}

/// Accepts an IPv4/IPv6 address or an RFC 1123 hostname, nothing ssh could read as an option.
pub(super) fn check_address(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    check_hostname(s).map_err(|why| format!("`{s}` is not a hostname or IP address: {why}"))
}

pub(super) fn check_hostname(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in s.split('.') {
        if label.is_empty() {
            return Err("empty label between dots".into());
        }
        if label.len() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with '-'"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} is not allowed (only letters, digits, '-' and '.')"
            ));
        }
    }
    if s.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err("all-numeric, but not a valid IPv4 address".into());
    }
    Ok(())
}

pub(super) fn check_alias(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.starts_with('-') {
        return Err(format!("`{s}` must not start with '-'"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{s}` must not contain whitespace"));
    }
    Ok(())
}

/// Checks a jump host written `[user@]host[:port]` (IPv6 with a port as `[addr]:port`).
pub(super) fn check_jump(s: &str) -> Result<(), String> {
    let (user, rest) = match s.split_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, s),
    };
    let checked = user
        .map_or(Ok(()), |u| check_user(u).map_err(|e| format!("user: {e}")))
        .and_then(|()| split_host_port(rest))
        .and_then(|(host, port)| {
            check_address(host)?;
            match port.map(str::parse::<u16>) {
                None | Some(Ok(1..)) => Ok(()),
                Some(_) => Err(format!("port `{}` is not 1..=65535", port.unwrap_or(""))),
            }
        });
    checked.map_err(|why| format!("`{s}` is not a valid [user@]host[:port]: {why}"))
}

pub(super) fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(inner) = s.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or("missing ']'")?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` in brackets is not an IPv6 address"));
        }
        return match after {
            "" => Ok((addr, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((addr, Some(port))),
                None => Err(format!("unexpected `{after}` after ']'")),
            },
        };
    }
    match s.split_once(':') {
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        _ => Ok((s, None)),
    }
}

pub(super) fn parse_host_key(s: &str) -> Result<HostKeyPolicy, String> {
    match s {
        "strict" => Ok(HostKeyPolicy::Strict),
        "accept-new" => Ok(HostKeyPolicy::AcceptNew),
        _ => Err(format!(
            "`{s}` is not a host key policy; expected strict or accept-new"
        )),
    }
}

pub(super) fn parse_java(s: &str) -> Result<JavaPolicy, String> {
    match s {
        "require" => Ok(JavaPolicy::Require),
        "install" => Ok(JavaPolicy::Install),
        _ => Err(format!(
            "`{s}` is not a Java policy; expected require (the default) or install"
        )),
    }
}

pub(super) fn parse_arch(s: &str) -> Result<Arch, String> {
    [Arch::X86_64, Arch::Aarch64]
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or_else(|| format!("`{s}` is not a supported architecture; expected x86_64 or aarch64"))
}

/// A remote directory: orch quotes it in shell commands, but `~/` must stay expandable and
/// `..` would escape the directory orch cleans up.
pub(super) fn check_orch_dir(s: &str) -> Result<(), String> {
    if !(s.starts_with('/') || s.starts_with("~/")) {
        return Err(format!("`{s}` must be absolute or start with `~/`"));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`{s}` must not contain whitespace"));
    }
    if s.split('/').any(|part| part == "..") {
        return Err(format!("`{s}` must not contain a `..` component"));
    }
    Ok(())
}

/// A Linux interface name: at most 15 bytes, no `/`, `:` or whitespace.
pub(super) fn check_interface(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        return Err(format!("`{s}` is not 1 to 15 characters long"));
    }
    if s == "." || s == ".." {
        return Err(format!("`{s}` is not an interface name"));
    }
    match s
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
    {
        Some(c) => Err(format!(
            "`{s}` contains {c:?}, which interface names cannot"
        )),
        None => Ok(()),
    }
}

pub(super) fn check_connect_timeout(secs: u64) -> Result<Duration, String> {
    match secs {
        1..=300 => Ok(Duration::from_secs(secs)),
        _ => Err(format!("{secs} is not 1..=300 seconds")),
    }
}

/// A ZooKeeper release such as `3.8.4`: it becomes part of a file name on the controller.
pub(super) fn check_version(s: &str) -> Result<(), String> {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if s.is_empty() || !plain || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "`{s}` is not a release number like 3.8.4 (digits, letters, '.' and '-')"
        ));
    }
    Ok(())
}

pub(super) fn check_count(n: u64, max: u32) -> Result<u32, String> {
    match u32::try_from(n) {
        Ok(n @ 1..) if n <= max => Ok(n),
        _ => Err(format!("{n} is not 1..={max}")),
    }
}

pub(super) fn check_zk_id(id: u64) -> Result<u8, String> {
    match u8::try_from(id) {
        Ok(id @ 1..) => Ok(id),
        _ => Err(format!("{id} is not 1..=255")),
    }
}

/// Resolves a local path: `~` and `~/...` from `home`, relative paths against `dir` (the
/// inventory's directory), so the file works from any working directory.
pub(super) fn local_path(s: &str, dir: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s == "~" || s.starts_with("~/") {
        let home = home.ok_or_else(|| format!("`{s}` uses `~` but HOME is not set"))?;
        return Ok(match s.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => home.to_path_buf(),
        });
    }
    if s.starts_with('~') {
        return Err(format!("`{s}`: only `~/` is expanded; write the full path"));
    }
    Ok(dir.join(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_hostnames_or_ip_addresses() {
        for ok in [
            "a",
            "ms1001.utah.cloudlab.us",
            "x-1.Example.ORG",
            "10.0.0.1",
            "::1",
            "2001:db8::3",
        ] {
            assert_eq!(check_address(ok), Ok(()), "{ok}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["abcdefghi"; 26].join(".");
        for bad in [
            "",
            "bad_host!",
            "-oProxyCommand=x",
            "a..b",
            "trailing.",
            "a-.b",
            "10.0.1.300",
            "1.2.3",
            "two words",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_users_cannot_look_like_options() {
        assert_eq!(check_name("node-0_a.b"), Ok(()));
        assert!(check_name("-x")
            .unwrap_err()
            .contains("must not start with '-'"));
        assert!(check_name("a b").unwrap_err().contains("' '"));
        assert!(check_name(&"n".repeat(64)).is_err());
        assert!(check_name("all").is_err());
        assert_eq!(check_user(&"u".repeat(32)), Ok(()));
        assert!(check_user(&"u".repeat(33)).is_err());
        assert!(check_user("").is_err());
        assert!(check_user("root;id").is_err());
    }

    #[test]
    fn jump_hosts_are_user_host_port() {
        for ok in [
            "bastion",
            "me@bastion.example.org:22",
            "me@10.0.0.1",
            "[2001:db8::1]:2200",
            "me@[::1]",
            "2001:db8::1",
        ] {
            assert_eq!(check_jump(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "me@",
            "@host",
            "-J@host",
            "me@-oProxyCommand=x",
            "host:0",
            "host:abc",
            "host:70000",
            "host:",
            "[::1",
            "[::1]x",
            "[bastion]:22",
            "two words@host",
        ] {
            assert!(check_jump(bad).is_err(), "{bad}");
        }
        let why = check_jump("me@bastion:99999").unwrap_err();
        assert_eq!(
            why,
            "`me@bastion:99999` is not a valid [user@]host[:port]: port `99999` is not 1..=65535"
        );
    }

    #[test]
    fn interface_names_follow_linux_rules() {
        for ok in ["eth0", "enp6s0f0", "a", "br-1234567890ab"] {
            assert_eq!(check_interface(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "eth0:1", "a/b", "a b", "sixteen-chars-xx"] {
            assert!(check_interface(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn orch_dir_is_absolute_or_under_home() {
        for ok in ["~/.orch", "/opt/orch", "/srv/orch..old"] {
            assert_eq!(check_orch_dir(ok), Ok(()), "{ok}");
        }
        for bad in ["orch", "~", "~bob/orch", "~/a/../b", "/opt/my orch", "/.."] {
            assert!(check_orch_dir(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_paths_expand_home_and_follow_the_inventory() {
        let dir = Path::new("/inv");
        let home = Some(Path::new("/home/me"));
        let resolve = |s: &str| local_path(s, dir, home);
        assert_eq!(resolve("~"), Ok(PathBuf::from("/home/me")));
        assert_eq!(resolve("~/.ssh/id"), Ok(PathBuf::from("/home/me/.ssh/id")));
        assert_eq!(resolve("keys/id"), Ok(PathBuf::from("/inv/keys/id")));
        assert_eq!(resolve("/etc/id"), Ok(PathBuf::from("/etc/id")));
        assert!(resolve("~bob/id").is_err());
        assert!(resolve("").is_err());
        assert!(local_path("~/id", dir, None).unwrap_err().contains("HOME"));
    }

    #[test]
    fn ranges_are_checked() {
        assert!(check_port(0).is_err());
        assert_eq!(check_port(65535), Ok(65535));
        assert_eq!(check_zk_id(255), Ok(255));
        assert!(check_zk_id(0).is_err() && check_zk_id(256).is_err());
        assert_eq!(check_connect_timeout(300), Ok(Duration::from_secs(300)));
        assert!(check_connect_timeout(0).is_err() && check_connect_timeout(301).is_err());
        assert_eq!(parse_host_key("accept-new"), Ok(HostKeyPolicy::AcceptNew));
        assert_eq!(parse_arch("aarch64"), Ok(Arch::Aarch64));
        assert!(parse_arch("arm64").is_err());
        assert_eq!(check_count(1000, 1000), Ok(1000));
        assert!(check_count(0, 10).is_err() && check_count(11, 10).is_err());
        assert_eq!(check_version("3.8.4"), Ok(()));
        assert_eq!(check_version("3.9.0-rc1"), Ok(()));
        for bad in ["", "latest", "3.8/4", "3.8.4 ", "../3"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
