//! `orch lab up --uplink RATE`: the controller's side of the lab network limited to RATE, so the
//! laptop-on-a-home-uplink case can be measured on one machine.
//!
//! The limit is an HTB class on the egress of the bridge that holds the controller's address
//! (the control bridge with `--control-net`). Only what this machine sends into the lab leaves
//! through that device: frames the bridge forwards between two hosts leave through the hosts'
//! veths and are not limited, as a cluster's LAN is not limited by the laptop's uplink. HTB rather
//! than netem because this kernel has HTB and TBF but no netem; HTB rather than TBF because it
//! needs no burst size to be guessed and accounts GSO packets by their real length.

use std::process::Command;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::cmd::run;

/// A shaped device, as recorded in the lab state before the qdisc is added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Uplink {
    /// The bridge whose egress is limited.
    pub device: String,
    /// The rate as tc takes it, e.g. `20mbit`.
    pub rate: String,
}

/// Checks `--uplink`: a positive whole number and one of tc's bit-rate units.
pub(super) fn parse_rate(text: &str) -> Result<String> {
    let rate = text.trim().to_ascii_lowercase();
    let digits = rate.chars().take_while(char::is_ascii_digit).count();
    let (number, unit) = rate.split_at(digits);
    let units = ["kbit", "mbit", "gbit"];
    let positive = number.parse::<u64>().is_ok_and(|n| n > 0);
    if !positive || !units.contains(&unit) {
        bail!(
            "--uplink {text:?} is not a rate: give a positive whole number and one of {} (for \
             example 20mbit)",
            units.join(", ")
        );
    }
    Ok(rate)
}

/// Limits everything leaving through `uplink.device` to `uplink.rate`.
pub(super) fn shape(uplink: &Uplink) -> Result<()> {
    let dev = uplink.device.as_str();
    tc(&[
        "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "1",
    ])?;
    tc(&[
        "class",
        "add",
        "dev",
        dev,
        "parent",
        "1:",
        "classid",
        "1:1",
        "htb",
        "rate",
        &uplink.rate,
        "ceil",
        &uplink.rate,
    ])
}

/// Removes the limit; a device that is already gone (with its qdisc) is not an error.
pub(super) fn unshape(uplink: &Uplink) -> Result<()> {
    let dev = uplink.device.as_str();
    let present = run(Command::new("ip").args(["link", "show", dev])).is_ok();
    if present {
        let root = run(Command::new("tc").args(["qdisc", "show", "dev", dev, "root"]))?;
        if root.contains("htb 1:") {
            tc(&["qdisc", "del", "dev", dev, "root"])?;
        }
    }
    Ok(())
}

fn tc(args: &[&str]) -> Result<()> {
    run(Command::new("tc").args(args)).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_whole_numbers_with_a_bit_unit() {
        assert_eq!(parse_rate("20mbit").unwrap(), "20mbit");
        assert_eq!(parse_rate("512KBit").unwrap(), "512kbit");
        for bad in ["", "20", "mbit", "0mbit", "2.5mbit", "20mbps", "-1mbit"] {
            let e = parse_rate(bad).unwrap_err().to_string();
            assert!(e.contains("is not a rate"), "{bad}: {e}");
        }
    }
}
