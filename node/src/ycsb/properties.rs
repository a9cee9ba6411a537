//! YCSB's configuration: Java `.properties` workload files and YCSB's command line, merged with
//! YCSB's precedence so existing workload files and scripts work unchanged: `-P` files in order,
//! then every command-line property (`-p`, `-threads`, `-target`, `-s`, `-l`) over all files.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{bail, Context, Result};

/// Which YCSB phase to run: `load` inserts the records, `run` executes the operation mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Load,
    Run,
}

/// Property names and values, as YCSB's `java.util.Properties`.
#[derive(Clone, Debug, Default)]
pub struct Properties {
    map: BTreeMap<String, String>,
}

/// A parsed `orch-node ycsb` command line.
#[derive(Debug)]
pub struct CommandLine {
    pub phase: Phase,
    pub props: Properties,
}

/// Printed for `-h`/`--help` and after a command-line mistake.
pub const USAGE: &str = "\
usage: orch-node ycsb load|run [-P workloadfile]... [-p name=value]... [-threads N] [-target N]
                               [-s] [-l label] [-db zookeeper] [--out FILE]
  -P FILE        load properties from a YCSB workload file (several allowed, in order)
  -p NAME=VALUE  set a property; command-line properties override all files
  -threads N     client threads, each with its own ZooKeeper session (property threadcount)
  -target N      overall target throughput in ops/s (property target; default unlimited)
  -s             status line to stderr every status.interval seconds (default 10)
  -l LABEL       prefix of the status lines (property label)
  --out FILE     write the results to FILE instead of stdout (property exportfile)
Properties and what is honored: docs/ycsb.md";

impl Properties {
    /// Parses the text of a Java `.properties` file (comments, `=`/`:`/space separators,
    /// backslash continuations and escapes).
    pub fn parse(text: &str) -> Self {
        let mut props = Self::default();
        let mut lines = text.lines();
        while let Some(first) = lines.next() {
            let mut logical = first.trim_start().to_string();
            if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
                continue;
            }
            while ends_in_continuation(&logical) {
                logical.pop();
                match lines.next() {
                    Some(next) => logical.push_str(next.trim_start()),
                    None => break,
                }
            }
            let (key, value) = split_entry(&logical);
            props.set(&unescape(key), &unescape(value));
        }
        props
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: &str) {
        self.map.insert(name.to_string(), value.to_string());
    }

    /// The raw value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// All property names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// The value of `name`, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_string()
    }

    /// `name` parsed as a number, or `default`; an unparsable value is an error naming it.
    pub fn number<T: FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .with_context(|| format!("property {name}={v}: not a valid number")),
        }
    }

    /// `name` as Java's `Boolean.parseBoolean` reads it: `true` in any case, else false.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        self.get(name)
            .map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// Copies every property of `other` over this one.
    fn overlay(&mut self, other: Properties) {
        self.map.extend(other.map);
    }
}

fn ends_in_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || c.is_whitespace() {
            let key = &line[..i];
            let mut rest = line[i..].trim_start();
            if c.is_whitespace() {
                if let Some(r) = rest.strip_prefix(['=', ':']) {
                    rest = r.trim_start();
                }
            } else {
                rest = line[i + 1..].trim_start();
            }
            return (key, rest);
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(&hex),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Parses `load|run` and YCSB's options; `Ok(None)` means help was asked for.
pub fn parse_command_line(args: &[String]) -> Result<Option<CommandLine>> {
    let mut args = args.iter().map(String::as_str);
    let phase = match args.next() {
        Some("load") => Phase::Load,
        Some("run") => Phase::Run,
        Some("-h" | "--help" | "help") => return Ok(None),
        Some(other) => bail!("expected `load` or `run`, not `{other}`\n{USAGE}"),
        None => bail!("expected `load` or `run`\n{USAGE}"),
    };
    let mut files = Properties::default();
    let mut cli = Properties::default();
    while let Some(arg) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .with_context(|| format!("{arg} needs {what}\n{USAGE}"))
        };
        match arg {
            "-h" | "--help" => return Ok(None),
            "-P" => {
                let path = value("a workload file")?;
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read workload file {path}"))?;
                files.overlay(Properties::parse(&text));
            }
            "-p" => {
                let pair = value("name=value")?;
                let Some((name, v)) = pair.split_once('=') else {
                    bail!("-p expects name=value, got `{pair}`\n{USAGE}");
                };
                cli.set(name, v);
            }
            "-threads" | "--threads" => cli.set("threadcount", value("a thread count")?),
            "-target" | "--target" => cli.set("target", value("ops per second")?),
            "-l" => cli.set("label", value("a label")?),
            "-db" => cli.set("db", value("a binding name")?),
            "--out" => cli.set("exportfile", value("a file")?),
            "-s" => cli.set("status", "true"),
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    files.overlay(cli);
    Ok(Some(CommandLine {
        phase,
        props: files,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn workload_file_syntax() {
        let p = Properties::parse(
            "# comment\n  ! also a comment\nrecordcount=1000\nworkload : site.ycsb.workloads.CoreWorkload\n\
             readproportion 0.5\nlong=a\\\n    b\nesc=tab\\there\\u0041\n\nempty=\n",
        );
        assert_eq!(p.get("recordcount"), Some("1000"));
        assert_eq!(p.get("workload"), Some("site.ycsb.workloads.CoreWorkload"));
        assert_eq!(p.get("readproportion"), Some("0.5"));
        assert_eq!(p.get("long"), Some("ab"));
        assert_eq!(p.get("esc"), Some("tab\thereA"));
        assert_eq!(p.get("empty"), Some(""));
        assert_eq!(p.names().count(), 6);
    }

    #[test]
    fn command_line_overrides_files_whatever_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "recordcount=1\nthreadcount=3\nfieldcount=5\n").unwrap();
        std::fs::write(&b, "recordcount=2\n").unwrap();
        let line = format!(
            "run -p fieldcount=7 -P {} -P {} -threads 4 -s --target 50 -p fieldcount=8 --out x",
            a.display(),
            b.display()
        );
        let cl = parse_command_line(&args(&line)).unwrap().unwrap();
        assert_eq!(cl.phase, Phase::Run);
        assert_eq!(cl.props.get("recordcount"), Some("2"));
        assert_eq!(cl.props.get("threadcount"), Some("4"));
        assert_eq!(cl.props.get("fieldcount"), Some("8"));
        assert_eq!(cl.props.get("target"), Some("50"));
        assert_eq!(cl.props.get("exportfile"), Some("x"));
        assert!(cl.props.flag("status", false));
    }

    #[test]
    fn command_line_mistakes() {
        let err = |s: &str| parse_command_line(&args(s)).unwrap_err().to_string();
        assert!(err("scan").contains("expected `load` or `run`"));
        assert!(err("run -x").contains("unknown option `-x`"));
        assert!(err("run -p recordcount").contains("name=value"));
        assert!(err("load -threads").contains("-threads needs a thread count"));
        assert!(err("load -P /nonexistent").contains("/nonexistent"));
        assert!(parse_command_line(&args("run --help")).unwrap().is_none());
    }

    #[test]
    fn typed_values() {
        let mut p = Properties::default();
        p.set("n", " 42 ");
        p.set("bad", "4x");
        p.set("yes", "TRUE");
        assert_eq!(p.number("n", 0u64).unwrap(), 42);
        assert_eq!(p.number("missing", 7u64).unwrap(), 7);
        assert!(p
            .number("bad", 0u64)
            .unwrap_err()
            .to_string()
            .contains("bad=4x"));
        assert!(p.flag("yes", false));
        assert!(!p.flag("n", true));
    }
}
