//! `mxray scan`: the full pipeline over a domain list, or over the built-in lab.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mxray_lab::{Lab, LabOptions};
use mxray_model::{Port25Check, ScanRecord, ScanStatus, UtcTime};
use mxray_scan::{run_scan, Progress, ScanJob, ScanState, Scanner};

use crate::engines;
use crate::settings::{DnssecChoice, Settings, UsageError};

/// Arguments of `mxray scan`.
#[derive(Debug, clap::Args)]
pub(crate) struct ScanArgs {
    /// Domains file (plain list or Tranco "rank,domain" CSV), or `-` for stdin.
    pub input: Option<String>,
    /// Scan the built-in loopback lab instead (starts it, scans it, stops it).
    #[arg(long)]
    pub lab: bool,
    // With --lab: which lab (the options `mxray lab` has too).
    #[command(flatten)]
    pub lab_world: super::lab::LabWorldArgs,
    /// Scan a lab that runs in another process (`mxray lab --lab-dir DIR`): its resolver,
    /// trust anchor, CA and ports come from DIR/lab.json, its domains from the lab unless a
    /// domains file is given. For benchmarks that measure the scanner alone.
    #[arg(long, value_name = "DIR", conflicts_with = "lab")]
    pub lab_remote: Option<PathBuf>,
    /// No progress display on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Vantage self-check before scanning: the SMTP address (IP:PORT) of a canary you run
    /// (`mxray canary serve`). Records whether outbound port 25 is open, blocked or
    /// intercepted, the source address and its reverse DNS in the `scan` record. A blocked or
    /// intercepted vantage does not scan (its "no STARTTLS" would be the network's, not the
    /// servers'), unless --ignore-self-check.
    #[arg(long, value_name = "IP:PORT")]
    pub self_check: Option<String>,
    /// The canary's control endpoint IP:PORT, or its expectation JSON file (required with
    /// --self-check).
    #[arg(long, value_name = "CONTROL|FILE", requires = "self_check")]
    pub self_check_expect: Option<String>,
    /// The canary's control key file (what `mxray canary serve` wrote; required with
    /// --self-check): authenticates its control answers and expectation file.
    #[arg(long, value_name = "FILE", requires = "self_check")]
    pub self_check_key: Option<PathBuf>,
    /// Scan even when the self-check finds port 25 blocked or intercepted.
    #[arg(long)]
    pub ignore_self_check: bool,
}

pub(crate) async fn run(settings: &Settings, args: &ScanArgs) -> anyhow::Result<ExitCode> {
    // The self-check's key is read before anything starts: a missing or unreadable key is a
    // usage error, not a scan that fails later.
    if args.self_check.is_some() {
        super::canary::probe_key(args.self_check_key.as_deref(), "--self-check-key")?;
    }
    let mut settings = settings.clone();
    let scan_id = uuid::Uuid::now_v7();
    let started_at = UtcTime::now();

    // Where Parquet, the journal and the state go. With --resume, --out names the scan.
    let out_dir: PathBuf = match (&settings.outputs.out, settings.resume) {
        (Some(d), _) => d.clone(),
        (None, true) => {
            return Err(
                UsageError("--resume needs --out DIR naming the interrupted scan".into()).into(),
            )
        }
        (None, false) => engines::default_out_dir(scan_id),
    };
    let parquet = settings.outputs.out.is_some()
        || (settings.outputs.clickhouse.is_none() && settings.outputs.jsonl.is_none());

    let mut lab: Option<Lab> = None;
    let mut endpoints: Option<super::lab::LabEndpoints> = None;
    // The lab's domain count, for the progress bar: the list itself is not kept (a
    // million-domain lab list would be a hundred MB of the scanner's memory).
    let mut lab_domains: Option<u64> = None;
    let remote = match &args.lab_remote {
        Some(dir) => Some(super::lab::LabEndpoints::load(dir)?),
        None => None,
    };
    if let Some(e) = remote.as_ref() {
        lab_domains = Some(e.domain_count as u64);
    }
    let (input_name, input): (String, Box<dyn BufRead + Send>) = if let (Some(e), Some(dir), None) =
        (&remote, &args.lab_remote, &args.input)
    {
        configure_for_lab(&mut settings, e, &out_dir)?;
        // `mxray lab` writes the same list to domains.txt: stream it.
        let path = dir.join(super::lab::DOMAINS_FILE);
        let f = std::fs::File::open(&path)
            .with_context(|| format!("{}: cannot read the lab's domains", path.display()))?;
        endpoints = remote.clone();
        (
            "lab".to_owned(),
            Box::new(BufReader::with_capacity(1 << 16, f)),
        )
    } else if args.lab {
        if args.input.is_some() {
            return Err(UsageError("give either a domains file or --lab, not both".into()).into());
        }
        let started = Lab::start(args.lab_world.options(LabOptions::default().ports))
            .await
            .context("starting the lab")?;
        let mut e = super::lab::LabEndpoints::of(&started, args.lab_world.lab_domains);
        configure_for_lab(&mut settings, &e, &out_dir)?;
        let list = e.domains.join("\n") + "\n";
        lab_domains = Some(e.domains.len() as u64);
        e.domains = Vec::new();
        endpoints = Some(e);
        lab = Some(started);
        (
            "lab".to_owned(),
            Box::new(std::io::Cursor::new(list.into_bytes())),
        )
    } else {
        if let Some(e) = &remote {
            configure_for_lab(&mut settings, e, &out_dir)?;
            endpoints = remote.clone();
        }
        match args.input.as_deref() {
            None => {
                return Err(
                    UsageError("give a domains file, `-` for stdin, or --lab".into()).into(),
                )
            }
            Some("-") => ("-".to_owned(), Box::new(BufReader::new(std::io::stdin()))),
            Some(path) => {
                let f = std::fs::File::open(path)
                    .map_err(|e| UsageError(format!("{path}: cannot read: {e}")))?;
                (
                    path.to_owned(),
                    Box::new(BufReader::with_capacity(1 << 16, f)),
                )
            }
        }
    };

    let dialer = lab_dialer(&settings, endpoints.as_ref());
    let dns = engines::dns_collector(&settings)?;
    let prober = engines::prober(&settings, &dialer, scan_id)?;
    let fetcher = engines::fetcher(&settings, &dialer)?;
    let scanner = Scanner::new(
        dns.clone(),
        prober,
        fetcher,
        scan_id,
        settings.vantage.clone(),
        settings.smtp_ports.clone(),
        settings.concurrency,
    );
    if settings.resume {
        let state = ScanState::load(&out_dir)?;
        if state.status == ScanStatus::Interrupted || state.status == ScanStatus::Running {
            eprintln!(
                "mxray: resuming scan {} in {}",
                state.scan_id,
                out_dir.display()
            );
            // A scan stopped by a signal closed its Parquet files with the partial data. The
            // journal holds all of it, and the resumed scan rewrites every file from it, so the
            // old manifest (which marks the directory as a finished result) goes first.
            match std::fs::remove_file(out_dir.join(mxray_store::MANIFEST)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(anyhow::anyhow!(
                        "{}: cannot remove the old manifest: {e}",
                        out_dir.display()
                    ))
                }
            }
        }
    }
    // The vantage self-check comes first: a blocked vantage creates no outputs.
    let (mut port25_check, mut source_ip, mut source_rdns) =
        (Port25Check::NotChecked, settings.source_ip_text(), None);
    if let Some(target) = &args.self_check {
        let check = vantage_self_check(&settings, &dialer, &dns, target, args).await?;
        port25_check = check.port25;
        source_ip = source_ip.or(check.source_ip.map(|ip| ip.to_string()));
        source_rdns = check.rdns.clone();
        eprintln!(
            "mxray: vantage self-check: port 25 {} (source {}, reverse DNS {}): {}",
            check.port25,
            source_ip.as_deref().unwrap_or("?"),
            check.rdns.as_deref().unwrap_or("none"),
            check.detail
        );
        if !matches!(check.port25, Port25Check::Open) && !args.ignore_self_check {
            eprintln!(
                "mxray: error: not scanning from a vantage whose port 25 is {}: its results would \
                 measure this network, not the mail servers (--ignore-self-check to scan anyway)",
                check.port25
            );
            return Ok(ExitCode::from(3));
        }
    }
    let sink = engines::sinks(&settings, parquet.then_some(out_dir.as_path()), false).await?;

    let scan = ScanRecord {
        source_ip,
        source_rdns,
        port25_check,
        ..engines::scan_record(&settings, scan_id, started_at, &input_name)
    };
    // A named campaign's attempt is on record in ClickHouse from its start, so that a retry
    // of this shard can replace its rows if it dies (see supersede_earlier_attempts).
    if let (Some(url), Some(campaign), false) = (
        &settings.outputs.clickhouse,
        &settings.campaign,
        settings.resume,
    ) {
        let cfg = mxray_store::ClickHouseConfig::from_url(url.as_str())
            .map_err(|e| UsageError(format!("--clickhouse: {e}")))?;
        let running = ScanRecord {
            campaign: campaign.clone(),
            ..scan.clone()
        };
        mxray_store::register_attempt(&cfg, &running)
            .await
            .context("ClickHouse output: recording the running attempt")?;
    }
    let job = ScanJob {
        state_dir: out_dir.clone(),
        scan,
        resume: settings.resume,
        in_shard: |d, i, n| crate::settings::Shard { index: i, count: n }.contains(d),
        shard: (settings.shard.index, settings.shard.count),
        campaign: match &settings.campaign {
            Some(c) => mxray_scan::Campaign::Named(c.clone()),
            None => {
                let s = settings.clone();
                mxray_scan::Campaign::Derived(std::sync::Arc::new(move |sha: &str| {
                    s.derived_campaign(sha)
                }))
            }
        },
    };

    let progress = Arc::new(Progress::default());
    match (lab_domains, &args.input) {
        (Some(n), None) => progress.domains_total.store(n, Ordering::Relaxed),
        _ => count_input_in_background(progress.clone(), args.input.clone(), settings.shard),
    }
    let stop = Arc::new(AtomicBool::new(false));
    let signals = tokio::spawn(watch_signals(stop.clone()));
    let display = tokio::spawn(show_progress(
        progress.clone(),
        scanner.dns.clone(),
        args.quiet,
    ));
    let result = run_scan(&scanner, job, input, sink, progress.clone(), stop.clone()).await;
    display.abort();
    signals.abort();
    if let Some(lab) = lab {
        lab.shutdown().await;
    }
    let outcome = result?;
    print_summary(&outcome, &progress, &out_dir, parquet);
    let superseded_ok = supersede_earlier_attempts(&settings, &outcome.scan).await;
    Ok(match outcome.scan.status {
        ScanStatus::Complete if outcome.report.is_clean() && superseded_ok => ExitCode::SUCCESS,
        ScanStatus::Complete => ExitCode::from(1),
        _ => ExitCode::from(130),
    })
}

/// A complete shard of a named campaign written to ClickHouse replaces the rows of that
/// shard's earlier unfinished attempts (a scheduler's retry after a node died with the
/// attempt's output directory): see `mxray_store::supersede_attempts`. False when that failed
/// (the rows are stored, but the campaign may hold an attempt twice).
async fn supersede_earlier_attempts(settings: &Settings, scan: &ScanRecord) -> bool {
    let (Some(url), Some(_)) = (&settings.outputs.clickhouse, &settings.campaign) else {
        return true;
    };
    if scan.status != ScanStatus::Complete {
        return true;
    }
    let Ok(cfg) = mxray_store::ClickHouseConfig::from_url(url.as_str()) else {
        return true; // the sink already refused it
    };
    match mxray_store::supersede_attempts(
        &cfg,
        &scan.campaign,
        &scan.shard,
        &scan.vantage,
        scan.scan_id,
        scan.started_at,
        std::time::Duration::from_secs(60),
    )
    .await
    {
        Ok(r) if r.attempts.is_empty() => true,
        Ok(r) => {
            let ids: Vec<String> = r.attempts.iter().map(|u| u.to_string()).collect();
            eprintln!(
                "mxray: campaign {} shard {}: replaced the rows of {} earlier unfinished \
                 attempt(s) in ClickHouse ({}){}",
                scan.campaign,
                scan.shard,
                ids.len(),
                ids.join(", "),
                if r.finished {
                    ""
                } else {
                    "; the deletions are still running on the server"
                }
            );
            true
        }
        Err(e) => {
            eprintln!(
                "mxray: error: campaign {} shard {}: cannot replace earlier attempts' rows \
                 in ClickHouse: {e}",
                scan.campaign, scan.shard
            );
            false
        }
    }
}

struct SelfCheck {
    port25: Port25Check,
    source_ip: Option<std::net::IpAddr>,
    rdns: Option<String>,
    detail: String,
}

/// Runs the canary self-check and looks up the reverse DNS of the source address.
async fn vantage_self_check(
    settings: &Settings,
    dialer: &mxray_net::Dialer,
    dns: &mxray_dns::DnsCollector,
    target: &str,
    args: &ScanArgs,
) -> anyhow::Result<SelfCheck> {
    let target = super::canary::parse_target(target, 25)?;
    let expect = args
        .self_check_expect
        .as_deref()
        .ok_or_else(|| UsageError("--self-check needs --self-check-expect CONTROL|FILE".into()))?;
    let key = super::canary::probe_key(args.self_check_key.as_deref(), "--self-check-key")?;
    let check = match super::canary::load_expectation(settings, dialer, expect, None, key).await? {
        super::canary::Loaded::Expectation(exp, _) => {
            mxray_canary_probe::self_check(target, &exp, dialer, settings.timeout).await
        }
        super::canary::Loaded::Forged(why) => super::canary::control_forged_check(&why),
    };
    let rdns = match check.source_ip {
        Some(ip) => reverse_dns(dns, ip).await,
        None => None,
    };
    Ok(SelfCheck {
        port25: check.port25,
        source_ip: check.source_ip,
        rdns,
        detail: check.detail,
    })
}

/// The PTR name of `ip` through the scan's resolver, if any.
async fn reverse_dns(dns: &mxray_dns::DnsCollector, ip: std::net::IpAddr) -> Option<String> {
    use hickory_proto::rr::{Name, RData, RecordType};
    let lookup = dns.lookup(&Name::from(ip), RecordType::PTR).await;
    lookup.records.iter().find_map(|r| match r {
        RData::PTR(p) => Some(p.0.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
        _ => None,
    })
}

/// Points the settings at the lab: its DNS (validating locally with its trust anchor), its CA,
/// loopback destinations allowed, and the isp vantage's source address.
fn configure_for_lab(
    settings: &mut Settings,
    lab: &super::lab::LabEndpoints,
    out_dir: &std::path::Path,
) -> anyhow::Result<()> {
    // The lab answers on loopback in milliseconds, and its slow cases are known: a tarpit that
    // never greets. Unless --timeout was given, wait 2 s per step (the greeting 4 s: still
    // recorded as `greeting_timeout`) so `mxray scan --lab` takes seconds, not the 20 s of
    // the real-world greeting timeout. A lab session that needs longer on a loaded machine
    // shows up as an error class in the results, never silently.
    if !settings.timeout_given {
        settings.timeout = Duration::from_secs(2);
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    // Kept beside the results: it is the anchor the scan's DNSSEC statuses rest on.
    let anchor = out_dir.join("lab-trust-anchor.txt");
    std::fs::write(&anchor, &lab.trust_anchor).context("writing the lab trust anchor")?;
    settings.resolvers = vec![lab.resolver];
    settings.dnssec = DnssecChoice::Validate;
    settings.trust_anchor = Some(anchor);
    let mut pem = lab.ca_pem.clone();
    if let Some(extra) = &settings.ca_pem {
        pem.push_str(extra);
    }
    settings.ca_pem = Some(pem);
    settings.allow_private = true;
    if settings.source_ips.is_empty() {
        settings.source_ips = lab
            .vantage_source_ip(&settings.vantage)
            .into_iter()
            .collect();
    }
    Ok(())
}

fn lab_dialer(settings: &Settings, lab: Option<&super::lab::LabEndpoints>) -> mxray_net::Dialer {
    let mut d = settings.dialer();
    if let Some(lab) = lab {
        if lab.smtp_port != 25 {
            d = d.with_port_remap(25, lab.smtp_port);
        }
        if lab.https_port != 443 {
            d = d.with_port_remap(443, lab.https_port);
        }
    }
    d
}

/// First Ctrl-C/SIGTERM: stop taking new domains, finish in-flight ones, flush, record the
/// scan as interrupted. Second: exit at once (the journal still allows --resume).
async fn watch_signals(stop: Arc<AtomicBool>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    for round in 0..2 {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        if round == 0 {
            stop.store(true, Ordering::Relaxed);
            eprintln!("mxray: stopping: finishing domains in flight and flushing outputs (again to abort)");
        } else {
            eprintln!("mxray: aborted; continue later with --resume");
            std::process::exit(130);
        }
    }
}

/// Progress on stderr: on a terminal a bar (when the input size is known) with the status line
/// below it, refreshed 5 times a second; otherwise the same status line every 10 s. The rate is
/// the last ten seconds' (so the ETA follows slowdowns), rounded.
async fn show_progress(
    p: Arc<Progress>,
    dns: Arc<dyn mxray_scan::sources::DnsSource>,
    quiet: bool,
) {
    if quiet {
        return;
    }
    let started = Instant::now();
    let mut window: std::collections::VecDeque<(Instant, u64)> = Default::default();
    let mut rate_now = move |done: u64| {
        let now = Instant::now();
        window.push_back((now, done));
        while window.len() > 2 && now.duration_since(window[0].0) > Duration::from_secs(10) {
            window.pop_front();
        }
        let (t0, d0) = window[0];
        let secs = now.duration_since(t0).as_secs_f64();
        if secs > 0.0 {
            done.saturating_sub(d0) as f64 / secs
        } else {
            0.0
        }
    };
    if std::io::stderr().is_terminal() {
        use indicatif::{ProgressBar, ProgressStyle};
        let bar = ProgressBar::new(0);
        let with_total = ProgressStyle::with_template("{bar:40.cyan/blue} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let without = ProgressStyle::with_template("{spinner} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(without.clone());
        let mut styled_total = false;
        loop {
            let snap = p.snapshot().with_dns(dns.transport_stats().as_ref());
            if let (Some(total), false) = (snap.domains_total, styled_total) {
                bar.set_length(total);
                bar.set_style(with_total.clone());
                styled_total = true;
            }
            bar.set_position(snap.domains_done);
            bar.set_message(
                snap.line(started.elapsed().as_secs_f64(), rate_now(snap.domains_done)),
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    } else {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n = 0u64;
        loop {
            tick.tick().await;
            let snap = p.snapshot().with_dns(dns.transport_stats().as_ref());
            let rate = rate_now(snap.domains_done);
            n += 1;
            if n % 10 == 0 {
                eprintln!(
                    "mxray: {}",
                    snap.line(started.elapsed().as_secs_f64(), rate)
                );
            }
        }
    }
}

/// Counts the domains of the input in the background so the progress shows a share and an
/// ETA: exact for the lab, a pre-pass over a regular file (with the same normalisation,
/// de-duplication and shard filter as the scan), unknown for stdin.
fn count_input_in_background(
    p: Arc<Progress>,
    path: Option<String>,
    shard: crate::settings::Shard,
) {
    let Some(path) = path.filter(|p| p != "-") else {
        return;
    };
    tokio::task::spawn_blocking(move || {
        let Ok(f) = std::fs::File::open(&path) else {
            return;
        };
        let mut r = mxray_scan::input::DomainReader::new(BufReader::with_capacity(1 << 16, f));
        let mut n = 0u64;
        while let Ok(Some(item)) = r.next_item() {
            if let mxray_scan::input::InputItem::Domain(d) = item {
                if shard.contains(&d) {
                    n += 1;
                }
            }
        }
        p.domains_total.store(n, Ordering::Relaxed);
    });
}

fn print_summary(
    o: &mxray_scan::ScanOutcome,
    p: &Progress,
    out_dir: &std::path::Path,
    parquet: bool,
) {
    let s = &o.scan;
    let secs = (s
        .finished_at
        .map(|f| f.unix())
        .unwrap_or(s.started_at.unix())
        - s.started_at.unix())
    .max(1);
    eprintln!();
    eprintln!(
        "scan {} ({}), vantage {}, {}",
        s.scan_id, s.status, s.vantage, s.input_name
    );
    eprintln!(
        "  domains    {:>9} of {} ({} resumed, {} input lines rejected)",
        s.domains_done, s.domains_total, o.resumed_domains, s.input_errors
    );
    eprintln!("  dns hosts  {:>9}", s.dns_hosts);
    eprintln!(
        "  probes     {:>9} ({} ended in an error class)",
        s.smtp_probes,
        p.probe_errors.load(Ordering::Relaxed)
    );
    eprintln!("  certs      {:>9}", s.certificates);
    eprintln!("  mta-sts    {:>9}", s.mta_sts_policies);
    eprintln!(
        "  rate       {:>9.1} domains/s over {secs} s",
        s.domains_done as f64 / secs as f64
    );
    for line in p.tally_lines() {
        eprintln!("  {line}");
    }
    for e in &o.input_errors_sample {
        eprintln!("  input line {}: {} ({:?})", e.line, e.reason, e.text);
    }
    if parquet {
        eprintln!("  output     {}", out_dir.display());
    }
    for c in std::iter::once(&o.report).chain(o.report.children.iter()) {
        if c.children.is_empty() {
            eprintln!("  {:<10} {} rows -> {}", c.sink, c.total_rows(), c.location);
        }
        if c.total_spilled() > 0 {
            eprintln!(
                "  {:<10} {} rows spilled to {:?}: ingest with `mxray load`",
                c.sink,
                c.total_spilled(),
                c.spill_dir
            );
        }
    }
    if s.status != ScanStatus::Complete {
        eprintln!(
            "  interrupted: continue with `mxray scan ... --resume --out {}`",
            out_dir.display()
        );
    }
}
