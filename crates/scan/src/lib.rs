//! The mxray scan pipeline: a list of domains in, complete posture records out.
//!
//! What it does: reads and normalises the input ([`input`]), collects DNS, probes each
//! (IP, port, SNI) once however many domains share it, fetches MTA-STS policies, assembles one
//! `domain` record per domain ([`verdict`], pure), and pushes every record into the sinks.
//! A journal in the output directory makes `--resume` continue an interrupted scan.
//!
//! What it does not: parse command lines or draw progress bars (the binary observes
//! [`Progress`] counters), speak any protocol itself (mxray-dns, mxray-smtp, mxray-mtasts do).

pub mod driver;
pub mod input;
pub mod journal;
pub mod pipeline;
pub mod verdict;

pub use driver::{run_scan, ScanError, ScanJob, ScanOutcome, ScanState};
pub use pipeline::{Progress, Scanner, Unit};
pub mod report;
