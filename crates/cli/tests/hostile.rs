//! The hostile-peer suite (issue 19, docs/hostile.md): the real `mxray` binary scans 30 good
//! lab domains shuffled together with every case of `mxray-hostile`'s catalogue (SMTP, HTTPS
//! and DNS servers that misbehave, and 2,000 tarpits at once), and the test checks from
//! outside the process:
//! - the exit status, the wall time, and the peak RSS (`wait4(2)`'s `ru_maxrss`);
//! - per hostile case the class its catalogue entry names, in the record it names, and that
//!   no session with a hostile server lasted longer than the case's bound (measured by the
//!   server: accept to the client's close);
//! - every good domain's `domain` record has the lab's expected verdict (the whole
//!   `DomainVerdict`, as `lab_scan.rs` compares it), and every domain has exactly one.
//!
//! It runs inside a private network namespace with only loopback (`unshare --net
//! --map-root-user`, then `ip link set lo up`): port 25, 53 and 443 can be bound there on any
//! 127.0.0.0/8 address and nothing can leave the machine. Without `unshare` or user
//! namespaces the test fails; it never skips.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mxray_hostile::{Expected, HostileWorld, Kind, Measured, WorldOptions};
use mxray_lab::{Lab, LabOptions, PortChoice};
use mxray_model::{DomainRecord, DomainVerdict, MtaStsPolicyRecord, Record, SmtpProbeRecord};

const INSIDE: &str = "MXRAY_TEST_IN_NET_NAMESPACE";
/// `--timeout`: each SMTP reply, TLS handshake and DNS attempt 2 s, the greeting and the
/// MTA-STS fetch 4 s.
const TIMEOUT_SECS: f64 = 2.0;
/// Peak RSS bound of the mxray process (the manual runs stayed under 110 MB).
const RSS_BOUND_MIB: u64 = 150;
/// The second attempts of transient failures run at 100 per second after the input is done
/// (`mxray_scan::pipeline::DEFAULT_RETRY_RATE`): every tarpit gets one.
const RETRY_RATE: f64 = mxray_scan::pipeline::DEFAULT_RETRY_RATE as f64;

/// Thirty lab case domains whose expected posture is known (the lab's own tarpit is left out:
/// the load case has 2,000 of its own).
const GOOD: [&str; 30] = [
    "good.lab.test",
    "dane-ta.lab.test",
    "tlsa-mismatch.lab.test",
    "insecure.lab.test",
    "bogus.lab.test",
    "no-starttls.lab.test",
    "self-signed.lab.test",
    "expired.lab.test",
    "wrong-name.lab.test",
    "starttls-454.lab.test",
    "tls-fail.lab.test",
    "sts-testing.lab.test",
    "sts-none.lab.test",
    "sts-mx-outside.lab.test",
    "sts-redirect.lab.test",
    "sts-404.lab.test",
    "sts-content-type.lab.test",
    "sts-invalid.lab.test",
    "sts-bad-cert.lab.test",
    "sts-two-txt.lab.test",
    "null-mx.lab.test",
    "implicit.lab.test",
    "mx-cname.lab.test",
    "mx-no-address.lab.test",
    "two-mx.lab.test",
    "stripped.lab.test",
    "dane-shared.lab.test",
    "shared.insecure.lab.test",
    "dane-plain.lab.test",
    "tlsa-servfail.lab.test",
];

/// Runs this test again inside a private network namespace; true when already inside.
fn in_net_namespace(test: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("unshare")
        .args(["--net", "--map-root-user", "--"])
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(INSIDE, "1")
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{test} inside a network namespace failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the namespaced run did not run {test}: {stdout}"
    );
    // libtest may print `test NAME ... ` in front of the first line.
    for line in stdout
        .lines()
        .filter_map(|l| l.find("hostile:").map(|i| &l[i..]))
    {
        eprintln!("{line}");
    }
    false
}

/// A deterministic shuffle (xorshift), so a failing order can be replayed.
fn shuffle(v: &mut [String], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

#[derive(Default)]
struct Seen {
    domains: BTreeMap<String, Vec<DomainRecord>>,
    probes: BTreeMap<IpAddr, Vec<SmtpProbeRecord>>,
    policies: BTreeMap<String, Vec<MtaStsPolicyRecord>>,
}

fn read_records(path: &std::path::Path) -> Seen {
    let text = std::fs::read_to_string(path).expect("read the JSON lines");
    let mut seen = Seen::default();
    for line in text.lines() {
        match serde_json::from_str::<Record>(line).unwrap_or_else(|e| panic!("{e}: {line}")) {
            Record::Domain(d) => seen.domains.entry(d.domain.clone()).or_default().push(d),
            Record::SmtpProbe(p) => {
                let ip: IpAddr = p.ip.parse().expect("probe ip");
                seen.probes.entry(ip).or_default().push(p);
            }
            Record::MtaStsPolicy(p) => seen.policies.entry(p.domain.clone()).or_default().push(p),
            _ => {}
        }
    }
    seen
}

#[test]
fn hostile_peers_get_their_class_and_cost_no_good_domain_its_record() {
    if !in_net_namespace("hostile_peers_get_their_class_and_cost_no_good_domain_its_record") {
        return;
    }
    let lo = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip (iproute2)");
    assert!(lo.success(), "ip link set lo up");
    // 2,000 listening tarpits and their sessions, the lab and the front: well over 1,024.
    rlimit::increase_nofile_limit(65_536).expect("raise the open-files limit");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let lab = rt
        .block_on(Lab::start(LabOptions {
            ports: PortChoice::Standard,
            ..LabOptions::default()
        }))
        .expect("start the lab on 25/53/443");
    // The front relays to the lab's validating-resolver emulation: the scan runs in
    // `--dnssec ad` mode, where the unsigned hostile zone is simply `insecure` (in `validate`
    // mode it would need a chain of trust to the root, which only the lab's zone has).
    let world = rt
        .block_on(HostileWorld::start(WorldOptions::new(lab.ad_resolver())))
        .expect("start the hostile world");

    let work = tempfile::tempdir().expect("tmp");
    let ca = work.path().join("ca.pem");
    std::fs::write(&ca, lab.ca_pem() + world.ca_pem()).expect("write the CA file");
    let seed: u64 = std::env::var("MXRAY_HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(19);
    let mut domains: Vec<String> = GOOD.iter().map(|d| d.to_string()).collect();
    domains.extend(world.domains());
    shuffle(&mut domains, seed);
    let input = work.path().join("domains.txt");
    std::fs::write(&input, domains.join("\n") + "\n").expect("write the domain list");
    let jsonl = work.path().join("out.jsonl");
    let stderr = work.path().join("stderr.txt");

    let load = world
        .cases()
        .iter()
        .find(|p| p.case.kind == Kind::Load)
        .map_or(0, |p| p.domains.len());
    let mut cmd = common::mxray();
    cmd.arg("scan")
        .arg("--quiet")
        .arg("--allow-private")
        .arg("--resolver")
        .arg(world.front().to_string())
        .args(["--dnssec", "ad"])
        .arg("--ca-file")
        .arg(&ca)
        .arg("--timeout")
        .arg(TIMEOUT_SECS.to_string())
        // Every domain in flight at once: the 2,000 tarpits hold their slots together.
        .arg("--concurrency")
        .arg((domains.len() + 100).to_string())
        .arg("--out")
        .arg(work.path().join("out"))
        .arg("--jsonl")
        .arg(&jsonl)
        .arg(&input)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"));
    let m: Measured = mxray_hostile::run_measured(&mut cmd).expect("run mxray");
    let checked_at = Instant::now();
    let err_text = std::fs::read_to_string(&stderr).unwrap_or_default();
    let peak_mib = m.peak_rss_kib as f64 / 1024.0;
    println!(
        "hostile: {} domains ({} good, {} hostile of which {load} tarpits), seed {seed}: \
         wall {:.1} s, peak RSS {peak_mib:.1} MiB",
        domains.len(),
        GOOD.len(),
        domains.len() - GOOD.len(),
        m.wall.as_secs_f64()
    );

    let mut wrong: Vec<String> = Vec::new();
    if !m.status.success() {
        wrong.push(format!("mxray exited {}: {err_text}", m.status));
    }
    // First attempts: DNS 3 attempts of T, the greeting 2T, the fetch 2T; then the second
    // attempts of the transient failures at the retry rate, each as long again; 20 s for
    // starting 2,000 connections at the default rate and a loaded CI machine. A hang shows
    // up far beyond it: the session deadline is 60 s, a hostile server holds up to 120 s.
    let t = TIMEOUT_SECS;
    let wall_bound = Duration::from_secs_f64(2.0 * (4.0 * t) + load as f64 / RETRY_RATE + 20.0);
    if m.wall > wall_bound {
        wrong.push(format!("the scan took {:?}, over {wall_bound:?}", m.wall));
    }
    if m.peak_rss_kib > RSS_BOUND_MIB * 1024 {
        wrong.push(format!(
            "peak RSS {peak_mib:.1} MiB, over {RSS_BOUND_MIB} MiB"
        ));
    }

    let seen = read_records(&jsonl);
    for d in &domains {
        match seen.domains.get(d).map(Vec::len) {
            Some(1) => {}
            n => wrong.push(format!("{d}: {} domain records, want 1", n.unwrap_or(0))),
        }
    }
    // The good domains' whole verdicts in one comparison (a missing record counts as well).
    let want: BTreeMap<String, DomainVerdict> = GOOD
        .iter()
        .map(|g| {
            let e = lab
                .expected_for(g)
                .unwrap_or_else(|| panic!("{g} is not a lab domain"));
            (g.to_string(), e.clean.clone())
        })
        .collect();
    let got: BTreeMap<String, DomainVerdict> = GOOD
        .iter()
        .filter_map(|g| match seen.domains.get(*g).map(Vec::as_slice) {
            Some([rec]) => Some((g.to_string(), rec.verdict())),
            _ => None,
        })
        .collect();
    if got != want {
        wrong.push(format!(
            "good domains: {}",
            common::verdict_differences(&got, &want)
        ));
    }

    for placed in world.cases() {
        let name = placed.case.name;
        match &placed.case.expected {
            Expected::Probe(class) => {
                for ip in &placed.smtp_ips {
                    let probes = seen.probes.get(&IpAddr::V4(*ip)).map(Vec::as_slice);
                    match probes {
                        None | Some([]) => wrong.push(format!("{name}: no probe of {ip}")),
                        Some(ps) => {
                            for p in ps.iter().filter(|p| p.error_class != Some(*class)) {
                                wrong.push(format!(
                                    "{name}: probe of {ip} (attempt {}): error_class {:?}, want {class} ({} ms)",
                                    p.attempt, p.error_class, p.total_ms
                                ));
                            }
                        }
                    }
                }
            }
            Expected::Policy(status, error) => {
                let d = &placed.domains[0];
                match seen.policies.get(d).map(Vec::as_slice) {
                    None | Some([]) => wrong.push(format!("{name}: no mta_sts_policy record")),
                    Some(ps) => {
                        for p in ps {
                            if (p.status, p.error_class) != (*status, *error) {
                                wrong.push(format!(
                                    "{name}: mta_sts_policy {} / {:?}, want {status} / {error:?}",
                                    p.status, p.error_class
                                ));
                            }
                        }
                    }
                }
            }
            Expected::Mx(rcode, hosts) => {
                let d = &placed.domains[0];
                if let Some([rec]) = seen.domains.get(d).map(Vec::as_slice) {
                    if rec.mx_rcode != *rcode || rec.mx_hosts != *hosts {
                        wrong.push(format!(
                            "{name}: mx_rcode {} mx_hosts {:?}, want {rcode} {hosts:?} (errors {:?})",
                            rec.mx_rcode, rec.mx_hosts, rec.errors
                        ));
                    }
                }
            }
        }
        // What was seen, for the log (and docs/hostile.md's measured figures).
        let observed: std::collections::BTreeSet<String> = match &placed.case.expected {
            Expected::Probe(_) => placed
                .smtp_ips
                .iter()
                .flat_map(|ip| seen.probes.get(&IpAddr::V4(*ip)).into_iter().flatten())
                .map(|p| format!("{:?}", p.error_class.map(|c| c.as_str())))
                .collect(),
            Expected::Policy(..) => seen
                .policies
                .get(&placed.domains[0])
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{:?}", p.status, p.error_class.map(|c| c.as_str())))
                .collect(),
            Expected::Mx(..) => seen
                .domains
                .get(&placed.domains[0])
                .into_iter()
                .flatten()
                .map(|d| format!("{} {:?}", d.mx_rcode, d.mx_hosts))
                .collect(),
        };
        let longest = placed
            .sessions
            .sessions()
            .iter()
            .map(|s| s.closed.unwrap_or(checked_at) - s.opened)
            .max();
        println!(
            "hostile: {name}: {observed:?}, {} sessions, longest {longest:.1?}",
            placed.sessions.sessions().len()
        );
        // The servers' view: every session over, none longer than the bound.
        if let Some(bound) = placed.case.session_bound {
            let limit = Duration::from_secs_f64(bound * t + 1.0);
            let sessions = placed.sessions.sessions();
            if sessions.len() < placed.domains.len() {
                wrong.push(format!(
                    "{name}: {} sessions for {} servers",
                    sessions.len(),
                    placed.domains.len()
                ));
            }
            let over: Vec<Duration> = sessions
                .iter()
                .filter(|s| s.closed.unwrap_or(checked_at) - s.opened > limit)
                .map(|s| s.closed.unwrap_or(checked_at) - s.opened)
                .collect();
            if !over.is_empty() {
                wrong.push(format!(
                    "{name}: {} of {} sessions over {limit:?} (longest {:?}; open ones count to the scan's end)",
                    over.len(),
                    sessions.len(),
                    over.iter().max()
                ));
            }
        }
    }
    drop(world);
    drop(lab);
    wrong.truncate(60);
    assert!(wrong.is_empty(), "{}\nstderr: {err_text}", wrong.join("\n"));
}
