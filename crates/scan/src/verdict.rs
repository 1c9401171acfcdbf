//! Verdict assembly: from the DNS, SMTP and MTA-STS observations of one domain to its
//! `domain` record (DESIGN.md "Verdict vocabularies of `domain`"). Pure: no I/O, no clock.
//!
//! Decisions where DESIGN.md is silent (also in docs/verdicts.md):
//! - A probe *answered* when the server sent anything SMTP-like (a greeting, even 4xx/5xx).
//!   Refused, timed-out, unreachable, blocked destinations and silent tarpits did not answer.
//! - `starttls` counts answering (host, IP) probes: all completed TLS -> `all`, none -> `none`,
//!   otherwise `some`; no answering probe -> `unreachable`; no mail hosts -> `n/a`.
//! - `dane` per MX host: no TLSA -> `none`; TLSA whose RRset, address records or MX RRset is
//!   bogus -> `bogus`; not all secure -> `insecure` (as Postfix: TLSA is only used when the MX
//!   RRset, the address records and the TLSA RRset all validate); secure -> the worst of its
//!   answering probes' DANE results (`valid`, `mismatch`, `unusable`, `no_tls`); secure but no
//!   probe answered -> `no_tls` (a DANE sender cannot deliver securely either).
//!   Domain: the worst per DESIGN.md's order; all hosts `valid` -> `valid`; some `valid` and the
//!   rest without usable DANE (`none`/`insecure`) -> `partial`; otherwise `insecure` if any host
//!   is, else `none`.
//! - `missing_despite_policy`: an answering probe without STARTTLS on a host that has a secure
//!   TLSA RRset (DANE is per MX host, RFC 7672 §2.2), or on any MX host of a domain whose
//!   MTA-STS mode is `enforce` (the policy covers every MX).

use std::collections::BTreeSet;

use mxray_model::*;

/// The observations of one MX host: its DNS record and the probes of its addresses.
#[derive(Debug, Clone)]
pub struct HostFacts<'a> {
    /// The host's DNS collection.
    pub dns: &'a DnsHostRecord,
    /// The SMTP probes of the host's addresses (shared with other domains using the host).
    pub probes: Vec<&'a SmtpProbeRecord>,
}

/// Everything known about one domain when its verdict is assembled.
#[derive(Debug, Clone)]
pub struct DomainFacts<'a> {
    pub domain: &'a str,
    pub mx_kind: MxKind,
    pub mx_rcode: DnsOutcome,
    pub mx_dnssec: DnssecStatus,
    pub mx_hosts: &'a [String],
    /// DNS errors of the domain-level lookups, `dns:<class>: <detail>`.
    pub dns_errors: &'a [String],
    /// One entry per MX host with DNS data, in MX order.
    pub hosts: Vec<HostFacts<'a>>,
    /// The MTA-STS record (always present in a full scan: `none` is a status too).
    pub mta_sts: Option<&'a MtaStsPolicyRecord>,
    /// MTA-STS compliance from `mxray_mtasts::compliance` (null without a valid policy).
    pub mta_sts_compliant: Option<bool>,
    /// Valid TLS-RPT record and its `rua` URIs.
    pub tls_rpt: bool,
    pub tls_rpt_rua: Vec<String>,
    /// RFC 8460 results from the MTA-STS side (`sts-*`).
    pub sts_tlsrpt_results: Vec<TlsRptResult>,
}

/// Whether the server said anything SMTP-like.
pub fn answered(p: &SmtpProbeRecord) -> bool {
    use ProbeErrorClass::*;
    match p.result {
        ProbeResult::StarttlsOk | ProbeResult::NoStarttls => true,
        ProbeResult::Error => !matches!(
            p.error_class,
            Some(
                BlockedReserved
                    | BlockedList
                    | ConnectRefused
                    | ConnectTimeout
                    | ConnectUnreachable
                    | ConnectError
                    | GreetingTimeout
            ) | None
        ),
    }
}

fn tls_ok(p: &SmtpProbeRecord) -> bool {
    p.result == ProbeResult::StarttlsOk
}

fn host_dane(mx_dnssec: DnssecStatus, h: &HostFacts<'_>) -> DaneVerdict {
    let d = h.dns;
    if d.tlsa.is_empty() {
        return if d.tlsa_dnssec == DnssecStatus::Bogus {
            DaneVerdict::Bogus
        } else {
            DaneVerdict::None
        };
    }
    let chain = [mx_dnssec, d.address_dnssec, d.tlsa_dnssec];
    if chain.contains(&DnssecStatus::Bogus) {
        return DaneVerdict::Bogus;
    }
    if !chain.iter().all(|s| *s == DnssecStatus::Secure) {
        return DaneVerdict::Insecure;
    }
    let answering: Vec<&&SmtpProbeRecord> = h.probes.iter().filter(|p| answered(p)).collect();
    if answering.is_empty() {
        return DaneVerdict::NoTls;
    }
    answering
        .iter()
        .map(|p| match p.dane {
            // A probe that saw secure TLSA but could not check it (no TLS) is a downgrade.
            DaneVerdict::None | DaneVerdict::Insecure if !tls_ok(p) => DaneVerdict::NoTls,
            v => v,
        })
        .max_by_key(|v| v.severity())
        .unwrap_or(DaneVerdict::NoTls)
}

fn aggregate_dane(hosts: &[DaneVerdict]) -> DaneVerdict {
    use DaneVerdict::*;
    if hosts.is_empty() {
        return None;
    }
    let worst = hosts
        .iter()
        .copied()
        .max_by_key(|v| v.severity())
        .unwrap_or(None);
    if matches!(worst, Bogus | NoTls | Mismatch | Unusable) {
        return worst;
    }
    let valid = hosts.iter().filter(|v| **v == Valid).count();
    if valid == hosts.len() {
        Valid
    } else if valid > 0 {
        Partial
    } else if hosts.contains(&Insecure) {
        Insecure
    } else {
        None
    }
}

/// Assembles the `domain` record.
pub fn assemble(
    facts: &DomainFacts<'_>,
    scan_id: uuid::Uuid,
    vantage: &str,
    scanned_at: UtcTime,
) -> DomainRecord {
    let probes: Vec<&SmtpProbeRecord> = facts
        .hosts
        .iter()
        .flat_map(|h| h.probes.iter().copied())
        .collect();
    let answering: Vec<&SmtpProbeRecord> = probes.iter().copied().filter(|p| answered(p)).collect();
    let has_mail_hosts =
        matches!(facts.mx_kind, MxKind::Mx | MxKind::Implicit) && !facts.mx_hosts.is_empty();

    let starttls = if !has_mail_hosts {
        StarttlsVerdict::NotApplicable
    } else if answering.is_empty() {
        StarttlsVerdict::Unreachable
    } else {
        match answering.iter().filter(|p| tls_ok(p)).count() {
            0 => StarttlsVerdict::None,
            n if n == answering.len() => StarttlsVerdict::All,
            _ => StarttlsVerdict::Some,
        }
    };

    let with_tls: Vec<&SmtpProbeRecord> = probes.iter().copied().filter(|p| tls_ok(p)).collect();
    let pkix = if with_tls.is_empty() {
        PkixVerdict::NotApplicable
    } else {
        match with_tls
            .iter()
            .filter(|p| p.pkix_valid == Some(true))
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
    let dane = aggregate_dane(&host_verdicts);

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
        .flat_map(|p| p.stripping_signals.iter().copied())
        .collect();
    let host_secure_tlsa = |h: &HostFacts<'_>| {
        !h.dns.tlsa.is_empty()
            && [facts.mx_dnssec, h.dns.address_dnssec, h.dns.tlsa_dnssec]
                .iter()
                .all(|s| *s == DnssecStatus::Secure)
    };
    let enforce = mta_sts == MtaStsStatus::Enforce;
    let missing = facts.hosts.iter().any(|h| {
        (enforce || host_secure_tlsa(h))
            && h.probes
                .iter()
                .any(|p| answered(p) && !p.starttls_advertised)
    });
    if missing {
        signals.insert(StrippingSignal::MissingDespitePolicy);
    }

    // RFC 8460 reports failures against a policy: a probe's results count only on hosts under
    // DANE (secure TLSA); the MTA-STS side brings its own (`sts_tlsrpt_results`).
    let mut tlsrpt: BTreeSet<TlsRptResult> = facts
        .hosts
        .iter()
        .filter(|h| host_secure_tlsa(h))
        .flat_map(|h| {
            h.probes
                .iter()
                .flat_map(|p| p.tlsrpt_results.iter().copied())
        })
        .collect();
    tlsrpt.extend(facts.sts_tlsrpt_results.iter().copied());
    if dane == DaneVerdict::Bogus {
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
        if let Some(c) = p.error_class {
            errors.push(format!("smtp:{c}: {}:{}", p.ip, p.port));
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
        stripping_suspected: !stripping_signals.is_empty(),
        stripping_signals,
        errors,
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
        h.tlsa_dnssec = dnssec;
        if !tlsa {
            h.tlsa.clear();
        }
        h
    }

    fn probe(
        result: ProbeResult,
        class: Option<ProbeErrorClass>,
        dane: DaneVerdict,
        pkix: bool,
    ) -> SmtpProbeRecord {
        let mut p = examples::smtp_probe();
        p.result = result;
        p.error_class = class;
        p.dane = dane;
        p.pkix_valid = if result == ProbeResult::StarttlsOk {
            Some(pkix)
        } else {
            None
        };
        p.starttls_advertised = result == ProbeResult::StarttlsOk;
        p.stripping_signals.clear();
        p.tlsrpt_results.clear();
        p
    }

    fn facts<'a>(
        hosts: Vec<HostFacts<'a>>,
        names: &'a [String],
        mx_dnssec: DnssecStatus,
    ) -> DomainFacts<'a> {
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

    fn run(f: &DomainFacts<'_>) -> DomainRecord {
        assemble(f, examples::scan_id(), "default", UtcTime::from_unix(0))
    }

    #[test]
    fn good_domain_is_all_all_valid() {
        let names = vec!["mx1.example.com".to_string()];
        let h = host("mx1.example.com", true, DnssecStatus::Secure);
        let p = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Valid, true);
        let r = run(&facts(
            vec![HostFacts {
                dns: &h,
                probes: vec![&p],
            }],
            &names,
            DnssecStatus::Secure,
        ));
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
        let names = vec!["a.example.com".to_string(), "b.example.com".to_string()];
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
            &names,
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
        assert!(!r.stripping_suspected);
    }

    #[test]
    fn unreachable_and_na() {
        let names = vec!["mx.example.com".to_string()];
        let h = host("mx.example.com", false, DnssecStatus::Insecure);
        let p = probe(
            ProbeResult::Error,
            Some(ProbeErrorClass::ConnectRefused),
            DaneVerdict::None,
            false,
        );
        let r = run(&facts(
            vec![HostFacts {
                dns: &h,
                probes: vec![&p],
            }],
            &names,
            DnssecStatus::Insecure,
        ));
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

        let mut f = facts(vec![], &[], DnssecStatus::Secure);
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
    fn dane_classes() {
        let names = vec!["mx.example.com".to_string()];
        // TLSA in an unsigned zone: insecure, never valid.
        let h = host("mx.example.com", true, DnssecStatus::Insecure);
        let p = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Insecure, true);
        assert_eq!(
            run(&facts(
                vec![HostFacts {
                    dns: &h,
                    probes: vec![&p]
                }],
                &names,
                DnssecStatus::Secure
            ))
            .dane,
            DaneVerdict::Insecure
        );
        // Secure TLSA but the MX RRset is insecure: insecure (Postfix does not use the TLSA).
        let h = host("mx.example.com", true, DnssecStatus::Secure);
        assert_eq!(
            run(&facts(
                vec![HostFacts {
                    dns: &h,
                    probes: vec![&p]
                }],
                &names,
                DnssecStatus::Insecure
            ))
            .dane,
            DaneVerdict::Insecure
        );
        // Bogus.
        let hb = host("mx.example.com", true, DnssecStatus::Bogus);
        let r = run(&facts(
            vec![HostFacts {
                dns: &hb,
                probes: vec![&p],
            }],
            &names,
            DnssecStatus::Secure,
        ));
        assert_eq!(r.dane, DaneVerdict::Bogus);
        assert!(r.tlsrpt_results.contains(&TlsRptResult::DnssecInvalid));
        // Secure TLSA, no STARTTLS: no_tls, and missing_despite_policy.
        let pn = probe(ProbeResult::NoStarttls, None, DaneVerdict::NoTls, false);
        let r = run(&facts(
            vec![HostFacts {
                dns: &h,
                probes: vec![&pn],
            }],
            &names,
            DnssecStatus::Secure,
        ));
        assert_eq!(r.dane, DaneVerdict::NoTls);
        assert!(r.stripping_suspected);
        // Mismatch beats valid on another host.
        let names2 = vec!["a".to_string(), "b".to_string()];
        let pv = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Valid, true);
        let pm = probe(ProbeResult::StarttlsOk, None, DaneVerdict::Mismatch, true);
        let r = run(&facts(
            vec![
                HostFacts {
                    dns: &h,
                    probes: vec![&pv],
                },
                HostFacts {
                    dns: &h,
                    probes: vec![&pm],
                },
            ],
            &names2,
            DnssecStatus::Secure,
        ));
        assert_eq!(r.dane, DaneVerdict::Mismatch);
    }

    #[test]
    fn mta_sts_fields_come_from_the_policy_record() {
        let names = vec!["mx.example.com".to_string()];
        let h = host("mx.example.com", false, DnssecStatus::Insecure);
        let p = probe(ProbeResult::NoStarttls, None, DaneVerdict::None, false);
        let mut pol = examples::mta_sts_policy();
        pol.status = MtaStsStatus::Enforce;
        pol.error_class = None;
        let mut f = facts(
            vec![HostFacts {
                dns: &h,
                probes: vec![&p],
            }],
            &names,
            DnssecStatus::Insecure,
        );
        f.mta_sts = Some(&pol);
        f.mta_sts_compliant = Some(false);
        let r = run(&f);
        assert_eq!(r.mta_sts, MtaStsStatus::Enforce);
        assert_eq!(r.mta_sts_error, None);
        assert_eq!(r.mta_sts_compliant, Some(false));
        assert!(r
            .stripping_signals
            .contains(&StrippingSignal::MissingDespitePolicy));

        pol.status = MtaStsStatus::FetchError;
        pol.error_class = Some(MtaStsError::Redirect);
        pol.mode = None;
        let mut f = facts(
            vec![HostFacts {
                dns: &h,
                probes: vec![&p],
            }],
            &names,
            DnssecStatus::Insecure,
        );
        f.mta_sts = Some(&pol);
        f.mta_sts_compliant = Some(true);
        let r = run(&f);
        assert_eq!(
            (r.mta_sts, r.mta_sts_error, r.mta_sts_compliant),
            (MtaStsStatus::FetchError, Some(MtaStsError::Redirect), None)
        );
        assert!(!r.stripping_suspected);
    }
}
