//! The prober: rate limits, concurrency, connect and the OpenSSL retry around the one
//! driver ([`crate::driver`]) running the sans-io [`Dialogue`]. What the session showed is
//! turned into the record by the pure [`crate::judge`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxray_model::{CertificateRecord, ProbeErrorClass, SmtpProbeRecord, TlsEngine, UtcTime};
use mxray_net::units::millis;
use mxray_net::{DialError, Dialer, Refusal};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::{AlertDescription, ClientConfig};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use uuid::Uuid;

use crate::dane::TlsaInput;
use crate::danger::EngineLimit;
use crate::driver::{drive, Driven, TlsClient, TlsSetup};
use crate::judge::{self, FirstSession, Judge, SessionFacts, Timings, TlsFacts};
use crate::machine::Dialogue;
use crate::pkix::PkixChecker;
use crate::tls::openssl_engine::OpensslEngine;
use crate::tls::rustls_engine;
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
            pkix: Some(&self.pkix),
            max_reply: self.cfg.limits.max_reply,
            max_detail: judge::MAX_DETAIL,
            rules: judge::Rules::Scan,
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
        run.limiter_wait_ms = Some(millis(limiter_wait));
        match admitted {
            Err(e) => run.pre_connect = Some((dial_error_class(&e), e.to_string())),
            Ok(_) => run.session(target).await,
        }
        let Some((reason, detail)) = run.driven.fallback.take() else {
            return run.finish(target, probed_at);
        };
        // The retry is a new connection: polite like any other.
        let mut retry = Run::new(&self.inner, Instant::now(), force, TlsEngine::Openssl);
        match self.inner.dialer.admit(target.ip).await {
            Err(e) => retry.pre_connect = Some((dial_error_class(&e), e.to_string())),
            Ok(w) => {
                retry.limiter_wait_ms = Some(millis(limiter_wait + w));
                retry.first = Some(FirstSession {
                    reason,
                    detail,
                    transcript: std::mem::take(&mut run.driven.transcript),
                });
                retry.session(target).await;
            }
        }
        retry.finish(target, probed_at)
    }
}

/// One session of a probe (the rustls one, or the OpenSSL retry).
struct Run<'a> {
    inner: &'a Inner,
    start: Instant,
    force_starttls: bool,
    dialogue: Dialogue,
    driven: Driven,
    connect_ms: Option<u32>,
    limiter_wait_ms: Option<u32>,
    sni_sent: Option<String>,
    pre_connect: Option<(ProbeErrorClass, String)>,
    /// The engine this session's handshake uses.
    engine: TlsEngine,
    /// The first session, when this one is the OpenSSL retry.
    first: Option<FirstSession>,
}

impl<'a> Run<'a> {
    fn new(inner: &'a Inner, start: Instant, force_starttls: bool, engine: TlsEngine) -> Self {
        Run {
            inner,
            start,
            force_starttls,
            dialogue: Dialogue::new(inner.cfg.ehlo_name.clone()).force_starttls(force_starttls),
            driven: Driven::default(),
            connect_ms: None,
            limiter_wait_ms: None,
            sni_sent: None,
            pre_connect: None,
            engine,
            first: None,
        }
    }

    async fn session(&mut self, target: &ProbeTarget) {
        let cfg = &self.inner.cfg;
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
        self.connect_ms = Some(millis(t0.elapsed()));
        self.dialogue = if cfg.implicit_tls_ports.contains(&target.port) {
            // RFC 8314 §3.3: TLS first, then the greeting inside it.
            Dialogue::implicit_tls(cfg.ehlo_name.clone())
        } else {
            Dialogue::new(cfg.ehlo_name.clone()).force_starttls(self.force_starttls)
        };
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
            });
        let client = match self.engine {
            TlsEngine::Rustls => TlsClient::Rustls {
                config: &self.inner.tls,
                openssl_retry: true,
            },
            TlsEngine::Openssl => TlsClient::Openssl(&self.inner.openssl),
        };
        let setup = TlsSetup {
            client,
            sni,
            ip: target.ip,
        };
        self.driven = drive(&mut self.dialogue, tcp, setup, &self.inner.cfg.limits).await;
        if self.driven.tls_attempted && sni.is_some() {
            self.sni_sent = target.sni.clone();
        }
    }

    fn finish(self, target: &ProbeTarget, probed_at: UtcTime) -> ProbeOutput {
        let d = self.driven;
        let negotiated = d.negotiated.unwrap_or_default();
        let facts = SessionFacts {
            probed_at,
            obs: self.dialogue.into_observations(),
            pre_connect: self.pre_connect,
            timings: Timings {
                connect_ms: self.connect_ms,
                greeting_ms: d.greeting_ms,
                ehlo_ms: d.ehlo_ms,
                starttls_ms: d.starttls_ms,
                tls_ms: d.tls_ms,
                total_ms: millis(self.start.elapsed()),
                limiter_wait_ms: self.limiter_wait_ms,
            },
            sni_sent: self.sni_sent,
            tls: TlsFacts {
                version: Some(negotiated.version).filter(|v| !v.is_empty()),
                cipher: Some(negotiated.cipher).filter(|c| !c.is_empty()),
                kx_group: negotiated.kx_group,
            },
            chain: negotiated.chain,
            transcript: d.transcript,
            engine: d.tls_attempted.then_some(self.engine),
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
