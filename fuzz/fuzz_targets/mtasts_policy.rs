//! An MTA-STS policy as the HTTPS server sends it: the response checks (status, media type,
//! redirect), the policy body parser, the `mx` pattern matcher and the bounded log summary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxray_mtasts::{
    check_media_type, check_response, mx_pattern_matches, mx_patterns_for_log, parse_policy,
};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // The first line doubles as a Content-Type / Location header value.
    let header = text.lines().next().unwrap_or("");
    let _ = check_media_type(Some(header));
    let status = [200u16, 204, 301, 302, 404, 500][usize::from(sel % 6)];
    let _ = check_response(status, Some(header), Some(header));
    let parsed = parse_policy(&text);
    if let Ok(policy) = &parsed.policy {
        assert!(
            policy.max_age <= mxray_mtasts::MAX_AGE_LIMIT,
            "max_age over RFC 8461's bound"
        );
        let summary = mx_patterns_for_log(&policy.mx);
        assert!(
            summary.len() <= 1024,
            "unbounded log line: {} bytes",
            summary.len()
        );
        for host in ["mx.example.com", "example.com", header] {
            let _ = policy.matching_pattern(host);
        }
    }
    for line in text.lines().take(8) {
        let _ = mx_pattern_matches(line, "mx1.example.com");
        let _ = mx_pattern_matches("*.example.com", line);
    }
});
