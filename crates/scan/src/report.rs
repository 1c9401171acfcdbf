//! `mxray report`: adoption shares and stripping findings, computed from records. Pure: the
//! caller streams `scan`, `domain` and `smtp_probe` records in (from Parquet files or
//! ClickHouse), calls [`Report::finish`], and renders the one [`Report`] as text
//! ([`Report::render`]), JSON (serde) or HTML/SVG/PNG (crate mxray-report): one computation,
//! three renderings, so the numbers agree.
//!
//! What the report holds, and the SQL of notebooks/sql that computes the same figures:
//! - [`Report::adoption`]: one [`AdoptionRow`] per scan date and vantage
//!   (`adoption_domains.sql`): latest record per domain, shares over the mail domains. With
//!   several dates it is the time series ([`Report::series`]).
//! - [`Report::dane_classes`] / [`Report::mta_sts_classes`] (`dane_classes.sql`,
//!   `mta_sts_classes.sql`), and the misconfigured domains behind them,
//!   [`Report::dane_problems`] and [`Report::mta_sts_problems`], with what is wrong and the
//!   RFC 8460 results a sender would report (`tlsrpt_results`).
//! - [`Report::findings`]: the stripping findings with their evidence (EHLO lines and a
//!   transcript excerpt per vantage and date, the destination's network when an IP-to-AS
//!   table was given to [`Report::annotate_networks`]).
//! - `shares`, `domains`, `stripping`, `disagreements`, `regressions`: the older summary
//!   (all records, all dates together).
//!
//! The scan date of a record is the UTC date of its scan's start (the `scan` record), as in
//! the SQL; without a `scan` record, the date of the record itself.
//!
//! `vantage_disagreement` here is the in-scan-window comparison of DESIGN.md: an (IP, port,
//! SNI) whose probe completed STARTTLS from one vantage and was seen without STARTTLS (server
//! answered) from another *on the same UTC day* (the scan window).
//! `history_regression`: from one vantage, an (IP, port, SNI) that completed STARTTLS in an
//! earlier probe and answered without it in its latest probe (scans ordered by probe time).
//!
//! What it does not: read files, talk to ClickHouse, or draw anything.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use mxray_model::{
    DaneVerdict, DomainRecord, MtaStsError, MtaStsStatus, MxKind, PkixVerdict, ProbeResult,
    ScanRecord, SmtpProbeRecord, StarttlsVerdict, StrippingSignal, TlsRptResult,
};
use serde::Serialize;
use uuid::Uuid;

use crate::verdict::reached;

/// Evidence text kept per probe: EHLO reply and transcript excerpt, at most this many bytes
/// each (the page shows what diverged, not whole dialogues).
pub const EVIDENCE_CAP: usize = 1024;

/// Counts per vantage and field value.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// vantage -> field -> value -> domains.
    pub shares: BTreeMap<String, BTreeMap<&'static str, BTreeMap<String, u64>>>,
    /// vantage -> domains.
    pub domains: BTreeMap<String, u64>,
    /// Domains with stripping signals: (vantage, domain, signals).
    pub stripping: Vec<(String, String, Vec<StrippingSignal>)>,
    /// Disagreements between vantages over the same destination.
    pub disagreements: Vec<Disagreement>,
    /// Destinations that stopped offering STARTTLS to a vantage.
    pub regressions: Vec<Regression>,
    /// Adoption per scan date and vantage (notebooks/sql/adoption_domains.sql), sorted by
    /// date, then vantage.
    pub adoption: Vec<AdoptionRow>,
    /// Mail domains per DANE class, scan date and vantage (notebooks/sql/dane_classes.sql).
    pub dane_classes: Vec<ClassCount>,
    /// Domains per MTA-STS status and fetch error class, scan date and vantage
    /// (notebooks/sql/mta_sts_classes.sql).
    pub mta_sts_classes: Vec<ClassCount>,
    /// Mail domains whose DANE is broken (bogus, no_tls, mismatch, unusable).
    pub dane_problems: Vec<DaneProblem>,
    /// Domains whose MTA-STS is broken or whose MX set does not comply with the policy.
    pub mta_sts_problems: Vec<MtaStsProblem>,
    /// Stripping findings with their evidence.
    pub findings: Vec<Finding>,
    /// (ip, port, sni) -> (probe time, vantage) -> what was seen.
    #[serde(skip)]
    probes: BTreeMap<Destination, BTreeMap<(i64, String), ProbeView>>,
    /// scan_id -> UTC day of the scan start (days since 1970-01-01).
    #[serde(skip)]
    scan_days: HashMap<Uuid, i64>,
    /// Every domain record, slimmed; resolved to (date, vantage, domain) in `finish`.
    #[serde(skip)]
    seen: Vec<DomainSeen>,
    /// (scan_id, MX host) -> the probed destinations with stripping signals.
    #[serde(skip)]
    signal_probes: HashMap<(Uuid, String), Vec<(Destination, i64)>>,
    /// Evidence strings, shared: many hosts send the same EHLO reply.
    #[serde(skip)]
    interned: HashSet<Arc<str>>,
}

/// One row of notebooks/sql/adoption_domains.sql: a scan date and a vantage. Every count is
/// over the latest record per domain; `mail_domains` (mx_kind `mx` or `implicit`) is the
/// denominator of every share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdoptionRow {
    /// UTC date of the scan start, `YYYY-MM-DD`.
    pub scan_date: String,
    pub vantage: String,
    pub domains: u64,
    pub mail_domains: u64,
    pub starttls_all: u64,
    pub pkix_all: u64,
    pub dane_valid: u64,
    pub dane_broken: u64,
    pub mta_sts_enforce: u64,
    pub mta_sts_testing: u64,
    pub mta_sts_compliant: u64,
    pub tls_rpt: u64,
}

impl AdoptionRow {
    /// The counted columns, in the SQL's order (each has a `<name>_share` column there).
    pub const METRICS: [&'static str; 8] = [
        "starttls_all",
        "pkix_all",
        "dane_valid",
        "dane_broken",
        "mta_sts_enforce",
        "mta_sts_testing",
        "mta_sts_compliant",
        "tls_rpt",
    ];

    /// The count of a metric of [`AdoptionRow::METRICS`] (`domains`, `mail_domains` too).
    pub fn count(&self, metric: &str) -> Option<u64> {
        Some(match metric {
            "domains" => self.domains,
            "mail_domains" => self.mail_domains,
            "starttls_all" => self.starttls_all,
            "pkix_all" => self.pkix_all,
            "dane_valid" => self.dane_valid,
            "dane_broken" => self.dane_broken,
            "mta_sts_enforce" => self.mta_sts_enforce,
            "mta_sts_testing" => self.mta_sts_testing,
            "mta_sts_compliant" => self.mta_sts_compliant,
            "tls_rpt" => self.tls_rpt,
            _ => return None,
        })
    }

    /// `count / mail_domains` (0..1); `None` for an unknown metric or no mail domains.
    pub fn share(&self, metric: &str) -> Option<f64> {
        let n = self.count(metric)?;
        (self.mail_domains > 0).then(|| n as f64 / self.mail_domains as f64)
    }
}

/// One row of dane_classes.sql or mta_sts_classes.sql: domains in a class on a scan date
/// from a vantage, and the class's share of its denominator (mail domains for DANE, all
/// domains for MTA-STS).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassCount {
    pub scan_date: String,
    pub vantage: String,
    /// The verdict (`mismatch`, `fetch_error`, ...).
    pub class: String,
    /// MTA-STS only: the fetch error class of `fetch_error` (else empty).
    pub error_class: String,
    pub domains: u64,
    /// The denominator: mail domains (DANE) or all domains (MTA-STS) of the date and vantage.
    pub of: u64,
}

/// A mail domain whose DANE a sender would refuse to deliver through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaneProblem {
    pub scan_date: String,
    pub vantage: String,
    pub domain: String,
    pub dane: DaneVerdict,
    pub starttls: StarttlsVerdict,
    /// What is wrong, in words.
    pub what: &'static str,
    /// RFC 8460 result types a sender would report.
    pub tlsrpt_results: Vec<TlsRptResult>,
    pub mx_hosts: Vec<String>,
}

/// A domain whose MTA-STS setup is broken, or whose MX set does not comply with its policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MtaStsProblem {
    pub scan_date: String,
    pub vantage: String,
    pub domain: String,
    pub mta_sts: MtaStsStatus,
    pub error_class: Option<MtaStsError>,
    pub compliant: Option<bool>,
    /// What is wrong, in words.
    pub what: String,
    /// RFC 8460 result types a sender would report.
    pub tlsrpt_results: Vec<TlsRptResult>,
}

/// The kind of a stripping finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A `domain` record with `stripping_suspected` (evidence of an on-path change).
    StrippingSuspected,
    /// One vantage completed STARTTLS with a destination, another did not, same day.
    VantageDisagreement,
    /// A destination stopped offering STARTTLS to a vantage.
    HistoryRegression,
}

impl FindingKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            FindingKind::StrippingSuspected => "stripping_suspected",
            FindingKind::VantageDisagreement => "vantage_disagreement",
            FindingKind::HistoryRegression => "history_regression",
        }
    }
}

/// The network that announces an IP address (from a user-provided IP-to-AS table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub asn: u32,
    pub as_name: String,
    /// The matching prefix, `network/length`.
    pub prefix: String,
}

/// A stripping finding: what, where, seen by whom and when, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The domain (kind `stripping_suspected`).
    pub domain: Option<String>,
    /// The destination (for `stripping_suspected`: the first probe with signals, if any).
    pub ip: Option<String>,
    pub port: Option<u16>,
    pub sni: Option<String>,
    /// The destination's network, when an IP-to-AS table was given.
    pub network: Option<Network>,
    /// Vantages involved, sorted.
    pub vantages: Vec<String>,
    /// Dates involved (UTC, `YYYY-MM-DD`), sorted.
    pub dates: Vec<String>,
    /// Stripping signals recorded, sorted.
    pub signals: Vec<StrippingSignal>,
    /// What each vantage saw.
    pub evidence: Vec<Evidence>,
}

/// What one probe saw: the EHLO reply and the dialogue (both capped at [`EVIDENCE_CAP`]).
/// The text comes from the network: render it escaped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub vantage: String,
    /// UTC date of the probe.
    pub date: String,
    pub ip: String,
    pub port: u16,
    pub sni: Option<String>,
    pub starttls_ok: bool,
    pub starttls_advertised: bool,
    /// The raw EHLO reply before TLS (capped).
    pub ehlo: String,
    /// Transcript excerpt (capped); empty when STARTTLS completed without signals.
    pub transcript: String,
}

/// A `domain` record, slimmed to what the report needs.
#[derive(Debug, Clone)]
struct DomainSeen {
    scan_id: Uuid,
    vantage: String,
    scanned_at: i64,
    domain: String,
    mx_kind: MxKind,
    starttls: StarttlsVerdict,
    pkix: PkixVerdict,
    dane: DaneVerdict,
    mta_sts: MtaStsStatus,
    mta_sts_error: Option<MtaStsError>,
    compliant: Option<bool>,
    tls_rpt: bool,
    tlsrpt_results: Vec<TlsRptResult>,
    /// Only for a record that can be a problem or a finding (else empty, to save memory).
    mx_hosts: Vec<String>,
    stripping_suspected: bool,
    signals: Vec<StrippingSignal>,
}

impl DomainSeen {
    fn mail(&self) -> bool {
        matches!(self.mx_kind, MxKind::Mx | MxKind::Implicit)
    }
}

/// DANE classes a DANE sender refuses to deliver through (dane_classes.sql `broken`).
pub const DANE_BROKEN: [DaneVerdict; 4] = [
    DaneVerdict::Bogus,
    DaneVerdict::NoTls,
    DaneVerdict::Mismatch,
    DaneVerdict::Unusable,
];

/// What a broken DANE verdict means, in words.
pub fn dane_problem_text(d: DaneVerdict) -> &'static str {
    match d {
        DaneVerdict::Bogus => {
            "DNSSEC validation failed (MX, address or TLSA records): a DANE sender defers"
        }
        DaneVerdict::NoTls => {
            "secure TLSA, but an MX answered without completing STARTTLS: a downgrade"
        }
        DaneVerdict::Mismatch => "secure usable TLSA, but no record matched the presented chain",
        DaneVerdict::Unusable => "secure TLSA, but no usable record (usage, selector, type)",
        _ => "",
    }
}

/// What is wrong with an MTA-STS status (empty when nothing is).
pub fn mta_sts_problem_text(
    status: MtaStsStatus,
    error: Option<MtaStsError>,
    compliant: Option<bool>,
) -> String {
    match status {
        MtaStsStatus::LookupError => "the _mta-sts TXT lookup failed (SERVFAIL, timeout)".into(),
        MtaStsStatus::TxtInvalid => "the _mta-sts TXT record is not a valid STSv1 record".into(),
        MtaStsStatus::FetchError => match error {
            Some(e) => format!("the policy could not be fetched over HTTPS: {e}"),
            None => "the policy could not be fetched over HTTPS".into(),
        },
        MtaStsStatus::PolicyInvalid => "the policy file is not a valid STSv1 policy".into(),
        MtaStsStatus::Enforce | MtaStsStatus::Testing if compliant == Some(false) => format!(
            "mode {status}: an MX is not covered by the policy's mx patterns, or lacks STARTTLS \
             with a PKIX-valid certificate for its name"
        ),
        _ => String::new(),
    }
}

/// A probed destination: IP, port and SNI name.
type Destination = (String, u16, Option<String>);

/// An IP that offered STARTTLS to a vantage earlier and no longer does.
#[derive(Debug, Clone, Serialize)]
pub struct Regression {
    pub ip: String,
    pub port: u16,
    pub sni: Option<String>,
    pub vantage: String,
    /// Last day (UTC, `YYYY-MM-DD`) with STARTTLS.
    pub last_tls_day: String,
    /// Latest day, without STARTTLS.
    pub latest_day: String,
    /// Stripping signals of the latest probe.
    pub signals: Vec<StrippingSignal>,
}

fn day_string(day: i64) -> String {
    mxray_model::UtcTime::from_unix(day * 86_400)
        .to_string()
        .chars()
        .take(10)
        .collect()
}

/// What one vantage saw of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeView {
    pub starttls_ok: bool,
    pub starttls_advertised: bool,
    pub leaf_sha256: Option<String>,
    pub signals: Vec<StrippingSignal>,
    /// EHLO reply (capped at [`EVIDENCE_CAP`]).
    #[serde(skip)]
    pub ehlo: Arc<str>,
    /// Transcript excerpt (capped), kept only when STARTTLS failed or signals were recorded.
    #[serde(skip)]
    pub transcript: Option<Arc<str>>,
}

/// An IP whose STARTTLS offer (or certificate) differs between vantages.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub ip: String,
    pub port: u16,
    pub sni: Option<String>,
    /// The scan window (UTC day).
    pub day: String,
    /// Vantages that completed STARTTLS.
    pub with_tls: Vec<String>,
    /// Vantages whose session answered without completing STARTTLS, with their signals.
    pub without_tls: Vec<(String, Vec<StrippingSignal>)>,
}

impl Report {
    /// Adds one `scan` record (its start date is the scan date of its records).
    pub fn add_scan(&mut self, s: &ScanRecord) {
        let day = s.started_at.unix().div_euclid(86_400);
        let e = self.scan_days.entry(s.scan_id).or_insert(day);
        *e = (*e).min(day);
    }

    /// Adds one `domain` record.
    pub fn add_domain(&mut self, d: &DomainRecord) {
        *self.domains.entry(d.vantage.clone()).or_default() += 1;
        let fields = self.shares.entry(d.vantage.clone()).or_default();
        let mut count = |field: &'static str, value: String| {
            *fields.entry(field).or_default().entry(value).or_default() += 1;
        };
        count("starttls", d.starttls.to_string());
        count("pkix", d.pkix.to_string());
        count("dane", d.dane.to_string());
        count("mta_sts", d.mta_sts.to_string());
        if let Some(e) = d.mta_sts_error {
            count("mta_sts_error", e.to_string());
        }
        count("tls_rpt", d.tls_rpt.to_string());
        count("stripping_suspected", d.stripping_suspected.to_string());
        if d.stripping_suspected {
            self.stripping.push((
                d.vantage.clone(),
                d.domain.clone(),
                d.stripping_signals.clone(),
            ));
        }
        let notable = d.stripping_suspected
            || DANE_BROKEN.contains(&d.dane)
            || !mta_sts_problem_text(d.mta_sts, d.mta_sts_error, d.mta_sts_compliant).is_empty();
        self.seen.push(DomainSeen {
            scan_id: d.scan_id,
            vantage: d.vantage.clone(),
            scanned_at: d.scanned_at.unix(),
            domain: d.domain.clone(),
            mx_kind: d.mx_kind,
            starttls: d.starttls,
            pkix: d.pkix,
            dane: d.dane,
            mta_sts: d.mta_sts,
            mta_sts_error: d.mta_sts_error,
            compliant: d.mta_sts_compliant,
            tls_rpt: d.tls_rpt,
            tlsrpt_results: d.tlsrpt_results.clone(),
            mx_hosts: if notable {
                d.mx_hosts.clone()
            } else {
                Vec::new()
            },
            stripping_suspected: d.stripping_suspected,
            signals: d.stripping_signals.clone(),
        });
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        let s = mxray_net::units::cap(s, EVIDENCE_CAP);
        if let Some(a) = self.interned.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.interned.insert(a.clone());
        a
    }

    /// Adds one `smtp_probe` record.
    pub fn add_probe(&mut self, p: &SmtpProbeRecord) {
        if !reached(p) {
            return;
        }
        let starttls_ok = p.result == ProbeResult::StarttlsOk;
        let ehlo = self.intern(&p.ehlo_raw);
        let transcript =
            (!starttls_ok || !p.stripping_signals.is_empty()).then(|| self.intern(&p.transcript));
        let view = ProbeView {
            starttls_ok,
            starttls_advertised: p.starttls_advertised,
            leaf_sha256: p.chain_sha256.first().cloned(),
            signals: p.stripping_signals.clone(),
            ehlo,
            transcript,
        };
        let dest = (p.ip.clone(), p.port, p.sni.clone());
        let t = p.probed_at.unix();
        if !p.stripping_signals.is_empty() {
            if let Some(sni) = &p.sni {
                self.signal_probes
                    .entry((p.scan_id, sni.clone()))
                    .or_default()
                    .push((dest.clone(), t));
            }
        }
        self.probes
            .entry(dest)
            .or_default()
            .insert((t, p.vantage.clone()), view);
    }

    /// The evidence of the probe of `dest` at (time, vantage), if it was added.
    fn evidence(&self, dest: &Destination, key: &(i64, String)) -> Option<Evidence> {
        let v = self.probes.get(dest)?.get(key)?;
        Some(Evidence {
            vantage: key.1.clone(),
            date: day_string(key.0.div_euclid(86_400)),
            ip: dest.0.clone(),
            port: dest.1,
            sni: dest.2.clone(),
            starttls_ok: v.starttls_ok,
            starttls_advertised: v.starttls_advertised,
            ehlo: v.ehlo.to_string(),
            transcript: v.transcript.as_deref().unwrap_or("").to_string(),
        })
    }

    /// Sets the network of every finding's destination: `lookup(ip)` (longest prefix match
    /// in an IP-to-AS table). Call after [`Report::finish`].
    pub fn annotate_networks(&mut self, lookup: impl Fn(&str) -> Option<Network>) {
        for f in &mut self.findings {
            f.network = f.ip.as_deref().and_then(&lookup);
        }
    }

    /// The time series of one [`AdoptionRow::METRICS`] metric: vantage -> (scan date, share)
    /// in date order. Dates without mail domains are left out.
    pub fn series(&self, metric: &str) -> BTreeMap<String, Vec<(String, f64)>> {
        let mut out: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for r in &self.adoption {
            if let Some(share) = r.share(metric) {
                out.entry(r.vantage.clone())
                    .or_default()
                    .push((r.scan_date.clone(), share));
            }
        }
        out
    }

    /// The scan dates of the adoption table, sorted.
    pub fn dates(&self) -> Vec<String> {
        let d: BTreeSet<&String> = self.adoption.iter().map(|r| &r.scan_date).collect();
        d.into_iter().cloned().collect()
    }

    /// The vantages of the adoption table, sorted.
    pub fn vantages(&self) -> Vec<String> {
        let v: BTreeSet<&String> = self.adoption.iter().map(|r| &r.vantage).collect();
        v.into_iter().cloned().collect()
    }

    /// The latest record per (scan date, vantage, domain), as the SQL's `LIMIT 1 BY`.
    fn latest_domains(&self) -> BTreeMap<(i64, &str, &str), &DomainSeen> {
        let mut latest: BTreeMap<(i64, &str, &str), &DomainSeen> = BTreeMap::new();
        for d in &self.seen {
            let day = self
                .scan_days
                .get(&d.scan_id)
                .copied()
                .unwrap_or_else(|| d.scanned_at.div_euclid(86_400));
            let e = latest
                .entry((day, d.vantage.as_str(), d.domain.as_str()))
                .or_insert(d);
            if d.scanned_at > e.scanned_at {
                *e = d;
            }
        }
        latest
    }

    /// The per-date tables: adoption, classes, problems, suspected-domain findings.
    fn finish_domains(&mut self) {
        let mut adoption: BTreeMap<(i64, String), AdoptionRow> = BTreeMap::new();
        let mut dane: BTreeMap<(i64, String, DaneVerdict), u64> = BTreeMap::new();
        let mut sts: BTreeMap<(i64, String, MtaStsStatus, String), (u64, u64)> = BTreeMap::new();
        let mut dane_problems = Vec::new();
        let mut sts_problems = Vec::new();
        let mut suspected = Vec::new();
        for ((day, vantage, domain), d) in self.latest_domains() {
            let date = day_string(day);
            let row = adoption
                .entry((day, vantage.to_string()))
                .or_insert_with(|| AdoptionRow {
                    scan_date: date.clone(),
                    vantage: vantage.to_string(),
                    ..AdoptionRow::default()
                });
            row.domains += 1;
            let error_class = match (d.mta_sts, d.mta_sts_error) {
                (MtaStsStatus::FetchError, Some(e)) => e.to_string(),
                _ => String::new(),
            };
            sts.entry((day, vantage.to_string(), d.mta_sts, error_class))
                .or_default()
                .0 += 1;
            let what = mta_sts_problem_text(d.mta_sts, d.mta_sts_error, d.compliant);
            if !what.is_empty() {
                sts_problems.push(MtaStsProblem {
                    scan_date: date.clone(),
                    vantage: vantage.to_string(),
                    domain: domain.to_string(),
                    mta_sts: d.mta_sts,
                    error_class: d.mta_sts_error,
                    compliant: d.compliant,
                    what,
                    tlsrpt_results: d.tlsrpt_results.clone(),
                });
            }
            if d.stripping_suspected {
                suspected.push((day, d));
            }
            if !d.mail() {
                continue;
            }
            row.mail_domains += 1;
            row.starttls_all += u64::from(d.starttls == StarttlsVerdict::All);
            row.pkix_all += u64::from(d.pkix == PkixVerdict::All);
            row.dane_valid += u64::from(d.dane == DaneVerdict::Valid);
            row.dane_broken += u64::from(DANE_BROKEN.contains(&d.dane));
            row.mta_sts_enforce += u64::from(d.mta_sts == MtaStsStatus::Enforce);
            row.mta_sts_testing += u64::from(d.mta_sts == MtaStsStatus::Testing);
            row.mta_sts_compliant += u64::from(d.compliant == Some(true));
            row.tls_rpt += u64::from(d.tls_rpt);
            *dane.entry((day, vantage.to_string(), d.dane)).or_default() += 1;
            if DANE_BROKEN.contains(&d.dane) {
                dane_problems.push(DaneProblem {
                    scan_date: date.clone(),
                    vantage: vantage.to_string(),
                    domain: domain.to_string(),
                    dane: d.dane,
                    starttls: d.starttls,
                    what: dane_problem_text(d.dane),
                    tlsrpt_results: d.tlsrpt_results.clone(),
                    mx_hosts: d.mx_hosts.clone(),
                });
            }
        }
        let mut findings = Vec::new();
        for (day, d) in suspected {
            let d: &DomainSeen = d;
            let mut evidence = Vec::new();
            for host in &d.mx_hosts {
                let Some(dests) = self.signal_probes.get(&(d.scan_id, host.clone())) else {
                    continue;
                };
                for (dest, t) in dests {
                    if let Some(e) = self.evidence(dest, &(*t, d.vantage.clone())) {
                        evidence.push(e);
                    }
                }
            }
            let first = evidence.first();
            let mut signals = d.signals.clone();
            signals.sort();
            signals.dedup();
            findings.push(Finding {
                kind: FindingKind::StrippingSuspected,
                domain: Some(d.domain.clone()),
                ip: first.map(|e| e.ip.clone()),
                port: first.map(|e| e.port),
                sni: first.and_then(|e| e.sni.clone()),
                network: None,
                vantages: vec![d.vantage.clone()],
                dates: vec![day_string(day)],
                signals,
                evidence,
            });
        }
        let findings: Vec<Finding> = findings;
        let totals: HashMap<(i64, String), (u64, u64)> = adoption
            .iter()
            .map(|(k, r)| (k.clone(), (r.domains, r.mail_domains)))
            .collect();
        self.dane_classes = dane
            .into_iter()
            .map(|((day, vantage, class), n)| ClassCount {
                scan_date: day_string(day),
                of: totals.get(&(day, vantage.clone())).map_or(0, |t| t.1),
                vantage,
                class: class.to_string(),
                error_class: String::new(),
                domains: n,
            })
            .collect();
        self.mta_sts_classes = sts
            .into_iter()
            .map(|((day, vantage, class, error_class), (n, _))| ClassCount {
                scan_date: day_string(day),
                of: totals.get(&(day, vantage.clone())).map_or(0, |t| t.0),
                vantage,
                class: class.to_string(),
                error_class,
                domains: n,
            })
            .collect();
        self.adoption = adoption.into_values().collect();
        self.dane_problems = dane_problems;
        self.mta_sts_problems = sts_problems;
        self.findings = findings;
    }

    /// Computes the disagreements and regressions; call after the last record.
    pub fn finish(&mut self) {
        self.disagreements.clear();
        self.regressions.clear();
        self.finish_domains();
        let mut findings = Vec::new();
        for (dest, views) in &self.probes {
            let (ip, port, sni) = dest;
            // Same day, different vantages (the latest probe of each vantage that day).
            let day_of = |t: i64| t.div_euclid(86_400);
            let days: std::collections::BTreeSet<i64> =
                views.keys().map(|(t, _)| day_of(*t)).collect();
            for day in &days {
                let mut latest: BTreeMap<&String, &ProbeView> = BTreeMap::new();
                let mut keys: BTreeMap<&String, &(i64, String)> = BTreeMap::new();
                for (k, p) in views.iter().filter(|((t, _), _)| day_of(*t) == *day) {
                    latest.insert(&k.1, p); // ascending time: the last one wins
                    keys.insert(&k.1, k);
                }
                let today: Vec<(&String, &ProbeView)> = latest.into_iter().collect();
                if today.len() < 2 {
                    continue;
                }
                let with: Vec<String> = today
                    .iter()
                    .filter(|(_, v)| v.starttls_ok)
                    .map(|(k, _)| (*k).clone())
                    .collect();
                let without: Vec<(String, Vec<StrippingSignal>)> = today
                    .iter()
                    .filter(|(_, v)| !v.starttls_ok)
                    .map(|(k, v)| ((*k).clone(), v.signals.clone()))
                    .collect();
                // DESIGN.md: one vantage sees STARTTLS (or a certificate) and another does not.
                // A *different* certificate is not counted: load balancers legitimately differ.
                let with_cert = today
                    .iter()
                    .filter(|(_, v)| v.leaf_sha256.is_some())
                    .count();
                if (!with.is_empty() && !without.is_empty())
                    || (with_cert > 0 && with_cert < today.len())
                {
                    let mut signals: Vec<StrippingSignal> = without
                        .iter()
                        .flat_map(|(_, s)| s.iter().copied())
                        .collect();
                    signals.sort();
                    signals.dedup();
                    findings.push(Finding {
                        kind: FindingKind::VantageDisagreement,
                        domain: None,
                        ip: Some(ip.clone()),
                        port: Some(*port),
                        sni: sni.clone(),
                        network: None,
                        vantages: keys.keys().map(|v| (*v).clone()).collect(),
                        dates: vec![day_string(*day)],
                        signals,
                        evidence: keys
                            .values()
                            .filter_map(|k| self.evidence(dest, k))
                            .collect(),
                    });
                    self.disagreements.push(Disagreement {
                        ip: ip.clone(),
                        port: *port,
                        sni: sni.clone(),
                        day: day_string(*day),
                        with_tls: with,
                        without_tls: without,
                    });
                }
            }
            // Same vantage, over days.
            let vantages: std::collections::BTreeSet<&String> =
                views.keys().map(|(_, v)| v).collect();
            for vantage in vantages {
                let series: Vec<(i64, &ProbeView)> = views
                    .iter()
                    .filter(|((_, v), _)| v == vantage)
                    .map(|((d, _), p)| (*d, p))
                    .collect();
                let key = |t: i64| (t, vantage.clone());
                let Some((latest_day, latest)) = series.last() else {
                    continue;
                };
                if latest.starttls_ok {
                    continue;
                }
                if let Some((tls_day, _)) = series.iter().rev().skip(1).find(|(_, p)| p.starttls_ok)
                {
                    let mut signals = latest.signals.clone();
                    signals.sort();
                    signals.dedup();
                    let dates: BTreeSet<String> = [*tls_day, *latest_day]
                        .iter()
                        .map(|t| day_string(t.div_euclid(86_400)))
                        .collect();
                    findings.push(Finding {
                        kind: FindingKind::HistoryRegression,
                        domain: None,
                        ip: Some(ip.clone()),
                        port: Some(*port),
                        sni: sni.clone(),
                        network: None,
                        vantages: vec![vantage.clone()],
                        dates: dates.into_iter().collect(),
                        signals,
                        evidence: [*tls_day, *latest_day]
                            .iter()
                            .filter_map(|t| self.evidence(dest, &key(*t)))
                            .collect(),
                    });
                    self.regressions.push(Regression {
                        ip: ip.clone(),
                        port: *port,
                        sni: sni.clone(),
                        vantage: vantage.clone(),
                        last_tls_day: day_string(tls_day.div_euclid(86_400)),
                        latest_day: day_string(latest_day.div_euclid(86_400)),
                        signals: latest.signals.clone(),
                    });
                }
            }
        }
        self.stripping.sort();
        self.findings.extend(findings);
        self.findings.sort_by(|a, b| {
            (a.kind, &a.dates, &a.domain, &a.ip, a.port, &a.sni)
                .cmp(&(b.kind, &b.dates, &b.domain, &b.ip, b.port, &b.sni))
        });
    }

    /// The plain-text table.
    pub fn render(&self, stripping_only: bool) -> String {
        let mut s = String::new();
        if !stripping_only {
            for (vantage, fields) in &self.shares {
                let total = self.domains.get(vantage).copied().unwrap_or(0).max(1);
                s.push_str(&format!("vantage {vantage}: {total} domains\n"));
                for (field, values) in fields {
                    let parts: Vec<String> = values
                        .iter()
                        .map(|(v, n)| format!("{v} {n} ({:.1}%)", 100.0 * *n as f64 / total as f64))
                        .collect();
                    s.push_str(&format!("  {field:<20} {}\n", parts.join(", ")));
                }
            }
        }
        s.push_str(&format!("stripping suspects: {}\n", self.stripping.len()));
        for (v, d, sig) in &self.stripping {
            let sig: Vec<String> = sig.iter().map(|x| x.to_string()).collect();
            s.push_str(&format!("  {v:<12} {d:<40} {}\n", sig.join(",")));
        }
        s.push_str(&format!(
            "vantage disagreements: {}\n",
            self.disagreements.len()
        ));
        for d in &self.disagreements {
            let without: Vec<String> = d
                .without_tls
                .iter()
                .map(|(v, sig)| {
                    let sig: Vec<String> = sig.iter().map(|x| x.to_string()).collect();
                    format!("{v} [{}]", sig.join(","))
                })
                .collect();
            s.push_str(&format!(
                "  {}:{} ({}) STARTTLS from {} ; not from {}\n",
                d.ip,
                d.port,
                d.sni.as_deref().unwrap_or("-"),
                d.with_tls.join(","),
                without.join(", ")
            ));
        }
        s.push_str(&format!(
            "history regressions: {}\n",
            self.regressions.len()
        ));
        for r in &self.regressions {
            let sig: Vec<String> = r.signals.iter().map(|x| x.to_string()).collect();
            s.push_str(&format!(
                "  {}:{} ({}) vantage {}: STARTTLS until {}, not on {} [{}]\n",
                r.ip,
                r.port,
                r.sni.as_deref().unwrap_or("-"),
                r.vantage,
                r.last_tls_day,
                r.latest_day,
                sig.join(",")
            ));
        }
        s.push_str(&self.render_findings());
        if !stripping_only {
            s.push_str(&self.render_tables());
        }
        s
    }

    /// The findings with their evidence (terminal).
    fn render_findings(&self) -> String {
        let mut s = format!(
            "stripping findings (with evidence): {}\n",
            self.findings.len()
        );
        for f in &self.findings {
            let sig: Vec<&str> = f.signals.iter().map(|x| x.as_str()).collect();
            let dest = match (&f.ip, f.port) {
                (Some(ip), Some(port)) => format!("{ip}:{port}"),
                _ => "-".into(),
            };
            let net = f
                .network
                .as_ref()
                .map(|n| format!(" AS{} {}", n.asn, n.as_name))
                .unwrap_or_default();
            s.push_str(&format!(
                "  {:<20} {} {} ({}){net} vantages {} dates {} [{}]\n",
                f.kind.as_str(),
                f.domain.as_deref().unwrap_or("-"),
                dest,
                f.sni.as_deref().unwrap_or("-"),
                f.vantages.join(","),
                f.dates.join(","),
                sig.join(",")
            ));
            for e in &f.evidence {
                let ehlo: Vec<&str> = e.ehlo.lines().collect();
                s.push_str(&format!(
                    "      {} {} {}: {} | {}\n",
                    e.vantage,
                    e.date,
                    if e.starttls_ok { "tls" } else { "no-tls" },
                    e.ip,
                    ehlo.join(" / ").escape_debug()
                ));
            }
        }
        s
    }

    /// Adoption per date and vantage, DANE and MTA-STS problems (terminal).
    fn render_tables(&self) -> String {
        let mut s = String::from("adoption per scan date and vantage (share of mail domains):\n");
        s.push_str(&format!(
            "  {:<10} {:<12} {:>8} {:>8}",
            "date", "vantage", "domains", "mail"
        ));
        for m in AdoptionRow::METRICS {
            s.push_str(&format!(" {m:>17}"));
        }
        s.push('\n');
        for r in &self.adoption {
            s.push_str(&format!(
                "  {:<10} {:<12} {:>8} {:>8}",
                r.scan_date, r.vantage, r.domains, r.mail_domains
            ));
            for m in AdoptionRow::METRICS {
                let n = r.count(m).unwrap_or(0);
                let pct = 100.0 * r.share(m).unwrap_or(0.0);
                s.push_str(&format!(" {:>17}", format!("{n} ({pct:.1}%)")));
            }
            s.push('\n');
        }
        s.push_str(&format!("DANE problems: {}\n", self.dane_problems.len()));
        for p in &self.dane_problems {
            let r: Vec<&str> = p.tlsrpt_results.iter().map(|x| x.as_str()).collect();
            s.push_str(&format!(
                "  {} {:<12} {:<40} {:<9} {} [{}]\n",
                p.scan_date,
                p.vantage,
                p.domain,
                p.dane.as_str(),
                p.what,
                r.join(",")
            ));
        }
        s.push_str(&format!(
            "MTA-STS problems: {}\n",
            self.mta_sts_problems.len()
        ));
        for p in &self.mta_sts_problems {
            let r: Vec<&str> = p.tlsrpt_results.iter().map(|x| x.as_str()).collect();
            s.push_str(&format!(
                "  {} {:<12} {:<40} {:<14} {} [{}]\n",
                p.scan_date,
                p.vantage,
                p.domain,
                p.mta_sts.as_str(),
                p.what,
                r.join(",")
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::*;

    #[test]
    fn stripped_path_is_a_disagreement_and_shares_add_up() {
        let mut r = Report::default();
        let mut clean = examples::smtp_probe();
        clean.vantage = "clean".into();
        clean.error_class = None;
        let mut isp = clean.clone();
        isp.vantage = "isp".into();
        isp.result = ProbeResult::NoStarttls;
        isp.starttls_advertised = false;
        isp.chain_sha256.clear();
        isp.stripping_signals = vec![StrippingSignal::StarttlsMangled];
        let mut other = clean.clone();
        other.ip = "192.0.2.8".into();
        let mut other_isp = other.clone();
        other_isp.vantage = "isp".into();
        for p in [&clean, &isp, &other, &other_isp] {
            r.add_probe(p);
        }
        let mut d = examples::domain();
        d.vantage = "isp".into();
        r.add_domain(&d);
        d.stripping_suspected = false;
        r.add_domain(&d);
        r.finish();
        assert_eq!(r.disagreements.len(), 1);
        assert_eq!(r.disagreements[0].ip, "192.0.2.7");
        assert_eq!(r.disagreements[0].with_tls, vec!["clean".to_string()]);
        assert_eq!(r.shares["isp"]["stripping_suspected"]["true"], 1);
        assert_eq!(r.domains["isp"], 2);
        assert!(r.render(false).contains("192.0.2.7:25"));
        assert!(r.regressions.is_empty());
    }

    #[test]
    fn regression_over_days_from_one_vantage() {
        let mut r = Report::default();
        let mut before = examples::smtp_probe();
        before.error_class = None;
        let mut after = before.clone();
        after.probed_at = UtcTime::from_unix(before.probed_at.unix() + 7 * 86_400);
        after.result = ProbeResult::NoStarttls;
        after.stripping_signals = vec![StrippingSignal::StarttlsMangled];
        let mut other_vantage_later = after.clone();
        other_vantage_later.vantage = "isp".into();
        for p in [&before, &after, &other_vantage_later] {
            r.add_probe(p);
        }
        r.finish();
        assert_eq!(r.regressions.len(), 1, "{:?}", r.regressions);
        assert_eq!(r.regressions[0].vantage, "default");
        assert_eq!(r.regressions[0].last_tls_day, "2025-11-29");
        assert_eq!(r.regressions[0].latest_day, "2025-12-06");
        // Different days are not a vantage disagreement.
        assert!(r.disagreements.is_empty());
    }

    #[test]
    fn adoption_counts_the_latest_record_per_scan_date_and_mail_domains_only() {
        let mut r = Report::default();
        let scan = examples::scan();
        let mut later_scan = scan.clone();
        later_scan.scan_id = Uuid::from_u128(7);
        later_scan.started_at = UtcTime::from_unix(scan.started_at.unix() + 7 * 86_400);
        r.add_scan(&scan);
        r.add_scan(&later_scan);
        let mut a = examples::domain();
        a.stripping_suspected = false;
        a.starttls = StarttlsVerdict::None;
        let mut a_again = a.clone(); // same scan date: the later record counts
        a_again.scanned_at = UtcTime::from_unix(a.scanned_at.unix() + 60);
        a_again.starttls = StarttlsVerdict::All;
        a_again.dane = DaneVerdict::Mismatch;
        a_again.tlsrpt_results = vec![TlsRptResult::TlsaInvalid];
        let mut no_mail = a.clone();
        no_mail.domain = "null.example".into();
        no_mail.mx_kind = MxKind::NullMx;
        no_mail.starttls = StarttlsVerdict::All;
        let mut next_week = a.clone();
        next_week.scan_id = later_scan.scan_id;
        next_week.scanned_at = later_scan.started_at;
        next_week.starttls = StarttlsVerdict::All;
        for d in [&a, &a_again, &no_mail, &next_week] {
            r.add_domain(d);
        }
        r.finish();
        assert_eq!(r.adoption.len(), 2, "{:?}", r.adoption);
        let first = &r.adoption[0];
        assert_eq!(first.scan_date, "2025-11-29");
        assert_eq!((first.domains, first.mail_domains), (2, 1));
        assert_eq!(first.starttls_all, 1);
        assert_eq!(first.share("starttls_all"), Some(1.0));
        assert_eq!(first.dane_broken, 1);
        assert_eq!(r.adoption[1].scan_date, "2025-12-06");
        let series = r.series("starttls_all");
        assert_eq!(
            series["default"],
            vec![
                ("2025-11-29".to_string(), 1.0),
                ("2025-12-06".to_string(), 1.0)
            ]
        );
        assert_eq!(r.dates(), vec!["2025-11-29", "2025-12-06"]);
        // The broken DANE domain, with what is wrong and what a sender would report.
        assert_eq!(r.dane_problems.len(), 1);
        let p = &r.dane_problems[0];
        assert_eq!(
            (p.domain.as_str(), p.dane),
            ("example.com", DaneVerdict::Mismatch)
        );
        assert_eq!(p.tlsrpt_results, vec![TlsRptResult::TlsaInvalid]);
        assert!(p.what.contains("no record matched"));
        assert_eq!(p.mx_hosts, a.mx_hosts);
        let mismatch: Vec<&ClassCount> = r
            .dane_classes
            .iter()
            .filter(|c| c.class == "mismatch")
            .collect();
        assert_eq!(mismatch.len(), 1);
        assert_eq!((mismatch[0].domains, mismatch[0].of), (1, 1));
        // MTA-STS classes count every domain, mail or not.
        let sts: u64 = r
            .mta_sts_classes
            .iter()
            .filter(|c| c.scan_date == "2025-11-29")
            .map(|c| c.domains)
            .sum();
        assert_eq!(sts, 2);
    }

    #[test]
    fn mta_sts_problems_name_the_failure() {
        let mut r = Report::default();
        let mut d = examples::domain();
        d.mta_sts = MtaStsStatus::FetchError;
        d.mta_sts_error = Some(MtaStsError::Cert);
        d.tlsrpt_results = vec![TlsRptResult::StsWebpkiInvalid];
        let mut ok = d.clone();
        ok.domain = "ok.example".into();
        ok.mta_sts = MtaStsStatus::Enforce;
        ok.mta_sts_error = None;
        ok.mta_sts_compliant = Some(true);
        let mut uncovered = ok.clone();
        uncovered.domain = "uncovered.example".into();
        uncovered.mta_sts_compliant = Some(false);
        for x in [&d, &ok, &uncovered] {
            r.add_domain(x);
        }
        r.finish();
        let names: Vec<&str> = r
            .mta_sts_problems
            .iter()
            .map(|p| p.domain.as_str())
            .collect();
        assert_eq!(names, vec!["example.com", "uncovered.example"]);
        assert!(r.mta_sts_problems[0].what.ends_with(": cert"));
        assert_eq!(
            r.mta_sts_problems[0].tlsrpt_results,
            vec![TlsRptResult::StsWebpkiInvalid]
        );
        assert!(r.mta_sts_problems[1].what.contains("not covered"));
        let fetch = r
            .mta_sts_classes
            .iter()
            .find(|c| c.class == "fetch_error")
            .expect("class");
        assert_eq!(
            (fetch.error_class.as_str(), fetch.domains, fetch.of),
            ("cert", 1, 3)
        );
    }

    #[test]
    fn findings_carry_each_vantages_ehlo_and_the_network() {
        let mut r = Report::default();
        let mut clean = examples::smtp_probe();
        clean.vantage = "clean".into();
        clean.stripping_signals.clear();
        let mut isp = clean.clone();
        isp.vantage = "isp".into();
        isp.result = ProbeResult::NoStarttls;
        isp.starttls_advertised = false;
        isp.chain_sha256.clear();
        isp.ehlo_raw = "250-mx1.example.com\r\n250 XXXXXXXA\r\n".into();
        isp.transcript = format!("S: 250 XXXXXXXA\n{}", "x".repeat(5000));
        isp.stripping_signals = vec![StrippingSignal::StarttlsMangled];
        r.add_probe(&clean);
        r.add_probe(&isp);
        let mut d = examples::domain();
        d.vantage = "isp".into();
        r.add_domain(&d);
        r.finish();
        r.annotate_networks(|ip| {
            (ip == clean.ip).then(|| Network {
                asn: 64500,
                as_name: "EXAMPLE-NET".into(),
                prefix: "192.0.2.0/24".into(),
            })
        });
        let kinds: Vec<FindingKind> = r.findings.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            vec![
                FindingKind::StrippingSuspected,
                FindingKind::VantageDisagreement
            ]
        );
        let dis = &r.findings[1];
        assert_eq!(dis.vantages, vec!["clean", "isp"]);
        assert_eq!(dis.signals, vec![StrippingSignal::StarttlsMangled]);
        assert_eq!(dis.network.as_ref().map(|n| n.asn), Some(64500));
        let ehlo: Vec<(&str, bool, &str)> = dis
            .evidence
            .iter()
            .map(|e| (e.vantage.as_str(), e.starttls_ok, e.ehlo.as_str()))
            .collect();
        assert!(ehlo[0].2.contains("STARTTLS") && ehlo[0].1, "{ehlo:?}");
        assert!(ehlo[1].2.contains("XXXXXXXA") && !ehlo[1].1, "{ehlo:?}");
        // Excerpts are capped; STARTTLS that worked keeps no transcript.
        assert_eq!(dis.evidence[1].transcript.len(), EVIDENCE_CAP);
        assert!(dis.evidence[0].transcript.is_empty());
        // The suspected domain's evidence is its MX host's probe from its own vantage.
        let sus = &r.findings[0];
        assert_eq!(sus.domain.as_deref(), Some("example.com"));
        assert_eq!(sus.evidence.len(), 1);
        assert_eq!(sus.evidence[0].vantage, "isp");
        assert!(r.render(true).contains("XXXXXXXA"));
    }

    #[test]
    fn cap_keeps_whole_characters() {
        assert_eq!(mxray_net::units::cap("ééé", 3), "é");
        assert_eq!(mxray_net::units::cap("abc", 10), "abc");
    }
}
