//! `mxray canary serve|probe|check`: path tampering canaries (docs/stripping.md).
//!
//! * `serve` runs a control SMTP server with fixed, known bytes and certificate, logging what
//!   every client sent, with a control endpoint that serves the log to probes. Its control key
//!   (`--control-key FILE`, created when missing) authenticates every control request and
//!   answer and signs its expectation, which it prints (the signed JSON a probe's
//!   `--expect FILE` takes) as one line on stdout.
//! * `probe TARGET --expect CONTROL|FILE --control-key FILE` runs one canary dialogue and
//!   compares both
//!   directions byte for byte. stdout: the `TamperReport` as one JSON line, then the records
//!   (`canary_result`, `smtp_probe`, `certificate`, `scan`) as JSON lines unless `--out`/
//!   `--clickhouse`/`--jsonl` send them elsewhere. Exit status 0 when clean, 3 when tampered, blocked or
//!   incomplete (the report says which), including a control answer that failed
//!   authentication (tampering of the control path).
//! * `check TARGET --expect CONTROL|FILE --control-key FILE` is the vantage self-check: prints
//!   `{"port25": "open|blocked|intercepted", "source_ip": ..., "detail": ...}`.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mxray_canary::{
    CanaryConfig, CanaryError, CanaryServer, CannedReplies, ControlEndpoint, ControlKey,
    Expectation, Identity, ListenSpec, SignedExpectation,
};
use mxray_canary_probe::{
    canary_record, control_forged, fetch_expectation, probe, probe_record, self_check,
    ProbeOptions, VantageCheck, Verdict,
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
    /// Control endpoint (serves the expectation and the client log to probes). It answers
    /// only requests authenticated with the control key.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:2526")]
    pub control: SocketAddr,
    /// Run without a control endpoint (probes then take the signed expectation file).
    #[arg(long, conflicts_with = "control")]
    pub no_control: bool,
    /// Control key file (64 hex characters): read when it exists, else a new random key is
    /// written there (mode 0600). It authenticates the control endpoint and signs the
    /// expectation; give the same file to `probe`/`check --control-key`.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_KEY_FILE)]
    pub control_key: PathBuf,
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
    /// Also write the signed expectation JSON (for `probe --expect FILE`) to this file.
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
    /// The canary's control key file (what `mxray canary serve` wrote, default name
    /// mxray-canary.key): authenticates the control endpoint's answers and the expectation
    /// file. Required.
    #[arg(long, value_name = "FILE")]
    pub control_key: Option<PathBuf>,
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

/// Where `serve` keeps its control key unless told otherwise.
const DEFAULT_KEY_FILE: &str = "mxray-canary.key";

/// The control key of `serve`: the file's when it exists, else a new one written there.
/// Returns the key and whether it is new.
fn serve_key(path: &std::path::Path) -> anyhow::Result<(ControlKey, bool)> {
    if path.exists() {
        let key =
            ControlKey::read_file(path).map_err(|e| UsageError(format!("--control-key: {e}")))?;
        return Ok((key, false));
    }
    let key = ControlKey::generate().context("generating the control key")?;
    key.write_new(path)
        .map_err(|e| UsageError(format!("--control-key: {e}")))?;
    Ok((key, true))
}

/// The control key a probe, check or self-check was given: missing is a usage error, before
/// anything is sent.
pub(crate) fn probe_key(
    path: Option<&std::path::Path>,
    flag: &str,
) -> Result<ControlKey, UsageError> {
    let path = path.ok_or_else(|| {
        UsageError(format!(
            "{flag} FILE is required: the control key file `mxray canary serve` wrote \
             ({DEFAULT_KEY_FILE} by default); it authenticates the canary's answers and \
             expectation file"
        ))
    })?;
    ControlKey::read_file(path).map_err(|e| UsageError(format!("{flag}: {e}")))
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
    let (key, new_key) = serve_key(&args.control_key)?;
    cfg.control_key = Some(key);
    let handle = CanaryServer::start(cfg)
        .await
        .context("starting the canary")?;
    let signed = handle
        .signed_expectation()
        .context("signing the expectation")?;
    let exp = serde_json::to_string(&signed).context("expectation JSON")?;
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
        "mxray canary: control key {} (fingerprint {}), {} {} (mode 0600); probes need \
         --control-key with a copy of it",
        handle.control_key().to_text(),
        handle.control_key().fingerprint(),
        if new_key {
            "new, written to"
        } else {
            "read from"
        },
        args.control_key.display()
    );
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

/// What `--expect` gave: the expectation (and the control endpoint to ask for the log, if
/// any), or a control answer that failed authentication.
// Made once per command: the size difference (the HMAC key state) costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Loaded {
    /// The verified expectation.
    Expectation(Expectation, Option<ControlEndpoint>),
    /// The control endpoint's answer failed authentication (why): tampering of the control
    /// path, to be recorded.
    Forged(String),
}

/// `--expect`: a control address (fetch the expectation) or a signed JSON file.
async fn expectation(
    settings: &Settings,
    dialer: &mxray_net::Dialer,
    args: &ProbeArgs,
) -> anyhow::Result<Loaded> {
    let key = probe_key(args.control_key.as_deref(), "--control-key")?;
    load_expectation(settings, dialer, &args.expect, args.control, key).await
}

/// A canary's expectation from its control address, or from a signed JSON file (then
/// `control` is where its log can be asked for, if anywhere; it is asked for its expectation
/// first, so that a wrong key or another canary's file is an error before any probe).
pub(crate) async fn load_expectation(
    settings: &Settings,
    dialer: &mxray_net::Dialer,
    expect: &str,
    control: Option<SocketAddr>,
    key: ControlKey,
) -> anyhow::Result<Loaded> {
    let from_file = match expect.parse::<SocketAddr>() {
        Ok(addr) => {
            return fetch_verified(settings, dialer, ControlEndpoint { addr, key }, None).await
        }
        Err(_) => {
            let p = PathBuf::from(expect);
            let text = read("--expect", &p)?;
            SignedExpectation::open(&text, &key).map_err(|e| {
                UsageError(format!(
                    "--expect {}: not a control IP:PORT nor a valid expectation file: {e}",
                    p.display()
                ))
            })?
        }
    };
    match control {
        Some(addr) => {
            fetch_verified(
                settings,
                dialer,
                ControlEndpoint { addr, key },
                Some(from_file),
            )
            .await
        }
        None => Ok(Loaded::Expectation(from_file, None)),
    }
}

/// Asks `control` for its expectation (the first authenticated exchange: a refused key is a
/// clear error here, before any probe) and checks it against the file's, if any.
async fn fetch_verified(
    settings: &Settings,
    dialer: &mxray_net::Dialer,
    control: ControlEndpoint,
    from_file: Option<Expectation>,
) -> anyhow::Result<Loaded> {
    match fetch_expectation(dialer, &control, settings.timeout).await {
        Ok(exp) => {
            if from_file.as_ref().is_some_and(|f| *f != exp) {
                return Err(UsageError(format!(
                    "--expect FILE is not the expectation of the canary at --control {}",
                    control.addr
                ))
                .into());
            }
            Ok(Loaded::Expectation(exp, Some(control)))
        }
        Err(CanaryError::Key(why)) => Err(UsageError(format!("--control-key: {why}")).into()),
        Err(CanaryError::Unauthenticated(why)) => Ok(Loaded::Forged(why)),
        Err(e) => Err(anyhow::Error::new(e).context("fetching the canary's expectation")),
    }
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
    let (out, forged) = match expectation(settings, &dialer, args).await? {
        Loaded::Expectation(exp, control) => {
            let opts = options(settings, args, target);
            (
                probe(&dialer, target, &exp, control.as_ref(), &opts).await,
                false,
            )
        }
        Loaded::Forged(why) => (control_forged(target, &settings.vantage, &why), true),
    };
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
    let verdict_row = canary_record(&out, scan_id, &settings.vantage);
    let parquet_dir = settings.outputs.out.clone();
    let mut sink = engines::sinks(settings, parquet_dir.as_deref(), true).await?;
    let mut batch: Vec<Record> = vec![verdict_row.into()];
    let mut n_certs = 0;
    // A forged control answer left no session to record, only the verdict.
    if !forged {
        let (record, certs) = probe_record(&out.session, scan_id, &settings.vantage);
        n_certs = certs.len() as u64;
        batch.push(record.into());
        batch.extend(certs.into_iter().map(Record::from));
    }
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
        smtp_probes: u64::from(!forged),
        certificates: n_certs,
        mta_sts_policies: 0,
        campaign: String::new(),
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
    let check = match expectation(settings, &dialer, args).await? {
        Loaded::Expectation(exp, _) => self_check(target, &exp, &dialer, settings.timeout).await,
        Loaded::Forged(why) => control_forged_check(&why),
    };
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

/// The self-check result when the canary's control answer failed authentication: the path
/// from this vantage is intercepted (on the way to the canary's control port, at least).
pub(crate) fn control_forged_check(why: &str) -> VantageCheck {
    VantageCheck {
        port25: Port25Check::Intercepted,
        source_ip: None,
        detail: format!("the canary's control answer failed authentication: {why}"),
    }
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
