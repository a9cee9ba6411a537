//! The scenario file as written: serde structs that mirror the YAML, every value still
//! [`Spanned`] so that [`super::check`] can point at it. A matrix value is applied to these
//! structs ([`super::matrix::apply`]) before any check, so a bad value is reported like a
//! written one.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::election::RawElection;
use super::faults::RawFault;
use super::matrix::RawMatrix;
use crate::delay::DelaySpec;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: Spanned<String>,
    pub(super) description: Option<String>,
    pub(super) delays: Option<DelaySpec>,
    /// Named delay sections a matrix can pick with `delays: [name, ...]`.
    pub(super) delay_profiles: Option<BTreeMap<String, DelaySpec>>,
    pub(super) zookeeper: Option<Spanned<RawZookeeper>>,
    pub(super) traffic: Option<Spanned<RawTraffic>>,
    pub(super) election: Option<Spanned<RawElection>>,
    pub(super) workload: Option<Spanned<RawWorkload>>,
    /// What to break during the workload's run phase.
    pub(super) faults: Option<Spanned<Vec<Spanned<RawFault>>>>,
    pub(super) repetitions: Option<Spanned<u32>>,
    pub(super) matrix: Option<RawMatrix>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZookeeper {
    pub(super) servers: Option<Spanned<String>>,
    pub(super) leader: Option<Spanned<String>>,
    pub(super) quorum_timeout_secs: Option<Spanned<u64>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTraffic {
    pub(super) hosts: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<u16>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) bytes: Option<Spanned<u32>>,
    pub(super) interval_ms: Option<Spanned<u32>>,
    pub(super) rate: Option<Spanned<String>>,
    pub(super) len: Option<Spanned<String>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub(super) client: Spanned<String>,
    pub(super) connect: Option<Spanned<String>>,
    pub(super) workload: Option<Spanned<String>>,
    pub(super) threads: Option<Spanned<serde_json::Value>>,
    pub(super) properties: Option<BTreeMap<String, Spanned<serde_json::Value>>>,
    pub(super) load: Option<bool>,
    pub(super) ycsb_home: Option<Spanned<String>>,
    pub(super) max_error_pct: Option<Spanned<serde_json::Value>>,
}
