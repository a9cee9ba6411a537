//! `orch-node clock`: this host's clock for orch's offset measurement (Cristian's method, see
//! docs/clocks.md). It prints the resolution of CLOCK_REALTIME, then answers every line on
//! stdin with CLOCK_REALTIME at once, so one SSH channel carries all the samples.

use std::io::{BufRead, Write};

/// The resolution line, then one answer per line of `input`, each flushed at once.
pub fn serve(input: impl BufRead, mut output: impl Write) -> anyhow::Result<()> {
    writeln!(output, "{}", resolution_ns()?)?;
    output.flush()?;
    for line in input.lines() {
        line?;
        writeln!(output, "{}", realtime_ns()?)?;
        output.flush()?;
    }
    Ok(())
}

/// CLOCK_REALTIME, ns since the Unix epoch.
fn realtime_ns() -> anyhow::Result<u128> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos())
}

/// `clock_getres(CLOCK_REALTIME)` in ns.
fn resolution_ns() -> anyhow::Result<i64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec the call writes into.
    if unsafe { libc::clock_getres(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        anyhow::bail!(
            "clock_getres(CLOCK_REALTIME): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_every_line_with_the_clock_after_the_resolution() {
        let before = super::realtime_ns().unwrap();
        let mut out = Vec::new();
        super::serve(&b"a\nb\n\nc\n"[..], &mut out).unwrap();
        let after = super::realtime_ns().unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<u128> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(
            lines[0] > 0 && lines[0] <= 1_000_000,
            "resolution {}",
            lines[0]
        );
        let times = &lines[1..];
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        assert!(
            before <= times[0] && times[3] <= after,
            "{before} {times:?} {after}"
        );
    }
}
