//! `mxray lab`: run the loopback lab in the foreground (or print its table with `--list`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use mxray_lab::{Lab, LabOptions, PortChoice};
use serde::{Deserialize, Serialize};

use crate::settings::Settings;

/// Arguments of `mxray lab`.
#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// Print the lab domains and the posture a correct scan reports, then exit.
    #[arg(long)]
    pub list: bool,
    /// With --list: one JSON object per domain (domain, case, about, clean, isp) instead of
    /// the table.
    #[arg(long, requires = "list")]
    pub json: bool,
    #[command(flatten)]
    pub world: LabWorldArgs,
    /// Ports: `auto` (53/25/443 when they can be bound, else high ports), `standard`, `high`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "standard", "high"])]
    pub lab_ports: String,
    /// Directory where the trust anchor and CA certificate are written (default: a new
    /// directory under the system temporary directory).
    #[arg(long)]
    pub lab_dir: Option<std::path::PathBuf>,
}

/// What lab to build: the same options for `mxray lab` and `mxray scan --lab`.
#[derive(Debug, clap::Args)]
pub(crate) struct LabWorldArgs {
    /// Add N synthetic domains to the lab (a realistic mix, for benchmarks).
    #[arg(long, default_value_t = 0)]
    pub lab_domains: usize,
    /// Seed of the synthetic mix.
    #[arg(long, default_value_t = 1)]
    pub lab_seed: u64,
    /// Simulated time; from epoch 1 on, one host that offered STARTTLS is stripped for every
    /// client (for history_regression).
    #[arg(long, default_value_t = 0)]
    pub lab_epoch: u32,
}

impl LabWorldArgs {
    /// The lab's options, on `ports`.
    pub(crate) fn options(&self, ports: PortChoice) -> LabOptions {
        LabOptions {
            synthetic_domains: self.lab_domains,
            seed: self.lab_seed,
            ports,
            epoch: self.lab_epoch,
        }
    }
}

/// What a scanner needs to reach a running lab: written by `mxray lab --lab-dir DIR` to
/// `DIR/lab.json` and read by `mxray scan --lab-remote DIR`, so the lab can run in a process of
/// its own (benchmarks measure the scanner alone); built in-process for `mxray scan --lab`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LabEndpoints {
    /// The lab's authoritative DNS (validate with `trust_anchor`).
    pub resolver: SocketAddr,
    /// Its validating-resolver emulation (`--dnssec ad`).
    pub ad_resolver: SocketAddr,
    /// Where every lab SMTP address listens (25, or a high port the scanner remaps 25 to).
    pub smtp_port: u16,
    /// Where the MTA-STS HTTPS server listens (443, or a high port).
    pub https_port: u16,
    /// The source address of the `isp` vantage (behind the stripping middlebox).
    pub isp_source_ip: IpAddr,
    /// The trust anchor (DS/DNSKEY lines).
    pub trust_anchor: String,
    /// The lab CA certificate, PEM.
    pub ca_pem: String,
    /// The lab's domains (case domains, then synthetic ones). Not in `lab.json`: the list is
    /// `DIR/domains.txt` ([`DOMAINS_FILE`]), which a remote scan streams.
    #[serde(skip)]
    pub domains: Vec<String>,
    /// How many domains the lab serves (the length of the list).
    pub domain_count: usize,
    /// How many of them are synthetic.
    pub synthetic_domains: usize,
}

/// The file in a `--lab-dir` that holds the [`LabEndpoints`].
pub(crate) const LAB_FILE: &str = "lab.json";
/// The file in a `--lab-dir` with the lab's domains, one per line (the scan's input).
pub(crate) const DOMAINS_FILE: &str = "domains.txt";

impl LabEndpoints {
    pub(crate) fn of(lab: &Lab, synthetic_domains: usize) -> Self {
        let domains = lab.domains();
        LabEndpoints {
            resolver: lab.resolver(),
            ad_resolver: lab.ad_resolver(),
            smtp_port: lab.smtp_port(),
            https_port: lab.https_port(),
            isp_source_ip: lab
                .vantage_source_ip("isp")
                .unwrap_or(IpAddr::from([127, 0, 99, 1])),
            trust_anchor: lab.trust_anchor_text(),
            ca_pem: lab.ca_pem(),
            domain_count: domains.len(),
            domains,
            synthetic_domains,
        }
    }

    /// Reads `DIR/lab.json`.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(LAB_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: cannot read (start the lab with `mxray lab --lab-dir {}`)",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a lab file", path.display()))
    }

    /// The source address a vantage scans the lab from (`isp`: behind the middlebox).
    pub(crate) fn vantage_source_ip(&self, vantage: &str) -> Option<IpAddr> {
        (vantage == "isp").then_some(self.isp_source_ip)
    }
}

pub(crate) async fn run(_settings: &Settings, args: &LabArgs) -> anyhow::Result<ExitCode> {
    let ports = match args.lab_ports.as_str() {
        "standard" => PortChoice::Standard,
        "high" => PortChoice::High,
        _ => PortChoice::Auto,
    };
    let opts = args.world.options(ports);
    if args.list {
        let expected = mxray_lab::expected_postures(&opts).context("building the lab table")?;
        if args.json {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for e in &expected {
                serde_json::to_writer(&mut out, e).context("writing JSON")?;
                writeln!(out).context("writing JSON")?;
            }
            out.flush().context("writing JSON")?;
        } else {
            print!("{}", mxray_lab::table(&expected));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let lab = Lab::start(opts).await.context("starting the lab")?;
    let dir = match &args.lab_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("mxray-lab-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let anchor = dir.join("trust-anchor.txt");
    let ca = dir.join("lab-ca.pem");
    std::fs::write(&anchor, lab.trust_anchor_text()).context("writing the trust anchor")?;
    std::fs::write(&ca, lab.ca_pem()).context("writing the CA certificate")?;
    // The canary's key is fresh per lab run: a file left by an earlier run here goes first.
    let canary_key = dir.join("canary-control.key");
    let _ = std::fs::remove_file(&canary_key);
    lab.canary_control_key()
        .write_new(&canary_key)
        .context("writing the lab canary's control key")?;
    let endpoints = LabEndpoints::of(&lab, args.world.lab_domains);
    std::fs::write(dir.join(DOMAINS_FILE), endpoints.domains.join("\n") + "\n")
        .context("writing the domain list")?;
    // Written last and renamed into place: a scanner waiting for it sees a complete file.
    let tmp = dir.join(format!("{LAB_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_string_pretty(&endpoints)?)
        .and_then(|_| std::fs::rename(&tmp, dir.join(LAB_FILE)))
        .context("writing the lab file")?;
    print!("{}", lab.describe());
    println!(
        "lab file: {} (scan it from another process: mxray scan --lab-remote {})",
        dir.join(LAB_FILE).display(),
        dir.display()
    );
    println!("trust anchor: {}", anchor.display());
    println!("CA certificate: {}", ca.display());
    println!(
        "try: dig @{} -p {} +dnssec MX good.lab.test",
        lab.resolver().ip(),
        lab.resolver().port()
    );
    if lab.smtp_port() == 25 && lab.https_port() == 443 {
        println!(
            "     mxray scan --allow-private --resolver {} --dnssec validate --trust-anchor {} --ca-file {} FILE",
            lab.resolver(),
            anchor.display(),
            ca.display()
        );
    } else {
        println!(
            "     (high ports in use: scan the lab with `mxray scan --lab`, which remaps 25/443 itself)"
        );
    }
    println!(
        "     mxray --allow-private --vantage isp --source-ip 127.0.99.1 canary probe {} --expect {} --control-key {}",
        lab.canary_smtp(),
        lab.canary_control(),
        canary_key.display()
    );
    println!("       (tampered: the middlebox masks STARTTLS for 127.0.99.0/24; without --source-ip: clean)");
    println!("serving; Ctrl-C stops");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    lab.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
