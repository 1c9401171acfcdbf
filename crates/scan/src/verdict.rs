//! Verdict assembly: from the DNS, SMTP and MTA-STS observations of one domain to its
//! `domain` record (DESIGN.md "Verdict vocabularies of `domain`"). Pure: no I/O, no clock.
//!
//! A probe is a fact about one address (shared by every domain whose MX points there); every
//! judgement that depends on the domain is made here, per domain: whether DANE applies (the
//! MX RRset's DNSSEC status), whether MTA-STS enforce requires TLS, `missing_despite_policy`,
//! `tlsrpt_results`, the DANE verdict. So verdicts never depend on the order of the input.
//! The rules, with their RFC sections, are listed in docs/verdicts.md; each has a unit test
//! below named after its section.

use std::collections::BTreeSet;

use mxray_model::*;
use mxray_mtasts::MxTlsFacts;

use crate::cached::ProbeFacts;

/// The observations of one MX host: its DNS record and the probes of its addresses, as full
/// records or as the scan's cached entries ([`crate::cached::CachedProbe`]).
#[derive(Debug, Clone)]
pub struct HostFacts<'a, P: ProbeFacts = SmtpProbeRecord> {
    /// The host's DNS collection.
    pub dns: &'a DnsHostRecord,
    /// The SMTP probes of the host's addresses (shared with other domains using the host).
    pub probes: Vec<&'a P>,
}

/// Everything known about one domain when its verdict is assembled.
#[derive(Debug, Clone)]
pub struct DomainFacts<'a, P: ProbeFacts = SmtpProbeRecord> {
    pub domain: &'a str,
    pub mx_kind: MxKind,
    pub mx_rcode: DnsOutcome,
    pub mx_dnssec: DnssecStatus,
    pub mx_hosts: &'a [String],
    /// DNS errors of the domain-level lookups, `dns:<class>: <detail>`.
    pub dns_errors: &'a [String],
    /// One entry per MX host with DNS data, in MX order.
    pub hosts: Vec<HostFacts<'a, P>>,
    /// The MTA-STS record (always present in a full scan: `none` is a status too).
    pub mta_sts: Option<&'a MtaStsPolicyRecord>,
    /// MTA-STS compliance from `mxray_mtasts::compliance` over [`mx_tls_facts`] (null without
    /// a valid policy, or when no MX host could be checked).
    pub mta_sts_compliant: Option<bool>,
    /// Valid TLS-RPT record and its `rua` URIs.
    pub tls_rpt: bool,
    pub tls_rpt_rua: Vec<String>,
    /// RFC 8460 results from the MTA-STS side (`sts-*` and the per-MX results of an active
    /// policy).
    pub sts_tlsrpt_results: Vec<TlsRptResult>,
}

/// Whether the probe's session reached a successful EHLO/HELO: only such sessions say
/// anything about STARTTLS or DANE. Refused, timed-out, tarpitted, 4xx/5xx-greeting and closed
/// sessions did not (DESIGN.md `starttls`).
pub fn reached<P: ProbeFacts + ?Sized>(p: &P) -> bool {
    p.reached_ehlo()
}

fn tls_ok<P: ProbeFacts + ?Sized>(p: &P) -> bool {
    p.result() == ProbeResult::StarttlsOk
}

/// The probe-level DANE results of a host whose TLSA RRset is secure (DANE applies to the host
/// itself, whatever domain points to it).
fn host_has_secure_tlsa<P: ProbeFacts>(h: &HostFacts<'_, P>) -> bool {
    h.probes.iter().any(|p| p.host_dane_applies())
}

/// The DANE verdict of one MX host as one domain sees it.
///
/// - No addresses because an address RRset is bogus: `bogus` (RFC 7672 §2.2: the sender must
///   not deliver); otherwise nothing was looked up: `none`.
/// - Any probe `bogus` (bogus TLSA, a bogus denial, a failed TLSA lookup behind secure
///   addresses): `bogus` (RFC 7672 §2.2).
/// - No secure TLSA: `insecure` when TLSA records exist but are not secure, else `none`.
/// - Secure TLSA but the domain's MX RRset is not secure: `insecure` (RFC 7672 §2.2.1: the MX
///   RRset can be forged; a sender may still use the host's TLSA, which the probe's own
///   `dane` records, but DANE surveys count signed-MX domains only).
/// - Otherwise the worst result of the probes that reached EHLO (`valid`, `unusable`,
///   `mismatch`, `no_tls`); no probe reached EHLO: `unverified` (or `unusable`, which DNS
///   alone tells).
pub fn host_dane<P: ProbeFacts>(mx_dnssec: DnssecStatus, h: &HostFacts<'_, P>) -> DaneVerdict {
    if h.dns.addresses.is_empty() {
        let bogus = [h.dns.a_dnssec, h.dns.aaaa_dnssec, h.dns.address_dnssec]
            .contains(&DnssecStatus::Bogus);
        return if bogus {
            DaneVerdict::Bogus
        } else {
            DaneVerdict::None
        };
    }
    if h.probes.iter().any(|p| p.dane() == DaneVerdict::Bogus) {
        return DaneVerdict::Bogus;
    }
    if !host_has_secure_tlsa(h) {
        return if h.probes.iter().any(|p| p.dane() == DaneVerdict::Insecure)
            || (!h.dns.tlsa.is_empty() && h.probes.is_empty())
        {
            DaneVerdict::Insecure
        } else {
            DaneVerdict::None
        };
    }
    if mx_dnssec != DnssecStatus::Secure {
        return DaneVerdict::Insecure;
    }
    h.probes
        .iter()
        .map(|p| p.dane())
        .filter(|v| *v != DaneVerdict::Unverified)
        .max_by_key(|v| v.severity())
        .unwrap_or(DaneVerdict::Unverified)
}

/// The domain's DANE verdict from its hosts' (DESIGN.md): bogus MX RRset -> `bogus`; then the
/// worst of bogus > no_tls > mismatch > unusable; hosts no probe reached (`unverified`) are
/// left out; all remaining hosts `valid` -> `valid`; some `valid`, the rest without DANE ->
/// `partial`; none checked but some `unverified` -> `unverified`; else `insecure` or `none`.
pub fn aggregate_dane(mx_dnssec: DnssecStatus, hosts: &[DaneVerdict]) -> DaneVerdict {
    use DaneVerdict::*;
    if mx_dnssec == DnssecStatus::Bogus {
        return Bogus;
    }
    let worst = hosts
        .iter()
        .copied()
        .filter(|v| matches!(v, Bogus | NoTls | Mismatch | Unusable))
        .max_by_key(|v| v.severity());
    if let Some(w) = worst {
        return w;
    }
    let checked: Vec<DaneVerdict> = hosts.iter().copied().filter(|v| *v != Unverified).collect();
    let valid = checked.iter().filter(|v| **v == Valid).count();
    if valid > 0 {
        return if valid == checked.len() {
            Valid
        } else {
            Partial
        };
    }
    if hosts.contains(&Unverified) {
        Unverified
    } else if hosts.contains(&Insecure) {
        Insecure
    } else {
        None
    }
}

/// MTA-STS facts of one MX host: the host passes only if every address that reached EHLO
/// completed STARTTLS with a PKIX-valid certificate (a sender may be sent to any of them);
/// a host none of whose addresses reached EHLO is `unreached` and only pattern-checked.
pub fn mx_tls_facts<P: ProbeFacts>(host: &str, probes: &[&P]) -> MxTlsFacts {
    let reached: Vec<&P> = probes.iter().copied().filter(|p| reached(*p)).collect();
    let ok = !reached.is_empty() && reached.iter().all(|p| tls_ok(*p));
    let pkix = ok && reached.iter().all(|p| p.pkix_valid() == Some(true));
    MxTlsFacts {
        host: host.to_owned(),
        starttls_ok: ok,
        tls_version: reached
            .iter()
            .find_map(|p| p.tls_version().map(str::to_owned)),
        pkix_valid: pkix,
        pkix_error: reached.iter().find_map(|p| p.pkix_error()),
        dane: reached
            .iter()
            .map(|p| p.dane())
            .max_by_key(|d| d.severity()),
        unreached: reached.is_empty(),
    }
}

/// Assembles the `domain` record.
pub fn assemble<P: ProbeFacts>(
    facts: &DomainFacts<'_, P>,
    scan_id: uuid::Uuid,
    vantage: &str,
    scanned_at: UtcTime,
) -> DomainRecord {
    let probes: Vec<&P> = facts
        .hosts
        .iter()
        .flat_map(|h| h.probes.iter().copied())
        .collect();
    let reached_probes: Vec<&P> = probes.iter().copied().filter(|p| reached(*p)).collect();
    let has_mail_hosts =
        matches!(facts.mx_kind, MxKind::Mx | MxKind::Implicit) && !facts.mx_hosts.is_empty();

    // Counted over (host, address) sessions that reached EHLO: `all` means every place mail
    // could go offered TLS, `none` that none did.
    let starttls = if !has_mail_hosts {
        StarttlsVerdict::NotApplicable
    } else if reached_probes.is_empty() {
        StarttlsVerdict::Unreachable
    } else {
        match reached_probes.iter().filter(|p| tls_ok(**p)).count() {
            0 => StarttlsVerdict::None,
            n if n == reached_probes.len() => StarttlsVerdict::All,
            _ => StarttlsVerdict::Some,
        }
    };

    let with_tls: Vec<&P> = probes.iter().copied().filter(|p| tls_ok(*p)).collect();
    let pkix = if with_tls.is_empty() {
        PkixVerdict::NotApplicable
    } else {
        match with_tls
            .iter()
            .filter(|p| p.pkix_valid() == Some(true))
            .count()
        {
            0 => PkixVerdict::None,
            n if n == with_tls.len() => PkixVerdict::All,
            _ => PkixVerdict::Some,
        }
    };

    let host_verdicts: Vec<DaneVerdict> = if has_mail_hosts {
        facts
            .hosts
            .iter()
            .map(|h| host_dane(facts.mx_dnssec, h))
            .collect()
    } else {
        Vec::new()
    };
    let dane = aggregate_dane(facts.mx_dnssec, &host_verdicts);

    let (mta_sts, mta_sts_error) = match facts.mta_sts {
        Some(p) => (
            p.status,
            p.error_class
                .filter(|_| p.status == MtaStsStatus::FetchError),
        ),
        None => (MtaStsStatus::None, None),
    };
    let valid_policy = matches!(
        mta_sts,
        MtaStsStatus::Enforce | MtaStsStatus::Testing | MtaStsStatus::ModeNone
    );

    let mut signals: BTreeSet<StrippingSignal> = probes
        .iter()
        .flat_map(|p| p.stripping_signals().iter().copied())
        .collect();
    // DANE applies to the host for this domain: its TLSA is secure and so is the MX RRset.
    let under_dane = |v: DaneVerdict| {
        matches!(
            v,
            DaneVerdict::Valid | DaneVerdict::Mismatch | DaneVerdict::NoTls | DaneVerdict::Unusable
        )
    };
    let enforce = mta_sts == MtaStsStatus::Enforce;
    let missing = facts.hosts.iter().zip(&host_verdicts).any(|(h, v)| {
        (enforce || under_dane(*v))
            && h.probes
                .iter()
                .any(|p| reached(*p) && !p.starttls_advertised())
    });
    if missing {
        signals.insert(StrippingSignal::MissingDespitePolicy);
    }

    // RFC 8460 reports failures against a policy: DANE results for the hosts DANE applies
    // to for this domain; the MTA-STS side brings its own (`sts_tlsrpt_results`).
    let mut tlsrpt: BTreeSet<TlsRptResult> = BTreeSet::new();
    for (h, _) in facts
        .hosts
        .iter()
        .zip(&host_verdicts)
        .filter(|(_, v)| under_dane(**v))
    {
        for p in &h.probes {
            // Borrowed from a cached probe: no copy per domain.
            tlsrpt.extend(p.tlsrpt_under_dane().iter().copied());
        }
    }
    tlsrpt.extend(facts.sts_tlsrpt_results.iter().copied());
    if dane == DaneVerdict::Bogus || host_verdicts.contains(&DaneVerdict::Bogus) {
        tlsrpt.insert(TlsRptResult::DnssecInvalid);
    }

    let mut errors: Vec<String> = facts.dns_errors.to_vec();
    for h in &facts.hosts {
        errors.extend(
            h.dns
                .errors
                .iter()
                .map(|e| format!("dns:{}: {e}", h.dns.host)),
        );
    }
    for p in &probes {
        if let Some(c) = p.error_class() {
            errors.push(format!("smtp:{c}: {}:{}", p.ip(), p.port()));
        }
    }
    if let Some(p) = facts.mta_sts {
        if let (Some(c), MtaStsStatus::FetchError) = (p.error_class, p.status) {
            errors.push(format!("mta-sts:{c}"));
        }
    }

    let stripping_signals: Vec<StrippingSignal> = signals.into_iter().collect();
    DomainRecord {
        scan_id,
        vantage: vantage.to_owned(),
        scanned_at,
        domain: facts.domain.to_owned(),
        mx_kind: facts.mx_kind,
        mx_dnssec: facts.mx_dnssec,
        mx_rcode: facts.mx_rcode,
        mx_hosts: facts.mx_hosts.to_vec(),
        starttls,
        pkix,
        dane,
        mta_sts,
        mta_sts_error,
        mta_sts_compliant: if valid_policy {
            facts.mta_sts_compliant
        } else {
            None
        },
        tls_rpt: facts.tls_rpt,
        tls_rpt_rua: facts.tls_rpt_rua.clone(),
        tlsrpt_results: tlsrpt.into_iter().collect(),
        stripping_suspected: stripping_signals.iter().any(|s| s.is_evidence()),
        stripping_signals,
        errors,
        tls_legacy: crate::legacy::tls_legacy(&facts.hosts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, tlsa: bool, dnssec: DnssecStatus) -> DnsHostRecord {
        let mut h = examples::dns_host();
        h.host = name.into();
        h.errors.clear();
        h.address_dnssec = dnssec;
        h.a_dnssec = dnssec;
        h.aaaa_dnssec = dnssec;
        h.tlsa_dnssec = dnssec;
        if !tlsa {
            h.tlsa.clear();
        }
        h
    }

    /// A probe record as mxray-smtp writes it for a session that ended this way. `dane` is
    /// the host-level result (the host's own TLSA against the session).
    fn probe(
        result: ProbeResult,
        class: Option<ProbeErrorClass>,
        dane: DaneVerdict,
        pkix: bool,
    ) -> SmtpProbeRecord {
        use ProbeErrorClass::*;
        let mut p = examples::smtp_probe();
        p.result = result;
        p.error_class = class;
        p.dane = dane;
        p.reached_ehlo = result != ProbeResult::Error
            || matches!(
                class,
                Some(Starttls4xx | Starttls5xx | TlsAlert | TlsError | TlsReset | TlsTimeout)
            );
        p.pkix_valid = if result == ProbeResult::StarttlsOk {
            Some(pkix)
        } else {
            None
        };
        p.starttls_advertised = result == ProbeResult::StarttlsOk;
        p.starttls_forced = false;
        p.stripping_signals.clear();
        p.tlsrpt_results.clear();
        p
    }

    fn facts<'a, P: ProbeFacts>(
        hosts: Vec<HostFacts<'a, P>>,
        names: &'a [String],
        mx_dnssec: DnssecStatus,
    ) -> DomainFacts<'a, P> {
        DomainFacts {
            domain: "example.com",
            mx_kind: MxKind::Mx,
            mx_rcode: DnsOutcome::NoError,
            mx_dnssec,
            mx_hosts: names,
            dns_errors: &[],
            hosts,
            mta_sts: None,
            mta_sts_compliant: None,
            tls_rpt: false,
            tls_rpt_rua: vec![],
            sts_tlsrpt_results: vec![],
        }
    }

    fn one<'a>(h: &'a DnsHostRecord, p: &'a SmtpProbeRecord) -> Vec<HostFacts<'a>> {
        vec![HostFacts {
            dns: h,
            probes: vec![p],
        }]
    }

    fn run<P: ProbeFacts>(f: &DomainFacts<'_, P>) -> DomainRecord {
        assemble(f, examples::scan_id(), "default", UtcTime::from_unix(0))
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn good_domain_is_all_all_valid() {
        let n = names(&["mx1.example.com"]);
        let h = host("mx1.example.com", true, DnssecStatus::Secure);
        let p = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Valid, true);
        let r = run(&facts(one(&h, &p), &n, DnssecStatus::Secure));
        assert_eq!(
            (r.starttls, r.pkix, r.dane),
            (StarttlsVerdict::All, PkixVerdict::All, DaneVerdict::Valid)
        );
        assert!(!r.stripping_suspected);
        assert_eq!(r.mta_sts, MtaStsStatus::None);
        assert_eq!(r.mta_sts_compliant, None);
    }

    #[test]
    fn two_mx_one_without_starttls_is_some_and_partial_dane() {
        let n = names(&["a.example.com", "b.example.com"]);
        let a = host("a.example.com", true, DnssecStatus::Secure);
        let b = host("b.example.com", false, DnssecStatus::Secure);
        let pa = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Valid, true);
        let pb = probe(ProbeResult::NoStarttls, None, DaneVerdict::None, false);
        let r = run(&facts(
            vec![
                HostFacts {
                    dns: &a,
                    probes: vec![&pa],
                },
                HostFacts {
                    dns: &b,
                    probes: vec![&pb],
                },
            ],
            &n,
            DnssecStatus::Secure,
        ));
        assert_eq!(r.starttls, StarttlsVerdict::Some);
        assert_eq!(
            r.pkix,
            PkixVerdict::All,
            "only hosts that completed TLS count"
        );
        assert_eq!(r.dane, DaneVerdict::Partial);
        // b has no TLSA: a DANE sender delivers to it opportunistically, no policy is violated.
        assert!(r.stripping_signals.is_empty());
    }

    #[test]
    fn unreachable_and_na() {
        let n = names(&["mx.example.com"]);
        let h = host("mx.example.com", false, DnssecStatus::Insecure);
        let p = probe(
            ProbeResult::Error,
            Some(ProbeErrorClass::ConnectRefused),
            DaneVerdict::None,
            false,
        );
        let r = run(&facts(one(&h, &p), &n, DnssecStatus::Insecure));
        assert_eq!(
            (r.starttls, r.pkix, r.dane),
            (
                StarttlsVerdict::Unreachable,
                PkixVerdict::NotApplicable,
                DaneVerdict::None
            )
        );
        assert_eq!(
            r.errors,
            vec!["smtp:connect_refused: 192.0.2.7:25".to_string()]
        );

        let mut f = facts::<SmtpProbeRecord>(vec![], &[], DnssecStatus::Secure);
        f.mx_kind = MxKind::NullMx;
        let r = run(&f);
        assert_eq!(
            (r.starttls, r.pkix, r.dane),
            (
                StarttlsVerdict::NotApplicable,
                PkixVerdict::NotApplicable,
                DaneVerdict::None
            )
        );
    }

    #[test]
    fn design_a_refusing_greeting_never_counts_as_lacking_starttls() {
        // 554 greeting, 421 greeting, EHLO and HELO refused: none reached EHLO.
        let n = names(&["mx.example.com"]);
        let h = host("mx.example.com", true, DnssecStatus::Secure);
        for class in [
            ProbeErrorClass::Greeting5xx,
            ProbeErrorClass::Greeting4xx,
            ProbeErrorClass::EhloRejected,
            ProbeErrorClass::GreetingTimeout,
            ProbeErrorClass::ConnectionClosed,
        ] {
            let p = probe(
                ProbeResult::Error,
                Some(class),
                DaneVerdict::Unverified,
                false,
            );
            let mut pol = examples::mta_sts_policy();
            pol.status = MtaStsStatus::Enforce;
            pol.error_class = None;
            let mut f = facts(one(&h, &p), &n, DnssecStatus::Secure);
            f.mta_sts = Some(&pol);
            let r = run(&f);
            assert_eq!(r.starttls, StarttlsVerdict::Unreachable, "{class}");
            assert_eq!(r.dane, DaneVerdict::Unverified, "{class}: never no_tls");
            assert!(
                r.stripping_signals.is_empty(),
                "{class}: {:?}",
                r.stripping_signals
            );
            assert!(!r.stripping_suspected);
            assert!(!r
                .tlsrpt_results
                .contains(&TlsRptResult::StarttlsNotSupported));
        }
    }

    #[test]
    fn design_dane_leaves_unreached_hosts_out_of_the_aggregate() {
        use DaneVerdict::*;
        let s = DnssecStatus::Secure;
        assert_eq!(aggregate_dane(s, &[Valid, Unverified]), Valid);
        assert_eq!(aggregate_dane(s, &[Unverified, Unverified]), Unverified);
        assert_eq!(aggregate_dane(s, &[Valid, None, Unverified]), Partial);
        assert_eq!(aggregate_dane(s, &[Unverified, None]), Unverified);
        assert_eq!(aggregate_dane(s, &[Mismatch, Unverified, Valid]), Mismatch);
        assert_eq!(aggregate_dane(s, &[Insecure, None]), Insecure);
        assert_eq!(aggregate_dane(s, &[]), None);
        // Worst first: bogus > no_tls > mismatch > unusable.
        assert_eq!(
            aggregate_dane(s, &[Unusable, Mismatch, NoTls, Bogus]),
            Bogus
        );
        assert_eq!(aggregate_dane(s, &[Unusable, Mismatch, NoTls]), NoTls);
        assert_eq!(aggregate_dane(s, &[Unusable, Mismatch]), Mismatch);
        assert_eq!(aggregate_dane(s, &[Unusable, Valid]), Unusable);
    }

    #[test]
    fn rfc7672_2_2_1_an_unsigned_mx_rrset_keeps_the_domain_insecure_on_a_dane_host() {
        // One provider host with a secure, matching TLSA; one probe of it, shared.
        let n = names(&["mx.provider.example"]);
        let h = host("mx.provider.example", true, DnssecStatus::Secure);
        let p = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Valid, true);
        let signed = run(&facts(one(&h, &p), &n, DnssecStatus::Secure));
        let unsigned = run(&facts(one(&h, &p), &n, DnssecStatus::Insecure));
        assert_eq!(signed.dane, DaneVerdict::Valid);
        assert_eq!(unsigned.dane, DaneVerdict::Insecure);
        // The host-level match stays in the (shared) probe for both.
        assert_eq!(p.dane, DaneVerdict::Valid);
        // And a domain whose MX RRset is indeterminate is not valid either.
        assert_eq!(
            run(&facts(one(&h, &p), &n, DnssecStatus::Indeterminate)).dane,
            DaneVerdict::Insecure
        );
    }

    #[test]
    fn rfc7672_2_2_missing_despite_policy_belongs_to_the_domain_not_the_probe() {
        // A DANE host that lacks STARTTLS, shared by a signed and an unsigned domain.
        let n = names(&["mx.provider.example"]);
        let h = host("mx.provider.example", true, DnssecStatus::Secure);
        let p = probe(ProbeResult::NoStarttls, None, DaneVerdict::NoTls, false);
        let signed = run(&facts(one(&h, &p), &n, DnssecStatus::Secure));
        assert_eq!(signed.dane, DaneVerdict::NoTls);
        assert_eq!(
            signed.stripping_signals,
            vec![StrippingSignal::MissingDespitePolicy]
        );
        assert!(!signed.stripping_suspected, "a weak signal alone");
        assert!(signed
            .tlsrpt_results
            .contains(&TlsRptResult::StarttlsNotSupported));
        let unsigned = run(&facts(one(&h, &p), &n, DnssecStatus::Insecure));
        assert_eq!(unsigned.dane, DaneVerdict::Insecure);
        assert!(unsigned.stripping_signals.is_empty());
        assert!(unsigned.tlsrpt_results.is_empty());
        // An MTA-STS enforce policy requires TLS on every MX host.
        let plain = host("mx.provider.example", false, DnssecStatus::Insecure);
        let pp = probe(ProbeResult::NoStarttls, None, DaneVerdict::None, false);
        let mut pol = examples::mta_sts_policy();
        pol.status = MtaStsStatus::Enforce;
        pol.error_class = None;
        let mut f = facts(one(&plain, &pp), &n, DnssecStatus::Insecure);
        f.mta_sts = Some(&pol);
        assert_eq!(
            run(&f).stripping_signals,
            vec![StrippingSignal::MissingDespitePolicy]
        );
    }

    #[test]
    fn rfc7672_2_1_1_a_bogus_mx_rrset_is_bogus_not_none() {
        let mut f = facts::<SmtpProbeRecord>(vec![], &[], DnssecStatus::Bogus);
        f.mx_kind = MxKind::Error;
        f.mx_rcode = DnsOutcome::ServFail;
        let r = run(&f);
        assert_eq!(r.dane, DaneVerdict::Bogus);
        assert!(r.tlsrpt_results.contains(&TlsRptResult::DnssecInvalid));
        assert_eq!(r.starttls, StarttlsVerdict::NotApplicable);
    }

    #[test]
    fn rfc7672_2_2_bogus_address_records_are_bogus() {
        let n = names(&["mx.example.com"]);
        let mut h = host("mx.example.com", false, DnssecStatus::Secure);
        h.addresses.clear();
        h.a_dnssec = DnssecStatus::Bogus;
        h.address_dnssec = DnssecStatus::Bogus;
        h.address_rcode = DnsOutcome::ServFail;
        let r = run(&facts(
            vec![HostFacts::<SmtpProbeRecord> {
                dns: &h,
                probes: vec![],
            }],
            &n,
            DnssecStatus::Secure,
        ));
        assert_eq!(r.dane, DaneVerdict::Bogus);
        assert!(r.tlsrpt_results.contains(&TlsRptResult::DnssecInvalid));
        assert_eq!(r.starttls, StarttlsVerdict::Unreachable);
    }

    #[test]
    fn rfc7672_2_2_a_failed_tlsa_lookup_behind_secure_addresses_is_bogus() {
        // mxray-smtp gives such a host `dane = bogus` (targets::tlsa_input); the domain too.
        let n = names(&["mx.example.com"]);
        let mut h = host("mx.example.com", false, DnssecStatus::Secure);
        h.tlsa_rcode = DnsOutcome::ServFail;
        h.tlsa_dnssec = DnssecStatus::Indeterminate;
        let p = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Bogus, true);
        let r = run(&facts(one(&h, &p), &n, DnssecStatus::Secure));
        assert_eq!(r.dane, DaneVerdict::Bogus);
        assert!(r.tlsrpt_results.contains(&TlsRptResult::DnssecInvalid));
    }

    #[test]
    fn rfc7672_2_2_unusable_records_on_a_host_without_starttls_are_no_tls() {
        let n = names(&["mx.example.com"]);
        let h = host("mx.example.com", true, DnssecStatus::Secure);
        let p = probe(ProbeResult::NoStarttls, None, DaneVerdict::NoTls, false);
        assert_eq!(
            run(&facts(one(&h, &p), &n, DnssecStatus::Secure)).dane,
            DaneVerdict::NoTls
        );
        let t = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Unusable, true);
        assert_eq!(
            run(&facts(one(&h, &t), &n, DnssecStatus::Secure)).dane,
            DaneVerdict::Unusable
        );
    }

    #[test]
    fn dane_classes() {
        let n = names(&["mx.example.com"]);
        // TLSA in an unsigned zone: insecure, never valid.
        let h = host("mx.example.com", true, DnssecStatus::Insecure);
        let p = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Insecure, true);
        assert_eq!(
            run(&facts(one(&h, &p), &n, DnssecStatus::Secure)).dane,
            DaneVerdict::Insecure
        );
        // Bogus TLSA.
        let hb = host("mx.example.com", true, DnssecStatus::Bogus);
        let pb = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Bogus, true);
        let r = run(&facts(one(&hb, &pb), &n, DnssecStatus::Secure));
        assert_eq!(r.dane, DaneVerdict::Bogus);
        assert!(r.tlsrpt_results.contains(&TlsRptResult::DnssecInvalid));
        // Mismatch beats valid on another host.
        let n2 = names(&["a", "b"]);
        let hs = host("mx.example.com", true, DnssecStatus::Secure);
        let pv = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Valid, true);
        let pm = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Mismatch, true);
        let r = run(&facts(
            vec![
                HostFacts {
                    dns: &hs,
                    probes: vec![&pv],
                },
                HostFacts {
                    dns: &hs,
                    probes: vec![&pm],
                },
            ],
            &n2,
            DnssecStatus::Secure,
        ));
        assert_eq!(r.dane, DaneVerdict::Mismatch);
        assert!(r.tlsrpt_results.contains(&TlsRptResult::TlsaInvalid));
    }

    #[test]
    fn design_stripping_suspected_needs_evidence_not_a_weak_signal() {
        let n = names(&["mx.example.com"]);
        let h = host("mx.example.com", false, DnssecStatus::Insecure);
        for (signal, suspected) in [
            (StrippingSignal::StarttlsRejected, false),
            (StrippingSignal::TlsFailedAfterReady, false),
            (StrippingSignal::StarttlsMangled, true),
            (StrippingSignal::BannerMasked, true),
            (StrippingSignal::StarttlsForcedOk, true),
        ] {
            let mut p = probe(ProbeResult::NoStarttls, None, DaneVerdict::None, false);
            p.stripping_signals = vec![signal];
            let r = run(&facts(one(&h, &p), &n, DnssecStatus::Insecure));
            assert_eq!(r.stripping_signals, vec![signal]);
            assert_eq!(r.stripping_suspected, suspected, "{signal}");
        }
    }

    #[test]
    fn rfc8461_4_unreached_mx_hosts_are_not_non_compliant() {
        let dead = probe(
            ProbeResult::Error,
            Some(ProbeErrorClass::Greeting5xx),
            DaneVerdict::None,
            false,
        );
        let f = mx_tls_facts("mx.example.com", &[&dead]);
        assert!(f.unreached);
        let ok = probe(ProbeResult::StarttlsOk, None, DaneVerdict::None, true);
        let f = mx_tls_facts("mx.example.com", &[&dead, &ok]);
        assert!(!f.unreached && f.starttls_ok && f.pkix_valid);
    }

    #[test]
    fn mta_sts_fields_come_from_the_policy_record() {
        let n = names(&["mx.example.com"]);
        let h = host("mx.example.com", false, DnssecStatus::Insecure);
        let p = probe(ProbeResult::NoStarttls, None, DaneVerdict::None, false);
        let mut pol = examples::mta_sts_policy();
        pol.status = MtaStsStatus::Enforce;
        pol.error_class = None;
        let mut f = facts(one(&h, &p), &n, DnssecStatus::Insecure);
        f.mta_sts = Some(&pol);
        f.mta_sts_compliant = Some(false);
        let r = run(&f);
        assert_eq!(r.mta_sts, MtaStsStatus::Enforce);
        assert_eq!(r.mta_sts_error, None);
        assert_eq!(r.mta_sts_compliant, Some(false));
        assert!(r
            .stripping_signals
            .contains(&StrippingSignal::MissingDespitePolicy));
        assert!(!r.stripping_suspected);

        pol.status = MtaStsStatus::FetchError;
        pol.error_class = Some(MtaStsError::Redirect);
        pol.mode = Option::None;
        let mut f = facts(one(&h, &p), &n, DnssecStatus::Insecure);
        f.mta_sts = Some(&pol);
        f.mta_sts_compliant = Some(true);
        let r = run(&f);
        assert_eq!(
            (r.mta_sts, r.mta_sts_error, r.mta_sts_compliant),
            (
                MtaStsStatus::FetchError,
                Some(MtaStsError::Redirect),
                Option::None
            )
        );
        assert!(!r.stripping_suspected);
    }

    /// The pipeline judges the cache's compact entries, the tests above judge full records:
    /// both must give every domain the same record. Varied probes (every result, class,
    /// DANE result, PKIX error, signal; IPv4 and IPv6) over varied hosts and domains.
    #[test]
    fn verdicts_from_cached_probes_equal_verdicts_from_records() {
        use crate::cached::CachedProbe;
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| -> usize {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for case in 0..2_000 {
            let dnssec = DnssecStatus::ALL;
            let mut records: Vec<(DnsHostRecord, Vec<SmtpProbeRecord>)> = Vec::new();
            for h in 0..1 + next(3) {
                let mut d = host(&format!("mx{h}.example.com"), next(2) == 0, dnssec[next(4)]);
                if next(6) == 0 {
                    d.addresses.clear();
                }
                let probes = (0..next(4) as u8)
                    .map(|i| {
                        let mut p = examples::smtp_probe();
                        // As mxray-smtp writes it: `IpAddr`'s canonical text.
                        let ip: std::net::IpAddr = if next(2) == 0 {
                            std::net::Ipv4Addr::new(192, 0, 2, i).into()
                        } else {
                            std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i.into()).into()
                        };
                        p.ip = ip.to_string();
                        p.result = ProbeResult::ALL[next(ProbeResult::ALL.len())];
                        let classes = ProbeErrorClass::ALL;
                        p.error_class = (next(2) == 0).then(|| classes[next(classes.len())]);
                        p.reached_ehlo = next(3) != 0;
                        p.starttls_advertised = next(2) == 0;
                        p.starttls_forced = next(4) == 0;
                        p.tls_version = [None, Some("TLSv1.3"), Some("TLSv1.0"), Some("odd")]
                            [next(4)]
                        .map(str::to_owned);
                        p.tls_legacy = next(3) == 0;
                        p.pkix_valid = [None, Some(true), Some(false)][next(3)];
                        let errs = PkixError::ALL;
                        p.pkix_error = (next(2) == 0).then(|| errs[next(errs.len())]);
                        p.dane = DaneVerdict::ALL[next(DaneVerdict::ALL.len())];
                        let sig = StrippingSignal::ALL;
                        p.stripping_signals = (0..next(3)).map(|_| sig[next(sig.len())]).collect();
                        p.tlsrpt_results.clear();
                        p
                    })
                    .collect();
                records.push((d, probes));
            }
            let cached: Vec<Vec<CachedProbe>> = records
                .iter()
                .map(|(_, ps)| {
                    ps.iter()
                        .map(|p| CachedProbe::from_record(p).expect("test addresses parse"))
                        .collect()
                })
                .collect();
            let names: Vec<String> = records.iter().map(|(d, _)| d.host.clone()).collect();
            let mut pol = examples::mta_sts_policy();
            pol.status = MtaStsStatus::ALL[next(MtaStsStatus::ALL.len())];
            let mx_dnssec = dnssec[next(4)];
            let full = {
                let hosts = records
                    .iter()
                    .map(|(d, ps)| HostFacts {
                        dns: d,
                        probes: ps.iter().collect(),
                    })
                    .collect();
                let mut f = facts(hosts, &names, mx_dnssec);
                f.mta_sts = Some(&pol);
                run(&f)
            };
            let compact = {
                let hosts = records
                    .iter()
                    .zip(&cached)
                    .map(|((d, _), ps)| HostFacts {
                        dns: d,
                        probes: ps.iter().collect(),
                    })
                    .collect();
                let mut f = facts(hosts, &names, mx_dnssec);
                f.mta_sts = Some(&pol);
                run(&f)
            };
            assert_eq!(full, compact, "case {case}");
            for ((d, ps), cs) in records.iter().zip(&cached) {
                let ps: Vec<&SmtpProbeRecord> = ps.iter().collect();
                let cs: Vec<&CachedProbe> = cs.iter().collect();
                assert_eq!(
                    mx_tls_facts(&d.host, &ps),
                    mx_tls_facts(&d.host, &cs),
                    "case {case}"
                );
            }
        }
    }
}
