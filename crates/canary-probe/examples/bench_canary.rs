//! Benchmark: canary probes per second against an in-process canary on loopback.
//!
//! `cargo run --release -p mxray-canary-probe --example bench-canary -- [PROBES] [CONCURRENCY]`
//! (defaults 2000 and 50). Every probe is a full session: greeting, EHLO, STARTTLS, TLS
//! handshake, EHLO, QUIT, then a control-endpoint request for the canary's log and the
//! byte-for-byte comparison. Traffic stays on 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mxray_canary::{CanaryConfig, CanaryServer, Identity};
use mxray_canary_probe::{probe, ProbeOptions, Verdict};
use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let conc: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50);
    let mut cfg = CanaryConfig::new(Identity::generate(&[])?);
    cfg.max_sessions = 1024;
    let canary = CanaryServer::start(cfg).await?;
    let target = canary.smtp_addr().ok_or("no listener")?;
    let control = canary.control_endpoint();
    let exp = canary.expectation().clone();
    let dialer = Dialer::new(
        Arc::new(DestinationPolicy::new(true, Vec::new())),
        Arc::new(RateLimits::new(RateConfig {
            global_per_sec: 1_000_000,
            per_ip_per_sec: 1_000_000,
            per_prefix_per_sec: 1_000_000,
        })),
    );
    let opts = ProbeOptions {
        timeout: Duration::from_secs(10),
        ..ProbeOptions::default()
    };
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut started = 0;
    let mut lat: Vec<Duration> = Vec::with_capacity(n);
    let mut clean = 0usize;
    loop {
        while set.len() < conc && started < n {
            started += 1;
            let (d, e, o, c) = (dialer.clone(), exp.clone(), opts.clone(), control.clone());
            set.spawn(async move {
                let t = Instant::now();
                let out = probe(&d, target, &e, c.as_ref(), &o).await;
                (t.elapsed(), out.report.verdict)
            });
        }
        let Some(r) = set.join_next().await else {
            break;
        };
        let (t, v) = r?;
        lat.push(t);
        if v == Verdict::Clean {
            clean += 1;
        }
    }
    let total = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    println!(
        "probes={n} concurrency={conc} clean={clean} elapsed={:.2}s rate={:.0}/s p50={:.1}ms p99={:.1}ms canary_log_entries={}",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        canary.log().entries().len(),
    );
    Ok(())
}
