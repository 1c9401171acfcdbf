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

/// Whether a greeting or EHLO text is masked: at least four mask characters, and `*`s make
/// up half or more of the non-blank characters (Cisco's `220 ****...*0*0*2****`), or the text
/// is nothing but `X`s.
pub fn is_masked_text(text: &str) -> bool {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.len() < 4 {
        return false;
    }
    let stars = chars.iter().filter(|&&c| c == '*').count();
    let xs = chars.iter().filter(|&&c| c == 'X').count();
    stars * 2 >= chars.len() || xs == chars.len()
}

fn reply_masked(reply: Option<&Reply>) -> bool {
    reply.is_some_and(|r| is_masked_text(&r.text()))
}

/// The signals of one session. `tls_required_by_policy`: the caller knows that a secure TLSA
/// RRset or an enforce MTA-STS policy requires TLS for this host.
pub fn detect(obs: &Observations, tls_required_by_policy: bool) -> Vec<StrippingSignal> {
    let mut out = Vec::new();
    if obs.ehlo_keywords.iter().any(|k| is_masked_starttls(k)) {
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
    let incompatible = matches!(obs.error, Some((ProbeErrorClass::TlsIncompatible, _)));
    if obs.tls_failed && !incompatible {
        out.push(StrippingSignal::TlsFailedAfterReady);
    }
    let saw_ehlo = obs.ehlo.as_ref().is_some_and(|r| r.code == 250);
    if tls_required_by_policy && saw_ehlo && !obs.starttls_advertised {
        out.push(StrippingSignal::MissingDespitePolicy);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply {
            code,
            lines: lines.iter().map(|s| s.to_string()).collect(),
            raw: Vec::new(),
        }
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
        assert!(is_masked_text("****"));
        assert!(is_masked_text("XXXXXXXXXXXXXXXX"));
        assert!(!is_masked_text("mx.example.com ESMTP Postfix"));
        assert!(!is_masked_text("mx.example.com ESMTP ***"));
        assert!(!is_masked_text("**"));
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
            detect(&obs, true),
            vec![
                StrippingSignal::StarttlsMangled,
                StrippingSignal::BannerMasked,
                StrippingSignal::MissingDespitePolicy
            ]
        );
        assert_eq!(detect(&obs, false).len(), 2);
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
        assert_eq!(detect(&obs, false), vec![StrippingSignal::StarttlsRejected]);
        let obs = Observations {
            starttls_advertised: true,
            starttls_reply: Some(reply(220, &["go"])),
            tls_failed: true,
            error: Some((ProbeErrorClass::TlsError, "x".into())),
            ..Default::default()
        };
        assert_eq!(
            detect(&obs, false),
            vec![StrippingSignal::TlsFailedAfterReady]
        );
        let obs = Observations {
            tls_failed: true,
            error: Some((ProbeErrorClass::TlsIncompatible, "TLS 1.0 only".into())),
            ..Default::default()
        };
        assert!(detect(&obs, false).is_empty());
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
        assert!(detect(&obs, true).is_empty());
    }
}
