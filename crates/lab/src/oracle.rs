//! The oracle: what a correct scan must report for each lab domain, per vantage
//! ([`ExpectedPosture`], whose postures are the `domain` record's own verdict type,
//! [`DomainVerdict`]), the helpers that spell those verdicts out ([`PostureExt`]), and the
//! `mxray lab --list` table. Pure data; it knows no server, zone or address.
//!
//! A test compares a scan with the oracle in one `==`: the scan's
//! [`mxray_model::DomainRecord::verdict`] by domain against [`expected_verdicts`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mxray_model::{
    DaneVerdict, DnssecStatus, DomainVerdict, MtaStsError, MtaStsStatus, MxKind, PkixVerdict,
    StarttlsVerdict, StrippingSignal, TlsRptResult,
};

/// Builders and the one-line summary of an expected [`DomainVerdict`].
///
/// The verdicts as the lab sees them: with `--dnssec validate` and the lab's trust anchor
/// (`mx_dnssec`), the lab CA trusted (`--ca-file`, `pkix`), `tlsrpt_results` and
/// `stripping_signals` sorted (docs/lab.md states the rules the lab assumes).
pub trait PostureExt: Sized {
    /// A domain whose MX hosts all do STARTTLS with a PKIX-valid certificate, nothing else.
    fn plain_good(mx_hosts: &[&str], mx_dnssec: DnssecStatus) -> Self;
    /// No mail hosts at all (null MX, bogus MX, ...).
    fn no_hosts(mx_kind: MxKind, mx_dnssec: DnssecStatus) -> Self;
    /// No MX host completed STARTTLS: `starttls=none`, `pkix=n/a`.
    fn no_tls(self) -> Self;
    /// Adds a stripping signal; `stripping_suspected` follows the evidence rule.
    fn signal(self, s: StrippingSignal) -> Self;
    /// Adds an RFC 8460 result type.
    fn report(self, r: TlsRptResult) -> Self;
    /// Sets the MTA-STS status, its error class and compliance.
    fn sts(self, status: MtaStsStatus, error: Option<MtaStsError>, compliant: Option<bool>)
        -> Self;
    /// One-line summary for `mxray lab --list`.
    fn summary(&self) -> String;
}

impl PostureExt for DomainVerdict {
    fn plain_good(mx_hosts: &[&str], mx_dnssec: DnssecStatus) -> Self {
        DomainVerdict {
            mx_kind: MxKind::Mx,
            mx_dnssec,
            mx_hosts: mx_hosts.iter().map(|s| s.to_string()).collect(),
            starttls: StarttlsVerdict::All,
            pkix: PkixVerdict::All,
            dane: DaneVerdict::None,
            mta_sts: MtaStsStatus::None,
            mta_sts_error: None,
            mta_sts_compliant: None,
            tls_rpt: false,
            tlsrpt_results: vec![],
            stripping_suspected: false,
            stripping_signals: vec![],
            tls_legacy: false,
        }
    }

    fn no_hosts(mx_kind: MxKind, mx_dnssec: DnssecStatus) -> Self {
        DomainVerdict {
            mx_hosts: vec![],
            starttls: StarttlsVerdict::NotApplicable,
            pkix: PkixVerdict::NotApplicable,
            mx_kind,
            ..DomainVerdict::plain_good(&[], mx_dnssec)
        }
    }

    fn no_tls(mut self) -> Self {
        self.starttls = StarttlsVerdict::None;
        self.pkix = PkixVerdict::NotApplicable;
        self
    }

    fn signal(mut self, s: StrippingSignal) -> Self {
        self.stripping_signals.push(s);
        self.stripping_signals.sort();
        // DESIGN.md: only evidence of an on-path change sets it; weak signals are recorded.
        self.stripping_suspected = self.stripping_signals.iter().any(|s| s.is_evidence());
        self
    }

    fn report(mut self, r: TlsRptResult) -> Self {
        self.tlsrpt_results.push(r);
        self.tlsrpt_results.sort();
        self.tlsrpt_results.dedup();
        self
    }

    fn sts(
        mut self,
        status: MtaStsStatus,
        error: Option<MtaStsError>,
        compliant: Option<bool>,
    ) -> Self {
        self.mta_sts = status;
        self.mta_sts_error = error;
        self.mta_sts_compliant = compliant;
        self
    }

    fn summary(&self) -> String {
        let mut s = format!(
            "mx={} starttls={} pkix={} dane={} mta_sts={}",
            self.mx_kind, self.starttls, self.pkix, self.dane, self.mta_sts
        );
        if let Some(e) = self.mta_sts_error {
            let _ = write!(s, "({e})");
        }
        if let Some(c) = self.mta_sts_compliant {
            let _ = write!(s, " compliant={c}");
        }
        if self.tls_rpt {
            s.push_str(" tls_rpt");
        }
        if self.tls_legacy {
            s.push_str(" tls_legacy");
        }
        if !self.stripping_signals.is_empty() {
            let sig: Vec<&str> = self.stripping_signals.iter().map(|x| x.as_str()).collect();
            let _ = write!(s, " stripping={}", sig.join(","));
        }
        s
    }
}

/// The expected posture of one lab domain, per vantage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpectedPosture {
    /// The domain (lower case, no trailing dot).
    pub domain: String,
    /// Case name (`good`, `tlsa-mismatch`, ... or `synthetic:<profile>`).
    pub case: String,
    /// What the case is about.
    pub about: String,
    /// From the clean vantage (`default`, `clean`, anything but `isp`).
    pub clean: DomainVerdict,
    /// From the `isp` vantage (source in 127.0.99.0/24, behind the stripping middlebox).
    pub isp: DomainVerdict,
}

impl ExpectedPosture {
    /// A domain every vantage sees alike.
    pub(crate) fn same(domain: &str, case: &str, about: &str, v: DomainVerdict) -> Self {
        ExpectedPosture {
            domain: domain.to_owned(),
            case: case.to_owned(),
            about: about.to_owned(),
            clean: v.clone(),
            isp: v,
        }
    }

    /// The verdict for a vantage name: `isp` gets [`ExpectedPosture::isp`], any other the
    /// clean one.
    pub fn for_vantage(&self, vantage: &str) -> &DomainVerdict {
        if vantage == "isp" {
            &self.isp
        } else {
            &self.clean
        }
    }
}

/// The expected verdicts seen from `vantage`, by domain: what to compare, with one
/// `assert_eq!`, against the verdicts of a scan's `domain` records.
pub fn expected_verdicts(
    expected: &[ExpectedPosture],
    vantage: &str,
) -> BTreeMap<String, DomainVerdict> {
    expected
        .iter()
        .map(|e| (e.domain.clone(), e.for_vantage(vantage).clone()))
        .collect()
}

/// The `mxray lab --list` table: one line per case domain (synthetic domains summarised).
pub fn table(expected: &[ExpectedPosture]) -> String {
    let mut out = String::new();
    let w = expected
        .iter()
        .filter(|e| !e.case.starts_with("synthetic"))
        .map(|e| e.domain.len())
        .max()
        .unwrap_or(10);
    let cw = expected
        .iter()
        .filter(|e| !e.case.starts_with("synthetic"))
        .map(|e| e.case.len())
        .max()
        .unwrap_or(18);
    let _ = writeln!(
        out,
        "{:<w$}  {:<cw$}  expected posture (clean vantage)",
        "domain", "case"
    );
    let mut synthetic: BTreeMap<&str, usize> = Default::default();
    for e in expected {
        if e.case.starts_with("synthetic") {
            *synthetic.entry(e.case.as_str()).or_default() += 1;
            continue;
        }
        let _ = writeln!(
            out,
            "{:<w$}  {:<cw$}  {}",
            e.domain,
            e.case,
            e.clean.summary()
        );
        if e.isp != e.clean {
            let _ = writeln!(
                out,
                "{:<w$}  {:<cw$}  isp vantage: {}",
                "",
                "",
                e.isp.summary()
            );
        }
        let _ = writeln!(out, "{:<w$}  {:<cw$}  ({})", "", "", e.about);
    }
    if !synthetic.is_empty() {
        let total: usize = synthetic.values().sum();
        let _ = writeln!(out, "\n{total} synthetic domains:");
        for (case, n) in synthetic {
            let _ = writeln!(out, "  {n:>8}  {case}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_summary() {
        let v = DomainVerdict::plain_good(&["mx.a.lab.test"], DnssecStatus::Secure)
            .no_tls()
            .signal(StrippingSignal::StarttlsRejected)
            .signal(StrippingSignal::StarttlsMangled)
            .report(TlsRptResult::StarttlsNotSupported)
            .report(TlsRptResult::StarttlsNotSupported);
        assert_eq!(v.starttls, StarttlsVerdict::None);
        assert_eq!(v.pkix, PkixVerdict::NotApplicable);
        assert_eq!(v.tlsrpt_results, vec![TlsRptResult::StarttlsNotSupported]);
        // starttls_mangled is evidence; starttls_rejected alone would not be.
        assert!(v.stripping_suspected);
        assert_eq!(
            v.summary(),
            "mx=mx starttls=none pkix=n/a dane=none mta_sts=none stripping=starttls_mangled,starttls_rejected"
        );
        let weak = DomainVerdict::plain_good(&["mx.a.lab.test"], DnssecStatus::Secure)
            .signal(StrippingSignal::StarttlsRejected);
        assert!(!weak.stripping_suspected);
    }

    #[test]
    fn expected_verdicts_follow_the_vantage() {
        let clean = DomainVerdict::plain_good(&["mx.s.lab.test"], DnssecStatus::Secure);
        let isp = clean
            .clone()
            .no_tls()
            .signal(StrippingSignal::StarttlsMangled);
        let e = ExpectedPosture {
            domain: "s.lab.test".into(),
            case: "stripped".into(),
            about: "x".into(),
            clean: clean.clone(),
            isp: isp.clone(),
        };
        let list = [e];
        assert_eq!(expected_verdicts(&list, "isp")["s.lab.test"], isp);
        assert_eq!(expected_verdicts(&list, "default")["s.lab.test"], clean);
    }
}
