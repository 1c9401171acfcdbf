//! The JSON wire format matches DESIGN.md: field names, verdict strings, the `record` tag.

use mxray_model::*;
use serde_json::Value;

fn keys(v: &Value) -> Vec<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

#[test]
fn every_record_round_trips_through_json() {
    for rec in examples::all() {
        let line = serde_json::to_string(&rec).expect("serialize");
        let back: Record = serde_json::from_str(&line).expect("deserialize");
        assert_eq!(back, rec, "{line}");
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["record"], rec.kind().as_str());
    }
}

#[test]
fn design_md_field_names_are_present() {
    // The fields DESIGN.md names for each record (a subset: we add a few more).
    let want: &[(RecordKind, &[&str])] = &[
        (
            RecordKind::Scan,
            &[
                "scan_id",
                "vantage",
                "started_at",
                "finished_at",
                "source_ip",
                "tool_version",
                "config",
                "input_name",
                "input_sha256",
            ],
        ),
        (
            RecordKind::Domain,
            &[
                "scan_id",
                "vantage",
                "domain",
                "mx_kind",
                "mx_dnssec",
                "mx_hosts",
                "starttls",
                "pkix",
                "dane",
                "mta_sts",
                "mta_sts_error",
                "mta_sts_compliant",
                "tls_rpt",
                "tlsrpt_results",
                "stripping_suspected",
                "stripping_signals",
                "errors",
            ],
        ),
        (
            RecordKind::DnsHost,
            &[
                "host",
                "addresses",
                "cname_chain",
                "address_rcode",
                "address_dnssec",
                "tlsa_owner",
                "tlsa_rcode",
                "tlsa_dnssec",
                "tlsa",
            ],
        ),
        (
            RecordKind::SmtpProbe,
            &[
                "ip",
                "port",
                "sni",
                "result",
                "error_class",
                "banner",
                "ehlo_keywords",
                "starttls_advertised",
                "starttls_reply_code",
                "tls_version",
                "cipher",
                "kx_group",
                "chain_sha256",
                "pkix_valid",
                "pkix_error",
                "dane",
                "stripping_signals",
                "transcript",
            ],
        ),
        (
            RecordKind::Certificate,
            &[
                "sha256",
                "der",
                "subject",
                "issuer",
                "sans",
                "not_before",
                "not_after",
                "spki_sha256",
                "key_type",
            ],
        ),
        (
            RecordKind::MtaStsPolicy,
            &[
                "domain",
                "txt_records",
                "policy_id",
                "status",
                "error_class",
                "http_status",
                "content_type",
                "policy_raw",
                "mode",
                "mx_patterns",
                "max_age",
                "warnings",
            ],
        ),
        (
            RecordKind::CanaryResult,
            &[
                "probed_at",
                "target_ip",
                "target_port",
                "local_ip",
                "local_port",
                "implicit_tls",
                "verdict",
                "error_class",
                "detail",
                "tampered_streams",
                "divergence_stream",
                "divergence_offset",
                "divergence_line",
                "expected_excerpt",
                "actual_excerpt",
                "canary_log",
                "canary_saw_client",
                "cert_expected",
                "cert_seen",
                "report",
            ],
        ),
    ];
    for rec in examples::all() {
        let v = serde_json::to_value(&rec).expect("json");
        let have = keys(&v);
        let (_, fields) = want
            .iter()
            .find(|(k, _)| *k == rec.kind())
            .expect("kind listed");
        for f in *fields {
            assert!(have.iter().any(|h| h == f), "{} lacks {f}", rec.kind());
        }
        assert!(have.iter().any(|h| h == "scan_id") && have.iter().any(|h| h == "vantage"));
    }
}

#[test]
fn verdict_strings_are_exactly_design_md() {
    let strings = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        MxKind::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&["mx", "null_mx", "implicit", "none", "error"])
    );
    assert_eq!(
        StarttlsVerdict::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&["all", "some", "none", "unreachable", "n/a"])
    );
    assert_eq!(
        PkixVerdict::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&["all", "some", "none", "n/a"])
    );
    assert_eq!(
        DaneVerdict::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&[
            "none",
            "insecure",
            "bogus",
            "valid",
            "partial",
            "mismatch",
            "no_tls",
            "unusable",
            "unverified"
        ])
    );
    assert_eq!(
        MtaStsStatus::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&[
            "none",
            "lookup_error",
            "txt_invalid",
            "fetch_error",
            "policy_invalid",
            "enforce",
            "testing",
            "mode_none"
        ])
    );
    assert_eq!(
        MtaStsError::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&[
            "dns",
            "connect",
            "tls",
            "cert",
            "http_status",
            "http_protocol",
            "redirect",
            "content_type",
            "too_large",
            "timeout"
        ])
    );
    assert_eq!(
        DnssecStatus::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&["secure", "insecure", "bogus", "indeterminate"])
    );
    assert_eq!(
        TlsRptResult::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&[
            "starttls-not-supported",
            "certificate-host-mismatch",
            "certificate-expired",
            "certificate-not-trusted",
            "validation-failure",
            "tlsa-invalid",
            "dnssec-invalid",
            "dane-required",
            "sts-policy-fetch-error",
            "sts-policy-invalid",
            "sts-webpki-invalid"
        ])
    );
    assert_eq!(
        StrippingSignal::ALL
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>(),
        strings(&[
            "starttls_mangled",
            "banner_masked",
            "starttls_rejected",
            "tls_failed_after_ready",
            "missing_despite_policy",
            "starttls_forced_ok",
            "vantage_disagreement",
            "history_regression"
        ])
    );
}

#[test]
fn canary_vocabulary_and_table() {
    let words: Vec<String> = CanaryVerdict::ALL.iter().map(|v| v.to_string()).collect();
    assert_eq!(words, ["clean", "tampered", "blocked", "error"]);
    assert_eq!(RecordKind::CanaryResult.table(), "canary_results");
    let v = serde_json::to_value(Record::from(examples::canary_result())).expect("json");
    assert_eq!(v["record"], "canary_result");
    assert_eq!(v["verdict"], "tampered");
    assert_eq!(v["error_class"], "starttls_5xx");
    let err = "stripped"
        .parse::<CanaryVerdict>()
        .expect_err("not a verdict");
    assert_eq!(err.to_string(), "\"stripped\" is not a valid CanaryVerdict");
}

#[test]
fn every_table_has_an_example() {
    let kinds: Vec<RecordKind> = examples::all().iter().map(Record::kind).collect();
    assert_eq!(kinds, RecordKind::ALL);
}

#[test]
fn dane_aggregate_order_is_worst_first() {
    use DaneVerdict::*;
    let order = [Bogus, NoTls, Mismatch, Unusable, Partial, Valid];
    for w in order.windows(2) {
        assert!(
            w[0].severity() > w[1].severity(),
            "{} should outrank {}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn unknown_verdict_string_is_rejected_with_its_name() {
    let err = serde_json::from_str::<MxKind>("\"maybe\"").expect_err("must fail");
    assert!(err.to_string().contains("maybe"), "{err}");
    let err = "maybe".parse::<DaneVerdict>().expect_err("must fail");
    assert_eq!(err.to_string(), "\"maybe\" is not a valid DaneVerdict");
}

#[test]
fn timestamps_are_rfc3339_in_json() {
    let v = serde_json::to_value(examples::scan()).expect("json");
    assert_eq!(v["started_at"], "2025-11-29T12:00:00Z");
    assert_eq!(v["scan_id"], "01937a2e-5b00-7000-8000-000000000001");
}
