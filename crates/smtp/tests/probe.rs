//! End-to-end probes against fake servers on 127.0.0.1:0, one per outcome.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{leaf, server_config, spawn, AfterStarttls, Cert, Spec};
use mxray_model::{
    DaneVerdict, DnssecStatus, PkixError, ProbeErrorClass, ProbeResult, StrippingSignal,
    TlsRptResult, TlsaRecord,
};
use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
use mxray_smtp::{ProbeConfig, ProbeOutput, ProbeTarget, Prober, TlsaInput};
use sha2::{Digest, Sha256};

fn dialer(allow_private: bool, blocklist: &str) -> Dialer {
    Dialer::new(
        Arc::new(DestinationPolicy::new(
            allow_private,
            DestinationPolicy::parse_blocklist(blocklist).expect("blocklist"),
        )),
        Arc::new(RateLimits::new(RateConfig::default())),
    )
}

fn config(ca: Option<&Cert>) -> ProbeConfig {
    let mut cfg = ProbeConfig::default();
    cfg.ehlo_name = "scanner.test".into();
    cfg.limits.greeting_timeout = Duration::from_secs(5);
    cfg.limits.command_timeout = Duration::from_secs(5);
    cfg.limits.tls_timeout = Duration::from_secs(5);
    cfg.limits.session_deadline = Duration::from_secs(20);
    if let Some(ca) = ca {
        cfg.extra_roots_pem = ca.pem.clone().into_bytes();
    }
    cfg
}

async fn probe_with(
    cfg: ProbeConfig,
    addr: std::net::SocketAddr,
    sni: Option<&str>,
    tlsa: Option<TlsaInput>,
) -> ProbeOutput {
    let prober =
        Prober::new(cfg, dialer(true, ""), uuid::Uuid::now_v7(), "test".into()).expect("prober");
    let target = ProbeTarget {
        ip: addr.ip(),
        port: addr.port(),
        sni: sni.map(str::to_owned),
        tlsa,
    };
    prober.probe(&target).await
}

async fn probe(addr: std::net::SocketAddr, ca: Option<&Cert>, sni: Option<&str>) -> ProbeOutput {
    probe_with(config(ca), addr, sni, None).await
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn spki_sha256(der: &[u8]) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).expect("parse");
    sha256_hex(c.tbs_certificate.subject_pki.raw)
}

fn secure(records: Vec<TlsaRecord>, names: &[&str]) -> TlsaInput {
    TlsaInput {
        records,
        dnssec: DnssecStatus::Secure,
        base_names: names.iter().map(|s| s.to_string()).collect(),
    }
}

fn rec(u: u8, s: u8, m: u8, data: String) -> TlsaRecord {
    TlsaRecord {
        usage: u,
        selector: s,
        matching_type: m,
        data,
    }
}

/// A CA-issued chain for mx.test and a server presenting leaf + CA.
fn pki() -> (Cert, Cert, Arc<rustls::ServerConfig>) {
    let ca = common::ca("Test CA");
    let l = leaf(&["mx.test"], Some(&ca), None);
    let cfg = server_config(&[&l, &ca], &l.key, false);
    (ca, l, cfg)
}

#[tokio::test]
async fn plain_success_records_everything() {
    let (ca, l, cfg) = pki();
    let srv = spawn(Spec::starttls(cfg)).await;
    let out = probe(srv.addr, Some(&ca), Some("mx.test")).await;
    let r = &out.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{r:?}");
    assert_eq!(r.error_class, None);
    assert_eq!(r.banner, "220 mx.test ESMTP fake");
    assert_eq!(
        r.ehlo_keywords,
        vec!["PIPELINING", "SIZE 10240000", "STARTTLS"]
    );
    assert!(r.ehlo_raw.starts_with("250-mx.test\r\n250-PIPELINING"));
    assert!(r.starttls_advertised);
    assert_eq!(r.starttls_reply_code, Some(220));
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.3"));
    assert!(
        r.cipher.as_deref().is_some_and(|c| c.starts_with("TLS13_")),
        "{:?}",
        r.cipher
    );
    assert_eq!(r.kx_group.as_deref(), Some("X25519"));
    assert_eq!(r.sni.as_deref(), Some("mx.test"));
    assert_eq!(
        r.chain_sha256,
        vec![sha256_hex(&l.der), sha256_hex(&ca.der)]
    );
    assert_eq!(out.certificates.len(), 2);
    assert_eq!(out.certificates[0].sha256, r.chain_sha256[0]);
    assert_eq!(out.certificates[0].sans, vec!["mx.test"]);
    assert_eq!(out.certificates[0].spki_sha256, spki_sha256(&l.der));
    assert_eq!(out.certificates[0].key_type, "EC P-256");
    assert!(out.certificates[1].is_ca && out.certificates[1].self_issued);
    assert_eq!(r.pkix_valid, Some(true));
    assert_eq!(r.pkix_error, None);
    assert_eq!(r.post_tls_ehlo_keywords, vec!["PIPELINING", "AUTH PLAIN"]);
    assert!(r.stripping_signals.is_empty());
    assert!(r.tlsrpt_results.is_empty());
    assert!(r.connect_ms.is_some() && r.greeting_ms.is_some() && r.ehlo_ms.is_some());
    assert!(r.starttls_ms.is_some() && r.tls_ms.is_some());
    assert!(
        r.transcript.contains("C: STARTTLS\r\n") && r.transcript.contains("S: 220 2.0.0 Ready")
    );
    // Polite and harmless: the exact command sequence, no MAIL/RCPT/DATA, ends with QUIT.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        srv.commands(),
        vec![
            "EHLO scanner.test",
            "STARTTLS",
            "[TLS]",
            "EHLO scanner.test",
            "QUIT"
        ]
    );
    // The record is valid wire format.
    let json = serde_json::to_value(r).expect("json");
    assert_eq!(json["result"], "starttls_ok");
}

#[tokio::test]
async fn no_starttls_is_a_result_not_an_error() {
    let srv = spawn(Spec::plain(b"250-mx.test\r\n250 SIZE 1000\r\n")).await;
    let out = probe_with(config(None), srv.addr, Some("mx.test"), None).await;
    let r = &out.record;
    assert_eq!(r.result, ProbeResult::NoStarttls);
    assert_eq!(r.error_class, None);
    assert!(!r.starttls_advertised);
    assert_eq!(r.starttls_reply_code, None);
    assert_eq!(r.pkix_valid, None);
    assert!(r.reached_ehlo);
    assert!(!r.starttls_forced, "no TLSA: STARTTLS is not forced");
    // What a policy requires is the domain verdict's: the probe records no signal.
    assert!(r.stripping_signals.is_empty());
    assert_eq!(r.tlsrpt_results, vec![TlsRptResult::StarttlsNotSupported]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(srv.commands(), vec!["EHLO scanner.test", "QUIT"]);
}

#[tokio::test]
async fn starttls_454_is_rejected_starttls() {
    let mut spec = Spec::plain(b"250-mx.test\r\n250 STARTTLS\r\n");
    spec.starttls = b"454 4.7.0 TLS not available due to local problem\r\n".to_vec();
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, Some("mx.test")).await.record;
    assert_eq!(r.result, ProbeResult::Error);
    assert_eq!(r.error_class, Some(ProbeErrorClass::Starttls4xx));
    assert_eq!(r.starttls_reply_code, Some(454));
    assert_eq!(r.stripping_signals, vec![StrippingSignal::StarttlsRejected]);
    assert_eq!(r.tlsrpt_results, vec![TlsRptResult::StarttlsNotSupported]);
}

#[tokio::test]
async fn cisco_masked_starttls_is_a_stripping_signal() {
    let mut spec = Spec::plain(b"250-mx.test\r\n250-PIPELINING\r\n250 XXXXXXXA\r\n");
    spec.greeting = b"220 ***************************************\r\n".to_vec();
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, None).await.record;
    assert_eq!(r.result, ProbeResult::NoStarttls);
    assert_eq!(r.ehlo_keywords, vec!["PIPELINING", "XXXXXXXA"]);
    assert_eq!(
        r.stripping_signals,
        vec![
            StrippingSignal::StarttlsMangled,
            StrippingSignal::BannerMasked
        ]
    );
    assert!(
        r.ehlo_raw.contains("250 XXXXXXXA\r\n"),
        "raw bytes kept: {:?}",
        r.ehlo_raw
    );
}

#[tokio::test]
async fn garbage_instead_of_handshake_is_tls_failed_after_ready() {
    let mut spec = Spec::plain(b"250-mx.test\r\n250 STARTTLS\r\n");
    spec.starttls = b"220 go ahead\r\n".to_vec();
    spec.after_starttls = Some(AfterStarttls::Bytes(b"this is not TLS at all\r\n".to_vec()));
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, Some("mx.test")).await.record;
    assert_eq!(r.result, ProbeResult::Error);
    assert_eq!(
        r.error_class,
        Some(ProbeErrorClass::TlsError),
        "{:?}",
        r.error_detail
    );
    assert_eq!(
        r.stripping_signals,
        vec![StrippingSignal::TlsFailedAfterReady]
    );
    assert_eq!(r.tlsrpt_results, vec![TlsRptResult::ValidationFailure]);
}

#[tokio::test]
async fn protocol_version_alert_is_tls_incompatible_not_no_tls() {
    // What a TLS 1.0-only server answers to a TLS 1.2/1.3 ClientHello.
    let mut spec = Spec::plain(b"250-mx.test\r\n250 STARTTLS\r\n");
    spec.starttls = b"220 go ahead\r\n".to_vec();
    spec.after_starttls = Some(AfterStarttls::Bytes(vec![
        0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70,
    ]));
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, Some("mx.test")).await.record;
    assert_eq!(
        r.error_class,
        Some(ProbeErrorClass::TlsIncompatible),
        "{:?}",
        r.error_detail
    );
    assert_eq!(r.tls_alert, Some(70));
    assert!(r.starttls_advertised);
    assert!(r.stripping_signals.is_empty());
}

#[tokio::test]
async fn other_alerts_are_tls_alert_with_code() {
    let mut spec = Spec::plain(b"250-mx.test\r\n250 STARTTLS\r\n");
    spec.starttls = b"220 go ahead\r\n".to_vec();
    spec.after_starttls = Some(AfterStarttls::Bytes(vec![
        0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 80,
    ]));
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, Some("mx.test")).await.record;
    assert_eq!(r.error_class, Some(ProbeErrorClass::TlsAlert));
    assert_eq!(r.tls_alert, Some(80));
    assert_eq!(
        r.stripping_signals,
        vec![StrippingSignal::TlsFailedAfterReady]
    );
}

#[tokio::test]
async fn expired_certificate_completes_and_is_recorded() {
    let ca = common::ca("Test CA");
    let l = leaf(&["mx.test"], Some(&ca), Some((2019, 2020)));
    let srv = spawn(Spec::starttls(server_config(&[&l, &ca], &l.key, false))).await;
    let r = probe(srv.addr, Some(&ca), Some("mx.test")).await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk);
    assert_eq!(r.pkix_valid, Some(false));
    assert_eq!(r.pkix_error, Some(PkixError::Expired));
    assert_eq!(r.tlsrpt_results, vec![TlsRptResult::CertificateExpired]);
    assert!(
        !r.post_tls_ehlo_keywords.is_empty(),
        "the session went on after the handshake"
    );
}

#[tokio::test]
async fn self_signed_certificate() {
    let l = leaf(&["mx.test"], None, None);
    let srv = spawn(Spec::starttls(server_config(&[&l], &l.key, false))).await;
    let r = probe(srv.addr, None, Some("mx.test")).await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk);
    assert_eq!(r.pkix_error, Some(PkixError::SelfSigned));
    assert_eq!(r.tlsrpt_results, vec![TlsRptResult::CertificateNotTrusted]);
}

#[tokio::test]
async fn wrong_name_certificate() {
    let ca = common::ca("Test CA");
    let l = leaf(&["other.test"], Some(&ca), None);
    let srv = spawn(Spec::starttls(server_config(&[&l, &ca], &l.key, false))).await;
    let r = probe(srv.addr, Some(&ca), Some("mx.test")).await.record;
    assert_eq!(r.pkix_valid, Some(false));
    assert_eq!(r.pkix_error, Some(PkixError::NameMismatch));
    assert_eq!(
        r.tlsrpt_results,
        vec![TlsRptResult::CertificateHostMismatch]
    );
}

#[tokio::test]
async fn untrusted_ca_without_ca_file() {
    let (_ca, _l, cfg) = pki();
    let srv = spawn(Spec::starttls(cfg)).await;
    let r = probe(srv.addr, None, Some("mx.test")).await.record;
    assert_eq!(r.pkix_error, Some(PkixError::UnknownIssuer));
}

#[tokio::test]
async fn tls12_only_server() {
    let (ca, l, _) = pki();
    let srv = spawn(Spec::starttls(server_config(&[&l, &ca], &l.key, true))).await;
    let r = probe(srv.addr, Some(&ca), Some("mx.test")).await.record;
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.2"));
    assert!(
        r.cipher
            .as_deref()
            .is_some_and(|c| c.starts_with("TLS_ECDHE_ECDSA_")),
        "{:?}",
        r.cipher
    );
}

#[tokio::test]
async fn dane_ee_match_ignores_names_and_expiry() {
    // Self-signed, expired, wrong name: DANE-EE(3) still authenticates it.
    let l = leaf(&["elsewhere.test"], None, Some((2019, 2020)));
    let srv = spawn(Spec::starttls(server_config(&[&l], &l.key, false))).await;
    let tlsa = secure(vec![rec(3, 1, 1, spki_sha256(&l.der))], &["mx.test"]);
    let r = probe_with(config(None), srv.addr, Some("mx.test"), Some(tlsa.clone()))
        .await
        .record;
    assert_eq!(r.dane, DaneVerdict::Valid);
    assert_eq!(r.dane_match.as_deref(), Some("3 1 1"));
    assert!(
        r.tlsrpt_results.is_empty(),
        "a DANE host is not judged by PKIX: {:?}",
        r.tlsrpt_results
    );
    // Full-certificate SHA-512 form as well.
    let tlsa = secure(
        vec![rec(3, 0, 2, hex::encode(sha2::Sha512::digest(&l.der)))],
        &["mx.test"],
    );
    let r = probe_with(config(None), srv.addr, Some("mx.test"), Some(tlsa))
        .await
        .record;
    assert_eq!(r.dane_match.as_deref(), Some("3 0 2"));
}

#[tokio::test]
async fn dane_ee_mismatch() {
    let l = leaf(&["mx.test"], None, None);
    let other = leaf(&["mx.test"], None, None);
    let srv = spawn(Spec::starttls(server_config(&[&l], &l.key, false))).await;
    let tlsa = secure(vec![rec(3, 1, 1, spki_sha256(&other.der))], &["mx.test"]);
    let r = probe_with(config(None), srv.addr, Some("mx.test"), Some(tlsa))
        .await
        .record;
    assert_eq!(r.dane, DaneVerdict::Mismatch);
    assert_eq!(r.dane_match, None);
    assert_eq!(r.tlsrpt_results, vec![TlsRptResult::TlsaInvalid]);
}

#[tokio::test]
async fn dane_ta_match_requires_the_name() {
    let (ca, _l, cfg) = pki();
    let srv = spawn(Spec::starttls(cfg)).await;
    let ta = rec(2, 0, 1, sha256_hex(&ca.der));
    // The CA is not in any root store: only DANE makes it an anchor.
    let ok = probe_with(
        config(None),
        srv.addr,
        Some("mx.test"),
        Some(secure(vec![ta.clone()], &["mx.test"])),
    )
    .await
    .record;
    assert_eq!(ok.dane, DaneVerdict::Valid, "{:?}", ok.error_detail);
    assert_eq!(ok.dane_match.as_deref(), Some("2 0 1"));
    assert_eq!(ok.pkix_error, Some(PkixError::UnknownIssuer));
    // Same chain, but the leaf is not for the names DANE-TA must check.
    let bad = probe_with(
        config(None),
        srv.addr,
        Some("mx2.test"),
        Some(secure(vec![ta], &["mx2.test"])),
    )
    .await
    .record;
    assert_eq!(bad.dane, DaneVerdict::Mismatch);
    // SPKI form of the anchor, TLSA base name differing from the SNI (CNAME case).
    let ta_spki = rec(2, 1, 1, spki_sha256(&ca.der));
    let cname = probe_with(
        config(None),
        srv.addr,
        Some("alias.test"),
        Some(secure(vec![ta_spki], &["alias.test", "mx.test"])),
    )
    .await
    .record;
    assert_eq!(cname.dane, DaneVerdict::Valid);
}

#[tokio::test]
async fn pkix_usages_only_are_unusable() {
    let (ca, l, cfg) = pki();
    let srv = spawn(Spec::starttls(cfg)).await;
    let tlsa = secure(
        vec![
            rec(0, 0, 1, sha256_hex(&ca.der)),
            rec(1, 1, 1, spki_sha256(&l.der)),
        ],
        &["mx.test"],
    );
    let r = probe_with(config(Some(&ca)), srv.addr, Some("mx.test"), Some(tlsa))
        .await
        .record;
    assert_eq!(r.dane, DaneVerdict::Unusable);
}

#[tokio::test]
async fn insecure_tlsa_is_not_checked() {
    let l = leaf(&["mx.test"], None, None);
    let srv = spawn(Spec::starttls(server_config(&[&l], &l.key, false))).await;
    let mut tlsa = secure(vec![rec(3, 1, 1, spki_sha256(&l.der))], &["mx.test"]);
    tlsa.dnssec = DnssecStatus::Insecure;
    let r = probe_with(config(None), srv.addr, Some("mx.test"), Some(tlsa))
        .await
        .record;
    assert_eq!(r.dane, DaneVerdict::Insecure);
}

#[tokio::test]
async fn secure_tlsa_without_starttls_is_no_tls() {
    let srv = spawn(Spec::plain(b"250 mx.test\r\n")).await;
    let tlsa = secure(vec![rec(3, 1, 1, "00".repeat(32))], &["mx.test"]);
    let r = probe_with(config(None), srv.addr, Some("mx.test"), Some(tlsa))
        .await
        .record;
    assert_eq!(r.dane, DaneVerdict::NoTls);
    // A secure TLSA RRset makes TLS mandatory: STARTTLS is sent anyway, refused with 502
    // (a server without STARTTLS): no error, no signal, still no TLS.
    assert!(r.starttls_forced);
    assert_eq!(r.starttls_reply_code, Some(502));
    assert_eq!(r.result, ProbeResult::NoStarttls);
    assert_eq!(r.error_class, None);
    assert!(r.stripping_signals.is_empty());
    assert!(r.transcript.contains("C: STARTTLS"), "{}", r.transcript);
}

#[tokio::test]
async fn forced_starttls_through_a_rewritten_ehlo_is_starttls_forced_ok() {
    // The server speaks TLS, but its EHLO reply arrives without STARTTLS (as behind a
    // middlebox that removed the keyword): a DANE host gets STARTTLS anyway.
    let l = leaf(&["mx.test"], None, None);
    let mut spec = Spec::starttls(server_config(&[&l], &l.key, false));
    spec.ehlo = b"250-mx.test\r\n250 SIZE 1000\r\n".to_vec();
    let srv = spawn(spec).await;
    let tlsa = secure(vec![rec(3, 1, 1, spki_sha256(&l.der))], &["mx.test"]);
    let r = probe_with(config(None), srv.addr, Some("mx.test"), Some(tlsa))
        .await
        .record;
    assert!(r.starttls_forced && !r.starttls_advertised);
    assert_eq!(r.starttls_reply_code, Some(220));
    assert_eq!(r.stripping_signals, vec![StrippingSignal::StarttlsForcedOk]);
    // What a sender on this path is offered: no STARTTLS.
    assert_eq!(r.result, ProbeResult::NoStarttls);
    assert_eq!(r.dane, DaneVerdict::NoTls);
    assert!(r.tls_version.is_some(), "the forced handshake is recorded");
    // Without TLSA, the default policy does not force.
    let r = probe_with(config(None), srv.addr, Some("mx.test"), None)
        .await
        .record;
    assert!(!r.starttls_forced);
    assert!(r.stripping_signals.is_empty());
}

#[tokio::test]
async fn slow_banner_is_greeting_timeout() {
    let mut spec = Spec::plain(b"250 mx.test\r\n");
    spec.greeting_delay = Duration::from_secs(30);
    let srv = spawn(spec).await;
    let mut cfg = config(None);
    cfg.limits.greeting_timeout = Duration::from_millis(200);
    let r = probe_with(cfg, srv.addr, None, None).await.record;
    assert_eq!(r.result, ProbeResult::Error);
    assert_eq!(r.error_class, Some(ProbeErrorClass::GreetingTimeout));
    assert!(r.connect_ms.is_some());
}

#[tokio::test]
async fn session_deadline_bounds_a_tarpit() {
    let mut spec = Spec::plain(b"250 mx.test\r\n");
    spec.greeting_delay = Duration::from_secs(30);
    let srv = spawn(spec).await;
    let mut cfg = config(None);
    cfg.limits.greeting_timeout = Duration::from_secs(30);
    cfg.limits.session_deadline = Duration::from_millis(200);
    let r = probe_with(cfg, srv.addr, None, None).await.record;
    assert_eq!(r.error_class, Some(ProbeErrorClass::SessionDeadline));
}

#[tokio::test]
async fn hundred_kilobyte_line_is_reply_too_long() {
    let mut spec = Spec::plain(b"250 mx.test\r\n");
    let mut greeting = b"220 ".to_vec();
    greeting.extend(std::iter::repeat_n(b'a', 100 * 1024));
    greeting.extend_from_slice(b"\r\n");
    spec.greeting = greeting;
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, None).await.record;
    assert_eq!(r.error_class, Some(ProbeErrorClass::ReplyTooLong));
    assert!(r.transcript.len() <= ProbeConfig::default().limits.max_transcript);
}

#[tokio::test]
async fn binary_garbage_is_protocol_error() {
    let mut spec = Spec::plain(b"250 mx.test\r\n");
    spec.greeting = (0u8..=255).chain([b'\n']).collect();
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, None).await.record;
    assert_eq!(r.result, ProbeResult::Error);
    assert_eq!(r.error_class, Some(ProbeErrorClass::ProtocolError));
}

#[tokio::test]
async fn reset_mid_ehlo_is_connection_closed() {
    let mut spec = Spec::plain(b"250 mx.test\r\n");
    spec.reset_mid_ehlo = Some(b"250-mx.test\r\n250-PIPE".to_vec());
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, None).await.record;
    assert_eq!(
        r.error_class,
        Some(ProbeErrorClass::ConnectionClosed),
        "{:?}",
        r.error_detail
    );
    assert!(
        r.error_detail
            .as_deref()
            .is_some_and(|d| d.starts_with("EHLO:")),
        "{:?}",
        r.error_detail
    );
}

/// A server that accepts and resets at once (SO_LINGER 0), on a thread and runtime of its own
/// so that it keeps accepting while the test's runtime is blocked.
fn resetting_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_zero_linger();
                drop(stream);
            }
        });
    });
    addr
}

/// The reset of a server that accepts and drops reaches the prober either in its connect (when
/// the runtime looks at the socket only after the RST arrived, as on a busy scanner) or in its
/// first read. Both are `connection_closed`, never `connect_error`: the destination answered
/// the TCP handshake.
#[tokio::test]
async fn reset_right_after_accept_is_connection_closed() {
    let addr = resetting_server();
    // In the first read: the runtime is free to see the connect complete at once.
    let r = probe(addr, None, None).await.record;
    assert_eq!(
        r.error_class,
        Some(ProbeErrorClass::ConnectionClosed),
        "{:?}",
        r.error_detail
    );
    // In the connect: this (single-threaded) runtime is blocked after the connect was sent,
    // so the reset is already on the socket when the connect's readiness is first checked.
    let (out, ()) = tokio::join!(probe(addr, None, None), async {
        std::thread::sleep(Duration::from_millis(200));
    });
    let r = out.record;
    assert_eq!(r.result, ProbeResult::Error);
    assert_eq!(
        r.error_class,
        Some(ProbeErrorClass::ConnectionClosed),
        "{:?}",
        r.error_detail
    );
}

#[tokio::test]
async fn multiline_replies_split_across_segments() {
    let (ca, _l, cfg) = pki();
    let mut spec = Spec::starttls(cfg);
    spec.greeting = b"220-mx.test ESMTP\r\n220-second line\r\n220 third line\r\n".to_vec();
    spec.split = true;
    let srv = spawn(spec).await;
    let r = probe(srv.addr, Some(&ca), Some("mx.test")).await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{:?}", r.error_detail);
    assert_eq!(
        r.banner,
        "220-mx.test ESMTP\r\n220-second line\r\n220 third line"
    );
    assert_eq!(
        r.ehlo_keywords,
        vec!["PIPELINING", "SIZE 10240000", "STARTTLS"]
    );
    assert_eq!(r.post_tls_ehlo_keywords, vec!["PIPELINING", "AUTH PLAIN"]);
}

#[tokio::test]
async fn greeting_554_is_refused_and_quit() {
    let mut spec = Spec::plain(b"250 mx.test\r\n");
    spec.greeting = b"554 5.7.1 no SMTP service here\r\n".to_vec();
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, None).await.record;
    assert_eq!(r.error_class, Some(ProbeErrorClass::Greeting5xx));
    assert_eq!(r.banner, "554 5.7.1 no SMTP service here");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(srv.commands(), vec!["QUIT"]);
}

#[tokio::test]
async fn ehlo_5xx_falls_back_to_helo() {
    let mut spec = Spec::plain(b"502 5.5.1 EHLO not implemented\r\n");
    spec.helo = b"250 mx.test\r\n".to_vec();
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, None).await.record;
    assert_eq!(r.result, ProbeResult::NoStarttls);
    assert_eq!(r.error_class, None);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        srv.commands(),
        vec!["EHLO scanner.test", "HELO scanner.test", "QUIT"]
    );
}

#[tokio::test]
async fn connect_refused() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    let r = probe(addr, None, None).await.record;
    assert_eq!(r.error_class, Some(ProbeErrorClass::ConnectRefused));
    assert_eq!(r.connect_ms, None);
}

#[tokio::test]
async fn private_address_without_allow_private_sends_no_packet() {
    let srv = spawn(Spec::plain(b"250 mx.test\r\n")).await;
    let prober = Prober::new(
        config(None),
        dialer(false, ""),
        uuid::Uuid::now_v7(),
        "test".into(),
    )
    .expect("prober");
    let out = prober
        .probe(&ProbeTarget::new(srv.addr.ip(), srv.addr.port()))
        .await;
    assert_eq!(out.record.result, ProbeResult::Error);
    assert_eq!(
        out.record.error_class,
        Some(ProbeErrorClass::BlockedReserved)
    );
    assert_eq!(out.record.connect_ms, None);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        srv.connections(),
        0,
        "a refused destination must see no connection"
    );

    let prober = Prober::new(
        config(None),
        dialer(true, "127.0.0.0/8\n"),
        uuid::Uuid::now_v7(),
        "test".into(),
    )
    .expect("prober");
    let out = prober
        .probe(&ProbeTarget::new(srv.addr.ip(), srv.addr.port()))
        .await;
    assert_eq!(out.record.error_class, Some(ProbeErrorClass::BlockedList));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(srv.connections(), 0);
}

#[tokio::test]
async fn bad_ca_file_is_a_configuration_error() {
    let mut cfg = config(None);
    cfg.extra_roots_pem =
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec();
    assert!(Prober::new(cfg, dialer(true, ""), uuid::Uuid::nil(), "t".into()).is_err());
}

#[tokio::test]
async fn error_after_tls_keeps_starttls_ok() {
    let (ca, _l, cfg) = pki();
    let mut spec = Spec::starttls(cfg);
    spec.post_tls_ehlo = b"421 4.3.2 Service shutting down\r\n".to_vec();
    let srv = spawn(spec).await;
    let r = probe(srv.addr, Some(&ca), Some("mx.test")).await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk);
    assert_eq!(r.error_class, Some(ProbeErrorClass::PostTlsError));
    assert_eq!(r.pkix_valid, Some(true));
    assert!(r.post_tls_ehlo_keywords.is_empty());
}

#[tokio::test]
async fn ipv6_loopback() {
    let (ca, _l, cfg) = pki();
    let Some(srv) = common::spawn_on("[::1]:0", Spec::starttls(cfg)).await else {
        eprintln!("skipping: no IPv6 loopback on this machine");
        return;
    };
    let r = probe(srv.addr, Some(&ca), Some("mx.test")).await.record;
    assert_eq!(r.ip, "::1");
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{:?}", r.error_detail);
}

#[tokio::test]
async fn close_during_handshake_is_tls_reset() {
    let mut spec = Spec::plain(b"250-mx.test\r\n250 STARTTLS\r\n");
    spec.starttls = b"220 go ahead\r\n".to_vec();
    spec.after_starttls = Some(AfterStarttls::Bytes(Vec::new()));
    let srv = spawn(spec).await;
    let r = probe(srv.addr, None, Some("mx.test")).await.record;
    assert_eq!(
        r.error_class,
        Some(ProbeErrorClass::TlsReset),
        "{:?}",
        r.error_detail
    );
    assert_eq!(
        r.stripping_signals,
        vec![StrippingSignal::TlsFailedAfterReady]
    );
    assert!(r.chain_sha256.is_empty());
}

#[tokio::test]
async fn a_certificate_message_over_the_engines_size_limit_is_tls_too_large_not_a_signal() {
    // Three 30 KB certificates after the leaf make the Certificate message exceed rustls'
    // 64 KiB limit (each alone stays under the 64 KiB DER length webpki parses).
    let padded = || {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["pad.test".to_string()]).expect("params");
        let mut v = vec![0x04, 0x82, 0x75, 0x30]; // OCTET STRING of 30,000 bytes
        v.extend(std::iter::repeat_n(0x41, 30_000));
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 55555, 1],
                v,
            ));
        let cert = params.self_signed(&key).expect("cert");
        Cert {
            der: cert.der().clone(),
            pem: cert.pem(),
            key,
            params,
        }
    };
    let l = leaf(&["mx.test"], None, None);
    let (a, b, c) = (padded(), padded(), padded());
    let srv = spawn(Spec::starttls(server_config(
        &[&l, &a, &b, &c],
        &l.key,
        false,
    )))
    .await;
    let r = probe(srv.addr, None, Some("mx.test")).await.record;
    assert_eq!(
        r.error_class,
        Some(ProbeErrorClass::TlsTooLarge),
        "{:?}",
        r.error_detail
    );
    assert!(r.reached_ehlo);
    assert!(r.stripping_signals.is_empty(), "{:?}", r.stripping_signals);
    assert!(r.tlsrpt_results.is_empty(), "{:?}", r.tlsrpt_results);
}
