//! `mxray canary serve|probe|check`: path tampering canaries (docs/stripping.md).
//!
//! * `serve` runs a control SMTP server with fixed, known bytes and certificate, logging what
//!   every client sent, with a control endpoint that serves the log to probes. It prints its
//!   expectation (the JSON a probe's `--expect FILE` takes) as one line on stdout.
//! * `probe TARGET --expect CONTROL|FILE` runs one canary dialogue and compares both
//!   directions byte for byte. stdout: the `TamperReport` as one JSON line, then the records
//!   (`canary_result`, `smtp_probe`, `certificate`, `scan`) as JSON lines unless `--out`/
//!   `--clickhouse`/`--jsonl` send them elsewhere. Exit status 0 when clean, 3 when tampered, blocked or
//!   incomplete (the report says which).
//! * `check TARGET --expect CONTROL|FILE` is the vantage self-check: prints
//!   `{"port25": "open|blocked|intercepted", "source_ip": ..., "detail": ...}`.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mxray_canary::{
    canary_record, fetch_expectation, probe, probe_record, self_check, CanaryConfig, CanaryServer,
    CannedReplies, Expectation, Identity, ListenSpec, ProbeOptions, Verdict,
};
use mxray_model::{Port25Check, Record, ScanRecord, ScanStatus, UtcTime, SCHEMA_VERSION};
use sha2::{Digest, Sha256};

use crate::engines;
use crate::settings::{Settings, UsageError};

/// Arguments of `mxray canary`.
#[derive(Debug, clap::Args)]
pub(crate) struct CanaryArgs {
    #[command(subcommand)]
    pub action: CanaryAction,
}

/// What `mxray canary` does.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CanaryAction {
    /// Run a canary: fixed SMTP replies and certificate, a log of what clients sent.
    Serve(ServeArgs),
    /// Probe a canary and compare both directions byte for byte.
    Probe(ProbeArgs),
    /// Vantage self-check against a canary: is outbound SMTP open, blocked or intercepted?
    Check(ProbeArgs),
}

/// Arguments of `mxray canary serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// STARTTLS listener (repeatable), e.g. 0.0.0.0:25 and 0.0.0.0:587.
    /// Default 127.0.0.1:2525 when no listener is given.
    #[arg(long = "listen", value_name = "IP:PORT")]
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listener (repeatable), e.g. 0.0.0.0:465.
    #[arg(long = "listen-tls", value_name = "IP:PORT")]
    pub listen_tls: Vec<SocketAddr>,
    /// Control endpoint (serves the expectation and the client log to probes). Anyone who
    /// reaches it can read what clients sent, so bind it where only your probes reach.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:2526")]
    pub control: SocketAddr,
    /// Run without a control endpoint.
    #[arg(long, conflicts_with = "control")]
    pub no_control: bool,
    /// Append one JSON line per finished connection to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Certificate chain (PEM, leaf first). Default: a fresh self-signed certificate.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Names of the generated certificate (repeatable). Default canary.mxray.invalid.
    #[arg(long = "name", value_name = "NAME", conflicts_with = "cert")]
    pub names: Vec<String>,
    /// JSON file overriding some of the canned replies (keys: greeting, ehlo, starttls,
    /// ehlo_tls, helo, quit, ok, refuse_mail, unknown, bad_sequence; exact bytes, CRLF
    /// included).
    #[arg(long, value_name = "FILE")]
    pub replies: Option<PathBuf>,
    /// Also write the expectation JSON (for `probe --expect FILE`) to this file.
    #[arg(long, value_name = "FILE")]
    pub expect_out: Option<PathBuf>,
}

/// Arguments of `mxray canary probe` and `mxray canary check`.
#[derive(Debug, clap::Args)]
pub(crate) struct ProbeArgs {
    /// The canary's SMTP address: IP or IP:PORT (port default: --smtp-port).
    pub target: String,
    /// The canary's control endpoint IP:PORT (the expectation is fetched from it, and the
    /// canary's log of this connection), or a JSON file of the canary's expectation.
    #[arg(long, value_name = "CONTROL|FILE")]
    pub expect: String,
    /// Control endpoint to ask for the canary's log when --expect is a file.
    #[arg(long, value_name = "IP:PORT")]
    pub control: Option<SocketAddr>,
    /// Implicit TLS (default: when the port is 465).
    #[arg(long)]
    pub implicit_tls: bool,
    /// SNI name to send (default: none).
    #[arg(long)]
    pub sni: Option<String>,
}

pub(crate) async fn run(settings: &Settings, args: &CanaryArgs) -> anyhow::Result<ExitCode> {
    match &args.action {
        CanaryAction::Serve(a) => serve(a).await,
        CanaryAction::Probe(a) => run_probe(settings, a).await,
        CanaryAction::Check(a) => run_check(settings, a).await,
    }
}

fn read(what: &str, p: &PathBuf) -> Result<Vec<u8>, UsageError> {
    std::fs::read(p).map_err(|e| UsageError(format!("{what} {}: cannot read: {e}", p.display())))
}

async fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let identity = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Identity::from_pem(&read("--cert", c)?, &read("--key", k)?)
            .map_err(|e| UsageError(format!("--cert/--key: {e}")))?,
        _ => Identity::generate(&args.names).context("generating the canary certificate")?,
    };
    let mut cfg = CanaryConfig::new(identity);
    if let Some(p) = &args.replies {
        let text = read("--replies", p)?;
        cfg.replies = serde_json::from_slice::<CannedReplies>(&text)
            .map_err(|e| UsageError(format!("--replies {}: {e}", p.display())))?;
        cfg.replies
            .validate()
            .map_err(|e| UsageError(format!("--replies {}: {e}", p.display())))?;
    }
    let mut listen: Vec<ListenSpec> = args
        .listen
        .iter()
        .map(|a| ListenSpec::starttls(*a))
        .collect();
    listen.extend(args.listen_tls.iter().map(|a| ListenSpec::implicit_tls(*a)));
    if listen.is_empty() {
        listen.push(ListenSpec::starttls(SocketAddr::from((
            [127, 0, 0, 1],
            2525,
        ))));
    }
    cfg.listen = listen;
    cfg.control = (!args.no_control).then_some(args.control);
    cfg.log_file = args.log.clone();
    let handle = CanaryServer::start(cfg)
        .await
        .context("starting the canary")?;
    let exp = serde_json::to_string(handle.expectation()).context("expectation JSON")?;
    if let Some(p) = &args.expect_out {
        std::fs::write(p, format!("{exp}\n"))
            .with_context(|| format!("--expect-out {}", p.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{exp}").context("writing stdout")?;
        out.flush().context("writing stdout")?;
    }
    for l in handle.listeners() {
        let kind = if l.implicit_tls {
            "implicit TLS"
        } else {
            "STARTTLS"
        };
        eprintln!("mxray canary: SMTP ({kind}) on {}", l.addr);
    }
    if let Some(c) = handle.control_addr() {
        eprintln!("mxray canary: control endpoint on {c}");
    }
    eprintln!(
        "mxray canary: certificate sha256 {}; Ctrl-C to stop",
        handle
            .expectation()
            .cert_sha256
            .first()
            .map(String::as_str)
            .unwrap_or("?")
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(handle);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn parse_target(s: &str, default_port: u16) -> Result<SocketAddr, UsageError> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| {
            UsageError(format!(
                "target {s:?}: expected IP, IP:PORT or [IPv6]:PORT (a canary you run)"
            ))
        })
}

/// `--expect`: a control address (fetch the expectation) or a JSON file.
async fn expectation(
    settings: &Settings,
    dialer: &mxray_net::Dialer,
    args: &ProbeArgs,
) -> anyhow::Result<(Expectation, Option<SocketAddr>)> {
    load_expectation(settings, dialer, &args.expect, args.control).await
}

/// A canary's expectation from its control address, or from a JSON file (then `control` is
/// where its log can be asked for, if anywhere).
pub(crate) async fn load_expectation(
    settings: &Settings,
    dialer: &mxray_net::Dialer,
    expect: &str,
    control: Option<SocketAddr>,
) -> anyhow::Result<(Expectation, Option<SocketAddr>)> {
    if let Ok(control) = expect.parse::<SocketAddr>() {
        let exp = fetch_expectation(dialer, control, settings.timeout)
            .await
            .context("fetching the canary's expectation")?;
        return Ok((exp, Some(control)));
    }
    let p = PathBuf::from(expect);
    let text = read("--expect", &p)?;
    let exp = serde_json::from_slice::<Expectation>(&text).map_err(|e| {
        UsageError(format!(
            "--expect {}: not a control IP:PORT nor an expectation JSON file: {e}",
            p.display()
        ))
    })?;
    Ok((exp, control))
}

fn options(settings: &Settings, args: &ProbeArgs, target: SocketAddr) -> ProbeOptions {
    ProbeOptions {
        ehlo_name: settings.ehlo_name.clone(),
        implicit_tls: args.implicit_tls || target.port() == 465,
        sni: args.sni.clone(),
        timeout: settings.timeout,
        vantage: settings.vantage.clone(),
        ..ProbeOptions::default()
    }
}

async fn run_probe(settings: &Settings, args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let started_at = UtcTime::now();
    let target = parse_target(&args.target, settings.smtp_port)?;
    let dialer = settings.dialer();
    let (exp, control) = expectation(settings, &dialer, args).await?;
    let opts = options(settings, args, target);
    let out = probe(&dialer, target, &exp, control, &opts).await;
    {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer(&mut stdout, &out.report).context("writing the report")?;
        writeln!(stdout).context("writing stdout")?;
        stdout.flush().context("writing stdout")?;
    }
    eprintln!(
        "{target}: {} ({})",
        verdict_word(out.report.verdict),
        out.report.detail
    );

    let scan_id = uuid::Uuid::now_v7();
    let (record, certs) = probe_record(&out.session, scan_id, &settings.vantage);
    let verdict_row = canary_record(&out, scan_id, &settings.vantage);
    let parquet_dir = settings.outputs.out.clone();
    let mut sink = engines::sinks(settings, parquet_dir.as_deref(), true).await?;
    let n_certs = certs.len() as u64;
    let mut batch: Vec<Record> = vec![verdict_row.into(), record.into()];
    batch.extend(certs.into_iter().map(Record::from));
    sink.write_batch(batch).await.context("writing records")?;
    let port25_check = if target.port() == 25 {
        match out.report.verdict {
            Verdict::Clean => Port25Check::Open,
            Verdict::Blocked => Port25Check::Blocked,
            Verdict::Tampered => Port25Check::Intercepted,
            Verdict::Error => Port25Check::NotChecked,
        }
    } else {
        Port25Check::NotChecked
    };
    let scan = ScanRecord {
        scan_id,
        vantage: settings.vantage.clone(),
        started_at,
        finished_at: Some(UtcTime::now()),
        status: ScanStatus::Complete,
        source_ip: settings.source_ip_text(),
        source_rdns: None,
        port25_check,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: SCHEMA_VERSION,
        config: settings.to_json(),
        input_name: "canary".into(),
        input_sha256: hex::encode(Sha256::digest(args.target.as_bytes())),
        shard: "0/1".into(),
        domains_total: 0,
        domains_done: 0,
        input_errors: 0,
        dns_hosts: 0,
        smtp_probes: 1,
        certificates: n_certs,
        mta_sts_policies: 0,
    };
    sink.write(scan.into()).await.context("writing records")?;
    let report = sink.close().await.context("closing outputs")?;
    if !report.is_clean() {
        return Ok(ExitCode::from(1));
    }
    Ok(if out.report.verdict == Verdict::Clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Clean => "clean",
        Verdict::Tampered => "TAMPERED",
        Verdict::Blocked => "blocked",
        Verdict::Error => "error",
    }
}

async fn run_check(settings: &Settings, args: &ProbeArgs) -> anyhow::Result<ExitCode> {
    let target = parse_target(&args.target, settings.smtp_port)?;
    let dialer = settings.dialer();
    let (exp, _) = expectation(settings, &dialer, args).await?;
    let check = self_check(target, &exp, &dialer, settings.timeout).await;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &check).context("writing the result")?;
    writeln!(stdout).context("writing stdout")?;
    stdout.flush().context("writing stdout")?;
    Ok(if check.port25 == Port25Check::Open {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            parse_target("192.0.2.1", 25).expect("ok"),
            "192.0.2.1:25".parse::<SocketAddr>().expect("sa")
        );
        assert_eq!(
            parse_target("[2001:db8::1]:465", 25).expect("ok"),
            "[2001:db8::1]:465".parse::<SocketAddr>().expect("sa")
        );
        assert!(parse_target("canary.example", 25).is_err());
    }
}
