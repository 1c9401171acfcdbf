//! `canary probe`: the tokio/rustls driver around [`ProbeScript`], the control-endpoint
//! client, and the pure comparison that turns a [`Session`] into a [`TamperReport`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxray_model::{
    CertificateRecord, DaneVerdict, Port25Check, ProbeErrorClass, ProbeResult, SmtpProbeRecord,
    TlsEngine, UtcTime,
};
use mxray_net::Dialer;
use mxray_smtp::machine::Observations;
use mxray_smtp::reply::{advertises_starttls, ehlo_keywords, Reply, ReplyError, ReplyParser};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ProtocolVersion};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsConnector;

use crate::auth::{self, AnswerError, ControlKey};
use crate::diverge::{diverge, Divergence, DivergenceKind};
use crate::expect::Expectation;
use crate::script::{ProbeScript, ProbeState, ProbeStep};
use crate::server::ClientLog;
use crate::{wire, CanaryError};

/// Options of one canary probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Name sent in EHLO. Default `mxray.invalid`.
    pub ehlo_name: String,
    /// TLS from the first byte (port 465) instead of STARTTLS. Default false.
    pub implicit_tls: bool,
    /// SNI to send; `None` sends none. Default none.
    pub sni: Option<String>,
    /// Timeout of each read, of the TLS handshake and of control requests. Default 10 s.
    pub timeout: Duration,
    /// Whole-session deadline after connect. Default 60 s.
    pub session_deadline: Duration,
    /// Bytes kept per direction and phase. Default 64 KiB (the canary's dialogue is < 1 KiB).
    pub max_bytes: usize,
    /// Vantage label written into the report.
    pub vantage: String,
    /// A token prepended as a first label to the EHLO name (`<token>.<ehlo_name>`) so the
    /// canary's log entry can be found even when NAT or a proxy changes the client address.
    /// [`probe()`] fills in a random one when this is `None`; [`run_session`] sends the plain
    /// name then. Default none.
    pub token: Option<String>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            ehlo_name: "mxray.invalid".into(),
            implicit_tls: false,
            sni: None,
            timeout: Duration::from_secs(10),
            session_deadline: Duration::from_secs(60),
            max_bytes: 64 * 1024,
            vantage: "default".into(),
            token: None,
        }
    }
}

/// Everything one probe session saw and sent.
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// When the probe started.
    pub probed_at: Option<UtcTime>,
    /// The canary address probed.
    pub target: Option<SocketAddr>,
    /// The probe's local address and port (what the canary should log as the client).
    pub local: Option<SocketAddr>,
    /// Implicit TLS was used.
    pub implicit_tls: bool,
    /// Bytes received before TLS, as read.
    pub received_plain: Vec<u8>,
    /// Bytes sent before TLS.
    pub sent_plain: Vec<u8>,
    /// Bytes received inside TLS.
    pub received_tls: Vec<u8>,
    /// Bytes sent inside TLS.
    pub sent_tls: Vec<u8>,
    /// Some byte field hit the cap.
    pub truncated: bool,
    /// The greeting.
    pub greeting: Option<Reply>,
    /// The EHLO reply before TLS.
    pub ehlo: Option<Reply>,
    /// The STARTTLS reply.
    pub starttls_reply: Option<Reply>,
    /// The EHLO reply inside TLS.
    pub tls_ehlo: Option<Reply>,
    /// The TLS handshake was attempted.
    pub tls_attempted: bool,
    /// The TLS handshake completed.
    pub tls_completed: bool,
    /// Negotiated version, cipher suite and group.
    pub tls_version: Option<String>,
    /// Negotiated cipher suite.
    pub cipher: Option<String>,
    /// Negotiated key-exchange group.
    pub kx_group: Option<String>,
    /// TLS alert received.
    pub tls_alert: Option<u8>,
    /// The presented chain (DER), leaf first.
    pub chain: Vec<Vec<u8>>,
    /// Why the session ended early.
    pub error: Option<(ProbeErrorClass, String)>,
    /// TCP connect time, ms.
    pub connect_ms: Option<u32>,
    /// Whole session, ms.
    pub total_ms: u32,
    /// `C: `/`S: ` lines (capped).
    pub transcript: String,
}

impl Session {
    /// SHA-256 of each presented certificate, leaf first.
    pub fn chain_sha256(&self) -> Vec<String> {
        self.chain
            .iter()
            .map(|c| mxray_smtp::cert::sha256_hex(c))
            .collect()
    }

    fn fail(&mut self, class: ProbeErrorClass, detail: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some((class, detail.into()));
        }
    }

    fn log(&mut self, prefix: &str, bytes: &[u8]) {
        const MAX: usize = 8 * 1024;
        for line in String::from_utf8_lossy(bytes).lines() {
            if self.transcript.len() + line.len() + 5 > MAX {
                if !self.transcript.ends_with("[transcript truncated]\r\n") {
                    self.transcript.push_str("[transcript truncated]\r\n");
                }
                return;
            }
            self.transcript.push_str(prefix);
            self.transcript.push_str(line);
            self.transcript.push_str("\r\n");
        }
    }
}

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

fn is_policy_class(c: ProbeErrorClass) -> bool {
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

/// The `smtp_probe` record of a canary session (plus `certificate` records of its chain).
///
/// `result`, `error_class`, the EHLO fields and the stripping signals mean what they mean
/// for any probe, so canary sessions sit in `smtp_probes` next to ordinary ones. Two
/// differences: the canary probe sends STARTTLS even when it is not advertised (so
/// `starttls_reply_code` may be a 500 with `result = no_starttls`), and an implicit-TLS
/// session that completed TLS is `starttls_ok`. The verdict itself is in the
/// [`TamperReport`], stored as a `canary_result` record by [`crate::canary_record`].
pub fn probe_record(
    s: &Session,
    scan_id: uuid::Uuid,
    vantage: &str,
) -> (SmtpProbeRecord, Vec<CertificateRecord>) {
    let keywords = s.ehlo.as_ref().map(ehlo_keywords).unwrap_or_default();
    let advertised = advertises_starttls(&keywords);
    let obs = Observations {
        greeting: s.greeting.clone(),
        ehlo: s.ehlo.clone(),
        rejected_ehlo: None,
        used_helo: false,
        ehlo_keywords: keywords.clone(),
        starttls_advertised: advertised,
        starttls_forced: !advertised && !s.implicit_tls && s.starttls_reply.is_some(),
        starttls_reply: s.starttls_reply.clone(),
        tls_completed: s.tls_completed,
        tls_failed: s.tls_attempted && !s.tls_completed && !s.implicit_tls,
        post_tls_ehlo: s.tls_ehlo.clone(),
        post_tls_keywords: s.tls_ehlo.as_ref().map(ehlo_keywords).unwrap_or_default(),
        error: s.error.clone(),
        tls_alert: s.tls_alert,
        implicit_tls: s.implicit_tls,
    };
    let signals = mxray_smtp::signals::detect(&obs);
    let result = if s.tls_completed {
        ProbeResult::StarttlsOk
    } else if s.error.is_none() && s.ehlo.is_some() && !advertised {
        ProbeResult::NoStarttls
    } else {
        ProbeResult::Error
    };
    let mut certificates: Vec<CertificateRecord> = Vec::new();
    for c in &s.chain {
        let rec = mxray_smtp::cert::certificate_record(c, scan_id, vantage);
        if !certificates.iter().any(|r| r.sha256 == rec.sha256) {
            certificates.push(rec);
        }
    }
    let cap = |t: String| -> String {
        let mut t = t;
        if t.len() > 8192 {
            let mut end = 8192;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            t.truncate(end);
        }
        t
    };
    let target = s
        .target
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let record = SmtpProbeRecord {
        scan_id,
        vantage: vantage.to_owned(),
        probed_at: s.probed_at.unwrap_or_else(UtcTime::now),
        ip: target.ip().to_string(),
        port: target.port(),
        sni: None,
        connect_ms: s.connect_ms,
        greeting_ms: None,
        ehlo_ms: None,
        starttls_ms: None,
        tls_ms: None,
        total_ms: s.total_ms,
        result,
        error_class: s.error.as_ref().map(|e| e.0),
        error_detail: s.error.as_ref().map(|e| cap(e.1.clone())),
        banner: s
            .greeting
            .as_ref()
            .map(|g| cap(g.display_lines()))
            .unwrap_or_default(),
        ehlo_keywords: keywords,
        ehlo_raw: s
            .ehlo
            .as_ref()
            .map(|r| cap(r.raw_lossy()))
            .unwrap_or_default(),
        starttls_advertised: advertised,
        starttls_reply_code: s.starttls_reply.as_ref().map(|r| r.code),
        starttls_reply_text: s.starttls_reply.as_ref().map(|r| cap(r.text())),
        tls_version: s.tls_version.clone(),
        cipher: s.cipher.clone(),
        kx_group: s.kx_group.clone(),
        tls_alert: s.tls_alert,
        chain_sha256: s.chain_sha256(),
        pkix_valid: None,
        pkix_error: None,
        dane: DaneVerdict::None,
        dane_match: None,
        post_tls_ehlo_keywords: obs.post_tls_keywords.clone(),
        stripping_signals: signals,
        tlsrpt_results: Vec::new(),
        transcript: s.transcript.clone(),
        reached_ehlo: obs.reached_ehlo() || (s.implicit_tls && s.tls_completed),
        starttls_forced: obs.starttls_forced,
        limiter_wait_ms: None,
        attempt: 1,
        // The canary speaks rustls only: it checks the path, not legacy servers.
        tls_engine: s.tls_attempted.then_some(TlsEngine::Rustls),
        tls_fallback_reason: None,
        tls_fallback_detail: None,
        tls_fallback_transcript: String::new(),
        tls_legacy: false,
    };
    (record, certificates)
}

// ---------------------------------------------------------------------------------------
// The driver.

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn tls_client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(mxray_smtp::danger::RecordingVerifier::new(
        provider.signature_verification_algorithms,
    ));
    // The protocol versions are constants rustls always supports with ring; fall back to
    // the provider's defaults if that ever changes.
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .or_else(|_| {
            ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
        });
    let mut cfg = match builder {
        Ok(b) => b
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
        Err(_) => ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    };
    cfg.resumption = rustls::client::Resumption::disabled();
    Arc::new(cfg)
}

struct Driver<'a> {
    opts: &'a ProbeOptions,
    s: Session,
    script: ProbeScript,
    parser: ReplyParser,
    deadline: Instant,
}

impl Driver<'_> {
    fn record(&mut self, in_tls: bool, sent: bool, bytes: &[u8]) {
        let max = self.opts.max_bytes;
        let s = &mut self.s;
        let v = match (in_tls, sent) {
            (false, false) => &mut s.received_plain,
            (false, true) => &mut s.sent_plain,
            (true, false) => &mut s.received_tls,
            (true, true) => &mut s.sent_tls,
        };
        let room = max.saturating_sub(v.len());
        if bytes.len() > room {
            s.truncated = true;
        }
        v.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Runs the script over `io` from `step` until it asks for TLS or to close.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        mut step: ProbeStep,
    ) -> ProbeStep {
        let in_tls = self.script.in_tls();
        loop {
            match step {
                ProbeStep::Send(bytes) => {
                    self.record(in_tls, true, &bytes);
                    self.s.log("C: ", &bytes);
                    let end = (Instant::now() + self.opts.timeout).min(self.deadline);
                    match timeout_at(end, io.write_all(&bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            self.s
                                .fail(ProbeErrorClass::ConnectionClosed, format!("write: {e}"));
                            return ProbeStep::Close;
                        }
                        Err(_) => {
                            self.s.fail(ProbeErrorClass::ReadTimeout, "write timed out");
                            return ProbeStep::Close;
                        }
                    }
                }
                ProbeStep::Read => {}
                other => return other,
            }
            let state = self.script.state();
            let reply = match self.read_reply(io, in_tls, state).await {
                Some(r) => r,
                None => return ProbeStep::Close,
            };
            self.s.log("S: ", &reply.raw);
            match state {
                ProbeState::ExpectGreeting => {
                    if !reply.is_positive() {
                        let class = if reply.is_transient() {
                            ProbeErrorClass::Greeting4xx
                        } else {
                            ProbeErrorClass::Greeting5xx
                        };
                        self.s.fail(class, format!("greeting {}", reply.code));
                    }
                    self.s.greeting = Some(reply.clone());
                }
                ProbeState::ExpectEhlo => {
                    if !reply.is_positive() {
                        self.s.fail(
                            ProbeErrorClass::EhloRejected,
                            format!("EHLO {}", reply.code),
                        );
                    }
                    self.s.ehlo = Some(reply.clone());
                }
                ProbeState::ExpectStartTls => {
                    let advertised = self
                        .s
                        .ehlo
                        .as_ref()
                        .is_some_and(|e| advertises_starttls(&ehlo_keywords(e)));
                    if reply.code != 220 && advertised {
                        let class = if reply.is_transient() {
                            ProbeErrorClass::Starttls4xx
                        } else {
                            ProbeErrorClass::Starttls5xx
                        };
                        self.s.fail(class, format!("STARTTLS {}", reply.code));
                    }
                    self.s.starttls_reply = Some(reply.clone());
                }
                ProbeState::ExpectTlsEhlo => {
                    if !reply.is_positive() {
                        self.s.fail(
                            ProbeErrorClass::PostTlsError,
                            format!("EHLO inside TLS {}", reply.code),
                        );
                    }
                    self.s.tls_ehlo = Some(reply.clone());
                }
                _ => {}
            }
            step = self.script.on_reply(&reply);
        }
    }

    async fn read_reply<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        in_tls: bool,
        state: ProbeState,
    ) -> Option<Reply> {
        let end = (Instant::now() + self.opts.timeout).min(self.deadline);
        let mut buf = [0u8; 2048];
        loop {
            match self.parser.next_reply() {
                Ok(Some(r)) => return Some(r),
                Ok(None) => {}
                Err(e @ (ReplyError::LineTooLong { .. } | ReplyError::ReplyTooLarge { .. })) => {
                    self.s.fail(ProbeErrorClass::ReplyTooLong, e.to_string());
                    return None;
                }
                Err(e) => {
                    self.s.fail(ProbeErrorClass::ProtocolError, e.to_string());
                    return None;
                }
            }
            match timeout_at(end, io.read(&mut buf)).await {
                Err(_) if end >= self.deadline => {
                    self.s
                        .fail(ProbeErrorClass::SessionDeadline, "session deadline");
                    return None;
                }
                Err(_) => {
                    let class = if state == ProbeState::ExpectGreeting {
                        ProbeErrorClass::GreetingTimeout
                    } else {
                        ProbeErrorClass::ReadTimeout
                    };
                    self.s.fail(class, "no reply in time");
                    return None;
                }
                Ok(Ok(0)) => {
                    self.s.fail(
                        ProbeErrorClass::ConnectionClosed,
                        "connection closed by peer",
                    );
                    return None;
                }
                Ok(Ok(n)) => {
                    self.record(in_tls, false, &buf[..n]);
                    self.parser.feed(&buf[..n]);
                }
                Ok(Err(e)) => {
                    self.s
                        .fail(ProbeErrorClass::ConnectionClosed, e.to_string());
                    return None;
                }
            }
        }
    }
}

/// Runs one canary dialogue against `target`. Never fails: every outcome is in the
/// [`Session`].
pub async fn run_session(dialer: &Dialer, target: SocketAddr, opts: &ProbeOptions) -> Session {
    let start = Instant::now();
    let mut d = Driver {
        opts,
        s: Session {
            probed_at: Some(UtcTime::now()),
            target: Some(target),
            implicit_tls: opts.implicit_tls,
            ..Session::default()
        },
        script: ProbeScript::new(
            match &opts.token {
                Some(t) => format!("{t}.{}", opts.ehlo_name),
                None => opts.ehlo_name.clone(),
            },
            opts.implicit_tls,
        ),
        parser: ReplyParser::new(1024, 64 * 1024),
        deadline: start + opts.session_deadline,
    };
    let mut tcp = match dialer.connect(target).await {
        Ok(t) => t,
        Err(e) => {
            d.s.fail(mxray_smtp::dial_error_class(&e), e.to_string());
            d.s.total_ms = ms(start.elapsed());
            return d.s;
        }
    };
    d.s.connect_ms = Some(ms(start.elapsed()));
    d.s.local = tcp.local_addr().ok();
    d.deadline = Instant::now() + opts.session_deadline;
    let first = d.script.first_step();
    let step = d.converse(&mut tcp, first).await;
    if step != ProbeStep::StartTls {
        let _ = timeout_at(d.deadline, tcp.shutdown()).await;
        d.s.total_ms = ms(start.elapsed());
        return d.s;
    }
    d.s.tls_attempted = true;
    let early = d.parser.take_unconsumed();
    let io = mxray_smtp::Prefixed::new(early, tcp);
    let name = opts
        .sni
        .as_deref()
        .and_then(|n| ServerName::try_from(n.to_owned()).ok())
        .filter(|n| matches!(n, ServerName::DnsName(_)))
        .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()));
    d.s.log("C: ", b"[TLS handshake]");
    let connector = TlsConnector::from(tls_client_config());
    let end = (Instant::now() + opts.timeout).min(d.deadline);
    let mut tls = match timeout_at(end, connector.connect(name, io)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            let (class, alert, detail) = mxray_smtp::classify_tls_error(&e);
            d.s.tls_alert = alert;
            d.s.fail(class, format!("TLS handshake: {detail}"));
            d.s.total_ms = ms(start.elapsed());
            return d.s;
        }
        Err(_) => {
            d.s.fail(ProbeErrorClass::TlsTimeout, "TLS handshake timed out");
            d.s.total_ms = ms(start.elapsed());
            return d.s;
        }
    };
    {
        let conn = tls.get_ref().1;
        d.s.tls_completed = true;
        d.s.tls_version = conn.protocol_version().map(|v| match v {
            ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
            ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
            other => format!("{other:?}"),
        });
        d.s.cipher = conn.negotiated_cipher_suite().map(|s| {
            s.suite()
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{:?}", s.suite()))
        });
        d.s.kx_group = conn.negotiated_key_exchange_group().map(|g| {
            g.name()
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{:?}", g.name()))
        });
        d.s.chain = conn
            .peer_certificates()
            .map(|c| c.iter().map(|c| c.as_ref().to_vec()).collect())
            .unwrap_or_default();
    }
    // Bytes after the 220 belong to the handshake; a fresh parser for the TLS phase.
    d.parser = ReplyParser::new(1024, 64 * 1024);
    let step = d.script.on_tls();
    d.converse(&mut tls, step).await;
    let close_by = (Instant::now() + Duration::from_secs(1)).min(d.deadline);
    let _ = timeout_at(close_by, tls.shutdown()).await;
    d.s.total_ms = ms(start.elapsed());
    d.s
}

// ---------------------------------------------------------------------------------------
// The control-endpoint client.

/// A canary's control endpoint and the key that authenticates it ([`crate::auth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlEndpoint {
    /// Its address.
    pub addr: SocketAddr,
    /// The canary's control key.
    pub key: ControlKey,
}

/// Longest control answer read (a log entry is at most 4 x 16 KiB of bytes, escaped).
const MAX_CONTROL_ANSWER: usize = 1024 * 1024;

/// Sends one authenticated control request and reads one authenticated JSON line back.
///
/// Errors: [`CanaryError::Control`] when the endpoint cannot be asked (connect, timeout,
/// close, oversize), [`CanaryError::Key`] when the canary refused the request's MAC, and
/// [`CanaryError::Unauthenticated`] when the answer's MAC does not verify.
async fn control_request(
    dialer: &Dialer,
    control: &ControlEndpoint,
    command: &str,
    timeout: Duration,
) -> Result<serde_json::Value, CanaryError> {
    let addr = control.addr;
    let err = |m: String| CanaryError::Control(format!("{addr}: {m}"));
    let nonce = auth::new_nonce()?;
    let end = Instant::now() + timeout;
    let mut s = match timeout_at(end, dialer.connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(err(e.to_string())),
        Err(_) => return Err(err("connect timed out".into())),
    };
    let line = auth::request_line(&control.key, command, &nonce);
    match timeout_at(end, s.write_all(line.as_bytes())).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(err(format!("write: {e}"))),
        Err(_) => return Err(err("timed out".into())),
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            buf.truncate(nl);
            break;
        }
        if buf.len() > MAX_CONTROL_ANSWER {
            return Err(err("answer larger than 1 MiB".into()));
        }
        match timeout_at(end, s.read(&mut chunk)).await {
            Ok(Ok(0)) => return Err(err("closed without an answer".into())),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(err(format!("read: {e}"))),
            Err(_) => return Err(err("timed out".into())),
        }
    }
    let _ = timeout_at(end, s.shutdown()).await;
    let json = match auth::open_answer(&control.key, command, &nonce, &buf) {
        Ok(json) => json,
        Err(AnswerError::Refused) => {
            return Err(CanaryError::Key(format!(
                "{addr}: the canary refused the control key (fingerprint {}): not the key \
                 its `mxray canary serve` wrote",
                control.key.fingerprint()
            )))
        }
        Err(AnswerError::Forged(why)) => {
            return Err(CanaryError::Unauthenticated(format!(
                "{addr}: {command}: {why}"
            )))
        }
    };
    // Authenticated, so the canary's own bytes: nonsense here is a canary bug, not the path.
    serde_json::from_str(json).map_err(|e| err(format!("not JSON: {e}")))
}

/// Asks a canary's control endpoint for its [`Expectation`]. A wrong key is
/// [`CanaryError::Key`]; an answer that fails authentication [`CanaryError::Unauthenticated`]
/// (see [`control_forged`] to record it).
pub async fn fetch_expectation(
    dialer: &Dialer,
    control: &ControlEndpoint,
    timeout: Duration,
) -> Result<Expectation, CanaryError> {
    let v = control_request(dialer, control, "EXPECT", timeout).await?;
    serde_json::from_value(v)
        .map_err(|e| CanaryError::Control(format!("{}: bad EXPECT answer: {e}", control.addr)))
}

/// Asks a canary's control endpoint what it received from `client`.
///
/// The key is taken as verified (by [`fetch_expectation`] or a signed expectation file), so
/// an answer that fails authentication, including an unauthenticated refusal (anyone on the
/// path can send one), is [`CanaryView::Forged`], never merely unavailable: otherwise a path
/// could hide its rewriting of the client direction by faking a refusal.
pub async fn fetch_client_log(
    dialer: &Dialer,
    control: &ControlEndpoint,
    client: SocketAddr,
    timeout: Duration,
) -> CanaryView {
    log_request(dialer, control, &format!("LOG {client}"), timeout).await
}

/// Asks a canary's control endpoint for the newest connection whose received bytes contain
/// `token` (see [`ProbeOptions::token`]). Authentication as in [`fetch_client_log`].
pub async fn fetch_client_log_by_token(
    dialer: &Dialer,
    control: &ControlEndpoint,
    token: &str,
    timeout: Duration,
) -> CanaryView {
    log_request(dialer, control, &format!("FIND {token}"), timeout).await
}

async fn log_request(
    dialer: &Dialer,
    control: &ControlEndpoint,
    command: &str,
    timeout: Duration,
) -> CanaryView {
    let addr = control.addr;
    match control_request(dialer, control, command, timeout).await {
        Err(CanaryError::Unauthenticated(why)) => CanaryView::Forged(why),
        Err(CanaryError::Key(why)) => CanaryView::Forged(format!(
            "{why}; the key was verified before, so this refusal is not the canary's"
        )),
        Err(e) => CanaryView::Unavailable(e.to_string()),
        Ok(v) if v.get("error").and_then(|e| e.as_str()) == Some("not_found") => {
            CanaryView::NotFound
        }
        Ok(v) if v.get("error").is_some() => {
            CanaryView::Unavailable(format!("{addr}: canary answered {v}"))
        }
        Ok(v) => match serde_json::from_value::<ClientLog>(v) {
            Ok(log) => CanaryView::Log(Box::new(log)),
            Err(e) => CanaryView::Unavailable(format!("{addr}: bad LOG answer: {e}")),
        },
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

/// `canary probe`: one session to `target`, then (when `control` is given and the session
/// connected) the canary's log of it, then the comparison. `control`'s key must have been
/// verified already (it gave `expected`, or verified its file): see [`fetch_client_log`].
pub async fn probe(
    dialer: &Dialer,
    target: SocketAddr,
    expected: &Expectation,
    control: Option<&ControlEndpoint>,
    opts: &ProbeOptions,
) -> CanaryOutcome {
    let mut opts = opts.clone();
    if opts.token.is_none() {
        // The random tail of a UUID v7: unique enough to find one session in a canary's log.
        let u = uuid::Uuid::now_v7().simple().to_string();
        opts.token = Some(format!("c{}", &u[u.len() - 12..]));
    }
    let session = run_session(dialer, target, &opts).await;
    let mut view = match (control, session.local) {
        (Some(c), Some(local)) => fetch_client_log(dialer, c, local, opts.timeout).await,
        _ => CanaryView::NotAsked,
    };
    if let (CanaryView::NotFound, Some(c), Some(token)) = (&view, control, &opts.token) {
        view = fetch_client_log_by_token(dialer, c, token, opts.timeout).await;
    }
    let report = compare(expected, &session, &view, &opts.vantage);
    CanaryOutcome { report, session }
}

/// Result of the vantage self-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VantageCheck {
    /// open | blocked | intercepted (not_checked when mxray's own policy refused the target).
    pub port25: Port25Check,
    /// The local address of the control connection: the vantage's source address as far as
    /// this host can tell (NAT may change it on the way).
    pub source_ip: Option<IpAddr>,
    /// In words, with the first divergence when intercepted.
    pub detail: String,
}

/// Checks the vantage against a control target (a canary's SMTP address, normally port
/// 25): `open` when every byte and the certificate are the canary's, `blocked` when no SMTP
/// session is possible (refused, timeout, unreachable, or accepted and silent),
/// `intercepted` when something answered but not exactly as the canary does.
pub async fn self_check(
    control: SocketAddr,
    expected: &Expectation,
    dialer: &Dialer,
    timeout: Duration,
) -> VantageCheck {
    let opts = ProbeOptions {
        timeout,
        session_deadline: timeout.saturating_mul(6),
        implicit_tls: control.port() == 465,
        ..ProbeOptions::default()
    };
    let session = run_session(dialer, control, &opts).await;
    let report = compare(expected, &session, &CanaryView::NotAsked, &opts.vantage);
    let source_ip = session.local.map(|a| a.ip());
    let got_bytes = !session.received_plain.is_empty() || session.tls_completed;
    let port25 = match report.verdict {
        Verdict::Clean => Port25Check::Open,
        Verdict::Blocked => Port25Check::Blocked,
        Verdict::Tampered => Port25Check::Intercepted,
        Verdict::Error if report.error_class.is_some_and(is_policy_class) => {
            Port25Check::NotChecked
        }
        Verdict::Error if got_bytes => Port25Check::Intercepted,
        Verdict::Error => Port25Check::Blocked,
    };
    VantageCheck {
        port25,
        source_ip,
        detail: report.detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::CannedReplies;

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
