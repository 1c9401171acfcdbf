//! The pure comparison of `canary probe`: a [`Session`] against the canary's
//! [`Expectation`] and its log of the connection ([`CanaryView`]), into a [`TamperReport`].

use std::net::SocketAddr;

use mxray_canary::{wire, ClientLog, Expectation};
use mxray_model::{ProbeErrorClass, UtcTime};
use serde::{Deserialize, Serialize};

use crate::diverge::{diverge, Divergence, DivergenceKind};
use crate::session::Session;

/// The verdict of a canary probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every byte in both directions and the certificate were exactly as the canary sent them.
    Clean,
    /// Some byte or the certificate differed: the path rewrote the session.
    Tampered,
    /// No SMTP session: connect refused, timed out or unreachable, or accepted and then
    /// silent. Never read this as "no STARTTLS".
    Blocked,
    /// Incomplete (a reply or the handshake timed out or was reset with nothing rewritten
    /// before it), or mxray refused to connect (destination policy).
    Error,
}

/// Which stream a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Canary to probe, before TLS (greeting, EHLO reply, STARTTLS reply).
    ServerPlain,
    /// Canary to probe, inside TLS.
    ServerTls,
    /// Probe to canary, before TLS: what the probe sent versus what the canary logged.
    ClientPlain,
    /// Probe to canary, inside TLS.
    ClientTls,
    /// The certificate chain.
    Certificate,
    /// The TLS handshake itself.
    TlsHandshake,
    /// The canary's control channel: an answer that failed authentication (rewritten,
    /// replayed or made up on the path to the control endpoint).
    Control,
}

/// How much a finding weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Proof of rewriting: bytes differ, bytes were added, a different certificate.
    Tampered,
    /// The stream stopped early; not proof of tampering by itself.
    Incomplete,
}

/// One difference between what was expected and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The stream.
    pub stream: Stream,
    /// Its weight.
    pub severity: Severity,
    /// Where the bytes diverged (none for certificate and handshake findings).
    pub divergence: Option<Divergence>,
    /// In words.
    pub detail: String,
}

/// Whether the client direction could be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryLogStatus {
    /// The canary's log of this connection was fetched and compared.
    Compared,
    /// The canary had no connection from the probe's address and port (NAT on the path,
    /// or the entry was evicted).
    NotFound,
    /// The control endpoint could not be asked.
    Unavailable,
    /// The control endpoint's answer failed authentication: the path to it rewrote, replayed
    /// or made up the answer (a [`Stream::Control`] finding, verdict `tampered`).
    Forged,
    /// Not asked (self-check, or no control endpoint given).
    NotAsked,
}

/// What the canary's control endpoint said about this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanaryView {
    /// The log entry.
    Log(Box<ClientLog>),
    /// No entry for the probe's address.
    NotFound,
    /// The control endpoint failed (detail).
    Unavailable(String),
    /// An answer failed authentication (detail): tampering of the control path.
    Forged(String),
    /// Not asked.
    NotAsked,
}

/// The result of a canary probe: typed data, serialisable as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TamperReport {
    /// clean | tampered | blocked | error.
    pub verdict: Verdict,
    /// One-line summary.
    pub detail: String,
    /// Vantage label.
    pub vantage: String,
    /// When the probe started (UTC).
    pub probed_at: UtcTime,
    /// The canary address probed.
    pub target: Option<SocketAddr>,
    /// The probe's local address and port.
    pub local: Option<SocketAddr>,
    /// Implicit TLS was used.
    pub implicit_tls: bool,
    /// How the session ended early, if it did.
    pub error_class: Option<ProbeErrorClass>,
    /// The differences found, in stream order.
    pub findings: Vec<Finding>,
    /// Whether the client direction was compared.
    pub canary_log: CanaryLogStatus,
    /// Why not, or what the canary saw as the client address.
    pub canary_log_detail: Option<String>,
    /// The client address and port the canary logged for this connection (when its log was
    /// compared); differs from `local` behind NAT or a proxy.
    #[serde(default)]
    pub canary_client: Option<SocketAddr>,
    /// Certificate SHA-256s the canary presents.
    pub cert_expected: Vec<String>,
    /// Certificate SHA-256s this probe was shown.
    pub cert_seen: Vec<String>,
    /// Bytes received before TLS (escaped): the evidence as received.
    #[serde(with = "wire::text")]
    pub received_plain: Vec<u8>,
    /// Bytes received inside TLS (escaped).
    #[serde(with = "wire::text")]
    pub received_tls: Vec<u8>,
    /// Bytes sent before TLS (escaped).
    #[serde(with = "wire::text")]
    pub sent_plain: Vec<u8>,
    /// What the canary logged as received before TLS (escaped), when fetched.
    #[serde(with = "wire::text")]
    pub canary_received_plain: Vec<u8>,
}

fn is_connect_class(c: ProbeErrorClass) -> bool {
    matches!(
        c,
        ProbeErrorClass::ConnectRefused
            | ProbeErrorClass::ConnectTimeout
            | ProbeErrorClass::ConnectUnreachable
            | ProbeErrorClass::ConnectError
    )
}

pub(crate) fn is_policy_class(c: ProbeErrorClass) -> bool {
    matches!(
        c,
        ProbeErrorClass::BlockedReserved | ProbeErrorClass::BlockedList
    )
}

fn stream_finding(stream: Stream, expected: &[u8], actual: &[u8], what: &str) -> Option<Finding> {
    let d = diverge(expected, actual)?;
    let (severity, how) = match d.kind {
        DivergenceKind::Differ => (Severity::Tampered, "differs"),
        DivergenceKind::Extra => (Severity::Tampered, "has extra bytes"),
        DivergenceKind::Truncated => (Severity::Incomplete, "stops early"),
    };
    let detail = format!(
        "{what} {how} at byte {} (line {}, column {}): expected \"{}\", got \"{}\"",
        d.offset, d.line, d.column, d.expected, d.actual
    );
    Some(Finding {
        stream,
        severity,
        divergence: Some(d),
        detail,
    })
}

fn control_finding(why: &str) -> Finding {
    Finding {
        stream: Stream::Control,
        severity: Severity::Tampered,
        divergence: None,
        detail: format!("the canary's control answer failed authentication: {why}"),
    }
}

/// Compares a session with the expectation and the canary's log: the pure core of
/// `canary probe`.
pub fn compare(exp: &Expectation, s: &Session, canary: &CanaryView, vantage: &str) -> TamperReport {
    let mut findings = Vec::new();
    let error_class = s.error.as_ref().map(|e| e.0);
    let error_detail = s.error.as_ref().map(|e| e.1.clone()).unwrap_or_default();
    let mut blocked = None;
    let mut policy = None;
    match error_class {
        Some(c) if is_connect_class(c) => blocked = Some(format!("{c}: {error_detail}")),
        Some(c) if is_policy_class(c) => policy = Some(format!("{c}: {error_detail}")),
        _ => {}
    }
    let silent = s.received_plain.is_empty()
        && s.received_tls.is_empty()
        && !s.tls_completed
        && matches!(
            error_class,
            Some(
                ProbeErrorClass::GreetingTimeout
                    | ProbeErrorClass::ConnectionClosed
                    | ProbeErrorClass::SessionDeadline
                    | ProbeErrorClass::TlsReset
                    | ProbeErrorClass::TlsTimeout
            )
        );
    if blocked.is_none() && policy.is_none() && silent {
        blocked = Some(format!(
            "connection accepted but nothing received ({}): filtered",
            error_class.map(|c| c.as_str()).unwrap_or("?")
        ));
    }
    let (mut canary_log, mut canary_log_detail) = (CanaryLogStatus::NotAsked, None);
    let mut canary_client = None;
    let mut canary_received_plain = Vec::new();
    if blocked.is_none() && policy.is_none() {
        if !s.implicit_tls {
            findings.extend(stream_finding(
                Stream::ServerPlain,
                &exp.plain_stream(false),
                &s.received_plain,
                "canary-to-probe stream before TLS",
            ));
        }
        if s.tls_completed {
            let seen = s.chain_sha256();
            if seen != exp.cert_sha256 {
                findings.push(Finding {
                    stream: Stream::Certificate,
                    severity: Severity::Tampered,
                    divergence: None,
                    detail: format!(
                        "certificate differs: leaf {} shown, the canary's is {}",
                        seen.first().map(String::as_str).unwrap_or("(none)"),
                        exp.cert_sha256
                            .first()
                            .map(String::as_str)
                            .unwrap_or("(none)")
                    ),
                });
            }
            findings.extend(stream_finding(
                Stream::ServerTls,
                &exp.tls_stream(s.implicit_tls),
                &s.received_tls,
                "canary-to-probe stream inside TLS",
            ));
        } else if s.tls_attempted {
            let severity = match error_class {
                Some(
                    ProbeErrorClass::TlsAlert
                    | ProbeErrorClass::TlsError
                    | ProbeErrorClass::TlsIncompatible,
                ) => Severity::Tampered,
                _ => Severity::Incomplete,
            };
            findings.push(Finding {
                stream: Stream::TlsHandshake,
                severity,
                divergence: None,
                detail: format!("TLS handshake with the canary failed: {error_detail}"),
            });
        }
        match canary {
            CanaryView::Log(log) => {
                canary_log = CanaryLogStatus::Compared;
                canary_client = Some(log.client);
                canary_log_detail = Some(if Some(log.client) == s.local {
                    format!("canary saw client {}", log.client)
                } else {
                    format!(
                        "canary saw client {}, not the probe's {}: NAT or a proxy on the path \
                         (matched by the EHLO token)",
                        log.client,
                        s.local.map(|a| a.to_string()).unwrap_or_else(|| "?".into())
                    )
                });
                canary_received_plain = log.received_plain.clone();
                findings.extend(stream_finding(
                    Stream::ClientPlain,
                    &s.sent_plain,
                    &log.received_plain,
                    "probe-to-canary stream before TLS (as the canary received it)",
                ));
                if s.tls_completed || log.tls_completed {
                    findings.extend(stream_finding(
                        Stream::ClientTls,
                        &s.sent_tls,
                        &log.received_tls,
                        "probe-to-canary stream inside TLS (as the canary received it)",
                    ));
                }
                if log.truncated {
                    if let Some(d) = canary_log_detail.as_mut() {
                        d.push_str("; the canary's log of this connection was capped");
                    }
                }
            }
            CanaryView::NotFound => {
                canary_log = CanaryLogStatus::NotFound;
                canary_log_detail = Some(format!(
                    "the canary has no connection from {}: NAT between probe and canary?",
                    s.local.map(|a| a.to_string()).unwrap_or_else(|| "?".into())
                ));
            }
            CanaryView::Unavailable(why) => {
                canary_log = CanaryLogStatus::Unavailable;
                canary_log_detail = Some(why.clone());
            }
            CanaryView::Forged(why) => {
                canary_log = CanaryLogStatus::Forged;
                canary_log_detail = Some(why.clone());
                findings.push(control_finding(why));
            }
            CanaryView::NotAsked => {}
        }
    }
    let tampered = findings.iter().any(|f| f.severity == Severity::Tampered);
    let (verdict, detail) = if let Some(b) = blocked {
        (Verdict::Blocked, format!("blocked: {b}"))
    } else if let Some(p) = policy {
        (Verdict::Error, format!("not probed: {p}"))
    } else if tampered {
        let first = findings
            .iter()
            .find(|f| f.severity == Severity::Tampered)
            .map(|f| f.detail.clone())
            .unwrap_or_default();
        (Verdict::Tampered, first)
    } else if !findings.is_empty() || s.error.is_some() {
        let why = findings
            .first()
            .map(|f| f.detail.clone())
            .unwrap_or_else(|| error_detail.clone());
        (Verdict::Error, format!("incomplete: {why}"))
    } else {
        (
            Verdict::Clean,
            "every byte and the certificate as the canary sent them".into(),
        )
    };
    TamperReport {
        verdict,
        detail,
        vantage: vantage.to_owned(),
        probed_at: s.probed_at.unwrap_or_else(UtcTime::now),
        target: s.target,
        local: s.local,
        implicit_tls: s.implicit_tls,
        error_class,
        findings,
        canary_log,
        canary_log_detail,
        canary_client,
        cert_expected: exp.cert_sha256.clone(),
        cert_seen: s.chain_sha256(),
        received_plain: s.received_plain.clone(),
        received_tls: s.received_tls.clone(),
        sent_plain: s.sent_plain.clone(),
        canary_received_plain,
    }
}

/// The outcome to record when the control endpoint's answer to `EXPECT` failed
/// authentication, so that no session could be compared: verdict `tampered` with one
/// [`Stream::Control`] finding, `canary_log = forged`, and no session bytes.
pub fn control_forged(target: SocketAddr, vantage: &str, why: &str) -> CanaryOutcome {
    let now = UtcTime::now();
    let session = Session {
        probed_at: Some(now),
        target: Some(target),
        ..Session::default()
    };
    let finding = control_finding(why);
    let report = TamperReport {
        verdict: Verdict::Tampered,
        detail: finding.detail.clone(),
        vantage: vantage.to_owned(),
        probed_at: now,
        target: Some(target),
        local: None,
        implicit_tls: false,
        error_class: None,
        findings: vec![finding],
        canary_log: CanaryLogStatus::Forged,
        canary_log_detail: Some(why.to_owned()),
        canary_client: None,
        cert_expected: Vec::new(),
        cert_seen: Vec::new(),
        received_plain: Vec::new(),
        received_tls: Vec::new(),
        sent_plain: Vec::new(),
        canary_received_plain: Vec::new(),
    };
    CanaryOutcome { report, session }
}

/// A canary probe's whole outcome.
#[derive(Debug, Clone)]
pub struct CanaryOutcome {
    /// The verdict and evidence.
    pub report: TamperReport,
    /// The raw session.
    pub session: Session,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_canary::CannedReplies;

    fn exp() -> Expectation {
        Expectation::new(&CannedReplies::default(), vec!["aa".into()])
    }

    fn clean_session(e: &Expectation) -> Session {
        Session {
            target: Some("127.0.0.1:25".parse().expect("sa")),
            local: Some("127.0.99.1:5000".parse().expect("sa")),
            received_plain: e.plain_stream(false),
            sent_plain: b"EHLO p\r\nSTARTTLS\r\n".to_vec(),
            received_tls: e.tls_stream(false),
            sent_tls: b"EHLO p\r\nQUIT\r\n".to_vec(),
            tls_attempted: true,
            tls_completed: true,
            chain: Vec::new(),
            ..Session::default()
        }
    }

    fn log_for(s: &Session) -> CanaryView {
        CanaryView::Log(Box::new(ClientLog {
            id: 0,
            at: UtcTime::from_unix(0),
            listen: "127.0.0.1:25".parse().expect("sa"),
            client: s.local.expect("local"),
            implicit_tls: false,
            received_plain: s.sent_plain.clone(),
            sent_plain: Vec::new(),
            received_tls: s.sent_tls.clone(),
            sent_tls: Vec::new(),
            truncated: false,
            tls_completed: true,
            sni: None,
            tls_error: None,
            ended: None,
        }))
    }

    #[test]
    fn identical_bytes_but_another_certificate_is_tampered() {
        let e = exp();
        let s = clean_session(&e);
        let r = compare(&e, &s, &log_for(&s), "v");
        assert_eq!(r.verdict, Verdict::Tampered);
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].stream, Stream::Certificate);
        // With the expected chain hash it is clean.
        let e2 = Expectation {
            cert_sha256: Vec::new(),
            ..e
        };
        let r = compare(&e2, &s, &log_for(&s), "v");
        assert_eq!(r.verdict, Verdict::Clean, "{r:?}");
        assert_eq!(r.canary_log, CanaryLogStatus::Compared);
    }

    #[test]
    fn rewritten_client_command_is_caught_from_the_canary_log() {
        let e = Expectation {
            cert_sha256: Vec::new(),
            ..exp()
        };
        let s = clean_session(&e);
        let CanaryView::Log(mut log) = log_for(&s) else {
            unreachable!()
        };
        log.received_plain = b"EHLO p\r\nXXXXXXXA\r\n".to_vec();
        let r = compare(&e, &s, &CanaryView::Log(log), "v");
        assert_eq!(r.verdict, Verdict::Tampered);
        let f = &r.findings[0];
        assert_eq!(f.stream, Stream::ClientPlain);
        let d = f.divergence.as_ref().expect("divergence");
        assert_eq!((d.offset, d.line, d.column), (8, 2, 1));
        assert_eq!(d.expected, "STARTTLS\\r\\n");
        assert_eq!(d.actual, "XXXXXXXA\\r\\n");
    }

    #[test]
    fn refused_connect_is_blocked_and_policy_refusal_is_an_error() {
        let e = exp();
        let s = Session {
            error: Some((ProbeErrorClass::ConnectRefused, "connection refused".into())),
            ..Session::default()
        };
        let r = compare(&e, &s, &CanaryView::NotAsked, "v");
        assert_eq!(r.verdict, Verdict::Blocked);
        assert!(r.findings.is_empty());
        let s = Session {
            error: Some((ProbeErrorClass::BlockedReserved, "reserved".into())),
            ..Session::default()
        };
        assert_eq!(
            compare(&e, &s, &CanaryView::NotAsked, "v").verdict,
            Verdict::Error
        );
        let s = Session {
            local: Some("127.0.0.1:1".parse().expect("sa")),
            error: Some((ProbeErrorClass::GreetingTimeout, "no reply".into())),
            ..Session::default()
        };
        assert_eq!(
            compare(&e, &s, &CanaryView::NotAsked, "v").verdict,
            Verdict::Blocked
        );
    }

    #[test]
    fn a_session_cut_short_is_an_error_not_tampering() {
        let e = exp();
        let s = Session {
            received_plain: e.greeting.clone().into_bytes(),
            error: Some((ProbeErrorClass::ReadTimeout, "no reply in time".into())),
            ..Session::default()
        };
        let r = compare(&e, &s, &CanaryView::NotAsked, "v");
        assert_eq!(r.verdict, Verdict::Error, "{r:?}");
        assert_eq!(r.findings[0].severity, Severity::Incomplete);
    }

    #[test]
    fn report_serialises_with_snake_case_verdicts() {
        let e = exp();
        let s = Session {
            error: Some((ProbeErrorClass::ConnectTimeout, "t".into())),
            ..Session::default()
        };
        let j = serde_json::to_value(compare(&e, &s, &CanaryView::NotAsked, "v")).expect("json");
        assert_eq!(j["verdict"], "blocked");
        assert_eq!(j["error_class"], "connect_timeout");
        assert_eq!(j["canary_log"], "not_asked");
    }
}
