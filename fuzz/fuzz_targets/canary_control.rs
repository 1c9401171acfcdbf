//! The canary's control protocol and its SMTP server side, both read from hostile peers: a
//! control request line (raw, and authenticated with the right key) through the endpoint,
//! a control answer line through the client's check and JSON decoding, a signed expectation
//! file, and the lines of an SMTP client session through the canary's server session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxray_canary::auth::{self, answer_line, open_answer};
use mxray_canary::server::{fuzz_control_request, ClientLog};
use mxray_canary::session::ServerSession;
use mxray_canary::{CannedReplies, ControlKey, Expectation, SignedExpectation};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let cut = usize::from(sel).min(rest.len());
    let (first, second) = rest.split_at(cut);
    // Server side: one request, with a log that holds `second`.
    fuzz_control_request(first, second);
    // Client side: an answer that is not authenticated must be refused or called forged.
    let key = ControlKey::from_bytes([9; auth::KEY_LEN]);
    let nonce = [4u8; auth::NONCE_LEN];
    let _ = open_answer(&key, "EXPECT", &nonce, rest);
    // An authenticated answer carrying arbitrary JSON: the MAC round-trips, the decoding is safe.
    if let Ok(json) = std::str::from_utf8(second) {
        if !json.contains(['\r', '\n']) {
            let line = answer_line(&key, "LOG 127.0.0.1:1", &nonce, json);
            let opened = open_answer(
                &key,
                "LOG 127.0.0.1:1",
                &nonce,
                line.trim_end_matches('\n').as_bytes(),
            );
            assert_eq!(
                opened,
                Ok(json),
                "an answer signed with the key does not open"
            );
            let _ = serde_json::from_str::<ClientLog>(json);
            let _ = serde_json::from_str::<Expectation>(json);
        }
    }
    let _ = SignedExpectation::open(rest, &key);
    // The canary's SMTP server session, one line at a time.
    let mut session = ServerSession::new(CannedReplies::default(), sel & 1 == 1);
    for line in rest.split(|&b| b == b'\n').take(64) {
        let _ = session.on_line(line);
    }
});
