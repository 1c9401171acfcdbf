//! One fully populated example of every record type, for tests and documentation.
//!
//! Every optional field is `Some`, every list non-empty, so a round trip through any sink
//! exercises every column.

use uuid::Uuid;

use crate::*;

/// A fixed scan id (UUID v7 layout) shared by all examples.
pub fn scan_id() -> Uuid {
    Uuid::from_u128(0x0193_7a2e_5b00_7000_8000_0000_0000_0001)
}

const AT: UtcTime = UtcTime::from_unix(1_764_417_600); // 2025-11-29T12:00:00Z

/// Example `scan` record.
pub fn scan() -> ScanRecord {
    ScanRecord {
        scan_id: scan_id(),
        vantage: "default".into(),
        started_at: AT,
        finished_at: Some(UtcTime::from_unix(AT.unix() + 95)),
        status: ScanStatus::Complete,
        source_ip: Some("127.0.0.1".into()),
        source_rdns: Some("localhost".into()),
        port25_check: Port25Check::Open,
        tool_version: "0.1.0".into(),
        schema_version: SCHEMA_VERSION,
        config: r#"{"rate":100}"#.into(),
        input_name: "domains.txt".into(),
        input_sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        shard: "0/1".into(),
        domains_total: 2,
        domains_done: 2,
        input_errors: 1,
        dns_hosts: 1,
        smtp_probes: 1,
        certificates: 1,
        mta_sts_policies: 1,
        campaign: "c-3f6a0c1e9d2b7a45".into(),
    }
}

/// Example `domain` record.
pub fn domain() -> DomainRecord {
    DomainRecord {
        scan_id: scan_id(),
        vantage: "default".into(),
        scanned_at: AT,
        domain: "example.com".into(),
        mx_kind: MxKind::Mx,
        mx_dnssec: DnssecStatus::Secure,
        mx_rcode: DnsOutcome::NoError,
        mx_hosts: vec!["mx1.example.com".into(), "mx2.example.com".into()],
        starttls: StarttlsVerdict::Some,
        pkix: PkixVerdict::All,
        dane: DaneVerdict::Partial,
        mta_sts: MtaStsStatus::FetchError,
        mta_sts_error: Some(MtaStsError::Redirect),
        mta_sts_compliant: Some(false),
        tls_rpt: true,
        tls_rpt_rua: vec!["mailto:tlsrpt@example.com".into()],
        tlsrpt_results: vec![
            TlsRptResult::StarttlsNotSupported,
            TlsRptResult::StsPolicyFetchError,
        ],
        stripping_suspected: true,
        stripping_signals: vec![StrippingSignal::StarttlsMangled],
        errors: vec!["smtp:connect_timeout: 192.0.2.7:25".into()],
        tls_legacy: true,
    }
}

/// Example `dns_host` record.
pub fn dns_host() -> DnsHostRecord {
    DnsHostRecord {
        scan_id: scan_id(),
        vantage: "default".into(),
        resolved_at: AT,
        host: "mx1.example.com".into(),
        addresses: vec!["192.0.2.7".into(), "2001:db8::7".into()],
        cname_chain: vec!["mail.provider.example".into()],
        address_rcode: DnsOutcome::NoError,
        address_dnssec: DnssecStatus::Secure,
        address_ttl: Some(300),
        tlsa_owner: Some("_25._tcp.mail.provider.example".into()),
        tlsa_rcode: DnsOutcome::NoError,
        tlsa_dnssec: DnssecStatus::Secure,
        tlsa_ttl: Some(3600),
        tlsa: vec![TlsaRecord {
            usage: 3,
            selector: 1,
            matching_type: 1,
            data: "8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1".into(),
        }],
        ede: vec!["9: DNSKEY Missing".into()],
        errors: vec!["AAAA:timeout".into()],
        a_dnssec: DnssecStatus::Secure,
        aaaa_dnssec: DnssecStatus::Indeterminate,
        attempt: 2,
    }
}

/// Example `smtp_probe` record.
pub fn smtp_probe() -> SmtpProbeRecord {
    SmtpProbeRecord {
        scan_id: scan_id(),
        vantage: "default".into(),
        probed_at: AT,
        ip: "192.0.2.7".into(),
        port: 25,
        sni: Some("mx1.example.com".into()),
        connect_ms: Some(12),
        greeting_ms: Some(40),
        ehlo_ms: Some(11),
        starttls_ms: Some(10),
        tls_ms: Some(25),
        total_ms: 130,
        result: ProbeResult::StarttlsOk,
        error_class: Some(ProbeErrorClass::PostTlsError),
        error_detail: Some("EHLO after TLS: connection closed".into()),
        banner: "220 mx1.example.com ESMTP Postfix".into(),
        ehlo_keywords: vec![
            "PIPELINING".into(),
            "SIZE 10240000".into(),
            "STARTTLS".into(),
        ],
        ehlo_raw: "250-mx1.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n"
            .into(),
        starttls_advertised: true,
        starttls_reply_code: Some(220),
        starttls_reply_text: Some("2.0.0 Ready to start TLS".into()),
        tls_version: Some("TLSv1.3".into()),
        cipher: Some("TLS13_AES_256_GCM_SHA384".into()),
        kx_group: Some("X25519".into()),
        tls_alert: Some(40),
        chain_sha256: vec![
            "5d41402abc4b2a76b9719d911017c592ae9ee0f6d1e6c2f4b1f3a3e1f2b3c4d5".into(),
        ],
        pkix_valid: Some(true),
        pkix_error: Some(PkixError::Expired),
        dane: DaneVerdict::Valid,
        dane_match: Some("3 1 1".into()),
        post_tls_ehlo_keywords: vec!["PIPELINING".into()],
        stripping_signals: vec![StrippingSignal::BannerMasked],
        tlsrpt_results: vec![TlsRptResult::CertificateExpired],
        transcript: "S: 220 mx1.example.com ESMTP\r\nC: EHLO scanner.example\r\n".into(),
        reached_ehlo: true,
        starttls_forced: true,
        limiter_wait_ms: Some(3),
        attempt: 2,
        tls_engine: Some(TlsEngine::Openssl),
        tls_fallback_reason: Some(TlsFallbackReason::ProtocolVersion),
        tls_fallback_detail: Some("alert 70 (ProtocolVersion)".into()),
        tls_fallback_transcript: "S: 220 mx1.example.com ESMTP\r\nC: STARTTLS\r\n".into(),
        tls_legacy: true,
    }
}

/// Example `certificate` record.
pub fn certificate() -> CertificateRecord {
    CertificateRecord {
        scan_id: scan_id(),
        vantage: "default".into(),
        sha256: "5d41402abc4b2a76b9719d911017c592ae9ee0f6d1e6c2f4b1f3a3e1f2b3c4d5".into(),
        der: "MIIB".into(),
        subject: "CN=mx1.example.com".into(),
        issuer: "CN=Example CA".into(),
        sans: vec!["mx1.example.com".into(), "192.0.2.7".into()],
        not_before: UtcTime::from_unix(AT.unix() - 86_400),
        not_after: UtcTime::from_unix(AT.unix() + 86_400 * 90),
        serial: "01a2".into(),
        spki_sha256: "8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1".into(),
        key_type: "EC P-256".into(),
        signature_algorithm: "ecdsa-with-SHA256".into(),
        is_ca: false,
        self_issued: false,
    }
}

/// Example `mta_sts_policy` record.
pub fn mta_sts_policy() -> MtaStsPolicyRecord {
    MtaStsPolicyRecord {
        scan_id: scan_id(),
        vantage: "default".into(),
        fetched_at: AT,
        domain: "example.com".into(),
        txt_records: vec!["v=STSv1; id=20251129T000000;".into()],
        policy_id: Some("20251129T000000".into()),
        status: MtaStsStatus::Enforce,
        error_class: Some(MtaStsError::Timeout),
        error_detail: Some("none".into()),
        http_status: Some(200),
        content_type: Some("text/plain; charset=utf-8".into()),
        policy_raw: Some(
            "version: STSv1\r\nmode: enforce\r\nmx: *.example.com\r\nmax_age: 86400\r\n".into(),
        ),
        mode: Some(MtaStsMode::Enforce),
        mx_patterns: vec!["*.example.com".into()],
        max_age: Some(86_400),
        warnings: vec!["content_type_parameters".into()],
    }
}

/// Example `canary_result` record: a canary behind a middlebox that masks `STARTTLS`.
pub fn canary_result() -> CanaryResultRecord {
    CanaryResultRecord {
        scan_id: scan_id(),
        vantage: "isp".into(),
        probed_at: AT,
        target_ip: "198.51.100.7".into(),
        target_port: 25,
        local_ip: Some("192.0.2.10".into()),
        local_port: Some(40_123),
        implicit_tls: false,
        verdict: CanaryVerdict::Tampered,
        error_class: Some(ProbeErrorClass::Starttls5xx),
        detail: "canary-to-probe stream before TLS differs at byte 124 (line 6, column 5)".into(),
        tampered_streams: vec!["server_plain".into(), "client_plain".into()],
        divergence_stream: Some("server_plain".into()),
        divergence_kind: Some("differ".into()),
        divergence_offset: Some(124),
        divergence_line: Some(6),
        expected_excerpt: Some("250-STARTTLS\\r\\n250 SMTPUTF8\\r\\n".into()),
        actual_excerpt: Some("250-XXXXXXXA\\r\\n250 SMTPUTF8\\r\\n".into()),
        canary_log: "compared".into(),
        canary_saw_client: Some("203.0.113.9:61002".into()),
        cert_expected: vec![
            "6e5ee7bb0c1d2e3f405162738495a6b7c8d9eaf0b1c2d3e4f5061728394a5b6c".into(),
        ],
        cert_seen: vec!["5d41402abc4b2a76b9719d911017c592ae9ee0f6d1e6c2f4b1f3a3e1f2b3c4d5".into()],
        report: r#"{"verdict":"tampered","findings":[]}"#.into(),
    }
}

/// One example of every record type, in table order.
pub fn all() -> Vec<Record> {
    vec![
        scan().into(),
        domain().into(),
        dns_host().into(),
        smtp_probe().into(),
        certificate().into(),
        mta_sts_policy().into(),
        canary_result().into(),
    ]
}
