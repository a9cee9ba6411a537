//! Reading the rule file `orch delay` writes for a host (its format and checks are the shared
//! contract in `orch_common::delay`).

use std::path::Path;

use anyhow::{Context, Result};

use orch_common::delay::RuleFile;

/// Reads and checks the rule file at `path`.
pub fn load(path: &Path) -> Result<RuleFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    RuleFile::parse(&text).with_context(|| format!("{}: not a valid rule file", path.display()))
}
