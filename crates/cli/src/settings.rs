//! Options in two stages: raw values (flags and an optional TOML file), then one validated
//! [`Settings`] that every subcommand reads.
//!
//! Precedence: a flag on the command line beats the config file, which beats the default.
//! Every default is documented on the [`SharedArgs`] field (that text is also `--help`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
use sha2::{Digest, Sha256};

/// A configuration problem: reported as one line, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub(crate) String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// How DNSSEC status is determined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DnssecChoice {
    /// Trust the AD bit of the configured resolver (run a validating resolver such as Unbound
    /// on loopback).
    Ad,
    /// Validate locally (root anchor built in, plus `--trust-anchor`).
    Validate,
}

/// `--send-starttls-override`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StarttlsOverrideChoice {
    /// Hosts with a secure TLSA RRset.
    #[default]
    Policy,
    /// Every host.
    Always,
    /// No host.
    Never,
}

impl From<StarttlsOverrideChoice> for mxray_smtp::StarttlsOverride {
    fn from(c: StarttlsOverrideChoice) -> Self {
        match c {
            StarttlsOverrideChoice::Policy => mxray_smtp::StarttlsOverride::Policy,
            StarttlsOverrideChoice::Always => mxray_smtp::StarttlsOverride::Always,
            StarttlsOverrideChoice::Never => mxray_smtp::StarttlsOverride::Never,
        }
    }
}

/// A TOML value given as one string or a list of strings (`source_ip = "::1"` or
/// `source_ip = ["192.0.2.1", "2001:db8::1"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The options shared by every subcommand (DESIGN.md "Shared options").
///
/// Every field is optional here so that we can tell "not given" from "given": the defaults
/// below are applied in [`Settings::resolve`], after the config file.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SharedArgs {
    /// TOML file with any of these options (keys as the long flag names, `-` or `_`);
    /// flags given on the command line win.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// DNS resolver to query, IP or IP:PORT (repeatable; queries are spread over all).
    /// Default 127.0.0.1:53: mxray never reads /etc/resolv.conf; run a validating resolver
    /// (Unbound) on loopback.
    #[arg(long = "resolver", global = true, value_name = "IP[:PORT]")]
    pub resolvers: Vec<String>,

    /// DNSSEC mode. Default `ad` (trust the AD bit of the loopback validating resolver).
    #[arg(long, global = true, value_enum)]
    pub dnssec: Option<DnssecChoice>,

    /// Extra DNSSEC trust anchors for `--dnssec validate` (DS or DNSKEY presentation lines).
    #[arg(long, global = true, value_name = "FILE")]
    pub trust_anchor: Option<PathBuf>,

    /// Extra trusted root certificates (PEM) for SMTP PKIX checks and MTA-STS HTTPS,
    /// added to the built-in webpki roots.
    #[arg(long, global = true, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,

    /// Local address to bind for outgoing connections (one vantage per address); give it
    /// once per address family to scan IPv4 and IPv6 destinations. When given, a destination
    /// of a family without a source is recorded as `no_source_address`, never dialled from
    /// an address the OS picks. Default: chosen by the OS.
    #[arg(long, global = true, value_name = "IP")]
    pub source_ip: Vec<String>,

    /// Label written into every record. Default `default`.
    #[arg(long, global = true, value_name = "NAME")]
    pub vantage: Option<String>,

    /// Name sent in EHLO. Default: this machine's host name. Use a name whose forward and
    /// reverse DNS point at the scanner, so operators can identify and reach you.
    #[arg(long, global = true, value_name = "NAME")]
    pub ehlo_name: Option<String>,

    /// New connections per second, all destinations together. Default 1000: a top-million
    /// scan in well under an hour, while no single network sees more than the per-IP limit.
    #[arg(long, global = true, value_name = "N")]
    pub rate: Option<u32>,

    /// New connections per second to one IP. Default 20, as zgrab2.
    #[arg(long, global = true, value_name = "N")]
    pub per_ip_rate: Option<u32>,

    /// New connections per second to one /24 (IPv6: /48). Default 100: a network hosting
    /// many mail servers sees at most five times the per-IP rate.
    #[arg(long, global = true, value_name = "N")]
    pub per_prefix_rate: Option<u32>,

    /// When to send STARTTLS although the EHLO reply does not advertise it: `policy` (the
    /// default: on hosts whose secure TLSA RRset requires TLS, where a 220 and a completed
    /// handshake prove the EHLO reply was rewritten on the path), `always` (every host, as
    /// zgrab2's --send-starttls-override) or `never`.
    #[arg(long, global = true, value_name = "WHEN")]
    pub send_starttls_override: Option<StarttlsOverrideChoice>,

    /// Concurrent sessions (SMTP probes, HTTPS fetches, DNS lookups each). Default 1000: enough
    /// to hide 10 s timeouts at 100/s, small enough for one 2-core machine.
    #[arg(long, global = true, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Timeout in seconds for each network step (connect, each SMTP reply, TLS handshake,
    /// DNS query, HTTPS fetch). Default 10: RFC 5321 §4.5.3.2 allows far longer, but
    /// measurement needs bounded scans and slow servers are recorded as timeouts.
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        allow_negative_numbers = true
    )]
    pub timeout: Option<f64>,

    /// SMTP ports to probe, comma-separated (e.g. 25,587,465): 25 and 587 are STARTTLS, 465
    /// implicit TLS (RFC 8314). Domain verdicts use 25 when listed, else the first port; the
    /// others are recorded for adoption figures. Default 25.
    #[arg(long, global = true, value_name = "N[,N...]")]
    pub smtp_port: Option<String>,

    /// File of IPs/CIDRs never to contact (one per line, # comments).
    #[arg(long, global = true, value_name = "FILE")]
    pub blocklist: Option<PathBuf>,

    /// Allow reserved and private destinations (refused by default, as ZMap does).
    #[arg(long, global = true)]
    pub allow_private: bool,

    /// Scan only shard I of N (0-based), chosen by a stable hash of the domain.
    /// Default 0/1 (everything). `auto`: the index (and count) from a batch scheduler, a
    /// Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, count from --shard-count) or a Slurm job
    /// array (`SLURM_ARRAY_TASK_ID` - `SLURM_ARRAY_TASK_MIN`, count `SLURM_ARRAY_TASK_COUNT`).
    #[arg(long, global = true, value_name = "I/N|auto")]
    pub shard: Option<String>,

    /// The shard count for `--shard auto` (required for a Kubernetes Indexed Job, whose pods
    /// are not told their completions count; optional for Slurm, where it must agree).
    #[arg(long, global = true, value_name = "N")]
    pub shard_count: Option<u32>,

    /// The campaign this scan is a shard of (written into the `scan` record; `report
    /// --campaign` combines a campaign's shards). Default: derived from the measurement
    /// settings, the shard count and the input's checksum, so every shard of one run agrees
    /// without coordination.
    #[arg(long, global = true, value_name = "ID")]
    pub campaign: Option<String>,

    /// Continue an interrupted scan in the same output directory.
    #[arg(long, global = true)]
    pub resume: bool,

    /// Parquet output directory. Default for `scan`: ./mxray-out/<scan_id>/.
    #[arg(long, global = true, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// ClickHouse URL, e.g. http://user:pass@127.0.0.1:8123/mxray (database in the path).
    #[arg(long, global = true, value_name = "URL")]
    pub clickhouse: Option<String>,

    /// JSON lines output file, or `-` for stdout.
    #[arg(long, global = true, value_name = "PATH|-")]
    pub jsonl: Option<String>,
}

/// The TOML config file: the same options, snake_case or kebab-case keys. Unknown keys are an
/// error (a typo must not silently fall back to a default).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct ConfigFile {
    #[serde(alias = "resolvers")]
    resolver: Option<Vec<String>>,
    dnssec: Option<DnssecChoice>,
    #[serde(alias = "trust-anchor")]
    trust_anchor: Option<PathBuf>,
    #[serde(alias = "ca-file")]
    ca_file: Option<PathBuf>,
    #[serde(alias = "source-ip")]
    source_ip: Option<OneOrMany>,
    vantage: Option<String>,
    #[serde(alias = "ehlo-name")]
    ehlo_name: Option<String>,
    rate: Option<u32>,
    #[serde(alias = "per-ip-rate")]
    per_ip_rate: Option<u32>,
    #[serde(alias = "per-prefix-rate")]
    per_prefix_rate: Option<u32>,
    #[serde(alias = "send-starttls-override")]
    send_starttls_override: Option<StarttlsOverrideChoice>,
    concurrency: Option<usize>,
    timeout: Option<f64>,
    #[serde(alias = "smtp-port")]
    smtp_port: Option<PortList>,
    blocklist: Option<PathBuf>,
    #[serde(alias = "allow-private")]
    allow_private: Option<bool>,
    shard: Option<String>,
    #[serde(alias = "shard-count")]
    shard_count: Option<u32>,
    campaign: Option<String>,
    out: Option<PathBuf>,
    clickhouse: Option<String>,
    jsonl: Option<String>,
}

/// `smtp_port` in the TOML file: `25`, `[25, 587, 465]` or `"25,587,465"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PortList {
    One(u32),
    Many(Vec<u32>),
    Text(String),
}

impl PortList {
    fn text(&self) -> String {
        match self {
            PortList::One(p) => p.to_string(),
            PortList::Many(v) => v.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
            PortList::Text(t) => t.clone(),
        }
    }
}

/// At most this many `--smtp-port` values (each multiplies the probes per address).
const MAX_SMTP_PORTS: usize = 8;

/// `--smtp-port N[,N...]`: ports 1-65535, duplicates dropped, order kept.
fn parse_ports(s: &str) -> Result<Vec<u16>, UsageError> {
    let mut ports: Vec<u16> = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        let port = item
            .parse::<u32>()
            .map_err(|_| usage(format!("--smtp-port {s:?}: {item:?} is not a port number")))?;
        let port = u16::try_from(in_range("--smtp-port", port, 1, 65535)?)
            .map_err(|_| usage(format!("--smtp-port {port}: must be at most 65535")))?;
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    if ports.len() > MAX_SMTP_PORTS {
        return Err(usage(format!(
            "--smtp-port {s:?}: at most {MAX_SMTP_PORTS} ports"
        )));
    }
    Ok(ports)
}

/// `--shard I/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether `domain` belongs to this shard: FNV-1a of the normalised name, modulo N. Stable
    /// across runs, machines and versions (never change it: shards of old scans depend on it).
    pub(crate) fn contains(&self, domain: &str) -> bool {
        if self.count <= 1 {
            return true;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in domain.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Where records go.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Outputs {
    /// Parquet directory.
    pub out: Option<PathBuf>,
    /// ClickHouse URL (validated: http or https). Serialized without its password.
    #[serde(serialize_with = "redacted_url")]
    pub clickhouse: Option<url::Url>,
    /// JSON lines path or `-`.
    pub jsonl: Option<String>,
}

fn redacted_url<S: serde::Serializer>(u: &Option<url::Url>, s: S) -> Result<S::Ok, S::Error> {
    match u {
        Some(u) => {
            let mut u = u.clone();
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            s.serialize_some(u.as_str())
        }
        None => s.serialize_none(),
    }
}

/// Validated settings. Serialized (without secrets) into the `scan` record's `config`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Settings {
    pub resolvers: Vec<SocketAddr>,
    pub dnssec: DnssecChoice,
    pub trust_anchor: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// The PEM text of `ca_file`, read and checked at validation.
    #[serde(skip)]
    pub ca_pem: Option<String>,
    /// At most one per address family.
    pub source_ips: Vec<IpAddr>,
    pub vantage: String,
    pub ehlo_name: String,
    pub rate: u32,
    pub per_ip_rate: u32,
    pub per_prefix_rate: u32,
    pub send_starttls_override: StarttlsOverrideChoice,
    pub concurrency: usize,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    /// `--timeout` (or `timeout` in the config file) was given, not defaulted.
    #[serde(skip)]
    pub timeout_given: bool,
    /// Every port probed (`--smtp-port`), in the order given.
    pub smtp_ports: Vec<u16>,
    /// The delivery port, derived from `smtp_ports` ([`mxray_smtp::delivery_port`]): the
    /// domain verdicts' port and the default port of `mxray canary`.
    pub smtp_port: u16,
    pub blocklist_file: Option<PathBuf>,
    #[serde(skip)]
    pub blocklist: Vec<IpNet>,
    pub allow_private: bool,
    pub shard: Shard,
    /// `--campaign`; `None`: derived at the end of the scan ([`Settings::derived_campaign`]).
    pub campaign: Option<String>,
    pub resume: bool,
    pub outputs: Outputs,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn read_file(what: &str, path: &Path) -> Result<String, UsageError> {
    std::fs::read_to_string(path)
        .map_err(|e| usage(format!("{what} {}: cannot read: {e}", path.display())))
}

fn in_range<T: PartialOrd + fmt::Display + Copy>(
    flag: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, UsageError> {
    if v < lo || v > hi {
        Err(usage(format!("{flag} {v}: must be between {lo} and {hi}")))
    } else {
        Ok(v)
    }
}

/// Parses `IP` or `IP:PORT` or `[IPv6]:PORT`; the port defaults to 53.
pub(crate) fn parse_resolver(s: &str) -> Result<SocketAddr, UsageError> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(usage(format!(
        "--resolver {s:?}: not an IP address or IP:PORT (mxray takes resolver addresses, not names)"
    )))
}

fn system_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Settings {
    /// Applies the config file (if any) under the flags, fills defaults, validates everything.
    pub(crate) fn resolve(args: &SharedArgs) -> Result<Settings, UsageError> {
        let file = match &args.config {
            Some(path) => {
                let text = read_file("--config", path)?;
                toml::from_str::<ConfigFile>(&text).map_err(|e| {
                    let msg = e.message().to_owned();
                    usage(format!("--config {}: {msg}", path.display()))
                })?
            }
            None => ConfigFile::default(),
        };

        let resolver_texts = if !args.resolvers.is_empty() {
            args.resolvers.clone()
        } else {
            file.resolver
                .clone()
                .unwrap_or_else(|| vec!["127.0.0.1:53".into()])
        };
        let resolvers = resolver_texts
            .iter()
            .map(|s| parse_resolver(s))
            .collect::<Result<Vec<_>, _>>()?;

        let dnssec = args.dnssec.or(file.dnssec).unwrap_or(DnssecChoice::Ad);
        let trust_anchor = args.trust_anchor.clone().or(file.trust_anchor);
        if let Some(p) = &trust_anchor {
            read_file("--trust-anchor", p)?;
            if dnssec != DnssecChoice::Validate {
                return Err(usage(format!(
                    "--trust-anchor {}: only used with --dnssec validate",
                    p.display()
                )));
            }
        }

        let ca_file = args.ca_file.clone().or(file.ca_file);
        let ca_pem = match &ca_file {
            Some(p) => {
                let pem = read_file("--ca-file", p)?;
                if !pem.contains("-----BEGIN CERTIFICATE-----") {
                    return Err(usage(format!(
                        "--ca-file {}: no PEM certificate in it",
                        p.display()
                    )));
                }
                Some(pem)
            }
            None => None,
        };

        let source_texts: Vec<String> = if args.source_ip.is_empty() {
            file.source_ip.map(OneOrMany::into_vec).unwrap_or_default()
        } else {
            args.source_ip.clone()
        };
        let mut source_ips: Vec<IpAddr> = Vec::new();
        for s in &source_texts {
            let ip = s
                .parse::<IpAddr>()
                .map_err(|_| usage(format!("--source-ip {s:?}: not an IP address")))?;
            if let Some(other) = source_ips.iter().find(|o| o.is_ipv4() == ip.is_ipv4()) {
                return Err(usage(format!(
                    "--source-ip {ip}: {other} is already the {} source (give one per address family)",
                    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
                )));
            }
            source_ips.push(ip);
        }

        let vantage = args
            .vantage
            .clone()
            .or(file.vantage)
            .unwrap_or_else(|| "default".into());
        if vantage.is_empty()
            || vantage.len() > 64
            || !vantage
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(usage(format!(
                "--vantage {vantage:?}: use 1-64 characters from a-z, 0-9, '-', '_', '.'"
            )));
        }

        let ehlo_name = args
            .ehlo_name
            .clone()
            .or(file.ehlo_name)
            .unwrap_or_else(system_host_name);
        if !valid_hostname(&ehlo_name) {
            return Err(usage(format!(
                "--ehlo-name {ehlo_name:?}: not a valid host name"
            )));
        }

        let rate = in_range(
            "--rate",
            args.rate.or(file.rate).unwrap_or(1000),
            1,
            1_000_000,
        )?;
        let per_ip_rate = in_range(
            "--per-ip-rate",
            args.per_ip_rate.or(file.per_ip_rate).unwrap_or(20),
            1,
            10_000,
        )?;
        let per_prefix_rate = in_range(
            "--per-prefix-rate",
            args.per_prefix_rate
                .or(file.per_prefix_rate)
                .unwrap_or(RateConfig::default().per_prefix_per_sec),
            1,
            100_000,
        )?;
        let send_starttls_override = args
            .send_starttls_override
            .or(file.send_starttls_override)
            .unwrap_or_default();
        let concurrency = in_range(
            "--concurrency",
            args.concurrency.or(file.concurrency).unwrap_or(1000),
            1,
            100_000,
        )?;
        let timeout_given = args.timeout.or(file.timeout).is_some();
        let timeout_s = args.timeout.or(file.timeout).unwrap_or(10.0);
        if !timeout_s.is_finite() {
            return Err(usage(format!(
                "--timeout {timeout_s}: must be a number of seconds"
            )));
        }
        let timeout_s = in_range("--timeout", timeout_s, 0.1, 3600.0)?;
        let smtp_ports = match (&args.smtp_port, &file.smtp_port) {
            (Some(a), _) => parse_ports(a)?,
            (None, Some(f)) => parse_ports(&f.text())?,
            (None, None) => vec![mxray_smtp::DELIVERY_PORT],
        };
        let smtp_port = mxray_smtp::delivery_port(&smtp_ports);

        let blocklist_file = args.blocklist.clone().or(file.blocklist);
        let blocklist = match &blocklist_file {
            Some(p) => DestinationPolicy::parse_blocklist(&read_file("--blocklist", p)?)
                .map_err(|e| usage(format!("--blocklist {}: {e}", p.display())))?,
            None => Vec::new(),
        };
        let allow_private = args.allow_private || file.allow_private.unwrap_or(false);

        let shard_count = args.shard_count.or(file.shard_count);
        let shard = match args.shard.clone().or(file.shard) {
            Some(s) if s.trim() == "auto" => {
                shard_from_scheduler(|k| std::env::var(k).ok(), shard_count)?
            }
            Some(s) => {
                let shard = parse_shard(&s)?;
                if shard_count.is_some_and(|n| n != shard.count) {
                    return Err(usage(format!(
                        "--shard {s} and --shard-count {} disagree",
                        shard_count.unwrap_or_default()
                    )));
                }
                shard
            }
            None => Shard { index: 0, count: 1 },
        };
        let campaign = match args.campaign.clone().or(file.campaign) {
            Some(c) => Some(parse_campaign(&c)?),
            None => None,
        };

        let clickhouse = match args.clickhouse.clone().or(file.clickhouse) {
            Some(s) => {
                let u = url::Url::parse(&s)
                    .map_err(|e| usage(format!("--clickhouse {s:?}: invalid URL: {e}")))?;
                if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
                    return Err(usage(format!(
                        "--clickhouse {s:?}: must be an http:// or https:// URL with a host"
                    )));
                }
                Some(u)
            }
            None => None,
        };
        let outputs = Outputs {
            out: args.out.clone().or(file.out),
            clickhouse,
            jsonl: args.jsonl.clone().or(file.jsonl),
        };

        Ok(Settings {
            resolvers,
            dnssec,
            trust_anchor,
            ca_file,
            ca_pem,
            source_ips,
            vantage,
            ehlo_name,
            rate,
            per_ip_rate,
            per_prefix_rate,
            send_starttls_override,
            concurrency,
            timeout: Duration::from_secs_f64(timeout_s),
            timeout_given,
            smtp_ports,
            smtp_port,
            blocklist_file,
            blocklist,
            allow_private,
            shard,
            campaign,
            resume: args.resume,
            outputs,
        })
    }

    /// The source addresses as the `scan` record writes them (`192.0.2.1,2001:db8::1`).
    pub(crate) fn source_ip_text(&self) -> Option<String> {
        (!self.source_ips.is_empty()).then(|| {
            self.source_ips
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })
    }

    /// The source address of the given family, if one was configured.
    pub(crate) fn source_ip_for(&self, v4: bool) -> Option<IpAddr> {
        self.source_ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv4() == v4)
    }

    /// The settings as a JSON object (secrets redacted), for the `scan` record.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// A dialer with this configuration's destination policy, rate limits, source address and
    /// connect timeout. Each call creates new rate limiters: call it once per process and clone.
    pub(crate) fn dialer(&self) -> Dialer {
        let policy = Arc::new(DestinationPolicy::new(
            self.allow_private,
            self.blocklist.clone(),
        ));
        let limits = Arc::new(RateLimits::new(RateConfig {
            global_per_sec: self.rate,
            per_ip_per_sec: self.per_ip_rate,
            per_prefix_per_sec: self.per_prefix_rate,
        }));
        Dialer::new(policy, limits)
            .with_source_ips(self.source_ips.clone())
            .with_connect_timeout(self.timeout)
    }
}

/// The keys of the settings JSON that may differ between the shards of one campaign: where a
/// shard runs (its machine's addresses, name, paths, speed) and how it was started, not what
/// it measures. Everything else, with the shard count and the input checksum, names the
/// campaign.
const PER_SHARD_SETTINGS: &[&str] = &[
    "resolvers",
    "trust_anchor",
    "ca_file",
    "source_ips",
    "ehlo_name",
    "rate",
    "per_ip_rate",
    "per_prefix_rate",
    "concurrency",
    "blocklist_file",
    "resume",
    "outputs",
    "campaign",
];

impl Settings {
    /// The default campaign of a scan: `c-` and 16 hex digits of a SHA-256 over the settings
    /// that define the measurement (the JSON of [`Settings::to_json`] without
    /// [`PER_SHARD_SETTINGS`] and without the shard index), and the input's SHA-256. Every
    /// shard of one run computes the same value on its own.
    pub(crate) fn derived_campaign(&self, input_sha256: &str) -> String {
        let mut v: serde_json::Value =
            serde_json::from_str(&self.to_json()).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            for k in PER_SHARD_SETTINGS {
                obj.remove(*k);
            }
            obj.insert(
                "shard".into(),
                serde_json::json!({ "count": self.shard.count }),
            );
        }
        // serde_json's map is ordered by key, so the text is canonical.
        let mut h = Sha256::new();
        h.update(v.to_string().as_bytes());
        h.update(b"\n");
        h.update(input_sha256.as_bytes());
        format!("c-{}", &hex::encode(h.finalize())[..16])
    }
}

/// A campaign name: 1 to 64 characters of `A-Z a-z 0-9 . _ -` (it is written into every `scan`
/// record and typed into `report --campaign`).
fn parse_campaign(s: &str) -> Result<String, UsageError> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(usage(format!(
            "--campaign {s:?}: 1 to 64 characters of letters, digits, '.', '_' and '-'"
        )))
    }
}

/// `--shard auto`: the shard from the batch scheduler's environment (`env` reads a variable).
/// Kubernetes Indexed Jobs give each pod `JOB_COMPLETION_INDEX` (0-based) but not the count,
/// which must come from `--shard-count` (the Job's `completions`). Slurm job arrays give
/// `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_COUNT` and, for arrays
/// with a step (`--array=0-30:3`), `SLURM_ARRAY_TASK_STEP`.
pub(crate) fn shard_from_scheduler(
    env: impl Fn(&str) -> Option<String>,
    shard_count: Option<u32>,
) -> Result<Shard, UsageError> {
    let num = |k: &str| -> Result<Option<u32>, UsageError> {
        match env(k) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map(Some)
                .map_err(|_| usage(format!("--shard auto: {k}={v:?} is not a number"))),
        }
    };
    let (index, count, source) = if let Some(index) = num("JOB_COMPLETION_INDEX")? {
        let count = shard_count.ok_or_else(|| {
            usage(
                "--shard auto in a Kubernetes Indexed Job needs --shard-count N \
                 (the Job's completions): pods are not told it",
            )
        })?;
        (index, count, "JOB_COMPLETION_INDEX")
    } else if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count = match (num("SLURM_ARRAY_TASK_COUNT")?, shard_count) {
            (Some(a), Some(b)) if a != b => {
                return Err(usage(format!(
                    "--shard auto: SLURM_ARRAY_TASK_COUNT={a} but --shard-count {b}"
                )))
            }
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => {
                return Err(usage(
                    "--shard auto: SLURM_ARRAY_TASK_COUNT is not set; give --shard-count N",
                ))
            }
        };
        let offset = id.checked_sub(min).ok_or_else(|| {
            usage(format!(
                "--shard auto: SLURM_ARRAY_TASK_ID={id} below SLURM_ARRAY_TASK_MIN={min}"
            ))
        })?;
        if offset % step != 0 {
            return Err(usage(format!(
                "--shard auto: SLURM_ARRAY_TASK_ID={id} is not on the array's step {step}"
            )));
        }
        (offset / step, count, "SLURM_ARRAY_TASK_ID")
    } else {
        return Err(usage(
            "--shard auto: neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor \
             SLURM_ARRAY_TASK_ID (Slurm job array) is set; give --shard I/N",
        ));
    };
    if count == 0 || index >= count {
        return Err(usage(format!(
            "--shard auto: {source} gives shard {index} of {count}, outside 0..{count}"
        )));
    }
    Ok(Shard { index, count })
}

fn parse_shard(s: &str) -> Result<Shard, UsageError> {
    let bad = || {
        usage(format!(
            "--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4"
        ))
    };
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let index: u32 = i.trim().parse().map_err(|_| bad())?;
    let count: u32 = n.trim().parse().map_err(|_| bad())?;
    if count == 0 || index >= count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(args: SharedArgs) -> Settings {
        Settings::resolve(&args).expect("valid")
    }

    fn err(args: SharedArgs) -> String {
        Settings::resolve(&args).expect_err("invalid").to_string()
    }

    #[test]
    fn defaults_are_documented_values() {
        let s = ok(SharedArgs::default());
        assert_eq!(
            s.resolvers,
            vec!["127.0.0.1:53".parse::<SocketAddr>().expect("sa")]
        );
        assert_eq!(s.dnssec, DnssecChoice::Ad);
        assert_eq!(
            (s.rate, s.per_ip_rate, s.concurrency, s.smtp_port),
            (1000, 20, 1000, 25)
        );
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.vantage, "default");
        assert_eq!(s.shard, Shard { index: 0, count: 1 });
        assert!(!s.allow_private);
    }

    #[test]
    fn smtp_ports_are_a_list_with_a_delivery_port() {
        let s = ok(SharedArgs {
            smtp_port: Some("587, 25,465,25".into()),
            ..Default::default()
        });
        assert_eq!(s.smtp_ports, vec![587, 25, 465]);
        assert_eq!(s.smtp_port, 25);
        let s = ok(SharedArgs {
            smtp_port: Some("2525".into()),
            ..Default::default()
        });
        assert_eq!((s.smtp_ports.clone(), s.smtp_port), (vec![2525], 2525));
        for bad in ["", "25,", "0", "70000", "25,x", "1,2,3,4,5,6,7,8,9"] {
            assert!(
                err(SharedArgs {
                    smtp_port: Some(bad.into()),
                    ..Default::default()
                })
                .contains("--smtp-port"),
                "{bad}"
            );
        }
    }

    #[test]
    fn smtp_port_in_the_config_file_is_a_number_a_list_or_text() {
        for text in [
            "smtp_port = 465",
            "smtp_port = [25, 587, 465]",
            "smtp-port = \"25,587,465\"",
        ] {
            let f: ConfigFile = toml::from_str(text).expect(text);
            let ports = parse_ports(&f.smtp_port.expect("port").text()).expect(text);
            assert!(ports.contains(&465), "{text}: {ports:?}");
        }
    }

    #[test]
    fn out_of_range_values_name_the_flag_and_value() {
        assert_eq!(
            err(SharedArgs {
                rate: Some(0),
                ..Default::default()
            }),
            "--rate 0: must be between 1 and 1000000"
        );
        assert!(err(SharedArgs {
            shard: Some("3/3".into()),
            ..Default::default()
        })
        .starts_with("--shard \"3/3\""));
        assert!(err(SharedArgs {
            resolvers: vec!["dns.google".into()],
            ..Default::default()
        })
        .contains("\"dns.google\""));
        assert!(err(SharedArgs {
            clickhouse: Some("ftp://x/".into()),
            ..Default::default()
        })
        .contains("ftp://x/"));
        assert!(err(SharedArgs {
            timeout: Some(f64::NAN),
            ..Default::default()
        })
        .starts_with("--timeout"));
    }

    #[test]
    fn config_file_is_under_flags() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("mxray.toml");
        std::fs::write(
            &path,
            "rate = 50\nvantage = \"office\"\nper-ip-rate = 3\nresolver = [\"127.0.0.2:5353\"]\n",
        )
        .expect("write");
        let s = ok(SharedArgs {
            config: Some(path.clone()),
            rate: Some(70),
            ..Default::default()
        });
        assert_eq!(s.rate, 70, "flag wins");
        assert_eq!(s.per_ip_rate, 3, "file beats default");
        assert_eq!(s.vantage, "office");
        assert_eq!(
            s.resolvers[0],
            "127.0.0.2:5353".parse::<SocketAddr>().expect("sa")
        );

        std::fs::write(&path, "rat = 50\n").expect("write");
        let e = err(SharedArgs {
            config: Some(path.clone()),
            ..Default::default()
        });
        assert!(e.contains("mxray.toml") && e.contains("rat"), "{e}");

        let e = err(SharedArgs {
            config: Some(dir.path().join("missing.toml")),
            ..Default::default()
        });
        assert!(
            e.contains("missing.toml") && e.contains("cannot read"),
            "{e}"
        );
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn shard_auto_reads_kubernetes_and_slurm() {
        let k8s = [("JOB_COMPLETION_INDEX", "3")];
        assert_eq!(
            shard_from_scheduler(env(&k8s), Some(8)).expect("k8s"),
            Shard { index: 3, count: 8 }
        );
        // Indexed Job pods are not told the completions count.
        let e = shard_from_scheduler(env(&k8s), None).expect_err("count");
        assert!(e.0.contains("--shard-count"), "{e}");
        assert!(
            shard_from_scheduler(env(&k8s), Some(3)).is_err(),
            "index 3 of 3"
        );

        // `sbatch --array=5-8`: ids 5..=8 are shards 0..=3.
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(
            shard_from_scheduler(env(&slurm), None).expect("slurm"),
            Shard { index: 2, count: 4 }
        );
        assert!(
            shard_from_scheduler(env(&slurm), Some(5)).is_err(),
            "disagree"
        );
        // `--array=0-9:3`: ids 0, 3, 6, 9.
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(
            shard_from_scheduler(env(&stepped), None).expect("step"),
            Shard { index: 3, count: 4 }
        );
        let e = shard_from_scheduler(env(&[]), Some(4)).expect_err("no scheduler");
        assert!(
            e.0.contains("JOB_COMPLETION_INDEX") && e.0.contains("SLURM_ARRAY_TASK_ID"),
            "{e}"
        );
        let junk = [("JOB_COMPLETION_INDEX", "two")];
        assert!(shard_from_scheduler(env(&junk), Some(4)).is_err());
    }

    #[test]
    fn every_shard_derives_the_same_campaign() {
        let shard = |i: u32, extra: SharedArgs| {
            ok(SharedArgs {
                shard: Some(format!("{i}/4")),
                ..extra
            })
        };
        let base = shard(0, SharedArgs::default()).derived_campaign("abc");
        assert!(base.starts_with("c-") && base.len() == 18, "{base}");
        // Another shard, on another machine with its own paths, addresses and speed.
        let other = shard(
            3,
            SharedArgs {
                out: Some("/elsewhere".into()),
                ehlo_name: Some("scanner7.example.org".into()),
                concurrency: Some(50),
                ..Default::default()
            },
        );
        assert_eq!(other.derived_campaign("abc"), base);
        // Another input, shard count or measurement setting is another campaign.
        assert_ne!(
            shard(0, SharedArgs::default()).derived_campaign("abd"),
            base
        );
        let five = ok(SharedArgs {
            shard: Some("0/5".into()),
            ..Default::default()
        });
        assert_ne!(five.derived_campaign("abc"), base);
        let vantage = shard(
            0,
            SharedArgs {
                vantage: Some("isp-b".into()),
                ..Default::default()
            },
        );
        assert_ne!(vantage.derived_campaign("abc"), base);
    }

    #[test]
    fn campaign_names_are_checked() {
        assert_eq!(
            parse_campaign(" top1m-2026-12 ").expect("ok"),
            "top1m-2026-12"
        );
        assert!(parse_campaign("").is_err());
        assert!(parse_campaign("a b").is_err());
        assert!(parse_campaign(&"x".repeat(65)).is_err());
        let s = ok(SharedArgs {
            campaign: Some("top1m".into()),
            ..Default::default()
        });
        assert_eq!(s.campaign.as_deref(), Some("top1m"));
    }

    #[test]
    fn shards_partition_the_input() {
        let names: Vec<String> = (0..3000).map(|i| format!("d{i}.example")).collect();
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for n in &names {
            assert_eq!(shards.iter().filter(|s| s.contains(n)).count(), 1, "{n}");
        }
        for s in &shards {
            let c = names.iter().filter(|n| s.contains(n)).count();
            assert!((800..1200).contains(&c), "shard {s} has {c}");
        }
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/periodic/mxray.toml");
        let s = ok(SharedArgs {
            config: Some(path),
            ..Default::default()
        });
        assert_eq!(s.vantage, "office-isp-a");
        assert_eq!(s.ehlo_name, "scanner.example.org");
        assert!(s.outputs.clickhouse.is_some());
    }

    #[test]
    fn config_json_redacts_password() {
        let s = ok(SharedArgs {
            clickhouse: Some("http://u:secret@127.0.0.1:8123/mxray".into()),
            ..Default::default()
        });
        let j = s.to_json();
        assert!(!j.contains("secret") && j.contains("***"), "{j}");
    }
}
