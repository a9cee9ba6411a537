//! `orch-node rtt`: a live table of the RTT to every destination of one local address, like the
//! prototype's loader.py and `ss -ti` (srtt, rttvar), from the eBPF or the netlink source.

use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::rtt::source::{self, SourceKind};
use crate::rtt::RttSource;

/// Arguments of `orch-node rtt`.
#[derive(clap::Args, Debug)]
pub struct RttArgs {
    /// Where the numbers come from: `auto` is eBPF, falling back to netlink sock_diag (logged).
    #[arg(long, value_enum, default_value_t = SourceKind::Auto)]
    pub source: SourceKind,
    /// Local address whose TCP connections are measured (the host's experiment address).
    #[arg(long)]
    pub src: IpAddr,
    /// Show only this destination.
    #[arg(long)]
    pub dst: Option<IpAddr>,
    /// Milliseconds between refreshes; the first table comes after one interval.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Stop after this many refreshes (default: until interrupted).
    #[arg(long)]
    pub count: Option<u64>,
    /// Print one JSON object per refresh instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One table row: the latest sample of one destination.
#[derive(Serialize)]
struct Row {
    dst: IpAddr,
    srtt_us: f64,
    rttvar_us: f64,
    /// Samples the monitor holds for the path (at most `rtt::HISTORY_LEN`).
    samples: usize,
}

/// One refresh, as printed with `--json`.
#[derive(Serialize)]
struct Refresh<'a> {
    elapsed_ms: u128,
    source: &'static str,
    src: IpAddr,
    paths: &'a [Row],
}

/// Runs `orch-node rtt`.
pub fn run(args: &RttArgs) -> Result<()> {
    let opened = source::open(args.source, args.src)?;
    if let Some(reason) = &opened.fallback {
        eprintln!("rtt: falling back to netlink sock_diag: {reason}");
    }
    let mut source = opened.source;
    eprintln!(
        "rtt: source {} for TCP connections from {}",
        source.name(),
        args.src
    );
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut done = 0;
    while args.count.is_none_or(|n| done < n) {
        std::thread::sleep(Duration::from_millis(args.interval));
        source.refresh()?;
        let rows = rows(source.as_ref(), args.dst);
        if args.json {
            let refresh = Refresh {
                elapsed_ms: start.elapsed().as_millis(),
                source: source.name(),
                src: args.src,
                paths: &rows,
            };
            writeln!(out, "{}", serde_json::to_string(&refresh)?)?;
        } else {
            write_table(&mut out, start.elapsed(), source.name(), &rows)?;
        }
        out.flush()?;
        done += 1;
    }
    Ok(())
}

/// Latest sample per destination (only `dst` if given), sorted by destination.
fn rows(source: &dyn RttSource, dst: Option<IpAddr>) -> Vec<Row> {
    let mut dsts = match dst {
        Some(d) => vec![d],
        None => source.destinations(),
    };
    dsts.sort();
    dsts.into_iter()
        .filter_map(|dst| {
            let history = source.history(dst)?;
            let latest = history.latest()?;
            Some(Row {
                dst,
                srtt_us: latest.srtt_us,
                rttvar_us: latest.rttvar_us,
                samples: history.srtt_ms().count(),
            })
        })
        .collect()
}

fn write_table(out: &mut impl Write, at: Duration, source: &str, rows: &[Row]) -> Result<()> {
    writeln!(
        out,
        "t={:.1}s\n{:<40} {:>10} {:>10} {:>8} source",
        at.as_secs_f64(),
        "dst",
        "srtt_us",
        "rttvar_us",
        "samples"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<40} {:>10.0} {:>10.0} {:>8} {source}",
            r.dst.to_string(),
            r.srtt_us,
            r.rttvar_us,
            r.samples
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_one_line_per_destination() {
        let rows = [Row {
            dst: "10.0.1.2".parse().unwrap(),
            srtt_us: 1234.4,
            rttvar_us: 56.0,
            samples: 7,
        }];
        let mut out = Vec::new();
        write_table(&mut out, Duration::from_millis(1500), "ebpf", &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "t=1.5s");
        assert!(lines[1].starts_with("dst ") && lines[1].ends_with("samples source"));
        let cells: Vec<_> = lines[2].split_whitespace().collect();
        assert_eq!(cells, ["10.0.1.2", "1234", "56", "7", "ebpf"]);
    }
}
