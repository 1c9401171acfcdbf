//! The second TLS engine and the submission ports, end to end against fake servers on
//! 127.0.0.1:0: OpenSSL servers rustls cannot talk to (TLS 1.0/1.1 only, an RSA-1024 key),
//! a normal rustls server (one session, rustls only), failures that must never be retried,
//! and implicit TLS (RFC 8314 §3.3).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::legacy::{acceptor, rsa_leaf};
use common::{leaf, server_config, spawn, AfterStarttls, Cert, Spec};
use mxray_model::{
    PkixError, ProbeErrorClass, ProbeResult, TlsEngine, TlsFallbackReason, TlsRptResult,
};
use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
use mxray_smtp::{ProbeConfig, ProbeOutput, ProbeTarget, Prober};
use openssl::ssl::SslVersion;

fn config(ca: &Cert) -> ProbeConfig {
    let mut cfg = ProbeConfig::default();
    cfg.ehlo_name = "scanner.test".into();
    cfg.limits.greeting_timeout = Duration::from_secs(5);
    cfg.limits.command_timeout = Duration::from_secs(5);
    cfg.limits.tls_timeout = Duration::from_secs(5);
    cfg.limits.session_deadline = Duration::from_secs(20);
    cfg.extra_roots_pem = ca.pem.clone().into_bytes();
    cfg
}

async fn probe_cfg(cfg: ProbeConfig, addr: std::net::SocketAddr, sni: &str) -> ProbeOutput {
    let dialer = Dialer::new(
        Arc::new(DestinationPolicy::new(true, Vec::new())),
        Arc::new(RateLimits::new(RateConfig::default())),
    );
    let prober = Prober::new(cfg, dialer, uuid::Uuid::now_v7(), "test".into()).expect("prober");
    let mut target = ProbeTarget::new(addr.ip(), addr.port());
    target.sni = Some(sni.into());
    prober.probe(&target).await
}

async fn probe(addr: std::net::SocketAddr, ca: &Cert) -> ProbeOutput {
    probe_cfg(config(ca), addr, "mx.test").await
}

/// A STARTTLS server whose TLS is OpenSSL speaking only `min..=max` with `ciphers`, presenting
/// an RSA leaf of `bits` bits for mx.test issued by `ca`.
fn legacy_spec(ca: &Cert, bits: u32, min: SslVersion, max: SslVersion, ciphers: &str) -> Spec {
    let (cert, key) = rsa_leaf("mx.test", bits, ca);
    let dummy = leaf(&["unused.test"], None, None);
    let mut spec = Spec::starttls(server_config(&[&dummy], &dummy.key, false));
    spec.after_starttls = Some(AfterStarttls::Openssl(acceptor(
        &cert,
        &key,
        Some(ca),
        min,
        max,
        ciphers,
    )));
    spec
}

fn sessions(commands: &[String]) -> usize {
    commands.iter().filter(|c| c.starts_with("EHLO")).count()
}

#[tokio::test]
async fn tls10_only_server_is_measured_with_openssl_in_a_second_session() {
    let ca = common::ca("Legacy CA");
    let srv = spawn(legacy_spec(
        &ca,
        2048,
        SslVersion::TLS1,
        SslVersion::TLS1,
        "ALL:@SECLEVEL=0",
    ))
    .await;
    let out = probe(srv.addr, &ca).await;
    let r = &out.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{:?}", r.error_detail);
    assert_eq!(r.error_class, None);
    assert_eq!(r.tls_engine, Some(TlsEngine::Openssl));
    assert_eq!(
        r.tls_fallback_reason,
        Some(TlsFallbackReason::ProtocolVersion),
        "{:?}",
        r.tls_fallback_detail
    );
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.0"));
    assert!(r.tls_legacy);
    // An IANA name of a TLS 1.0 suite (ECDHE with CBC is what OpenSSL prefers there).
    let cipher = r.cipher.as_deref().unwrap_or("");
    assert!(
        cipher.starts_with("TLS_") && cipher.contains("_WITH_"),
        "{cipher}"
    );
    assert!(r.kx_group.is_some(), "{:?}", r.kx_group);
    // The chain the OpenSSL engine captured is judged like any other: leaf + CA, PKIX-valid.
    assert_eq!(r.chain_sha256.len(), 2);
    assert_eq!(out.certificates.len(), 2);
    assert_eq!(out.certificates[0].key_type, "RSA 2048");
    assert_eq!(r.pkix_valid, Some(true), "{:?}", r.pkix_error);
    // A limit of the engine is no stripping signal, and not a TLS-RPT failure.
    assert!(r.stripping_signals.is_empty(), "{:?}", r.stripping_signals);
    assert!(r.tlsrpt_results.is_empty(), "{:?}", r.tlsrpt_results);
    // Two polite sessions, each with greeting, EHLO, STARTTLS; the first one is kept.
    assert_eq!(srv.connections(), 2);
    assert_eq!(sessions(&srv.commands()), 3, "{:?}", srv.commands());
    assert!(
        r.tls_fallback_transcript.contains("C: STARTTLS")
            && r.tls_fallback_transcript.contains("retrying with OpenSSL"),
        "{}",
        r.tls_fallback_transcript
    );
    assert!(
        r.transcript.contains("[TLS handshake, openssl]"),
        "{}",
        r.transcript
    );
    assert!(r.post_tls_ehlo_keywords.contains(&"AUTH PLAIN".to_string()));
}

#[tokio::test]
async fn tls11_only_server_with_rsa_key_exchange() {
    let ca = common::ca("Legacy CA");
    let srv = spawn(legacy_spec(
        &ca,
        2048,
        SslVersion::TLS1_1,
        SslVersion::TLS1_1,
        "AES128-SHA:@SECLEVEL=0",
    ))
    .await;
    let r = probe(srv.addr, &ca).await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{:?}", r.error_detail);
    assert_eq!(r.tls_engine, Some(TlsEngine::Openssl));
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.1"));
    assert_eq!(r.cipher.as_deref(), Some("TLS_RSA_WITH_AES_128_CBC_SHA"));
    // RSA key exchange: no ephemeral key, no group.
    assert_eq!(r.kx_group, None);
}

#[tokio::test]
async fn tls12_cbc_only_server_fails_rustls_with_handshake_failure() {
    let ca = common::ca("Legacy CA");
    let srv = spawn(legacy_spec(
        &ca,
        2048,
        SslVersion::TLS1_2,
        SslVersion::TLS1_2,
        "ECDHE-RSA-AES128-SHA256:@SECLEVEL=0",
    ))
    .await;
    let r = probe(srv.addr, &ca).await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{:?}", r.error_detail);
    assert_eq!(
        r.tls_fallback_reason,
        Some(TlsFallbackReason::HandshakeFailure)
    );
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.2"));
    assert_eq!(
        r.cipher.as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256")
    );
    assert!(!r.tls_legacy);
    assert!(r.kx_group.is_some());
}

#[tokio::test]
async fn rsa_1024_key_is_measured_and_judged_weak_not_a_handshake_failure() {
    let ca = common::ca("Legacy CA");
    let srv = spawn(legacy_spec(
        &ca,
        1024,
        SslVersion::TLS1_2,
        SslVersion::TLS1_2,
        "ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0",
    ))
    .await;
    let out = probe(srv.addr, &ca).await;
    let r = &out.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{:?}", r.error_detail);
    assert_eq!(r.tls_engine, Some(TlsEngine::Openssl));
    assert_eq!(
        r.tls_fallback_reason,
        Some(TlsFallbackReason::CertificateKey),
        "{:?}",
        r.tls_fallback_detail
    );
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.2"));
    assert_eq!(
        r.cipher.as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(out.certificates[0].key_type, "RSA 1024");
    assert_eq!(r.pkix_valid, Some(false));
    assert_eq!(r.pkix_error, Some(PkixError::WeakKey));
    assert_eq!(r.tlsrpt_results, vec![TlsRptResult::ValidationFailure]);
    assert!(r.stripping_signals.is_empty());
}

#[tokio::test]
async fn modern_server_is_probed_once_with_rustls_only() {
    let ca = common::ca("Test CA");
    let l = leaf(&["mx.test"], Some(&ca), None);
    let srv = spawn(Spec::starttls(server_config(&[&l, &ca], &l.key, false))).await;
    let r = probe(srv.addr, &ca).await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk);
    assert_eq!(r.tls_engine, Some(TlsEngine::Rustls));
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.3"));
    assert_eq!(r.tls_fallback_reason, None);
    assert!(r.tls_fallback_transcript.is_empty());
    assert!(!r.tls_legacy);
    assert_eq!(srv.connections(), 1);
}

#[tokio::test]
async fn no_handshake_no_engine() {
    let ca = common::ca("Test CA");
    let srv = spawn(Spec::plain(b"250-mx.test\r\n250 SIZE 1000\r\n")).await;
    let r = probe(srv.addr, &ca).await.record;
    assert_eq!(r.result, ProbeResult::NoStarttls);
    assert_eq!(r.tls_engine, None);
}

#[tokio::test]
async fn failures_openssl_would_meet_too_are_not_retried() {
    let ca = common::ca("Test CA");
    for (bytes, class) in [
        // Garbage instead of a ServerHello.
        (b"this is not TLS\r\n".to_vec(), ProbeErrorClass::TlsError),
        // bad_certificate (42): about the client, not the offer.
        (
            vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 42],
            ProbeErrorClass::TlsAlert,
        ),
        // The connection closes mid-handshake.
        (Vec::new(), ProbeErrorClass::TlsReset),
    ] {
        let mut spec = Spec::plain(b"250-mx.test\r\n250 STARTTLS\r\n");
        spec.starttls = b"220 go ahead\r\n".to_vec();
        spec.after_starttls = Some(AfterStarttls::Bytes(bytes));
        let srv = spawn(spec).await;
        let r = probe(srv.addr, &ca).await.record;
        assert_eq!(r.error_class, Some(class), "{:?}", r.error_detail);
        assert_eq!(r.tls_engine, Some(TlsEngine::Rustls));
        assert_eq!(r.tls_fallback_reason, None);
        assert_eq!(srv.connections(), 1, "{class}: retried");
    }
}

#[tokio::test]
async fn neither_engine_is_tls_incompatible_after_two_sessions() {
    // A server that answers every ClientHello with protocol_version.
    let ca = common::ca("Test CA");
    let mut spec = Spec::plain(b"250-mx.test\r\n250 STARTTLS\r\n");
    spec.starttls = b"220 go ahead\r\n".to_vec();
    spec.after_starttls = Some(AfterStarttls::Bytes(vec![
        0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70,
    ]));
    let srv = spawn(spec).await;
    let r = probe(srv.addr, &ca).await.record;
    assert_eq!(r.error_class, Some(ProbeErrorClass::TlsIncompatible));
    assert_eq!(r.tls_alert, Some(70));
    assert_eq!(r.tls_engine, Some(TlsEngine::Openssl));
    assert_eq!(
        r.tls_fallback_reason,
        Some(TlsFallbackReason::ProtocolVersion)
    );
    assert!(r.stripping_signals.is_empty(), "{:?}", r.stripping_signals);
    assert!(r.starttls_advertised);
    assert_eq!(srv.connections(), 2);
}

#[tokio::test]
async fn implicit_tls_port_starts_with_the_handshake() {
    let ca = common::ca("Test CA");
    let l = leaf(&["mx.test"], Some(&ca), None);
    let mut spec = Spec::starttls(server_config(&[&l, &ca], &l.key, false));
    spec.implicit = true;
    let srv = spawn(spec).await;
    let mut cfg = config(&ca);
    cfg.implicit_tls_ports = vec![srv.addr.port()];
    let r = probe_cfg(cfg, srv.addr, "mx.test").await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{:?}", r.error_detail);
    assert_eq!(r.error_class, None);
    assert_eq!(r.tls_engine, Some(TlsEngine::Rustls));
    assert_eq!(r.banner, "220 mx.test ESMTP fake");
    assert!(!r.starttls_advertised && r.starttls_reply_code.is_none());
    assert!(r.ehlo_keywords.is_empty());
    assert_eq!(r.post_tls_ehlo_keywords, vec!["PIPELINING", "AUTH PLAIN"]);
    assert_eq!(r.pkix_valid, Some(true));
    assert_eq!(srv.commands(), vec!["[TLS]", "EHLO scanner.test", "QUIT"]);
}

#[tokio::test]
async fn implicit_tls_legacy_server_falls_back_too() {
    let ca = common::ca("Legacy CA");
    let mut spec = legacy_spec(
        &ca,
        2048,
        SslVersion::TLS1,
        SslVersion::TLS1,
        "ALL:@SECLEVEL=0",
    );
    spec.implicit = true;
    let srv = spawn(spec).await;
    let mut cfg = config(&ca);
    cfg.implicit_tls_ports = vec![srv.addr.port()];
    let r = probe_cfg(cfg, srv.addr, "mx.test").await.record;
    assert_eq!(r.result, ProbeResult::StarttlsOk, "{:?}", r.error_detail);
    assert_eq!(r.tls_engine, Some(TlsEngine::Openssl));
    assert_eq!(r.tls_version.as_deref(), Some("TLSv1.0"));
    assert_eq!(srv.connections(), 2);
}

#[tokio::test]
async fn implicit_tls_handshake_failure_is_no_stripping_signal() {
    let ca = common::ca("Test CA");
    let mut spec = Spec::plain(b"250 mx.test\r\n");
    spec.implicit = true;
    spec.after_starttls = None;
    let srv = spawn(spec).await;
    let mut cfg = config(&ca);
    cfg.implicit_tls_ports = vec![srv.addr.port()];
    let r = probe_cfg(cfg, srv.addr, "mx.test").await.record;
    assert_eq!(r.result, ProbeResult::Error);
    assert_eq!(
        r.error_class,
        Some(ProbeErrorClass::TlsReset),
        "{:?}",
        r.error_detail
    );
    assert!(r.stripping_signals.is_empty(), "{:?}", r.stripping_signals);
    assert!(r.banner.is_empty());
}
