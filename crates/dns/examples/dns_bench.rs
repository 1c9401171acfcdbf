//! Benchmark driver for `scripts/bench-dns`: reads domains (one per line) from stdin, runs
//! `DnsCollector::domain` on each (MX + `_mta-sts` TXT + `_smtp._tls` TXT: 3 lookups) with a
//! bounded number in flight, and prints one JSON line of figures: domains, lookups, seconds,
//! lookups/s, outcome counts, peak RSS (VmHWM).
//!
//! Usage: `dns_bench RESOLVER [IN_FLIGHT]` (loopback resolvers only; it refuses others).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::time::Instant;

use mxray_dns::{DnsCollector, DnsConfig};
use tokio::task::JoinSet;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let resolver: SocketAddr = args
        .next()
        .ok_or("usage: dns_bench RESOLVER [IN_FLIGHT]")?
        .parse()?;
    if !resolver.ip().is_loopback() {
        return Err("benchmarks query loopback resolvers only".into());
    }
    let in_flight: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let mut cfg = DnsConfig::new(vec![resolver]);
    cfg.qps_per_resolver = 0;
    cfg.max_in_flight = in_flight * 3;
    let dns = DnsCollector::new(cfg)?;

    // Stream stdin through a bounded channel: memory does not grow with the input.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4096);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });

    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut domains = 0u64;
    let mut errors = 0u64;
    let mut classes: BTreeMap<String, u64> = BTreeMap::new();
    let mut record = |d: mxray_dns::DomainDns, counts: &mut BTreeMap<String, u64>| {
        *counts.entry(d.mx_kind.to_string()).or_default() += 1;
        errors += d.errors.len() as u64;
        for e in &d.errors {
            let class = e.split(':').nth(1).unwrap_or("?").to_owned();
            *classes.entry(class).or_default() += 1;
        }
    };
    while let Some(line) = rx.recv().await {
        let name = line.trim().to_owned();
        if name.is_empty() {
            continue;
        }
        while tasks.len() >= in_flight {
            if let Some(Ok(d)) = tasks.join_next().await {
                record(d, &mut counts);
            }
        }
        let dns = dns.clone();
        tasks.spawn(async move { dns.domain(&name).await });
        domains += 1;
    }
    while let Some(res) = tasks.join_next().await {
        if let Ok(d) = res {
            record(d, &mut counts);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let lookups = domains * 3;
    let stats = dns.stats();
    println!(
        "{}",
        serde_json::json!({
            "tool": "mxray-dns",
            "domains": domains,
            "lookups": lookups,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "lookups_per_sec": (lookups as f64 / secs).round(),
            "mx_kind": counts,
            "errors": errors,
            "error_classes": classes,
            "peak_rss_mib": peak_rss_kib() / 1024,
            "transport": {
                "queries": stats.queries,
                "attempt_timeouts": stats.attempt_timeouts,
                "stray_datagrams": stats.stray_datagrams,
                "overload_backoffs": stats.overload_backoffs,
                "final_in_flight_limit": stats.in_flight_limits.first().map(|(_, l)| *l),
            },
        })
    );
    Ok(())
}
