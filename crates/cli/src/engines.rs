//! Building the library objects from [`Settings`]: the one place where flags turn into
//! DNS/SMTP/MTA-STS configurations and sinks, shared by `scan`, `dns`, `smtp` and `mta-sts`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use mxray_dns::{DnsCollector, DnsConfig, DnssecMode, TrustAnchorSet};
use mxray_model::{Port25Check, ScanRecord, ScanStatus, UtcTime, SCHEMA_VERSION};
use mxray_mtasts::{FetchConfig, PolicyFetcher};
use mxray_net::Dialer;
use mxray_smtp::{ProbeConfig, Prober};
use mxray_store::{
    ClickHouseConfig, ClickHouseSink, FanOut, JsonlSink, ParquetOptions, ParquetSink, Sink,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::settings::{DnssecChoice, Settings, UsageError};

/// The DNS collector for these settings.
pub(crate) fn dns_collector(settings: &Settings) -> anyhow::Result<DnsCollector> {
    let mut cfg = DnsConfig::new(settings.resolvers.clone());
    cfg.mode = match settings.dnssec {
        DnssecChoice::Ad => DnssecMode::Ad,
        DnssecChoice::Validate => DnssecMode::Validate {
            trust_anchors: match &settings.trust_anchor {
                Some(p) => TrustAnchorSet::from_file(p)
                    .map_err(|e| UsageError(format!("--trust-anchor {}: {e}", p.display())))?,
                None => TrustAnchorSet::default(),
            },
        },
    };
    cfg.max_in_flight = settings.concurrency.max(16);
    // --timeout bounds each DNS attempt too, but a DNS answer that takes over 2 s is lost:
    // three 2 s attempts are the resolver's budget.
    cfg.timeout = settings.timeout.min(std::time::Duration::from_secs(2));
    // The DNS transport binds one source: that of the first resolver's family.
    cfg.source_ip = settings
        .resolvers
        .first()
        .and_then(|r| settings.source_ip_for(r.is_ipv4()));
    DnsCollector::new(cfg).context("DNS collector")
}

/// The SMTP prober for these settings.
pub(crate) fn prober(
    settings: &Settings,
    dialer: &Dialer,
    scan_id: Uuid,
) -> anyhow::Result<Prober> {
    let mut cfg = ProbeConfig::default();
    cfg.ehlo_name = settings.ehlo_name.clone();
    cfg.limits.command_timeout = settings.timeout;
    cfg.limits.tls_timeout = settings.timeout;
    cfg.limits.greeting_timeout = settings
        .timeout
        .max(cfg.limits.greeting_timeout.min(settings.timeout * 2));
    cfg.concurrency = settings.concurrency;
    cfg.extra_roots_pem = settings.ca_pem.clone().unwrap_or_default().into_bytes();
    cfg.starttls_override = settings.send_starttls_override.into();
    Prober::new(cfg, dialer.clone(), scan_id, settings.vantage.clone())
        .map_err(|e| UsageError(format!("--ca-file: {e}")).into())
}

/// The MTA-STS policy fetcher for these settings.
pub(crate) fn fetcher(settings: &Settings, dialer: &Dialer) -> anyhow::Result<PolicyFetcher> {
    let cfg = FetchConfig {
        timeout: settings.timeout * 2,
        extra_roots_pem: settings.ca_pem.clone().map(String::into_bytes),
        ..FetchConfig::default()
    };
    PolicyFetcher::new(cfg, dialer.clone())
        .map_err(|e| UsageError(format!("--ca-file: {e}")).into())
}

/// The `scan` record of a run, counts zero and status `running`; the command fills in the rest.
pub(crate) fn scan_record(
    settings: &Settings,
    scan_id: Uuid,
    started_at: UtcTime,
    input_name: &str,
) -> ScanRecord {
    ScanRecord {
        scan_id,
        vantage: settings.vantage.clone(),
        started_at,
        finished_at: None,
        status: ScanStatus::Running,
        source_ip: settings.source_ip_text(),
        source_rdns: None,
        port25_check: Port25Check::NotChecked,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: SCHEMA_VERSION,
        config: settings.to_json(),
        input_name: input_name.to_owned(),
        input_sha256: String::new(),
        shard: settings.shard.to_string(),
        domains_total: 0,
        domains_done: 0,
        input_errors: 0,
        dns_hosts: 0,
        smtp_probes: 0,
        certificates: 0,
        mta_sts_policies: 0,
        campaign: String::new(),
    }
}

/// The record of a one-shot command (`smtp`, `mta-sts`) that just finished.
pub(crate) fn finished_scan_record(
    settings: &Settings,
    scan_id: Uuid,
    started_at: UtcTime,
    input_name: &str,
    input: &str,
) -> ScanRecord {
    ScanRecord {
        finished_at: Some(UtcTime::now()),
        status: ScanStatus::Complete,
        input_sha256: hex::encode(Sha256::digest(input.as_bytes())),
        shard: "0/1".into(),
        ..scan_record(settings, scan_id, started_at, input_name)
    }
}

/// The default Parquet directory of a scan.
pub(crate) fn default_out_dir(scan_id: Uuid) -> PathBuf {
    PathBuf::from("mxray-out").join(scan_id.to_string())
}

/// The sinks named by the output options. `parquet_dir` is where Parquet goes (None: no
/// Parquet); `default_jsonl_stdout` makes `-` the JSONL output when nothing else is asked for.
pub(crate) async fn sinks(
    settings: &Settings,
    parquet_dir: Option<&Path>,
    default_jsonl_stdout: bool,
) -> anyhow::Result<Box<dyn Sink>> {
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if let Some(dir) = parquet_dir {
        sinks.push(Box::new(
            ParquetSink::create(dir, ParquetOptions::default())
                .with_context(|| format!("Parquet output {}", dir.display()))?,
        ));
    }
    if let Some(url) = &settings.outputs.clickhouse {
        let cfg = ClickHouseConfig::from_url(url.as_str())
            .map_err(|e| UsageError(format!("--clickhouse: {e}")))?;
        sinks.push(Box::new(
            ClickHouseSink::connect(cfg)
                .await
                .context("ClickHouse output")?,
        ));
    }
    let jsonl = settings
        .outputs
        .jsonl
        .clone()
        .or_else(|| (default_jsonl_stdout && sinks.is_empty()).then(|| "-".to_owned()));
    if let Some(path) = jsonl {
        if path == "-" {
            sinks.push(Box::new(JsonlSink::from_writer(
                Box::new(std::io::stdout()),
                "-",
            )));
        } else {
            sinks.push(Box::new(
                JsonlSink::create(Path::new(&path)).with_context(|| format!("--jsonl {path}"))?,
            ));
        }
    }
    Ok(Box::new(FanOut::new(sinks)))
}
