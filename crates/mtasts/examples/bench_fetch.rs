//! Benchmark helper for `scripts/bench-mta-sts` (loopback only).
//!
//! `bench_fetch serve DIR DOMAINS SECONDS`: makes a test CA and one certificate for
//! `mta-sts.d<i>.bench.test` (i < DOMAINS), writes `DIR/ca.pem`, serves a valid policy over
//! HTTPS on 127.0.0.1:0, writes the port to `DIR/port`, and exits after SECONDS.
//!
//! `bench_fetch fetch DIR DOMAINS ROUNDS CONCURRENCY`: fetches every domain's policy ROUNDS
//! times with [`PolicyFetcher`] (port 443 remapped to the server's port, rate limits raised so
//! they do not cap the measurement) and prints fetches per second and peak RSS.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mxray_mtasts::{parse_policy, FetchConfig, PolicyFetcher};
use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::PrivatePkcs8KeyDer;

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: *.bench.test\nmax_age: 86400\n";

fn arg(args: &[String], i: usize) -> &str {
    args.get(i).map(String::as_str).unwrap_or("")
}

fn num(args: &[String], i: usize) -> usize {
    arg(args, i).parse().unwrap_or_else(|_| {
        eprintln!("argument {i} must be a number");
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(arg(&args, 2));
    match arg(&args, 1) {
        "serve" => serve(dir, num(&args, 3), num(&args, 4)).await,
        "fetch" => fetch(dir, num(&args, 3), num(&args, 4), num(&args, 5)).await,
        _ => {
            eprintln!("usage: bench_fetch serve DIR DOMAINS SECONDS | fetch DIR DOMAINS ROUNDS CONCURRENCY");
            std::process::exit(2)
        }
    }
}

async fn serve(dir: PathBuf, domains: usize, seconds: usize) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mxray bench CA");
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let names: Vec<String> = (0..domains)
        .map(|i| format!("mta-sts.d{i}.bench.test"))
        .collect();
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(names)
        .expect("params")
        .signed_by(&key, &ca)
        .expect("sign");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        )
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::fs::write(dir.join("port"), port.to_string()).expect("write port");
    let accept = async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "text/plain")
                            .body(Full::new(Bytes::from_static(POLICY.as_bytes())))
                            .expect("resp"),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(seconds as u64), accept).await;
}

async fn fetch(dir: PathBuf, domains: usize, rounds: usize, concurrency: usize) {
    let port: u16 = std::fs::read_to_string(dir.join("port"))
        .expect("port file")
        .trim()
        .parse()
        .expect("port");
    let ca = std::fs::read(dir.join("ca.pem")).expect("ca.pem");
    let fast = RateConfig {
        global_per_sec: 1_000_000,
        per_ip_per_sec: 1_000_000,
        per_prefix_per_sec: 1_000_000,
    };
    let dialer = Dialer::new(
        Arc::new(DestinationPolicy::new(true, Vec::new())),
        Arc::new(RateLimits::new(fast)),
    )
    .with_port_remap(443, port);
    let cfg = FetchConfig {
        timeout: Duration::from_secs(10),
        extra_roots_pem: Some(ca),
        ..FetchConfig::default()
    };
    let fetcher = Arc::new(PolicyFetcher::new(cfg, dialer).expect("fetcher"));
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let lo: IpAddr = "127.0.0.1".parse().expect("ip");
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for r in 0..rounds {
        for i in 0..domains {
            let (f, sem) = (Arc::clone(&fetcher), Arc::clone(&sem));
            set.spawn(async move {
                let _p = sem.acquire_owned().await;
                let out = f.fetch(&format!("d{i}.bench.test"), &[lo]).await;
                let body = out.body.unwrap_or_default();
                out.result.is_ok() && parse_policy(&String::from_utf8_lossy(&body)).policy.is_ok()
            });
            let _ = r;
        }
    }
    let (mut ok, mut failed) = (0usize, 0usize);
    while let Some(j) = set.join_next().await {
        if j.unwrap_or(false) {
            ok += 1
        } else {
            failed += 1
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_owned())
        })
        .unwrap_or_else(|| "?".into());
    println!(
        "mxray fetches={} ok={ok} failed={failed} seconds={secs:.2} per_sec={:.0} peak_rss_kib={rss}",
        ok + failed,
        (ok + failed) as f64 / secs
    );
}
