//! `orch-node elect-summary`: prints what the replicas' event logs say about leadership. The
//! analysis is `orch_analysis::elect`, the one orch runs over every election run.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use orch_analysis::elect;

/// Reads the logs and prints the summary, as text or JSON.
pub fn run(files: &[PathBuf], json: bool) -> Result<()> {
    let summary = elect::summarize_files(files).map_err(|e| anyhow!(e))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", elect::render(&summary));
    }
    Ok(())
}
