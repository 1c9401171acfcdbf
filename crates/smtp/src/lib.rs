//! The STARTTLS prober: one polite SMTP session per target that records exactly what a
//! sending MTA would see.
//!
//! What it does: connects through [`mxray_net::Dialer`] (destination policy checked right
//! before connect, rate limits, source bind), reads the greeting, says EHLO (HELO on a 5xx),
//! issues STARTTLS, completes the TLS handshake whatever the certificate, says EHLO again, and
//! QUITs; on an implicit-TLS port (465) the handshake comes first. TLS is rustls; when rustls
//! fails for a reason OpenSSL can overcome (TLS 1.0/1.1 only, no common suite, a key rustls
//! cannot verify, [`tls::fallback`]), a second session runs with OpenSSL ([`tls`]). It
//! records timings, banner, EHLO keywords and raw replies, the STARTTLS reply, TLS engine,
//! version, cipher suite, key-exchange group and the whole chain, then judges the chain for
//! PKIX validity ([`pkix`]) and DANE ([`dane`]), derives stripping signals ([`signals`]) and
//! RFC 8460 result types ([`tlsrpt`]). Every way a session can end is an error class in the
//! record, never an `Err`.
//!
//! Every SMTP client session of mxray runs through one driver, [`driver::drive`], over a
//! sans-io [`driver::Script`]: the scanner's [`machine::Dialogue`] here, the canary probe's
//! script in `mxray-canary-probe`. The driver owns the bounded reads, a timeout on every
//! write, read and handshake, the session deadline, the TLS upgrade and the transcript; the
//! pure [`judge`] turns what a session showed into the `smtp_probe` record, for both.
//!
//! What it does not: send MAIL, RCPT or DATA; resolve names (the caller passes the IP, the
//! SNI name and the TLSA RRset); speak SSLv2/SSLv3 (Debian's libssl has no SSLv3; such
//! servers are classed `tls_incompatible`, not "no TLS"); deduplicate certificates across
//! probes (the sink does).
//!
//! Main types: [`Prober`], [`ProbeTarget`], [`ProbeOutput`], [`ProbeConfig`]; the driver
//! [`driver::drive`] with [`driver::Script`] and [`driver::Limits`]; the sans-io core is
//! [`machine::Dialogue`] over [`reply::ReplyParser`] (crate `mxray-smtp-reply`); the judgement
//! [`judge::probe_output`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), mxray_smtp::SmtpError> {
//! use std::sync::Arc;
//! use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
//! use mxray_smtp::{ProbeConfig, ProbeTarget, Prober};
//!
//! let dialer = Dialer::new(
//!     Arc::new(DestinationPolicy::new(false, Vec::new())),
//!     Arc::new(RateLimits::new(RateConfig::default())),
//! );
//! let prober = Prober::new(ProbeConfig::default(), dialer, uuid::Uuid::now_v7(), "default".into())?;
//! let out = prober.probe(&ProbeTarget::new("192.0.2.25".parse().unwrap(), 25)).await;
//! println!("{} {:?}", out.record.result, out.record.error_class);
//! # Ok(()) }
//! ```

pub mod cert;
mod config;
pub mod dane;
pub mod danger;
pub mod driver;
pub mod judge;
pub mod machine;
pub mod pkix;
mod probe;
pub use mxray_smtp_reply as reply;
pub mod signals;
pub mod tls;
pub mod tlsrpt;

pub use config::{
    dane_applies, delivery_port, ProbeConfig, StarttlsOverride, DELIVERY_PORT, IMPLICIT_TLS_PORT,
    SUBMISSION_PORT,
};
pub use dane::{DaneOutcome, Session, TlsaInput};
pub use driver::Prefixed;
pub use machine::{Action, Dialogue, State};
pub use probe::{classify_tls_error, dial_error_class, ProbeOutput, ProbeTarget, Prober};

/// Failures of mxray itself (bad configuration), never of the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpError {
    /// The `--ca-file` PEM could not be read as certificates.
    #[error("--ca-file: {0}")]
    CaFile(String),
    /// The TLS client configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(String),
}
