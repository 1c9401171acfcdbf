//! Orchestration and verdicts: from DNS results and a fetch to the `mta_sts_policy` record,
//! and from a policy plus SMTP probe facts to compliance, the DANE conflict flag and RFC 8460
//! result types.
//!
//! [`assess`] is the only async function; it calls the pure [`assess_txt`], the fetcher, then
//! the pure [`conclude`].

use std::net::IpAddr;

use mxray_model::{
    DaneVerdict, DnsOutcome, MtaStsError, MtaStsMode, MtaStsPolicyRecord, MtaStsStatus, PkixError,
    TlsRptResult, UtcTime,
};
use uuid::Uuid;

use crate::fetch::{FetchOutcome, PolicyFetcher};
use crate::policy::{parse_policy, Policy, PolicyWarning, WarningKind};
use crate::txt::{parse_sts_txt, StsTxt, TxtError};

/// What the pipeline knows from DNS about one domain's MTA-STS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtaStsInput {
    /// The policy domain (A-labels).
    pub domain: String,
    /// Outcome of the TXT lookup of `_mta-sts.<domain>` (CNAMEs followed by the resolver).
    pub txt_outcome: DnsOutcome,
    /// The TXT records found there, the strings of each record concatenated.
    pub txt_records: Vec<String>,
    /// Addresses (A and AAAA) of `mta-sts.<domain>`, or the outcome of a failed lookup.
    /// Only used when the TXT record is valid; pass `Err(DnsOutcome::NotQueried)` otherwise.
    pub policy_host_addrs: Result<Vec<IpAddr>, DnsOutcome>,
}

/// The MTA-STS findings of one domain: everything of [`MtaStsPolicyRecord`] except the
/// scan id and vantage, plus the parsed forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtaStsAssessment {
    /// The policy domain.
    pub domain: String,
    /// When the assessment was made.
    pub fetched_at: UtcTime,
    /// Every TXT record at `_mta-sts.<domain>`.
    pub txt_records: Vec<String>,
    /// The valid `v=STSv1` record, if there is exactly one.
    pub txt: Option<StsTxt>,
    /// The domain's `mta_sts` verdict.
    pub status: MtaStsStatus,
    /// The fetch failure class when `status` is `fetch_error`.
    pub error_class: Option<MtaStsError>,
    /// Why the TXT record, the fetch or the policy was rejected, in words.
    pub error_detail: Option<String>,
    /// The fetch, when one was made.
    pub fetch: Option<FetchOutcome>,
    /// The valid policy.
    pub policy: Option<Policy>,
    /// Tolerated deviations (`code: detail`) of the response and the policy body.
    pub warnings: Vec<String>,
}

impl MtaStsAssessment {
    fn without_fetch(
        input: &MtaStsInput,
        now: UtcTime,
        txt: Option<StsTxt>,
        status: MtaStsStatus,
        error_class: Option<MtaStsError>,
        error_detail: Option<String>,
    ) -> Self {
        MtaStsAssessment {
            domain: input.domain.clone(),
            fetched_at: now,
            txt_records: input.txt_records.clone(),
            txt,
            status,
            error_class,
            error_detail,
            fetch: None,
            policy: None,
            warnings: Vec::new(),
        }
    }

    /// The `mta_sts_policy` record for this assessment.
    pub fn record(&self, scan_id: Uuid, vantage: &str) -> MtaStsPolicyRecord {
        let fetch = self.fetch.as_ref();
        // The body is kept only when the server answered 200: other pages are not policies.
        let policy_raw = fetch
            .filter(|f| f.http_status == Some(200))
            .and_then(|f| f.body.as_deref())
            .map(|b| String::from_utf8_lossy(b).into_owned());
        MtaStsPolicyRecord {
            scan_id,
            vantage: vantage.to_owned(),
            fetched_at: self.fetched_at,
            domain: self.domain.clone(),
            txt_records: self.txt_records.clone(),
            policy_id: self.txt.as_ref().map(|t| t.id.clone()),
            status: self.status,
            error_class: self.error_class,
            error_detail: self.error_detail.clone(),
            http_status: fetch.and_then(|f| f.http_status),
            content_type: fetch.and_then(|f| f.content_type.clone()),
            policy_raw,
            mode: self.policy.as_ref().map(|p| p.mode),
            mx_patterns: self
                .policy
                .as_ref()
                .map(|p| p.mx.clone())
                .unwrap_or_default(),
            max_age: self.policy.as_ref().map(|p| p.max_age),
            warnings: self.warnings.clone(),
        }
    }

    /// The policy that senders apply: a valid policy in mode `enforce` or `testing`.
    pub fn active_policy(&self) -> Option<&Policy> {
        self.policy.as_ref().filter(|p| p.mode != MtaStsMode::None)
    }
}

/// Step 1 (pure): the TXT lookup and record. `Ok` with the record and the addresses to fetch
/// from, or `Err` with the finished assessment (`none`, `lookup_error`, `txt_invalid`, or
/// `fetch_error`/`dns` when `mta-sts.<domain>` did not resolve).
pub fn assess_txt(
    input: &MtaStsInput,
    now: UtcTime,
) -> Result<(StsTxt, Vec<IpAddr>), Box<MtaStsAssessment>> {
    let done = |txt, status, class, detail: Option<String>| {
        Err(Box::new(MtaStsAssessment::without_fetch(
            input, now, txt, status, class, detail,
        )))
    };
    match input.txt_outcome {
        DnsOutcome::NoError => {}
        DnsOutcome::NxDomain | DnsOutcome::NoData => {
            return done(None, MtaStsStatus::None, None, None);
        }
        other => {
            return done(
                None,
                MtaStsStatus::LookupError,
                None,
                Some(format!("TXT lookup of _mta-sts.{}: {other}", input.domain)),
            );
        }
    }
    let txt = match parse_sts_txt(&input.txt_records) {
        Ok(t) => t,
        Err(TxtError::NoRecord) => return done(None, MtaStsStatus::None, None, None),
        Err(e) => return done(None, MtaStsStatus::TxtInvalid, None, Some(e.to_string())),
    };
    match &input.policy_host_addrs {
        Ok(addrs) if !addrs.is_empty() => Ok((txt, addrs.clone())),
        Ok(_) => done(
            Some(txt),
            MtaStsStatus::FetchError,
            Some(MtaStsError::Dns),
            Some(format!("mta-sts.{} has no address records", input.domain)),
        ),
        Err(outcome) => done(
            Some(txt),
            MtaStsStatus::FetchError,
            Some(MtaStsError::Dns),
            Some(format!(
                "address lookup of mta-sts.{}: {outcome}",
                input.domain
            )),
        ),
    }
}

/// Step 2 (pure): the verdict from a valid TXT record and a fetch.
pub fn conclude(
    input: &MtaStsInput,
    txt: StsTxt,
    fetch: FetchOutcome,
    now: UtcTime,
) -> MtaStsAssessment {
    let mut a = MtaStsAssessment::without_fetch(
        input,
        now,
        Some(txt),
        MtaStsStatus::FetchError,
        None,
        None,
    );
    a.warnings = fetch.warnings.iter().map(ToString::to_string).collect();
    match &fetch.result {
        Err(f) => {
            a.error_class = Some(f.class);
            a.error_detail = Some(f.detail.clone());
        }
        Ok(()) => {
            let bytes = fetch.body.as_deref().unwrap_or_default();
            let body = String::from_utf8_lossy(bytes);
            if std::str::from_utf8(bytes).is_err() {
                let w = PolicyWarning::new(WarningKind::NonUtf8, "body read as lossy UTF-8");
                a.warnings.push(w.to_string());
            }
            let parsed = parse_policy(&body);
            a.warnings
                .extend(parsed.warnings.iter().map(ToString::to_string));
            match parsed.policy {
                Ok(p) => {
                    a.status = match p.mode {
                        MtaStsMode::Enforce => MtaStsStatus::Enforce,
                        MtaStsMode::Testing => MtaStsStatus::Testing,
                        MtaStsMode::None => MtaStsStatus::ModeNone,
                    };
                    a.policy = Some(p);
                }
                Err(e) => {
                    a.status = MtaStsStatus::PolicyInvalid;
                    a.error_detail = Some(e.to_string());
                }
            }
        }
    }
    a.fetch = Some(fetch);
    a
}

/// Discovers, fetches and validates the MTA-STS policy of one domain.
pub async fn assess(input: &MtaStsInput, fetcher: &PolicyFetcher) -> MtaStsAssessment {
    match assess_txt(input, UtcTime::now()) {
        Err(done) => *done,
        Ok((txt, addrs)) => {
            let fetch = fetcher.fetch(&input.domain, &addrs).await;
            conclude(input, txt, fetch, UtcTime::now())
        }
    }
}

/// What the SMTP probe found for one MX host, as far as MTA-STS cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MxTlsFacts {
    /// The MX host name.
    pub host: String,
    /// STARTTLS offered and the TLS handshake completed (on at least one address).
    pub starttls_ok: bool,
    /// Negotiated TLS version (`TLSv1.2`, `TLSv1.3`, ...).
    pub tls_version: Option<String>,
    /// The certificate chains to a trusted root and is valid for `host`.
    pub pkix_valid: bool,
    /// Why `pkix_valid` is false, when known.
    pub pkix_error: Option<PkixError>,
    /// The host's DANE verdict, when known (for [`dane_conflict`]).
    pub dane: Option<DaneVerdict>,
    /// No address of the host reached EHLO (refused, timed out, 4xx/5xx greeting): its TLS
    /// is unknown, so only the pattern check applies to it. A host that never got that far
    /// is never counted as lacking STARTTLS.
    pub unreached: bool,
}

/// Why one MX host does not satisfy a policy (RFC 8461 §4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MxFailure {
    /// The host matches no `mx` pattern.
    NoPatternMatch,
    /// No STARTTLS, or the TLS handshake did not complete.
    NoStarttls,
    /// TLS older than 1.2.
    OldTls(String),
    /// The certificate is not PKIX-valid for the host name.
    PkixInvalid(Option<PkixError>),
}

/// The check of one MX host against a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxCheck {
    /// The MX host.
    pub host: String,
    /// The first pattern it matches.
    pub pattern: Option<String>,
    /// Every reason it fails; empty when it satisfies the policy.
    pub failures: Vec<MxFailure>,
}

fn old_tls(version: Option<&str>) -> Option<String> {
    let v = version?;
    let norm = v.to_ascii_lowercase().replace([' ', '_'], "");
    matches!(
        norm.as_str(),
        "sslv2" | "sslv3" | "tlsv1" | "tlsv1.0" | "tls1.0" | "tlsv1.1" | "tls1.1"
    )
    .then(|| v.to_owned())
}

/// Checks every MX host against the policy's patterns and the probe facts (RFC 8461 §4.1, §4.2).
pub fn check_mx_hosts(policy: &Policy, mx: &[MxTlsFacts]) -> Vec<MxCheck> {
    mx.iter()
        .map(|m| {
            let pattern = policy.matching_pattern(&m.host).map(str::to_owned);
            let mut failures = Vec::new();
            if pattern.is_none() {
                failures.push(MxFailure::NoPatternMatch);
            }
            if m.unreached {
                // Nothing about its TLS was seen.
            } else if !m.starttls_ok {
                failures.push(MxFailure::NoStarttls);
            } else {
                if let Some(v) = old_tls(m.tls_version.as_deref()) {
                    failures.push(MxFailure::OldTls(v));
                }
                if !m.pkix_valid {
                    failures.push(MxFailure::PkixInvalid(m.pkix_error));
                }
            }
            MxCheck {
                host: m.host.clone(),
                pattern,
                failures,
            }
        })
        .collect()
}

/// `mta_sts_compliant` for a policy: every MX host matches a pattern and offered STARTTLS
/// (TLS 1.2+) with a PKIX-valid certificate for its name. `Some(false)` when there are no MX
/// hosts or any host fails; `None` when no host fails but none could be checked (every MX host
/// unreached): compliance is then unknown, not false. Unreached hosts beside checked ones
/// count for their pattern only. The mode is not looked at; see [`mta_sts_compliant`].
pub fn compliance(policy: &Policy, mx: &[MxTlsFacts]) -> Option<bool> {
    if mx.is_empty() {
        return Some(false);
    }
    let checks = check_mx_hosts(policy, mx);
    if checks.iter().any(|c| !c.failures.is_empty()) {
        return Some(false);
    }
    mx.iter().any(|m| !m.unreached).then_some(true)
}

/// The domain field `mta_sts_compliant`: [`compliance`] for every valid policy, `None` without
/// one (DESIGN.md). A mode-`none` policy usually lists no `mx`, so it yields `Some(false)`;
/// filter on `mta_sts` when that matters.
pub fn mta_sts_compliant(assessment: &MtaStsAssessment, mx: &[MxTlsFacts]) -> Option<bool> {
    assessment.policy.as_ref().and_then(|p| compliance(p, mx))
}

/// RFC 8461 §2: MTA-STS validation must not override a failing DANE validation. True when the
/// policy is `enforce` and some MX host passes MTA-STS validation (pattern, STARTTLS, TLS 1.2+,
/// PKIX) while its DANE verdict is a failure that stops a DANE sender (`bogus`, `mismatch`,
/// `no_tls`): a sender that let MTA-STS win would deliver there.
pub fn dane_conflict(policy: &Policy, mx: &[MxTlsFacts]) -> bool {
    if policy.mode != MtaStsMode::Enforce {
        return false;
    }
    check_mx_hosts(policy, mx).iter().zip(mx).any(|(c, m)| {
        c.failures.is_empty()
            && matches!(
                m.dane,
                Some(DaneVerdict::Bogus | DaneVerdict::Mismatch | DaneVerdict::NoTls)
            )
    })
}

/// The MTA-STS part of `tlsrpt_results`: the RFC 8460 §4.3 result types a sender applying this
/// domain's policy would report. Fetch failures are `sts-policy-fetch-error` (certificate
/// failures `sts-webpki-invalid`), invalid policies `sts-policy-invalid`; with an active
/// policy, each failing MX host adds `starttls-not-supported`, `certificate-host-mismatch`,
/// `certificate-expired`, `certificate-not-trusted` or `validation-failure` (no pattern match,
/// old TLS, other certificate errors). DANE result types come from the SMTP side. A broken or
/// missing TXT record yields nothing: a sender then sees no policy (RFC 8461 §3.1).
pub fn tlsrpt_results(assessment: &MtaStsAssessment, mx: &[MxTlsFacts]) -> Vec<TlsRptResult> {
    let mut out = Vec::new();
    match assessment.status {
        MtaStsStatus::FetchError => out.push(match assessment.error_class {
            Some(MtaStsError::Cert) => TlsRptResult::StsWebpkiInvalid,
            _ => TlsRptResult::StsPolicyFetchError,
        }),
        MtaStsStatus::PolicyInvalid => out.push(TlsRptResult::StsPolicyInvalid),
        _ => {}
    }
    if let Some(policy) = assessment.active_policy() {
        for check in check_mx_hosts(policy, mx) {
            for f in check.failures {
                out.push(match f {
                    MxFailure::NoStarttls => TlsRptResult::StarttlsNotSupported,
                    MxFailure::PkixInvalid(e) => {
                        e.map_or(TlsRptResult::ValidationFailure, PkixError::tlsrpt_result)
                    }
                    _ => TlsRptResult::ValidationFailure,
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::FetchFailure;

    fn input(
        outcome: DnsOutcome,
        txt: &[&str],
        addrs: Result<Vec<IpAddr>, DnsOutcome>,
    ) -> MtaStsInput {
        MtaStsInput {
            domain: "example.com".into(),
            txt_outcome: outcome,
            txt_records: txt.iter().map(|s| (*s).to_owned()).collect(),
            policy_host_addrs: addrs,
        }
    }

    fn lo() -> Result<Vec<IpAddr>, DnsOutcome> {
        Ok(vec![IpAddr::from([127, 0, 0, 1])])
    }

    const NOW: UtcTime = UtcTime::from_unix(1_800_000_000);

    fn ok_fetch(body: &str) -> FetchOutcome {
        let mut f = FetchOutcome::failed(FetchFailure::new(MtaStsError::Connect, "x"));
        f.result = Ok(());
        f.http_status = Some(200);
        f.content_type = Some("text/plain".into());
        f.body = Some(body.as_bytes().to_vec());
        f
    }

    fn status_of(i: &MtaStsInput) -> MtaStsStatus {
        match assess_txt(i, NOW) {
            Ok(_) => panic!("expected a finished assessment"),
            Err(a) => a.status,
        }
    }

    #[test]
    fn lookup_failures_are_never_none() {
        for o in [
            DnsOutcome::ServFail,
            DnsOutcome::Timeout,
            DnsOutcome::Refused,
            DnsOutcome::Malformed,
        ] {
            assert_eq!(
                status_of(&input(o, &[], lo())),
                MtaStsStatus::LookupError,
                "{o}"
            );
        }
        assert_eq!(
            status_of(&input(DnsOutcome::NxDomain, &[], lo())),
            MtaStsStatus::None
        );
        assert_eq!(
            status_of(&input(DnsOutcome::NoData, &[], lo())),
            MtaStsStatus::None
        );
        assert_eq!(
            status_of(&input(DnsOutcome::NoError, &["v=spf1 -all"], lo())),
            MtaStsStatus::None
        );
    }

    #[test]
    fn txt_invalid_and_dns_failure_of_policy_host() {
        let i = input(
            DnsOutcome::NoError,
            &["v=STSv1; id=1", "v=STSv1; id=2"],
            lo(),
        );
        let a = assess_txt(&i, NOW).expect_err("two records");
        assert_eq!(a.status, MtaStsStatus::TxtInvalid);
        assert!(a
            .error_detail
            .as_deref()
            .is_some_and(|d| d.contains("exactly one")));
        let i = input(
            DnsOutcome::NoError,
            &["v=STSv1; id=1"],
            Err(DnsOutcome::NxDomain),
        );
        let a = assess_txt(&i, NOW).expect_err("no host");
        assert_eq!(
            (a.status, a.error_class),
            (MtaStsStatus::FetchError, Some(MtaStsError::Dns))
        );
        let r = a.record(Uuid::nil(), "v");
        assert_eq!(r.policy_id.as_deref(), Some("1"));
        assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsPolicyFetchError]);
    }

    #[test]
    fn valid_policy_fills_the_record() {
        let i = input(DnsOutcome::NoError, &["v=STSv1; id=abc"], lo());
        let (txt, addrs) = assess_txt(&i, NOW).expect("fetch needed");
        assert_eq!(addrs, [IpAddr::from([127, 0, 0, 1])]);
        let mut f = ok_fetch("version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n");
        f.content_type = Some("text/plain; charset=utf-8".into());
        f.warnings = crate::fetch::check_media_type(f.content_type.as_deref()).expect("ok");
        let a = conclude(&i, txt, f, NOW);
        assert_eq!(a.status, MtaStsStatus::Enforce);
        let r = a.record(Uuid::nil(), "lab");
        assert_eq!(r.mode, Some(MtaStsMode::Enforce));
        assert_eq!(r.mx_patterns, ["*.example.com"]);
        assert_eq!(r.max_age, Some(86400));
        assert_eq!(r.http_status, Some(200));
        assert_eq!(r.policy_id.as_deref(), Some("abc"));
        assert!(r
            .policy_raw
            .as_deref()
            .is_some_and(|b| b.starts_with("version: STSv1")));
        assert_eq!(
            r.warnings,
            ["content_type_parameters: \"text/plain; charset=utf-8\""]
        );
        assert_eq!(r.fetched_at, NOW);
    }

    #[test]
    fn invalid_policy_and_fetch_errors_map_to_rfc8460() {
        let i = input(DnsOutcome::NoError, &["v=STSv1; id=abc"], lo());
        let (txt, _) = assess_txt(&i, NOW).expect("fetch");
        let a = conclude(
            &i,
            txt.clone(),
            ok_fetch("version: STSv1\nmode: enforce\nmax_age: 1\n"),
            NOW,
        );
        assert_eq!(a.status, MtaStsStatus::PolicyInvalid);
        assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsPolicyInvalid]);
        assert_eq!(a.record(Uuid::nil(), "v").mode, None);

        let cert = FetchOutcome::failed(FetchFailure::new(MtaStsError::Cert, "UnknownIssuer"));
        let a = conclude(&i, txt.clone(), cert, NOW);
        assert_eq!(
            (a.status, a.error_class),
            (MtaStsStatus::FetchError, Some(MtaStsError::Cert))
        );
        assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsWebpkiInvalid]);

        let mut redirect = FetchOutcome::failed(FetchFailure::new(MtaStsError::Redirect, "301"));
        redirect.http_status = Some(301);
        redirect.body = Some(b"moved".to_vec());
        let a = conclude(&i, txt, redirect, NOW);
        assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsPolicyFetchError]);
        let r = a.record(Uuid::nil(), "v");
        assert_eq!((r.http_status, r.policy_raw), (Some(301), None));
    }

    fn policy(mode: MtaStsMode, mx: &[&str]) -> Policy {
        Policy {
            mode,
            max_age: 86400,
            mx: mx.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn good(host: &str) -> MxTlsFacts {
        MxTlsFacts {
            host: host.into(),
            starttls_ok: true,
            tls_version: Some("TLSv1.3".into()),
            pkix_valid: true,
            ..Default::default()
        }
    }

    #[test]
    fn compliance_needs_every_host() {
        let p = policy(MtaStsMode::Enforce, &["*.example.com"]);
        assert_eq!(
            compliance(&p, &[good("mx1.example.com"), good("MX2.example.com.")]),
            Some(true)
        );
        assert_eq!(compliance(&p, &[]), Some(false));
        assert_eq!(
            compliance(&p, &[good("mx1.example.com"), good("mx.other.net")]),
            Some(false)
        );
        let mut old = good("mx1.example.com");
        old.tls_version = Some("TLSv1.1".into());
        assert_eq!(compliance(&p, &[old]), Some(false));
        let mut bad = good("mx1.example.com");
        bad.pkix_valid = false;
        bad.pkix_error = Some(PkixError::NameMismatch);
        assert_eq!(compliance(&p, &[bad]), Some(false));
        let mut plain = good("mx1.example.com");
        plain.starttls_ok = false;
        assert_eq!(compliance(&p, &[plain]), Some(false));
    }

    #[test]
    fn unreached_hosts_are_never_counted_as_lacking_starttls() {
        let p = policy(MtaStsMode::Enforce, &["*.example.com"]);
        let dead = MxTlsFacts {
            host: "mx2.example.com".into(),
            unreached: true,
            ..Default::default()
        };
        assert_eq!(compliance(&p, std::slice::from_ref(&dead)), None);
        assert_eq!(
            compliance(&p, &[good("mx1.example.com"), dead.clone()]),
            Some(true)
        );
        let outside = MxTlsFacts {
            host: "mx.other.net".into(),
            unreached: true,
            ..Default::default()
        };
        assert_eq!(
            compliance(&p, &[good("mx1.example.com"), outside]),
            Some(false)
        );
        let i = input(DnsOutcome::NoError, &["v=STSv1; id=abc"], lo());
        let (txt, _) = assess_txt(&i, NOW).expect("fetch");
        let a = conclude(
            &i,
            txt,
            ok_fetch("version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n"),
            NOW,
        );
        assert!(tlsrpt_results(&a, &[dead]).is_empty());
    }

    #[test]
    fn per_host_failures_become_report_types() {
        let i = input(DnsOutcome::NoError, &["v=STSv1; id=abc"], lo());
        let (txt, _) = assess_txt(&i, NOW).expect("fetch");
        let a = conclude(
            &i,
            txt,
            ok_fetch("version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 86400\n"),
            NOW,
        );
        let mut expired = good("a.example.com");
        expired.pkix_valid = false;
        expired.pkix_error = Some(PkixError::Expired);
        let mut plain = good("b.example.com");
        plain.starttls_ok = false;
        let outsider = good("mx.elsewhere.net");
        let mx = [expired, plain, outsider, good("c.example.com")];
        assert_eq!(
            tlsrpt_results(&a, &mx),
            [
                TlsRptResult::StarttlsNotSupported,
                TlsRptResult::CertificateExpired,
                TlsRptResult::ValidationFailure
            ]
        );
        assert_eq!(mta_sts_compliant(&a, &mx), Some(false));
        assert_eq!(mta_sts_compliant(&a, &mx[3..]), Some(true));
    }

    #[test]
    fn compliant_field_is_null_without_a_valid_policy() {
        let i = input(DnsOutcome::NoError, &["v=STSv1; id=abc"], lo());
        let (txt, _) = assess_txt(&i, NOW).expect("fetch");
        let none = conclude(
            &i,
            txt.clone(),
            ok_fetch("version: STSv1\nmode: none\nmax_age: 1\n"),
            NOW,
        );
        assert_eq!(
            mta_sts_compliant(&none, &[good("mx.example.com")]),
            Some(false)
        );
        assert!(tlsrpt_results(&none, &[good("mx.example.com")]).is_empty());
        let bad = conclude(&i, txt, ok_fetch("version: STSv1\n"), NOW);
        assert_eq!(mta_sts_compliant(&bad, &[good("mx.example.com")]), None);
        let absent = assess_txt(&input(DnsOutcome::NxDomain, &[], lo()), NOW).expect_err("none");
        assert_eq!(mta_sts_compliant(&absent, &[]), None);
    }

    #[test]
    fn dane_conflict_only_where_sts_would_deliver() {
        let p = policy(MtaStsMode::Enforce, &["mx.example.com"]);
        let mut h = good("mx.example.com");
        h.dane = Some(DaneVerdict::Mismatch);
        assert!(dane_conflict(&p, std::slice::from_ref(&h)));
        h.dane = Some(DaneVerdict::Valid);
        assert!(!dane_conflict(&p, std::slice::from_ref(&h)));
        h.dane = Some(DaneVerdict::Bogus);
        h.pkix_valid = false; // MTA-STS fails too: no sender would deliver
        assert!(!dane_conflict(&p, std::slice::from_ref(&h)));
        let mut t = good("mx.example.com");
        t.dane = Some(DaneVerdict::Mismatch);
        assert!(!dane_conflict(
            &policy(MtaStsMode::Testing, &["mx.example.com"]),
            &[t]
        ));
    }
}
