//! A tiny, deliberately misbehaving DNS server on 127.0.0.1 (UDP and TCP on one port).

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::{A, CNAME, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

/// MX records in the huge RRset.
pub const HUGE_COUNT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `mx.shared.test A 127.0.0.77`, everything else NODATA.
    Normal,
    /// Never answers.
    Silent,
    /// Well-formed answers with the wrong ID.
    WrongId,
    /// Right ID, then junk.
    Garbage,
    /// REFUSED.
    Refused,
    /// `q CNAME x`, `x CNAME q` in one reply.
    CnameLoop,
    /// `victim.test CNAME a.loop.test`; `a.loop.test CNAME victim.test` in the next reply.
    CnameLoopAcrossReplies,
    /// UDP: TC=1; TCP: garbage.
    TruncatedTcpGarbage,
    /// UDP: TC=1; TCP: an MX RRset of HUGE_COUNT records.
    HugeOverTcp,
    /// An MX answer with the AD bit set.
    AdSecure,
    /// SERVFAIL with Extended DNS Error 7 (Signature Expired).
    ServFailEde,
    /// SERVFAIL, but an MX answer when CD is set (a validation failure without EDE).
    ServFailUnlessCd,
    /// SERVFAIL to everything, CD or not, no EDE (a resolver that cannot reach the zone).
    ServFail,
}

pub struct FakeServer {
    pub addr: SocketAddr,
    count: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn name(s: &str) -> Name {
    Name::from_str(s).expect("name")
}

/// The reply for a parsed query, or `None` for silence; `tcp` says which transport asked.
fn answer(b: Behaviour, q: &Message, tcp: bool) -> Option<Vec<u8>> {
    let query = q.queries.first()?.clone();
    let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(query.clone());
    let qn = query.name.clone();
    match b {
        Behaviour::Silent => return None,
        Behaviour::Normal => {
            if qn == name("mx.shared.test.") && query.query_type == RecordType::A {
                r.add_answer(Record::from_rdata(
                    qn,
                    60,
                    RData::A(A(Ipv4Addr::new(127, 0, 0, 77))),
                ));
            }
        }
        Behaviour::WrongId => r.metadata.id = q.metadata.id.wrapping_add(1),
        Behaviour::Garbage => {
            let mut junk = q.metadata.id.to_be_bytes().to_vec();
            junk.extend([0x81, 0x80, 0, 1, 0, 9, 0, 0, 0, 0, 0xc0, 0xff, 0x13, 0x37]);
            return Some(junk);
        }
        Behaviour::Refused => r.metadata.response_code = ResponseCode::Refused,
        Behaviour::CnameLoop => {
            let other = name("x.loop.test.");
            r.add_answer(Record::from_rdata(
                qn.clone(),
                60,
                RData::CNAME(CNAME(other.clone())),
            ));
            r.add_answer(Record::from_rdata(other, 60, RData::CNAME(CNAME(qn))));
        }
        Behaviour::CnameLoopAcrossReplies => {
            let target = if qn == name("a.loop.test.") {
                name("victim.test.")
            } else {
                name("a.loop.test.")
            };
            r.add_answer(Record::from_rdata(qn, 60, RData::CNAME(CNAME(target))));
        }
        Behaviour::TruncatedTcpGarbage if tcp => return Some(vec![0xde, 0xad, 0xbe, 0xef]),
        Behaviour::HugeOverTcp if tcp => {
            if query.query_type == RecordType::MX {
                for i in 0..HUGE_COUNT {
                    r.add_answer(Record::from_rdata(
                        qn.clone(),
                        60,
                        RData::MX(MX::new(10, name(&format!("mx{i}.victim.test.")))),
                    ));
                }
            }
        }
        Behaviour::TruncatedTcpGarbage | Behaviour::HugeOverTcp => r.metadata.truncation = true,
        Behaviour::AdSecure => {
            r.metadata.authentic_data = true;
            if query.query_type == RecordType::MX {
                r.add_answer(Record::from_rdata(
                    qn,
                    60,
                    RData::MX(MX::new(10, name("mx.victim.test."))),
                ));
            }
        }
        Behaviour::ServFailEde => {
            r.metadata.response_code = ResponseCode::ServFail;
            let mut edns = Edns::new();
            edns.options_mut()
                .insert(EdnsOption::Unknown(15, vec![0, 7, b'e', b'x', b'p']));
            r.set_edns(edns);
        }
        Behaviour::ServFail => {
            r.metadata.response_code = ResponseCode::ServFail;
        }
        Behaviour::ServFailUnlessCd => {
            if q.metadata.checking_disabled {
                if query.query_type == RecordType::MX {
                    r.add_answer(Record::from_rdata(
                        qn,
                        60,
                        RData::MX(MX::new(10, name("mx.victim.test."))),
                    ));
                }
            } else {
                r.metadata.response_code = ResponseCode::ServFail;
            }
        }
    }
    r.to_vec().ok()
}

/// A UDP socket on 127.0.0.1 port 0 and a TCP listener on the same port number. The TCP
/// port may be taken (another test's ephemeral connection): then try another port.
pub async fn bind_udp_and_tcp() -> (UdpSocket, TcpListener) {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
        let addr = udp.local_addr().expect("addr");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP after 100 tries");
}

impl FakeServer {
    pub async fn start(b: Behaviour) -> FakeServer {
        let (udp, tcp) = bind_udp_and_tcp().await;
        let addr = udp.local_addr().expect("addr");
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        let udp_task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Some(reply) = answer(b, &q, false) {
                    let _ = udp.send_to(&reply, peer).await;
                }
            }
        });
        let c = Arc::clone(&count);
        let tcp_task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = tcp.accept().await else {
                    return;
                };
                let c = Arc::clone(&c);
                tokio::spawn(async move {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    c.fetch_add(1, Ordering::SeqCst);
                    let Ok(q) = Message::from_vec(&body) else {
                        return;
                    };
                    if let Some(reply) = answer(b, &q, true) {
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
        FakeServer {
            addr,
            count,
            tasks: vec![udp_task, tcp_task],
        }
    }

    /// Queries received (UDP and TCP).
    pub fn queries(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}
