//! The pipeline with DNS, probes and MTA-STS behind tables ([`mxray_scan::sources`]): probe
//! sharing, priming for `--resume`, second attempts, order independence and bounded memory,
//! without a socket.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use mxray_dns::{AddressLookup, DomainDns, HostDns, TxtLookup};
use mxray_model::*;
use mxray_mtasts::{MtaStsAssessment, MtaStsInput};
use mxray_scan::sources::{DnsSource, PolicySource, ProbeSource};
use mxray_scan::{MemoryBounds, Progress, Scanner, Unit};
use mxray_smtp::{ProbeOutput, ProbeTarget};
use tokio::sync::mpsc;

const T0: UtcTime = UtcTime::from_unix(1_800_000_000);

fn txt_none() -> TxtLookup {
    TxtLookup {
        outcome: DnsOutcome::NxDomain,
        dnssec: DnssecStatus::Insecure,
        records: vec![],
    }
}

/// DNS from a table: domain -> MX host names, host -> address.
#[derive(Debug, Default)]
struct TableDns {
    mx: HashMap<String, Vec<String>>,
    hosts: HashMap<String, IpAddr>,
}

impl TableDns {
    fn host_dns(&self, host: &str) -> HostDns {
        HostDns {
            resolved_at: T0,
            host: host.to_owned(),
            addresses: self.hosts.get(host).copied().into_iter().collect(),
            cname_chain: vec![],
            address_outcome: DnsOutcome::NoError,
            address_dnssec: DnssecStatus::Insecure,
            a_dnssec: DnssecStatus::Insecure,
            aaaa_dnssec: DnssecStatus::Insecure,
            address_ttl: Some(300),
            tlsa_owner: None,
            tlsa_outcome: DnsOutcome::NxDomain,
            tlsa_dnssec: DnssecStatus::Insecure,
            tlsa_ttl: None,
            tlsa: vec![],
            ede: vec![],
            errors: vec![],
        }
    }
}

impl DnsSource for TableDns {
    fn domain<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, DomainDns> {
        let hosts = self.mx.get(domain).cloned().unwrap_or_default();
        Box::pin(async move {
            DomainDns {
                domain: domain.to_owned(),
                mx_kind: if hosts.is_empty() {
                    MxKind::None
                } else {
                    MxKind::Mx
                },
                mx_outcome: DnsOutcome::NoError,
                mx_dnssec: DnssecStatus::Insecure,
                mx_ttl: Some(300),
                mx_cname_chain: vec![],
                mx: vec![],
                mx_hosts: hosts,
                mta_sts: txt_none(),
                tls_rpt: txt_none(),
                ede: vec![],
                errors: vec![],
            }
        })
    }
    fn host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Arc<HostDns>> {
        Box::pin(async move { Arc::new(self.host_dns(host)) })
    }
    fn host_again<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Arc<HostDns>> {
        self.host(host)
    }
    fn addresses<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AddressLookup> {
        Box::pin(async move {
            AddressLookup {
                name: name.to_owned(),
                outcome: DnsOutcome::NxDomain,
                dnssec: DnssecStatus::Insecure,
                a_dnssec: DnssecStatus::Insecure,
                aaaa_dnssec: DnssecStatus::Insecure,
                addresses: vec![],
                cname_chain: vec![],
                ttl: None,
                ede: vec![],
                errors: vec![],
            }
        })
    }
}

/// Probes from a script: per address, the classes of successive probes (`None`: STARTTLS ok).
/// Counts every probe.
#[derive(Debug, Default)]
struct ScriptedProbes {
    script: HashMap<IpAddr, Vec<Option<ProbeErrorClass>>>,
    calls: Mutex<HashMap<(IpAddr, Option<String>), usize>>,
}

impl ScriptedProbes {
    fn calls(&self, ip: &str) -> usize {
        let ip: IpAddr = ip.parse().expect("ip");
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .filter(|((i, _), _)| *i == ip)
            .map(|(_, n)| n)
            .sum()
    }
}

impl ProbeSource for ScriptedProbes {
    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeOutput> {
        Box::pin(async move {
            let n = {
                let mut calls = self.calls.lock().expect("calls");
                let n = calls.entry((target.ip, target.sni.clone())).or_default();
                *n += 1;
                *n
            };
            let class = self
                .script
                .get(&target.ip)
                .and_then(|s| s.get(n - 1).or(s.last()).copied())
                .flatten();
            let mut r = examples::smtp_probe();
            r.ip = target.ip.to_string();
            r.port = target.port;
            r.sni = target.sni.clone();
            r.error_class = class;
            r.result = if class.is_none() {
                ProbeResult::StarttlsOk
            } else {
                ProbeResult::Error
            };
            r.reached_ehlo = class.is_none();
            r.pkix_valid = class.is_none().then_some(true);
            r.pkix_error = None;
            r.dane = DaneVerdict::None;
            r.starttls_forced = false;
            r.stripping_signals.clear();
            r.tlsrpt_results.clear();
            r.attempt = 1;
            r.chain_sha256 = vec![format!("{:064x}", u128::from(n as u32))];
            let mut cert = examples::certificate();
            cert.sha256 = r.chain_sha256[0].clone();
            ProbeOutput {
                certificates: if class.is_none() { vec![cert] } else { vec![] },
                record: r,
            }
        })
    }
}

#[derive(Debug)]
struct NoPolicies;

impl PolicySource for NoPolicies {
    fn assess<'a>(&'a self, input: &'a MtaStsInput) -> BoxFuture<'a, MtaStsAssessment> {
        Box::pin(async move {
            match mxray_mtasts::assess_txt(input, T0) {
                Err(done) => *done,
                Ok(_) => panic!("the table publishes no MTA-STS"),
            }
        })
    }
}

struct World {
    dns: Arc<TableDns>,
    probes: Arc<ScriptedProbes>,
}

/// `d<i>.example` for i in 0..n: even ones on the shared `mx.shared.example`, odd ones on
/// their own host; `dead.example` on a host whose first probe times out.
fn world(n: usize) -> (World, Vec<String>) {
    let mut dns = TableDns::default();
    let mut probes = ScriptedProbes::default();
    let shared: IpAddr = "192.0.2.1".parse().expect("ip");
    dns.hosts.insert("mx.shared.example".into(), shared);
    let mut domains = Vec::new();
    for i in 0..n {
        let d = format!("d{i}.example");
        if i % 2 == 0 {
            dns.mx.insert(d.clone(), vec!["mx.shared.example".into()]);
        } else {
            let h = format!("mx.d{i}.example");
            let ip: IpAddr = format!("198.51.100.{}", 1 + (i % 200)).parse().expect("ip");
            dns.hosts.insert(h.clone(), ip);
            dns.mx.insert(d.clone(), vec![h]);
        }
        domains.push(d);
    }
    let dead: IpAddr = "203.0.113.9".parse().expect("ip");
    dns.hosts.insert("mx.dead.example".into(), dead);
    dns.mx
        .insert("dead.example".into(), vec!["mx.dead.example".into()]);
    probes
        .script
        .insert(dead, vec![Some(ProbeErrorClass::GreetingTimeout), None]);
    domains.push("dead.example".into());
    (
        World {
            dns: Arc::new(dns),
            probes: Arc::new(probes),
        },
        domains,
    )
}

fn scanner(w: &World, bounds: MemoryBounds) -> Scanner {
    Scanner::with_sources(
        w.dns.clone(),
        w.probes.clone(),
        Arc::new(NoPolicies),
        examples::scan_id(),
        "test".into(),
        vec![25],
        8,
    )
    .with_memory_bounds(bounds)
}

async fn run(scanner: &Scanner, domains: Vec<String>) -> Vec<Unit> {
    let (dtx, drx) = mpsc::channel(16);
    let (utx, mut urx) = mpsc::channel(16);
    let feed = tokio::spawn(async move {
        for d in domains {
            if dtx.send(d).await.is_err() {
                break;
            }
        }
    });
    let collect = tokio::spawn(async move {
        let mut units = Vec::new();
        while let Some(u) = urx.recv().await {
            units.push(u);
        }
        units
    });
    scanner
        .run(
            drx,
            utx,
            Arc::new(Progress::default()),
            Arc::new(AtomicBool::new(false)),
        )
        .await;
    feed.await.expect("feed");
    collect.await.expect("collect")
}

fn domain_records(units: &[Unit]) -> HashMap<String, DomainRecord> {
    units
        .iter()
        .flat_map(|u| u.records.iter())
        .filter_map(|r| match r {
            Record::Domain(d) => {
                let mut d = d.clone();
                d.scanned_at = T0;
                Some((d.domain.clone(), d))
            }
            _ => None,
        })
        .collect()
}

fn probes_of(units: &[Unit]) -> Vec<SmtpProbeRecord> {
    units
        .iter()
        .flat_map(|u| u.records.iter())
        .filter_map(|r| match r {
            Record::SmtpProbe(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_destination_is_probed_once_and_written_once() {
    let (w, domains) = world(40);
    let s = scanner(&w, MemoryBounds::default());
    let units = run(&s, domains).await;
    assert_eq!(units.len(), 41);
    assert_eq!(w.probes.calls("192.0.2.1"), 1, "20 domains share one probe");
    let shared: Vec<_> = probes_of(&units)
        .into_iter()
        .filter(|p| p.ip == "192.0.2.1")
        .collect();
    assert_eq!(
        shared.len(),
        1,
        "one smtp_probe record for the shared destination"
    );
    let d = domain_records(&units);
    assert!((0..40)
        .step_by(2)
        .all(|i| d[&format!("d{i}.example")].starttls == StarttlsVerdict::All));
    let hosts = units
        .iter()
        .flat_map(|u| u.records.iter())
        .filter(|r| matches!(r, Record::DnsHost(h) if h.host == "mx.shared.example"))
        .count();
    assert_eq!(hosts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_gets_a_second_attempt_and_both_are_recorded() {
    let (w, domains) = world(4);
    let s = scanner(&w, MemoryBounds::default());
    let units = run(&s, domains).await;
    assert_eq!(w.probes.calls("203.0.113.9"), 2);
    let mut dead: Vec<(u8, Option<ProbeErrorClass>)> = probes_of(&units)
        .into_iter()
        .filter(|p| p.ip == "203.0.113.9")
        .map(|p| (p.attempt, p.error_class))
        .collect();
    dead.sort();
    assert_eq!(
        dead,
        vec![(1, Some(ProbeErrorClass::GreetingTimeout)), (2, None)]
    );
    let d = domain_records(&units);
    let dead = &d["dead.example"];
    assert_eq!(
        dead.starttls,
        StarttlsVerdict::All,
        "the verdict is the second attempt's"
    );
    assert!(dead
        .errors
        .iter()
        .any(|e| e.starts_with("attempt 1: smtp:greeting_timeout")));
    // One unit per domain, the domain record last.
    let unit = units
        .iter()
        .find(|u| u.domain == "dead.example")
        .expect("unit");
    assert!(matches!(unit.records.last(), Some(Record::Domain(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_records_do_not_depend_on_the_input_order() {
    let (w1, domains) = world(30);
    let a = domain_records(&run(&scanner(&w1, MemoryBounds::default()), domains.clone()).await);
    let (w2, _) = world(30);
    let mut reversed = domains.clone();
    reversed.reverse();
    let b = domain_records(&run(&scanner(&w2, MemoryBounds::default()), reversed).await);
    let (w3, _) = world(30);
    let mut shuffled = domains;
    // A fixed permutation: every 7th.
    let n = shuffled.len();
    shuffled = (0..n).map(|i| shuffled[(i * 7) % n].clone()).collect();
    let c = domain_records(&run(&scanner(&w3, MemoryBounds::default()), shuffled).await);
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primed_units_are_not_probed_or_written_again() {
    let (w, domains) = world(6);
    let first = run(&scanner(&w, MemoryBounds::default()), domains[..2].to_vec()).await;
    let (w2, _) = world(6);
    let s = scanner(&w2, MemoryBounds::default());
    for u in &first {
        s.prime(u);
    }
    // d0 and d2 share the destination d0's unit already holds: no probe, no record.
    let rest = run(&s, vec!["d2.example".into()]).await;
    assert_eq!(w2.probes.calls("192.0.2.1"), 0);
    assert!(probes_of(&rest).is_empty());
    assert_eq!(
        domain_records(&rest)["d2.example"].starttls,
        StarttlsVerdict::All
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bounds_forget_old_destinations_but_keep_hot_ones() {
    let (w, domains) = world(400);
    let s = scanner(
        &w,
        MemoryBounds {
            probes: 20,
            hosts: 20,
            certificates: 20,
        },
    );
    let units = run(&s, domains).await;
    assert_eq!(units.len(), 401);
    // The shared destination is used by every other domain: it stays remembered.
    assert_eq!(w.probes.calls("192.0.2.1"), 1);
    let d = domain_records(&units);
    assert_eq!(d.len(), 401);
    assert!(d.values().all(|r| r.starttls == StarttlsVerdict::All));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_stop_every_started_domain_is_written_and_no_new_one_starts() {
    let (w, domains) = world(50);
    let s = scanner(&w, MemoryBounds::default());
    let (dtx, drx) = mpsc::channel(1);
    let (utx, mut urx) = mpsc::channel(64);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let feed = tokio::spawn(async move {
        for (i, d) in domains.into_iter().enumerate() {
            if i == 10 {
                stop2.store(true, Ordering::Relaxed);
            }
            if dtx.send(d).await.is_err() {
                break;
            }
        }
    });
    s.run(drx, utx, Arc::new(Progress::default()), stop).await;
    feed.abort();
    let mut units = Vec::new();
    while let Some(u) = urx.recv().await {
        units.push(u);
    }
    assert!(units.len() < 51, "{}", units.len());
    assert!(units
        .iter()
        .all(|u| matches!(u.records.last(), Some(Record::Domain(_)))));
}
