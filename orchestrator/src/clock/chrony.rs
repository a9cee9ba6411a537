//! chrony's own view of a host's clock, where the host runs chronyd: `chronyc -c tracking`
//! (the command and its parser side by side), recorded beside orch's measurement. chrony's
//! offset is against its NTP source, not the controller; the two together tell whether the
//! hosts follow one time source closely. Recordings: orchestrator/tests/fixtures/chrony/.

use serde::{Deserialize, Serialize};

use crate::remote::{Cmd, Conn};

/// The command on the host; exits 3 without output where there is no chronyc.
pub const COMMAND: &str = "command -v chronyc >/dev/null 2>&1 || exit 3; exec chronyc -c tracking";

/// `chronyc -c tracking`: the fields orch keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracking {
    /// Reference ID and name (`7F000001 127.0.0.1`).
    pub reference: String,
    pub stratum: u32,
    /// The host's clock minus chrony's NTP time, ms (`System time`; positive: fast).
    pub system_offset_ms: f64,
    /// The last measured offset and its RMS, ms.
    pub last_offset_ms: f64,
    pub rms_offset_ms: f64,
    /// Round trip and dispersion to the stratum-1 source, ms.
    pub root_delay_ms: f64,
    pub root_dispersion_ms: f64,
    pub leap_status: String,
}

/// Parses the CSV line of `chronyc -c tracking`.
pub fn parse(csv: &str) -> Result<Tracking, String> {
    let line = csv.trim();
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 14 {
        return Err(format!(
            "`{line}`: {} fields, not the 14 of chrony 4",
            f.len()
        ));
    }
    let num = |i: usize, what: &str| {
        f[i].parse::<f64>()
            .map_err(|_| format!("`{line}`: {what} `{}` is not a number", f[i]))
    };
    let ms = |i: usize, what: &str| num(i, what).map(|s| s * 1e3);
    Ok(Tracking {
        reference: format!("{} {}", f[0], f[1]).trim().to_string(),
        stratum: f[2]
            .parse()
            .map_err(|_| format!("`{line}`: stratum `{}`", f[2]))?,
        system_offset_ms: -ms(4, "system time")?,
        last_offset_ms: ms(5, "last offset")?,
        rms_offset_ms: ms(6, "RMS offset")?,
        root_delay_ms: ms(10, "root delay")?,
        root_dispersion_ms: ms(11, "root dispersion")?,
        leap_status: f[13].to_string(),
    })
}

/// chrony's view on the host of `conn`: `None` without chronyc or without an answer from
/// chronyd (many hosts run ntpd or nothing), and, with a warning naming the host, when it
/// answered something this parser does not know: chrony's view is a side note to the run.
pub async fn probe(conn: &Conn) -> anyhow::Result<Option<Tracking>> {
    let out = conn.run(&Cmd::script(COMMAND)).await?;
    if !out.status.success() {
        return Ok(None);
    }
    match parse(&out.stdout) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            eprintln!("warning: {}: `chronyc -c tracking`: {e}", conn.host());
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/chrony");

    #[test]
    fn the_recorded_report_parses_with_the_text_reports_sign() {
        let csv = std::fs::read_to_string(format!("{FIXTURES}/tracking.csv")).unwrap();
        let t = parse(&csv).unwrap();
        assert_eq!(t.reference, "7F000001 127.0.0.1");
        assert_eq!((t.stratum, t.leap_status.as_str()), (9, "Normal"));
        assert!((t.system_offset_ms - 0.002022).abs() < 1e-12, "{t:?}");
        assert!((t.last_offset_ms + 0.000021).abs() < 1e-12, "{t:?}");
        assert!((t.rms_offset_ms - 0.000250).abs() < 1e-12, "{t:?}");
        assert!((t.root_delay_ms - 0.006428).abs() < 1e-12, "{t:?}");
        assert!((t.root_dispersion_ms - 0.000448).abs() < 1e-12, "{t:?}");
        // The text form of the same report a moment later: the clock is fast, the offset > 0.
        let text = std::fs::read_to_string(format!("{FIXTURES}/tracking.txt")).unwrap();
        assert!(text.contains("System time     : 0.000002021 seconds fast of NTP time"));
    }

    #[test]
    fn other_output_is_refused_with_the_line() {
        let e = parse("506 Cannot talk to daemon").unwrap_err();
        assert!(e.contains("1 fields, not the 14"), "{e}");
        let e = parse("7F000001,,x,0,0,0,0,0,0,0,0,0,0,Normal").unwrap_err();
        assert!(e.contains("stratum `x`"), "{e}");
    }
}
