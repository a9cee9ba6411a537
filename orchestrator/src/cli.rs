//! Command-line interface: flags, subcommands and how each maps onto the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::exec::{self, ExecOptions};
use crate::facts;
use crate::inventory::Inventory;
use crate::lab;
use crate::logs;
use crate::results::store;
use crate::setup;

/// Run distributed-systems experiments on real clusters over SSH.
#[derive(Parser, Debug)]
#[command(name = "orch", version, about)]
pub struct Cli {
    /// Inventory file [default: $ORCH_INVENTORY, else ./inventory.yaml].
    #[arg(short, long, global = true, value_name = "FILE")]
    inventory: Option<PathBuf>,
    /// At most this many hosts are worked on at once.
    #[arg(long, global = true, default_value_t = 32, value_name = "N")]
    parallel: usize,
    /// Log more (repeat for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Connect to hosts and print what each one is: user, sudo, arch, kernel, Java, netem, BPF, disk.
    Check(Selection),
    /// Run one command on every selected host.
    Exec(ExecArgs),
    /// A local testbed: N hosts in network namespaces, each with its own sshd.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Download every host's run directory as one logs.tar.gz with a MANIFEST of sha256 sums.
    FetchLogs(FetchLogsArgs),
    /// Build orch-node, push it and ZooKeeper to the hosts, render their configuration.
    Setup(SetupArgs),
    /// Run an experiment: traffic, ZooKeeper with its designated leader, replicas, YCSB.
    Run(RunArgs),
    /// Show each ZooKeeper server's mode and what runs left alive on the hosts.
    Status(Selection),
    /// Recompute summaries, cells and plots of stored results (no host needed); with several
    /// directories, also their cells side by side.
    Report(ReportArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The scenario file (see scenarios/).
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// The results store.
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
    /// Validate the scenario and print the runs it expands to; touch no host.
    #[arg(long)]
    dry_run: bool,
    /// Continue run ID of this scenario (after Ctrl-C, an error or a crash): its finished runs
    /// are kept, the others run again.
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<String>,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Results directories of `orch run` (results/<scenario>/<run-id>).
    #[arg(required = true, value_name = "RESULTS_DIR")]
    dirs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct SetupArgs {
    #[command(flatten)]
    selection: Selection,
    /// Print what would be built, pushed and written on each host; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// An Apache ZooKeeper binary tarball to install instead of the inventory's.
    #[arg(long, value_name = "TARBALL")]
    zookeeper: Option<PathBuf>,
    /// Send each artifact once to a seed host and let the other hosts fetch it from there
    /// (auto: when at least 4 hosts need an upload).
    #[arg(long, value_enum, default_value = "auto")]
    relay: setup::relay::Mode,
}

#[derive(Args, Debug)]
struct FetchLogsArgs {
    #[command(flatten)]
    selection: Selection,
    /// The run to fetch [default: the latest run under --results].
    #[arg(long, value_name = "ID")]
    run: Option<String>,
    /// Where to write the tarball [default: the run's results directory, else ./logs-ID.tar.gz].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Delete the run directory on each host once the tarball is written and verified.
    /// Needs --include-zk-data, so nothing is deleted that is not on the controller.
    #[arg(long, requires = "include_zk_data")]
    prune: bool,
    /// Also fetch ZooKeeper's data directories (transaction logs and snapshots, tens of MB per
    /// server and run); they are left out by default.
    #[arg(long)]
    include_zk_data: bool,
    /// The results store.
    #[arg(long, default_value = "results", value_name = "DIR")]
    results: PathBuf,
}

#[derive(Args, Debug)]
struct Selection {
    /// Hosts to work on: `all`, names (`host1,host3`) or roles (`role:zookeeper`).
    #[arg(long, value_name = "SEL")]
    hosts: Option<String>,
}

#[derive(Args, Debug)]
struct ExecArgs {
    #[command(flatten)]
    selection: Selection,
    /// Run the command through `sudo -n` on hosts whose inventory entry sets `sudo: true`.
    #[arg(long)]
    sudo: bool,
    /// Kill the command on a host after this many seconds.
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// The command and its arguments; each argument reaches the host literally (use `sh -c` for
    /// pipes and variables).
    #[arg(last = true, required = true, value_name = "CMD")]
    argv: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum LabCommand {
    /// Create the lab and write an inventory for it (to -i FILE if given).
    Up {
        /// Number of hosts (1..=64).
        #[arg(long, value_name = "N")]
        hosts: usize,
        #[command(flatten)]
        lab: LabName,
        /// First two octets of the lab network: hosts get A.B.i.2.
        #[arg(long, default_value = "10.0", value_name = "A.B")]
        net: String,
        /// Log in as this normal user with passwordless sudo (created if missing; removed by
        /// `lab down` only if `up` created it) instead of root.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// SSH on a control network of its own (hosts' eth0 = C.D.i.2, default A.B+1); the
        /// experiment addresses A.B.i.2 move to eth1.
        #[arg(long, value_name = "C.D", num_args = 0..=1)]
        control_net: Option<Option<String>>,
        /// Limit what this machine sends into the lab to RATE (tc units: 20mbit, 512kbit), as
        /// a laptop's uplink would; traffic between hosts is not limited.
        #[arg(long, value_name = "RATE")]
        uplink: Option<String>,
    },
    /// Show each lab host and whether its sshd answers.
    Status {
        #[command(flatten)]
        lab: LabName,
    },
    /// Remove everything the lab created.
    Down {
        #[command(flatten)]
        lab: LabName,
    },
}

#[derive(Args, Debug)]
struct LabName {
    /// Name of the lab, so several can exist side by side.
    #[arg(long, default_value = "orch", value_name = "NAME")]
    name: String,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(sel) => {
            let inv = load_inventory(cli.inventory)?;
            let hosts = inv.select(sel.hosts.as_deref())?;
            let (_, all) = runtime()?.block_on(facts::check(&hosts, cli.parallel));
            Ok(status(all))
        }
        Command::Exec(args) => {
            let inv = load_inventory(cli.inventory)?;
            let hosts = inv.select(args.selection.hosts.as_deref())?;
            let timeout = match args.timeout {
                Some(t) if t > 0.0 && t.is_finite() => Some(Duration::from_secs_f64(t)),
                Some(t) => anyhow::bail!("--timeout must be a positive number of seconds, got {t}"),
                None => None,
            };
            let opts = ExecOptions {
                argv: args.argv,
                sudo: args.sudo,
                timeout,
                parallel: cli.parallel,
            };
            let summary = runtime()?.block_on(exec::exec(&hosts, &opts));
            Ok(status(summary.all_ok()))
        }
        Command::Lab(LabCommand::Up {
            hosts,
            lab,
            net,
            user,
            control_net,
            uplink,
        }) => {
            let net = parse_net("--net", &net)?;
            let control_net = match control_net {
                None => None,
                Some(Some(c)) => Some(parse_net("--control-net", &c)?),
                Some(None) => Some(default_control_net(net)?),
            };
            let spec = lab::LabSpec {
                name: lab.name,
                hosts,
                net,
                inventory_out: cli.inventory,
                user,
                control_net,
                uplink,
            };
            let info = lab::up(&spec)?;
            println!(
                "lab {} is up: {} hosts; inventory: {}",
                spec.name,
                info.hosts.len(),
                info.inventory.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let inv = load_inventory(cli.inventory)?;
            let scenario = crate::scenario::Scenario::load(&args.scenario, &inv)?;
            for w in &scenario.warnings {
                eprintln!("warning: {w}");
            }
            if args.dry_run {
                for r in &scenario.runs {
                    println!("{}", r.label());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let opts = crate::run::RunOptions {
                results: args.results,
                resume: args.resume,
            };
            let outcome = runtime()?.block_on(crate::run::run(&inv, &scenario, &opts))?;
            print_results(&outcome.results, &outcome.reports, &outcome.cells);
            println!(
                "run {}: results in {}",
                outcome.run_id,
                outcome.dir.path.display()
            );
            for f in &outcome.failures {
                eprintln!("error: {f}");
            }
            if outcome.interrupted {
                eprintln!(
                    "interrupted: continue with `orch run --scenario {} --resume {}`",
                    args.scenario.display(),
                    outcome.run_id
                );
            }
            Ok(status(outcome.failures.is_empty() && !outcome.interrupted))
        }
        Command::Report(args) => {
            let mut stored = Vec::new();
            for dir in &args.dirs {
                let s = crate::results::stored::load(dir)?;
                let cells = crate::results::stored::rewrite(&s)?;
                println!("== {}", dir.display());
                println!("{}", crate::results::cells::table(&cells));
                stored.push(s);
            }
            if stored.len() > 1 {
                println!("== all {} together", stored.len());
                let cells = crate::results::stored::combined(&stored);
                println!("{}", crate::results::cells::table(&cells));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(sel) => {
            let inv = load_inventory(cli.inventory)?;
            let hosts = inv.select(sel.hosts.as_deref())?;
            Ok(status(runtime()?.block_on(crate::status::status(
                &inv,
                &hosts,
                cli.parallel,
            ))))
        }
        Command::FetchLogs(args) => {
            let inv = load_inventory(cli.inventory)?;
            let hosts = inv.select(args.selection.hosts.as_deref())?;
            fetch_logs(&hosts, args, cli.parallel)
        }
        Command::Setup(args) => {
            let inv = load_inventory(cli.inventory)?;
            let hosts = inv.select(args.selection.hosts.as_deref())?;
            let opts = setup::Options {
                dry_run: args.dry_run,
                zookeeper: args.zookeeper,
                parallel: cli.parallel,
                relay: args.relay,
            };
            let summary = runtime()?.block_on(setup::run(&inv, &hosts, &opts))?;
            summary.print();
            Ok(status(summary.all_ok()))
        }
        Command::Lab(LabCommand::Status { lab }) => Ok(status(lab::status(&lab.name)?)),
        Command::Lab(LabCommand::Down { lab }) => {
            lab::down(&lab.name)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn fetch_logs(
    hosts: &[&crate::inventory::Host],
    args: FetchLogsArgs,
    parallel: usize,
) -> anyhow::Result<ExitCode> {
    let (run_id, run) = match &args.run {
        Some(id) => {
            logs::validate_run_id(id)?;
            (id.clone(), store::find_run(&args.results, id))
        }
        None => {
            let latest = store::latest_run(&args.results)?;
            (latest.run_id.clone(), Some(latest))
        }
    };
    let output = args.output.unwrap_or_else(|| match &run {
        Some(r) => r.path.join("logs.tar.gz"),
        None => PathBuf::from(format!("logs-{run_id}.tar.gz")),
    });
    let opts = logs::FetchOptions {
        run_id,
        output,
        prune: args.prune,
        include_zk_data: args.include_zk_data,
        parallel,
        scenario: run.as_ref().and_then(|r| r.scenario_text()),
        artifacts: run.as_ref().map(|r| r.artifacts()).unwrap_or_default(),
    };
    let report = runtime()?.block_on(logs::fetch(hosts, &opts))?;
    for r in &report.refused {
        eprintln!("{}: refused `{}`: {}", r.host, r.path, r.reason);
    }
    for (host, e) in &report.failed_hosts {
        eprintln!("{host}: {e}");
    }
    println!(
        "wrote {}: {} files, {} bytes from {} hosts{}",
        report.output.display(),
        report.files,
        report.bytes,
        hosts.len() - report.failed_hosts.len(),
        if args.prune {
            format!("; pruned the run on {} hosts", report.pruned.len())
        } else {
            String::new()
        }
    );
    Ok(status(
        report.refused.is_empty() && report.failed_hosts.is_empty(),
    ))
}

fn status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The inventory named by -i, else $ORCH_INVENTORY, else ./inventory.yaml.
fn load_inventory(flag: Option<PathBuf>) -> anyhow::Result<Inventory> {
    let path = flag
        .or_else(|| std::env::var_os("ORCH_INVENTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("inventory.yaml"));
    Ok(Inventory::load(&path)?)
}

fn parse_net(flag: &str, s: &str) -> anyhow::Result<[u8; 2]> {
    let parts: Vec<&str> = s.split('.').collect();
    match parts.as_slice() {
        [a, b] => Ok([
            a.parse()
                .with_context(|| format!("{flag} {s}: `{a}` is not 0..=255"))?,
            b.parse()
                .with_context(|| format!("{flag} {s}: `{b}` is not 0..=255"))?,
        ]),
        _ => anyhow::bail!("{flag} {s}: expected two octets like 10.0"),
    }
}

/// `--control-net` without a value: the /16 after the experiment network's.
fn default_control_net([a, b]: [u8; 2]) -> anyhow::Result<[u8; 2]> {
    match b.checked_add(1) {
        Some(next) => Ok([a, next]),
        None => anyhow::bail!("--net {a}.{b}: there is no next /16; give --control-net C.D"),
    }
}

/// The runs side by side, and the cells (mean ± CI) when a cell was repeated.
fn print_results(
    results: &[crate::results::report::RunResult],
    reports: &[Option<orch_analysis::ycsb::Report>],
    cells: &[crate::results::cells::Cell],
) {
    println!("{}", crate::results::report::table(results, reports));
    if cells.iter().any(|c| c.runs > 1) {
        println!("\ncells (mean ± 95 % CI half-width over repetitions):");
        println!("{}", crate::results::cells::table(cells));
    }
}
