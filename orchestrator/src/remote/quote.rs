//! POSIX shell quoting. Every value orch sends to a remote shell goes through here, so a file
//! name with spaces, quotes, `$(...)`, `;` or newlines stays one literal argument.

/// Quotes one argument for a POSIX shell (`sh`, `bash`, `dash`).
///
/// Arguments made only of characters no shell treats specially are left as they are, which keeps
/// commands readable in logs; everything else is wrapped in single quotes, the one quoting form
/// inside which nothing is special.
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes every argument and joins them into one command line.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A remote path as a shell word: `~/x` becomes `"$HOME"/x` (the one expansion orch wants),
/// anything else is quoted literally.
pub fn path(p: &str) -> String {
    match p.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
        None => quote(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs `printf '%s\0' ARGS` through a real `sh -c` and returns the arguments it saw.
    fn through_sh(argv: &[&str]) -> Vec<String> {
        let line = format!("printf '%s\\0' {}", join(argv));
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert!(out.status.success(), "sh failed on {line}");
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_terminator('\0').map(str::to_string).collect()
    }

    #[test]
    fn home_paths_expand_only_the_tilde() {
        let line = format!("printf %s {}", path("~/a b/$(x)"));
        let out = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .env("HOME", "/h")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "/h/a b/$(x)");
        assert_eq!(path("/abs/p q"), "'/abs/p q'");
    }

    #[test]
    fn plain_words_stay_readable() {
        assert_eq!(join(&["ls", "-la", "/tmp/x.y"]), "ls -la /tmp/x.y");
    }

    #[test]
    fn hostile_arguments_reach_the_command_literally() {
        let nasty = [
            "two words",
            "it's",
            "\"double\"",
            "$(touch /tmp/orch-quote-pwned)",
            "`id`",
            "a; rm -rf /nonexistent",
            "line1\nline2",
            "",
            "$HOME",
            "*",
            "back\\slash",
            "tab\there",
            "'",
            "''",
            "ünïcødé",
            "-n",
        ];
        assert_eq!(through_sh(&nasty), nasty);
        assert!(!std::path::Path::new("/tmp/orch-quote-pwned").exists());
    }
}
