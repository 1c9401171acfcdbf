//! The judgement of one session: from what the driver observed to the `smtp_probe` record and
//! its `certificate` records. Pure: the time and the PKIX roots are passed in.
//!
//! Everything here is a fact about the address probed (and the host's own DNS, through the
//! target's TLSA input), never about a domain that uses it: the probe is shared by every
//! domain whose MX points there, so what depends on a domain (its MX RRset's DNSSEC status,
//! its MTA-STS policy, `missing_despite_policy`, its DANE verdict) is the domain verdict's.
//!
//! - `result`: `starttls_ok` when STARTTLS was advertised and the handshake completed;
//!   `no_starttls` when the session reached EHLO without STARTTLS (also when it was forced
//!   and then refused or even accepted: a sender on this path is not offered TLS); `error`
//!   otherwise, with the class.
//! - `pkix_valid`: the chain of a completed handshake, for the SNI name.
//! - `dane`: [`crate::dane`] with how far the session got ([`Session`]): a forced handshake
//!   counts as no TLS, since a DANE sender would not have tried it.
//! - `stripping_signals`: [`crate::signals::detect`]; `tlsrpt_results`: [`crate::tlsrpt`]
//!   from the host's point of view.

use mxray_model::{
    CertificateRecord, DaneVerdict, ProbeErrorClass, ProbeResult, SmtpProbeRecord, TlsEngine,
    TlsFallbackReason, UtcTime,
};
use rustls::pki_types::{CertificateDer, UnixTime};
use uuid::Uuid;

use crate::cert::{certificate_record, sha256_hex};
use crate::dane::{self, Session};
use crate::machine::Observations;
use crate::pkix::PkixChecker;
use crate::probe::{ProbeOutput, ProbeTarget};
use crate::{signals, tls, tlsrpt};

/// Phase durations, milliseconds, each measured around its own I/O.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// The TCP handshake.
    pub connect_ms: Option<u32>,
    /// Connect to the complete greeting.
    pub greeting_ms: Option<u32>,
    /// EHLO (and HELO) round trips.
    pub ehlo_ms: Option<u32>,
    /// The STARTTLS command.
    pub starttls_ms: Option<u32>,
    /// The TLS handshake.
    pub tls_ms: Option<u32>,
    /// The whole session, connect to close (limiter wait not included).
    pub total_ms: u32,
    /// Waiting for mxray's own rate limiters before connecting.
    pub limiter_wait_ms: Option<u32>,
}

/// The negotiated TLS parameters of a completed handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFacts {
    /// `TLSv1.2`, `TLSv1.3`, ...
    pub version: Option<String>,
    /// IANA cipher suite name.
    pub cipher: Option<String>,
    /// Key-exchange group.
    pub kx_group: Option<String>,
}

/// What is kept of a rustls session that was retried with OpenSSL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSession {
    /// Why rustls could not complete the handshake.
    pub reason: TlsFallbackReason,
    /// The rustls error, as text.
    pub detail: String,
    /// The first session's transcript.
    pub transcript: String,
}

/// Everything one session showed.
#[derive(Debug, Clone)]
pub struct SessionFacts {
    /// When the probe started.
    pub probed_at: UtcTime,
    /// What the dialogue saw.
    pub obs: Observations,
    /// A failure before any SMTP byte (policy, source address, connect).
    pub pre_connect: Option<(ProbeErrorClass, String)>,
    /// Phase durations.
    pub timings: Timings,
    /// The SNI actually sent.
    pub sni_sent: Option<String>,
    /// The negotiated parameters (when the handshake completed).
    pub tls: TlsFacts,
    /// The presented chain, leaf first (empty without a completed handshake).
    pub chain: Vec<CertificateDer<'static>>,
    /// The capped dialogue transcript.
    pub transcript: String,
    /// The engine of the handshake, when one was attempted.
    pub engine: Option<TlsEngine>,
    /// The first (rustls) session, when this is the OpenSSL retry.
    pub first: Option<FirstSession>,
}

/// What the judgement needs besides the session: the scan identity, roots, caps, time.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    /// The scan.
    pub scan_id: Uuid,
    /// The vantage.
    pub vantage: &'a str,
    /// PKIX roots; None judges no chain (`pkix_valid` null).
    pub pkix: Option<&'a PkixChecker>,
    /// Cap for recorded replies (banner, EHLO).
    pub max_reply: usize,
    /// Cap for `error_detail`, `starttls_reply_text` and `tls_fallback_detail`.
    pub max_detail: usize,
    /// Whose session this is.
    pub rules: Rules,
    /// The time PKIX and DANE-TA dates are judged at.
    pub now: UnixTime,
}

/// Whose session is judged: the few places where a canary session reads differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// The scanner's probe of a mail server: as the module doc says.
    Scan,
    /// A canary probe's session with mxray's own canary, which always offers STARTTLS and is
    /// nobody's MX: a completed handshake is `starttls_ok` even when STARTTLS was sent
    /// unadvertised (the keyword was hidden on the path, the stripping signals say so), a
    /// completed implicit-TLS handshake counts as reaching EHLO, `no_starttls` needs an
    /// EHLO answer without error (any 2xx, not only 250), and no RFC 8460 result types are
    /// derived.
    Canary,
}

/// The scanner's cap of `error_detail`, `starttls_reply_text` and `tls_fallback_detail`.
pub const MAX_DETAIL: usize = 1024;

/// `s` cut to at most `n` bytes on a character boundary.
fn cap(s: String, n: usize) -> String {
    mxray_net::units::cap_owned(s, n)
}

/// The `smtp_probe` record and the chain's `certificate` records of one session.
pub fn probe_output(target: &ProbeTarget, s: SessionFacts, j: &Judge<'_>) -> ProbeOutput {
    let obs = &s.obs;
    let error = s.pre_connect.clone().or_else(|| obs.error.clone());
    let canary = j.rules == Rules::Canary;
    let reached_ehlo = obs.reached_ehlo() || (canary && obs.implicit_tls && obs.tls_completed);
    let offered_tls = obs.tls_completed && (canary || !obs.starttls_forced);
    // The canary's dialogue records an error for any EHLO answer but a 2xx.
    let answered_ehlo = if canary {
        obs.ehlo.is_some()
    } else {
        reached_ehlo
    };
    let result = if offered_tls {
        ProbeResult::StarttlsOk
    } else if error.is_none() && answered_ehlo && !obs.starttls_advertised {
        ProbeResult::NoStarttls
    } else {
        ProbeResult::Error
    };
    let (pkix_valid, pkix_error) = match (&s.sni_sent, obs.tls_completed, j.pkix) {
        (Some(name), true, Some(pkix)) => {
            match pkix.check(&s.chain, name.trim_end_matches('.'), j.now) {
                Ok(()) => (Some(true), None),
                Err(e) => (Some(false), Some(e)),
            }
        }
        _ => (None, None),
    };
    let session = if !reached_ehlo {
        Session::NotReached
    } else if offered_tls {
        Session::Tls(&s.chain)
    } else {
        Session::NoTls
    };
    let (dane, dane_match) = match &target.tlsa {
        Some(tlsa) => {
            let out = dane::verify_at(session, tlsa, j.now);
            (out.verdict, out.match_label())
        }
        None => (DaneVerdict::None, None),
    };
    let mut certificates: Vec<CertificateRecord> = Vec::new();
    let mut chain_sha256 = Vec::new();
    for c in &s.chain {
        let h = sha256_hex(c.as_ref());
        if !certificates.iter().any(|r| r.sha256 == h) {
            certificates.push(certificate_record(c.as_ref(), j.scan_id, j.vantage));
        }
        chain_sha256.push(h);
    }
    let max = j.max_reply;
    let t = s.timings;
    let mut record = SmtpProbeRecord {
        scan_id: j.scan_id,
        vantage: j.vantage.to_owned(),
        probed_at: s.probed_at,
        ip: target.ip.to_string(),
        port: target.port,
        sni: s.sni_sent.clone().or_else(|| target.sni.clone()),
        connect_ms: t.connect_ms,
        greeting_ms: t.greeting_ms,
        ehlo_ms: t.ehlo_ms,
        starttls_ms: t.starttls_ms,
        tls_ms: t.tls_ms,
        total_ms: t.total_ms,
        result,
        error_class: error.as_ref().map(|e| e.0),
        error_detail: error.map(|e| cap(e.1, j.max_detail)),
        banner: obs
            .greeting
            .as_ref()
            .map(|g| cap(g.display_lines(), max))
            .unwrap_or_default(),
        ehlo_keywords: obs.ehlo_keywords.clone(),
        ehlo_raw: obs
            .ehlo
            .as_ref()
            .map(|r| cap(r.raw_lossy(), max))
            .unwrap_or_default(),
        starttls_advertised: obs.starttls_advertised,
        starttls_reply_code: obs.starttls_reply.as_ref().map(|r| r.code),
        starttls_reply_text: obs
            .starttls_reply
            .as_ref()
            .map(|r| cap(r.text(), j.max_detail)),
        tls_version: s.tls.version,
        cipher: s.tls.cipher,
        kx_group: s.tls.kx_group,
        tls_alert: obs.tls_alert,
        chain_sha256,
        pkix_valid,
        pkix_error,
        dane,
        dane_match,
        post_tls_ehlo_keywords: obs.post_tls_keywords.clone(),
        stripping_signals: signals::detect(obs),
        tlsrpt_results: Vec::new(),
        transcript: s.transcript,
        reached_ehlo,
        starttls_forced: obs.starttls_forced,
        limiter_wait_ms: t.limiter_wait_ms,
        attempt: 1,
        tls_engine: s.engine,
        tls_fallback_reason: s.first.as_ref().map(|f| f.reason),
        tls_fallback_detail: s
            .first
            .as_ref()
            .map(|f| cap(f.detail.clone(), j.max_detail)),
        tls_fallback_transcript: s.first.map(|f| f.transcript).unwrap_or_default(),
        tls_legacy: false,
    };
    record.tls_legacy = obs.tls_completed
        && record
            .tls_version
            .as_deref()
            .is_some_and(tls::is_legacy_version);
    if !canary {
        record.tlsrpt_results = tlsrpt::for_probe(&record, tlsrpt::host_dane_applies(&record));
    }
    ProbeOutput {
        record,
        certificates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Reply;
    use mxray_model::{DnssecStatus, StrippingSignal, TlsaRecord};

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply::from_lines(code, lines)
    }

    fn facts(obs: Observations) -> SessionFacts {
        SessionFacts {
            probed_at: UtcTime::from_unix(0),
            obs,
            pre_connect: None,
            timings: Timings::default(),
            sni_sent: Some("mx.example".into()),
            tls: TlsFacts::default(),
            chain: Vec::new(),
            transcript: String::new(),
            engine: None,
            first: None,
        }
    }

    fn target(tlsa: bool) -> ProbeTarget {
        let mut t = ProbeTarget::new("192.0.2.1".parse().expect("ip"), 25);
        t.sni = Some("mx.example".into());
        if tlsa {
            t.tlsa = Some(crate::dane::TlsaInput {
                records: vec![TlsaRecord {
                    usage: 3,
                    selector: 1,
                    matching_type: 1,
                    data: "00".repeat(32),
                }],
                dnssec: DnssecStatus::Secure,
                base_names: vec!["mx.example".into()],
            });
        }
        t
    }

    fn run(t: &ProbeTarget, f: SessionFacts) -> SmtpProbeRecord {
        run_with(t, f, Rules::Scan)
    }

    fn run_with(t: &ProbeTarget, f: SessionFacts, rules: Rules) -> SmtpProbeRecord {
        let pkix = PkixChecker::new(&[]).expect("roots");
        let j = Judge {
            scan_id: Uuid::nil(),
            vantage: "v",
            pkix: Some(&pkix),
            max_reply: 4096,
            max_detail: MAX_DETAIL,
            rules,
            now: UnixTime::now(),
        };
        probe_output(t, f, &j).record
    }

    #[test]
    fn rfc7672_2_2_a_554_greeting_checked_nothing_so_dane_is_unverified() {
        let obs = Observations {
            greeting: Some(reply(554, &["no service"])),
            error: Some((ProbeErrorClass::Greeting5xx, "554".into())),
            ..Default::default()
        };
        let r = run(&target(true), facts(obs));
        assert_eq!(r.result, ProbeResult::Error);
        assert!(!r.reached_ehlo);
        assert_eq!(r.dane, DaneVerdict::Unverified);
        assert!(r.stripping_signals.is_empty());
        assert!(r.tlsrpt_results.is_empty(), "{:?}", r.tlsrpt_results);
    }

    #[test]
    fn rfc7672_2_2_no_starttls_on_a_dane_host_is_no_tls() {
        let obs = Observations {
            greeting: Some(reply(220, &["mx"])),
            ehlo: Some(reply(250, &["mx", "SIZE 1"])),
            ehlo_keywords: vec!["SIZE 1".into()],
            ..Default::default()
        };
        let r = run(&target(true), facts(obs));
        assert_eq!(r.result, ProbeResult::NoStarttls);
        assert!(r.reached_ehlo);
        assert_eq!(r.dane, DaneVerdict::NoTls);
        assert!(r
            .tlsrpt_results
            .contains(&mxray_model::TlsRptResult::StarttlsNotSupported));
    }

    #[test]
    fn a_forced_handshake_is_evidence_but_not_starttls_ok() {
        let obs = Observations {
            greeting: Some(reply(220, &["mx"])),
            ehlo: Some(reply(250, &["mx", "SIZE 1"])),
            ehlo_keywords: vec!["SIZE 1".into()],
            starttls_forced: true,
            starttls_reply: Some(reply(220, &["go"])),
            tls_completed: true,
            ..Default::default()
        };
        let r = run(&target(true), facts(obs));
        assert_eq!(r.result, ProbeResult::NoStarttls);
        assert!(r.starttls_forced);
        assert_eq!(
            r.dane,
            DaneVerdict::NoTls,
            "a DANE sender is offered no TLS"
        );
        assert_eq!(r.stripping_signals, vec![StrippingSignal::StarttlsForcedOk]);
    }

    #[test]
    fn a_canary_session_reads_a_forced_handshake_as_starttls_ok_and_derives_no_tlsrpt() {
        let forced = Observations {
            greeting: Some(reply(220, &["canary"])),
            ehlo: Some(reply(250, &["canary", "XXXXXXXA"])),
            ehlo_keywords: vec!["XXXXXXXA".into()],
            starttls_forced: true,
            starttls_reply: Some(reply(220, &["go"])),
            tls_completed: true,
            ..Default::default()
        };
        let r = run_with(&target(false), facts(forced.clone()), Rules::Canary);
        assert_eq!(r.result, ProbeResult::StarttlsOk);
        assert!(r
            .stripping_signals
            .contains(&StrippingSignal::StarttlsForcedOk));
        let r = run_with(&target(false), facts(forced), Rules::Scan);
        assert_eq!(r.result, ProbeResult::NoStarttls);

        let plain = Observations {
            greeting: Some(reply(220, &["canary"])),
            ehlo: Some(reply(250, &["canary", "SIZE 1"])),
            ehlo_keywords: vec!["SIZE 1".into()],
            ..Default::default()
        };
        let r = run_with(&target(false), facts(plain.clone()), Rules::Canary);
        assert_eq!(r.result, ProbeResult::NoStarttls);
        assert!(r.tlsrpt_results.is_empty());
        let r = run_with(&target(false), facts(plain), Rules::Scan);
        assert!(!r.tlsrpt_results.is_empty());

        let implicit = Observations {
            implicit_tls: true,
            tls_completed: true,
            error: Some((ProbeErrorClass::PostTlsError, "EHLO after TLS: 554".into())),
            ..Default::default()
        };
        assert!(run_with(&target(false), facts(implicit.clone()), Rules::Canary).reached_ehlo);
        assert!(!run_with(&target(false), facts(implicit), Rules::Scan).reached_ehlo);
    }
}
