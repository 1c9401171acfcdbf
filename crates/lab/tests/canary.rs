//! The lab canary: the embedded `mxray-canary` server behind the lab's own stripping
//! middlebox (not an in-test proxy). From the isp range (127.0.99.1) the probe must report
//! `tampered` with the diverging bytes in both directions; from 127.0.0.1 `clean`; a closed
//! port `blocked`. Loopback only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxray_canary_probe::{
    canary_record, fetch_expectation, probe, probe_record, CanaryLogStatus, DivergenceKind,
    ProbeOptions, Severity, Stream, Verdict,
};
use mxray_lab::{Lab, LabOptions, PortChoice, CANARY_BACKEND_IP, CANARY_IP, ISP_SOURCE};
use mxray_model::{CanaryVerdict, ProbeErrorClass, ProbeResult, StrippingSignal};
use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};

const T: Duration = Duration::from_secs(10);

async fn lab() -> Lab {
    Lab::start(LabOptions {
        ports: PortChoice::High,
        ..LabOptions::default()
    })
    .await
    .expect("lab starts")
}

fn dialer(source: Option<IpAddr>) -> Dialer {
    Dialer::new(
        Arc::new(DestinationPolicy::new(true, Vec::new())),
        Arc::new(RateLimits::new(RateConfig::default())),
    )
    .with_source_ip(source)
    .with_connect_timeout(T)
}

fn opts(vantage: &str) -> ProbeOptions {
    ProbeOptions {
        ehlo_name: "probe.mxray.test".into(),
        timeout: T,
        vantage: vantage.into(),
        ..ProbeOptions::default()
    }
}

#[tokio::test]
async fn the_lab_canary_is_tampered_from_the_isp_range_and_clean_from_elsewhere() {
    let lab = lab().await;
    assert_eq!(lab.canary_smtp().ip(), IpAddr::V4(CANARY_IP));
    assert_eq!(lab.canary_smtp().port(), lab.smtp_port());
    assert_eq!(lab.canary_control().ip(), IpAddr::V4(CANARY_BACKEND_IP));
    assert!(lab.describe().contains(&lab.canary_smtp().to_string()));
    assert!(lab.describe().contains(&lab.canary_control().to_string()));

    // The expectation as a remote vantage gets it: from the control endpoint.
    let isp = dialer(Some(IpAddr::V4(ISP_SOURCE)));
    let exp = fetch_expectation(&isp, &lab.canary_control_endpoint(), T)
        .await
        .expect("expectation");
    assert_eq!(&exp, lab.canary_expectation());

    // From the isp range: the middlebox masks STARTTLS in both directions.
    let out = probe(
        &isp,
        lab.canary_smtp(),
        &exp,
        Some(&lab.canary_control_endpoint()),
        &opts("isp"),
    )
    .await;
    let r = &out.report;
    assert_eq!(r.verdict, Verdict::Tampered, "{r:#?}");
    assert_eq!(r.local.map(|a| a.ip()), Some(IpAddr::V4(ISP_SOURCE)));
    // The canary sees the middlebox's connection, found again by the EHLO token.
    assert_eq!(
        r.canary_log,
        CanaryLogStatus::Compared,
        "{:?}",
        r.canary_log_detail
    );
    let canary_saw = r.canary_client.expect("canary's client address");
    assert_ne!(Some(canary_saw), r.local, "a proxy sits on the path");
    let server = r
        .findings
        .iter()
        .find(|f| f.stream == Stream::ServerPlain)
        .expect("canary-to-probe finding");
    assert_eq!(server.severity, Severity::Tampered);
    let d = server.divergence.as_ref().expect("divergence");
    assert_eq!(d.kind, DivergenceKind::Differ);
    assert!(d.expected.contains("250-STARTTLS\\r\\n"), "{d:?}");
    assert!(d.actual.contains("250-XXXXXXXA\\r\\n"), "{d:?}");
    let client = r
        .findings
        .iter()
        .find(|f| f.stream == Stream::ClientPlain)
        .expect("probe-to-canary finding: the rewritten command");
    let d = client.divergence.as_ref().expect("divergence");
    assert!(d.expected.starts_with("STARTTLS\\r\\n"), "{d:?}");
    assert!(d.actual.starts_with("XXXXXXXA\\r\\n"), "{d:?}");

    // As records: the verdict row with the diverging bytes, and the ordinary probe row.
    let id = uuid::Uuid::now_v7();
    let row = canary_record(&out, id, "isp");
    assert_eq!(row.verdict, CanaryVerdict::Tampered);
    assert_eq!(row.tampered_streams, ["server_plain", "client_plain"]);
    assert_eq!(row.target_ip, CANARY_IP.to_string());
    assert_eq!(row.local_ip, Some(ISP_SOURCE.to_string()));
    assert_eq!(row.canary_saw_client, Some(canary_saw.to_string()));
    assert!(row
        .actual_excerpt
        .as_deref()
        .is_some_and(|a| a.contains("XXXXXXXA")));
    let (probe_row, _) = probe_record(&out.session, id, "isp");
    assert_eq!(probe_row.result, ProbeResult::NoStarttls);
    assert!(probe_row
        .stripping_signals
        .contains(&StrippingSignal::StarttlsMangled));

    // From 127.0.0.1 through the same middlebox: a transparent pipe.
    let clean = dialer(Some("127.0.0.1".parse().expect("ip")));
    let out = probe(
        &clean,
        lab.canary_smtp(),
        &exp,
        Some(&lab.canary_control_endpoint()),
        &opts("clean"),
    )
    .await;
    assert_eq!(out.report.verdict, Verdict::Clean, "{:#?}", out.report);
    assert_eq!(out.report.canary_log, CanaryLogStatus::Compared);
    assert_eq!(out.report.cert_seen, exp.cert_sha256);
    let row = canary_record(&out, uuid::Uuid::now_v7(), "clean");
    assert_eq!(row.verdict, CanaryVerdict::Clean);
    assert!(row.tampered_streams.is_empty());

    // Both sessions are in the canary's own log, with the rewritten command for the isp one.
    let log = lab.canary_log().entries();
    assert_eq!(log.len(), 2, "{log:#?}");
    assert!(log[0].received_plain.windows(8).any(|w| w == b"XXXXXXXA"));
    assert!(log[1]
        .received_plain
        .windows(10)
        .any(|w| w == b"STARTTLS\r\n"));
    lab.shutdown().await;
}

#[tokio::test]
async fn a_closed_canary_port_is_blocked_not_stripped() {
    let lab = lab().await;
    // A port of the canary's address that nothing listens on (bound, then closed).
    let closed = {
        let l =
            std::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(CANARY_IP), 0)).expect("bind");
        l.local_addr().expect("addr")
    };
    let isp = dialer(Some(IpAddr::V4(ISP_SOURCE)));
    let out = probe(
        &isp,
        closed,
        lab.canary_expectation(),
        Some(&lab.canary_control_endpoint()),
        &opts("isp"),
    )
    .await;
    assert_eq!(out.report.verdict, Verdict::Blocked, "{:#?}", out.report);
    assert_eq!(
        out.report.error_class,
        Some(ProbeErrorClass::ConnectRefused)
    );
    let row = canary_record(&out, uuid::Uuid::now_v7(), "isp");
    assert_eq!(row.verdict, CanaryVerdict::Blocked);
    assert!(row.tampered_streams.is_empty());
    let (probe_row, _) = probe_record(&out.session, row.scan_id, "isp");
    assert_ne!(probe_row.result, ProbeResult::NoStarttls);
    assert!(probe_row.stripping_signals.is_empty());
    lab.shutdown().await;
}
