//! What the user sees while work runs on many hosts: an indicatif bar on a terminal, plain lines
//! otherwise (CI logs, pipes), and host-prefixed output lines that never tear the bar.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress over a set of hosts, or over the bytes sent to them.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Without a terminal: the label and counts for one plain line per finished host.
    plain: Option<PlainProgress>,
    /// The bar counts bytes ([`Progress::sent`]), not hosts.
    bytes: bool,
}

struct PlainProgress {
    what: String,
    total: usize,
    done: std::sync::atomic::AtomicUsize,
}

impl Progress {
    /// A bar over `total` hosts when stderr is a terminal; a plain line per host otherwise.
    pub fn new(what: &str, total: usize) -> Progress {
        Progress::with_bar(what, total, total as u64, "{pos}/{len} hosts", false)
    }

    /// A bar over `total_bytes` sent to `hosts` hosts when stderr is a terminal (advanced by
    /// [`Progress::sent`]); a plain line per finished host otherwise.
    pub fn bytes(what: &str, hosts: usize, total_bytes: u64) -> Progress {
        let counts = "{bytes}/{total_bytes} {bytes_per_sec}";
        Progress::with_bar(what, hosts, total_bytes, counts, true)
    }

    fn with_bar(what: &str, hosts: usize, len: u64, counts: &str, bytes: bool) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                plain: Some(PlainProgress {
                    what: what.to_string(),
                    total: hosts,
                    done: Default::default(),
                }),
                bytes,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {{prefix}} [{{bar:30}}] {counts} {{msg}}"
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Progress {
            bar: Some(bar),
            plain: None,
            bytes,
        }
    }

    /// `n` more bytes were sent (moves a byte bar; nothing otherwise).
    pub fn sent(&self, n: u64) {
        if let (Some(bar), true) = (&self.bar, self.bytes) {
            bar.inc(n);
        }
    }

    /// A host finished its part.
    pub fn tick(&self, host: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(host.to_string());
            if !self.bytes {
                bar.inc(1);
            }
        }
        if let Some(p) = &self.plain {
            let done = p.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            self.eprintln(&format!("{}: {host} finished ({done}/{})", p.what, p.total));
        }
    }

    /// Prints a line to stdout without disturbing the bar.
    pub fn println(&self, line: &str) {
        self.print(line, false);
    }

    /// Prints a line to stderr without disturbing the bar.
    pub fn eprintln(&self, line: &str) {
        self.print(line, true);
    }

    fn print(&self, line: &str, to_stderr: bool) {
        let emit = || {
            if to_stderr {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            } else {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        };
        match &self.bar {
            Some(bar) => bar.suspend(emit),
            None => emit(),
        }
    }

    /// Removes the bar so the summary that follows stands alone.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Formats rows as left-aligned columns separated by two spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let t = super::table(
            &["HOST", "STATE"],
            &[
                vec!["h1".into(), "ok".into()],
                vec!["longname".into(), "unreachable".into()],
            ],
        );
        assert_eq!(t, "HOST      STATE\nh1        ok\nlongname  unreachable");
    }
}
