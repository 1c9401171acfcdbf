//! The lab's DNS: a tiny authoritative responder on hickory-proto, signing online.
//!
//! All lab zones live in one process and one server address; a query goes to the deepest zone
//! that contains its name, except a DS query for a zone apex, which the parent answers (RFC 4035
//! §3.1.4.1), so a validator can walk parent → child. Signed zones use one ECDSA P-256 key each
//! (a combined signing key, flags 257) generated at start; RRSIGs are computed on demand and
//! cached. Negative answers in signed zones are "black lies" (the compact-denial style of
//! draft-ietf-dnsop-compact-denial-of-existence): NOERROR with an NSEC at the query name that
//! lists only the types that exist there, so no NSEC chain has to be kept and a synthetic zone of
//! 100,000 domains needs no precomputation. Unsigned zones answer NXDOMAIN normally.
//!
//! Two personalities share the data ([`Mode`]): the authoritative one (full DNSSEC records when
//! DO is set; AD set on answers whose every RRset is secure) for `--dnssec validate`, and a
//! validating-resolver emulation (AD for secure, SERVFAIL for bogus, like Unbound) for
//! `--dnssec ad`.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::dnssec::crypto::EcdsaSigningKey;
use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, DNSKEY, DS, NSEC, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, SigningKey, TBS};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, NS, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use mxray_model::DnssecStatus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;

use crate::error::LabError;

/// TTL of every lab record.
pub(crate) const TTL: u32 = 300;
/// Largest UDP answer we send without the TC bit when the query has no EDNS.
const PLAIN_UDP_MAX: usize = 512;
/// Cap on cached RRSIGs (cleared when reached).
const SIG_CACHE_CAP: usize = 200_000;
/// Cap on concurrent TCP DNS connections.
const TCP_CONNS: usize = 256;
/// Idle timeout of a TCP DNS connection.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Which answers the server gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Authoritative data, with RRSIG/NSEC when DO is set; bogus data served as is.
    Authoritative,
    /// A validating resolver's view: bogus answers become SERVFAIL, secure ones carry AD.
    Validating,
}

/// How a zone is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signing {
    /// No DNSKEY, no RRSIG; the parent has no DS.
    Unsigned,
    /// Signed with a key whose DS is in the parent (or which is the trust anchor).
    Signed,
    /// Signed, DS in the parent, but every TLSA RRSIG is corrupted: TLSA answers are bogus.
    BogusTlsa,
}

/// A zone's key.
pub(crate) struct ZoneKey {
    key: Box<dyn SigningKey>,
    dnskey: DNSKEY,
    key_tag: u16,
}

impl std::fmt::Debug for ZoneKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneKey")
            .field("key_tag", &self.key_tag)
            .finish_non_exhaustive()
    }
}

fn dns_err(e: impl std::fmt::Display) -> LabError {
    LabError::Dns(e.to_string())
}

impl ZoneKey {
    /// A fresh ECDSA P-256 key.
    pub(crate) fn generate() -> Result<Self, LabError> {
        let alg = Algorithm::ECDSAP256SHA256;
        let pkcs8 = EcdsaSigningKey::generate_pkcs8(alg).map_err(dns_err)?;
        let key = EcdsaSigningKey::from_pkcs8(&pkcs8, alg).map_err(dns_err)?;
        let public = key.to_public_key().map_err(dns_err)?;
        let dnskey = DNSKEY::from_key(&public);
        let key_tag = dnskey.calculate_key_tag().map_err(dns_err)?;
        Ok(ZoneKey {
            key: Box::new(key),
            dnskey,
            key_tag,
        })
    }

    /// The DS (SHA-256) for this key at `origin`.
    pub(crate) fn ds(&self, origin: &Name) -> Result<DS, LabError> {
        let digest = self
            .dnskey
            .to_digest(origin, DigestType::SHA256)
            .map_err(dns_err)?;
        Ok(DS::new(
            self.key_tag,
            Algorithm::ECDSAP256SHA256,
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        ))
    }

    /// The DNSKEY record data.
    pub(crate) fn dnskey(&self) -> &DNSKEY {
        &self.dnskey
    }
}

/// Records computed on demand (the synthetic domains).
pub(crate) trait DynamicZone: Send + Sync + std::fmt::Debug {
    /// Records owned by `name` (below the origin, the apex records are added by [`Zone`]).
    /// `None`: the name does not exist; `Some(empty)`: an empty non-terminal.
    fn records_at(&self, name: &Name) -> Option<Vec<Record>>;
}

#[derive(Debug)]
enum Content {
    Static(BTreeMap<Name, Vec<Record>>),
    Dynamic(Arc<dyn DynamicZone>),
}

/// One zone.
#[derive(Debug)]
pub(crate) struct Zone {
    origin: Name,
    signing: Signing,
    key: Option<ZoneKey>,
    content: Content,
    /// (name, type) pairs answered SERVFAIL: an authority failing for one lookup only.
    servfail: std::collections::HashSet<(Name, RecordType)>,
}

impl Zone {
    /// A zone with records added later by [`Zone::add`].
    pub(crate) fn new_static(origin: Name, signing: Signing) -> Result<Self, LabError> {
        Self::new(origin, signing, Content::Static(BTreeMap::new()))
    }

    /// A zone whose records come from `dynamic`.
    pub(crate) fn new_dynamic(
        origin: Name,
        signing: Signing,
        dynamic: Arc<dyn DynamicZone>,
    ) -> Result<Self, LabError> {
        Self::new(origin, signing, Content::Dynamic(dynamic))
    }

    /// A signed zone gets a fresh key; an unsigned one none.
    fn new(origin: Name, signing: Signing, content: Content) -> Result<Self, LabError> {
        let key = if signing == Signing::Unsigned {
            None
        } else {
            Some(ZoneKey::generate()?)
        };
        Ok(Zone {
            origin,
            signing,
            key,
            content,
            servfail: Default::default(),
        })
    }

    /// The zone's origin.
    pub(crate) fn origin(&self) -> &Name {
        &self.origin
    }

    /// The zone's key, if signed.
    pub(crate) fn key(&self) -> Option<&ZoneKey> {
        self.key.as_ref()
    }

    /// Adds a record (static zones only; ignored otherwise).
    pub(crate) fn add(&mut self, name: Name, rdata: RData) {
        if let Content::Static(map) = &mut self.content {
            map.entry(name.clone())
                .or_default()
                .push(Record::from_rdata(name, TTL, rdata));
        }
    }

    /// Makes queries for `name`/`rtype` fail with SERVFAIL (both server modes, CD or not).
    pub(crate) fn add_servfail(&mut self, name: Name, rtype: RecordType) {
        self.servfail.insert((name, rtype));
    }

    fn apex_records(&self) -> Vec<Record> {
        let o = &self.origin;
        let mut v = vec![
            Record::from_rdata(o.clone(), TTL, RData::SOA(soa())),
            Record::from_rdata(o.clone(), TTL, RData::NS(NS(ns_name()))),
        ];
        if let Some(k) = &self.key {
            v.push(Record::from_rdata(
                o.clone(),
                TTL,
                RData::DNSSEC(DNSSECRData::DNSKEY(k.dnskey.clone())),
            ));
        }
        v
    }

    /// Records at `name`: `None` when the name does not exist.
    fn records_at(&self, name: &Name) -> Option<Vec<Record>> {
        let mut out = match &self.content {
            Content::Static(map) => match map.get(name) {
                Some(v) => Some(v.clone()),
                None => {
                    // An empty non-terminal: some owner below `name` (they sort right after it).
                    let below = map
                        .range(name.clone()..)
                        .next()
                        .is_some_and(|(k, _)| name.zone_of(k));
                    below.then(Vec::new)
                }
            },
            Content::Dynamic(d) => d.records_at(name),
        };
        if name == &self.origin {
            let mut v = out.take().unwrap_or_default();
            v.extend(self.apex_records());
            out = Some(v);
        }
        out
    }

    fn status_of(&self, rtype: RecordType) -> DnssecStatus {
        match self.signing {
            Signing::Unsigned => DnssecStatus::Insecure,
            Signing::Signed => DnssecStatus::Secure,
            Signing::BogusTlsa if rtype == RecordType::TLSA => DnssecStatus::Bogus,
            Signing::BogusTlsa => DnssecStatus::Secure,
        }
    }
}

fn ns_name() -> Name {
    Name::from_ascii("ns.lab.test.").unwrap_or_else(|_| Name::root())
}

fn soa() -> SOA {
    let rname = Name::from_ascii("hostmaster.lab.test.").unwrap_or_else(|_| Name::root());
    SOA::new(ns_name(), rname, 1, 3600, 600, 86400, TTL)
}

/// The name server address record the lab publishes (`ns.lab.test`).
pub(crate) fn ns_a(ip: Ipv4Addr) -> (Name, RData) {
    (ns_name(), RData::A(A(ip)))
}

/// All zones and the signature cache.
#[derive(Debug)]
pub(crate) struct Authority {
    /// Deepest first.
    zones: Vec<Zone>,
    inception: u32,
    expiration: u32,
    sig_cache: Mutex<HashMap<(Name, RecordType), Record>>,
}

/// What [`Authority::respond`] decided, for the driver and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Security(DnssecStatus);

impl Authority {
    /// Builds the authority; zones in any order.
    pub(crate) fn new(mut zones: Vec<Zone>) -> Self {
        zones.sort_by_key(|z| std::cmp::Reverse(z.origin.num_labels()));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0) as u32;
        Authority {
            zones,
            inception: now.saturating_sub(3600),
            expiration: now.saturating_add(30 * 86400),
            sig_cache: Mutex::default(),
        }
    }

    fn zone_for(&self, name: &Name) -> Option<&Zone> {
        self.zones.iter().find(|z| z.origin.zone_of(name))
    }

    fn zone_for_ds(&self, name: &Name) -> Option<&Zone> {
        self.zones
            .iter()
            .find(|z| z.origin.zone_of(name) && &z.origin != name)
    }

    fn rrsig(&self, zone: &Zone, rrset: &[Record]) -> Option<Record> {
        let key = zone.key.as_ref()?;
        let first = rrset.first()?;
        let ck = (first.name.clone(), first.record_type());
        if let Ok(cache) = self.sig_cache.lock() {
            if let Some(r) = cache.get(&ck) {
                return Some(r.clone());
            }
        }
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: Algorithm::ECDSAP256SHA256,
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new(self.expiration),
            sig_inception: SerialNumber::new(self.inception),
            key_tag: key.key_tag,
            signer_name: zone.origin.clone(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, rrset.iter()).ok()?;
        let mut sig = key.key.sign(&tbs).ok()?;
        if zone.status_of(first.record_type()) == DnssecStatus::Bogus {
            if let Some(b) = sig.last_mut() {
                *b ^= 0x5a;
            }
        }
        let rec = Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig))),
        );
        if let Ok(mut cache) = self.sig_cache.lock() {
            if cache.len() >= SIG_CACHE_CAP {
                cache.clear();
            }
            cache.insert(ck, rec.clone());
        }
        Some(rec)
    }

    /// Pushes `rrset` (and its RRSIG when `dnssec`) into `out`; returns its status.
    fn push_rrset(
        &self,
        zone: &Zone,
        rrset: Vec<Record>,
        dnssec: bool,
        out: &mut Vec<Record>,
    ) -> DnssecStatus {
        let Some(first) = rrset.first() else {
            return DnssecStatus::Secure;
        };
        let status = zone.status_of(first.record_type());
        let sig = if dnssec {
            self.rrsig(zone, &rrset)
        } else {
            None
        };
        out.extend(rrset);
        out.extend(sig);
        status
    }

    fn negative(
        &self,
        zone: &Zone,
        name: &Name,
        existing: Option<&[Record]>,
        dnssec: bool,
        resp: &mut Message,
    ) -> DnssecStatus {
        let soa = vec![Record::from_rdata(
            zone.origin.clone(),
            TTL,
            RData::SOA(soa()),
        )];
        let mut st = self.push_rrset(zone, soa, dnssec, &mut resp.authorities);
        if zone.signing != Signing::Unsigned {
            let mut types: Vec<RecordType> = existing
                .unwrap_or(&[])
                .iter()
                .map(|r| r.record_type())
                .collect();
            types.extend([RecordType::RRSIG, RecordType::NSEC]);
            types.sort();
            types.dedup();
            let next = name
                .prepend_label(&[0u8][..])
                .unwrap_or_else(|_| name.clone());
            let nsec = Record::from_rdata(
                name.clone(),
                TTL,
                RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(next, types))),
            );
            let s = self.push_rrset(zone, vec![nsec], dnssec, &mut resp.authorities);
            st = worst(st, s);
        }
        st
    }

    /// Answers one query message.
    pub(crate) fn respond(&self, req: &Message, mode: Mode) -> Message {
        let mut resp = Message::new(req.metadata.id, MessageType::Response, req.metadata.op_code);
        resp.metadata.recursion_desired = req.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.queries = req.queries.clone();
        let dnssec = req.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        if let Some(e) = &req.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            edns.flags_mut().dnssec_ok = e.flags().dnssec_ok;
            resp.set_edns(edns);
        }
        if req.metadata.op_code != OpCode::Query {
            resp.metadata.response_code = ResponseCode::NotImp;
            return resp;
        }
        let [query] = req.queries.as_slice() else {
            resp.metadata.response_code = ResponseCode::FormErr;
            return resp;
        };
        if query.query_class() != DNSClass::IN {
            resp.metadata.response_code = ResponseCode::Refused;
            return resp;
        }
        let qtype = query.query_type();
        let mut name = query.name().clone();
        let zone = if qtype == RecordType::DS {
            self.zone_for_ds(&name)
        } else {
            self.zone_for(&name)
        };
        let Some(mut zone) = zone else {
            resp.metadata.response_code = ResponseCode::Refused;
            return resp;
        };
        if zone.servfail.contains(&(name.clone(), qtype)) {
            resp.metadata.response_code = ResponseCode::ServFail;
            return resp;
        }
        resp.metadata.authoritative = true;
        let mut status = DnssecStatus::Secure;
        for _hop in 0..8 {
            let records = zone.records_at(&name);
            let Some(records) = records else {
                if zone.signing == Signing::Unsigned {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                }
                let s = self.negative(zone, &name, None, dnssec, &mut resp);
                status = worst(status, s);
                break;
            };
            let want: Vec<Record> = records
                .iter()
                .filter(|r| r.record_type() == qtype)
                .cloned()
                .collect();
            if !want.is_empty() {
                let s = self.push_rrset(zone, want, dnssec, &mut resp.answers);
                status = worst(status, s);
                break;
            }
            let cname: Vec<Record> = records
                .iter()
                .filter(|r| r.record_type() == RecordType::CNAME)
                .cloned()
                .collect();
            let target = cname.first().and_then(|r| match &r.data {
                RData::CNAME(c) => Some(c.0.clone()),
                _ => None,
            });
            if let (Some(target), false) = (target, qtype == RecordType::CNAME) {
                let s = self.push_rrset(zone, cname, dnssec, &mut resp.answers);
                status = worst(status, s);
                match self.zone_for(&target) {
                    Some(z) => {
                        zone = z;
                        name = target;
                        continue;
                    }
                    None => break,
                }
            }
            let s = self.negative(zone, &name, Some(&records), dnssec, &mut resp);
            status = worst(status, s);
            break;
        }
        let security = Security(status);
        let wants_ad = req.metadata.authentic_data || dnssec;
        match mode {
            Mode::Authoritative => {
                resp.metadata.authentic_data = wants_ad && security.0 == DnssecStatus::Secure;
            }
            Mode::Validating => {
                if security.0 == DnssecStatus::Bogus && !req.metadata.checking_disabled {
                    resp.answers.clear();
                    resp.authorities.clear();
                    resp.metadata.response_code = ResponseCode::ServFail;
                    resp.metadata.authoritative = false;
                    return resp;
                }
                resp.metadata.authoritative = false;
                resp.metadata.authentic_data = wants_ad && security.0 == DnssecStatus::Secure;
            }
        }
        resp
    }
}

/// Worst of two statuses (bogus > insecure > secure).
fn worst(a: DnssecStatus, b: DnssecStatus) -> DnssecStatus {
    let rank = |s| match s {
        DnssecStatus::Secure => 0,
        DnssecStatus::Insecure => 1,
        DnssecStatus::Indeterminate => 2,
        DnssecStatus::Bogus => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Encodes a response for UDP, setting TC when it does not fit.
fn encode_udp(req: &Message, resp: &Message) -> Option<Vec<u8>> {
    let max = req
        .edns
        .as_ref()
        .map(|e| usize::from(e.max_payload().max(512)))
        .unwrap_or(PLAIN_UDP_MAX);
    let bytes = resp.to_vec().ok()?;
    if bytes.len() <= max {
        return Some(bytes);
    }
    let mut t = resp.truncate();
    t.metadata.truncation = true;
    t.to_vec().ok()
}

fn parse_query(buf: &[u8]) -> Result<Message, ResponseCode> {
    let msg = Message::from_vec(buf).map_err(|_| ResponseCode::FormErr)?;
    if msg.metadata.message_type != MessageType::Query {
        return Err(ResponseCode::FormErr);
    }
    Ok(msg)
}

fn formerr(buf: &[u8]) -> Option<Vec<u8>> {
    if buf.len() < 2 {
        return None;
    }
    let id = u16::from_be_bytes([buf[0], buf[1]]);
    Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
        .to_vec()
        .ok()
}

/// UDP workers per socket (answers are signed online; two cores on the reference machine).
const UDP_WORKERS: usize = 4;

/// Serves `authority` on a bound UDP socket until the task is aborted.
pub(crate) async fn serve_udp(sock: UdpSocket, authority: Arc<Authority>, mode: Mode) {
    let sock = Arc::new(sock);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..UDP_WORKERS {
        workers.spawn(udp_worker(sock.clone(), authority.clone(), mode));
    }
    while workers.join_next().await.is_some() {}
}

async fn udp_worker(sock: Arc<UdpSocket>, authority: Arc<Authority>, mode: Mode) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = mxray_net::recv_datagram(&sock, &mut buf).await;
        let data = &buf[..n];
        let out = match parse_query(data) {
            Ok(req) => encode_udp(&req, &authority.respond(&req, mode)),
            Err(_) => formerr(data),
        };
        if let Some(out) = out {
            let _ = sock.send_to(&out, peer).await;
        }
    }
}

/// Serves `authority` over TCP (RFC 7766 framing) until the task is aborted.
pub(crate) async fn serve_tcp(listener: TcpListener, authority: Arc<Authority>, mode: Mode) {
    let mut sessions = tokio::task::JoinSet::new();
    let slots = Arc::new(Semaphore::new(TCP_CONNS));
    loop {
        let (mut stream, _) = mxray_net::accept(&listener).await;
        while sessions.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let authority = authority.clone();
        sessions.spawn(async move {
            let _permit = permit;
            loop {
                let mut len = [0u8; 2];
                match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
                    Ok(Ok(_)) => {}
                    _ => return,
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await {
                    Ok(Ok(_)) => {}
                    _ => return,
                }
                let out = match parse_query(&buf) {
                    Ok(req) => authority.respond(&req, mode).to_vec().ok(),
                    Err(_) => formerr(&buf),
                };
                let Some(out) = out else { return };
                let Ok(l) = u16::try_from(out.len()) else {
                    return;
                };
                let mut framed = l.to_be_bytes().to_vec();
                framed.extend(out);
                if tokio::time::timeout(TCP_IDLE, stream.write_all(&framed))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

/// Binds UDP and TCP on `addr` (port 0: an ephemeral port, the same for both when possible).
pub(crate) async fn bind(
    addr: SocketAddr,
) -> Result<(UdpSocket, TcpListener, SocketAddr), LabError> {
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|e| LabError::bind(addr, e))?;
        let local = udp.local_addr().map_err(|e| LabError::bind(addr, e))?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp, local)),
            Err(e) if addr.port() != 0 => return Err(LabError::bind(local, e)),
            Err(_) => continue,
        }
    }
    Err(LabError::Dns(format!(
        "no port free for UDP and TCP on {}",
        addr.ip()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("name")
    }

    fn authority() -> Authority {
        let mut parent = Zone::new_static(name("lab.test."), Signing::Signed).expect("zone");
        parent.add(
            name("www.lab.test."),
            RData::A(A(Ipv4Addr::new(127, 0, 0, 9))),
        );
        parent.add(
            name("a.b.lab.test."),
            RData::A(A(Ipv4Addr::new(127, 0, 0, 9))),
        );
        parent.add(name("child.lab.test."), RData::NS(NS(ns_name())));
        let child = Zone::new_static(name("child.lab.test."), Signing::Unsigned).expect("zone");
        Authority::new(vec![parent, child])
    }

    fn query(n: &str, t: RecordType, dnssec: bool) -> Message {
        let mut m = Message::query();
        m.add_query(Query::query(name(n), t));
        if dnssec {
            let mut e = Edns::new();
            e.enable_dnssec();
            m.set_edns(e);
        }
        m
    }

    #[test]
    fn positive_signed_answer_carries_rrsig() {
        let a = authority();
        let r = a.respond(
            &query("www.lab.test.", RecordType::A, true),
            Mode::Authoritative,
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert_eq!(r.answers.len(), 2);
        assert_eq!(r.answers[1].record_type(), RecordType::RRSIG);
        assert!(r.metadata.authentic_data);
    }

    #[test]
    fn no_rrsig_without_do() {
        let a = authority();
        let r = a.respond(
            &query("www.lab.test.", RecordType::A, false),
            Mode::Authoritative,
        );
        assert_eq!(r.answers.len(), 1);
    }

    #[test]
    fn ds_for_child_apex_comes_from_parent_with_nsec() {
        let a = authority();
        let r = a.respond(
            &query("child.lab.test.", RecordType::DS, true),
            Mode::Authoritative,
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
        let nsec = r
            .authorities
            .iter()
            .find_map(|rec| match &rec.data {
                RData::DNSSEC(DNSSECRData::NSEC(n)) => Some((rec.name.clone(), n.clone())),
                _ => None,
            })
            .expect("an NSEC");
        assert_eq!(nsec.0, name("child.lab.test."));
        assert!(nsec.1.type_set().contains(RecordType::NS));
        assert!(!nsec.1.type_set().contains(RecordType::DS));
    }

    #[test]
    fn unsigned_child_gives_nxdomain_and_empty_non_terminal_nodata() {
        let a = authority();
        let r = a.respond(
            &query("x.child.lab.test.", RecordType::A, true),
            Mode::Authoritative,
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
        assert!(!r.metadata.authentic_data);
        let r = a.respond(
            &query("b.lab.test.", RecordType::A, false),
            Mode::Authoritative,
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
    }

    #[test]
    fn an_injected_failure_answers_servfail_for_that_type_only() {
        let mut parent = Zone::new_static(name("lab.test."), Signing::Signed).expect("zone");
        parent.add(
            name("www.lab.test."),
            RData::A(A(Ipv4Addr::new(127, 0, 0, 9))),
        );
        parent.add_servfail(name("www.lab.test."), RecordType::AAAA);
        let a = Authority::new(vec![parent]);
        for mode in [Mode::Authoritative, Mode::Validating] {
            let r = a.respond(&query("www.lab.test.", RecordType::AAAA, true), mode);
            assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
            let r = a.respond(&query("www.lab.test.", RecordType::A, true), mode);
            assert_eq!(r.metadata.response_code, ResponseCode::NoError);
            assert_eq!(r.answers.len(), 2);
        }
    }

    #[test]
    fn outside_names_are_refused() {
        let a = authority();
        let r = a.respond(
            &query("example.com.", RecordType::A, false),
            Mode::Authoritative,
        );
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    }
}
