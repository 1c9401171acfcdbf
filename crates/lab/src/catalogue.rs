//! The case catalogue and zone builder: every lab case as DNS data (the `lab.test` zones), the
//! SMTP hosts and middleboxes that serve it, the MTA-STS policies, and the verdict a correct
//! scan reports for it ([`ExpectedPosture`]). Built once at start; [`Builder::finish`] hands the
//! zones to the DNS server, the running [`World`] to the other servers and the expectations to
//! the oracle's users.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, CNAME, MX, NS, TLSA, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use mxray_model::{
    DaneVerdict, DnssecStatus, DomainVerdict, MtaStsError, MtaStsStatus, MxKind, PkixVerdict,
    StarttlsVerdict, StrippingSignal, TlsRptResult,
};

use crate::dns::{self, Signing, Zone};
use crate::error::LabError;
use crate::oracle::{ExpectedPosture, PostureExt as _};
use crate::pki::Pki;
use crate::spec::{
    CertKind, HostSpec, PolicySpec, SmtpBehaviour, APEX, BOGUS_CHILD, DNS_IP, HTTPS_IP,
    INSECURE_CHILD, STRIP_BACKEND_IP,
};
use crate::synth::{self, Synthetic};
use crate::world::{Middlebox, World};

/// What the catalogue builds: the zones for the DNS server, the world for the other servers,
/// the expectations for the oracle's users (case domains first, then the synthetic ones).
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) zones: Vec<Zone>,
    pub(crate) world: World,
    pub(crate) expected: Vec<ExpectedPosture>,
}

fn name(s: &str) -> Result<Name, LabError> {
    let fq = if s.ends_with('.') {
        s.to_owned()
    } else {
        format!("{s}.")
    };
    Name::from_ascii(&fq).map_err(|e| LabError::Dns(format!("bad name {s}: {e}")))
}

/// Builds the case zones, hosts and expectations.
pub(crate) struct Builder<'a> {
    pki: &'a Pki,
    lab: Zone,
    insecure: Zone,
    bogus: Zone,
    hosts: HashMap<Ipv4Addr, HostSpec>,
    middleboxes: Vec<Middlebox>,
    policies: HashMap<String, PolicySpec>,
    expected: Vec<ExpectedPosture>,
    next_host: u8,
    epoch: u32,
}

impl<'a> Builder<'a> {
    pub(crate) fn new(pki: &'a Pki, epoch: u32) -> Result<Self, LabError> {
        Ok(Builder {
            pki,
            lab: Zone::new_static(name(APEX)?, Signing::Signed)?,
            insecure: Zone::new_static(name(INSECURE_CHILD)?, Signing::Unsigned)?,
            bogus: Zone::new_static(name(BOGUS_CHILD)?, Signing::BogusTlsa)?,
            hosts: HashMap::new(),
            middleboxes: Vec::new(),
            policies: HashMap::new(),
            expected: Vec::new(),
            next_host: 1,
            epoch,
        })
    }

    fn add(&mut self, owner: &str, rdata: RData) -> Result<(), LabError> {
        let n = name(owner)?;
        let zone = if name(BOGUS_CHILD)?.zone_of(&n) {
            &mut self.bogus
        } else if name(INSECURE_CHILD)?.zone_of(&n) {
            &mut self.insecure
        } else {
            &mut self.lab
        };
        zone.add(n, rdata);
        Ok(())
    }

    fn next_ip(&mut self) -> Result<Ipv4Addr, LabError> {
        let n = self.next_host;
        self.next_host = n
            .checked_add(1)
            .ok_or(LabError::Dns("too many case hosts".into()))?;
        Ok(Ipv4Addr::new(127, 0, 10, n))
    }

    /// A host with an A record and an SMTP server.
    fn host(
        &mut self,
        host: &str,
        behaviour: SmtpBehaviour,
        cert: CertKind,
    ) -> Result<Ipv4Addr, LabError> {
        let ip = self.next_ip()?;
        self.add(host, RData::A(A(ip)))?;
        self.hosts
            .insert(ip, HostSpec::named(host, behaviour, cert));
        Ok(ip)
    }

    /// A host with an A record and no listener: connections are refused.
    fn closed_host(&mut self, host: &str) -> Result<Ipv4Addr, LabError> {
        let ip = self.next_ip()?;
        self.add(host, RData::A(A(ip)))?;
        Ok(ip)
    }

    /// Queries for `owner`/`rtype` answer SERVFAIL (the zone's other data is untouched).
    fn servfail(&mut self, owner: &str, rtype: RecordType) -> Result<(), LabError> {
        let n = name(owner)?;
        let zone = if name(BOGUS_CHILD)?.zone_of(&n) {
            &mut self.bogus
        } else if name(INSECURE_CHILD)?.zone_of(&n) {
            &mut self.insecure
        } else {
            &mut self.lab
        };
        zone.add_servfail(n, rtype);
        Ok(())
    }

    fn mx(&mut self, domain: &str, pref: u16, host: &str) -> Result<(), LabError> {
        self.add(domain, RData::MX(MX::new(pref, name(host)?)))
    }

    fn tlsa(
        &mut self,
        host: &str,
        usage: CertUsage,
        selector: Selector,
        data: Vec<u8>,
    ) -> Result<(), LabError> {
        let owner = format!("_25._tcp.{host}");
        self.add(
            &owner,
            RData::TLSA(TLSA::new(usage, selector, Matching::Sha256, data)),
        )
    }

    /// A TLSA record with any matching type (`tlsa` is SHA-256).
    fn tlsa_m(
        &mut self,
        host: &str,
        usage: CertUsage,
        selector: Selector,
        matching: Matching,
        data: Vec<u8>,
    ) -> Result<(), LabError> {
        let owner = format!("_25._tcp.{host}");
        self.add(
            &owner,
            RData::TLSA(TLSA::new(usage, selector, matching, data)),
        )
    }

    fn txt(&mut self, owner: &str, text: &str) -> Result<(), LabError> {
        self.add(owner, RData::TXT(TXT::new(vec![text.to_owned()])))
    }

    fn sts_txt(&mut self, domain: &str) -> Result<(), LabError> {
        self.txt(
            &format!("_mta-sts.{domain}"),
            "v=STSv1; id=20261129T000000;",
        )?;
        self.add(&format!("mta-sts.{domain}"), RData::A(A(HTTPS_IP)))
    }

    fn sts(&mut self, domain: &str, spec: PolicySpec) -> Result<(), LabError> {
        self.sts_txt(domain)?;
        self.policies.insert(format!("mta-sts.{domain}"), spec);
        Ok(())
    }

    fn tlsrpt(&mut self, domain: &str) -> Result<(), LabError> {
        self.txt(
            &format!("_smtp._tls.{domain}"),
            &format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}"),
        )
    }

    fn expect(&mut self, e: ExpectedPosture) {
        self.expected.push(e);
    }

    /// A case domain with one good MX `mx.<domain>`; returns the MX host name.
    fn simple(
        &mut self,
        domain: &str,
        behaviour: SmtpBehaviour,
        cert: CertKind,
    ) -> Result<String, LabError> {
        let host = format!("mx.{domain}");
        self.host(&host, behaviour, cert)?;
        self.mx(domain, 10, &host)?;
        Ok(host)
    }

    /// Adds every case of the table.
    pub(crate) fn cases(&mut self) -> Result<(), LabError> {
        use DnssecStatus::Secure;
        let ee = self.pki.leaf_spki_sha256();
        let ta = self.pki.ca_cert_sha256();

        // --- DANE and DNSSEC ---
        let d = "good.lab.test";
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.tlsa(&h, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        self.sts(d, PolicySpec::policy("enforce", &[&h]))?;
        self.tlsrpt(d)?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.dane = DaneVerdict::Valid;
        p.tls_rpt = true;
        self.expect(ExpectedPosture::same(
            d,
            "good",
            "STARTTLS, valid certificate, DANE-EE 3 1 1 matching, MTA-STS enforce covering the MX, TLS-RPT",
            p.sts(MtaStsStatus::Enforce, None, Some(true)),
        ));

        let d = "dane-ta.lab.test";
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.tlsa(&h, CertUsage::DaneTa, Selector::Full, ta.clone())?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.dane = DaneVerdict::Valid;
        self.expect(ExpectedPosture::same(
            d,
            "dane-ta",
            "DANE-TA 2 0 1 on the lab CA (sent in the chain)",
            p,
        ));

        let d = "tlsa-mismatch.lab.test";
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
        let wrong: Vec<u8> = ee.iter().map(|b| b ^ 0xff).collect();
        self.tlsa(&h, CertUsage::DaneEe, Selector::Spki, wrong)?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.dane = DaneVerdict::Mismatch;
        self.expect(ExpectedPosture::same(
            d,
            "tlsa-mismatch",
            "secure DANE-EE 3 1 1 that matches no presented key",
            p.report(TlsRptResult::TlsaInvalid),
        ));

        let d = INSECURE_CHILD;
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.tlsa(&h, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        let mut p = DomainVerdict::plain_good(&[&h], DnssecStatus::Insecure);
        p.dane = DaneVerdict::Insecure;
        self.expect(ExpectedPosture::same(
            d,
            "tlsa-unsigned",
            "matching TLSA, but in the unsigned delegated child (no DS): must be ignored",
            p,
        ));

        let d = BOGUS_CHILD;
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.tlsa(&h, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.dane = DaneVerdict::Bogus;
        self.expect(ExpectedPosture::same(
            d,
            "tlsa-bogus",
            "signed child whose TLSA RRSIG is corrupt: TLSA validation fails (MX, A still secure)",
            p.report(TlsRptResult::DnssecInvalid),
        ));

        // --- STARTTLS and certificates ---
        let d = "no-starttls.lab.test";
        let h = self.simple(d, SmtpBehaviour::NoStarttls, CertKind::Valid)?;
        self.expect(ExpectedPosture::same(
            d,
            "no-starttls",
            "EHLO without STARTTLS",
            DomainVerdict::plain_good(&[&h], Secure).no_tls(),
        ));

        for (case, kind, about) in [
            (
                "self-signed",
                CertKind::SelfSigned,
                "self-signed certificate",
            ),
            (
                "expired",
                CertKind::Expired,
                "lab-CA certificate expired 30 days ago",
            ),
            (
                "wrong-name",
                CertKind::WrongName,
                "lab-CA certificate for wrong-name.lab.test",
            ),
        ] {
            let d = format!("{case}.lab.test");
            let h = self.simple(&d, SmtpBehaviour::Starttls, kind)?;
            let mut p = DomainVerdict::plain_good(&[&h], Secure);
            p.pkix = PkixVerdict::None;
            self.expect(ExpectedPosture::same(&d, case, about, p));
        }

        let d = "starttls-454.lab.test";
        let h = self.simple(d, SmtpBehaviour::Reject454, CertKind::Valid)?;
        self.expect(ExpectedPosture::same(
            d,
            "starttls-454",
            "STARTTLS advertised, the command answered 454",
            DomainVerdict::plain_good(&[&h], Secure)
                .no_tls()
                .signal(StrippingSignal::StarttlsRejected),
        ));

        let d = "tls-fail.lab.test";
        let h = self.simple(d, SmtpBehaviour::TlsFailAfterReady, CertKind::Valid)?;
        self.expect(ExpectedPosture::same(
            d,
            "tls-fail-after-220",
            "220 Ready to start TLS, then garbage and close instead of a handshake",
            DomainVerdict::plain_good(&[&h], Secure)
                .no_tls()
                .signal(StrippingSignal::TlsFailedAfterReady),
        ));

        // --- MTA-STS ---
        let sts_cases: Vec<(&str, &str, PolicySpecFor, DomainVerdict)> = vec![
            (
                "sts-testing",
                "MTA-STS mode testing covering the MX",
                PolicySpecFor::Mode("testing"),
                sts_p(MtaStsStatus::Testing, None, Some(true)),
            ),
            (
                "sts-none",
                "MTA-STS mode none",
                PolicySpecFor::Mode("none"),
                sts_p(MtaStsStatus::ModeNone, None, Some(true)),
            ),
            (
                "sts-mx-outside",
                "MTA-STS enforce whose mx pattern does not cover the MX",
                PolicySpecFor::Outside,
                sts_p(MtaStsStatus::Enforce, None, Some(false))
                    .report(TlsRptResult::ValidationFailure),
            ),
            (
                "sts-redirect",
                "policy URL answers 301",
                PolicySpecFor::Redirect,
                sts_p(MtaStsStatus::FetchError, Some(MtaStsError::Redirect), None)
                    .report(TlsRptResult::StsPolicyFetchError),
            ),
            (
                "sts-404",
                "policy URL answers 404",
                PolicySpecFor::Status(404),
                sts_p(
                    MtaStsStatus::FetchError,
                    Some(MtaStsError::HttpStatus),
                    None,
                )
                .report(TlsRptResult::StsPolicyFetchError),
            ),
            (
                "sts-content-type",
                "policy served as text/html",
                PolicySpecFor::ContentType,
                sts_p(
                    MtaStsStatus::FetchError,
                    Some(MtaStsError::ContentType),
                    None,
                )
                .report(TlsRptResult::StsPolicyFetchError),
            ),
            (
                "sts-invalid",
                "policy body that is not a valid STSv1 policy",
                PolicySpecFor::Invalid,
                sts_p(MtaStsStatus::PolicyInvalid, None, None)
                    .report(TlsRptResult::StsPolicyInvalid),
            ),
            (
                "sts-bad-cert",
                "policy host presents a self-signed certificate",
                PolicySpecFor::BadCert,
                sts_p(MtaStsStatus::FetchError, Some(MtaStsError::Cert), None)
                    .report(TlsRptResult::StsWebpkiInvalid),
            ),
            (
                "sts-two-txt",
                "two v=STSv1 TXT records at _mta-sts",
                PolicySpecFor::TwoTxt,
                sts_p(MtaStsStatus::TxtInvalid, None, None),
            ),
        ];
        for (case, about, how, mut p) in sts_cases {
            let d = format!("{case}.lab.test");
            let h = self.simple(&d, SmtpBehaviour::Starttls, CertKind::Valid)?;
            p.mx_hosts = vec![h.clone()];
            let spec = match how {
                PolicySpecFor::Mode(m) => PolicySpec::policy(m, &[&h]),
                PolicySpecFor::Outside => PolicySpec::policy("enforce", &["mx.elsewhere.lab.test"]),
                PolicySpecFor::Redirect => PolicySpec {
                    status: 301,
                    location: Some("https://mta-sts.good.lab.test/.well-known/mta-sts.txt".into()),
                    ..PolicySpec::policy("enforce", &[&h])
                },
                PolicySpecFor::Status(s) => PolicySpec {
                    status: s,
                    ..PolicySpec::policy("enforce", &[&h])
                },
                PolicySpecFor::ContentType => PolicySpec {
                    content_type: "text/html".into(),
                    ..PolicySpec::policy("enforce", &[&h])
                },
                PolicySpecFor::Invalid => PolicySpec {
                    body: "version: STSv1\r\nmode: sometimes\r\nmax_age: soon\r\n".into(),
                    ..PolicySpec::policy("enforce", &[&h])
                },
                PolicySpecFor::BadCert => PolicySpec {
                    cert: CertKind::SelfSigned,
                    ..PolicySpec::policy("enforce", &[&h])
                },
                PolicySpecFor::TwoTxt => {
                    self.txt(&format!("_mta-sts.{d}"), "v=STSv1; id=20260101T000000;")?;
                    PolicySpec::policy("enforce", &[&h])
                }
            };
            self.sts(&d, spec)?;
            self.expect(ExpectedPosture::same(&d, case, about, p));
        }

        // --- MX shapes ---
        let d = "null-mx.lab.test";
        self.add(d, RData::MX(MX::new(0, Name::root())))?;
        self.expect(ExpectedPosture::same(
            d,
            "null-mx",
            "MX 0 . (RFC 7505)",
            DomainVerdict::no_hosts(MxKind::NullMx, Secure),
        ));

        let d = "implicit.lab.test";
        self.host(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
        let mut p = DomainVerdict::plain_good(&[d], Secure);
        p.mx_kind = MxKind::Implicit;
        self.expect(ExpectedPosture::same(
            d,
            "implicit-mx",
            "no MX, an A record at the domain (RFC 5321 §5.1)",
            p,
        ));

        let d = "mx-cname.lab.test";
        let alias = format!("mx.{d}");
        let target = format!("host.{d}");
        let ip = self.next_ip()?;
        self.add(&target, RData::A(A(ip)))?;
        self.add(&alias, RData::CNAME(CNAME(name(&target)?)))?;
        self.hosts.insert(
            ip,
            HostSpec {
                name: target.clone(),
                behaviour: SmtpBehaviour::Starttls,
                cert: CertKind::Valid,
                cert_names: Some(vec![alias.clone(), target.clone()]),
            },
        );
        self.mx(d, 10, &alias)?;
        self.expect(ExpectedPosture::same(
            d,
            "mx-cname",
            "the MX name is a CNAME to the real host (certificate names both)",
            DomainVerdict::plain_good(&[&alias], Secure),
        ));

        let d = "mx-no-address.lab.test";
        let h = format!("mx.{d}");
        self.mx(d, 10, &h)?;
        self.txt(&h, "this MX host has no address records")?;
        let mut p = DomainVerdict::no_hosts(MxKind::Mx, Secure);
        p.mx_hosts = vec![h.clone()];
        p.starttls = StarttlsVerdict::Unreachable;
        self.expect(ExpectedPosture::same(
            d,
            "mx-no-address",
            "the MX host exists but has no A/AAAA",
            p,
        ));

        let d = "two-mx.lab.test";
        let h1 = format!("mx1.{d}");
        let h2 = format!("mx2.{d}");
        self.host(&h1, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.host(&h2, SmtpBehaviour::NoStarttls, CertKind::Valid)?;
        self.mx(d, 10, &h1)?;
        self.mx(d, 20, &h2)?;
        let mut p = DomainVerdict::plain_good(&[&h1, &h2], Secure);
        p.starttls = StarttlsVerdict::Some;
        self.expect(ExpectedPosture::same(
            d,
            "two-mx-one-plain",
            "two MX, the second without STARTTLS",
            p,
        ));

        let d = "tarpit.lab.test";
        let h = self.simple(d, SmtpBehaviour::Tarpit, CertKind::Valid)?;
        let mut p = DomainVerdict::no_hosts(MxKind::Mx, Secure);
        p.mx_hosts = vec![h];
        p.starttls = StarttlsVerdict::Unreachable;
        self.expect(ExpectedPosture::same(
            d,
            "tarpit",
            "accepts TCP, never greets (holds 2 minutes)",
            p,
        ));

        // --- the stripping middlebox ---
        let d = "stripped.lab.test";
        let h = format!("mx.{d}");
        let proxy_ip = self.next_ip()?;
        self.add(&h, RData::A(A(proxy_ip)))?;
        self.mx(d, 10, &h)?;
        self.hosts.insert(
            STRIP_BACKEND_IP,
            HostSpec::named(&h, SmtpBehaviour::Starttls, CertKind::Valid),
        );
        self.middleboxes.push(Middlebox {
            listen: proxy_ip,
            backend: STRIP_BACKEND_IP,
            everyone: false,
        });
        let clean = DomainVerdict::plain_good(&[&h], Secure);
        let isp = clean
            .clone()
            .no_tls()
            .signal(StrippingSignal::StarttlsMangled);
        self.expect(ExpectedPosture {
            domain: d.to_owned(),
            case: "stripped".into(),
            about:
                "behind a middlebox that masks STARTTLS as XXXXXXXA for clients from 127.0.99.0/24"
                    .into(),
            clean,
            isp,
        });

        // --- change over time (--lab-epoch): STARTTLS offered in epoch 0, stripped for every
        // client from epoch 1 on ---
        let d = "regress.lab.test";
        let h = format!("mx.{d}");
        let good = DomainVerdict::plain_good(&[&h], Secure);
        if self.epoch == 0 {
            self.simple(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
            self.expect(ExpectedPosture::same(
                d,
                "regress",
                "offers STARTTLS in epoch 0; stripped for everyone from epoch 1 (--lab-epoch)",
                good,
            ));
        } else {
            let proxy_ip = self.next_ip()?;
            let backend_ip = self.next_ip()?;
            self.add(&h, RData::A(A(proxy_ip)))?;
            self.mx(d, 10, &h)?;
            self.hosts.insert(
                backend_ip,
                HostSpec::named(&h, SmtpBehaviour::Starttls, CertKind::Valid),
            );
            self.middleboxes.push(Middlebox {
                listen: proxy_ip,
                backend: backend_ip,
                everyone: true,
            });
            self.expect(ExpectedPosture::same(
                d,
                "regress",
                "epoch >= 1: behind a middlebox that masks STARTTLS for every client",
                good.no_tls().signal(StrippingSignal::StarttlsMangled),
            ));
        }

        self.verdict_cases()?;

        // Shared MX hosts of the synthetic domains live in the signed apex.
        for k in 1..=synth::SHARED_HOSTS {
            let host = synth::shared_host_name(k);
            let ip = synth::shared_host_ip(k);
            self.add(&host, RData::A(A(ip)))?;
            self.hosts.insert(
                ip,
                HostSpec::named(&host, SmtpBehaviour::Starttls, CertKind::Valid),
            );
        }
        Ok(())
    }

    /// The cases of issues 14 and 15: verdicts that must hold under shared hosting, DNSSEC
    /// failures, dead servers, decorative banners, RFC 7672 details and legacy TLS. Each one
    /// is a domain the verdict code before those fixes judged wrongly; its `about` says what
    /// it pins (docs/verdicts.md states the rules).
    fn verdict_cases(&mut self) -> Result<(), LabError> {
        use DnssecStatus::{Insecure, Secure};
        let ee = self.pki.leaf_spki_sha256();
        let ta = self.pki.ca_cert_sha256();

        // --- one DANE host, two domains (RFC 7672 §2.2.1): a probe is a fact about the
        // host, the verdict is the domain's, whichever domain is scanned first ---
        let h = "mx.dane-shared.lab.test";
        self.host(h, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.tlsa(h, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        let d = "dane-shared.lab.test";
        self.mx(d, 10, h)?;
        let mut p = DomainVerdict::plain_good(&[h], Secure);
        p.dane = DaneVerdict::Valid;
        self.expect(ExpectedPosture::same(
            d,
            "shared-dane-signed",
            "signed MX to a DANE host that an unsigned-MX domain also uses: dane=valid in any input order (was insecure when the unsigned domain came first)",
            p,
        ));
        let d = "shared.insecure.lab.test";
        self.mx(d, 10, h)?;
        let mut p = DomainVerdict::plain_good(&[h], Insecure);
        p.dane = DaneVerdict::Insecure;
        self.expect(ExpectedPosture::same(
            d,
            "shared-dane-unsigned",
            "unsigned MX (insecure child) to the same DANE host: dane=insecure, the host's match stays in the probe (was valid when the signed domain came first)",
            p,
        ));

        let h = "mx.dane-plain.lab.test";
        self.host(h, SmtpBehaviour::NoStarttls, CertKind::Valid)?;
        self.tlsa(h, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        let d = "dane-plain.lab.test";
        self.mx(d, 10, h)?;
        let mut p = DomainVerdict::plain_good(&[h], Secure)
            .no_tls()
            .signal(StrippingSignal::MissingDespitePolicy)
            .report(TlsRptResult::StarttlsNotSupported);
        p.dane = DaneVerdict::NoTls;
        self.expect(ExpectedPosture::same(
            d,
            "dane-no-starttls",
            "secure TLSA, EHLO without STARTTLS, a forced STARTTLS answered 502: dane=no_tls, missing_despite_policy is a weak signal only (stripping_suspected was true)",
            p,
        ));
        let d = "plain.insecure.lab.test";
        self.mx(d, 10, h)?;
        let mut p = DomainVerdict::plain_good(&[h], Insecure).no_tls();
        p.dane = DaneVerdict::Insecure;
        self.expect(ExpectedPosture::same(
            d,
            "shared-dane-plain-unsigned",
            "unsigned MX to that DANE host without STARTTLS: no missing_despite_policy, no dnssec result inherited from the signed domain",
            p,
        ));

        // --- DNSSEC failures are bogus, never none (RFC 7672 §2.1.1, §2.2) ---
        let d = "tlsa-servfail.lab.test";
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.servfail(&format!("_25._tcp.{h}"), RecordType::TLSA)?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure).report(TlsRptResult::DnssecInvalid);
        p.dane = DaneVerdict::Bogus;
        self.expect(ExpectedPosture::same(
            d,
            "tlsa-servfail",
            "the TLSA lookup answers SERVFAIL behind a secure A RRset: dane=bogus, dnssec-invalid (RFC 7672 §2.2; was none)",
            p,
        ));

        let d = "aaaa-servfail.lab.test";
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.tlsa(&h, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        self.servfail(&h, RecordType::AAAA)?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.dane = DaneVerdict::Valid;
        self.expect(ExpectedPosture::same(
            d,
            "aaaa-servfail",
            "secure A and matching DANE-EE, the AAAA lookup answers SERVFAIL: dane=valid over IPv4 (an AAAA failure alone does not downgrade a secure A)",
            p,
        ));

        // --- DANE hosts nobody reached are left out (DESIGN.md: unverified) ---
        let d = "dane-down.lab.test";
        let h = format!("mx.{d}");
        self.closed_host(&h)?;
        self.tlsa(&h, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        self.mx(d, 10, &h)?;
        let mut p = DomainVerdict::no_hosts(MxKind::Mx, Secure);
        p.mx_hosts = vec![h.clone()];
        p.starttls = StarttlsVerdict::Unreachable;
        p.dane = DaneVerdict::Unverified;
        self.expect(ExpectedPosture::same(
            d,
            "dane-unreachable",
            "secure DANE-EE on the only MX, whose port refuses connections: dane=unverified, starttls=unreachable, no signal (dane was no_tls)",
            p,
        ));

        let d = "dane-one-down.lab.test";
        let h1 = format!("mx1.{d}");
        let h2 = format!("mx2.{d}");
        self.host(&h1, SmtpBehaviour::Starttls, CertKind::Valid)?;
        self.tlsa(&h1, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        self.closed_host(&h2)?;
        self.tlsa(&h2, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        self.mx(d, 10, &h1)?;
        self.mx(d, 20, &h2)?;
        let mut p = DomainVerdict::plain_good(&[&h1, &h2], Secure);
        p.dane = DaneVerdict::Valid;
        self.expect(ExpectedPosture::same(
            d,
            "dane-one-unreachable",
            "two DANE-EE MX, the second refuses connections: dane follows the reached host (valid), starttls=all (was no_tls)",
            p,
        ));

        // --- stripping: evidence, not noise ---
        let d = "banner-decorative.lab.test";
        let h = self.simple(d, SmtpBehaviour::DecorativeBanner, CertKind::Valid)?;
        self.expect(ExpectedPosture::same(
            d,
            "banner-decorative",
            "greeting framed by lines of stars around '*** Authorized use only ***', STARTTLS intact: no banner_masked",
            DomainVerdict::plain_good(&[&h], Secure),
        ));

        let d = "x-keyword.lab.test";
        let h = self.simple(
            d,
            SmtpBehaviour::MaskedKeywordBesideStarttls,
            CertKind::Valid,
        )?;
        self.expect(ExpectedPosture::same(
            d,
            "x-keyword-beside-starttls",
            "EHLO lists XXXXXXXA and STARTTLS intact: not stripped, no starttls_mangled",
            DomainVerdict::plain_good(&[&h], Secure),
        ));

        let d = "starttls-hidden.lab.test";
        let h = self.simple(d, SmtpBehaviour::HiddenStarttls, CertKind::Valid)?;
        self.tlsa(&h, CertUsage::DaneEe, Selector::Spki, ee.clone())?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure)
            .no_tls()
            .signal(StrippingSignal::MissingDespitePolicy)
            .signal(StrippingSignal::StarttlsForcedOk)
            .report(TlsRptResult::StarttlsNotSupported);
        p.dane = DaneVerdict::NoTls;
        self.expect(ExpectedPosture::same(
            d,
            "starttls-forced-ok",
            "secure TLSA, EHLO omits STARTTLS, a forced STARTTLS gets 220 and TLS completes: starttls_forced_ok, stripping_suspected (was weak only)",
            p,
        ));

        // --- RFC 7671/7672 details ---
        let d = "dane-ta-spki.lab.test";
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::LeafOnly)?;
        let ca_spki = self.pki.ca_spki();
        self.tlsa_m(
            &h,
            CertUsage::DaneTa,
            Selector::Spki,
            Matching::Raw,
            ca_spki.clone(),
        )?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.dane = DaneVerdict::Valid;
        self.expect(ExpectedPosture::same(
            d,
            "dane-ta-2-1-0-unsent",
            "DANE-TA 2 1 0 (the CA's full key), the server sends the leaf alone: the key verifies the leaf's signature (RFC 7671 §5.2.3; was mismatch)",
            p,
        ));

        let d = "dane-ta-digest-unsent.lab.test";
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::LeafOnly)?;
        let spki_digest: Vec<u8> = {
            use sha2::{Digest, Sha256};
            Sha256::digest(&ca_spki).to_vec()
        };
        self.tlsa(&h, CertUsage::DaneTa, Selector::Spki, spki_digest)?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure).report(TlsRptResult::TlsaInvalid);
        p.dane = DaneVerdict::Mismatch;
        self.expect(ExpectedPosture::same(
            d,
            "dane-ta-2-1-1-unsent",
            "DANE-TA 2 1 1 of the CA key, the server omits the CA: a digest cannot verify a signature, mismatch (RFC 7672 §3.2.1: the TA must be sent; the 2 1 0 path must not accept it)",
            p,
        ));

        let d = "dane-ta-cn.lab.test";
        let h = self.simple(d, SmtpBehaviour::Starttls, CertKind::CnOnly)?;
        self.tlsa(&h, CertUsage::DaneTa, Selector::Full, ta.clone())?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.dane = DaneVerdict::Valid;
        p.pkix = PkixVerdict::None;
        self.expect(ExpectedPosture::same(
            d,
            "dane-ta-cn-only",
            "DANE-TA 2 0 1, leaf with the host name in the subject CN and no subjectAltName: dane=valid by CN fallback (RFC 7672 §3.2.2; was mismatch), pkix=none (WebPKI needs a SAN)",
            p,
        ));

        let d = "tlsa-cname.lab.test";
        let alias = format!("mx.{d}");
        let target = format!("host.{d}");
        let ip = self.next_ip()?;
        self.add(&target, RData::A(A(ip)))?;
        self.add(&alias, RData::CNAME(CNAME(name(&target)?)))?;
        self.hosts.insert(
            ip,
            HostSpec::named(&target, SmtpBehaviour::Starttls, CertKind::Valid),
        );
        self.tlsa(&target, CertUsage::DaneTa, Selector::Full, ta.clone())?;
        self.mx(d, 10, &alias)?;
        let mut p = DomainVerdict::plain_good(&[&alias], Secure);
        p.dane = DaneVerdict::Valid;
        self.expect(ExpectedPosture::same(
            d,
            "tlsa-via-cname",
            "MX name is a secure CNAME; DANE-TA at the target, certificate for the target only: SNI and PKIX use the TLSA base domain (RFC 7672 §8.1, §2.2.2), dane=valid, pkix=all (were mismatch, none)",
            p,
        ));

        let d = "tlsa-unusable.lab.test";
        let h = self.simple(d, SmtpBehaviour::NoStarttls, CertKind::Valid)?;
        self.tlsa(&h, CertUsage::PkixEe, Selector::Spki, ee.clone())?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure)
            .no_tls()
            .signal(StrippingSignal::MissingDespitePolicy)
            .report(TlsRptResult::StarttlsNotSupported);
        p.dane = DaneVerdict::NoTls;
        self.expect(ExpectedPosture::same(
            d,
            "tlsa-unusable-no-starttls",
            "a secure RRset of only PKIX-EE (usage 1) records, EHLO without STARTTLS: dane=no_tls, TLS is still mandatory (RFC 7672 §2.2; was unusable)",
            p,
        ));

        let d = "ehlo-mixed-codes.lab.test";
        let h = self.simple(d, SmtpBehaviour::MixedCodeEhlo, CertKind::Valid)?;
        self.expect(ExpectedPosture::same(
            d,
            "ehlo-mixed-codes",
            "multi-line EHLO reply whose continuation lines say 251 (STARTTLS among them): read by the last line's code as Postfix does (was a malformed reply)",
            DomainVerdict::plain_good(&[&h], Secure),
        ));

        // --- issue 15: servers only OpenSSL can talk to ---
        let d = "tls10-only.lab.test";
        let h = self.simple(d, SmtpBehaviour::LegacyTls10, CertKind::Valid)?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.tls_legacy = true;
        self.expect(ExpectedPosture::same(
            d,
            "tls1.0-only",
            "STARTTLS, then TLS 1.0 only (OpenSSL server): completed through the OpenSSL engine, starttls=all, tls_legacy (was tls_incompatible, starttls=none)",
            p,
        ));

        let d = "rsa-1024.lab.test";
        let h = self.simple(d, SmtpBehaviour::WeakRsaKey, CertKind::Valid)?;
        let mut p = DomainVerdict::plain_good(&[&h], Secure);
        p.pkix = PkixVerdict::None;
        self.expect(ExpectedPosture::same(
            d,
            "rsa-1024",
            "TLS 1.2 with an RSA-1024 lab-CA leaf (rustls refuses it): starttls=all through OpenSSL, pkix=none (weak_key), no tls_failed_after_ready",
            p,
        ));
        Ok(())
    }

    /// Finishes: adds NS/DS delegations (of the case children and of `extra_zones`) and the
    /// name server; the synthetic population joins the world and the expectations.
    pub(crate) fn finish(
        mut self,
        synthetic: Arc<Synthetic>,
        extra_zones: Vec<Zone>,
    ) -> Result<Built, LabError> {
        let (ns, a) = dns::ns_a(DNS_IP);
        self.lab.add(ns, a);
        let mut children: Vec<&Zone> = vec![&self.insecure, &self.bogus];
        children.extend(extra_zones.iter());
        let mut delegations = Vec::new();
        for child in children {
            let ds = match child.key() {
                Some(k) => Some(k.ds(child.origin())?),
                None => None,
            };
            delegations.push((child.origin().clone(), ds));
        }
        for (origin, ds) in delegations {
            self.lab
                .add(origin.clone(), RData::NS(NS(name("ns.lab.test")?)));
            if let Some(ds) = ds {
                self.lab.add(origin, RData::DNSSEC(DNSSECRData::DS(ds)));
            }
        }
        let mut expected = self.expected;
        expected.extend(synthetic.expected_all());
        let mut zones = vec![self.lab, self.insecure, self.bogus];
        zones.extend(extra_zones);
        let world = World::new(self.hosts, self.middleboxes, self.policies, synthetic);
        Ok(Built {
            zones,
            world,
            expected,
        })
    }
}

enum PolicySpecFor {
    Mode(&'static str),
    Outside,
    Redirect,
    Status(u16),
    ContentType,
    Invalid,
    BadCert,
    TwoTxt,
}

fn sts_p(
    status: MtaStsStatus,
    error: Option<MtaStsError>,
    compliant: Option<bool>,
) -> DomainVerdict {
    DomainVerdict::plain_good(&[], DnssecStatus::Secure).sts(status, error, compliant)
}
