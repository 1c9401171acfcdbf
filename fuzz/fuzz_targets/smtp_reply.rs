//! SMTP replies as a server sends them: the incremental reply parser (with the scanner's own
//! caps), the EHLO keyword list, the STARTTLS detector and the masked-keyword detector.
//! Property: the parse does not depend on how the bytes were split into reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxray_smtp::reply::{advertises_starttls, ehlo_keywords, Reply, ReplyError, ReplyParser};
use mxray_smtp::signals::{is_masked_starttls, is_masked_text};
use mxray_smtp::ProbeConfig;

/// The replies of `data` delivered in reads split at `cuts` (ascending offsets).
fn parse(data: &[u8], cuts: &[usize]) -> Vec<Result<Reply, ReplyError>> {
    let cfg = ProbeConfig::default();
    let mut p = ReplyParser::new(cfg.limits.max_line, cfg.limits.max_reply);
    let mut out = Vec::new();
    let mut start = 0;
    let ends = cuts.iter().copied().chain(std::iter::once(data.len()));
    for end in ends {
        let piece = &data[start..end];
        start = end;
        p.feed(piece);
        out.extend(p.complete_replies());
        // The driver stops reading at the first error.
        if out.last().is_some_and(|r| r.is_err()) {
            return out;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    // Two selector bytes pick where the reads end (the driver reads whatever the kernel has).
    let [a, b, wire @ ..] = data else {
        return;
    };
    let cut = |x: u8| wire.len() * usize::from(x) / 256;
    let mut cuts = [cut(*a), cut(*b)];
    cuts.sort_unstable();
    let whole = parse(wire, &[]);
    assert_eq!(
        whole,
        parse(wire, &cuts),
        "the parse depends on the read boundaries"
    );
    for reply in whole.iter().flatten() {
        let keywords = ehlo_keywords(reply);
        let _ = advertises_starttls(&keywords);
        for k in &keywords {
            let _ = is_masked_starttls(k);
        }
        let _ = is_masked_text(&reply.text());
        let _ = reply.display_lines();
        let _ = reply.raw_lossy();
    }
});
