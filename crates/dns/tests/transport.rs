//! The UDP transport against hostile fake servers written here: stray and garbled datagrams,
//! answers from another port, answers larger than the EDNS size we advertised, floods of
//! strays, overload back-off, and the MX host cap. Loopback only; every server binds port 0.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mxray_dns::{DnsCollector, DnsConfig, MAX_MX_HOSTS};
use mxray_model::{DnsOutcome, MxKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

mod fake;

fn name(s: &str) -> Name {
    Name::from_str(s).expect("name")
}

/// One thing the fake server does in answer to a UDP query.
#[derive(Debug, Clone)]
enum Act {
    /// These bytes, from the server's port.
    Bytes(Vec<u8>),
    /// These bytes, from another port of the same address.
    FromOtherPort(Vec<u8>),
    /// A pause (keeps a flood within the client's socket buffer).
    Pause(Duration),
}

/// What to send for the `n`th (0-based) UDP query of its type.
type UdpScript = dyn Fn(&Message, usize) -> Vec<Act> + Send + Sync;
/// The TCP answer, if any.
type TcpScript = dyn Fn(&Message) -> Option<Vec<u8>> + Send + Sync;

struct Server {
    addr: SocketAddr,
    /// UDP queries seen, per type.
    udp_queries: Arc<Mutex<HashMap<RecordType, usize>>>,
    /// The client ports UDP queries came from.
    client_ports: Arc<Mutex<HashSet<u16>>>,
    tcp_queries: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Server {
    async fn start(udp_script: Arc<UdpScript>, tcp_script: Arc<TcpScript>) -> Server {
        // The same port number over TCP, for the TC / oversize retries.
        let (udp, tcp) = fake::bind_udp_and_tcp().await;
        let udp = Arc::new(udp);
        let addr = udp.local_addr().expect("addr");
        let other = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("other udp"));
        let udp_queries = Arc::new(Mutex::new(HashMap::new()));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&udp_queries);
        let client_ports = Arc::new(Mutex::new(HashSet::new()));
        let ports = Arc::clone(&client_ports);
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                ports.lock().expect("lock").insert(peer.port());
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(qtype) = q.queries.first().map(|q| q.query_type) else {
                    continue;
                };
                let nth = {
                    let mut m = seen.lock().expect("lock");
                    let c = m.entry(qtype).or_insert(0);
                    *c += 1;
                    *c - 1
                };
                let actions = udp_script(&q, nth);
                let (udp, other) = (Arc::clone(&udp), Arc::clone(&other));
                tokio::spawn(async move {
                    for a in actions {
                        match a {
                            Act::Bytes(b) => {
                                let _ = udp.send_to(&b, peer).await;
                            }
                            Act::FromOtherPort(b) => {
                                let _ = other.send_to(&b, peer).await;
                            }
                            Act::Pause(d) => tokio::time::sleep(d).await,
                        }
                    }
                });
            }
        });
        let tcp_seen = Arc::clone(&tcp_queries);
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    return;
                };
                let (script, seen) = (Arc::clone(&tcp_script), Arc::clone(&tcp_seen));
                tokio::spawn(async move {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    let Ok(q) = Message::from_vec(&body) else {
                        return;
                    };
                    if let Some(reply) = script(&q) {
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
        Server {
            addr,
            udp_queries,
            client_ports,
            tcp_queries,
            tasks: vec![udp_task, tcp_task],
        }
    }

    fn udp_queries(&self, t: RecordType) -> usize {
        self.udp_queries
            .lock()
            .expect("lock")
            .get(&t)
            .copied()
            .unwrap_or(0)
    }
}

/// The reply to `q` with `mx` MX records `mx{i}.<host>` (NODATA for other types).
fn reply_with(q: &Message, host: &str, mx: usize) -> Message {
    let query = q.queries.first().expect("question").clone();
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = true;
    r.metadata.recursion_available = true;
    r.add_query(query.clone());
    if query.query_type == RecordType::MX {
        for i in 0..mx {
            let exchange = if mx == 1 {
                name(host)
            } else {
                name(&format!("mx{i}.{host}"))
            };
            r.add_answer(Record::from_rdata(
                query.name.clone(),
                60,
                RData::MX(MX::new(10, exchange)),
            ));
        }
    }
    if query.query_type == RecordType::A {
        r.add_answer(Record::from_rdata(
            query.name.clone(),
            60,
            RData::A(A(Ipv4Addr::new(127, 0, 0, 9))),
        ));
    }
    r
}

fn bytes(m: &Message) -> Vec<u8> {
    m.to_vec().expect("encode")
}

/// The real reply: MX `mx.right.test` (NODATA for the TXT lookups).
fn right(q: &Message) -> Vec<u8> {
    bytes(&reply_with(q, "mx.right.test.", 1))
}

/// Not DNS at all (and not our ID, whatever it is: the first two bytes are the query's ID
/// plus one).
fn junk(q: &Message) -> Vec<u8> {
    let mut b = q.metadata.id.wrapping_add(1).to_be_bytes().to_vec();
    b.extend_from_slice(b"\x81\x80 this is not a DNS message");
    b
}

/// Our ID and the response bit, then junk: a garbled reply.
fn garbled(q: &Message) -> Vec<u8> {
    let mut b = q.metadata.id.to_be_bytes().to_vec();
    b.extend([0x81, 0x80, 0, 1, 0, 9, 0, 0, 0, 0, 0xc0, 0xff, 0x13, 0x37]);
    b
}

/// Every kind of datagram that is not the reply to `q`, in turn.
fn stray(q: &Message, i: usize) -> Vec<u8> {
    let wrong_question = |f: &dyn Fn(&mut Query)| {
        let mut r = reply_with(q, "mx.wrong.test.", 1);
        if let Some(query) = r.queries.first_mut() {
            f(query);
        }
        bytes(&r)
    };
    match i % 7 {
        0 => junk(q),
        1 => garbled(q),
        2 => {
            let mut r = reply_with(q, "mx.wrong.test.", 1);
            r.metadata.id = q.metadata.id.wrapping_add(1);
            bytes(&r)
        }
        3 => wrong_question(&|query| query.name = name("other.test.")),
        4 => wrong_question(&|query| query.query_type = RecordType::A),
        5 => wrong_question(&|query| query.query_class = DNSClass::CH),
        _ => {
            // The query itself, echoed (not a response).
            bytes(q)
        }
    }
}

fn config(server: &Server) -> DnsConfig {
    let mut cfg = DnsConfig::new(vec![server.addr]);
    cfg.timeout = Duration::from_millis(500);
    cfg.backoff = Duration::from_millis(10);
    cfg
}

async fn domain(dns: &DnsCollector, d: &str) -> mxray_dns::DomainDns {
    tokio::time::timeout(Duration::from_secs(20), dns.domain(d))
        .await
        .expect("the collector must not hang")
}

/// Answers every UDP query with `script` for MX and the real reply otherwise; TCP: the real
/// reply.
async fn mx_server(script: impl Fn(&Message, usize) -> Vec<Act> + Send + Sync + 'static) -> Server {
    Server::start(
        Arc::new(move |q: &Message, nth| {
            if q.queries.first().map(|q| q.query_type) == Some(RecordType::MX) {
                script(q, nth)
            } else {
                vec![Act::Bytes(right(q))]
            }
        }),
        Arc::new(|q: &Message| Some(right(q))),
    )
    .await
}

fn assert_right(d: &mxray_dns::DomainDns) {
    assert_eq!(d.mx_kind, MxKind::Mx, "{d:?}");
    assert_eq!(d.mx_outcome, DnsOutcome::NoError, "{d:?}");
    assert_eq!(d.mx_hosts, vec!["mx.right.test"], "{d:?}");
    assert!(d.errors.is_empty(), "{:?}", d.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_share_sockets_and_each_gets_its_own_answer() {
    // 300 domains at once; every MX answer names the domain asked about and comes after a
    // pause that depends on the name, so replies arrive out of order on shared sockets.
    let server = mx_server(|q, _| {
        let asked = q.queries[0].name.to_ascii();
        let pause = asked.bytes().map(u64::from).sum::<u64>() % 40;
        vec![
            Act::Pause(Duration::from_millis(pause)),
            Act::Bytes(bytes(&reply_with(q, &format!("mx.{asked}"), 1))),
        ]
    })
    .await;
    let mut cfg = config(&server);
    cfg.timeout = Duration::from_secs(5);
    let dns = DnsCollector::new(cfg).expect("collector");
    let names: Vec<String> = (0..300).map(|i| format!("d{i}.test")).collect();
    let results = futures::future::join_all(names.iter().map(|n| domain(&dns, n))).await;
    for (n, d) in names.iter().zip(&results) {
        assert_eq!(d.mx_hosts, vec![format!("mx.{n}")], "{d:?}");
        assert!(d.errors.is_empty(), "{:?}", d.errors);
    }
    let queries: usize = server.udp_queries.lock().expect("lock").values().sum();
    let ports = server.client_ports.lock().expect("lock").len();
    assert!(queries >= 900, "MX and two TXT per domain: {queries}");
    // Shared (far fewer sockets than queries), yet rotated (no socket outlives 64 queries).
    assert!(ports * 4 <= queries, "{ports} ports for {queries} queries");
    assert!(ports * 64 >= queries, "{ports} ports for {queries} queries");
    assert_eq!(dns.stats().stray_datagrams, 0);
}

#[tokio::test]
async fn one_garbage_datagram_then_the_answer_succeeds_and_is_counted() {
    let server = mx_server(|q, _| vec![Act::Bytes(junk(q)), Act::Bytes(right(q))]).await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    assert_right(&domain(&dns, "victim.test").await);
    assert_eq!(dns.stats().stray_datagrams, 1);
    assert_eq!(server.udp_queries(RecordType::MX), 1, "no retry needed");
}

#[tokio::test]
async fn a_garbled_reply_with_our_id_then_the_answer_succeeds() {
    let server = mx_server(|q, _| vec![Act::Bytes(garbled(q)), Act::Bytes(right(q))]).await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    assert_right(&domain(&dns, "victim.test").await);
    assert_eq!(dns.stats().stray_datagrams, 1);
}

#[tokio::test]
async fn thirty_two_strays_of_every_kind_then_the_answer_succeeds() {
    let server = mx_server(|q, _| {
        let mut out: Vec<Act> = (0..32).map(|i| Act::Bytes(stray(q, i))).collect();
        out.push(Act::Bytes(right(q)));
        out
    })
    .await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    assert_right(&domain(&dns, "victim.test").await);
    assert_eq!(dns.stats().stray_datagrams, 32);
    assert_eq!(server.udp_queries(RecordType::MX), 1);
}

#[tokio::test]
async fn an_answer_from_another_source_port_is_ignored() {
    // The spoof (a well-formed answer with the right ID and question, from another port) is
    // sent first; a transport that took it would record mx.wrong.test.
    let server = mx_server(|q, _| {
        vec![
            Act::FromOtherPort(bytes(&reply_with(q, "mx.wrong.test.", 1))),
            Act::Pause(Duration::from_millis(50)),
            Act::Bytes(right(q)),
        ]
    })
    .await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    assert_right(&domain(&dns, "victim.test").await);
}

#[tokio::test]
async fn only_an_answer_from_another_port_is_a_timeout() {
    let server = mx_server(|q, _| vec![Act::FromOtherPort(right(q))]).await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    let d = domain(&dns, "victim.test").await;
    assert_eq!(d.mx_outcome, DnsOutcome::Timeout, "{d:?}");
    assert_eq!(server.udp_queries(RecordType::MX), 3);
}

#[tokio::test]
async fn an_answer_over_the_advertised_edns_size_is_asked_again_over_tcp() {
    // 200 MX records: about 5 KB, over the 1,232 bytes the client advertises, sent without
    // TC. The client's 1,233-byte buffer cuts it; TCP (same port) gives all 200.
    let server = Server::start(
        Arc::new(|q: &Message, _| vec![Act::Bytes(bytes(&reply_with(q, "big.test.", 200)))]),
        Arc::new(|q: &Message| Some(bytes(&reply_with(q, "big.test.", 200)))),
    )
    .await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    let d = domain(&dns, "victim.test").await;
    assert_eq!(d.mx_outcome, DnsOutcome::NoError, "{d:?}");
    assert_eq!(d.mx.len(), 200);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    let stats = dns.stats();
    assert_eq!(stats.tcp_after_oversize, 1, "{stats:?}");
    assert_eq!(server.tcp_queries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_oversized_answer_with_broken_tcp_is_truncated() {
    let server = Server::start(
        Arc::new(|q: &Message, _| vec![Act::Bytes(bytes(&reply_with(q, "big.test.", 200)))]),
        Arc::new(|_: &Message| Some(vec![0xde, 0xad])),
    )
    .await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    let d = domain(&dns, "victim.test").await;
    assert_eq!(d.mx_outcome, DnsOutcome::Truncated, "{d:?}");
    assert!(
        d.errors.iter().any(|e| e.contains("advertised EDNS size")),
        "{:?}",
        d.errors
    );
}

#[tokio::test]
async fn only_garbage_until_the_deadline_is_a_timeout_and_retried() {
    let server = mx_server(|q, _| vec![Act::Bytes(junk(q)), Act::Bytes(stray(q, 3))]).await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    let d = domain(&dns, "victim.test").await;
    assert_eq!(d.mx_outcome, DnsOutcome::Timeout, "{d:?}");
    assert_eq!(d.mx_kind, MxKind::Error);
    // Retried as a timeout is: 3 attempts, each with its 2 strays.
    assert_eq!(server.udp_queries(RecordType::MX), 3);
    assert_eq!(dns.stats().stray_datagrams, 6);
    assert!(
        d.errors
            .iter()
            .any(|e| e.contains("3 attempts") && e.contains("6 stray datagrams ignored")),
        "{:?}",
        d.errors
    );
}

#[tokio::test]
async fn garbage_then_silence_is_retried_and_the_second_attempt_succeeds() {
    // What used to become a final `malformed`: a stray, then the real answer is lost.
    let server = mx_server(|q, nth| {
        if nth == 0 {
            vec![Act::Bytes(garbled(q))]
        } else {
            vec![Act::Bytes(right(q))]
        }
    })
    .await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    assert_right(&domain(&dns, "victim.test").await);
    assert_eq!(server.udp_queries(RecordType::MX), 2);
}

#[tokio::test]
async fn only_garbled_replies_with_our_id_are_malformed_after_the_retries() {
    let server = mx_server(|q, _| vec![Act::Bytes(garbled(q))]).await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    let d = domain(&dns, "victim.test").await;
    assert_eq!(d.mx_outcome, DnsOutcome::Malformed, "{d:?}");
    assert_eq!(server.udp_queries(RecordType::MX), 3);
}

#[tokio::test]
async fn a_flood_of_strays_ends_the_attempt_at_the_bound() {
    // 300 strays, then the answer, on the first attempt: the client stops reading after 256
    // (the per-attempt bound), gives the attempt up and asks again.
    let server = mx_server(|q, nth| {
        let mut out = Vec::new();
        if nth == 0 {
            for i in 0..300 {
                out.push(Act::Bytes(stray(q, i)));
                if i % 16 == 15 {
                    out.push(Act::Pause(Duration::from_millis(2)));
                }
            }
        }
        out.push(Act::Bytes(right(q)));
        out
    })
    .await;
    let mut cfg = config(&server);
    cfg.timeout = Duration::from_secs(3);
    let dns = DnsCollector::new(cfg).expect("collector");
    assert_right(&domain(&dns, "victim.test").await);
    assert_eq!(server.udp_queries(RecordType::MX), 2);
    assert_eq!(dns.stats().stray_datagrams, 256);
}

#[tokio::test]
async fn a_thousand_mx_hosts_are_followed_up_to_the_cap() {
    let server = Server::start(
        Arc::new(|q: &Message, _| {
            // UDP: TC set, no records; TCP: all 1,000.
            let mut r = reply_with(q, "victim.test.", 1000);
            if q.queries[0].query_type == RecordType::MX {
                r.metadata.truncation = true;
                r.answers.clear();
            }
            vec![Act::Bytes(bytes(&r))]
        }),
        Arc::new(|q: &Message| Some(bytes(&reply_with(q, "victim.test.", 1000)))),
    )
    .await;
    let dns = DnsCollector::new(config(&server)).expect("collector");
    let d = domain(&dns, "victim.test").await;
    assert_eq!(d.mx_hosts.len(), 1000, "all are recorded in the domain");
    let follow = d.hosts_to_follow();
    assert_eq!(follow.len(), MAX_MX_HOSTS);
    assert_eq!(follow[0], "mx0.victim.test");
    let nulls = mxray_dns::DomainDns {
        mx_kind: MxKind::NullMx,
        ..d.clone()
    };
    assert!(nulls.hosts_to_follow().is_empty());
}

/// A server that never answers until `answering` is set, then answers every query after
/// `delay`, and records the most queries it held unanswered at once.
struct SlowServer {
    server: Server,
    answering: Arc<std::sync::atomic::AtomicBool>,
    max_outstanding: Arc<AtomicUsize>,
}

async fn slow_server(delay: Duration) -> SlowServer {
    let answering = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let outstanding = Arc::new(AtomicUsize::new(0));
    let max_outstanding = Arc::new(AtomicUsize::new(0));
    let (a, o, m) = (
        Arc::clone(&answering),
        Arc::clone(&outstanding),
        Arc::clone(&max_outstanding),
    );
    let server = Server::start(
        Arc::new(move |q: &Message, _| {
            if !a.load(Ordering::SeqCst) {
                return Vec::new();
            }
            let now = o.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            let o = Arc::clone(&o);
            let reply = bytes(&reply_with(q, "x.test.", 0));
            // Decrement when the reply goes out (after the pause).
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                o.fetch_sub(1, Ordering::SeqCst);
            });
            vec![Act::Pause(delay), Act::Bytes(reply)]
        }),
        Arc::new(|_: &Message| None),
    )
    .await;
    SlowServer {
        server,
        answering,
        max_outstanding,
    }
}

async fn lookups(dns: &DnsCollector, n: usize, tag: &str) -> Vec<DnsOutcome> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let dns = dns.clone();
        let q = name(&format!("h{i}.{tag}.test."));
        tasks.push(tokio::spawn(async move {
            dns.lookup(&q, RecordType::A).await.outcome
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("bounded")
                .expect("join"),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_back_off_the_in_flight_limit_and_it_holds() {
    let slow = slow_server(Duration::from_millis(150)).await;
    let mut cfg = DnsConfig::new(vec![slow.server.addr]);
    cfg.timeout = Duration::from_secs(1);
    cfg.attempts = 1;
    cfg.max_in_flight = 200;
    let dns = DnsCollector::new(cfg).expect("collector");
    assert_eq!(dns.stats().in_flight_limits[0].1, 200);

    // An overloaded (here: silent) resolver: the limit comes down.
    let outcomes = lookups(&dns, 200, "dead").await;
    assert!(outcomes.iter().all(|o| *o == DnsOutcome::Timeout));
    let after = dns.stats();
    assert!(after.overload_backoffs >= 1, "{after:?}");
    let limit = after.in_flight_limits[0].1;
    assert!(limit <= 150, "{after:?}");

    // Now it answers, slowly: no more than the limit (plus the additive increases a few
    // windows of successes give) is ever in flight, where 200 would be without back-off.
    slow.answering.store(true, Ordering::SeqCst);
    let outcomes = lookups(&dns, 200, "live").await;
    assert!(
        outcomes.iter().all(|o| *o == DnsOutcome::NoError),
        "{outcomes:?}"
    );
    let held = slow.max_outstanding.load(Ordering::SeqCst);
    assert!(held <= limit + 4, "held {held}, limit {limit}");
    assert!(held >= limit.min(100) / 2, "the limit is used: held {held}");
    let end = dns.stats();
    assert!(end.in_flight_limits[0].1 >= limit, "{end:?}");
    assert_eq!(end.overload_backoffs, after.overload_backoffs, "{end:?}");
}

/// 20 lookups against a server that says SERVFAIL (with this Extended DNS Error, if any) to
/// everything; the stats after.
async fn servfail_stats(ede: Option<u16>) -> mxray_dns::DnsStats {
    let server = Server::start(
        Arc::new(move |q: &Message, _| {
            let mut r = reply_with(q, "x.test.", 0);
            r.metadata.response_code = ResponseCode::ServFail;
            if let Some(code) = ede {
                let mut edns = hickory_proto::op::Edns::new();
                edns.options_mut()
                    .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                        15,
                        code.to_be_bytes().to_vec(),
                    ));
                r.set_edns(edns);
            }
            vec![Act::Bytes(bytes(&r))]
        }),
        Arc::new(|_: &Message| None),
    )
    .await;
    let mut cfg = config(&server);
    cfg.max_in_flight = 50;
    let dns = DnsCollector::new(cfg).expect("collector");
    let outcomes = lookups(&dns, 20, "sf").await;
    assert!(outcomes.iter().all(|o| *o == DnsOutcome::ServFail));
    dns.stats()
}

#[tokio::test]
async fn plain_servfail_is_an_overload_signal() {
    let s = servfail_stats(None).await;
    assert!(s.overload_backoffs >= 1, "{s:?}");
    assert!(s.in_flight_limits[0].1 < 50, "{s:?}");
}

#[tokio::test]
async fn dnssec_bogus_servfail_is_not_an_overload_signal() {
    // EDE 6 (DNSSEC Bogus): the zone is broken, the resolver is not overloaded.
    let s = servfail_stats(Some(6)).await;
    assert_eq!(s.overload_backoffs, 0, "{s:?}");
    assert_eq!(s.in_flight_limits[0].1, 50, "{s:?}");
}
