//! One canary session through the scanner's SMTP client driver ([`mxray_smtp::driver`]):
//! [`ProbeScript`]'s moves, what each reply and failure means for the canary probe, and every
//! byte recorded per direction and phase. [`run_session`] is the only I/O here.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mxray_model::{ProbeErrorClass, UtcTime};
use mxray_net::units::millis;
use mxray_net::Dialer;
use mxray_smtp::cert::sha256_hex;
use mxray_smtp::driver::{
    drive, Limits, Phase, Script, Step, TlsClient, TlsFailure, TlsSetup, Wire,
};
use mxray_smtp::machine::IoFailure;
use mxray_smtp::reply::{advertises_starttls, ehlo_keywords, Reply};
use mxray_smtp::tls::rustls_engine;
use mxray_smtp::SmtpError;
use rustls::ClientConfig;
use tokio::time::Instant;

use crate::script::{ProbeScript, ProbeState};

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
    /// [`crate::probe()`] fills in a random one when this is `None`; [`run_session`] sends the plain
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
        self.chain.iter().map(|c| sha256_hex(c)).collect()
    }
}

/// The canary probe's dialogue under the driver.
#[derive(Debug)]
struct CanaryDialogue {
    script: ProbeScript,
    s: Session,
    max_bytes: usize,
}

impl CanaryDialogue {
    fn fail(&mut self, class: ProbeErrorClass, detail: impl Into<String>) {
        if self.s.error.is_none() {
            self.s.error = Some((class, detail.into()));
        }
    }
}

impl Script for CanaryDialogue {
    fn first_step(&self) -> Step {
        self.script.first_step()
    }

    fn phase(&self) -> Phase {
        match self.script.state() {
            ProbeState::ExpectGreeting => Phase::Greeting,
            ProbeState::ExpectEhlo => Phase::Ehlo,
            ProbeState::ExpectStartTls => Phase::StartTls,
            ProbeState::ExpectTls => Phase::TlsHandshake,
            ProbeState::ExpectTlsEhlo => Phase::PostTlsEhlo,
            ProbeState::ExpectQuit => Phase::Quit,
            ProbeState::Done => Phase::Closed,
        }
    }

    fn reply(&mut self, reply: Reply) -> Step {
        use ProbeErrorClass as C;
        // A refusal's class by its first digit: (4xx class, 5xx class); none for a success.
        let refused = |r: &Reply, four: C, five: C| {
            (!r.is_positive()).then_some(if r.is_transient() { four } else { five })
        };
        let code = reply.code;
        let failure = match self.script.state() {
            ProbeState::ExpectGreeting => {
                let f = refused(&reply, C::Greeting4xx, C::Greeting5xx);
                self.s.greeting = Some(reply.clone());
                f.map(|c| (c, format!("greeting {code}")))
            }
            ProbeState::ExpectEhlo => {
                let f = refused(&reply, C::EhloRejected, C::EhloRejected);
                self.s.ehlo = Some(reply.clone());
                f.map(|c| (c, format!("EHLO {code}")))
            }
            ProbeState::ExpectStartTls => {
                let advertised = self
                    .s
                    .ehlo
                    .as_ref()
                    .is_some_and(|e| advertises_starttls(&ehlo_keywords(e)));
                let f = (code != 220 && advertised).then(|| {
                    if reply.is_transient() {
                        C::Starttls4xx
                    } else {
                        C::Starttls5xx
                    }
                });
                self.s.starttls_reply = Some(reply.clone());
                f.map(|c| (c, format!("STARTTLS {code}")))
            }
            ProbeState::ExpectTlsEhlo => {
                let f = refused(&reply, C::PostTlsError, C::PostTlsError);
                self.s.tls_ehlo = Some(reply.clone());
                f.map(|c| (c, format!("EHLO inside TLS {code}")))
            }
            _ => None,
        };
        if let Some((class, detail)) = failure {
            self.fail(class, detail);
        }
        self.script.on_reply(&reply)
    }

    fn read_failed(&mut self, failure: IoFailure) -> Step {
        let (class, detail) = match failure {
            IoFailure::TooLong(d) => (ProbeErrorClass::ReplyTooLong, d),
            IoFailure::Malformed(d) => (ProbeErrorClass::ProtocolError, d),
            IoFailure::Deadline => (ProbeErrorClass::SessionDeadline, "session deadline".into()),
            IoFailure::Timeout if self.script.state() == ProbeState::ExpectGreeting => {
                (ProbeErrorClass::GreetingTimeout, "no reply in time".into())
            }
            IoFailure::Timeout => (ProbeErrorClass::ReadTimeout, "no reply in time".into()),
            IoFailure::Closed(d) => (ProbeErrorClass::ConnectionClosed, d),
            other => (ProbeErrorClass::ConnectionClosed, format!("{other:?}")),
        };
        self.fail(class, detail);
        Step::Close
    }

    fn write_failed(&mut self, failure: IoFailure) -> Step {
        match failure {
            IoFailure::Closed(d) => self.fail(ProbeErrorClass::ConnectionClosed, d),
            _ => self.fail(ProbeErrorClass::ReadTimeout, "write timed out"),
        }
        Step::Close
    }

    fn tls_done(&mut self) -> Step {
        self.s.tls_completed = true;
        self.script.on_tls()
    }

    fn tls_failed(&mut self, failure: TlsFailure) {
        match failure {
            TlsFailure::Failed(f) => {
                self.s.tls_alert = f.alert;
                self.fail(f.class, f.detail);
            }
            TlsFailure::Timeout | TlsFailure::Deadline => {
                self.fail(ProbeErrorClass::TlsTimeout, "TLS handshake timed out")
            }
        }
    }

    fn wire(&mut self, direction: Wire, bytes: &[u8]) {
        let s = &mut self.s;
        let v = match (self.script.in_tls(), direction) {
            (false, Wire::Received) => &mut s.received_plain,
            (false, Wire::Sent) => &mut s.sent_plain,
            (true, Wire::Received) => &mut s.received_tls,
            (true, Wire::Sent) => &mut s.sent_tls,
        };
        let room = self.max_bytes.saturating_sub(v.len());
        if bytes.len() > room {
            s.truncated = true;
        }
        v.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

/// The scanner's rustls client configuration (recording verifier, no resumption), built once.
fn tls_config() -> &'static Result<Arc<ClientConfig>, SmtpError> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, SmtpError>> = OnceLock::new();
    CONFIG.get_or_init(rustls_engine::client_config)
}

/// Runs one canary dialogue against `target`. Never fails: every outcome is in the
/// [`Session`].
///
/// Bounds: `opts.timeout` for each write, each reply and the handshake, `opts.session_deadline`
/// from the end of the connect, lines of 1 KiB, replies of 64 KiB, an 8 KiB transcript and
/// `opts.max_bytes` per direction and phase.
pub async fn run_session(dialer: &Dialer, target: SocketAddr, opts: &ProbeOptions) -> Session {
    let start = Instant::now();
    let ehlo = match &opts.token {
        Some(t) => format!("{t}.{}", opts.ehlo_name),
        None => opts.ehlo_name.clone(),
    };
    let mut d = CanaryDialogue {
        script: ProbeScript::new(ehlo, opts.implicit_tls),
        s: Session {
            probed_at: Some(UtcTime::now()),
            target: Some(target),
            implicit_tls: opts.implicit_tls,
            ..Session::default()
        },
        max_bytes: opts.max_bytes,
    };
    let config = match tls_config() {
        Ok(c) => c,
        Err(e) => {
            d.fail(ProbeErrorClass::TlsError, e.to_string());
            return d.s;
        }
    };
    let tcp = match dialer.connect(target).await {
        Ok(t) => t,
        Err(e) => {
            d.fail(mxray_smtp::dial_error_class(&e), e.to_string());
            d.s.total_ms = millis(start.elapsed());
            return d.s;
        }
    };
    d.s.connect_ms = Some(millis(start.elapsed()));
    d.s.local = tcp.local_addr().ok();
    let limits = Limits {
        greeting_timeout: opts.timeout,
        command_timeout: opts.timeout,
        tls_timeout: opts.timeout,
        session_deadline: opts.session_deadline,
        max_line: 1024,
        max_reply: 64 * 1024,
        max_transcript: 8 * 1024,
    };
    let tls = TlsSetup {
        client: TlsClient::Rustls {
            config,
            openssl_retry: false,
        },
        sni: opts.sni.as_deref(),
        ip: target.ip(),
    };
    let driven = drive(&mut d, tcp, tls, &limits).await;
    let mut s = d.s;
    s.tls_attempted = driven.tls_attempted;
    if let Some(n) = driven.negotiated {
        s.tls_version = Some(n.version).filter(|v| !v.is_empty());
        s.cipher = Some(n.cipher).filter(|c| !c.is_empty());
        s.kx_group = n.kx_group;
        s.chain = n.chain.iter().map(|c| c.as_ref().to_vec()).collect();
    }
    s.transcript = driven.transcript;
    s.total_ms = millis(start.elapsed());
    s
}
