//! The canary's authenticated control channel, on loopback: the right key works, a wrong key
//! is a clear error, an answer rewritten or replayed on the path is recorded as tampering of
//! the control path, and a client without the key reads nothing of the log.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mxray_canary::auth::{self, KEY_LEN};
use mxray_canary::{
    CanaryConfig, CanaryError, CanaryHandle, CanaryServer, ControlEndpoint, ControlKey, Identity,
};
use mxray_canary_probe::{
    canary_record, control_forged, fetch_client_log, fetch_expectation, probe, run_session,
    CanaryLogStatus, CanaryView, ProbeOptions, Severity, Stream, Verdict,
};
use mxray_model::CanaryVerdict;
use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(5);

fn dialer() -> Dialer {
    Dialer::new(
        Arc::new(DestinationPolicy::new(true, Vec::new())),
        Arc::new(RateLimits::new(RateConfig::default())),
    )
    .with_connect_timeout(T)
}

fn opts() -> ProbeOptions {
    ProbeOptions {
        ehlo_name: "probe.mxray.test".into(),
        timeout: T,
        vantage: "test".into(),
        ..ProbeOptions::default()
    }
}

async fn canary() -> CanaryHandle {
    let cfg = CanaryConfig::new(Identity::generate(&[]).expect("cert"));
    CanaryServer::start(cfg).await.expect("canary")
}

/// How the in-test proxy on the control path treats the canary's answers.
#[derive(Clone, Copy)]
enum Path {
    /// Change the first `S` of `STARTTLS` in each answer to `X`: one byte.
    RewriteOneByte,
    /// Forward the first connection; answer every later one with the first answer, verbatim.
    Replay,
}

/// A proxy in front of the control endpoint `upstream`, one request per connection.
async fn control_proxy(upstream: SocketAddr, path: Path) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let recorded: Arc<Mutex<Option<Vec<u8>>>> = Arc::new(Mutex::new(None));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = l.accept().await else {
                return;
            };
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let mut client = BufReader::new(client);
                let mut request = Vec::new();
                if client.read_until(b'\n', &mut request).await.is_err() {
                    return;
                }
                let old = recorded.lock().expect("lock").clone();
                let answer = match (path, old) {
                    (Path::Replay, Some(old)) => old,
                    _ => {
                        let Ok(server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let mut server = BufReader::new(server);
                        if server.get_mut().write_all(&request).await.is_err() {
                            return;
                        }
                        let mut answer = Vec::new();
                        if server.read_until(b'\n', &mut answer).await.is_err() {
                            return;
                        }
                        if let Path::RewriteOneByte = path {
                            if let Some(i) = answer.windows(8).position(|w| w == b"STARTTLS") {
                                answer[i] = b'X';
                            }
                        }
                        *recorded.lock().expect("lock") = Some(answer.clone());
                        answer
                    }
                };
                let _ = client.get_mut().write_all(&answer).await;
                let _ = client.get_mut().shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn the_right_key_is_answered_and_a_wrong_key_is_refused_clearly() {
    let c = canary().await;
    let control = c.control_endpoint().expect("control endpoint");
    let exp = fetch_expectation(&dialer(), &control, T)
        .await
        .expect("the canary's own key is answered");
    assert_eq!(&exp, c.expectation());

    let wrong = ControlEndpoint {
        addr: control.addr,
        key: ControlKey::from_bytes([0x42; KEY_LEN]),
    };
    let err = fetch_expectation(&dialer(), &wrong, T)
        .await
        .expect_err("a wrong key is refused");
    let CanaryError::Key(msg) = &err else {
        panic!("a wrong key is a key error, got {err:?}");
    };
    assert!(msg.contains("refused the control key"), "{msg}");
    assert!(
        msg.contains(&wrong.key.fingerprint()),
        "names the key by fingerprint: {msg}"
    );
    assert!(!msg.contains(&wrong.key.to_text()), "never prints the key");
}

#[tokio::test]
async fn an_answer_rewritten_on_the_control_path_is_recorded_as_tampering() {
    let c = canary().await;
    let target = c.smtp_addr().expect("smtp");
    let real = c.control_endpoint().expect("control");
    let proxied = ControlEndpoint {
        addr: control_proxy(real.addr, Path::RewriteOneByte).await,
        key: real.key.clone(),
    };

    // The same session through the clean control path: clean, so the SMTP path is clean and
    // only the control path differs below.
    let out = probe(&dialer(), target, c.expectation(), Some(&real), &opts()).await;
    assert_eq!(out.report.verdict, Verdict::Clean, "{:#?}", out.report);

    let out = probe(&dialer(), target, c.expectation(), Some(&proxied), &opts()).await;
    let r = &out.report;
    assert_eq!(r.verdict, Verdict::Tampered, "{r:#?}");
    assert_eq!(r.canary_log, CanaryLogStatus::Forged);
    assert_eq!(r.findings.len(), 1, "only the control path: {r:#?}");
    let f = &r.findings[0];
    assert_eq!(
        (f.stream, f.severity),
        (Stream::Control, Severity::Tampered)
    );
    assert!(f.detail.contains("MAC does not verify"), "{}", f.detail);
    let row = canary_record(&out, uuid::Uuid::now_v7(), "test");
    assert_eq!(row.verdict, CanaryVerdict::Tampered);
    assert_eq!(row.tampered_streams, ["control"]);
    assert_eq!(row.canary_log, "forged");

    // The expectation itself through that path: an authentication error, recorded the same
    // way by `control_forged` (what `mxray canary probe` writes).
    let err = fetch_expectation(&dialer(), &proxied, T)
        .await
        .expect_err("rewritten EXPECT");
    let CanaryError::Unauthenticated(why) = err else {
        panic!("not an authentication failure: {err:?}");
    };
    let out = control_forged(target, "test", &why);
    let row = canary_record(&out, uuid::Uuid::now_v7(), "test");
    assert_eq!(row.verdict, CanaryVerdict::Tampered);
    assert_eq!(row.tampered_streams, ["control"]);
    assert_eq!(row.canary_log, "forged");
}

#[tokio::test]
async fn a_replayed_answer_is_rejected() {
    let c = canary().await;
    let target = c.smtp_addr().expect("smtp");
    let real = c.control_endpoint().expect("control");
    let session = run_session(&dialer(), target, &opts()).await;
    let local = session.local.expect("connected");
    let replaying = ControlEndpoint {
        addr: control_proxy(real.addr, Path::Replay).await,
        key: real.key.clone(),
    };
    // First: the genuine answer, forwarded (and recorded by the proxy).
    let first = fetch_client_log(&dialer(), &replaying, local, T).await;
    let CanaryView::Log(log) = first else {
        panic!("the forwarded answer verifies: {first:?}");
    };
    assert_eq!(log.client, local);
    // Then the very same request, answered with that recorded answer: same command, same
    // bytes, but the nonce is new.
    let second = fetch_client_log(&dialer(), &replaying, local, T).await;
    let CanaryView::Forged(why) = &second else {
        panic!("a replayed answer must not verify: {second:?}");
    };
    assert!(why.contains("replayed"), "{why}");
}

/// Everything a raw TCP client gets back for `line` until the canary closes.
async fn raw_control(addr: SocketAddr, line: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(line).await.expect("write");
    let mut out = Vec::new();
    // A reset (the canary closing with unread bytes) ends the answer like a close does.
    let _ = tokio::time::timeout(T, s.read_to_end(&mut out))
        .await
        .expect("the canary closes");
    out
}

#[tokio::test]
async fn a_client_without_the_key_reads_no_client_address() {
    let c = canary().await;
    let target = c.smtp_addr().expect("smtp");
    let control = c.control_endpoint().expect("control");
    let session = run_session(&dialer(), target, &opts()).await;
    let local = session.local.expect("connected");
    // The entry is there for a client with the key.
    let view = fetch_client_log(&dialer(), &control, local, T).await;
    assert!(
        matches!(&view, CanaryView::Log(l) if l.client == local),
        "{view:?}"
    );

    let refusal = format!("{}\n", auth::REFUSAL).into_bytes();
    let nonce = [7u8; auth::NONCE_LEN];
    let wrong = ControlKey::from_bytes([1; KEY_LEN]);
    let mut signed = auth::request_line(&control.key, &format!("LOG {local}"), &nonce);
    // The MAC's last hex digit changed.
    let last = signed.len() - 3;
    let flipped = if signed.as_bytes()[last] == b'0' {
        "1"
    } else {
        "0"
    };
    signed.replace_range(last..last + 1, flipped);
    let attempts: Vec<Vec<u8>> = vec![
        format!("LOG {local}\r\n").into_bytes(),
        b"FIND probe\r\n".to_vec(),
        b"EXPECT\r\n".to_vec(),
        auth::request_line(&wrong, &format!("LOG {local}"), &nonce).into_bytes(),
        signed.into_bytes(),
        vec![b'A'; 4096],
    ];
    for line in attempts {
        let got = raw_control(control.addr, &line).await;
        let text = String::from_utf8_lossy(&got);
        assert!(
            !text.contains(&local.ip().to_string()) && !text.contains("probe.mxray.test"),
            "leaked: {text}"
        );
        if line.len() < 4096 {
            assert_eq!(got, refusal, "{}", String::from_utf8_lossy(&line));
        } else {
            assert!(got.is_empty(), "an overlong line is closed: {text}");
        }
    }
}
