//! STARTTLS stripping signals (DESIGN.md vocabulary), computed from one session's
//! observations. Pure functions: the raw greeting and EHLO bytes are kept in the record so
//! new signals can be computed from old data.

use mxray_model::{ProbeErrorClass, StrippingSignal};

use crate::machine::Observations;
use crate::reply::Reply;

/// Whether an EHLO keyword is a masked `STARTTLS`: the Cisco ASA / PIX "X-pattern" family
/// (`XXXXXXXA`, `XXXXXXXX`, ...), i.e. an 8-letter keyword (as long as `STARTTLS`) made of
/// at least seven `X`s. Legitimate X-keywords (`XEXCH50`, `XCLIENT`, `X-ANONYMOUSTLS`) do not
/// match.
pub fn is_masked_starttls(keyword: &str) -> bool {
    let kw = keyword.split(' ').next().unwrap_or("");
    kw.len() == 8
        && kw.bytes().all(|b| b.is_ascii_alphabetic())
        && kw.bytes().filter(|b| b.eq_ignore_ascii_case(&b'X')).count() >= 7
}

/// Whether a greeting or EHLO text is masked the way a Cisco PIX/ASA `inspect esmtp` masks it:
/// every character but `0`, `2` and white space replaced by `*` (Cisco's
/// `220 ****...*0*0*2****`), or (other middleboxes) by `X`. At least eight mask characters and
/// nothing else but those digits and blanks, so a decorative banner (`*** Authorized use only
/// ***`, a line of stars around text) never matches: it has letters.
pub fn is_masked_text(text: &str) -> bool {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let stars = chars.iter().filter(|&&c| c == '*').count();
    let xs = chars.iter().filter(|&&c| c == 'X').count();
    let asa = stars >= 8 && chars.iter().all(|&c| matches!(c, '*' | '0' | '2'));
    let x_mask = xs >= 8 && chars.iter().all(|&c| c == 'X');
    asa || x_mask
}

/// Whether every line of a reply is masked (a masking middlebox rewrites the whole reply; a
/// server's own decoration leaves at least one line of words).
fn reply_masked(reply: Option<&Reply>) -> bool {
    reply.is_some_and(|r| !r.lines.is_empty() && r.lines.iter().all(|l| is_masked_text(l)))
}

/// The signals one session shows by itself (DESIGN.md vocabulary). Signals that need to know
/// what a domain's policy requires (`missing_despite_policy`) are the domain verdict's:
/// a probe is shared by every domain using the address and records only what was observed.
///
/// - `starttls_mangled`: an X-pattern keyword while STARTTLS itself is absent (a server that
///   advertises STARTTLS intact beside an odd keyword has not been stripped);
/// - `banner_masked`: the greeting, or the first line of the EHLO reply, masked ASA/PIX-style;
/// - `starttls_rejected`: STARTTLS advertised, then refused with 4xx/5xx;
/// - `tls_failed_after_ready`: `220` to STARTTLS, then a broken handshake, unless the failure
///   is mxray's own TLS engine's limit (`tls_incompatible`: no common version, cipher, group,
///   or a key or signature the engine cannot verify; `tls_too_large`: a message over its size
///   limits);
/// - `starttls_forced_ok`: STARTTLS sent although not advertised, accepted, handshake done.
pub fn detect(obs: &Observations) -> Vec<StrippingSignal> {
    let mut out = Vec::new();
    // Implicit TLS (port 465): nothing travels in the clear for a path to rewrite, and a
    // failed handshake there follows no `220` (the greeting comes after TLS).
    if obs.implicit_tls {
        return out;
    }
    if !obs.starttls_advertised && obs.ehlo_keywords.iter().any(|k| is_masked_starttls(k)) {
        out.push(StrippingSignal::StarttlsMangled);
    }
    let ehlo_greeting_line = obs
        .ehlo
        .as_ref()
        .and_then(|r| r.lines.first())
        .is_some_and(|l| is_masked_text(l));
    if reply_masked(obs.greeting.as_ref()) || ehlo_greeting_line {
        out.push(StrippingSignal::BannerMasked);
    }
    if obs.starttls_advertised
        && obs
            .starttls_reply
            .as_ref()
            .is_some_and(|r| r.is_transient() || r.is_permanent())
    {
        out.push(StrippingSignal::StarttlsRejected);
    }
    let engine_limit = matches!(
        obs.error,
        Some((
            ProbeErrorClass::TlsIncompatible | ProbeErrorClass::TlsTooLarge,
            _
        ))
    );
    if obs.tls_failed && !engine_limit {
        out.push(StrippingSignal::TlsFailedAfterReady);
    }
    if obs.starttls_forced && obs.tls_completed {
        out.push(StrippingSignal::StarttlsForcedOk);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply::from_lines(code, lines)
    }

    #[test]
    fn cisco_x_patterns_are_masked_starttls() {
        for k in ["XXXXXXXA", "XXXXXXXX", "xxxxxxxa", "XXXXXXXB"] {
            assert!(is_masked_starttls(k), "{k}");
        }
        for k in [
            "STARTTLS",
            "XEXCH50",
            "XCLIENT",
            "X-ANONYMOUSTLS",
            "XXXXXXX",
            "XXXXXXXXX",
            "8BITMIME",
        ] {
            assert!(!is_masked_starttls(k), "{k}");
        }
    }

    #[test]
    fn masked_banners() {
        assert!(is_masked_text(
            "*******************************0*0*2******0***200*0*0*******2*0*0****"
        ));
        assert!(is_masked_text("********"));
        assert!(is_masked_text("XXXXXXXXXXXXXXXX"));
        assert!(!is_masked_text("mx.example.com ESMTP Postfix"));
        assert!(!is_masked_text("mx.example.com ESMTP ***"));
        assert!(!is_masked_text("****"), "too short to tell");
        // Decorative banners have words (DESIGN.md: not decorative asterisks).
        assert!(!is_masked_text("*** Authorized use only ***"));
        assert!(!is_masked_text(
            "****************** Welcome ******************"
        ));
        assert!(!is_masked_text("mx.example.com XXXXXXXXXXXXXXXX"));
    }

    #[test]
    fn mangled_session_yields_signals() {
        let obs = Observations {
            greeting: Some(reply(220, &["****************"])),
            ehlo: Some(reply(250, &["mx", "XXXXXXXA"])),
            ehlo_keywords: vec!["XXXXXXXA".into()],
            ..Default::default()
        };
        assert_eq!(
            detect(&obs),
            vec![
                StrippingSignal::StarttlsMangled,
                StrippingSignal::BannerMasked
            ]
        );
    }

    #[test]
    fn x_keyword_beside_an_intact_starttls_is_not_stripping() {
        let obs = Observations {
            greeting: Some(reply(220, &["mx.example ESMTP"])),
            ehlo: Some(reply(250, &["mx", "XXXXXXXA", "STARTTLS"])),
            ehlo_keywords: vec!["XXXXXXXA".into(), "STARTTLS".into()],
            starttls_advertised: true,
            starttls_reply: Some(reply(220, &["go"])),
            tls_completed: true,
            ..Default::default()
        };
        assert!(detect(&obs).is_empty());
    }

    #[test]
    fn decorative_multiline_banner_is_not_masked() {
        let obs = Observations {
            greeting: Some(reply(
                220,
                &[
                    "********************************",
                    "*** Authorized use only ***",
                    "mx.example ESMTP",
                ],
            )),
            ehlo: Some(reply(250, &["mx.example", "STARTTLS"])),
            ehlo_keywords: vec!["STARTTLS".into()],
            starttls_advertised: true,
            ..Default::default()
        };
        assert!(!detect(&obs).contains(&StrippingSignal::BannerMasked));
    }

    #[test]
    fn forced_starttls_that_completes_tls_is_its_own_signal() {
        let obs = Observations {
            ehlo: Some(reply(250, &["mx", "SIZE 1"])),
            ehlo_keywords: vec!["SIZE 1".into()],
            starttls_forced: true,
            starttls_reply: Some(reply(220, &["go"])),
            tls_completed: true,
            ..Default::default()
        };
        assert_eq!(detect(&obs), vec![StrippingSignal::StarttlsForcedOk]);
        // Refused (502): the server really has no STARTTLS; nothing is proven.
        let obs = Observations {
            ehlo: Some(reply(250, &["mx", "SIZE 1"])),
            starttls_forced: true,
            starttls_reply: Some(reply(502, &["unrecognized"])),
            ..Default::default()
        };
        assert!(detect(&obs).is_empty());
    }

    #[test]
    fn rejected_and_broken_starttls() {
        let obs = Observations {
            ehlo: Some(reply(250, &["mx", "STARTTLS"])),
            ehlo_keywords: vec!["STARTTLS".into()],
            starttls_advertised: true,
            starttls_reply: Some(reply(454, &["TLS not available"])),
            ..Default::default()
        };
        assert_eq!(detect(&obs), vec![StrippingSignal::StarttlsRejected]);
        let obs = Observations {
            starttls_advertised: true,
            starttls_reply: Some(reply(220, &["go"])),
            tls_failed: true,
            error: Some((ProbeErrorClass::TlsError, "x".into())),
            ..Default::default()
        };
        assert_eq!(detect(&obs), vec![StrippingSignal::TlsFailedAfterReady]);
        let obs = Observations {
            tls_failed: true,
            error: Some((ProbeErrorClass::TlsIncompatible, "TLS 1.0 only".into())),
            ..Default::default()
        };
        assert!(detect(&obs).is_empty());
    }

    #[test]
    fn clean_session_has_no_signals() {
        let obs = Observations {
            greeting: Some(reply(220, &["mx.example ESMTP"])),
            ehlo: Some(reply(250, &["mx.example", "STARTTLS"])),
            ehlo_keywords: vec!["STARTTLS".into()],
            starttls_advertised: true,
            starttls_reply: Some(reply(220, &["go"])),
            tls_completed: true,
            ..Default::default()
        };
        assert!(detect(&obs).is_empty());
    }
}
