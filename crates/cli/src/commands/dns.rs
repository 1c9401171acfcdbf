//! `mxray dns`: DNS/TLSA collection only.
//!
//! Output (stdout, one JSON object per line, in completion order):
//! - per domain: `{"record": "dns_domain", ...}` with the fields of `mxray_dns::DomainDns`
//!   (MX kind/outcome/DNSSEC/TTL, MX records and hosts, `_mta-sts` and `_smtp._tls` TXT, EDE,
//!   errors);
//! - per distinct MX host (the first `mxray_dns::MAX_MX_HOSTS` of each domain, as `scan`
//!   follows): a `dns_host` record exactly as in the `dns_hosts` table.
//!
//! DNS failures are data (in the records); the exit status is 0 unless mxray itself failed.

use std::collections::HashSet;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mxray_model::Record;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::engines::dns_collector;
use crate::settings::Settings;

/// Arguments of `mxray dns`.
#[derive(Debug, clap::Args)]
pub(crate) struct DnsArgs {
    /// Domains to collect (`-` alone: read one domain per line from stdin, streamed).
    #[arg(required = true)]
    pub domains: Vec<String>,
}

/// Distinct host names remembered for de-duplicating `dns_host` lines; beyond this the set is
/// reset (a host may then be printed twice, memory stays bounded).
const MAX_PRINTED_HOSTS: usize = 1_000_000;

struct Output {
    lines: Vec<String>,
    hosts: Vec<Arc<mxray_dns::HostDns>>,
}

async fn collect(dns: mxray_dns::DnsCollector, domain: String) -> anyhow::Result<Output> {
    let d = dns.domain(&domain).await;
    // `"record"` first, as on every other JSON line; then the fields in declaration order.
    let body = serde_json::to_string(&d).context("serialize domain")?;
    let line = match body.strip_prefix('{') {
        Some(rest) => format!("{{\"record\":\"dns_domain\",{rest}"),
        None => body,
    };
    // The first MAX_MX_HOSTS hosts, as `scan` follows them (a hostile zone lists thousands).
    let mut hosts = Vec::new();
    for h in d.hosts_to_follow() {
        hosts.push(dns.host(h).await);
    }
    Ok(Output {
        lines: vec![line],
        hosts,
    })
}

pub(crate) async fn run(settings: &Settings, args: &DnsArgs) -> anyhow::Result<ExitCode> {
    let dns = dns_collector(settings)?;
    let scan_id = Uuid::now_v7();
    let limit = settings.concurrency.max(1);
    let stdout = std::io::stdout();
    let mut printed: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<anyhow::Result<Output>> = JoinSet::new();

    let emit = |out: Output, printed: &mut HashSet<String>| -> anyhow::Result<()> {
        let mut w = stdout.lock();
        for l in out.lines {
            writeln!(w, "{l}")?;
        }
        for h in out.hosts {
            if printed.len() >= MAX_PRINTED_HOSTS {
                printed.clear();
            }
            if printed.insert(h.host.clone()) {
                let rec = Record::DnsHost(h.to_record(scan_id, &settings.vantage));
                writeln!(w, "{}", serde_json::to_string(&rec)?)?;
            }
        }
        w.flush()?;
        Ok(())
    };

    let from_stdin = args.domains.len() == 1 && args.domains[0] == "-";
    // stdin is read on a blocking thread into a small bounded channel (streamed input).
    let mut stdin_lines = from_stdin.then(|| {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<String>>(1024);
        tokio::task::spawn_blocking(move || {
            for line in std::io::stdin().lines() {
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        rx
    });
    let mut argv = args.domains.iter().filter(|_| !from_stdin);

    loop {
        // Keep at most `limit` domains in flight: bounded memory for streamed input.
        while tasks.len() >= limit {
            if let Some(res) = tasks.join_next().await {
                emit(res.context("domain task")??, &mut printed)?;
            }
        }
        let next = match &mut stdin_lines {
            Some(rx) => rx.recv().await.transpose().context("read stdin")?,
            None => argv.next().cloned(),
        };
        let Some(raw) = next else { break };
        let domain = raw.trim().to_owned();
        if domain.is_empty() || domain.starts_with('#') {
            continue;
        }
        tasks.spawn(collect(dns.clone(), domain));
    }
    while let Some(res) = tasks.join_next().await {
        emit(res.context("domain task")??, &mut printed)?;
    }
    for p in dns.trust_anchor_problems() {
        eprintln!("mxray: warning: {p} (answers below it are never secure)");
    }
    Ok(ExitCode::SUCCESS)
}
