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
        // Decimal units, like the sizes in the plan and summary lines (`human_bytes`).
        let counts = "{decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}";
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

/// Progress of a long YCSB phase from its status lines: operations done of the total, ops/s and
/// the time left; a bar on a terminal, a plain line per change otherwise.
pub struct OpsProgress {
    what: String,
    total: Option<u64>,
    bar: Option<ProgressBar>,
    /// The last count shown: a plain line only when it moves.
    last: std::sync::Mutex<Option<u64>>,
}

impl OpsProgress {
    /// `total` operations when the workload says how many (else a count without a bar).
    pub fn new(what: &str, total: Option<u64>) -> OpsProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = match total {
                Some(_) => "{spinner} {prefix} [{bar:30}] {pos}/{len} ops {msg}",
                None => "{spinner} {prefix} {pos} ops {msg}",
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            bar
        });
        OpsProgress {
            what: what.to_string(),
            total,
            bar,
            last: std::sync::Mutex::new(None),
        }
    }

    /// YCSB reported `done` operations at `ops_per_sec` (its current rate).
    pub fn update(&self, done: u64, ops_per_sec: Option<f64>) {
        let mut last = self.last.lock().expect("not poisoned");
        if *last == Some(done) {
            return;
        }
        *last = Some(done);
        let message = ops_message(done, self.total, ops_per_sec);
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(message);
            }
            None => {
                let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "   {}: {done}{of} ops {message}",
                    self.what
                );
            }
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `98.5 ops/s, 1m 12s left` (what is known of it).
fn ops_message(done: u64, total: Option<u64>, ops_per_sec: Option<f64>) -> String {
    let Some(rate) = ops_per_sec.filter(|r| *r > 0.0) else {
        return String::new();
    };
    let mut m = format!("{rate:.1} ops/s");
    if let Some(total) = total {
        let left = (total.saturating_sub(done) as f64 / rate).ceil() as u64;
        m.push_str(&format!(", {}m {:02}s left", left / 60, left % 60));
    }
    m
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

    #[test]
    fn ops_progress_message() {
        assert_eq!(
            super::ops_message(400, Some(1000), Some(100.0)),
            "100.0 ops/s, 0m 06s left"
        );
        assert_eq!(super::ops_message(10, None, Some(2.5)), "2.5 ops/s");
        assert_eq!(super::ops_message(0, Some(10), None), "");
    }
}
