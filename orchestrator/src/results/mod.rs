//! The results stage on the controller: what a run leaves in `results/<scenario>/<run-id>/`
//! and what is computed from it without any host.
//!
//! - [`store`]: the directory layout (`results/<scenario>/<run-id>/`, `latest`);
//! - [`report`]: a run's summary (YCSB per operation, the election, the delays, the verdict)
//!   and the side-by-side table;
//! - [`plot`]: SVG and PNG plots (YCSB latency and throughput, election timelines);
//! - [`record`]: each finished run of the matrix writes `<label>/run.json` last (its done
//!   marker); `orch run --resume` and `orch report` rebuild a run's results from it and the
//!   files beside it.
//! - [`cells`]: repetitions of a matrix cell aggregated (n, mean, stddev, 95 % CI, min, max)
//!   into `cells.csv` / `cells.json`, and the side-by-side table of cells.
//! - [`faults`]: `faults.jsonl`, and the workload during and after each fault.
//! - [`stored`]: `orch report`: a results directory read back and analysed again.

pub mod cells;
pub mod faults;
pub mod plot;
pub mod record;
pub mod report;
pub mod store;
pub mod stored;
