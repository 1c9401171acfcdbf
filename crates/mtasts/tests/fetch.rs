//! The fetcher against in-process HTTPS servers on 127.0.0.1:0 (hyper + rustls, a test CA made
//! with rcgen), reached through the Dialer's lab port remap 443 -> the server's port.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mxray_model::{DnsOutcome, MtaStsError, MtaStsMode, MtaStsStatus, TlsRptResult};
use mxray_mtasts::{
    assess, tlsrpt_results, FetchConfig, MtaStsAssessment, MtaStsInput, PolicyFetcher,
};
use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const DOMAIN: &str = "example.test";
const HOST: &str = "mta-sts.example.test";
const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

const ENFORCE: &str =
    "version: STSv1\nmode: enforce\nmx: mail.example.test\nmx: *.mx.example.test\nmax_age: 604800\n";

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mxray test CA");
        let key = KeyPair::generate().expect("key");
        Pki {
            ca: CertifiedIssuer::self_signed(params, key).expect("ca"),
        }
    }

    fn ca_pem(&self) -> Vec<u8> {
        self.ca.pem().into_bytes()
    }

    /// A leaf for `name`, issued by the test CA.
    fn leaf(&self, name: &str) -> Identity {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec![name.to_owned()]).expect("params");
        let cert = params.signed_by(&key, &self.ca).expect("sign");
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }
}

/// A self-signed certificate for the right name, not issued by any trusted CA.
fn self_signed(name: &str) -> Identity {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec![name.to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("self-sign");
    Identity {
        chain: vec![cert.der().clone()],
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn acceptor(id: Identity) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(id.chain, id.key)
        .expect("server config");
    TlsAcceptor::from(Arc::new(cfg))
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    connections: AtomicUsize,
    hosts_and_paths: Mutex<Vec<(String, String)>>,
}

type Handler = Arc<dyn Fn() -> hyper::Response<Full<Bytes>> + Send + Sync>;

/// An HTTPS server on 127.0.0.1:0 answering every request with `handler()`.
async fn https_server(id: Identity, handler: Handler) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let tls = acceptor(id);
    let seen = Arc::new(Seen::default());
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            seen2.connections.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            let handler = Arc::clone(&handler);
            let seen = Arc::clone(&seen2);
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    seen.requests.fetch_add(1, Ordering::SeqCst);
                    let host = req
                        .headers()
                        .get(http::header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    seen.hosts_and_paths
                        .lock()
                        .expect("lock")
                        .push((host, req.uri().path().to_owned()));
                    let resp = handler();
                    async move { Ok::<_, std::convert::Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (port, seen)
}

/// A TLS server that reads the request head and then writes `raw` bytes verbatim.
async fn raw_https_server(id: Identity, raw: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let tls = acceptor(id);
    let raw = Arc::new(raw);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = tls.clone();
            let raw = Arc::clone(&raw);
            tokio::spawn(async move {
                let Ok(mut s) = tls.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(&raw).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

fn text(status: u16, ct: &str, body: impl Into<Bytes>) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder().status(status);
    if !ct.is_empty() {
        b = b.header(http::header::CONTENT_TYPE, ct);
    }
    b.body(Full::new(body.into())).expect("response")
}

fn fetcher(port: u16, pki: &Pki, timeout: Duration) -> PolicyFetcher {
    let dialer = Dialer::new(
        Arc::new(DestinationPolicy::new(true, Vec::new())),
        Arc::new(RateLimits::new(RateConfig::default())),
    )
    .with_port_remap(443, port);
    let cfg = FetchConfig {
        timeout,
        extra_roots_pem: Some(pki.ca_pem()),
        ..FetchConfig::default()
    };
    PolicyFetcher::new(cfg, dialer).expect("fetcher")
}

fn input(txt: &[&str]) -> MtaStsInput {
    MtaStsInput {
        domain: DOMAIN.to_owned(),
        txt_outcome: DnsOutcome::NoError,
        txt_records: txt.iter().map(|s| (*s).to_owned()).collect(),
        policy_host_addrs: Ok(vec![LOOPBACK]),
    }
}

const TXT: &str = "v=STSv1; id=20261129T000000;";

/// Serves `handler` with a valid certificate and assesses the domain.
async fn assess_with(handler: Handler) -> (MtaStsAssessment, Arc<Seen>) {
    let pki = Pki::new();
    let (port, seen) = https_server(pki.leaf(HOST), handler).await;
    let f = fetcher(port, &pki, Duration::from_secs(10));
    (assess(&input(&[TXT]), &f).await, seen)
}

async fn assess_body(ct: &'static str, body: &'static str) -> MtaStsAssessment {
    assess_with(Arc::new(move || text(200, ct, body))).await.0
}

#[tokio::test]
async fn valid_enforce_policy() {
    let (a, seen) = assess_with(Arc::new(|| text(200, "text/plain", ENFORCE))).await;
    assert_eq!(a.status, MtaStsStatus::Enforce, "{a:?}");
    let r = a.record(uuid::Uuid::nil(), "test");
    assert_eq!(r.policy_id.as_deref(), Some("20261129T000000"));
    assert_eq!(r.mode, Some(MtaStsMode::Enforce));
    assert_eq!(r.mx_patterns, ["mail.example.test", "*.mx.example.test"]);
    assert_eq!(r.max_age, Some(604_800));
    assert_eq!(r.http_status, Some(200));
    assert_eq!(r.content_type.as_deref(), Some("text/plain"));
    assert_eq!(r.policy_raw.as_deref(), Some(ENFORCE));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.error_class, None);
    // The request went to the right virtual host and path.
    let seen = seen.hosts_and_paths.lock().expect("lock").clone();
    assert_eq!(
        seen,
        [(HOST.to_owned(), "/.well-known/mta-sts.txt".to_owned())]
    );
    let fetch = a.fetch.as_ref().expect("fetched");
    assert!(fetch
        .tls_version
        .as_deref()
        .is_some_and(|v| v.starts_with("TLSv1.")));
    assert!(tlsrpt_results(&a, &[]).is_empty());
}

#[tokio::test]
async fn testing_with_crlf_and_charset() {
    let a = assess_body(
        "text/plain; charset=utf-8",
        "version: STSv1\r\nmode: testing\r\nmx: mail.example.test\r\nmax_age: 86400\r\n",
    )
    .await;
    assert_eq!(a.status, MtaStsStatus::Testing);
    assert_eq!(
        a.warnings,
        ["content_type_parameters: \"text/plain; charset=utf-8\""]
    );
}

#[tokio::test]
async fn mode_none() {
    let a = assess_body("text/plain", "version: STSv1\nmode: none\nmax_age: 86400\n").await;
    assert_eq!(a.status, MtaStsStatus::ModeNone);
    assert_eq!(a.policy.as_ref().map(|p| p.mode), Some(MtaStsMode::None));
}

#[tokio::test]
async fn redirects_fail_and_are_not_followed() {
    for code in [301u16, 302] {
        let (a, seen) = assess_with(Arc::new(move || {
            hyper::Response::builder()
                .status(code)
                .header(
                    http::header::LOCATION,
                    "https://mta-sts.example.test/policy.txt",
                )
                .header(http::header::CONTENT_TYPE, "text/plain")
                .body(Full::new(Bytes::from_static(ENFORCE.as_bytes())))
                .expect("resp")
        }))
        .await;
        assert_eq!(a.status, MtaStsStatus::FetchError, "{code}");
        assert_eq!(a.error_class, Some(MtaStsError::Redirect), "{code}");
        assert!(a
            .error_detail
            .as_deref()
            .is_some_and(|d| d.contains("policy.txt")));
        assert_eq!(a.record(uuid::Uuid::nil(), "t").http_status, Some(code));
        assert_eq!(
            seen.requests.load(Ordering::SeqCst),
            1,
            "redirect followed for {code}"
        );
        assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsPolicyFetchError]);
    }
}

#[tokio::test]
async fn error_statuses() {
    for code in [404u16, 500] {
        let (a, _) = assess_with(Arc::new(move || text(code, "text/plain", "nope"))).await;
        assert_eq!(
            (a.status, a.error_class),
            (MtaStsStatus::FetchError, Some(MtaStsError::HttpStatus))
        );
        let r = a.record(uuid::Uuid::nil(), "t");
        assert_eq!(r.http_status, Some(code));
        assert_eq!(r.policy_raw, None);
    }
}

#[tokio::test]
async fn html_is_not_a_policy() {
    let a = assess_body("text/html", ENFORCE).await;
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::ContentType))
    );
    assert_eq!(
        a.record(uuid::Uuid::nil(), "t").content_type.as_deref(),
        Some("text/html")
    );
    let a = assess_body("", ENFORCE).await;
    assert_eq!(a.error_class, Some(MtaStsError::ContentType));
}

#[tokio::test]
async fn body_over_64k_is_too_large() {
    // 65 KiB with Content-Length.
    let big = format!("{ENFORCE}{}", "#".repeat(65 * 1024));
    let (a, _) = assess_with(Arc::new(move || text(200, "text/plain", big.clone()))).await;
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::TooLarge))
    );

    // 65 KiB chunked, without Content-Length: cut at the cap while streaming.
    let pki = Pki::new();
    let mut raw =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..65 {
        raw.extend_from_slice(b"400\r\n");
        raw.extend_from_slice(&[b'x'; 1024]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let port = raw_https_server(pki.leaf(HOST), raw).await;
    let a = assess(
        &input(&[TXT]),
        &fetcher(port, &pki, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(a.error_class, Some(MtaStsError::TooLarge));
    let kept = a.fetch.as_ref().and_then(|f| f.body.as_ref()).map(Vec::len);
    assert_eq!(kept, Some(64 * 1024));
}

#[tokio::test]
async fn exactly_64k_is_allowed() {
    let mut body = ENFORCE.to_owned();
    body.push_str(&"#".repeat(64 * 1024 - ENFORCE.len()));
    assert_eq!(body.len(), 64 * 1024);
    let (a, _) = assess_with(Arc::new(move || text(200, "text/plain", body.clone()))).await;
    assert_eq!(a.status, MtaStsStatus::Enforce, "{:?}", a.error_detail);
    assert!(a.warnings.iter().any(|w| w.starts_with("junk_line")));
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accept and hold connections, never answer the ClientHello.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let pki = Pki::new();
    let a = assess(
        &input(&[TXT]),
        &fetcher(port, &pki, Duration::from_millis(500)),
    )
    .await;
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::Timeout))
    );
    assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsPolicyFetchError]);
}

#[tokio::test]
async fn self_signed_and_wrong_name_are_cert_errors() {
    let pki = Pki::new();
    for id in [
        self_signed(HOST),
        pki.leaf("mta-sts.other.test"),
        pki.leaf(DOMAIN),
    ] {
        let (port, seen) = https_server(id, Arc::new(|| text(200, "text/plain", ENFORCE))).await;
        let a = assess(
            &input(&[TXT]),
            &fetcher(port, &pki, Duration::from_secs(10)),
        )
        .await;
        assert_eq!(
            (a.status, a.error_class),
            (MtaStsStatus::FetchError, Some(MtaStsError::Cert))
        );
        assert_eq!(
            seen.requests.load(Ordering::SeqCst),
            0,
            "no request over an untrusted channel"
        );
        assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsWebpkiInvalid]);
    }
}

#[tokio::test]
async fn closed_port_is_connect_error_and_blocked_sends_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let pki = Pki::new();
    let a = assess(
        &input(&[TXT]),
        &fetcher(port, &pki, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(a.error_class, Some(MtaStsError::Connect));

    // Without --allow-private the loopback policy host is refused before any packet.
    let (port, seen) = https_server(
        pki.leaf(HOST),
        Arc::new(|| text(200, "text/plain", ENFORCE)),
    )
    .await;
    let dialer = Dialer::new(
        Arc::new(DestinationPolicy::new(false, Vec::new())),
        Arc::new(RateLimits::new(RateConfig::default())),
    )
    .with_port_remap(443, port);
    let cfg = FetchConfig {
        extra_roots_pem: Some(pki.ca_pem()),
        ..FetchConfig::default()
    };
    let f = PolicyFetcher::new(cfg, dialer).expect("fetcher");
    let a = assess(&input(&[TXT]), &f).await;
    assert_eq!(a.error_class, Some(MtaStsError::Connect));
    assert!(a
        .error_detail
        .as_deref()
        .is_some_and(|d| d.contains("blocked")));
    tokio::task::yield_now().await;
    assert_eq!(seen.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn garbage_instead_of_http() {
    let pki = Pki::new();
    let port = raw_https_server(pki.leaf(HOST), b"SSH-2.0-OpenSSH\r\n".to_vec()).await;
    let a = assess(
        &input(&[TXT]),
        &fetcher(port, &pki, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::HttpProtocol))
    );
    assert_eq!(a.fetch.as_ref().and_then(|f| f.http_status), None);
}

#[tokio::test]
async fn policy_variants_over_https() {
    let cases: &[(&str, MtaStsStatus)] = &[
        (
            "version: STSv1\nmode: enforce\nmax_age: 86400\n",
            MtaStsStatus::PolicyInvalid,
        ), // no mx
        (
            "version: STSv1\nmode: enforce\nmx: a.example.test\nmax_age: 31557601\n",
            MtaStsStatus::PolicyInvalid,
        ),
        (
            "version: STSv1\nmode: reject\nmx: a.example.test\nmax_age: 86400\n",
            MtaStsStatus::PolicyInvalid,
        ),
        (
            "version:STSv1 \nmode:   enforce\t\nmx:  *.example.test  \nmax_age: 86400 \n",
            MtaStsStatus::Enforce,
        ),
        (
            "version: STSv1\r\nmode: enforce\r\nmx: *.example.test\r\nmax_age: 86400\r\n",
            MtaStsStatus::Enforce,
        ),
    ];
    for (body, want) in cases {
        let body: &'static str = body;
        let a = assess_body("text/plain", body).await;
        assert_eq!(a.status, *want, "{body:?}: {:?}", a.error_detail);
        if *want == MtaStsStatus::PolicyInvalid {
            assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsPolicyInvalid]);
            assert!(a.error_detail.is_some());
        } else {
            let p = a.policy.as_ref().expect("policy");
            assert_eq!(
                p.matching_pattern("mx1.example.test"),
                Some("*.example.test")
            );
            assert_eq!(p.matching_pattern("a.mx1.example.test"), None);
        }
    }
}

#[tokio::test]
async fn txt_cases_decide_before_any_fetch() {
    let pki = Pki::new();
    let (port, seen) = https_server(
        pki.leaf(HOST),
        Arc::new(|| text(200, "text/plain", ENFORCE)),
    )
    .await;
    let f = fetcher(port, &pki, Duration::from_secs(10));
    let cases: &[(&[&str], MtaStsStatus)] = &[
        (&[], MtaStsStatus::None),
        (&["v=spf1 -all"], MtaStsStatus::None),
        (
            &["v=STSv1; id=1;", "v=STSv1; id=2;"],
            MtaStsStatus::TxtInvalid,
        ),
        (&["v=STSv1; id=not-alnum;"], MtaStsStatus::TxtInvalid),
        (&["v=STSv1;"], MtaStsStatus::TxtInvalid),
    ];
    for (txt, want) in cases {
        let a = assess(&input(txt), &f).await;
        assert_eq!(a.status, *want, "{txt:?}");
        assert!(a.fetch.is_none());
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 0);

    // Extension fields are tolerated; a record split into strings is read joined.
    let ext = assess(&input(&["v=STSv1; id=abc; ext-1=foo;"]), &f).await;
    assert_eq!(ext.status, MtaStsStatus::Enforce);
    let joined = ["v=STSv1; id=2026", "1129;"].concat();
    let split = assess(&input(&[&joined]), &f).await;
    assert_eq!(split.txt.as_ref().map(|t| t.id.as_str()), Some("20261129"));

    // A failed lookup is lookup_error, not none.
    let mut i = input(&[]);
    i.txt_outcome = DnsOutcome::ServFail;
    assert_eq!(assess(&i, &f).await.status, MtaStsStatus::LookupError);
}

/// The shared cases of `tests/fixtures/cross_check.json`, also run through
/// postfix-mta-sts-resolver by `scripts/mtasts-crosscheck.py`. This test checks mxray's column.
#[tokio::test]
async fn cross_check_cases_mxray_column() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/cross_check.json"
    ))
    .expect("fixture");
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    assert!(cases.len() >= 30);
    let pki = Pki::new();
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let status = u16::try_from(case["status"].as_u64().expect("status")).expect("u16");
        let ct = case["content_type"].as_str().expect("ct").to_owned();
        let mut body = case["body"].as_str().expect("body").to_owned();
        body.push_str(
            &"#".repeat(usize::try_from(case["pad"].as_u64().unwrap_or(0)).expect("pad")),
        );
        let location = case["location"].as_str().map(str::to_owned);
        let txt: Vec<&str> = case["txt"]
            .as_array()
            .expect("txt")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let handler: Handler = Arc::new(move || {
            let mut b = hyper::Response::builder().status(status);
            if !ct.is_empty() {
                b = b.header(http::header::CONTENT_TYPE, ct.as_str());
            }
            if let Some(l) = &location {
                b = b.header(http::header::LOCATION, l.as_str());
            }
            b.body(Full::new(Bytes::from(body.clone()))).expect("resp")
        });
        let (port, _) = https_server(pki.leaf(HOST), handler).await;
        let a = assess(&input(&txt), &fetcher(port, &pki, Duration::from_secs(10))).await;
        let got = match a.error_class {
            Some(c) => format!("{}/{}", a.status, c),
            None => a.status.to_string(),
        };
        assert_eq!(
            got,
            case["mxray"].as_str().expect("mxray"),
            "case {name}: {:?}",
            a.error_detail
        );
    }
}

#[tokio::test]
async fn next_address_is_tried_when_one_refuses() {
    let pki = Pki::new();
    let (port, seen) = https_server(
        pki.leaf(HOST),
        Arc::new(|| text(200, "text/plain", ENFORCE)),
    )
    .await;
    let f = fetcher(port, &pki, Duration::from_secs(10));
    // The server listens on 127.0.0.1 only: 127.0.0.2 refuses, then 127.0.0.1 answers.
    let mut i = input(&[TXT]);
    i.policy_host_addrs = Ok(vec![IpAddr::from([127, 0, 0, 2]), LOOPBACK]);
    let a = assess(&i, &f).await;
    assert_eq!(a.status, MtaStsStatus::Enforce, "{:?}", a.error_detail);
    let peer = a.fetch.as_ref().and_then(|f| f.peer).expect("peer");
    assert_eq!(peer, std::net::SocketAddr::new(LOOPBACK, 443));
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
}

/// A policy host that accepts and resets at once (SO_LINGER 0), on a thread and runtime of
/// its own so that it keeps accepting while the test's runtime is blocked.
fn resetting_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
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
    port
}

/// The reset lands in the handshake or, when the runtime looks at the socket only after the
/// RST arrived (a busy fetcher), in the connect: both are `tls` (the host answered), never
/// `connect`.
#[tokio::test]
async fn reset_right_after_accept_is_tls_not_connect() {
    let pki = Pki::new();
    let f = fetcher(resetting_server(), &pki, Duration::from_secs(10));
    let a = assess(&input(&[TXT]), &f).await;
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::Tls)),
        "{:?}",
        a.error_detail
    );
    // Block this single-threaded runtime right after the connect went out.
    let txt = input(&[TXT]);
    let (a, ()) = tokio::join!(assess(&txt, &f), async {
        std::thread::sleep(Duration::from_millis(200));
    });
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::Tls)),
        "{:?}",
        a.error_detail
    );
}

#[tokio::test]
async fn oversized_header_is_refused_not_buffered() {
    let pki = Pki::new();
    let mut raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Junk: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 200 * 1024));
    raw.extend_from_slice(b"\r\nContent-Length: 5\r\n\r\nhello");
    let port = raw_https_server(pki.leaf(HOST), raw).await;
    let a = assess(
        &input(&[TXT]),
        &fetcher(port, &pki, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::HttpProtocol))
    );
    assert_eq!(a.fetch.as_ref().and_then(|f| f.http_status), None);
    assert!(
        a.error_detail
            .as_deref()
            .is_some_and(|d| d.contains("response head too large")),
        "{:?}",
        a.error_detail
    );
}

/// TLS completes, the request is read, and the server closes without a byte of HTTP: no status
/// was received, so the class is `http_protocol`, not `http_status`.
#[tokio::test]
async fn close_after_tls_without_response_is_http_protocol() {
    let pki = Pki::new();
    let port = raw_https_server(pki.leaf(HOST), Vec::new()).await;
    let a = assess(
        &input(&[TXT]),
        &fetcher(port, &pki, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::HttpProtocol))
    );
    let fetch = a.fetch.as_ref().expect("fetch attempted");
    assert!(fetch.tls_version.is_some(), "TLS was completed");
    assert_eq!(fetch.http_status, None);
    assert_eq!(tlsrpt_results(&a, &[]), [TlsRptResult::StsPolicyFetchError]);
}

/// A 200 whose body stops short of its Content-Length: the status arrived but the response
/// never completed, so `http_protocol` (with the 200 kept), not a policy.
#[tokio::test]
async fn body_cut_short_is_http_protocol() {
    let pki = Pki::new();
    let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 500\r\n\r\nversion: STSv1\n"
        .to_vec();
    let port = raw_https_server(pki.leaf(HOST), raw).await;
    let a = assess(
        &input(&[TXT]),
        &fetcher(port, &pki, Duration::from_secs(10)),
    )
    .await;
    assert_eq!(
        (a.status, a.error_class),
        (MtaStsStatus::FetchError, Some(MtaStsError::HttpProtocol))
    );
    assert_eq!(a.fetch.as_ref().and_then(|f| f.http_status), Some(200));
    assert!(a.policy.is_none());
}
