//! `mxray smtp`: STARTTLS probes of named hosts or addresses, without the domain pipeline.
//!
//! A `HOST` target is resolved with the configured resolvers (A/AAAA and the TLSA RRset at
//! `_25._tcp.HOST`, with DNSSEC status), its `dns_host` record is written, and every address
//! is probed exactly as `mxray scan` probes an MX host (`mxray_scan::targets`: SNI = the TLSA
//! base domain or HOST, the host's TLSA input per address family). An `IP` target is probed
//! as is: no SNI unless `--sni`, no DANE. Records go to the outputs
//! (JSON lines on stdout when none is given); a one-line summary per probe goes to stderr.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use mxray_model::{Record, ScanRecord, SmtpProbeRecord, UtcTime};
use mxray_smtp::ProbeTarget;

use crate::engines;
use crate::settings::{Settings, UsageError};

/// Arguments of `mxray smtp`.
#[derive(Debug, clap::Args)]
pub(crate) struct SmtpArgs {
    /// Targets: HOST, HOST:PORT, IP, IP:PORT or [IPv6]:PORT (without a port: every
    /// --smtp-port; 465 is implicit TLS).
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// SNI name to send (default: the host name when a HOST is given).
    #[arg(long)]
    pub sni: Option<String>,
}

/// A parsed command-line target.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Ip(SocketAddr),
    Host(String, u16),
}

fn parse_target(s: &str, default_port: u16) -> Result<Target, UsageError> {
    let bad = || {
        UsageError(format!(
            "target {s:?}: expected HOST, HOST:PORT, IP, IP:PORT or [IPv6]:PORT"
        ))
    };
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(Target::Ip(sa));
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(Target::Ip(SocketAddr::new(ip, default_port)));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (s, default_port),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid || port == 0 {
        return Err(bad());
    }
    Ok(Target::Host(host, port))
}

/// A target on its own port, or on every one of `ports` when it names none.
fn on_ports(s: &str, ports: &[u16]) -> Result<Vec<Target>, UsageError> {
    // The port is explicit when two different defaults parse to the same target.
    let (a, b) = (parse_target(s, 1)?, parse_target(s, 2)?);
    if a == b {
        return Ok(vec![a]);
    }
    ports.iter().map(|&p| parse_target(s, p)).collect()
}

pub(crate) async fn run(settings: &Settings, args: &SmtpArgs) -> anyhow::Result<ExitCode> {
    let scan_id = uuid::Uuid::now_v7();
    let started_at = UtcTime::now();
    let targets = args
        .targets
        .iter()
        .map(|t| on_ports(t, &settings.smtp_ports))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let dialer = settings.dialer();
    let prober = engines::prober(settings, &dialer, scan_id)?;
    let parquet_dir = settings.outputs.out.clone();
    let mut sink = engines::sinks(settings, parquet_dir.as_deref(), true).await?;

    let mut records: Vec<Record> = Vec::new();
    let mut probe_targets: Vec<ProbeTarget> = Vec::new();
    let mut dns = None;
    for t in &targets {
        match t {
            Target::Ip(sa) => probe_targets.push(ProbeTarget {
                ip: sa.ip(),
                port: sa.port(),
                sni: args.sni.clone(),
                tlsa: None,
            }),
            Target::Host(host, port) => {
                if dns.is_none() {
                    dns = Some(engines::dns_collector(settings)?);
                }
                let Some(collector) = dns.as_ref() else {
                    continue;
                };
                let h = collector.host(host).await;
                records.push(h.to_record(scan_id, &settings.vantage).into());
                if h.addresses.is_empty() {
                    eprintln!(
                        "{host}: no addresses ({}; {})",
                        h.address_outcome,
                        h.errors.join("; ")
                    );
                }
                probe_targets.extend(mxray_scan::targets::host_targets(
                    &h,
                    *port,
                    args.sni.as_deref(),
                ));
            }
        }
    }

    // DNS records first, then each probe's records as it completes (bounded in flight, so a
    // long target list costs bounded memory).
    let dns_hosts = records.len() as u64;
    sink.write_batch(std::mem::take(&mut records))
        .await
        .context("writing records")?;
    let mut set = tokio::task::JoinSet::new();
    let mut pending = probe_targets.into_iter();
    let limit = settings.concurrency.max(1);
    let mut seen = HashSet::new();
    let (mut probes, mut certs) = (0u64, 0u64);
    loop {
        while set.len() < limit {
            let Some(t) = pending.next() else { break };
            let p = prober.clone();
            set.spawn(async move { p.probe(&t).await });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let out = joined.context("probe task")?;
        eprintln!("{}", summary(&out.record));
        probes += 1;
        let mut batch: Vec<Record> = vec![out.record.into()];
        for c in out.certificates {
            if seen.insert(c.sha256.clone()) {
                certs += 1;
                batch.push(c.into());
            }
        }
        sink.write_batch(batch).await.context("writing records")?;
    }
    let input = args.targets.join("\n");
    let scan = ScanRecord {
        dns_hosts,
        smtp_probes: probes,
        certificates: certs,
        ..engines::finished_scan_record(settings, scan_id, started_at, "smtp", &input)
    };
    sink.write(scan.into()).await.context("writing records")?;
    let report = sink.close().await.context("closing outputs")?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `ip:port sni result[/error] tls pkix dane signals` for stderr.
fn summary(r: &SmtpProbeRecord) -> String {
    let mut s = format!(
        "{} {} {}",
        SocketAddr::new(r.ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), r.port),
        r.sni.as_deref().unwrap_or("-"),
        r.result
    );
    if let Some(c) = r.error_class {
        s.push_str(&format!("/{c}"));
    }
    if let Some(v) = &r.tls_version {
        s.push_str(&format!(" {v} {}", r.cipher.as_deref().unwrap_or("?")));
    }
    if let Some(reason) = r.tls_fallback_reason {
        s.push_str(&format!(" engine=openssl fallback={reason}"));
    }
    match (r.pkix_valid, r.pkix_error) {
        (Some(true), _) => s.push_str(" pkix=ok"),
        (Some(false), Some(e)) => s.push_str(&format!(" pkix={e}")),
        _ => {}
    }
    s.push_str(&format!(" dane={}", r.dane));
    if !r.stripping_signals.is_empty() {
        let sig: Vec<&str> = r.stripping_signals.iter().map(|x| x.as_str()).collect();
        s.push_str(&format!(" signals={}", sig.join(",")));
    }
    if let Some(d) = &r.error_detail {
        s.push_str(&format!(" ({d})"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let ip = |s: &str| Target::Ip(s.parse().expect("sa"));
        assert_eq!(
            parse_target("192.0.2.1", 25).expect("ok"),
            ip("192.0.2.1:25")
        );
        assert_eq!(
            parse_target("192.0.2.1:2525", 25).expect("ok"),
            ip("192.0.2.1:2525")
        );
        assert_eq!(
            parse_target("[2001:db8::1]:26", 25).expect("ok"),
            ip("[2001:db8::1]:26")
        );
        assert_eq!(
            parse_target("2001:db8::1", 25).expect("ok"),
            ip("[2001:db8::1]:25")
        );
        assert_eq!(
            parse_target("MX.Example.com.", 25).expect("ok"),
            Target::Host("mx.example.com".into(), 25)
        );
        assert_eq!(
            parse_target("mx.example.com:587", 25).expect("ok"),
            Target::Host("mx.example.com".into(), 587)
        );
        assert!(parse_target("mx..example", 25).is_err());
        assert_eq!(
            on_ports("mx.example.com", &[25, 465]).expect("ok"),
            vec![
                Target::Host("mx.example.com".into(), 25),
                Target::Host("mx.example.com".into(), 465)
            ]
        );
        assert_eq!(
            on_ports("mx.example.com:587", &[25, 465]).expect("ok"),
            vec![Target::Host("mx.example.com".into(), 587)]
        );
        assert_eq!(
            on_ports("192.0.2.1", &[25, 465]).expect("ok"),
            vec![ip("192.0.2.1:25"), ip("192.0.2.1:465")]
        );
        assert!(parse_target("mx.example:x", 25).is_err());
    }
}
