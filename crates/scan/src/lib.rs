//! The mxray scan pipeline: a list of domains in, complete posture records out.
//!
//! What it does: reads and normalises the input ([`input`]), collects DNS, probes each
//! (IP, port, SNI) once however many domains share it, fetches MTA-STS policies, assembles one
//! `domain` record per domain ([`verdict`], pure), and pushes every record into the sinks.
//! A journal in the output directory makes `--resume` continue an interrupted scan.
//!
//! What it does not: parse command lines or draw progress bars (the binary observes
//! [`Progress`] counters), speak any protocol itself (mxray-dns, mxray-smtp, mxray-mtasts do).
//!
//! Main types: [`Scanner`] (the engines and the per-scan de-duplication, bounded by
//! [`MemoryBounds`]; the probe map holds [`cached::CachedProbe`]s, the verdict inputs only),
//! [`run_scan`] with [`ScanJob`] / [`ScanOutcome`], [`Unit`] (one domain's records, one
//! journal line), [`verdict::assemble`] (over [`cached::ProbeFacts`]: full records or cached
//! entries), [`report::Report`] (adoption shares and their time series, DANE and
//! MTA-STS problems, stripping findings with evidence, vantage disagreements, history
//! regressions: the one computation behind the text, JSON and HTML reports),
//! [`campaign::CampaignStatus`] (which shard runs make up a campaign, which are missing).
//!
//! ```
//! use mxray_scan::input::{DomainReader, InputItem};
//! let mut r = DomainReader::new("1,Example.COM\n2,bücher.example\nnot a domain\n".as_bytes());
//! assert_eq!(r.next_item().unwrap(), Some(InputItem::Domain("example.com".into())));
//! assert_eq!(r.next_item().unwrap(), Some(InputItem::Domain("xn--bcher-kva.example".into())));
//! assert!(matches!(r.next_item().unwrap(), Some(InputItem::Junk(_))));
//! ```

pub mod cached;
pub mod campaign;
pub mod driver;
pub mod input;
pub mod journal;
pub mod legacy;
pub mod pipeline;
pub mod recent;
pub mod sources;
pub mod targets;
pub mod verdict;

pub use driver::{run_scan, Campaign, ScanError, ScanJob, ScanOutcome, ScanState};
pub use pipeline::{MemoryBounds, Progress, Scanner, Unit};
pub mod report;
