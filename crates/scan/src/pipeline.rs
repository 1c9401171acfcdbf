//! The streaming pipeline: domains in, records out.
//!
//! ```text
//! input ──► domain tasks (≤ concurrency) ──► writer task ──► journal + sink
//!             │ DNS: MX, TXT            (bounded channel: a slow sink slows the scan)
//!             │ hosts: addresses, TLSA  (deduplicated by mxray-dns)
//!             │ probes: one per (IP, port, SNI) per scan, shared by every domain using it
//!             │ MTA-STS: only for domains with a v=STSv1 TXT record
//!             └ verdict assembly (pure, [`crate::verdict`])
//! ```
//!
//! Each domain produces one *unit*: its `domain` and `mta_sts_policy` records plus every
//! `dns_host`, `smtp_probe` and `certificate` record it was first to produce. The writer appends
//! the unit to the journal (one line) and then hands its records to the sink, so the journal
//! always holds everything the sinks were given, and `--resume` can rebuild the outputs from it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sources::{DnsSource, PolicySource, ProbeSource};
use futures::future::join_all;
use mxray_dns::{DnsCollector, DomainDns, HostDns};
use mxray_model::*;
use mxray_mtasts::{MtaStsInput, MxTlsFacts, PolicyFetcher};
use mxray_smtp::{ProbeTarget, Prober};
use tokio::sync::{mpsc, OnceCell};
use uuid::Uuid;

use crate::cached::{cert_key, name_digest, CachedProbe};
use crate::recent::{RecentMap, RecentSet};
use crate::verdict::{self, DomainFacts, HostFacts};

/// At most this many MX hosts per domain are followed (one constant for `scan` and `dns`).
pub use mxray_dns::MAX_MX_HOSTS;
/// Second attempts per second by default: a tenth of the default `--rate`, so the retries
/// of a scan's transient failures add little load where they happened.
pub const DEFAULT_RETRY_RATE: u32 = 100;
/// At most this many domains wait for their second attempt; past it a domain is retried at
/// once (its first attempt's records are held in memory while it waits).
pub const MAX_DEFERRED: usize = 10_000;
pub use crate::targets::MAX_ADDRESSES_PER_HOST;

/// Live counters, read by the binary's progress display. Never printed from here.
#[derive(Debug, Default)]
pub struct Progress {
    /// Domains taken from the input.
    pub domains_started: AtomicU64,
    /// Domains with their DNS collected.
    pub dns_done: AtomicU64,
    /// Distinct (IP, port, SNI) probes started / finished.
    pub probes_started: AtomicU64,
    pub probes_done: AtomicU64,
    /// Probes that ended in an error class.
    pub probe_errors: AtomicU64,
    /// MTA-STS assessments started / finished.
    pub mta_sts_started: AtomicU64,
    pub mta_sts_done: AtomicU64,
    /// Domains in the input, once known (0: not known yet, e.g. stdin).
    pub domains_total: AtomicU64,
    /// Domains whose unit reached the writer.
    pub domains_done: AtomicU64,
    /// Domains with at least one DNS error.
    pub dns_errors: AtomicU64,
    /// Records handed to the sink.
    pub records_written: AtomicU64,
    /// Domains waiting for their second attempt / second attempts made.
    pub retries_waiting: AtomicU64,
    pub retries_done: AtomicU64,
    /// Domain verdict counts, `field=value` -> domains (for the end-of-scan summary).
    pub tally: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// A consistent reading of the [`Progress`] counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressSnapshot {
    pub domains_total: Option<u64>,
    pub domains_started: u64,
    pub domains_done: u64,
    pub dns_in_flight: u64,
    pub probes_in_flight: u64,
    pub probes_done: u64,
    pub probe_errors: u64,
    pub mta_sts_in_flight: u64,
    pub dns_errors: u64,
    pub records_written: u64,
    /// The DNS transport's own figures, when the DNS source has a transport
    /// ([`ProgressSnapshot::with_dns`]).
    pub dns_transport: Option<DnsTransportFigures>,
}

/// What the progress line says of the DNS transport: whether mxray is backing off an
/// overloaded resolver and ignoring datagrams that were not replies (see docs/dns.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsTransportFigures {
    /// The lowest current AIMD limit on queries in flight over the resolvers.
    pub in_flight_limit: u64,
    /// Overload back-offs so far.
    pub backoffs: u64,
    /// Datagrams ignored because they were not the reply.
    pub strays: u64,
}

impl ProgressSnapshot {
    /// Adds the DNS transport's counters (the collector's [`mxray_dns::DnsStats`]).
    pub fn with_dns(mut self, stats: Option<&mxray_dns::DnsStats>) -> Self {
        self.dns_transport = stats.map(|st| DnsTransportFigures {
            in_flight_limit: st
                .in_flight_limits
                .iter()
                .map(|(_, l)| *l as u64)
                .min()
                .unwrap_or(0),
            backoffs: st.overload_backoffs,
            strays: st.stray_datagrams,
        });
        self
    }

    /// The line people read (terminal status line and plain log line alike): rounded rates
    /// with thousands separators, the share and an ETA when the input size is known, and what
    /// is still being waited for per stage. `rate` is domains per second.
    pub fn line(&self, elapsed_secs: f64, rate: f64) -> String {
        let mut s = match self.domains_total {
            Some(total) if total > 0 => {
                let pct = 100.0 * self.domains_done as f64 / total as f64;
                let left = total.saturating_sub(self.domains_done);
                let eta = if rate > 0.0 && left > 0 {
                    format!(", ETA {}", duration_text(left as f64 / rate))
                } else {
                    String::new()
                };
                format!(
                    "domains {}/{} ({pct:.0} %), {}/s{eta}",
                    thousands(self.domains_done),
                    thousands(total),
                    thousands(rate.round() as u64)
                )
            }
            _ => format!(
                "domains {}, {}/s",
                thousands(self.domains_done),
                thousands(rate.round() as u64)
            ),
        };
        s.push_str(&format!(
            "; in flight: dns {}, smtp {}, mta-sts {}",
            thousands(self.dns_in_flight),
            thousands(self.probes_in_flight),
            thousands(self.mta_sts_in_flight)
        ));
        s.push_str(&format!(
            "; probes {} ({} errors), dns errors {}, records {}",
            thousands(self.probes_done),
            thousands(self.probe_errors),
            thousands(self.dns_errors),
            thousands(self.records_written)
        ));
        if let Some(t) = self.dns_transport {
            s.push_str(&format!(
                "; resolver limit {} in flight ({} back-offs), {} stray datagrams",
                thousands(t.in_flight_limit),
                thousands(t.backoffs),
                thousands(t.strays)
            ));
        }
        if elapsed_secs > 0.0 {
            s.insert_str(0, &format!("{} ", duration_text(elapsed_secs)));
        }
        s
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as `42 s`, `3 min 05 s`, `2 h 07 min`.
pub fn duration_text(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

impl Progress {
    /// Reads every counter once.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let started = l(&self.domains_started);
        let dns_done = l(&self.dns_done);
        let total = l(&self.domains_total);
        ProgressSnapshot {
            domains_total: (total > 0).then_some(total),
            domains_started: started,
            domains_done: l(&self.domains_done),
            dns_in_flight: started.saturating_sub(dns_done),
            probes_in_flight: l(&self.probes_started).saturating_sub(l(&self.probes_done)),
            probes_done: l(&self.probes_done),
            probe_errors: l(&self.probe_errors),
            mta_sts_in_flight: l(&self.mta_sts_started).saturating_sub(l(&self.mta_sts_done)),
            dns_errors: l(&self.dns_errors),
            records_written: l(&self.records_written),
            dns_transport: None,
        }
    }

    fn count_verdicts(&self, d: &DomainRecord) {
        let mut t = lock(&self.tally);
        for key in [
            format!("starttls={}", d.starttls),
            format!("pkix={}", d.pkix),
            format!("dane={}", d.dane),
            format!("mta_sts={}", d.mta_sts),
            format!("tls_rpt={}", d.tls_rpt),
            format!("stripping_suspected={}", d.stripping_suspected),
        ] {
            *t.entry(key).or_default() += 1;
        }
    }

    /// One line per verdict field: `starttls  all 120, none 3, ...`.
    pub fn tally_lines(&self) -> Vec<String> {
        let t = lock(&self.tally);
        let mut lines: Vec<String> = Vec::new();
        let mut current = String::new();
        for (k, n) in t.iter() {
            let (field, value) = k.split_once('=').unwrap_or((k.as_str(), ""));
            if field != current {
                lines.push(format!("{field:<10}"));
                current = field.to_owned();
            } else if let Some(l) = lines.last_mut() {
                l.push(',');
            }
            if let Some(l) = lines.last_mut() {
                l.push_str(&format!(" {value} {n}"));
            }
        }
        lines
    }
}

/// One domain's records, written together.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Unit {
    /// The domain.
    pub domain: String,
    /// Its records; the `domain` record last.
    pub records: Vec<Record>,
}

/// Probe results shared between domains: one probe per key (IP, port, SNI) per scan.
pub(crate) type ProbeKey = (IpAddr, u16, Option<Box<str>>);
type ProbeCell = Arc<OnceCell<Arc<CachedProbe>>>;

fn probe_key(target: &ProbeTarget) -> ProbeKey {
    (target.ip, target.port, target.sni.as_deref().map(Box::from))
}

/// How much per-scan state is kept, in entries ([`crate::recent`]): past these bounds the
/// least recently used entries are forgotten, so memory does not grow with the input.
/// Defaults: 100,000 probes, 200,000 host names, 200,000 certificate hashes.
///
/// Cost per entry (`std::mem::size_of` on x86-64, printed by the test
/// `cached::tests::entry_sizes_stay_small`; heap sizes are the strings' lengths rounded up
/// to malloc's size classes, hash-table slack not counted):
/// - probe: key `(IpAddr, u16, Option<Box<str>>)` 40 B plus the SNI name (~32 B), a
///   `OnceCell` 56 B and a [`CachedProbe`] 88 B, each behind an `Arc` (+16 B): about 250 B.
///   (Before: a 552-byte `SmtpProbeRecord` with its ip, SNI and version strings, a 48-byte
///   key: about 800 B.)
/// - host name: a 128-bit [`name_digest`], 16 B, no heap (before: a `String`, ~56 B). Two
///   names with the same digest (odds ~2^-64 at 2^32 names) would make one skip its
///   `dns_host` record or its second lookup.
/// - certificate: the SHA-256 as `[u8; 32]` ([`cert_key`]), 32 B (before: 64 hex
///   characters in a `String`, ~104 B).
///
/// So the three maps at their bounds hold about 35 MB instead of about 110 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBounds {
    /// Distinct (IP, port, SNI) probes remembered.
    pub probes: usize,
    /// MX host names whose `dns_host` record was written.
    pub hosts: usize,
    /// Certificate SHA-256s written.
    pub certificates: usize,
}

impl Default for MemoryBounds {
    fn default() -> Self {
        MemoryBounds {
            probes: 100_000,
            hosts: 200_000,
            certificates: 200_000,
        }
    }
}

#[derive(Debug)]
struct Shared {
    probes: Mutex<RecentMap<ProbeKey, ProbeCell>>,
    /// [`name_digest`]s of the hosts whose `dns_host` record was written.
    hosts_written: Mutex<RecentSet<u128>>,
    /// [`cert_key`]s (SHA-256 bytes) of the certificates written.
    certs_written: Mutex<RecentSet<[u8; 32]>>,
    /// Destinations and hosts ([`name_digest`]) already given their second attempt (once per
    /// scan).
    retried_probes: Mutex<RecentSet<ProbeKey>>,
    retried_hosts: Mutex<RecentSet<u128>>,
    /// Domains waiting for their second attempt, with their first attempt.
    deferred: Mutex<std::collections::VecDeque<Deferred>>,
}

impl Shared {
    fn new(b: MemoryBounds) -> Self {
        Shared {
            probes: Mutex::new(RecentMap::new(b.probes)),
            hosts_written: Mutex::new(RecentSet::new(b.hosts)),
            certs_written: Mutex::new(RecentSet::new(b.certificates)),
            retried_probes: Mutex::new(RecentSet::new(b.probes)),
            retried_hosts: Mutex::new(RecentSet::new(b.hosts)),
            deferred: Mutex::new(std::collections::VecDeque::new()),
        }
    }
}

/// What of a domain's attempt failed with a transient outcome (a DNS timeout or SERVFAIL, a
/// probe timeout, `busy`, a 4xx greeting, an MTA-STS lookup failure or fetch timeout).
#[derive(Debug, Default, Clone, PartialEq)]
struct RetryPlan {
    domain_lookups: bool,
    hosts: Vec<String>,
    probes: Vec<ProbeKey>,
    mta_sts: bool,
}

impl RetryPlan {
    fn is_empty(&self) -> bool {
        !self.domain_lookups && self.hosts.is_empty() && self.probes.is_empty() && !self.mta_sts
    }
}

/// A domain waiting for its second attempt.
#[derive(Debug)]
struct Deferred {
    first: Unit,
    plan: RetryPlan,
}

/// A probe still in flight: domains wait for it, so it is never forgotten.
fn in_flight(cell: &ProbeCell) -> bool {
    !cell.initialized()
}

/// The scanning engines and the scan's identity.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// DNS (mxray-dns in a scan).
    pub dns: Arc<dyn DnsSource>,
    /// SMTP probes (mxray-smtp in a scan).
    pub prober: Arc<dyn ProbeSource>,
    /// MTA-STS (mxray-mtasts in a scan).
    pub fetcher: Arc<dyn PolicySource>,
    pub scan_id: Uuid,
    pub vantage: String,
    /// The ports probed on every MX address (`--smtp-port`); the domain verdicts use the
    /// delivery port's probes only ([`mxray_smtp::delivery_port`]).
    pub smtp_ports: Vec<u16>,
    /// Domains in flight at once.
    pub concurrency: usize,
    /// Second attempts per second, late in the scan (see [`Scanner::run`]).
    pub retry_rate: u32,
    shared: Arc<Shared>,
}

impl Scanner {
    /// Puts the engines together.
    pub fn new(
        dns: DnsCollector,
        prober: Prober,
        fetcher: PolicyFetcher,
        scan_id: Uuid,
        vantage: String,
        smtp_ports: Vec<u16>,
        concurrency: usize,
    ) -> Self {
        Self::with_sources(
            Arc::new(dns),
            Arc::new(prober),
            Arc::new(fetcher),
            scan_id,
            vantage,
            smtp_ports,
            concurrency,
        )
    }

    /// A scanner over any sources (tests use tables instead of the network).
    pub fn with_sources(
        dns: Arc<dyn DnsSource>,
        prober: Arc<dyn ProbeSource>,
        fetcher: Arc<dyn PolicySource>,
        scan_id: Uuid,
        vantage: String,
        smtp_ports: Vec<u16>,
        concurrency: usize,
    ) -> Self {
        Scanner {
            dns,
            prober,
            fetcher,
            scan_id,
            vantage,
            smtp_ports,
            concurrency: concurrency.max(1),
            retry_rate: DEFAULT_RETRY_RATE,
            shared: Arc::new(Shared::new(MemoryBounds::default())),
        }
    }

    /// The same scanner with other memory bounds (before the scan starts).
    pub fn with_memory_bounds(mut self, bounds: MemoryBounds) -> Self {
        self.shared = Arc::new(Shared::new(bounds));
        self
    }

    /// Marks the records of a journal unit as already produced (for `--resume`): their hosts,
    /// probes and certificates are not produced again.
    pub fn prime(&self, unit: &Unit) {
        for r in &unit.records {
            match r {
                Record::DnsHost(h) => {
                    lock(&self.shared.hosts_written).insert(name_digest(&h.host));
                }
                Record::Certificate(c) => {
                    lock(&self.shared.certs_written).insert(cert_key(&c.sha256));
                }
                Record::SmtpProbe(p) => {
                    if let Some(cached) = CachedProbe::from_record(p) {
                        let key = (cached.ip, p.port, p.sni.as_deref().map(Box::from));
                        let cell = OnceCell::new_with(Some(Arc::new(cached)));
                        lock(&self.shared.probes).insert(key, Arc::new(cell), in_flight);
                    }
                }
                _ => {}
            }
        }
    }

    /// Runs the pipeline over `domains` until the channel closes or `stop` is set; every unit
    /// goes to `out` (the writer). Returns when all started domains are finished.
    ///
    /// Each domain is its own task on the runtime's worker threads (so TLS handshakes,
    /// certificate parsing, DNSSEC checks and verdicts use every core), at most
    /// `concurrency` at once: a domain takes a slot before it is taken from the input and
    /// gives it back only once its unit is in the writer's bounded queue, so a slow writer
    /// slows the scan down instead of growing memory. After `stop`, no new domain starts and
    /// every started one finishes.
    pub async fn run(
        &self,
        mut domains: mpsc::Receiver<String>,
        out: mpsc::Sender<Unit>,
        progress: Arc<Progress>,
        stop: Arc<AtomicBool>,
    ) {
        let slots = Arc::new(tokio::sync::Semaphore::new(self.concurrency));
        let mut tasks = DomainTasks::default();
        loop {
            // The semaphore is never closed.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Some(domain) = domains.recv().await else {
                break;
            };
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let me = self.clone();
            let out = out.clone();
            let progress = progress.clone();
            tasks.spawn(async move {
                progress.domains_started.fetch_add(1, Ordering::Relaxed);
                let (unit, plan) = me.attempt(&domain, &progress, None).await;
                let unit = if plan.is_empty() {
                    Some(unit)
                } else {
                    me.defer_or_retry(unit, plan, &progress).await
                };
                if let Some(unit) = unit {
                    progress.domains_done.fetch_add(1, Ordering::Relaxed);
                    // The writer only goes away when mxray itself is failing; the error is
                    // reported there.
                    let _ = out.send(unit).await;
                }
                drop(slot);
            });
        }
        tasks.join_all().await;
        self.retry_deferred(&slots, &out, &progress, &stop).await;
    }

    /// Either keeps the domain for a second attempt late in the scan, or (when too many
    /// wait already) makes the second attempt now. Returns the unit to write now, if any.
    async fn defer_or_retry(
        &self,
        first: Unit,
        plan: RetryPlan,
        progress: &Progress,
    ) -> Option<Unit> {
        {
            let mut q = lock(&self.shared.deferred);
            if q.len() < MAX_DEFERRED {
                q.push_back(Deferred { first, plan });
                progress.retries_waiting.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        Some(self.second_attempt(first, &plan, progress).await)
    }

    /// The second attempts, once the input is done: at `retry_rate` per second, through the
    /// same concurrency slots. After a stop, the first attempts are written as they are.
    async fn retry_deferred(
        &self,
        slots: &Arc<tokio::sync::Semaphore>,
        out: &mpsc::Sender<Unit>,
        progress: &Arc<Progress>,
        stop: &Arc<AtomicBool>,
    ) {
        let pace = governor::RateLimiter::direct(governor::Quota::per_second(
            std::num::NonZeroU32::new(self.retry_rate.max(1)).unwrap_or(std::num::NonZeroU32::MIN),
        ));
        let mut tasks = DomainTasks::default();
        loop {
            let next = lock(&self.shared.deferred).pop_front();
            let Some(d) = next else { break };
            progress.retries_waiting.fetch_sub(1, Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) {
                progress.domains_done.fetch_add(1, Ordering::Relaxed);
                let _ = out.send(d.first).await;
                continue;
            }
            pace.until_ready().await;
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let me = self.clone();
            let out = out.clone();
            let progress = progress.clone();
            tasks.spawn(async move {
                let unit = me.second_attempt(d.first, &d.plan, &progress).await;
                progress.domains_done.fetch_add(1, Ordering::Relaxed);
                let _ = out.send(unit).await;
                drop(slot);
            });
        }
        tasks.join_all().await;
    }

    /// The second attempt of a domain: its lookups again, the failed hosts resolved again and
    /// the failed destinations probed again (once per scan each, whichever domain asks first),
    /// the verdict from what the second attempt saw. The unit holds both attempts' host, probe
    /// and certificate records; the domain and MTA-STS records are the second attempt's, the
    /// domain's errors of the first attempt kept as `attempt 1: ...`.
    async fn second_attempt(&self, first: Unit, plan: &RetryPlan, progress: &Progress) -> Unit {
        progress.retries_done.fetch_add(1, Ordering::Relaxed);
        let (second, _) = self.attempt(&first.domain, progress, Some(plan)).await;
        let mut first_errors: Vec<String> = Vec::new();
        let mut records: Vec<Record> = Vec::new();
        for r in first.records {
            match r {
                Record::Domain(d) => first_errors = d.errors,
                Record::MtaStsPolicy(_) => {}
                other => records.push(other),
            }
        }
        for r in second.records {
            match r {
                Record::Domain(mut d) => {
                    let again: Vec<String> = first_errors
                        .iter()
                        .map(|e| format!("attempt 1: {e}"))
                        .collect();
                    d.errors.extend(again);
                    records.push(Record::Domain(d));
                }
                other => records.push(other),
            }
        }
        Unit {
            domain: first.domain,
            records,
        }
    }

    /// Everything for one domain, in one attempt (no second attempt: see [`Scanner::run`]).
    pub async fn scan_domain(&self, domain: &str, progress: &Progress) -> Unit {
        self.attempt(domain, progress, None).await.0
    }

    /// One attempt at a domain; `again` is the first attempt's plan when this is the second.
    /// Returns the unit and what failed transiently in it.
    async fn attempt(
        &self,
        domain: &str,
        progress: &Progress,
        again: Option<&RetryPlan>,
    ) -> (Unit, RetryPlan) {
        let mut plan = RetryPlan::default();
        let mut records: Vec<Record> = Vec::new();
        let dns: DomainDns = self.dns.domain(domain).await;
        plan.domain_lookups = (dns.mx_outcome.is_transient()
            && dns.mx_dnssec != DnssecStatus::Bogus)
            || dns.mta_sts.outcome.is_transient()
            || dns.tls_rpt.outcome.is_transient();
        progress.dns_done.fetch_add(1, Ordering::Relaxed);
        if !dns.errors.is_empty() {
            progress.dns_errors.fetch_add(1, Ordering::Relaxed);
        }
        let host_names: Vec<String> = dns.hosts_to_follow().to_vec();
        let hosts: Vec<(Arc<HostDns>, bool)> =
            join_all(host_names.iter().map(|h| self.host(h, again))).await;
        let mut host_records: Vec<DnsHostRecord> = Vec::with_capacity(hosts.len());
        for (h, fresh) in &hosts {
            let mut r = h.to_record(self.scan_id, &self.vantage);
            let failed = (h.addresses.is_empty() && h.address_outcome.is_transient())
                || (!h.addresses.is_empty() && h.tlsa_outcome.is_transient());
            if failed {
                plan.hosts.push(h.host.clone());
            }
            if *fresh {
                r.attempt = 2;
                records.push(Record::DnsHost(r.clone()));
            } else if lock(&self.shared.hosts_written).insert(name_digest(&r.host)) {
                records.push(Record::DnsHost(r.clone()));
            }
            host_records.push(r);
        }
        let hosts: Vec<Arc<HostDns>> = hosts.into_iter().map(|(h, _)| h).collect();

        // Probes (all hosts, all addresses) and MTA-STS run concurrently.
        let probe_jobs = hosts.iter().map(|h| self.probe_host(h, progress, again));
        let (probe_sets, sts) =
            tokio::join!(join_all(probe_jobs), self.mta_sts(domain, &dns, progress));
        let mut probes_per_host: Vec<Vec<Arc<CachedProbe>>> = Vec::with_capacity(hosts.len());
        for (probes, mut new_records, mut transient) in probe_sets {
            plan.probes.append(&mut transient);
            probes_per_host.push(probes);
            records.append(&mut new_records);
        }
        plan.mta_sts = sts.status == MtaStsStatus::LookupError
            || (sts.status == MtaStsStatus::FetchError
                && sts.error_class == Some(MtaStsError::Timeout));

        let mx_facts: Vec<MxTlsFacts> = hosts
            .iter()
            .zip(&probes_per_host)
            .map(|(h, probes)| {
                let probes: Vec<&CachedProbe> = probes.iter().map(|p| p.as_ref()).collect();
                verdict::mx_tls_facts(&h.host, &probes)
            })
            .collect();
        let sts_record = sts.record(self.scan_id, &self.vantage);
        // DESIGN.md: compliance is defined for every valid policy, mode `none` included.
        let compliant = mxray_mtasts::mta_sts_compliant(&sts, &mx_facts);
        let sts_results = mxray_mtasts::tlsrpt_results(&sts, &mx_facts);
        let tlsrpt = mxray_mtasts::parse_tlsrpt(&dns.tls_rpt.records);

        let facts = DomainFacts {
            domain,
            mx_kind: dns.mx_kind,
            mx_rcode: dns.mx_outcome,
            mx_dnssec: dns.mx_dnssec,
            mx_hosts: &dns.mx_hosts,
            dns_errors: &dns.errors,
            hosts: host_records
                .iter()
                .zip(&probes_per_host)
                .map(|(d, ps)| HostFacts {
                    dns: d,
                    probes: ps.iter().map(|p| p.as_ref()).collect(),
                })
                .collect(),
            mta_sts: Some(&sts_record),
            mta_sts_compliant: compliant,
            tls_rpt: tlsrpt.valid,
            tls_rpt_rua: tlsrpt.rua.clone(),
            sts_tlsrpt_results: sts_results,
        };
        let domain_record = verdict::assemble(&facts, self.scan_id, &self.vantage, UtcTime::now());
        progress.count_verdicts(&domain_record);
        records.push(Record::MtaStsPolicy(sts_record));
        records.push(Record::Domain(domain_record));
        (
            Unit {
                domain: domain.to_owned(),
                records,
            },
            plan,
        )
    }

    /// A host's DNS: from the collector's cache, or resolved again when this is a second
    /// attempt that found it failed (once per scan). True when resolved again.
    async fn host(&self, name: &str, again: Option<&RetryPlan>) -> (Arc<HostDns>, bool) {
        let retry = again.is_some_and(|p| p.hosts.iter().any(|h| h == name))
            && lock(&self.shared.retried_hosts).insert(name_digest(name));
        if retry {
            (self.dns.host_again(name).await, true)
        } else {
            (self.dns.host(name).await, false)
        }
    }

    /// Probes every address of one host once per scan; returns the delivery port's probes,
    /// the records this call was first to produce, and the delivery-port destinations whose
    /// probe failed transiently (for the second attempt). What is probed depends on the host
    /// alone ([`crate::targets`]), never on the domain that asked.
    async fn probe_host(
        &self,
        host: &HostDns,
        progress: &Progress,
        again: Option<&RetryPlan>,
    ) -> (Vec<Arc<CachedProbe>>, Vec<Record>, Vec<ProbeKey>) {
        let delivery = mxray_smtp::delivery_port(&self.smtp_ports);
        let jobs = self
            .smtp_ports
            .iter()
            .flat_map(|&port| crate::targets::host_targets(host, port, None))
            .map(|target| {
                let key = probe_key(&target);
                let retry = again.is_some_and(|p| p.probes.contains(&key))
                    && lock(&self.shared.retried_probes).insert(key.clone());
                async move {
                    let (p, new) = self.probe_once(key.clone(), target, progress, retry).await;
                    (key, p, new)
                }
            });
        let mut probes = Vec::new();
        let mut records = Vec::new();
        let mut transient = Vec::new();
        for (key, p, mut new) in join_all(jobs).await {
            if p.port == delivery {
                if p.error_class.is_some_and(ProbeErrorClass::is_transient) {
                    transient.push(key);
                }
                probes.push(p);
            }
            records.append(&mut new);
        }
        (probes, records, transient)
    }

    /// The probe of one destination, shared: the first caller probes, the others wait for
    /// it. `again`: replace a first attempt that failed transiently with a second one.
    async fn probe_once(
        &self,
        key: ProbeKey,
        target: ProbeTarget,
        progress: &Progress,
        again: bool,
    ) -> (Arc<CachedProbe>, Vec<Record>) {
        let cell = if again {
            let fresh = ProbeCell::default();
            lock(&self.shared.probes).insert(key, fresh.clone(), in_flight);
            fresh
        } else {
            lock(&self.shared.probes).get_or_insert_with(key, ProbeCell::default, in_flight)
        };
        let mut produced: Vec<Record> = Vec::new();
        let record = cell
            .get_or_init(|| async {
                progress.probes_started.fetch_add(1, Ordering::Relaxed);
                let mut out = self.prober.probe(&target).await;
                if again {
                    out.record.attempt = 2;
                }
                progress.probes_done.fetch_add(1, Ordering::Relaxed);
                if out.record.error_class.is_some() {
                    progress.probe_errors.fetch_add(1, Ordering::Relaxed);
                }
                for c in out.certificates {
                    if lock(&self.shared.certs_written).insert(cert_key(&c.sha256)) {
                        produced.push(Record::Certificate(c));
                    }
                }
                let cached = CachedProbe::new(target.ip, &out.record);
                produced.push(Record::SmtpProbe(out.record));
                Arc::new(cached)
            })
            .await
            .clone();
        (record, produced)
    }

    async fn mta_sts(
        &self,
        domain: &str,
        dns: &DomainDns,
        progress: &Progress,
    ) -> mxray_mtasts::MtaStsAssessment {
        progress.mta_sts_started.fetch_add(1, Ordering::Relaxed);
        let input = mta_sts_input(self.dns.as_ref(), domain, dns).await;
        let a = self.fetcher.assess(&input).await;
        progress.mta_sts_done.fetch_add(1, Ordering::Relaxed);
        a
    }
}

/// The MTA-STS inputs of a domain: its `_mta-sts` TXT lookup and, only when that holds a
/// usable `v=STSv1` record, the addresses of `mta-sts.<domain>` (no lookup otherwise).
pub async fn mta_sts_input(resolver: &dyn DnsSource, domain: &str, dns: &DomainDns) -> MtaStsInput {
    let wants_fetch = dns.mta_sts.outcome == DnsOutcome::NoError
        && mxray_mtasts::parse_sts_txt(&dns.mta_sts.records).is_ok();
    let policy_host_addrs = if wants_fetch {
        let a = resolver.addresses(&format!("mta-sts.{domain}")).await;
        if a.addresses.is_empty() {
            Err(a.outcome)
        } else {
            Ok(a.addresses)
        }
    } else {
        Err(DnsOutcome::NotQueried)
    };
    MtaStsInput {
        domain: domain.to_owned(),
        txt_outcome: dns.mta_sts.outcome,
        txt_records: dns.mta_sts.records.clone(),
        policy_host_addrs,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere; the data (sets of names) is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The spawned domain tasks of a run. Finished ones are reaped at every spawn, so the set
/// holds about as many entries as there are concurrency slots, not one per domain so far.
#[derive(Default)]
struct DomainTasks(tokio::task::JoinSet<()>);

impl DomainTasks {
    fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.0.spawn(task);
        while let Some(done) = self.0.try_join_next() {
            report_task_end(done);
        }
    }

    /// Waits for every task still running.
    async fn join_all(mut self) {
        while let Some(done) = self.0.join_next().await {
            report_task_end(done);
        }
    }
}

/// A domain task that panicked is a bug in mxray: say so loudly (its domain has no unit, so
/// `--resume` scans it again).
fn report_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!("a domain task failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_like_a_person_writes_it() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_664), "1,664");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(duration_text(42.4), "42 s");
        assert_eq!(duration_text(185.0), "3 min 05 s");
        assert_eq!(duration_text(7_620.0), "2 h 07 min");
        let s = ProgressSnapshot {
            domains_total: Some(100_000),
            domains_done: 25_000,
            probes_in_flight: 340,
            dns_in_flight: 12,
            mta_sts_in_flight: 3,
            probes_done: 30_000,
            probe_errors: 2,
            records_written: 120_000,
            ..Default::default()
        };
        assert_eq!(
            s.line(15.0, 1_664.522_396_155_256),
            "15 s domains 25,000/100,000 (25 %), 1,665/s, ETA 45 s; in flight: dns 12, \
             smtp 340, mta-sts 3; probes 30,000 (2 errors), dns errors 0, records 120,000"
        );
        let unknown = ProgressSnapshot {
            domains_total: None,
            domains_done: 10,
            ..Default::default()
        };
        assert!(unknown
            .line(0.0, 2.0)
            .starts_with("domains 10, 2/s; in flight"));
        let mut stats = mxray_dns::DnsStats::default();
        stats.overload_backoffs = 3;
        stats.stray_datagrams = 1_200;
        stats.in_flight_limits = vec![
            ("127.0.0.1:53".parse().expect("addr"), 750),
            ("127.0.0.2:53".parse().expect("addr"), 421),
        ];
        assert!(unknown
            .with_dns(Some(&stats))
            .line(0.0, 2.0)
            .ends_with("; resolver limit 421 in flight (3 back-offs), 1,200 stray datagrams"));
        assert_eq!(
            unknown.with_dns(None).line(0.0, 2.0),
            unknown.line(0.0, 2.0)
        );
    }
}
