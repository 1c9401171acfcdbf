//! Lab benchmark (scripts/bench-lab): start-up time and memory for N synthetic domains, DNS
//! answers per second (unsigned and online-signed), STARTTLS sessions per second. Loopback only.
//!
//! `lab_bench [DOMAINS] [DNS_QUERIES] [SMTP_SESSIONS] [CONCURRENCY]`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use mxray_lab::{Lab, LabOptions, PortChoice};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `total` queries from `conc` sockets, names from `names` round robin; returns answers/s.
async fn dns_rate(
    server: SocketAddr,
    names: Arc<Vec<(String, RecordType)>>,
    total: usize,
    conc: usize,
    dnssec: bool,
) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conc {
        let (names, next, ok) = (names.clone(), next.clone(), ok.clone());
        tasks.spawn(async move {
            let Ok(sock) = UdpSocket::bind("127.0.0.1:0").await else {
                return;
            };
            let mut buf = vec![0u8; 4096];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let (n, t) = &names[i % names.len()];
                let Ok(name) = Name::from_ascii(n) else {
                    continue;
                };
                let mut m = Message::query();
                m.add_query(Query::query(name, *t));
                m.metadata.recursion_desired = true;
                if dnssec {
                    let mut e = Edns::new();
                    e.enable_dnssec();
                    m.set_edns(e);
                }
                let Ok(bytes) = m.to_vec() else { continue };
                if sock.send_to(&bytes, server).await.is_err() {
                    continue;
                }
                if let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await
                {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    ok.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn smtp_session(
    addr: SocketAddr,
    host: String,
    tls: tokio_rustls::TlsConnector,
) -> Option<()> {
    let s = TcpStream::connect(addr).await.ok()?;
    let mut r = BufReader::new(s);
    async fn reply(r: &mut BufReader<TcpStream>) -> Option<String> {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).await.ok()? == 0 {
                return None;
            }
            all.push_str(&l);
            if l.as_bytes().get(3) != Some(&b'-') {
                return Some(all);
            }
        }
    }
    reply(&mut r).await?;
    r.get_mut()
        .write_all(b"EHLO bench.lab.test\r\n")
        .await
        .ok()?;
    reply(&mut r).await?;
    r.get_mut().write_all(b"STARTTLS\r\n").await.ok()?;
    if !reply(&mut r).await?.starts_with("220") {
        return None;
    }
    let name = ServerName::try_from(host).ok()?;
    let mut t = tls.connect(name, r.into_inner()).await.ok()?;
    t.write_all(b"QUIT\r\n").await.ok()?;
    Some(())
}

#[tokio::main]
async fn main() {
    let domains = arg(1, 100_000);
    let queries = arg(2, 200_000);
    let sessions = arg(3, 5_000);
    let conc = arg(4, 64);
    let rss0 = rss_kib();
    let t0 = Instant::now();
    let lab = match Lab::start(LabOptions {
        synthetic_domains: domains,
        seed: 1,
        ports: PortChoice::High,
        ..LabOptions::default()
    })
    .await
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lab_bench: {e}");
            std::process::exit(1);
        }
    };
    let started = t0.elapsed();
    let rss1 = rss_kib();
    println!("domains                 {domains}");
    println!("smtp listeners          {}", lab.smtp_listeners());
    println!("start                   {:.3} s", started.as_secs_f64());
    println!(
        "rss after start         {} MiB (+{} MiB)",
        rss1 / 1024,
        rss1.saturating_sub(rss0) / 1024
    );

    let exp = lab.expected();
    let unsigned: Vec<(String, RecordType)> = exp
        .iter()
        .filter(|e| e.domain.ends_with(".syn.lab.test"))
        .map(|e| (format!("{}.", e.domain), RecordType::MX))
        .collect();
    let signed: Vec<(String, RecordType)> = exp
        .iter()
        .filter(|e| e.case == "synthetic:dane")
        .map(|e| {
            (
                format!("_25._tcp.{}.", e.clean.mx_hosts[0]),
                RecordType::TLSA,
            )
        })
        .collect();
    if !unsigned.is_empty() {
        let q = dns_rate(lab.resolver(), Arc::new(unsigned), queries, conc, false).await;
        println!("dns unsigned MX         {q:.0} answers/s ({queries} queries, {conc} sockets)");
    }
    if !signed.is_empty() {
        let q = dns_rate(lab.resolver(), Arc::new(signed), queries, conc, true).await;
        println!("dns signed TLSA +DO     {q:.0} answers/s (RRSIG made online, cached)");
    }

    let mut roots = rustls::RootCertStore::empty();
    if let Ok(ca) = CertificateDer::from_pem_slice(lab.ca_pem().as_bytes()) {
        let _ = roots.add(ca);
    }
    let Ok(cfg) = mxray_net::tls::client_config(mxray_net::tls::ServerAuth::Roots(roots)) else {
        return;
    };
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    // Hosts that do STARTTLS with a valid certificate, resolved through the lab DNS once.
    let targets: Vec<String> = exp
        .iter()
        .filter(|e| e.case == "synthetic:distinct-good" || e.case == "synthetic:shared-mx")
        .take(2000)
        .map(|e| e.clean.mx_hosts[0].clone())
        .collect();
    let mut addrs = Vec::new();
    for h in &targets {
        let Ok(name) = Name::from_ascii(format!("{h}.")) else {
            continue;
        };
        let mut m = Message::query();
        m.add_query(Query::query(name, RecordType::A));
        let Ok(sock) = UdpSocket::bind("127.0.0.1:0").await else {
            continue;
        };
        let Ok(bytes) = m.to_vec() else { continue };
        let _ = sock.send_to(&bytes, lab.resolver()).await;
        let mut buf = vec![0u8; 2048];
        let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await
        else {
            continue;
        };
        let Ok(resp) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if let Some(ip) = resp.answers.iter().find_map(|r| match &r.data {
            hickory_proto::rr::RData::A(a) => Some(a.0),
            _ => None,
        }) {
            addrs.push((SocketAddr::new(ip.into(), lab.smtp_port()), h.clone()));
        }
    }
    if !addrs.is_empty() {
        let addrs = Arc::new(addrs);
        let next = Arc::new(AtomicUsize::new(0));
        let ok = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..conc {
            let (addrs, next, ok, tls) = (addrs.clone(), next.clone(), ok.clone(), tls.clone());
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= sessions {
                        return;
                    }
                    let (a, h) = addrs[i % addrs.len()].clone();
                    if let Ok(Some(())) = tokio::time::timeout(
                        Duration::from_secs(10),
                        smtp_session(a, h, tls.clone()),
                    )
                    .await
                    {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let secs = start.elapsed().as_secs_f64();
        let n = ok.load(Ordering::Relaxed);
        println!(
            "smtp STARTTLS sessions  {:.0} /s ({n}/{sessions} ok, {} hosts, {conc} concurrent)",
            n as f64 / secs,
            addrs.len()
        );
    }
    println!("rss at end              {} MiB", rss_kib() / 1024);
    lab.shutdown().await;
}
