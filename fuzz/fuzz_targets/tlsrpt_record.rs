//! `_smtp._tls` TXT records (RFC 8460 TLS-RPT), one record per line of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxray_mtasts::parse_tlsrpt;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let records: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let r = parse_tlsrpt(&records);
    assert_eq!(
        r.valid,
        r.error.is_none(),
        "valid and error disagree: {r:?}"
    );
    if r.valid {
        assert!(!r.rua.is_empty(), "a valid record without a usable rua");
    }
});
