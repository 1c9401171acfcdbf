//! `_mta-sts` TXT records as a DNS answer carries them (one record per line of the input).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxray_mtasts::parse_sts_txt;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let records: Vec<String> = text.split('\n').map(str::to_owned).collect();
    if let Ok(txt) = parse_sts_txt(&records) {
        assert!(
            (1..=32).contains(&txt.id.len()) && txt.id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "an accepted id breaks RFC 8461 §3.1: {:?}",
            txt.id
        );
    }
});
