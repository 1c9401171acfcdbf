//! Pure DNS message logic: building queries, checking replies, reading rcodes, flags, Extended
//! DNS Errors, CNAME chains and DNSSEC proofs. No I/O.

use hickory_proto::dnssec::Proof;
use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use mxray_model::{DnsOutcome, DnssecStatus, TlsaRecord};

/// Longest CNAME chain followed (across responses) before giving up as `malformed`.
pub const MAX_CNAME_HOPS: usize = 8;

/// Flags of one outgoing query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryFlags {
    /// EDNS DO bit: ask for RRSIGs and the AD bit.
    pub dnssec_ok: bool,
    /// CD bit: ask a validating resolver not to validate.
    pub checking_disabled: bool,
    /// EDNS UDP payload size advertised.
    pub edns_payload: u16,
}

/// Encodes a query with RD set (and AD, RFC 6840 §5.7, when DO is set).
pub fn build_query(
    id: u16,
    name: &Name,
    qtype: RecordType,
    flags: QueryFlags,
) -> Result<Vec<u8>, String> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name.clone(), qtype));
    msg.metadata.recursion_desired = true;
    msg.metadata.checking_disabled = flags.checking_disabled;
    msg.metadata.authentic_data = flags.dnssec_ok;
    let mut edns = Edns::new();
    edns.set_max_payload(flags.edns_payload.max(512));
    edns.set_dnssec_ok(flags.dnssec_ok);
    msg.set_edns(edns);
    msg.to_vec().map_err(|e| e.to_string())
}

/// Why a datagram was not accepted as the reply to our query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// Not a DNS message at all.
    Garbage(String),
    /// A DNS message, but not a response to our query (ID, opcode or question differ).
    Foreign(String),
}

/// Decodes a reply and checks that it answers our query: a response, same ID, same single
/// question (name compared case-insensitively, type equal, class IN).
pub fn parse_reply(
    buf: &[u8],
    id: u16,
    name: &Name,
    qtype: RecordType,
) -> Result<Message, ReplyError> {
    if buf.len() < 12 {
        return Err(ReplyError::Garbage(format!("{} bytes", buf.len())));
    }
    // Cheap ID check before the full decode: off-path junk is dropped early.
    let wire_id = u16::from_be_bytes([buf[0], buf[1]]);
    if wire_id != id {
        return Err(ReplyError::Foreign(format!("id {wire_id} != {id}")));
    }
    let msg = Message::from_vec(buf).map_err(|e| ReplyError::Garbage(e.to_string()))?;
    if msg.metadata.message_type != MessageType::Response {
        return Err(ReplyError::Foreign("not a response".into()));
    }
    if msg.metadata.op_code != OpCode::Query {
        return Err(ReplyError::Foreign("opcode".into()));
    }
    match msg.queries.as_slice() {
        [q] if question_matches(q, name, qtype) => Ok(msg),
        // Some servers omit the question on errors (FORMERR, NOTIMP, REFUSED): accept those.
        [] if msg.metadata.response_code != ResponseCode::NoError => Ok(msg),
        _ => Err(ReplyError::Foreign("question differs".into())),
    }
}

fn question_matches(q: &Query, name: &Name, qtype: RecordType) -> bool {
    q.query_type == qtype && q.query_class == DNSClass::IN && q.name.eq_ignore_root(name)
}

/// What one UDP datagram received on a query's socket is, for that query.
#[derive(Debug, Clone, PartialEq)]
pub enum Datagram {
    /// The reply to the query (it may still have TC set).
    Reply(Message),
    /// Our ID and question, but longer than the EDNS payload size we advertised: the receive
    /// buffer (one byte longer than that size) cut it, so it cannot be read whole. The server
    /// ignored our size without setting TC; the answer is asked for again over TCP.
    Oversized,
    /// A response with our ID that does not decode (a corrupted or hostile reply). Ignored
    /// while waiting; it decides the attempt's class only if nothing else arrives.
    Garbled(String),
    /// Not for this query: too short, another ID, not a response, another opcode or question.
    Stray(String),
}

impl Datagram {
    /// Classifies `buf` (the bytes received) for the query `id`/`name`/`qtype` that
    /// advertised an EDNS payload size of `advertised` bytes.
    pub fn classify(
        buf: &[u8],
        advertised: usize,
        id: u16,
        name: &Name,
        qtype: RecordType,
    ) -> Datagram {
        if buf.len() < 12 {
            return Datagram::Stray(format!("{} bytes", buf.len()));
        }
        let wire_id = u16::from_be_bytes([buf[0], buf[1]]);
        if wire_id != id {
            return Datagram::Stray(format!("id {wire_id} != {id}"));
        }
        if buf[2] & 0x80 == 0 {
            return Datagram::Stray("not a response".into());
        }
        if buf.len() > advertised {
            // Only the header and the question can be trusted to be complete (the question
            // sits in the first 12 + 4 + 255 bytes; `advertised` is at least 512).
            let mut dec = BinDecoder::new(buf);
            let Ok(header) = Header::read(&mut dec) else {
                return Datagram::Stray("header".into());
            };
            if header.metadata.op_code != OpCode::Query || header.counts.queries != 1 {
                return Datagram::Stray("oversized, not a single-question query response".into());
            }
            return match Query::read(&mut dec) {
                Ok(q) if question_matches(&q, name, qtype) => Datagram::Oversized,
                Ok(_) => Datagram::Stray("question differs".into()),
                Err(e) => Datagram::Garbled(format!("oversized, question: {e}")),
            };
        }
        match parse_reply(buf, id, name, qtype) {
            Ok(m) => Datagram::Reply(m),
            Err(ReplyError::Foreign(d)) => Datagram::Stray(d),
            Err(ReplyError::Garbage(d)) => Datagram::Garbled(d),
        }
    }
}

/// The outcome class of an rcode (for a reply that parsed).
pub fn outcome_of(rcode: ResponseCode, has_records: bool) -> DnsOutcome {
    match rcode {
        ResponseCode::NoError if has_records => DnsOutcome::NoError,
        ResponseCode::NoError => DnsOutcome::NoData,
        ResponseCode::NXDomain => DnsOutcome::NxDomain,
        ResponseCode::ServFail => DnsOutcome::ServFail,
        ResponseCode::Refused => DnsOutcome::Refused,
        ResponseCode::FormErr => DnsOutcome::Malformed,
        _ => DnsOutcome::Other,
    }
}

/// Names of the RFC 8914 info codes, for records that carry no EXTRA-TEXT.
fn ede_name(code: u16) -> &'static str {
    match code {
        0 => "Other Error",
        1 => "Unsupported DNSKEY Algorithm",
        2 => "Unsupported DS Digest Type",
        3 => "Stale Answer",
        4 => "Forged Answer",
        5 => "DNSSEC Indeterminate",
        6 => "DNSSEC Bogus",
        7 => "Signature Expired",
        8 => "Signature Not Yet Valid",
        9 => "DNSKEY Missing",
        10 => "RRSIGs Missing",
        11 => "No Zone Key Bit Set",
        12 => "NSEC Missing",
        13 => "Cached Error",
        14 => "Not Ready",
        15 => "Blocked",
        16 => "Censored",
        17 => "Filtered",
        18 => "Prohibited",
        19 => "Stale NXDomain Answer",
        20 => "Not Authoritative",
        21 => "Not Supported",
        22 => "No Reachable Authority",
        23 => "Network Error",
        24 => "Invalid Data",
        _ => "Unassigned",
    }
}

/// One Extended DNS Error (RFC 8914).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ede {
    /// INFO-CODE.
    pub code: u16,
    /// EXTRA-TEXT (lossy UTF-8, capped at 200 bytes).
    pub text: String,
}

impl Ede {
    /// `code: text` as written to records (`6: DNSSEC Bogus` when the text is empty).
    pub fn render(&self) -> String {
        if self.text.is_empty() {
            format!("{}: {}", self.code, ede_name(self.code))
        } else {
            format!("{}: {}", self.code, self.text)
        }
    }

    /// Info codes that say DNSSEC validation failed (RFC 8914 §4.7-4.13).
    pub fn is_bogus(&self) -> bool {
        matches!(self.code, 6..=12)
    }
}

/// The Extended DNS Errors of a reply.
pub fn ede_of(msg: &Message) -> Vec<Ede> {
    let Some(edns) = msg.edns.as_ref() else {
        return Vec::new();
    };
    edns.options()
        .options
        .iter()
        .filter_map(|(_, opt)| match opt {
            EdnsOption::Unknown(15, data) if data.len() >= 2 => {
                let text = &data[2..data.len().min(202)];
                Some(Ede {
                    code: u16::from_be_bytes([data[0], data[1]]),
                    text: String::from_utf8_lossy(text).trim().to_owned(),
                })
            }
            _ => None,
        })
        .collect()
}

/// What one reply says about `qname`/`qtype` after following CNAMEs inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Followed {
    /// CNAME targets followed inside this reply, in order.
    pub chain: Vec<Name>,
    /// The name the chain ended at.
    pub last: Name,
    /// Records of `qtype` owned by `last`.
    pub records: Vec<Record>,
    /// The CNAME records that made up the chain.
    pub cnames: Vec<Record>,
    /// The chain came back to a name already seen.
    pub looped: bool,
}

/// Follows the CNAME chain from `qname` through the answer section (RFC 1034 §3.6.2) and
/// collects the `qtype` records at its end. Bounded by [`MAX_CNAME_HOPS`].
pub fn follow(msg: &Message, qname: &Name, qtype: RecordType) -> Followed {
    let mut last = qname.clone();
    let mut chain = Vec::new();
    let mut cnames = Vec::new();
    let mut looped = false;
    if qtype != RecordType::CNAME {
        for _ in 0..=MAX_CNAME_HOPS {
            let next = msg.answers.iter().find_map(|r| match &r.data {
                RData::CNAME(target) if r.name.eq_ignore_root(&last) => {
                    Some((r.clone(), target.0.clone()))
                }
                _ => None,
            });
            let Some((record, target)) = next else { break };
            if target.eq_ignore_root(qname)
                || chain.iter().any(|n: &Name| n.eq_ignore_root(&target))
            {
                looped = true;
                break;
            }
            cnames.push(record);
            chain.push(target.clone());
            last = target;
            if chain.len() > MAX_CNAME_HOPS {
                looped = true;
                break;
            }
        }
    }
    let records = msg
        .answers
        .iter()
        .filter(|r| r.record_type() == qtype && r.name.eq_ignore_root(&last))
        .cloned()
        .collect();
    Followed {
        chain,
        last,
        records,
        cnames,
        looped,
    }
}

/// Status in `ad` mode, from the reply's rcode, AD bit and Extended DNS Errors.
pub fn ad_status(msg: &Message, ede: &[Ede]) -> DnssecStatus {
    match msg.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain if msg.metadata.authentic_data => {
            DnssecStatus::Secure
        }
        ResponseCode::NoError | ResponseCode::NXDomain => DnssecStatus::Insecure,
        ResponseCode::ServFail if ede.iter().any(Ede::is_bogus) => DnssecStatus::Bogus,
        _ => DnssecStatus::Indeterminate,
    }
}

/// Maps a hickory proof to the mxray vocabulary.
pub fn status_of_proof(proof: Proof) -> DnssecStatus {
    match proof {
        Proof::Secure => DnssecStatus::Secure,
        Proof::Insecure => DnssecStatus::Insecure,
        Proof::Bogus => DnssecStatus::Bogus,
        _ => DnssecStatus::Indeterminate,
    }
}

/// Status in `validate` mode of a validated reply: for a positive answer the weakest proof of
/// the CNAMEs and records used; for a denial the weakest proof of the authority section's
/// NSEC/NSEC3/SOA records (an empty authority section was accepted by the validator only as
/// provably insecure).
pub fn validated_status(msg: &Message, followed: &Followed) -> DnssecStatus {
    let used: Vec<&Record> = followed.cnames.iter().chain(&followed.records).collect();
    if !followed.records.is_empty() || !used.is_empty() {
        // The records in `followed` are clones taken after validation: they carry the proof.
        return used
            .iter()
            .map(|r| status_of_proof(r.proof))
            .fold(DnssecStatus::Secure, weaker);
    }
    let auth: Vec<&Record> = msg
        .authorities
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .collect();
    if auth.is_empty() {
        return DnssecStatus::Insecure;
    }
    auth.iter()
        .map(|r| status_of_proof(r.proof))
        .fold(DnssecStatus::Secure, weaker)
}

fn rank(s: DnssecStatus) -> u8 {
    match s {
        DnssecStatus::Bogus => 0,
        DnssecStatus::Indeterminate => 1,
        DnssecStatus::Insecure => 2,
        DnssecStatus::Secure => 3,
    }
}

/// The weaker of two statuses: bogus < indeterminate < insecure < secure.
pub fn weaker(a: DnssecStatus, b: DnssecStatus) -> DnssecStatus {
    if rank(a) <= rank(b) {
        a
    } else {
        b
    }
}

/// The better of two outcomes, for "the better of A and AAAA".
pub fn better_outcome(a: DnsOutcome, b: DnsOutcome) -> DnsOutcome {
    fn r(o: DnsOutcome) -> u8 {
        match o {
            DnsOutcome::NoError => 9,
            DnsOutcome::NoData => 8,
            DnsOutcome::NxDomain => 7,
            DnsOutcome::ServFail => 6,
            DnsOutcome::Refused => 5,
            DnsOutcome::Truncated => 4,
            DnsOutcome::Malformed => 3,
            DnsOutcome::Timeout => 2,
            DnsOutcome::Other => 1,
            DnsOutcome::NotQueried => 0,
        }
    }
    if r(a) >= r(b) {
        a
    } else {
        b
    }
}

/// Joins the strings of one TXT record (RFC 7208 §3.3 style: concatenated, no separator),
/// lossy UTF-8.
pub fn join_txt(data: &[Box<[u8]>]) -> String {
    let bytes: Vec<u8> = data.iter().flat_map(|s| s.iter().copied()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The `dns_host.tlsa` entry of a TLSA RDATA (certificate data as lower-case hex); `None` for
/// any other record type.
pub fn tlsa_record(rdata: &RData) -> Option<TlsaRecord> {
    match rdata {
        RData::TLSA(t) => Some(TlsaRecord {
            usage: u8::from(t.cert_usage),
            selector: u8::from(t.selector),
            matching_type: u8::from(t.matching),
            data: hex::encode(&t.cert_data),
        }),
        _ => None,
    }
}

/// Lower-case presentation form without the trailing dot (`.` for the root).
pub fn display_name(name: &Name) -> String {
    let s = name.to_lowercase().to_ascii();
    match s.strip_suffix('.') {
        Some("") | None => s,
        Some(t) => t.to_owned(),
    }
}

/// Parses a user- or record-supplied name into an absolute name.
pub fn parse_name(s: &str) -> Result<Name, String> {
    let t = s.trim();
    if t.is_empty() || t.len() > 253 + 1 {
        return Err(format!("bad name {t:?}"));
    }
    let mut n = Name::from_utf8(t).map_err(|e| format!("bad name {t:?}: {e}"))?;
    n.set_fqdn(true);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME};
    use std::net::Ipv4Addr;

    fn name(s: &str) -> Name {
        parse_name(s).expect("name")
    }

    fn response(q: &str, qtype: RecordType, answers: Vec<Record>) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(name(q), qtype));
        for a in answers {
            m.add_answer(a);
        }
        m
    }

    fn cname(from: &str, to: &str) -> Record {
        Record::from_rdata(name(from), 60, RData::CNAME(CNAME(name(to))))
    }

    fn a(owner: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(name(owner), 60, RData::A(A(Ipv4Addr::from(ip))))
    }

    #[test]
    fn query_roundtrips_and_reply_checks_id_and_question() {
        let flags = QueryFlags {
            dnssec_ok: true,
            checking_disabled: false,
            edns_payload: 1232,
        };
        let q = build_query(7, &name("Example.test"), RecordType::MX, flags).expect("build");
        let parsed = Message::from_vec(&q).expect("decode");
        assert!(parsed.metadata.recursion_desired);
        assert!(parsed.edns.as_ref().expect("edns").flags().dnssec_ok);

        let reply = response("EXAMPLE.test", RecordType::MX, vec![])
            .to_vec()
            .expect("enc");
        assert!(parse_reply(&reply, 7, &name("example.test"), RecordType::MX).is_ok());
        assert!(matches!(
            parse_reply(&reply, 8, &name("example.test"), RecordType::MX),
            Err(ReplyError::Foreign(_))
        ));
        assert!(matches!(
            parse_reply(&reply, 7, &name("other.test"), RecordType::MX),
            Err(ReplyError::Foreign(_))
        ));
        assert!(matches!(
            parse_reply(&reply, 7, &name("example.test"), RecordType::A),
            Err(ReplyError::Foreign(_))
        ));
        // Our own query echoed back is not a response.
        assert!(parse_reply(&q, 7, &name("example.test"), RecordType::MX).is_err());
        assert!(matches!(
            parse_reply(&[0, 7, 1, 2, 3], 7, &name("x.test"), RecordType::A),
            Err(ReplyError::Garbage(_))
        ));
        let mut junk = vec![0u8, 7];
        junk.extend(std::iter::repeat_n(0xff, 40));
        assert!(matches!(
            parse_reply(&junk, 7, &name("x.test"), RecordType::A),
            Err(ReplyError::Garbage(_))
        ));
        // Another class is another question.
        let mut chaos = response("example.test", RecordType::MX, vec![]);
        chaos.queries[0].query_class = hickory_proto::rr::DNSClass::CH;
        let chaos = chaos.to_vec().expect("enc");
        assert!(matches!(
            parse_reply(&chaos, 7, &name("example.test"), RecordType::MX),
            Err(ReplyError::Foreign(_))
        ));
    }

    #[test]
    fn datagrams_are_classified_for_their_query() {
        let q = name("example.test");
        let classify = |b: &[u8]| Datagram::classify(b, 512, 7, &q, RecordType::MX);
        let many: Vec<Record> = (0..100)
            .map(|i| {
                Record::from_rdata(
                    name("example.test"),
                    60,
                    RData::MX(hickory_proto::rr::rdata::MX::new(
                        10,
                        name(&format!("mx{i}.some-long-label.example.test")),
                    )),
                )
            })
            .collect();
        let big = response("example.test", RecordType::MX, many)
            .to_vec()
            .expect("enc");
        assert!(big.len() > 513, "{}", big.len());
        let small = response("Example.TEST", RecordType::MX, vec![])
            .to_vec()
            .expect("enc");
        assert!(matches!(classify(&small), Datagram::Reply(_)));
        // Cut by a 513-byte receive buffer: our ID and question, so ask again over TCP.
        assert_eq!(classify(&big[..513]), Datagram::Oversized);
        // Oversized but for another question or ID: a stray, not a reason to use TCP.
        let other = response("other.test", RecordType::MX, vec![])
            .to_vec()
            .expect("enc");
        let mut padded = other.clone();
        padded.resize(600, 0);
        assert!(matches!(classify(&padded), Datagram::Stray(_)));
        let mut wrong_id = big.clone();
        wrong_id[1] = 8;
        assert!(matches!(classify(&wrong_id[..513]), Datagram::Stray(_)));
        // Our ID, undecodable: garbled; short or not a response: stray.
        let mut junk = vec![0u8, 7, 0x81, 0x80];
        junk.extend(std::iter::repeat_n(0xff, 40));
        assert!(matches!(classify(&junk), Datagram::Garbled(_)));
        assert!(matches!(classify(&[0, 7, 0x81]), Datagram::Stray(_)));
        let mut query_bit = junk.clone();
        query_bit[2] = 0x01;
        assert!(matches!(classify(&query_bit), Datagram::Stray(_)));
    }

    #[test]
    fn follows_cname_chain_in_one_reply() {
        let msg = response(
            "mx.a.test",
            RecordType::A,
            vec![
                cname("mx.a.test", "b.test"),
                cname("b.test", "c.test"),
                a("c.test", [192, 0, 2, 1]),
            ],
        );
        let f = follow(&msg, &name("mx.a.test"), RecordType::A);
        assert_eq!(f.chain, vec![name("b.test"), name("c.test")]);
        assert_eq!(f.records.len(), 1);
        assert!(!f.looped);
    }

    #[test]
    fn detects_cname_loop() {
        let msg = response(
            "a.test",
            RecordType::A,
            vec![cname("a.test", "b.test"), cname("b.test", "a.test")],
        );
        let f = follow(&msg, &name("a.test"), RecordType::A);
        assert!(f.looped);
        assert!(f.records.is_empty());
    }

    #[test]
    fn cname_to_elsewhere_leaves_no_records() {
        let msg = response(
            "a.test",
            RecordType::A,
            vec![cname("a.test", "other.example")],
        );
        let f = follow(&msg, &name("a.test"), RecordType::A);
        assert_eq!(f.last, name("other.example"));
        assert!(f.records.is_empty());
        assert!(!f.looped);
    }

    #[test]
    fn ad_mode_statuses() {
        let mut m = response("a.test", RecordType::A, vec![]);
        assert_eq!(ad_status(&m, &[]), DnssecStatus::Insecure);
        m.metadata.authentic_data = true;
        assert_eq!(ad_status(&m, &[]), DnssecStatus::Secure);
        m.metadata.response_code = ResponseCode::ServFail;
        assert_eq!(ad_status(&m, &[]), DnssecStatus::Indeterminate);
        let bogus = Ede {
            code: 6,
            text: String::new(),
        };
        assert_eq!(
            ad_status(&m, std::slice::from_ref(&bogus)),
            DnssecStatus::Bogus
        );
        assert_eq!(bogus.render(), "6: DNSSEC Bogus");
    }

    #[test]
    fn weaker_orders_statuses() {
        use DnssecStatus::*;
        assert_eq!(weaker(Secure, Insecure), Insecure);
        assert_eq!(weaker(Insecure, Indeterminate), Indeterminate);
        assert_eq!(weaker(Bogus, Secure), Bogus);
        assert_eq!(weaker(Secure, Secure), Secure);
    }

    #[test]
    fn txt_strings_are_concatenated() {
        let parts: Vec<Box<[u8]>> = vec![
            b"v=STSv1; ".to_vec().into_boxed_slice(),
            b"id=2024".to_vec().into_boxed_slice(),
        ];
        assert_eq!(join_txt(&parts), "v=STSv1; id=2024");
    }

    #[test]
    fn names_display_lowercase_without_dot() {
        assert_eq!(display_name(&name("MX.Example.TEST.")), "mx.example.test");
        assert_eq!(display_name(&Name::root()), ".");
        assert!(parse_name("").is_err());
        assert!(parse_name("a..b").is_err());
    }

    #[test]
    fn rcodes_map_to_outcomes() {
        assert_eq!(outcome_of(ResponseCode::NoError, true), DnsOutcome::NoError);
        assert_eq!(outcome_of(ResponseCode::NoError, false), DnsOutcome::NoData);
        assert_eq!(
            outcome_of(ResponseCode::NXDomain, false),
            DnsOutcome::NxDomain
        );
        assert_eq!(
            outcome_of(ResponseCode::Refused, false),
            DnsOutcome::Refused
        );
        assert_eq!(
            better_outcome(DnsOutcome::Timeout, DnsOutcome::NoData),
            DnsOutcome::NoData
        );
    }
}
