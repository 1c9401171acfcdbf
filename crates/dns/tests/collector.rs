//! Integration tests of the collector: a real NSD serving signed zones, a real validating
//! Unbound in front (`--dnssec ad`), and local validation straight at NSD
//! (`--dnssec validate` with a trust anchor); plus hostile answers from a fake server.
//! Loopback only.

mod fake;
mod harness;

use std::net::IpAddr;
use std::time::Duration;

use mxray_dns::{DnsCollector, DnsConfig, DnssecMode, TrustAnchorSet};
use mxray_model::{DnsOutcome, DnssecStatus, MxKind};

use harness::{Lab, TLSA_HEX};

fn collector(resolver: std::net::SocketAddr, mode: DnssecMode) -> DnsCollector {
    let mut cfg = DnsConfig::new(vec![resolver]);
    cfg.mode = mode;
    cfg.timeout = Duration::from_secs(2);
    DnsCollector::new(cfg).expect("collector")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Every case of the issue, asserted identically for both modes.
async fn check_all_cases(dns: &DnsCollector, mode: &str) {
    use DnssecStatus::*;

    // Secure MX + TLSA, TXT records joined, two MX hosts in preference order.
    let d = dns.domain("Good.TEST.").await;
    assert_eq!(d.domain, "good.test");
    assert_eq!(d.mx_kind, MxKind::Mx, "{mode}: {d:?}");
    assert_eq!(d.mx_outcome, DnsOutcome::NoError);
    assert_eq!(d.mx_dnssec, Secure, "{mode}: {d:?}");
    assert_eq!(d.mx_hosts, vec!["mx1.good.test", "mx2.good.test"]);
    assert_eq!(d.mta_sts.records, vec!["v=STSv1; id=20240101"], "{mode}");
    assert_eq!(d.mta_sts.dnssec, Secure, "{mode}");
    assert_eq!(
        d.tls_rpt.records,
        vec!["v=TLSRPTv1; rua=mailto:tlsrpt@good.test"]
    );
    assert!(d.errors.is_empty(), "{mode}: {:?}", d.errors);

    let h = dns.host("mx1.good.test").await;
    assert_eq!(h.addresses, vec![ip("127.0.0.10"), ip("::1")], "{mode}");
    assert_eq!(h.address_outcome, DnsOutcome::NoError);
    assert_eq!(h.address_dnssec, Secure, "{mode}: {h:?}");
    assert_eq!(h.tlsa_owner.as_deref(), Some("_25._tcp.mx1.good.test"));
    assert_eq!(h.tlsa_dnssec, Secure, "{mode}: {h:?}");
    assert_eq!(h.tlsa.len(), 1);
    let t = &h.tlsa[0];
    assert_eq!((t.usage, t.selector, t.matching_type), (3, 1, 1));
    assert_eq!(t.data, TLSA_HEX);

    // No TLSA at a secure host: a secure denial.
    let h2 = dns.host("mx2.good.test").await;
    assert_eq!(h2.addresses, vec![ip("127.0.0.11")]);
    assert!(h2.tlsa.is_empty());
    assert_eq!(h2.tlsa_owner, None);
    assert_eq!(h2.tlsa_outcome, DnsOutcome::NxDomain, "{mode}: {h2:?}");
    assert_eq!(h2.tlsa_dnssec, Secure, "{mode}: {h2:?}");

    // Insecure (unsigned, no DS) child zone with TLSA.
    let d = dns.domain("insecure.test").await;
    assert_eq!(d.mx_kind, MxKind::Mx);
    assert_eq!(d.mx_dnssec, Insecure, "{mode}: {d:?}");
    let h = dns.host("mx.insecure.test").await;
    assert_eq!(h.addresses, vec![ip("127.0.0.14")]);
    assert_eq!(h.address_dnssec, Insecure, "{mode}: {h:?}");
    assert_eq!(h.tlsa.len(), 1, "{mode}: {h:?}");
    assert_eq!(h.tlsa_dnssec, Insecure, "{mode}: {h:?}");

    // Bogus child zone: broken MX and TLSA signatures; the A RRset is fine.
    let d = dns.domain("bogus.test").await;
    assert_eq!(d.mx_kind, MxKind::Error, "{mode}: {d:?}");
    assert_eq!(d.mx_outcome, DnsOutcome::ServFail, "{mode}: {d:?}");
    assert_eq!(d.mx_dnssec, Bogus, "{mode}: {d:?}");
    assert!(d.mx_hosts.is_empty());
    assert!(
        d.errors
            .iter()
            .any(|e| e.starts_with("dns:servfail: MX bogus.test")),
        "{mode}: {:?}",
        d.errors
    );
    let h = dns.host("mx.bogus.test").await;
    assert_eq!(h.addresses, vec![ip("127.0.0.15")], "{mode}: {h:?}");
    assert_eq!(h.address_dnssec, Secure, "{mode}: {h:?}");
    assert!(h.tlsa.is_empty(), "bogus TLSA must not be used: {h:?}");
    assert_eq!(h.tlsa_outcome, DnsOutcome::ServFail, "{mode}: {h:?}");
    assert_eq!(h.tlsa_dnssec, Bogus, "{mode}: {h:?}");

    // Null MX.
    let d = dns.domain("nullmx.test").await;
    assert_eq!(d.mx_kind, MxKind::NullMx, "{mode}: {d:?}");
    assert_eq!(d.mx_dnssec, Secure);
    assert!(d.mx_hosts.is_empty());

    // Implicit MX: no MX, an A record at the domain.
    let d = dns.domain("implicit.test").await;
    assert_eq!(d.mx_kind, MxKind::Implicit, "{mode}: {d:?}");
    assert_eq!(d.mx_outcome, DnsOutcome::NoData);
    assert_eq!(d.mx_dnssec, Secure, "{mode}: {d:?}");
    assert_eq!(d.mx_hosts, vec!["implicit.test"]);

    // MX host via CNAME: TLSA of the expanded name first (usage 2 there, 3 at the alias).
    let d = dns.domain("cname.test").await;
    assert_eq!(d.mx_hosts, vec!["alias.cname.test"]);
    let h = dns.host("alias.cname.test").await;
    assert_eq!(h.cname_chain, vec!["real.target.test"], "{mode}: {h:?}");
    assert_eq!(h.addresses, vec![ip("127.0.0.13")]);
    assert_eq!(h.address_dnssec, Secure, "{mode}: {h:?}");
    assert_eq!(h.tlsa_owner.as_deref(), Some("_25._tcp.real.target.test"));
    assert_eq!(h.tlsa.len(), 1);
    assert_eq!(h.tlsa[0].usage, 2);
    assert_eq!(h.tlsa_dnssec, Secure);

    // NXDOMAIN.
    let d = dns.domain("nope.test").await;
    assert_eq!(d.mx_kind, MxKind::None);
    assert_eq!(d.mx_outcome, DnsOutcome::NxDomain);
    assert_eq!(d.mx_dnssec, Secure, "{mode}: {d:?}");
    assert_eq!(d.mta_sts.outcome, DnsOutcome::NxDomain);
    assert!(d.errors.is_empty(), "{:?}", d.errors);

    // NODATA (the name exists, no MX, no address).
    let d = dns.domain("nodata.test").await;
    assert_eq!(d.mx_kind, MxKind::None, "{mode}: {d:?}");
    assert_eq!(d.mx_outcome, DnsOutcome::NoData);
    assert_eq!(d.mx_dnssec, Secure, "{mode}: {d:?}");

    // A TXT RRset too big for 1232 bytes of UDP: truncated, retried over TCP.
    let d = dns.domain("big.test").await;
    assert_eq!(d.mta_sts.outcome, DnsOutcome::NoError, "{mode}: {d:?}");
    assert_eq!(d.mta_sts.records.len(), 40);
    assert_eq!(d.mta_sts.dnssec, Secure);

    // The dns_host record.
    let rec = dns
        .host("mx1.good.test")
        .await
        .to_record(uuid::Uuid::nil(), "test");
    assert_eq!(rec.tlsa_rcode, DnsOutcome::NoError);
    assert_eq!(rec.addresses, vec!["127.0.0.10", "::1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_servers_ad_and_validate_modes_agree() {
    if let Some(why) = harness::missing_servers() {
        eprintln!("skipping: {why}");
        return;
    }
    let lab = Lab::start();

    // --dnssec ad through the validating Unbound.
    let ad = collector(lab.resolver, DnssecMode::Ad);
    check_all_cases(&ad, "ad").await;

    // --dnssec validate straight at NSD, DS trust anchor.
    let anchors = TrustAnchorSet::from_file(&lab.anchor_ds).expect("anchor");
    let v = collector(
        lab.auth,
        DnssecMode::Validate {
            trust_anchors: anchors,
        },
    );
    check_all_cases(&v, "validate/ds").await;
    assert!(
        v.trust_anchor_problems().is_empty(),
        "{:?}",
        v.trust_anchor_problems()
    );

    // --dnssec validate through the validating Unbound (queries carry CD: we validate).
    let anchors = TrustAnchorSet::from_file(&lab.anchor_ds).expect("anchor");
    let vr = collector(
        lab.resolver,
        DnssecMode::Validate {
            trust_anchors: anchors,
        },
    );
    let d = vr.domain("good.test").await;
    assert_eq!(d.mx_dnssec, DnssecStatus::Secure, "{d:?}");
    let d = vr.domain("bogus.test").await;
    assert_eq!(d.mx_dnssec, DnssecStatus::Bogus, "{d:?}");
    let d = vr.domain("insecure.test").await;
    assert_eq!(d.mx_dnssec, DnssecStatus::Insecure, "{d:?}");

    // --dnssec validate with a DNSKEY anchor line.
    let anchors = TrustAnchorSet::from_file(&lab.anchor_dnskey).expect("anchor");
    assert_eq!(anchors.dnskeys.len(), 1);
    let v = collector(
        lab.auth,
        DnssecMode::Validate {
            trust_anchors: anchors,
        },
    );
    let d = v.domain("good.test").await;
    assert_eq!(d.mx_dnssec, DnssecStatus::Secure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_mode_without_anchor_is_never_secure() {
    if let Some(why) = harness::missing_servers() {
        eprintln!("skipping: {why}");
        return;
    }
    let lab = Lab::start();
    let v = collector(
        lab.auth,
        DnssecMode::Validate {
            trust_anchors: TrustAnchorSet::default(),
        },
    );
    let d = v.domain("good.test").await;
    assert_ne!(d.mx_dnssec, DnssecStatus::Secure, "{d:?}");
    let h = v.host("mx1.good.test").await;
    assert_ne!(h.tlsa_dnssec, DnssecStatus::Secure, "{h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_host_lookups_are_coalesced() {
    let server = fake::FakeServer::start(fake::Behaviour::Normal).await;
    let dns = collector(server.addr, DnssecMode::Ad);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let dns = dns.clone();
        tasks.push(tokio::spawn(
            async move { dns.host("mx.shared.test").await },
        ));
    }
    let mut first = None;
    for t in tasks {
        let h = t.await.expect("join");
        assert_eq!(h.addresses, vec![ip("127.0.0.77")]);
        match &first {
            None => first = Some(h),
            Some(f) => assert!(std::sync::Arc::ptr_eq(f, &h)),
        }
    }
    // One A, one AAAA and one TLSA query for 50 callers.
    assert_eq!(server.queries(), 3);
}

mod hostile {
    use super::*;
    use fake::{Behaviour, FakeServer};

    async fn mx_of(b: Behaviour) -> (mxray_dns::DomainDns, FakeServer) {
        let server = FakeServer::start(b).await;
        let mut cfg = DnsConfig::new(vec![server.addr]);
        cfg.timeout = Duration::from_millis(400);
        cfg.backoff = Duration::from_millis(10);
        let dns = DnsCollector::new(cfg).expect("collector");
        let d = tokio::time::timeout(Duration::from_secs(20), dns.domain("victim.test"))
            .await
            .expect("the collector must not hang");
        (d, server)
    }

    #[tokio::test]
    async fn silent_server_times_out_after_bounded_retries() {
        let (d, server) = mx_of(Behaviour::Silent).await;
        assert_eq!(d.mx_kind, MxKind::Error);
        assert_eq!(d.mx_outcome, DnsOutcome::Timeout);
        assert_eq!(d.mx_dnssec, DnssecStatus::Indeterminate);
        assert!(
            d.errors
                .iter()
                .any(|e| e.starts_with("dns:timeout: MX victim.test") && e.contains("3 attempts")),
            "{:?}",
            d.errors
        );
        // 3 lookups (MX and two TXT) x 3 attempts.
        assert_eq!(server.queries(), 9);
    }

    #[tokio::test]
    async fn wrong_ids_are_ignored_and_time_out() {
        // Answers for another ID are strays: no reply, retried as a timeout.
        let (d, server) = mx_of(Behaviour::WrongId).await;
        assert_eq!(d.mx_outcome, DnsOutcome::Timeout, "{d:?}");
        assert_eq!(d.mx_kind, MxKind::Error);
        assert_eq!(server.queries(), 9);
    }

    #[tokio::test]
    async fn garbage_with_our_id_is_malformed_after_retries() {
        let (d, server) = mx_of(Behaviour::Garbage).await;
        assert_eq!(d.mx_outcome, DnsOutcome::Malformed, "{d:?}");
        assert_eq!(server.queries(), 9);
    }

    #[tokio::test]
    async fn refused_is_recorded() {
        let (d, _s) = mx_of(Behaviour::Refused).await;
        assert_eq!(d.mx_outcome, DnsOutcome::Refused, "{d:?}");
        assert_eq!(d.mx_kind, MxKind::Error);
    }

    #[tokio::test]
    async fn cname_loop_is_malformed() {
        let (d, _s) = mx_of(Behaviour::CnameLoop).await;
        assert_eq!(d.mx_outcome, DnsOutcome::Malformed, "{d:?}");
        assert!(
            d.errors.iter().any(|e| e.contains("CNAME loop")),
            "{:?}",
            d.errors
        );
    }

    #[tokio::test]
    async fn cname_chain_across_replies_loop_is_malformed() {
        let (d, _s) = mx_of(Behaviour::CnameLoopAcrossReplies).await;
        assert_eq!(d.mx_outcome, DnsOutcome::Malformed, "{d:?}");
    }

    #[tokio::test]
    async fn truncated_with_broken_tcp_is_truncated() {
        let (d, _s) = mx_of(Behaviour::TruncatedTcpGarbage).await;
        assert_eq!(d.mx_outcome, DnsOutcome::Truncated, "{d:?}");
    }

    #[tokio::test]
    async fn ad_bit_means_secure() {
        let (d, _s) = mx_of(Behaviour::AdSecure).await;
        assert_eq!(d.mx_kind, MxKind::Mx);
        assert_eq!(d.mx_dnssec, DnssecStatus::Secure);
    }

    #[tokio::test]
    async fn servfail_with_dnssec_ede_is_bogus() {
        let (d, _s) = mx_of(Behaviour::ServFailEde).await;
        assert_eq!(d.mx_kind, MxKind::Error);
        assert_eq!(d.mx_outcome, DnsOutcome::ServFail);
        assert_eq!(d.mx_dnssec, DnssecStatus::Bogus);
        assert_eq!(d.ede, vec!["7: exp"]);
    }

    #[tokio::test]
    async fn servfail_answered_with_cd_is_bogus() {
        let (d, _s) = mx_of(Behaviour::ServFailUnlessCd).await;
        assert_eq!(d.mx_outcome, DnsOutcome::ServFail);
        assert_eq!(d.mx_dnssec, DnssecStatus::Bogus);
        assert!(d.mx_hosts.is_empty(), "bogus data must not be used");
    }

    /// In `--dnssec validate` mode queries carry CD, so a SERVFAIL is the resolver's failure to
    /// get an answer, not a validation verdict: there is no denial to prove, and the status is
    /// indeterminate (never bogus), in both modes.
    #[tokio::test]
    async fn plain_servfail_is_indeterminate_in_both_modes() {
        let (d, _s) = mx_of(Behaviour::ServFail).await;
        assert_eq!(d.mx_outcome, DnsOutcome::ServFail, "{d:?}");
        assert_eq!(d.mx_dnssec, DnssecStatus::Indeterminate, "{d:?}");

        let server = FakeServer::start(Behaviour::ServFail).await;
        let mut cfg = DnsConfig::new(vec![server.addr]);
        cfg.timeout = Duration::from_millis(400);
        cfg.backoff = Duration::from_millis(10);
        cfg.mode = DnssecMode::Validate {
            trust_anchors: TrustAnchorSet::default(),
        };
        let dns = DnsCollector::new(cfg).expect("collector");
        let d = tokio::time::timeout(Duration::from_secs(20), dns.domain("victim.test"))
            .await
            .expect("the collector must not hang");
        assert_eq!(d.mx_kind, MxKind::Error, "{d:?}");
        assert_eq!(d.mx_outcome, DnsOutcome::ServFail, "{d:?}");
        assert_eq!(d.mx_dnssec, DnssecStatus::Indeterminate, "{d:?}");
        assert!(
            d.errors.iter().all(|e| !e.contains("denial proof")),
            "{:?}",
            d.errors
        );
        let h = dns.host("mx.victim.test").await;
        assert_eq!(h.address_outcome, DnsOutcome::ServFail, "{h:?}");
        assert_eq!(h.address_dnssec, DnssecStatus::Indeterminate, "{h:?}");
        assert!(
            h.errors.iter().all(|e| e.contains("nothing to validate")),
            "{:?}",
            h.errors
        );
    }

    #[tokio::test]
    async fn refused_is_indeterminate() {
        let (d, _s) = mx_of(Behaviour::Refused).await;
        assert_eq!(d.mx_dnssec, DnssecStatus::Indeterminate);
    }

    #[tokio::test]
    async fn huge_rrset_over_tcp_is_read_whole() {
        let (d, _s) = mx_of(Behaviour::HugeOverTcp).await;
        assert_eq!(d.mx_outcome, DnsOutcome::NoError, "{d:?}");
        assert_eq!(d.mx_hosts.len(), fake::HUGE_COUNT);
        assert_eq!(d.mx_dnssec, DnssecStatus::Insecure);
    }
}
