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

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::join_all;
use futures::StreamExt;
use mxray_dns::{DnsCollector, DomainDns, HostDns};
use mxray_model::*;
use mxray_mtasts::{MtaStsInput, MxTlsFacts, PolicyFetcher};
use mxray_smtp::{ProbeTarget, Prober};
use tokio::sync::{mpsc, OnceCell};
use uuid::Uuid;

use crate::verdict::{self, DomainFacts, HostFacts};

/// At most this many MX hosts per domain are followed (a hostile zone could list thousands).
pub const MAX_MX_HOSTS: usize = 16;
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
    /// MTA-STS assessments finished.
    pub mta_sts_done: AtomicU64,
    /// Domains whose unit reached the writer.
    pub domains_done: AtomicU64,
    /// Domains with at least one DNS error.
    pub dns_errors: AtomicU64,
    /// Records handed to the sink.
    pub records_written: AtomicU64,
    /// Domain verdict counts, `field=value` -> domains (for the end-of-scan summary).
    pub tally: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Progress {
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

/// Probe results shared between domains: one probe per key per scan.
type ProbeKey = (IpAddr, u16, Option<String>);

#[derive(Debug, Default)]
struct Shared {
    probes: Mutex<HashMap<ProbeKey, Arc<OnceCell<Arc<SmtpProbeRecord>>>>>,
    hosts_written: Mutex<HashSet<String>>,
    certs_written: Mutex<HashSet<String>>,
}

/// The scanning engines and the scan's identity.
#[derive(Debug, Clone)]
pub struct Scanner {
    pub dns: DnsCollector,
    pub prober: Prober,
    pub fetcher: PolicyFetcher,
    pub scan_id: Uuid,
    pub vantage: String,
    pub smtp_port: u16,
    /// Domains in flight at once.
    pub concurrency: usize,
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
        smtp_port: u16,
        concurrency: usize,
    ) -> Self {
        Scanner {
            dns,
            prober,
            fetcher,
            scan_id,
            vantage,
            smtp_port,
            concurrency: concurrency.max(1),
            shared: Arc::new(Shared::default()),
        }
    }

    /// Marks the records of a journal unit as already produced (for `--resume`): their hosts,
    /// probes and certificates are not produced again.
    pub fn prime(&self, unit: &Unit) {
        for r in &unit.records {
            match r {
                Record::DnsHost(h) => {
                    lock(&self.shared.hosts_written).insert(h.host.clone());
                }
                Record::Certificate(c) => {
                    lock(&self.shared.certs_written).insert(c.sha256.clone());
                }
                Record::SmtpProbe(p) => {
                    if let Ok(ip) = p.ip.parse::<IpAddr>() {
                        let cell = OnceCell::new_with(Some(Arc::new(slim_probe(p))));
                        lock(&self.shared.probes)
                            .insert((ip, p.port, p.sni.clone()), Arc::new(cell));
                    }
                }
                _ => {}
            }
        }
    }

    /// Runs the pipeline over `domains` until the channel closes or `stop` is set; every unit
    /// goes to `out` (the writer). Returns when all started domains are finished.
    pub async fn run(
        &self,
        domains: mpsc::Receiver<String>,
        out: mpsc::Sender<Unit>,
        progress: Arc<Progress>,
        stop: Arc<AtomicBool>,
    ) {
        let stream = tokio_stream_from(domains).take_while(|_| {
            let go = !stop.load(Ordering::Relaxed);
            async move { go }
        });
        stream
            .for_each_concurrent(self.concurrency, |domain| {
                let out = out.clone();
                let progress = progress.clone();
                async move {
                    progress.domains_started.fetch_add(1, Ordering::Relaxed);
                    let unit = self.scan_domain(&domain, &progress).await;
                    progress.domains_done.fetch_add(1, Ordering::Relaxed);
                    // The writer only goes away when mxray itself is failing; the error is
                    // reported there.
                    let _ = out.send(unit).await;
                }
            })
            .await;
    }

    /// Everything for one domain.
    pub async fn scan_domain(&self, domain: &str, progress: &Progress) -> Unit {
        let mut records: Vec<Record> = Vec::new();
        let dns: DomainDns = self.dns.domain(domain).await;
        progress.dns_done.fetch_add(1, Ordering::Relaxed);
        if !dns.errors.is_empty() {
            progress.dns_errors.fetch_add(1, Ordering::Relaxed);
        }
        let host_names: Vec<String> = if matches!(dns.mx_kind, MxKind::Mx | MxKind::Implicit) {
            dns.mx_hosts.iter().take(MAX_MX_HOSTS).cloned().collect()
        } else {
            Vec::new()
        };
        let hosts: Vec<Arc<HostDns>> = join_all(host_names.iter().map(|h| self.dns.host(h))).await;
        let host_records: Vec<DnsHostRecord> = hosts
            .iter()
            .map(|h| h.to_record(self.scan_id, &self.vantage))
            .collect();
        for r in &host_records {
            if lock(&self.shared.hosts_written).insert(r.host.clone()) {
                records.push(Record::DnsHost(r.clone()));
            }
        }

        // Probes (all hosts, all addresses) and MTA-STS run concurrently.
        let probe_jobs = hosts.iter().map(|h| self.probe_host(h, progress));
        let (probe_sets, sts) =
            tokio::join!(join_all(probe_jobs), self.mta_sts(domain, &dns, progress));
        let mut probes_per_host: Vec<Vec<Arc<SmtpProbeRecord>>> = Vec::with_capacity(hosts.len());
        for (probes, mut new_records) in probe_sets {
            probes_per_host.push(probes);
            records.append(&mut new_records);
        }

        let mx_facts: Vec<MxTlsFacts> = hosts
            .iter()
            .zip(&probes_per_host)
            .map(|(h, probes)| {
                let probes: Vec<&SmtpProbeRecord> = probes.iter().map(|p| p.as_ref()).collect();
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
        Unit {
            domain: domain.to_owned(),
            records,
        }
    }

    /// Probes every address of one host once per scan; returns the probes and the records this
    /// call was first to produce. What is probed depends on the host alone
    /// ([`crate::targets`]), never on the domain that asked.
    async fn probe_host(
        &self,
        host: &HostDns,
        progress: &Progress,
    ) -> (Vec<Arc<SmtpProbeRecord>>, Vec<Record>) {
        let jobs = crate::targets::host_targets(host, self.smtp_port, None)
            .into_iter()
            .map(|target| self.probe_once(target, progress));
        let mut probes = Vec::new();
        let mut records = Vec::new();
        for (p, mut new) in join_all(jobs).await {
            probes.push(p);
            records.append(&mut new);
        }
        (probes, records)
    }

    async fn probe_once(
        &self,
        target: ProbeTarget,
        progress: &Progress,
    ) -> (Arc<SmtpProbeRecord>, Vec<Record>) {
        let key = (target.ip, target.port, target.sni.clone());
        let cell = lock(&self.shared.probes).entry(key).or_default().clone();
        let mut produced: Vec<Record> = Vec::new();
        let record = cell
            .get_or_init(|| async {
                progress.probes_started.fetch_add(1, Ordering::Relaxed);
                let out = self.prober.probe(&target).await;
                progress.probes_done.fetch_add(1, Ordering::Relaxed);
                if out.record.error_class.is_some() {
                    progress.probe_errors.fetch_add(1, Ordering::Relaxed);
                }
                for c in out.certificates {
                    if lock(&self.shared.certs_written).insert(c.sha256.clone()) {
                        produced.push(Record::Certificate(c));
                    }
                }
                let slim = slim_probe(&out.record);
                produced.push(Record::SmtpProbe(out.record));
                Arc::new(slim)
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
        let input = mta_sts_input(&self.dns, domain, dns).await;
        let a = mxray_mtasts::assess(&input, &self.fetcher).await;
        progress.mta_sts_done.fetch_add(1, Ordering::Relaxed);
        a
    }
}

/// The MTA-STS inputs of a domain: its `_mta-sts` TXT lookup and, only when that holds a
/// usable `v=STSv1` record, the addresses of `mta-sts.<domain>` (no lookup otherwise).
pub async fn mta_sts_input(resolver: &DnsCollector, domain: &str, dns: &DomainDns) -> MtaStsInput {
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

/// What the probe cache keeps of a probe: the verdict inputs, not the transcript and raw
/// replies (those went to the sink). Keeps the cache at a few hundred bytes per destination, so
/// a scan of millions of domains holds its probe map in memory.
fn slim_probe(r: &SmtpProbeRecord) -> SmtpProbeRecord {
    SmtpProbeRecord {
        banner: String::new(),
        ehlo_keywords: Vec::new(),
        ehlo_raw: String::new(),
        starttls_reply_text: None,
        error_detail: None,
        post_tls_ehlo_keywords: Vec::new(),
        transcript: String::new(),
        chain_sha256: r.chain_sha256.iter().take(1).cloned().collect(),
        ..r.clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere; the data (sets of names) is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn tokio_stream_from<T: Send + 'static>(rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
