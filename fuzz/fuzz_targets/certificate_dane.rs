//! Certificates as a server sends them (DER from the TLS handshake): the `certificate`
//! record (subject, issuer, SANs, validity, SPKI hash, key type) and DANE matching of a TLSA
//! record (usage, selector, matching type from the input) against it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxray_model::TlsaRecord;
use mxray_smtp::cert::{certificate_record, key_description};
use mxray_smtp::dane::{is_usable, matches_cert, names_match};
use rustls_pki_types::CertificateDer;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, der) = data.split_at(4);
    let rec = certificate_record(der, uuid::Uuid::nil(), "fuzz");
    let _ = key_description(der);
    let cert = CertificateDer::from(der.to_vec());
    let data_len = usize::from(head[3] % 65);
    let tlsa = TlsaRecord {
        usage: head[0] % 5,
        selector: head[1] % 3,
        matching_type: head[2] % 4,
        data: der
            .iter()
            .take(data_len)
            .map(|b| format!("{b:02x}"))
            .collect(),
    };
    let _ = is_usable(&tlsa);
    let _ = matches_cert(&tlsa, &cert);
    let _ = names_match(&cert, &["mx.example.com", "example.com"]);
    let _ = rec;
});
