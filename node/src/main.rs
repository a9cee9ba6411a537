//! orch-node: the agent orch pushes to every host. Its subcommands arrive with the replica,
//! RTT monitor, traffic and YCSB driver; for now it identifies itself for `orch setup`.

use clap::Parser;

/// The agent binary orch pushes to hosts.
#[derive(Parser)]
#[command(name = "orch-node", version, about)]
struct Cli {}

fn main() {
    Cli::parse();
}
