//! Benchmark driver for `scripts/bench-smtp` (loopback only): runs the [`Prober`] against the
//! bench server's addresses and reports throughput, or holds sessions open against a tarpit
//! and reports resident memory per in-flight probe.
//!
//! `bench-probe --prefixes P --hosts H --port N --probes K [--concurrency C]` probes
//! 127.0.{1..P}.{1..H}:N round robin, K probes in all, and prints `probes=… secs=… rate=…`.
//! `bench-probe … --tarpit-hold K` starts K probes against a tarpit, waits until they are all
//! connected and waiting for a greeting, and prints the RSS before and during.
//!
//! Rate limits are raised far above the defaults: this measures the prober, not politeness.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
use mxray_smtp::{ProbeConfig, ProbeTarget, Prober};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let threads = arg(&args, "--threads", 1) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
    let prefixes = arg(&args, "--prefixes", 50) as u8;
    let hosts = arg(&args, "--hosts", 5) as u8;
    let port = arg(&args, "--port", 2525) as u16;
    let probes = arg(&args, "--probes", 10_000);
    let concurrency = arg(&args, "--concurrency", 500) as usize;
    let hold = arg(&args, "--tarpit-hold", 0);
    let addrs: Vec<IpAddr> = (1..=prefixes)
        .flat_map(|p| (1..=hosts).map(move |h| IpAddr::V4(Ipv4Addr::new(127, 0, p, h))))
        .collect();
    let dialer = Dialer::new(
        Arc::new(DestinationPolicy::new(true, Vec::new())),
        Arc::new(RateLimits::new(RateConfig {
            global_per_sec: 1_000_000,
            per_ip_per_sec: 100_000,
            per_prefix_per_sec: 1_000_000,
        })),
    );
    let mut cfg = ProbeConfig::default();
    cfg.ehlo_name = "bench.mxray.test".into();
    cfg.concurrency = if hold > 0 { hold as usize } else { concurrency };
    cfg.limits.greeting_timeout = Duration::from_secs(120);
    cfg.limits.session_deadline = Duration::from_secs(180);
    let prober = Prober::new(cfg, dialer, uuid::Uuid::now_v7(), "bench".into())?;
    let target = |i: u64| {
        let mut t = ProbeTarget::new(addrs[(i as usize) % addrs.len()], port);
        t.sni = Some("mx1.bench.test".into());
        t
    };

    if hold > 0 {
        // Warm up the allocator and runtime with one finished probe-sized task, then measure.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_kib();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..hold {
            let (p, t) = (prober.clone(), target(i));
            set.spawn(async move { p.probe(&t).await });
        }
        // Wait for every connection to be established (the server never answers).
        let mut last = 0;
        let mut stable = 0;
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = established(port);
            if now == last && now > 0 {
                stable += 1;
                if stable >= 3 {
                    break;
                }
            } else {
                stable = 0;
            }
            last = now;
        }
        let during = rss_kib();
        let per = (during.saturating_sub(before) as f64) * 1024.0 / hold as f64;
        println!(
            "held={hold} established={last} rss_before_kib={before} rss_during_kib={during} bytes_per_probe={per:.0}"
        );
        set.abort_all();
        return Ok(());
    }

    let next = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let via_openssl = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (p, next, ok) = (prober.clone(), next.clone(), ok.clone());
        let via_openssl = via_openssl.clone();
        let addrs = addrs.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= probes {
                    break;
                }
                let mut t = ProbeTarget::new(addrs[(i as usize) % addrs.len()], port);
                t.sni = Some("mx1.bench.test".into());
                let out = p.probe(&t).await;
                if std::env::var_os("BENCH_PHASES").is_some() && i % 500 == 0 {
                    let r = &out.record;
                    eprintln!(
                        "connect={:?} greeting={:?} ehlo={:?} starttls={:?} tls={:?} total={}",
                        r.connect_ms, r.greeting_ms, r.ehlo_ms, r.starttls_ms, r.tls_ms, r.total_ms
                    );
                }
                if out.record.result == mxray_model::ProbeResult::StarttlsOk
                    && out.record.error_class.is_none()
                {
                    ok.fetch_add(1, Ordering::Relaxed);
                    if out.record.tls_engine == Some(mxray_model::TlsEngine::Openssl) {
                        via_openssl.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let okn = ok.load(Ordering::Relaxed);
    println!(
        "probes={probes} complete_starttls={okn} via_openssl={} secs={secs:.2} rate={:.0}",
        via_openssl.load(Ordering::Relaxed),
        okn as f64 / secs
    );
    Ok(())
}

/// Established TCP connections to `port` seen from this process's network namespace
/// (/proc/net/tcp, client side: remote port == `port`).
fn established(port: u16) -> usize {
    let hex_port = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .map(|s| {
            s.lines()
                .skip(1)
                .filter(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[2].ends_with(&hex_port) && f[3] == "01"
                })
                .count()
        })
        .unwrap_or(0)
}
