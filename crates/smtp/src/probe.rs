//! The thin tokio driver: sockets, timers and the TLS engines ([`crate::tls`]) around the
//! sans-io [`Dialogue`]. What the session showed is turned into the record by the pure
//! [`crate::judge`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mxray_model::{
    CertificateRecord, ProbeErrorClass, SmtpProbeRecord, TlsEngine, TlsFallbackReason, UtcTime,
};
use mxray_net::{DialError, Dialer, Refusal};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, ClientConfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::{timeout_at, Instant};
use uuid::Uuid;

use crate::dane::TlsaInput;
use crate::danger::EngineLimit;
use crate::judge::{self, FirstSession, Judge, SessionFacts, Timings, TlsFacts};
use crate::machine::{Action, Dialogue, IoFailure, State};
use crate::pkix::PkixChecker;
use crate::reply::{Reply, ReplyError, ReplyParser};
use crate::tls::openssl_engine::OpensslEngine;
use crate::tls::{rustls_engine, HandshakeFailure, Negotiated, TlsConnection};
use crate::{ProbeConfig, SmtpError, StarttlsOverride};

/// One destination to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Destination address.
    pub ip: IpAddr,
    /// Destination port (25 unless `--smtp-port`).
    pub port: u16,
    /// The name sent as SNI and checked by PKIX: the TLSA base domain for a DANE host
    /// (RFC 7672 §8.1), else the MX host name. None for a bare IP target: no SNI,
    /// `pkix_valid` null.
    pub sni: Option<String>,
    /// The host's TLSA RRset as it applies to this address, when the DNS side found one (or
    /// a bogus/failed answer). A fact about the host, never about a domain using it.
    pub tlsa: Option<TlsaInput>,
}

impl ProbeTarget {
    /// A bare `ip:port` target: no SNI, no TLSA.
    pub fn new(ip: IpAddr, port: u16) -> Self {
        ProbeTarget {
            ip,
            port,
            sni: None,
            tlsa: None,
        }
    }

    /// Whether STARTTLS is sent even when the EHLO reply does not advertise it: always or
    /// never by `--send-starttls-override`, otherwise (`policy`) when the host's own DNS
    /// requires TLS (a secure TLSA RRset). The decision rests on the host alone, so a probe
    /// shared by several domains behaves the same whichever domain came first.
    pub fn forces_starttls(&self, mode: StarttlsOverride) -> bool {
        match mode {
            StarttlsOverride::Always => true,
            StarttlsOverride::Never => false,
            StarttlsOverride::Policy => self.tlsa.as_ref().is_some_and(TlsaInput::requires_tls),
        }
    }
}

/// What one probe produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutput {
    /// The `smtp_probe` record.
    pub record: SmtpProbeRecord,
    /// One `certificate` record per distinct certificate of the chain, leaf first.
    pub certificates: Vec<CertificateRecord>,
}

/// Probes targets; cheap to clone (shared state behind an `Arc`).
#[derive(Debug, Clone)]
pub struct Prober {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: ProbeConfig,
    dialer: Dialer,
    scan_id: Uuid,
    vantage: String,
    tls: Arc<ClientConfig>,
    openssl: OpensslEngine,
    pkix: PkixChecker,
    permits: Semaphore,
}

impl Inner {
    fn judge(&self) -> Judge<'_> {
        Judge {
            scan_id: self.scan_id,
            vantage: &self.vantage,
            pkix: &self.pkix,
            max_reply: self.cfg.max_reply,
            now: UnixTime::now(),
        }
    }
}

impl Prober {
    /// A prober; fails only when the configuration itself is unusable (bad `--ca-file`).
    pub fn new(
        cfg: ProbeConfig,
        dialer: Dialer,
        scan_id: Uuid,
        vantage: String,
    ) -> Result<Self, SmtpError> {
        let tls = rustls_engine::client_config()?;
        let openssl = OpensslEngine::new()?;
        let pkix = PkixChecker::new(&cfg.extra_roots_pem)?;
        let permits = Semaphore::new(cfg.concurrency.max(1));
        Ok(Prober {
            inner: Arc::new(Inner {
                cfg,
                dialer,
                scan_id,
                vantage,
                tls,
                openssl,
                pkix,
                permits,
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &ProbeConfig {
        &self.inner.cfg
    }

    /// Probes one target. Never fails: whatever the peer (or the policy) did is in the record.
    ///
    /// The rate limiters are waited for before a concurrency slot is taken, so a probe held
    /// back by the per-IP limit does not keep a slot from probes of other addresses. A probe
    /// that then had to wait for a slot asks the limiters again, so connects released
    /// together after a slot shortage still keep the configured spacing.
    ///
    /// When the rustls handshake fails for a reason OpenSSL can overcome
    /// ([`crate::tls::fallback`]), a second, complete SMTP session follows with OpenSSL. It
    /// waits for the global, per-IP and per-prefix rate limits like any new connection. The
    /// record is the second session's, with `tls_engine = openssl`, the first failure in
    /// `tls_fallback_reason`/`_detail` and the first transcript in `tls_fallback_transcript`.
    pub async fn probe(&self, target: &ProbeTarget) -> ProbeOutput {
        let probed_at = UtcTime::now();
        let mut limiter_wait = Duration::ZERO;
        let admitted = self.inner.dialer.admit(target.ip).await;
        if let Ok(w) = admitted {
            limiter_wait += w;
        }
        let slot_wait = Instant::now();
        // The semaphore is never closed; if it were, probing without a permit is harmless.
        let _permit = self.inner.permits.acquire().await.ok();
        if admitted.is_ok() && slot_wait.elapsed() > Duration::from_millis(100) {
            if let Ok(w) = self.inner.dialer.admit(target.ip).await {
                limiter_wait += w;
            }
        }
        let start = Instant::now();
        let force = target.forces_starttls(self.inner.cfg.starttls_override);
        let mut run = Run::new(&self.inner, start, force, TlsEngine::Rustls);
        run.limiter_wait_ms = Some(ms(limiter_wait));
        match admitted {
            Err(e) => run.pre_connect = Some((dial_error_class(&e), e.to_string())),
            Ok(_) => run.session(target).await,
        }
        let Some((reason, detail)) = run.fallback.take() else {
            return run.finish(target, probed_at);
        };
        // The retry is a new connection: polite like any other.
        let mut retry = Run::new(&self.inner, Instant::now(), force, TlsEngine::Openssl);
        match self.inner.dialer.admit(target.ip).await {
            Err(e) => retry.pre_connect = Some((dial_error_class(&e), e.to_string())),
            Ok(w) => {
                retry.limiter_wait_ms = Some(ms(limiter_wait + w));
                retry.first = Some(FirstSession {
                    reason,
                    detail,
                    transcript: run.transcript,
                });
                retry.session(target).await;
            }
        }
        retry.finish(target, probed_at)
    }
}

/// Per-probe mutable state of the driver.
struct Run<'a> {
    inner: &'a Inner,
    start: Instant,
    deadline: Instant,
    dialogue: Dialogue,
    parser: ReplyParser,
    transcript: String,
    transcript_full: bool,
    connect_ms: Option<u32>,
    greeting_ms: Option<u32>,
    ehlo_ms: Option<u32>,
    starttls_ms: Option<u32>,
    tls_ms: Option<u32>,
    limiter_wait_ms: Option<u32>,
    sent_at: Instant,
    sni_sent: Option<String>,
    tls_version: Option<String>,
    cipher: Option<String>,
    kx_group: Option<String>,
    chain: Vec<CertificateDer<'static>>,
    pre_connect: Option<(ProbeErrorClass, String)>,
    /// The engine this session's handshake uses.
    engine: TlsEngine,
    /// A handshake was attempted (so `tls_engine` is recorded).
    tls_attempted: bool,
    /// Set when this session's rustls handshake failed for a reason OpenSSL can overcome.
    fallback: Option<(TlsFallbackReason, String)>,
    /// The first session, when this one is the OpenSSL retry.
    first: Option<FirstSession>,
}

fn ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl<'a> Run<'a> {
    fn new(inner: &'a Inner, start: Instant, force_starttls: bool, engine: TlsEngine) -> Self {
        let cfg = &inner.cfg;
        Run {
            inner,
            start,
            deadline: start + cfg.session_deadline,
            dialogue: Dialogue::new(cfg.ehlo_name.clone()).force_starttls(force_starttls),
            parser: ReplyParser::new(cfg.max_line, cfg.max_reply),
            transcript: String::new(),
            transcript_full: false,
            connect_ms: None,
            greeting_ms: None,
            ehlo_ms: None,
            starttls_ms: None,
            tls_ms: None,
            limiter_wait_ms: None,
            sent_at: start,
            sni_sent: None,
            tls_version: None,
            cipher: None,
            kx_group: None,
            chain: Vec::new(),
            pre_connect: None,
            engine,
            tls_attempted: false,
            fallback: None,
            first: None,
        }
    }

    fn log(&mut self, prefix: &str, text: &str) {
        if self.transcript_full {
            return;
        }
        for line in text.lines() {
            let add = prefix.len() + line.len() + 2;
            if self.transcript.len() + add > self.inner.cfg.max_transcript {
                self.transcript.push_str("[transcript truncated]\r\n");
                self.transcript_full = true;
                return;
            }
            self.transcript.push_str(prefix);
            self.transcript.push_str(line);
            self.transcript.push_str("\r\n");
        }
    }

    async fn session(&mut self, target: &ProbeTarget) {
        let addr = SocketAddr::new(target.ip, target.port);
        let t0 = Instant::now();
        // The rate limits were waited for before (`Prober::probe`): `connect_ms` is the TCP
        // handshake alone. No session deadline around connect: it has its own timeout, and
        // the session deadline starts once the connection is up.
        let tcp = match self.inner.dialer.connect_admitted(addr).await {
            Err(e) => {
                self.pre_connect = Some((dial_error_class(&e), e.to_string()));
                return;
            }
            Ok(s) => s,
        };
        let now = Instant::now();
        self.connect_ms = Some(ms(now - t0));
        self.sent_at = now;
        self.deadline = now + self.inner.cfg.session_deadline;
        let mut tcp = tcp;
        if self.inner.cfg.implicit_tls_ports.contains(&target.port) {
            // RFC 8314 §3.3: TLS first, then the greeting inside it.
            self.dialogue = Dialogue::implicit_tls(self.inner.cfg.ehlo_name.clone());
            self.handshake(tcp, target).await;
            return;
        }
        let action = self.converse(&mut tcp, None).await;
        if action != Action::StartTls {
            let _ = timeout_at(self.deadline, tcp.shutdown()).await;
            return;
        }
        self.handshake(tcp, target).await;
    }

    /// Runs the dialogue over `io` until it asks for TLS or to close. `first` is sent before
    /// the first read (the post-TLS EHLO).
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        first: Option<Action>,
    ) -> Action {
        let mut pending = first;
        loop {
            if let Some(action) = pending.take() {
                match action {
                    Action::Send(cmd) => {
                        self.log("C: ", &cmd);
                        let line = format!("{cmd}\r\n");
                        let phase_end =
                            (Instant::now() + self.inner.cfg.command_timeout).min(self.deadline);
                        let sent = match timeout_at(phase_end, io.write_all(line.as_bytes())).await
                        {
                            Ok(Ok(())) => Ok(()),
                            Ok(Err(e)) => Err(IoFailure::Closed(format!("write: {e}"))),
                            Err(_) if Instant::now() >= self.deadline => Err(IoFailure::Deadline),
                            Err(_) => Err(IoFailure::Timeout),
                        };
                        if let Err(f) = sent {
                            let a = self.dialogue.on_io_failure(f);
                            if a == Action::Close {
                                return a;
                            }
                            pending = Some(a);
                            continue;
                        }
                        self.sent_at = Instant::now();
                    }
                    other => return other,
                }
            }
            let state = self.dialogue.state();
            let timeout = if state == State::ExpectGreeting {
                self.inner.cfg.greeting_timeout
            } else {
                self.inner.cfg.command_timeout
            };
            let action = match self.read_reply(io, timeout).await {
                Ok(reply) => {
                    self.log("S: ", &reply.raw_lossy());
                    let elapsed = ms(self.sent_at.elapsed());
                    match state {
                        State::ExpectGreeting => self.greeting_ms = Some(elapsed),
                        State::ExpectEhloReply | State::ExpectHeloReply => {
                            self.ehlo_ms = Some(self.ehlo_ms.unwrap_or(0).saturating_add(elapsed))
                        }
                        State::ExpectStartTlsReply => self.starttls_ms = Some(elapsed),
                        _ => {}
                    }
                    self.dialogue.on_reply(reply)
                }
                Err(f) => {
                    if let IoFailure::Malformed(text) | IoFailure::TooLong(text) = &f {
                        let text = text.clone();
                        self.log("S: ", &format!("[{text}]"));
                    }
                    self.dialogue.on_io_failure(f)
                }
            };
            pending = Some(action);
        }
    }

    async fn read_reply<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        timeout: Duration,
    ) -> Result<Reply, IoFailure> {
        let phase_end = (Instant::now() + timeout).min(self.deadline);
        let mut buf = [0u8; 2048];
        loop {
            match self.parser.next_reply() {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e @ (ReplyError::LineTooLong { .. } | ReplyError::ReplyTooLarge { .. })) => {
                    return Err(IoFailure::TooLong(e.to_string()))
                }
                Err(e) => return Err(IoFailure::Malformed(e.to_string())),
            }
            match timeout_at(phase_end, io.read(&mut buf)).await {
                Err(_) if phase_end >= self.deadline => return Err(IoFailure::Deadline),
                Err(_) => return Err(IoFailure::Timeout),
                Ok(Ok(0)) => return Err(IoFailure::Closed("connection closed by peer".into())),
                Ok(Ok(n)) => self.parser.feed(&buf[..n]),
                Ok(Err(e)) => return Err(IoFailure::Closed(e.to_string())),
            }
        }
    }

    async fn handshake(&mut self, tcp: tokio::net::TcpStream, target: &ProbeTarget) {
        // Bytes the server sent after its 220 belong to the TLS handshake (or are garbage the
        // handshake will reject): hand them to the TLS engine instead of dropping them.
        let early = self.parser.take_unconsumed();
        let io = Prefixed::new(early, tcp);
        // SNI only for a DNS name (an address or an invalid name: none is sent).
        let sni = target
            .sni
            .as_deref()
            .map(|s| s.trim_end_matches('.'))
            .filter(|s| {
                matches!(
                    ServerName::try_from(s.to_owned()),
                    Ok(ServerName::DnsName(_))
                )
            })
            .map(str::to_owned);
        if sni.is_some() {
            self.sni_sent = target.sni.clone();
        }
        self.tls_attempted = true;
        let t0 = Instant::now();
        let phase_end = (t0 + self.inner.cfg.tls_timeout).min(self.deadline);
        let (inner, engine, ip) = (self.inner, self.engine, target.ip);
        let connecting = async move {
            match engine {
                TlsEngine::Rustls => {
                    rustls_engine::connect(&inner.tls, sni.as_deref(), ip, io).await
                }
                TlsEngine::Openssl => inner.openssl.connect(sni.as_deref(), io).await,
            }
        };
        let (mut tls, negotiated): (TlsConnection, Negotiated) =
            match timeout_at(phase_end, connecting).await {
                Ok(Ok(done)) => done,
                Ok(Err(HandshakeFailure {
                    class,
                    alert,
                    detail,
                    fallback,
                })) => {
                    let detail = format!("TLS handshake: {detail}");
                    if let (TlsEngine::Rustls, Some(reason)) = (self.engine, fallback) {
                        self.log("C: ", &format!("[{detail}; retrying with OpenSSL]"));
                        self.fallback = Some((reason, detail.clone()));
                    }
                    self.dialogue.on_tls_failed(class, alert, detail);
                    return;
                }
                Err(_) if phase_end >= self.deadline => {
                    self.dialogue.on_io_failure(IoFailure::Deadline);
                    return;
                }
                Err(_) => {
                    self.dialogue.on_tls_failed(
                        ProbeErrorClass::TlsTimeout,
                        None,
                        "TLS handshake timed out".into(),
                    );
                    return;
                }
            };
        self.tls_ms = Some(ms(t0.elapsed()));
        self.tls_version = Some(negotiated.version).filter(|v| !v.is_empty());
        self.cipher = Some(negotiated.cipher).filter(|c| !c.is_empty());
        self.kx_group = negotiated.kx_group;
        self.chain = negotiated.chain;
        self.log("C: ", &format!("[TLS handshake, {engine}]"));
        let first = if self.dialogue.observations().implicit_tls {
            self.dialogue.on_implicit_tls_established();
            // The greeting is timed from the end of the handshake.
            self.sent_at = Instant::now();
            None
        } else {
            Some(self.dialogue.on_tls_established())
        };
        self.converse(&mut tls, first).await;
        let close_by = (Instant::now() + Duration::from_secs(1)).min(self.deadline);
        let _ = timeout_at(close_by, tls.shutdown()).await;
    }

    fn finish(self, target: &ProbeTarget, probed_at: UtcTime) -> ProbeOutput {
        let facts = SessionFacts {
            probed_at,
            obs: self.dialogue.into_observations(),
            pre_connect: self.pre_connect,
            timings: Timings {
                connect_ms: self.connect_ms,
                greeting_ms: self.greeting_ms,
                ehlo_ms: self.ehlo_ms,
                starttls_ms: self.starttls_ms,
                tls_ms: self.tls_ms,
                total_ms: ms(self.start.elapsed()),
                limiter_wait_ms: self.limiter_wait_ms,
            },
            sni_sent: self.sni_sent,
            tls: TlsFacts {
                version: self.tls_version,
                cipher: self.cipher,
                kx_group: self.kx_group,
            },
            chain: self.chain,
            transcript: self.transcript,
            engine: self.tls_attempted.then_some(self.engine),
            first: self.first,
        };
        let out = judge::probe_output(target, facts, &self.inner.judge());
        tracing::debug!(ip = %out.record.ip, result = %out.record.result, error = ?out.record.error_class, "probe done");
        out
    }
}

/// The probe error class of a failed connect (shared with the canary probe).
pub fn dial_error_class(e: &DialError) -> ProbeErrorClass {
    match e {
        DialError::Blocked(Refusal::Blocklisted { .. }) => ProbeErrorClass::BlockedList,
        DialError::Blocked(_) => ProbeErrorClass::BlockedReserved,
        DialError::Refused => ProbeErrorClass::ConnectRefused,
        // Whether the reset reaches us in the connect or in the first read is a race; both
        // are the same server behaviour and get the same class.
        DialError::ResetAfterAccept => ProbeErrorClass::ConnectionClosed,
        DialError::Timeout(_) => ProbeErrorClass::ConnectTimeout,
        DialError::Unreachable(_) => ProbeErrorClass::ConnectUnreachable,
        DialError::NoSourceAddress { .. } => ProbeErrorClass::NoSourceAddress,
        _ => ProbeErrorClass::ConnectError,
    }
}

/// Maps a failed TLS handshake (the I/O error tokio-rustls returns) to the probe's error class,
/// the alert code received, if any, and a detail text. Shared with the canary probe so both
/// name the same failure the same way.
pub fn classify_tls_error(e: &io::Error) -> (ProbeErrorClass, Option<u8>, String) {
    let rustls_err = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_err {
        Some(rustls::Error::AlertReceived(alert)) => {
            let code = u8::from(*alert);
            // These alerts answer a ClientHello the server cannot work with: no common
            // version (TLS 1.0/1.1-only servers), cipher suite or group.
            let class = match alert {
                AlertDescription::ProtocolVersion
                | AlertDescription::HandshakeFailure
                | AlertDescription::InsufficientSecurity => ProbeErrorClass::TlsIncompatible,
                _ => ProbeErrorClass::TlsAlert,
            };
            (class, Some(code), format!("alert {code} ({alert:?})"))
        }
        Some(rustls::Error::PeerIncompatible(p)) => (
            ProbeErrorClass::TlsIncompatible,
            None,
            format!("incompatible peer: {p:?} (rustls speaks TLS 1.2/1.3 only)"),
        ),
        // A handshake signature with a key or algorithm rustls cannot verify (RSA under 2048
        // bits, DSA, SHA-1 where it was not offered): mxray's limit, not the server's fault.
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)))
            if other.0.downcast_ref::<EngineLimit>().is_some() =>
        {
            (ProbeErrorClass::TlsIncompatible, None, other.to_string())
        }
        Some(
            e @ rustls::Error::PeerMisbehaved(
                rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
            ),
        ) => (
            ProbeErrorClass::TlsIncompatible,
            None,
            format!("{e} (a signature scheme rustls does not offer, e.g. SHA-1)"),
        ),
        // Over the engine's size limits (a certificate message over 64 KiB, an oversized
        // record): mxray's limit, recorded apart so it is never read as a broken handshake.
        Some(
            e @ (rustls::Error::PeerSentOversizedRecord
            | rustls::Error::InvalidMessage(
                rustls::InvalidMessage::CertificatePayloadTooLarge
                | rustls::InvalidMessage::HandshakePayloadTooLarge
                | rustls::InvalidMessage::MessageTooLarge,
            )),
        ) => (ProbeErrorClass::TlsTooLarge, None, e.to_string()),
        Some(other) => (ProbeErrorClass::TlsError, None, other.to_string()),
        None => match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => (ProbeErrorClass::TlsReset, None, e.to_string()),
            _ => (ProbeErrorClass::TlsError, None, e.to_string()),
        },
    }
}

/// A stream that first yields `prefix`, then reads from `inner`: the bytes a line reader
/// already took off the socket after `220 Ready to start TLS` belong to the TLS handshake and
/// are handed to rustls this way. Shared with the canary probe.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner`, read after `prefix`.
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.pos);
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
