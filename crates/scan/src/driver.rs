//! One whole scan: input reader, pipeline, writer (journal + sink), `scan` record, resume.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mxray_model::*;
use mxray_store::{Sink, SinkReport, StoreError};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::input::{DomainReader, InputError, InputItem};
use crate::journal::{self, Journal, JournalReader, JOURNAL_FILE};
use crate::pipeline::{Progress, Scanner, Unit};

/// File name of the scan state inside the output directory.
pub const STATE_FILE: &str = "scan-state.json";
/// File name of the rejected input lines (`line<TAB>reason<TAB>text`).
pub const INPUT_ERRORS_FILE: &str = "input-errors.tsv";

/// Why a scan could not run (mxray's failures, not observations).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    #[error("scan state {path}: {source}")]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("input: {0}")]
    Input(std::io::Error),
    #[error("output: {0}")]
    Store(#[from] StoreError),
}

/// What `--resume` needs to continue a scan with the same identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanState {
    pub scan_id: uuid::Uuid,
    pub vantage: String,
    pub started_at: UtcTime,
    pub input_name: String,
    pub shard: String,
    pub status: ScanStatus,
    /// The campaign given with `--campaign` (a derived one is derived again on resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

impl ScanState {
    /// Reads `<dir>/scan-state.json`.
    pub fn load(dir: &Path) -> Result<ScanState, ScanError> {
        let path = dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| ScanError::State {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text)
            .map_err(|e| ScanError::Resume(format!("{}: {e}", path.display())))
    }

    fn save(&self, dir: &Path) -> Result<(), ScanError> {
        let path = dir.join(STATE_FILE);
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|source| ScanError::State { path, source })
    }
}

/// Everything a scan needs besides the engines.
#[derive(Debug)]
pub struct ScanJob {
    /// Where the state, journal and input errors live (the Parquet output directory).
    pub state_dir: PathBuf,
    /// The `scan` record's fixed parts: id, vantage, started_at, config, source ip, ...
    /// Counts and status are filled in at the end.
    pub scan: ScanRecord,
    /// Continue the scan recorded in `state_dir`.
    pub resume: bool,
    /// Shard membership test.
    pub in_shard: fn(&str, u32, u32) -> bool,
    pub shard: (u32, u32),
    /// The campaign written into the `scan` record.
    pub campaign: Campaign,
}

/// How the `scan` record's campaign is chosen.
#[derive(Clone)]
pub enum Campaign {
    /// Given (`--campaign`).
    Named(String),
    /// Derived from the input's SHA-256 (known at the end of the input) by this function.
    Derived(Arc<dyn Fn(&str) -> String + Send + Sync>),
}

impl std::fmt::Debug for Campaign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Campaign::Named(c) => write!(f, "Named({c:?})"),
            Campaign::Derived(_) => f.write_str("Derived(..)"),
        }
    }
}

impl Campaign {
    fn name(&self) -> Option<&str> {
        match self {
            Campaign::Named(c) => Some(c),
            Campaign::Derived(_) => None,
        }
    }

    fn resolve(&self, input_sha256: &str) -> String {
        match self {
            Campaign::Named(c) => c.clone(),
            Campaign::Derived(f) => f(input_sha256),
        }
    }
}

/// How a scan ended.
#[derive(Debug)]
pub struct ScanOutcome {
    /// The final `scan` record (also written to the sink).
    pub scan: ScanRecord,
    /// What each sink stored.
    pub report: SinkReport,
    /// Domains carried over from the journal by `--resume`.
    pub resumed_domains: u64,
    /// The first rejected input lines (all are in `input-errors.tsv`).
    pub input_errors_sample: Vec<InputError>,
}

/// Runs a scan to completion or until `stop` is set (then the scan is `interrupted` and can be
/// resumed). The input is read on a blocking thread; `input` must be `Send`.
pub async fn run_scan<R: BufRead + Send + 'static>(
    scanner: &Scanner,
    mut job: ScanJob,
    input: R,
    mut sink: Box<dyn Sink>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
) -> Result<ScanOutcome, ScanError> {
    let dir = job.state_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| ScanError::State {
        path: dir.clone(),
        source,
    })?;
    let journal_path = dir.join(JOURNAL_FILE);
    let mut counts: BTreeMap<RecordKind, u64> = BTreeMap::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut resumed = 0u64;

    if job.resume {
        let state = ScanState::load(&dir)?;
        if state.status == ScanStatus::Complete {
            return Err(ScanError::Resume(format!(
                "scan {} in {} is already complete",
                state.scan_id,
                dir.display()
            )));
        }
        if state.vantage != job.scan.vantage || state.shard != job.scan.shard {
            return Err(ScanError::Resume(format!(
                "scan {} was vantage {:?} shard {}, not {:?} {}",
                state.scan_id, state.vantage, state.shard, job.scan.vantage, job.scan.shard
            )));
        }
        match (state.campaign, job.campaign.name()) {
            (Some(was), Some(now)) if was != now => {
                return Err(ScanError::Resume(format!(
                    "scan {} was campaign {was:?}, not {now:?}",
                    state.scan_id
                )))
            }
            (Some(was), None) => job.campaign = Campaign::Named(was),
            _ => {}
        }
        job.scan.scan_id = state.scan_id;
        job.scan.started_at = state.started_at;
        if journal_path.exists() {
            journal::truncate_torn_tail(&journal_path).map_err(|source| ScanError::State {
                path: journal_path.clone(),
                source,
            })?;
            let mut reader =
                JournalReader::open(&journal_path).map_err(|source| ScanError::State {
                    path: journal_path.clone(),
                    source,
                })?;
            while let Some(unit) = reader.next_unit().map_err(|source| ScanError::State {
                path: journal_path.clone(),
                source,
            })? {
                scanner.prime(&unit);
                for r in &unit.records {
                    *counts.entry(r.kind()).or_default() += 1;
                }
                finished.insert(unit.domain.clone());
                resumed += 1;
                sink.write_batch(unit.records).await?;
            }
        }
    } else if dir.join(STATE_FILE).exists() {
        return Err(ScanError::Resume(format!(
            "{} already holds a scan; use --resume to continue it or choose another --out",
            dir.display()
        )));
    }
    ScanState {
        scan_id: job.scan.scan_id,
        vantage: job.scan.vantage.clone(),
        started_at: job.scan.started_at,
        input_name: job.scan.input_name.clone(),
        shard: job.scan.shard.clone(),
        status: ScanStatus::Running,
        campaign: job.campaign.name().map(str::to_owned),
    }
    .save(&dir)?;
    let journal = Journal::open(&journal_path).map_err(|source| ScanError::State {
        path: journal_path.clone(),
        source,
    })?;

    // Input on a blocking thread: file or stdin reads must not stall the runtime.
    let (dom_tx, dom_rx) = mpsc::channel::<String>(1024);
    let errors_path = dir.join(INPUT_ERRORS_FILE);
    let (in_shard, (si, sn)) = (job.in_shard, job.shard);
    let stop_in = stop.clone();
    let reader = tokio::task::spawn_blocking(
        move || -> std::io::Result<(u64, u64, String, Vec<InputError>)> {
            use std::io::Write;
            let mut r = DomainReader::new(input);
            let mut errs = std::io::BufWriter::new(std::fs::File::create(&errors_path)?);
            let (mut total, mut bad) = (0u64, 0u64);
            let mut sample = Vec::new();
            while let Some(item) = r.next_item()? {
                match item {
                    InputItem::Domain(d) => {
                        if !in_shard(&d, si, sn) {
                            continue;
                        }
                        total += 1;
                        if finished.contains(&d) {
                            continue;
                        }
                        if stop_in.load(Ordering::Relaxed) || dom_tx.blocking_send(d).is_err() {
                            break;
                        }
                    }
                    InputItem::Junk(e) => {
                        bad += 1;
                        writeln!(errs, "{}\t{}\t{}", e.line, e.reason, e.text)?;
                        if sample.len() < 20 {
                            sample.push(e);
                        }
                    }
                }
            }
            errs.flush()?;
            Ok((total, bad, r.sha256_hex(), sample))
        },
    );

    // The writer, on a thread of its own: journal first, then the sink (Parquet encoding and
    // compression, JSON serialisation, ClickHouse batching). The bounded queue between the
    // domain tasks and it keeps backpressure: a slow sink slows the scan, nothing is dropped.
    let (unit_tx, unit_rx) = mpsc::channel::<Unit>(256);
    let writer = spawn_writer(Writer {
        units: unit_rx,
        journal,
        journal_path: journal_path.clone(),
        sink,
        counts,
        progress: progress.clone(),
        stop: stop.clone(),
    })?;
    scanner
        .run(dom_rx, unit_tx, progress.clone(), stop.clone())
        .await;
    let WriterEnd {
        failure,
        mut sink,
        counts,
    } = writer
        .await
        .map_err(|_| ScanError::Input(std::io::Error::other("the writer thread died")))?;
    if let Some(e) = failure {
        return Err(e);
    }
    let interrupted = stop.load(Ordering::Relaxed);
    let (total, bad, sha, sample) = match reader.await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Err(ScanError::Input(e)),
        Err(e) => return Err(ScanError::Input(std::io::Error::other(e))),
    };

    let mut scan = job.scan.clone();
    scan.finished_at = Some(UtcTime::now());
    scan.status = if interrupted {
        ScanStatus::Interrupted
    } else {
        ScanStatus::Complete
    };
    scan.campaign = job.campaign.resolve(&sha);
    scan.input_sha256 = sha;
    scan.domains_total = total;
    scan.input_errors = bad;
    let c = |k| counts.get(&k).copied().unwrap_or(0);
    scan.domains_done = c(RecordKind::Domain);
    scan.dns_hosts = c(RecordKind::DnsHost);
    scan.smtp_probes = c(RecordKind::SmtpProbe);
    scan.certificates = c(RecordKind::Certificate);
    scan.mta_sts_policies = c(RecordKind::MtaStsPolicy);
    sink.write(Record::Scan(scan.clone())).await?;
    let report = sink.close().await?;

    ScanState {
        scan_id: scan.scan_id,
        vantage: scan.vantage.clone(),
        started_at: scan.started_at,
        input_name: scan.input_name.clone(),
        shard: scan.shard.clone(),
        status: scan.status,
        campaign: job.campaign.name().map(str::to_owned),
    }
    .save(&dir)?;
    if scan.status == ScanStatus::Complete {
        // The outputs are complete; the journal has served its purpose.
        let _ = std::fs::remove_file(&journal_path);
    }
    Ok(ScanOutcome {
        scan,
        report,
        resumed_domains: resumed,
        input_errors_sample: sample,
    })
}

/// The writer's inputs.
struct Writer {
    units: mpsc::Receiver<Unit>,
    journal: Journal,
    journal_path: PathBuf,
    sink: Box<dyn Sink>,
    counts: BTreeMap<RecordKind, u64>,
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
}

/// What the writer hands back when the queue is closed and drained.
struct WriterEnd {
    failure: Option<ScanError>,
    sink: Box<dyn Sink>,
    counts: BTreeMap<RecordKind, u64>,
}

/// Starts the writer thread (with a single-threaded runtime for the async sinks); its end is
/// received without blocking the caller's runtime.
fn spawn_writer(w: Writer) -> Result<tokio::sync::oneshot::Receiver<WriterEnd>, ScanError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_err = |source: std::io::Error| ScanError::State {
        path: w.journal_path.clone(),
        source,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(thread_err)?;
    let journal_path = w.journal_path.clone();
    std::thread::Builder::new()
        .name("mxray-writer".into())
        .spawn(move || {
            let end = rt.block_on(write_units(w));
            let _ = tx.send(end);
        })
        .map_err(|source| ScanError::State {
            path: journal_path,
            source,
        })?;
    Ok(rx)
}

async fn write_units(mut w: Writer) -> WriterEnd {
    let mut failure: Option<ScanError> = None;
    while let Some(unit) = w.units.recv().await {
        if failure.is_some() {
            continue; // drain so the pipeline can finish; the scan fails afterwards
        }
        if let Err(source) = w.journal.append(&unit) {
            failure = Some(ScanError::State {
                path: w.journal_path.clone(),
                source,
            });
            w.stop.store(true, Ordering::Relaxed);
            continue;
        }
        for r in &unit.records {
            *w.counts.entry(r.kind()).or_default() += 1;
        }
        let n = unit.records.len() as u64;
        if let Err(e) = w.sink.write_batch(unit.records).await {
            failure = Some(e.into());
            w.stop.store(true, Ordering::Relaxed);
            continue;
        }
        w.progress.records_written.fetch_add(n, Ordering::Relaxed);
    }
    WriterEnd {
        failure,
        sink: w.sink,
        counts: w.counts,
    }
}
