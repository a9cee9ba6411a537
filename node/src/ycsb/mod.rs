//! `orch-node ycsb load|run`: a YCSB-compatible ZooKeeper driver. It takes YCSB's command line
//! and workload files, writes records in the layout of YCSB's ZooKeeper binding and prints
//! YCSB's text output, so experiments can use it where real YCSB (Java, Maven) is not
//! installed and compare the two. See docs/ycsb.md.

mod client;
mod db;
mod generator;
mod measurements;
mod output;
mod properties;
mod throttle;
mod workload;

use anyhow::{Context, Result};

/// Creates the chroot of `connect` (`servers/znode`), as `orch-node ycsb load` does first.
pub fn create_chroot(connect: &str) -> Result<()> {
    if !connect.contains('/') {
        anyhow::bail!(
            "{connect}: no chroot (expected servers/znode, e.g. 10.0.1.2:2181/benchmark)"
        );
    }
    let mut p = properties::Properties::default();
    p.set("zookeeper.connectString", connect);
    let config = db::ZkConfig::new(&p, "usertable")?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(config.create_chroot())
}

/// Runs `orch-node ycsb` with everything after `ycsb` as `args`.
pub fn main(args: &[String]) -> Result<()> {
    let Some(command_line) = properties::parse_command_line(args)? else {
        println!("{}", properties::USAGE);
        return Ok(());
    };
    eprintln!("Command line: {}", args.join(" "));
    let settings = client::Settings::new(&command_line)?;
    let export_file = settings.export_file.clone();
    eprintln!("Loading workload...");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.runtime_threads())
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let results = runtime.block_on(client::run(settings))?;
    match export_file {
        Some(path) => std::fs::write(&path, results)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{results}"),
    }
    Ok(())
}
