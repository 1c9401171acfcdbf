//! `mxray mta-sts`: MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) of named domains, without the
//! SMTP probes.
//!
//! Per domain: the `_mta-sts` and `_smtp._tls` TXT lookups through the configured resolvers
//! (the MX RRset is looked up too, as part of the domain lookup, but not used), the addresses
//! of `mta-sts.<domain>` when the TXT record is valid, then the HTTPS policy fetch through the
//! shared dialer (destination policy, rate limits, `--source-ip`, `--ca-file`). One
//! `mta_sts_policy` record per domain goes to the outputs (JSON lines on stdout when none is
//! given), after a `scan` record; a one-line summary per domain, TLS-RPT included, goes to
//! stderr. Compliance of the MX hosts needs the SMTP probes: that is `mxray scan`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use mxray_model::{DnsOutcome, MtaStsPolicyRecord, Record, ScanRecord, UtcTime};
use mxray_mtasts::TlsRpt;

use crate::engines;
use crate::settings::{Settings, UsageError};

/// Arguments of `mxray mta-sts`.
#[derive(Debug, clap::Args)]
pub(crate) struct MtaStsArgs {
    /// Policy domains.
    #[arg(required = true)]
    pub domains: Vec<String>,
}

/// The same normalisation as `mxray scan`'s input (IDNA to A-labels, lower case, syntax).
fn normalise_domain(s: &str) -> Result<String, UsageError> {
    mxray_scan::input::normalise_domain(s)
        .map_err(|why| UsageError(format!("domain {s:?}: not a domain name ({why})")))
}

pub(crate) async fn run(settings: &Settings, args: &MtaStsArgs) -> anyhow::Result<ExitCode> {
    let scan_id = uuid::Uuid::now_v7();
    let started_at = UtcTime::now();
    let mut domains = args
        .domains
        .iter()
        .map(|d| normalise_domain(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::HashSet::new();
    domains.retain(|d| seen.insert(d.clone()));

    let dialer = settings.dialer();
    let fetcher = Arc::new(engines::fetcher(settings, &dialer)?);
    let dns = Arc::new(engines::dns_collector(settings)?);
    let parquet_dir = settings.outputs.out.clone();
    let mut sink = engines::sinks(settings, parquet_dir.as_deref(), true).await?;

    let limit = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, domain) in domains.iter().cloned().enumerate() {
        let (dns, fetcher, limit) = (Arc::clone(&dns), Arc::clone(&fetcher), Arc::clone(&limit));
        let vantage = settings.vantage.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let d = dns.domain(&domain).await;
            let input = mxray_scan::pipeline::mta_sts_input(dns.as_ref(), &domain, &d).await;
            let assessment = mxray_mtasts::assess(&input, &fetcher).await;
            let record = assessment.record(scan_id, &vantage);
            let tlsrpt = match d.tls_rpt.outcome {
                DnsOutcome::NoError | DnsOutcome::NoData | DnsOutcome::NxDomain => {
                    Ok(mxray_mtasts::parse_tlsrpt(&d.tls_rpt.records))
                }
                other => Err(other),
            };
            (i, record, tlsrpt)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        results.push(joined.context("MTA-STS task")?);
    }
    results.sort_by_key(|(i, _, _)| *i);

    let mut records: Vec<Record> = Vec::with_capacity(results.len() + 1);
    for (_, record, tlsrpt) in results {
        eprintln!("{}", summary(&record, &tlsrpt));
        records.push(record.into());
    }
    let policies = records.len() as u64;
    let input = domains.join("\n");
    let scan = ScanRecord {
        domains_total: domains.len() as u64,
        domains_done: policies,
        mta_sts_policies: policies,
        ..engines::finished_scan_record(settings, scan_id, started_at, "mta-sts", &input)
    };
    records.insert(0, scan.into());
    sink.write_batch(records).await.context("writing records")?;
    let report = sink.close().await.context("closing outputs")?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `domain status[/class] mode max_age mx=.. tls-rpt=..  (detail)` for stderr.
fn summary(r: &MtaStsPolicyRecord, tlsrpt: &Result<TlsRpt, DnsOutcome>) -> String {
    let mut s = format!("{} mta-sts={}", r.domain, r.status);
    if let Some(c) = r.error_class {
        s.push_str(&format!("/{c}"));
    }
    if let Some(id) = &r.policy_id {
        s.push_str(&format!(" id={id}"));
    }
    if let (Some(m), Some(a)) = (r.mode, r.max_age) {
        s.push_str(&format!(" mode={m} max_age={a}"));
    }
    if !r.mx_patterns.is_empty() {
        // Bounded: a hostile 64 KiB policy can list thousands of patterns (all kept in the record).
        s.push_str(&format!(
            " mx={}",
            mxray_mtasts::mx_patterns_for_log(&r.mx_patterns)
        ));
    }
    match tlsrpt {
        Ok(t) if t.valid => s.push_str(&format!(" tls-rpt={}", t.rua.join(","))),
        Ok(t) => match &t.error {
            Some(e) if t.record.is_some() || !matches!(e, mxray_mtasts::TlsRptError::NoRecord) => {
                s.push_str(&format!(" tls-rpt=invalid ({e})"))
            }
            _ => s.push_str(" tls-rpt=none"),
        },
        Err(o) => s.push_str(&format!(" tls-rpt=lookup_error/{o}")),
    }
    if !r.warnings.is_empty() {
        s.push_str(&format!(" warnings={}", r.warnings.len()));
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
    fn domains_are_normalised_or_refused() {
        assert_eq!(normalise_domain("Example.COM.").expect("ok"), "example.com");
        assert!(normalise_domain("localhost").is_err());
        assert!(normalise_domain("a..b").is_err());
        assert_eq!(
            normalise_domain("bücher.example").expect("idna"),
            "xn--bcher-kva.example"
        );
    }
}
