//! `mxray dns` follows at most `mxray_dns::MAX_MX_HOSTS` MX hosts per domain, as `scan`
//! does: a domain with 1,000 MX records, served by a fake DNS server on 127.0.0.1 (port 0,
//! UDP and TCP on the same port), gets 16 hosts resolved, not 1,000.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, OpCode};
use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const MX_COUNT: usize = 1000;

/// MX: 1,000 records (TC over UDP, whole over TCP); A of any name: 127.0.0.9; else NODATA.
fn answer(q: &Message, tcp: bool) -> Option<Vec<u8>> {
    let query = q.queries.first()?.clone();
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = true;
    r.metadata.recursion_available = true;
    r.add_query(query.clone());
    match query.query_type {
        RecordType::MX if !tcp => r.metadata.truncation = true,
        RecordType::MX => {
            for i in 0..MX_COUNT {
                let exchange = Name::from_str(&format!("mx{i}.victim.test.")).ok()?;
                r.add_answer(Record::from_rdata(
                    query.name.clone(),
                    60,
                    RData::MX(MX::new(10, exchange)),
                ));
            }
        }
        RecordType::A => {
            r.add_answer(Record::from_rdata(
                query.name.clone(),
                60,
                RData::A(A(Ipv4Addr::new(127, 0, 0, 9))),
            ));
        }
        _ => {}
    }
    r.to_vec().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mxray_dns_resolves_at_most_the_cap_of_mx_hosts() {
    // UDP and TCP on one port number; if the TCP port is taken, another port.
    let mut bound = None;
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
        let addr = udp.local_addr().expect("addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            bound = Some((udp, tcp, addr));
            break;
        }
    }
    let (udp, tcp, addr) = bound.expect("a port free for UDP and TCP");
    let a_names: Arc<Mutex<HashSet<String>>> = Arc::default();
    let seen = Arc::clone(&a_names);
    let udp_task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if let Some(query) = q.queries.first() {
                if query.query_type == RecordType::A {
                    seen.lock()
                        .expect("lock")
                        .insert(query.name.to_ascii().to_ascii_lowercase());
                }
            }
            if let Some(reply) = answer(&q, false) {
                let _ = udp.send_to(&reply, peer).await;
            }
        }
    });
    let tcp_task = tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if s.read_exact(&mut body).await.is_err() {
                    return;
                }
                let Ok(q) = Message::from_vec(&body) else {
                    return;
                };
                if let Some(reply) = answer(&q, true) {
                    let mut out = u16::try_from(reply.len())
                        .expect("fits")
                        .to_be_bytes()
                        .to_vec();
                    out.extend(reply);
                    let _ = s.write_all(&out).await;
                }
            });
        }
    });

    let resolver = addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        common::run_ok(["dns", "--resolver", resolver.as_str(), "victim.test"])
    })
    .await
    .expect("join");
    udp_task.abort();
    tcp_task.abort();

    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut hosts = Vec::new();
    let mut mx_listed = None;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        match v["record"].as_str() {
            Some("dns_domain") => mx_listed = v["mx"].as_array().map(Vec::len),
            Some("dns_host") => hosts.push(v["host"].as_str().unwrap_or("").to_owned()),
            other => panic!("unexpected record {other:?}: {line}"),
        }
    }
    // The domain line lists every MX record; only the first 16 hosts are resolved.
    assert_eq!(mx_listed, Some(MX_COUNT), "{stdout}");
    let expected: Vec<String> = (0..mxray_dns::MAX_MX_HOSTS)
        .map(|i| format!("mx{i}.victim.test"))
        .collect();
    assert_eq!(hosts, expected, "{stdout}");
    let asked = a_names.lock().expect("lock").len();
    assert_eq!(
        asked,
        mxray_dns::MAX_MX_HOSTS,
        "A queries for distinct names"
    );
}
