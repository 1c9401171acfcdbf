//! The DNS front: one UDP+TCP server that answers the hostile zone itself (with the
//! [`DnsTrick`]s) and relays every other query, byte for byte, to the good world's resolver.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, MX, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::catalogue::{DnsTrick, ZONE};
use crate::HOLD_LIMIT;

/// TTL of every hostile record.
const TTL: u32 = 60;
/// How long a relayed query waits for the upstream.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);
/// The MX host the spoofed and wrong-question answers name.
pub const DECOY: &str = "decoy.hostile.test";

/// The hostile zone's data.
#[derive(Debug, Default)]
pub(crate) struct Zone {
    /// Records by owner name (lower case, no trailing dot).
    records: HashMap<String, Vec<RData>>,
    /// Tricks for the MX query of a name.
    tricks: HashMap<String, DnsTrick>,
}

fn name(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{s}.")).ok()
}

fn key(n: &Name) -> String {
    n.to_lowercase().to_ascii().trim_end_matches('.').to_owned()
}

fn in_zone(n: &Name) -> bool {
    let k = key(n);
    k == ZONE || k.ends_with(&format!(".{ZONE}"))
}

/// What to send, in order, for one UDP query.
enum UdpStep {
    Send(Vec<u8>),
    FromOtherPort(Vec<u8>),
    Pause(Duration),
}

impl Zone {
    pub(crate) fn mx(&mut self, owner: &str, exchange: &str) {
        if let Some(n) = name(exchange) {
            self.records
                .entry(owner.to_owned())
                .or_default()
                .push(RData::MX(MX::new(10, n)));
        }
    }

    pub(crate) fn a(&mut self, owner: &str, ip: Ipv4Addr) {
        self.records
            .entry(owner.to_owned())
            .or_default()
            .push(RData::A(A(ip)));
    }

    pub(crate) fn txt(&mut self, owner: &str, text: &str) {
        self.records
            .entry(owner.to_owned())
            .or_default()
            .push(RData::TXT(TXT::new(vec![text.to_owned()])));
    }

    pub(crate) fn trick(&mut self, owner: &str, t: DnsTrick) {
        self.tricks.insert(owner.to_owned(), t);
    }

    /// The honest answer to `req` (NOERROR with the records, NODATA, or NXDOMAIN with SOA).
    fn answer(&self, req: &Message) -> Message {
        let mut resp = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.metadata.authoritative = true;
        resp.queries = req.queries.clone();
        if req.edns.is_some() {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            resp.set_edns(edns);
        }
        let Some(q) = req.queries.first() else {
            resp.metadata.response_code = ResponseCode::FormErr;
            return resp;
        };
        match self.records.get(&key(q.name())) {
            Some(rs) => {
                resp.answers = rs
                    .iter()
                    .filter(|r| r.record_type() == q.query_type())
                    .map(|r| Record::from_rdata(q.name().clone(), TTL, r.clone()))
                    .collect();
                if resp.answers.is_empty() {
                    resp.authorities.push(soa());
                }
            }
            None => {
                resp.metadata.response_code = ResponseCode::NXDomain;
                resp.authorities.push(soa());
            }
        }
        resp
    }

    fn trick_for(&self, req: &Message) -> Option<DnsTrick> {
        let q = req.queries.first()?;
        if q.query_type() != RecordType::MX {
            return None;
        }
        self.tricks.get(&key(q.name())).copied()
    }

    fn udp_steps(&self, req: &Message) -> Vec<UdpStep> {
        let honest = || self.answer(req).to_vec().unwrap_or_default();
        match self.trick_for(req) {
            None => vec![UdpStep::Send(honest())],
            Some(DnsTrick::CompressionLoop) => vec![UdpStep::Send(compression_loop(req))],
            Some(DnsTrick::SpoofedFirst) => {
                let mut decoy = self.answer(req);
                if let Some(n) = name(DECOY) {
                    decoy.answers = req
                        .queries
                        .iter()
                        .map(|q| {
                            Record::from_rdata(
                                q.name().clone(),
                                TTL,
                                RData::MX(MX::new(1, n.clone())),
                            )
                        })
                        .collect();
                }
                let right = decoy.to_vec().unwrap_or_default();
                decoy.metadata.id ^= 0x5a5a;
                let wrong = decoy.to_vec().unwrap_or_default();
                vec![
                    UdpStep::Send(wrong),
                    UdpStep::FromOtherPort(right),
                    UdpStep::Pause(Duration::from_millis(50)),
                    UdpStep::Send(honest()),
                ]
            }
            Some(DnsTrick::OversizedUdp) => {
                let mut big = self.answer(req);
                let pad = req
                    .queries
                    .first()
                    .and_then(|q| name(&format!("pad.{}", key(q.name()))));
                if let Some(pad) = pad {
                    for i in 0..100u8 {
                        big.additionals.push(Record::from_rdata(
                            pad.clone(),
                            TTL,
                            RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
                        ));
                    }
                }
                vec![UdpStep::Send(big.to_vec().unwrap_or_default())]
            }
            Some(DnsTrick::WrongQuestion) => vec![UdpStep::Send(self.wrong_question(req))],
        }
    }

    fn tcp_answer(&self, req: &Message) -> Vec<u8> {
        match self.trick_for(req) {
            Some(DnsTrick::CompressionLoop) => compression_loop(req),
            Some(DnsTrick::WrongQuestion) => self.wrong_question(req),
            _ => self.answer(req).to_vec().unwrap_or_default(),
        }
    }

    /// The right ID, the answer to `decoy.hostile.test MX`.
    fn wrong_question(&self, req: &Message) -> Vec<u8> {
        let mut other = req.clone();
        if let Some(n) = name(DECOY) {
            other.queries = vec![Query::query(n.clone(), RecordType::MX)];
            let mut resp = self.answer(&other);
            resp.metadata.response_code = ResponseCode::NoError;
            resp.authorities.clear();
            resp.answers = vec![Record::from_rdata(n.clone(), TTL, RData::MX(MX::new(1, n)))];
            return resp.to_vec().unwrap_or_default();
        }
        Vec::new()
    }
}

fn soa() -> Record {
    let zone = name(ZONE).unwrap_or_else(Name::root);
    let ns = name(&format!("ns.{ZONE}")).unwrap_or_else(Name::root);
    let rname = name(&format!("hostmaster.{ZONE}")).unwrap_or_else(Name::root);
    Record::from_rdata(
        zone,
        TTL,
        RData::SOA(SOA::new(ns, rname, 1, 3600, 600, 86400, TTL)),
    )
}

/// A response to `req` (same ID and question) whose one MX answer has an owner name that is a
/// compression pointer to itself, and an exchange that points there too: a decoder that
/// follows pointers without a bound never ends.
fn compression_loop(req: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend(req.metadata.id.to_be_bytes());
    out.extend([0x85, 0x80]); // QR AA RD RA, NOERROR
    out.extend([0, 1, 0, 1, 0, 0, 0, 0]); // 1 question, 1 answer
    if let Some(q) = req.queries.first() {
        for label in q.name().iter() {
            out.push(label.len() as u8);
            out.extend(label);
        }
        out.push(0);
        out.extend(u16::from(q.query_type()).to_be_bytes());
        out.extend([0, 1]);
    } else {
        out.extend([0, 0, 15, 0, 1]);
    }
    let at = out.len() as u16;
    let ptr = (0xC000 | at).to_be_bytes();
    out.extend(ptr); // owner: a pointer to itself
    out.extend([0, 15, 0, 1]); // MX IN
    out.extend(TTL.to_be_bytes());
    out.extend([0, 4, 0, 10]); // rdlength 4, preference 10
    out.extend(ptr); // exchange: the same loop
    out
}

/// The running front.
#[derive(Debug)]
pub(crate) struct Front {
    pub(crate) addr: SocketAddr,
}

/// Binds `addr` (UDP and TCP) and serves `zone`, relaying the rest to `upstream`; the tasks
/// are pushed to `tasks`.
pub(crate) async fn start(
    addr: SocketAddr,
    upstream: SocketAddr,
    zone: Arc<Zone>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<Front, crate::HostileError> {
    let bind = |e: std::io::Error| crate::HostileError::Bind {
        addr,
        source: Arc::new(e),
    };
    let udp = Arc::new(UdpSocket::bind(addr).await.map_err(bind)?);
    let addr = udp.local_addr().map_err(bind)?;
    let tcp = TcpListener::bind(addr).await.map_err(bind)?;
    tasks.push(tokio::spawn(serve_udp(udp, zone.clone(), upstream)));
    tasks.push(tokio::spawn(serve_tcp(tcp, zone, upstream)));
    Ok(Front { addr })
}

async fn serve_udp(sock: Arc<UdpSocket>, zone: Arc<Zone>, upstream: SocketAddr) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = mxray_net::recv_datagram(&sock, &mut buf).await;
        let data = buf.get(..n).unwrap_or_default().to_vec();
        let (sock, zone) = (sock.clone(), zone.clone());
        tokio::spawn(async move {
            let Ok(req) = Message::from_vec(&data) else {
                return;
            };
            if !req.queries.first().is_some_and(|q| in_zone(q.name())) {
                if let Some(reply) = relay_udp(upstream, &data).await {
                    let _ = sock.send_to(&reply, peer).await;
                }
                return;
            }
            for step in zone.udp_steps(&req) {
                match step {
                    UdpStep::Send(b) => {
                        let _ = sock.send_to(&b, peer).await;
                    }
                    UdpStep::FromOtherPort(b) => {
                        if let Ok(local) = sock.local_addr() {
                            if let Ok(other) = UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await
                            {
                                let _ = other.send_to(&b, peer).await;
                            }
                        }
                    }
                    UdpStep::Pause(d) => tokio::time::sleep(d).await,
                }
            }
        });
    }
}

async fn relay_udp(upstream: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let local = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let sock = UdpSocket::bind(local).await.ok()?;
    sock.connect(upstream).await.ok()?;
    sock.send(query).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(RELAY_TIMEOUT, sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

async fn serve_tcp(listener: TcpListener, zone: Arc<Zone>, upstream: SocketAddr) {
    loop {
        let (stream, _) = mxray_net::accept(&listener).await;
        let zone = zone.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HOLD_LIMIT, tcp_session(stream, zone, upstream)).await;
        });
    }
}

async fn read_framed(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

async fn write_framed(s: &mut TcpStream, body: &[u8]) -> Option<()> {
    let len = u16::try_from(body.len()).ok()?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(body);
    s.write_all(&out).await.ok()
}

async fn tcp_session(mut s: TcpStream, zone: Arc<Zone>, upstream: SocketAddr) {
    while let Some(data) = read_framed(&mut s).await {
        let Ok(req) = Message::from_vec(&data) else {
            return;
        };
        let reply = if req.queries.first().is_some_and(|q| in_zone(q.name())) {
            Some(zone.tcp_answer(&req))
        } else {
            relay_tcp(upstream, &data).await
        };
        let Some(reply) = reply else { return };
        if write_framed(&mut s, &reply).await.is_none() {
            return;
        }
    }
}

async fn relay_tcp(upstream: SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let work = async {
        let mut up = TcpStream::connect(upstream).await.ok()?;
        write_framed(&mut up, query).await?;
        read_framed(&mut up).await
    };
    tokio::time::timeout(RELAY_TIMEOUT, work).await.ok()?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(n: &str, t: RecordType) -> Message {
        let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
        m.queries.push(Query::query(name(n).expect("name"), t));
        m
    }

    #[test]
    fn the_compression_loop_does_not_decode() {
        let bytes = compression_loop(&query("x.hostile.test", RecordType::MX));
        assert_eq!(&bytes[..2], &[0x12, 0x34]);
        assert!(Message::from_vec(&bytes).is_err());
    }

    #[test]
    fn tricks_answer_as_documented() {
        let mut z = Zone::default();
        z.mx("big.hostile.test", "mx.big.hostile.test");
        z.trick("big.hostile.test", DnsTrick::OversizedUdp);
        z.mx("other.hostile.test", "mx.other.hostile.test");
        z.trick("other.hostile.test", DnsTrick::WrongQuestion);
        let q = query("big.hostile.test", RecordType::MX);
        let steps = z.udp_steps(&q);
        let [UdpStep::Send(udp)] = steps.as_slice() else {
            panic!("one datagram");
        };
        assert!(udp.len() > 1232, "{}", udp.len());
        assert_eq!(udp[2] & 0x02, 0, "no TC");
        let tcp = Message::from_vec(&z.tcp_answer(&q)).expect("tcp answer");
        assert_eq!(tcp.answers.len(), 1);
        assert!(tcp.additionals.is_empty());
        let wrong = Message::from_vec(&z.tcp_answer(&query("other.hostile.test", RecordType::MX)))
            .expect("decodes");
        assert_eq!(wrong.metadata.id, 0x1234);
        assert_eq!(key(wrong.queries[0].name()), DECOY);
        let nx = z.answer(&query("nope.hostile.test", RecordType::A));
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    }
}
