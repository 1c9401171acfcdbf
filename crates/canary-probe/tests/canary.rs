//! The canary and its probe on loopback: clean, tampered by an in-test middlebox, blocked,
//! implicit TLS, and the vantage self-check. Traffic goes to 127.0.0.0/8 only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxray_canary::{CanaryConfig, CanaryHandle, CanaryServer, CannedReplies, Identity, ListenSpec};
use mxray_canary_probe::{
    canary_record, probe, probe_record, self_check, CanaryLogStatus, DivergenceKind, ProbeOptions,
    Severity, Stream, Verdict,
};
use mxray_model::{CanaryVerdict, Port25Check, ProbeErrorClass, ProbeResult, StrippingSignal};
use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn dialer(source: Option<&str>) -> Dialer {
    Dialer::new(
        Arc::new(DestinationPolicy::new(true, Vec::new())),
        Arc::new(RateLimits::new(RateConfig::default())),
    )
    .with_source_ip(source.map(|s| s.parse().expect("ip")))
    .with_connect_timeout(Duration::from_secs(5))
}

fn opts() -> ProbeOptions {
    ProbeOptions {
        ehlo_name: "probe.mxray.test".into(),
        timeout: Duration::from_secs(5),
        vantage: "test".into(),
        ..ProbeOptions::default()
    }
}

async fn canary() -> CanaryHandle {
    let cfg = CanaryConfig::new(Identity::generate(&[]).expect("cert"));
    CanaryServer::start(cfg).await.expect("canary")
}

/// A middlebox in front of `upstream` that, for clients in 127.0.99.0/24 only, rewrites
/// `STARTTLS` to `XXXXXXXA` in both directions (Cisco-style), and passes everyone else.
async fn middlebox(upstream: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, peer)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let strip = match peer.ip() {
                    IpAddr::V4(v4) => v4.octets()[..3] == [127, 0, 99],
                    IpAddr::V6(_) => false,
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let a = tokio::spawn(pump(cr, sw, strip));
                let b = tokio::spawn(pump(sr, cw, strip));
                let _ = tokio::join!(a, b);
            });
        }
    });
    (addr, task)
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    strip: bool,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &mut buf[..n];
        if strip {
            let mut i = 0;
            while i + 8 <= chunk.len() {
                if chunk[i..i + 8].eq_ignore_ascii_case(b"STARTTLS") {
                    chunk[i..i + 8].copy_from_slice(b"XXXXXXXA");
                }
                i += 1;
            }
        }
        if to.write_all(chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[tokio::test]
async fn direct_probe_from_loopback_is_clean_in_both_directions() {
    let c = canary().await;
    let target = c.smtp_addr().expect("smtp");
    let out = probe(
        &dialer(None),
        target,
        c.expectation(),
        c.control_endpoint().as_ref(),
        &opts(),
    )
    .await;
    let r = &out.report;
    assert_eq!(r.verdict, Verdict::Clean, "{r:#?}");
    assert!(r.findings.is_empty());
    assert_eq!(r.canary_log, CanaryLogStatus::Compared);
    assert_eq!(r.cert_seen, c.expectation().cert_sha256);
    assert_eq!(r.received_plain, c.expectation().plain_stream(false));
    assert_eq!(r.canary_received_plain, out.session.sent_plain);
    assert!(String::from_utf8_lossy(&r.canary_received_plain).contains("STARTTLS\r\n"));

    let (rec, certs) = probe_record(&out.session, uuid::Uuid::now_v7(), "test");
    assert_eq!(rec.result, ProbeResult::StarttlsOk);
    assert!(rec.starttls_advertised);
    assert!(rec.stripping_signals.is_empty());
    assert_eq!(rec.chain_sha256, c.expectation().cert_sha256);
    assert_eq!(certs.len(), 1);
    assert!(rec.transcript.contains("C: STARTTLS"));
}

#[tokio::test]
async fn middlebox_tampering_is_reported_from_the_isp_range_only() {
    let c = canary().await;
    let (mb, _task) = middlebox(c.smtp_addr().expect("smtp")).await;

    // From 127.0.99.1 (the "isp" range): both directions rewritten.
    let out = probe(
        &dialer(Some("127.0.99.1")),
        mb,
        c.expectation(),
        c.control_endpoint().as_ref(),
        &opts(),
    )
    .await;
    let r = &out.report;
    assert_eq!(r.verdict, Verdict::Tampered, "{r:#?}");
    assert_eq!(
        r.local.map(|a| a.ip()),
        Some("127.0.99.1".parse().expect("ip"))
    );
    // The middlebox connects to the canary from 127.0.0.1, so the canary's entry is found by
    // the EHLO token, and the client direction is still compared.
    assert_eq!(
        r.canary_log,
        CanaryLogStatus::Compared,
        "{:?}",
        r.canary_log_detail
    );

    let server = r
        .findings
        .iter()
        .find(|f| f.stream == Stream::ServerPlain)
        .expect("server-to-client finding");
    assert_eq!(server.severity, Severity::Tampered);
    let d = server.divergence.as_ref().expect("divergence");
    assert_eq!(d.kind, DivergenceKind::Differ);
    let exp = c.expectation().plain_stream(false);
    let at = exp[..d.offset].len();
    assert!(
        exp[at..].starts_with(b"STARTTLS\r\n"),
        "diverges at the keyword"
    );
    assert!(d.expected.contains("250-STARTTLS"), "{d:?}");
    assert!(d.actual.contains("250-XXXXXXXA"), "{d:?}");
    assert_eq!(d.line, 6, "greeting + 4 EHLO lines before it");
    assert_eq!(d.column, 5);

    let client = r
        .findings
        .iter()
        .find(|f| f.stream == Stream::ClientPlain)
        .expect("client-to-server finding");
    let d = client.divergence.as_ref().expect("divergence");
    assert_eq!(d.kind, DivergenceKind::Differ);
    assert!(d.expected.starts_with("STARTTLS\\r\\n"), "{d:?}");
    assert!(d.actual.starts_with("XXXXXXXA\\r\\n"), "{d:?}");
    assert!(String::from_utf8_lossy(&r.canary_received_plain).contains("XXXXXXXA\r\n"));
    // The report is data: JSON with the verdict and the diverging bytes.
    let j = serde_json::to_value(r).expect("json");
    assert_eq!(j["verdict"], "tampered");
    assert!(j["findings"][0]["divergence"]["actual"]
        .as_str()
        .expect("str")
        .contains("XXXXXXXA"));

    // The ordinary record says what any scanner would have seen: a mangled STARTTLS.
    let (rec, _) = probe_record(&out.session, uuid::Uuid::now_v7(), "isp");
    assert_eq!(rec.result, ProbeResult::NoStarttls);
    assert!(!rec.starttls_advertised);
    assert_eq!(rec.starttls_reply_code, Some(500));
    assert!(rec
        .stripping_signals
        .contains(&StrippingSignal::StarttlsMangled));

    // The verdict as a `canary_result` row: the streams, the diverging bytes, both addresses.
    let id = uuid::Uuid::now_v7();
    let row = canary_record(&out, id, "isp");
    assert_eq!(row.verdict, CanaryVerdict::Tampered);
    assert_eq!(row.tampered_streams, ["server_plain", "client_plain"]);
    assert_eq!(row.divergence_stream.as_deref(), Some("server_plain"));
    assert_eq!(row.divergence_line, Some(6));
    assert!(row
        .expected_excerpt
        .as_deref()
        .is_some_and(|e| e.contains("250-STARTTLS\\r\\n")));
    assert!(row
        .actual_excerpt
        .as_deref()
        .is_some_and(|a| a.contains("250-XXXXXXXA\\r\\n")));
    assert_eq!(row.local_ip.as_deref(), Some("127.0.99.1"));
    assert_eq!(row.target_port, mb.port());
    assert_eq!(row.canary_log, "compared");
    let saw = row
        .canary_saw_client
        .as_deref()
        .expect("canary saw a client");
    assert!(saw.starts_with("127.0.0.1:"), "{saw}");
    assert_eq!(row.cert_expected, c.expectation().cert_sha256);

    // From 127.0.0.1 through the same middlebox: untouched.
    let out = probe(
        &dialer(Some("127.0.0.1")),
        mb,
        c.expectation(),
        c.control_endpoint().as_ref(),
        &opts(),
    )
    .await;
    assert_eq!(out.report.verdict, Verdict::Clean, "{:#?}", out.report);
    assert_eq!(out.report.canary_log, CanaryLogStatus::Compared);
    let row = canary_record(&out, uuid::Uuid::now_v7(), "clean");
    assert_eq!(row.verdict, CanaryVerdict::Clean);
    assert!(row.tampered_streams.is_empty());
    assert_eq!(row.divergence_offset, None);
    assert_eq!(row.cert_seen, row.cert_expected);
}

async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

#[tokio::test]
async fn a_closed_port_is_blocked_not_tampered_nor_no_starttls() {
    let c = canary().await;
    let target = closed_port().await;
    let out = probe(
        &dialer(None),
        target,
        c.expectation(),
        c.control_endpoint().as_ref(),
        &opts(),
    )
    .await;
    assert_eq!(out.report.verdict, Verdict::Blocked, "{:#?}", out.report);
    assert!(out.report.findings.is_empty());
    assert_eq!(
        out.report.error_class,
        Some(ProbeErrorClass::ConnectRefused)
    );
    let (rec, _) = probe_record(&out.session, uuid::Uuid::now_v7(), "test");
    assert_eq!(rec.result, ProbeResult::Error);
    assert_ne!(rec.result, ProbeResult::NoStarttls);
    assert!(rec.stripping_signals.is_empty());
    let row = canary_record(&out, rec.scan_id, "test");
    assert_eq!(row.verdict, CanaryVerdict::Blocked);
    assert_eq!(row.error_class, Some(ProbeErrorClass::ConnectRefused));
    assert_eq!(
        (row.target_ip.as_str(), row.target_port),
        ("127.0.0.1", target.port())
    );
    assert!(row.tampered_streams.is_empty());
}

#[tokio::test]
async fn accepted_then_silent_is_blocked() {
    let c = canary().await;
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target = l.local_addr().expect("addr");
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let o = ProbeOptions {
        timeout: Duration::from_millis(300),
        ..opts()
    };
    let out = probe(&dialer(None), target, c.expectation(), None, &o).await;
    assert_eq!(out.report.verdict, Verdict::Blocked, "{:#?}", out.report);
    assert_eq!(
        out.report.error_class,
        Some(ProbeErrorClass::GreetingTimeout)
    );
}

#[tokio::test]
async fn implicit_tls_listener_is_clean() {
    let mut cfg = CanaryConfig::new(Identity::generate(&[]).expect("cert"));
    cfg.listen = vec![ListenSpec::implicit_tls("127.0.0.1:0".parse().expect("sa"))];
    let c = CanaryServer::start(cfg).await.expect("canary");
    let o = ProbeOptions {
        implicit_tls: true,
        ..opts()
    };
    let out = probe(
        &dialer(None),
        c.smtp_addr().expect("smtp"),
        c.expectation(),
        c.control_endpoint().as_ref(),
        &o,
    )
    .await;
    assert_eq!(out.report.verdict, Verdict::Clean, "{:#?}", out.report);
    assert!(out.session.received_plain.is_empty());
    assert_eq!(out.session.received_tls, c.expectation().tls_stream(true));
    // A STARTTLS probe against the implicit-TLS port is not clean.
    let out = probe(
        &dialer(None),
        c.smtp_addr().expect("smtp"),
        c.expectation(),
        c.control_endpoint().as_ref(),
        &ProbeOptions {
            timeout: Duration::from_millis(500),
            ..opts()
        },
    )
    .await;
    assert_ne!(out.report.verdict, Verdict::Clean);
}

#[tokio::test]
async fn self_check_open_blocked_intercepted() {
    let c = canary().await;
    let exp = c.expectation().clone();
    let t = Duration::from_secs(5);

    let v = self_check(
        c.smtp_addr().expect("smtp"),
        &exp,
        &dialer(Some("127.0.99.2")),
        t,
    )
    .await;
    assert_eq!(v.port25, Port25Check::Open, "{v:?}");
    assert_eq!(v.source_ip, Some("127.0.99.2".parse().expect("ip")));

    let v = self_check(closed_port().await, &exp, &dialer(None), t).await;
    assert_eq!(v.port25, Port25Check::Blocked, "{v:?}");

    // A different SMTP server (other greeting) where the canary was expected.
    let mut cfg = CanaryConfig::new(Identity::generate(&[]).expect("cert"));
    cfg.replies = CannedReplies {
        greeting: "220 mx.isp-proxy.example ESMTP\r\n".into(),
        ..CannedReplies::default()
    };
    let other = CanaryServer::start(cfg).await.expect("other");
    let v = self_check(other.smtp_addr().expect("smtp"), &exp, &dialer(None), t).await;
    assert_eq!(v.port25, Port25Check::Intercepted, "{v:?}");
    assert!(v.detail.contains("mx.isp-proxy.example"), "{}", v.detail);

    // Same bytes, another certificate: a TLS-intercepting proxy.
    let mitm = canary().await;
    let v = self_check(mitm.smtp_addr().expect("smtp"), &exp, &dialer(None), t).await;
    assert_eq!(v.port25, Port25Check::Intercepted, "{v:?}");
    assert!(v.detail.contains("certificate"), "{}", v.detail);

    // The self-check target is usually private only in tests; without --allow-private the
    // policy refuses it and the check says so instead of guessing.
    let strict = Dialer::new(
        Arc::new(DestinationPolicy::new(false, Vec::new())),
        Arc::new(RateLimits::new(RateConfig::default())),
    );
    let v = self_check(c.smtp_addr().expect("smtp"), &exp, &strict, t).await;
    assert_eq!(v.port25, Port25Check::NotChecked, "{v:?}");
}

#[tokio::test]
async fn canary_logs_raw_client_bytes_to_file_and_refuses_mail() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("canary.jsonl");
    let mut cfg = CanaryConfig::new(Identity::generate(&[]).expect("cert"));
    cfg.log_file = Some(path.clone());
    let c = CanaryServer::start(cfg).await.expect("canary");
    let mut s = TcpStream::connect(c.smtp_addr().expect("smtp"))
        .await
        .expect("connect");
    let local = s.local_addr().expect("local");
    let mut got = Vec::new();
    s.write_all(b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n\x00\xffjunk\r\nQUIT\r\n")
        .await
        .expect("write");
    s.read_to_end(&mut got).await.expect("read");
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("550 5.7.1"), "{text}");
    assert!(text.contains("500 5.5.1"), "{text}");
    assert!(text.ends_with("221 2.0.0 Bye\r\n"), "{text}");
    let entry = c.log().find(local).expect("logged");
    assert_eq!(
        entry.received_plain,
        b"EHLO x\r\nMAIL FROM:<a@example.org>\r\n\x00\xffjunk\r\nQUIT\r\n"
    );
    // The file line is written when the session ends; give the task a moment to get there.
    let mut line = String::new();
    for _ in 0..100 {
        line = std::fs::read_to_string(&path).unwrap_or_default();
        if !line.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json line");
    assert_eq!(v["client"], local.to_string());
    assert_eq!(v["ended"], "closed_by_canary");
    assert!(v["received_plain"]
        .as_str()
        .expect("str")
        .contains("\\x00\\xffjunk"));
}

#[tokio::test]
async fn overlong_lines_are_cut_off() {
    let c = canary().await;
    let mut s = TcpStream::connect(c.smtp_addr().expect("smtp"))
        .await
        .expect("connect");
    let _ = s.write_all(&vec![b'A'; 5000]).await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
    assert!(String::from_utf8_lossy(&got).contains("500 5.5.2 Line too long"));
}

/// A peer that writes `bytes` on connect and then keeps the connection open for a while.
async fn fake_peer(bytes: Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let b = bytes.clone();
            tokio::spawn(async move {
                let _ = s.write_all(&b).await;
                let mut sink = [0u8; 1024];
                let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut sink)).await;
            });
        }
    });
    a
}

#[tokio::test]
async fn a_non_smtp_answer_is_tampering_with_its_bytes() {
    let c = canary().await;
    let target = fake_peer(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
    let out = probe(&dialer(None), target, c.expectation(), None, &opts()).await;
    assert_eq!(out.report.verdict, Verdict::Tampered, "{:#?}", out.report);
    assert_eq!(out.report.error_class, Some(ProbeErrorClass::ProtocolError));
    let d = out.report.findings[0]
        .divergence
        .as_ref()
        .expect("divergence");
    assert_eq!((d.offset, d.line, d.column), (0, 1, 1));
    assert!(d.actual.starts_with("HTTP/1.1 400"), "{d:?}");
    let v = self_check(
        target,
        c.expectation(),
        &dialer(None),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(v.port25, Port25Check::Intercepted, "{v:?}");
}

#[tokio::test]
async fn an_endless_reply_is_cut_off_and_kept_bounded() {
    let c = canary().await;
    let mut junk = b"220 ".to_vec();
    junk.extend(std::iter::repeat_n(b'a', 1 << 20));
    let target = fake_peer(junk).await;
    let o = ProbeOptions {
        max_bytes: 512,
        ..opts()
    };
    let out = probe(&dialer(None), target, c.expectation(), None, &o).await;
    assert_eq!(out.report.error_class, Some(ProbeErrorClass::ReplyTooLong));
    assert_eq!(out.report.verdict, Verdict::Tampered);
    assert_eq!(out.session.received_plain.len(), 512);
    assert!(out.session.truncated);
}
