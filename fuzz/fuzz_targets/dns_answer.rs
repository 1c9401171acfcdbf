//! A UDP datagram on a query's socket, as the resolver (or anyone on the path) sends it: the
//! classification (reply, stray, garbled, oversized), then on a reply everything the collector
//! reads from it: rcode class, CNAME chain, Extended DNS Errors, AD-mode status, and the MX,
//! TLSA and TXT data. The query's ID and question come from the datagram itself half the time,
//! so that the fuzzer gets past the "not for this query" checks.
#![no_main]

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use libfuzzer_sys::fuzz_target;
use mxray_dns::wire::{
    ad_status, display_name, ede_of, follow, join_txt, outcome_of, tlsa_record, Datagram,
};

const QTYPES: [RecordType; 6] = [
    RecordType::MX,
    RecordType::TLSA,
    RecordType::TXT,
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (sel, wire) = (data[0], &data[1..]);
    let advertised = [512usize, 1232, 4096][usize::from(sel % 3)];
    let mut qtype = QTYPES[usize::from((sel >> 2) % 6)];
    let mut name = Name::from_ascii("example.com.").expect("a valid name");
    let mut id = u16::from_be_bytes([wire[0], wire[1]]);
    if sel & 0x80 == 0 {
        if let Ok(m) = Message::from_vec(wire) {
            if let [q] = m.queries.as_slice() {
                name = q.name.clone();
                qtype = q.query_type;
            }
        }
    } else {
        id ^= 1;
    }
    match Datagram::classify(wire, advertised, id, &name, qtype) {
        Datagram::Reply(msg) => {
            let ede = ede_of(&msg);
            let _ = ad_status(&msg, &ede);
            for e in &ede {
                let _ = e.render();
                let _ = e.is_bogus();
            }
            let followed = follow(&msg, &name, qtype);
            assert!(followed.chain.len() <= mxray_dns::wire::MAX_CNAME_HOPS + 1);
            let _ = outcome_of(msg.metadata.response_code, !followed.records.is_empty());
            let _ = display_name(&followed.last);
            for r in &followed.records {
                match &r.data {
                    RData::MX(mx) => {
                        let _ = display_name(&mx.exchange);
                    }
                    RData::TXT(t) => {
                        let _ = join_txt(&t.txt_data);
                    }
                    other => {
                        if let Some(t) = tlsa_record(other) {
                            assert!(
                                t.data.len() % 2 == 0
                                    && t.data.bytes().all(|b| b.is_ascii_hexdigit())
                            );
                        }
                    }
                }
            }
        }
        Datagram::Oversized => assert!(wire.len() > advertised),
        Datagram::Garbled(_) | Datagram::Stray(_) => {}
    }
});
