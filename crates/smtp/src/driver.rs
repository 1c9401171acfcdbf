//! The one SMTP client driver: sockets, timers and the TLS engines around any sans-io
//! dialogue that implements [`Script`].
//!
//! Two dialogues run through it: the scanner's [`crate::machine::Dialogue`] and the canary
//! probe's script (crate `mxray-canary-probe`). The driver owns everything that touches the
//! network, the same way for both: reading with bounded lines and replies
//! ([`ReplyParser`] with [`Limits::max_line`] / [`Limits::max_reply`]), a timeout on every
//! write, read and handshake, the whole-session deadline (from the end of the TCP connect),
//! the TLS upgrade (bytes read after `220` are handed to the engine, [`Prefixed`]), the capped
//! `C:`/`S:` transcript, the per-phase timings, and closing. The script decides what to send,
//! when to start TLS, and what every reply, failure and handshake outcome means.
//!
//! Connecting is the caller's: the scanner and the canary wait for mxray's rate limits in
//! different places, and `connect_ms` is measured around that.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mxray_model::{TlsEngine, TlsFallbackReason};
use mxray_net::units::millis;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::machine::IoFailure;
use crate::reply::{Reply, ReplyError, ReplyParser};
use crate::tls::openssl_engine::OpensslEngine;
use crate::tls::{rustls_engine, HandshakeFailure, Negotiated, TlsConnection};

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes (a command line with its CRLF), then read a reply.
    Send(Vec<u8>),
    /// Read a reply without sending anything (the greeting).
    Read,
    /// Run the TLS handshake, then report with [`Script::tls_done`] or [`Script::tls_failed`].
    StartTls,
    /// Close the connection: the dialogue is over.
    Close,
}

/// What the script waits for: chooses the read timeout and the timing a reply counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The greeting (also inside implicit TLS): [`Limits::greeting_timeout`], `greeting_ms`.
    Greeting,
    /// The reply to EHLO or HELO before TLS: `ehlo_ms` (summed over EHLO and HELO).
    Ehlo,
    /// The reply to STARTTLS: `starttls_ms`.
    StartTls,
    /// The TLS handshake.
    TlsHandshake,
    /// The reply to EHLO inside TLS.
    PostTlsEhlo,
    /// The reply to QUIT.
    Quit,
    /// Nothing more.
    Closed,
}

/// How a TLS handshake did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The engine failed; the detail reads `TLS handshake: …`.
    Failed(HandshakeFailure),
    /// [`Limits::tls_timeout`] expired.
    Timeout,
    /// The session deadline expired during the handshake.
    Deadline,
}

/// Which way bytes crossed the connection (for [`Script::wire`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Written by the client.
    Sent,
    /// Read from the server, as read (may hold the start of the next reply).
    Received,
}

/// A client dialogue with no I/O, driven by [`drive`].
pub trait Script {
    /// The first step once TCP is connected: [`Step::Read`] the greeting, or
    /// [`Step::StartTls`] on an implicit-TLS port.
    fn first_step(&self) -> Step;
    /// What the script waits for now.
    fn phase(&self) -> Phase;
    /// A complete reply arrived.
    fn reply(&mut self, reply: Reply) -> Step;
    /// Reading a reply failed (timeout, deadline, close, over the caps, not SMTP).
    fn read_failed(&mut self, failure: IoFailure) -> Step;
    /// Writing a command failed; by default the same as a failed read.
    fn write_failed(&mut self, failure: IoFailure) -> Step {
        self.read_failed(failure)
    }
    /// The TLS handshake completed; the next step runs inside TLS.
    fn tls_done(&mut self) -> Step;
    /// The TLS handshake failed; the connection is closed afterwards.
    fn tls_failed(&mut self, failure: TlsFailure);
    /// The raw bytes of each write and read (default: ignored).
    fn wire(&mut self, _direction: Wire, _bytes: &[u8]) {}
}

/// Every bound of one session (the scanner's defaults in [`Limits::default`]; the canary's
/// probe sets its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Waiting for the greeting. Default 20 s: postscreen's pre-greet pause is 6 s and some
    /// tarpits delay 10–15 s; RFC 5321's 5 minutes would let a tarpit hold a slot forever.
    pub greeting_timeout: Duration,
    /// Each write and each other reply (EHLO, HELO, STARTTLS, QUIT). Default 10 s, zgrab2's
    /// per-read default; a healthy MTA answers in milliseconds.
    pub command_timeout: Duration,
    /// The TLS handshake. Default 10 s.
    pub tls_timeout: Duration,
    /// The whole session, from the end of the TCP connect; caps every timeout above. Default
    /// 60 s: bounds the time any one server can hold a probe, whatever it does within the
    /// per-phase limits.
    pub session_deadline: Duration,
    /// Longest reply line. Default 2048 bytes: RFC 5321 §4.5.3.1.5 allows 512; real servers
    /// exceed it a little, nobody legitimate by 4x.
    pub max_line: usize,
    /// Largest (multi-line) reply. Default 16 KiB: the longest real EHLO replies are around
    /// 1 KiB.
    pub max_reply: usize,
    /// Longest transcript. Default 8 KiB: a full STARTTLS dialogue is about 1 KiB.
    pub max_transcript: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            greeting_timeout: Duration::from_secs(20),
            command_timeout: Duration::from_secs(10),
            tls_timeout: Duration::from_secs(10),
            session_deadline: Duration::from_secs(60),
            max_line: 2048,
            max_reply: 16 * 1024,
            max_transcript: 8 * 1024,
        }
    }
}

/// The TLS engine of a session.
#[derive(Debug, Clone, Copy)]
pub enum TlsClient<'a> {
    /// rustls with this configuration; with `openssl_retry`, a failure OpenSSL may overcome
    /// is noted in the transcript and in [`Driven::fallback`] for the caller's retry.
    Rustls {
        /// The client configuration.
        config: &'a Arc<ClientConfig>,
        /// An OpenSSL session follows a failure [`crate::tls::fallback`] names.
        openssl_retry: bool,
    },
    /// OpenSSL (the scanner's retry).
    Openssl(&'a OpensslEngine),
}

impl TlsClient<'_> {
    fn engine(&self) -> TlsEngine {
        match self {
            TlsClient::Rustls { .. } => TlsEngine::Rustls,
            TlsClient::Openssl(_) => TlsEngine::Openssl,
        }
    }
}

/// The TLS side of a session: engine, SNI and the address.
#[derive(Debug, Clone, Copy)]
pub struct TlsSetup<'a> {
    /// The engine.
    pub client: TlsClient<'a>,
    /// The SNI to send (a DNS name; None sends none).
    pub sni: Option<&'a str>,
    /// The server's address (rustls needs a name even when no SNI is sent).
    pub ip: IpAddr,
}

/// What the driver measured and captured; what the dialogue meant is in the script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Driven {
    /// Connect (or the end of the handshake, implicit TLS) to the complete greeting, ms.
    pub greeting_ms: Option<u32>,
    /// EHLO (and HELO) round trips, ms.
    pub ehlo_ms: Option<u32>,
    /// The STARTTLS round trip, ms.
    pub starttls_ms: Option<u32>,
    /// The TLS handshake, ms.
    pub tls_ms: Option<u32>,
    /// A handshake was attempted.
    pub tls_attempted: bool,
    /// The completed handshake's parameters and chain.
    pub negotiated: Option<Negotiated>,
    /// Why rustls failed and OpenSSL may do better, with the detail (only with
    /// `openssl_retry`).
    pub fallback: Option<(TlsFallbackReason, String)>,
    /// The `C:`/`S:` transcript, capped at [`Limits::max_transcript`].
    pub transcript: String,
}

/// Runs `script` over `tcp` (already connected) until it closes; never fails: every outcome
/// is in the script and the returned [`Driven`].
pub async fn drive<S: Script>(
    script: &mut S,
    mut tcp: TcpStream,
    tls: TlsSetup<'_>,
    limits: &Limits,
) -> Driven {
    let now = Instant::now();
    let mut d = Driver {
        script,
        limits,
        parser: ReplyParser::new(limits.max_line, limits.max_reply),
        deadline: now + limits.session_deadline,
        sent_at: now,
        transcript_full: false,
        out: Driven::default(),
    };
    let first = d.script.first_step();
    if d.converse(&mut tcp, first).await == Step::StartTls {
        d.handshake(tcp, tls).await;
    } else {
        let _ = timeout_at(d.deadline, tcp.shutdown()).await;
    }
    d.out
}

struct Driver<'a, S> {
    script: &'a mut S,
    limits: &'a Limits,
    parser: ReplyParser,
    deadline: Instant,
    sent_at: Instant,
    transcript_full: bool,
    out: Driven,
}

impl<S: Script> Driver<'_, S> {
    fn log(&mut self, prefix: &str, text: &str) {
        if self.transcript_full {
            return;
        }
        let t = &mut self.out.transcript;
        for line in text.lines() {
            if t.len() + prefix.len() + line.len() + 2 > self.limits.max_transcript {
                t.push_str("[transcript truncated]\r\n");
                self.transcript_full = true;
                return;
            }
            t.push_str(prefix);
            t.push_str(line);
            t.push_str("\r\n");
        }
    }

    /// Runs the script over `io` from `step` until it asks for TLS or to close.
    async fn converse<IO: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut IO,
        mut step: Step,
    ) -> Step {
        loop {
            match step {
                Step::Send(bytes) => {
                    self.script.wire(Wire::Sent, &bytes);
                    self.log("C: ", &String::from_utf8_lossy(&bytes));
                    let phase_end =
                        (Instant::now() + self.limits.command_timeout).min(self.deadline);
                    let sent = match timeout_at(phase_end, io.write_all(&bytes)).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(IoFailure::Closed(format!("write: {e}"))),
                        Err(_) if Instant::now() >= self.deadline => Err(IoFailure::Deadline),
                        Err(_) => Err(IoFailure::Timeout),
                    };
                    if let Err(f) = sent {
                        step = self.script.write_failed(f);
                        if step == Step::Close {
                            return step;
                        }
                        continue;
                    }
                    self.sent_at = Instant::now();
                }
                Step::Read => {}
                other => return other,
            }
            let phase = self.script.phase();
            let timeout = if phase == Phase::Greeting {
                self.limits.greeting_timeout
            } else {
                self.limits.command_timeout
            };
            step = match self.read_reply(io, timeout).await {
                Ok(reply) => {
                    self.log("S: ", &reply.raw_lossy());
                    let elapsed = millis(self.sent_at.elapsed());
                    let out = &mut self.out;
                    match phase {
                        Phase::Greeting => out.greeting_ms = Some(elapsed),
                        Phase::Ehlo => {
                            out.ehlo_ms = Some(out.ehlo_ms.unwrap_or(0).saturating_add(elapsed))
                        }
                        Phase::StartTls => out.starttls_ms = Some(elapsed),
                        _ => {}
                    }
                    self.script.reply(reply)
                }
                Err(f) => {
                    if let IoFailure::Malformed(text) | IoFailure::TooLong(text) = &f {
                        let text = format!("[{text}]");
                        self.log("S: ", &text);
                    }
                    self.script.read_failed(f)
                }
            };
        }
    }

    async fn read_reply<IO: AsyncRead + Unpin>(
        &mut self,
        io: &mut IO,
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
                Ok(Ok(n)) => {
                    self.script.wire(Wire::Received, &buf[..n]);
                    self.parser.feed(&buf[..n]);
                }
                Ok(Err(e)) => return Err(IoFailure::Closed(e.to_string())),
            }
        }
    }

    async fn handshake(&mut self, tcp: TcpStream, tls: TlsSetup<'_>) {
        // Bytes the server sent after its 220 belong to the TLS handshake (or are garbage the
        // handshake will reject): hand them to the TLS engine instead of dropping them.
        let early = self.parser.take_unconsumed();
        let io = Prefixed::new(early, tcp);
        self.out.tls_attempted = true;
        let t0 = Instant::now();
        let phase_end = (t0 + self.limits.tls_timeout).min(self.deadline);
        let connecting = async move {
            match tls.client {
                TlsClient::Rustls { config, .. } => {
                    rustls_engine::connect(config, tls.sni, tls.ip, io).await
                }
                TlsClient::Openssl(engine) => engine.connect(tls.sni, io).await,
            }
        };
        let (mut conn, negotiated): (TlsConnection, Negotiated) =
            match timeout_at(phase_end, connecting).await {
                Ok(Ok(done)) => done,
                Ok(Err(f)) => {
                    let f = HandshakeFailure {
                        detail: format!("TLS handshake: {}", f.detail),
                        ..f
                    };
                    if let (TlsClient::Rustls { openssl_retry, .. }, Some(reason)) =
                        (tls.client, f.fallback)
                    {
                        if openssl_retry {
                            let note = format!("[{}; retrying with OpenSSL]", f.detail);
                            self.log("C: ", &note);
                            self.out.fallback = Some((reason, f.detail.clone()));
                        }
                    }
                    self.script.tls_failed(TlsFailure::Failed(f));
                    return;
                }
                Err(_) if phase_end >= self.deadline => {
                    self.script.tls_failed(TlsFailure::Deadline);
                    return;
                }
                Err(_) => {
                    self.script.tls_failed(TlsFailure::Timeout);
                    return;
                }
            };
        self.out.tls_ms = Some(millis(t0.elapsed()));
        self.out.negotiated = Some(negotiated);
        let note = format!("[TLS handshake, {}]", tls.client.engine());
        self.log("C: ", &note);
        let first = self.script.tls_done();
        // After an implicit-TLS handshake the greeting is timed from here.
        self.sent_at = Instant::now();
        self.converse(&mut conn, first).await;
        let close_by = (Instant::now() + Duration::from_secs(1)).min(self.deadline);
        let _ = timeout_at(close_by, conn.shutdown()).await;
    }
}

/// A stream that first yields `prefix`, then reads from `inner`: the bytes a line reader
/// already took off the socket after `220 Ready to start TLS` belong to the TLS handshake and
/// are handed to the TLS engine this way.
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
