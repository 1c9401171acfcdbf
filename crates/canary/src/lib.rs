//! Path tampering canaries: a control SMTP server whose every byte is known, and a probe
//! that compares, byte for byte and in both directions, what crossed the path.
//!
//! What it does:
//! * [`CanaryServer`] (tokio + rustls) answers with fixed replies ([`CannedReplies`], a
//!   greeting and an EHLO reply with STARTTLS by default), completes STARTTLS (or implicit
//!   TLS, port 465) with a known certificate ([`Identity`]), refuses mail, and logs exactly
//!   what each client sent with its address and port ([`ClientLog`]), in memory and as JSON
//!   lines. A small line-based control endpoint ([`server::CONTROL_PROTOCOL`]) serves that log
//!   and the canary's [`Expectation`] to probes, every request and answer authenticated with
//!   the canary's [`ControlKey`] (HMAC-SHA256, [`auth`]); expectation files are signed with
//!   the same key ([`SignedExpectation`]).
//! * [`probe()`] runs the probe dialogue through [`mxray_net::Dialer`], records the bytes it
//!   sent and received before and inside TLS and the certificate chain, fetches what the
//!   canary received from this connection, and [`compare`]s both directions with
//!   [`diverge::diverge`]. The result is a [`TamperReport`] (`clean`, `tampered`, `blocked`,
//!   `error`) with the diverging bytes (a control answer that fails authentication is a
//!   `tampered` finding of its own, stream `control`); [`canary_record`] makes it a `canary_result` record
//!   (table `canary_results`) and [`probe_record`] the ordinary `smtp_probe` record of the
//!   same session.
//! * [`self_check`] tells whether a vantage's outbound port 25 is `open`, `blocked` or
//!   `intercepted` (the `scan` record's `port25_check`).
//!
//! What it does not: resolve names, do reverse DNS of the source address (the caller does,
//! with `mxray-dns`), encrypt the control channel (it is authenticated, not confidential: a
//! party on the path reads answers, but cannot change them unnoticed), or match connections
//! through NAT
//! (the canary log is looked up by the probe's local address and port; behind NAT the client
//! direction is reported `not_found` and only the canary-to-probe direction is compared).
//! A refused or timed-out connection is `blocked`, never `tampered` and never "no STARTTLS".
//!
//! ```no_run
//! # async fn demo() -> Result<(), mxray_canary::CanaryError> {
//! use std::sync::Arc;
//! use mxray_canary::{probe, CanaryConfig, CanaryServer, Identity, ProbeOptions, Verdict};
//! use mxray_net::{DestinationPolicy, Dialer, RateConfig, RateLimits};
//!
//! let canary = CanaryServer::start(CanaryConfig::new(Identity::generate(&[])?)).await?;
//! let dialer = Dialer::new(
//!     Arc::new(DestinationPolicy::new(true, Vec::new())), // loopback: allow private
//!     Arc::new(RateLimits::new(RateConfig::default())),
//! );
//! let target = canary.smtp_addr().expect("one listener");
//! // A remote probe builds the endpoint from the address and the key file `serve` wrote.
//! let control = canary.control_endpoint();
//! let out = probe(&dialer, target, canary.expectation(), control.as_ref(),
//!                 &ProbeOptions::default()).await;
//! assert_eq!(out.report.verdict, Verdict::Clean);
//! println!("{}", serde_json::to_string(&out.report).unwrap());
//! # Ok(()) }
//! ```

pub mod auth;
pub mod diverge;
pub mod expect;
pub mod probe;
pub mod record;
pub mod script;
pub mod server;
pub mod session;
pub mod wire;

pub use auth::{ControlKey, SignedExpectation};
pub use diverge::{diverge, Divergence, DivergenceKind};
pub use expect::{CannedReplies, Expectation, Identity, DEFAULT_NAME};
pub use probe::{
    compare, control_forged, fetch_client_log, fetch_client_log_by_token, fetch_expectation, probe,
    probe_record, run_session, self_check, CanaryLogStatus, CanaryOutcome, CanaryView,
    ControlEndpoint, Finding, ProbeOptions, Session, Severity, Stream, TamperReport, VantageCheck,
    Verdict,
};
pub use record::canary_record;
pub use server::{CanaryConfig, CanaryHandle, CanaryLog, CanaryServer, ClientLog, ListenSpec};

/// Failures of mxray itself (configuration, binding, the control endpoint), never
/// observations of the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanaryError {
    /// A canned reply is not a single valid SMTP reply for its role.
    #[error("canary replies: {0}")]
    Replies(String),
    /// The certificate or key could not be generated, read or used.
    #[error("canary certificate: {0}")]
    Certificate(String),
    /// A listener could not be bound or the log file opened.
    #[error("canary: {0}")]
    Io(String),
    /// The control endpoint could not be asked or answered nonsense.
    #[error("canary control endpoint {0}")]
    Control(String),
    /// The control key is missing, unreadable or malformed, or the canary refused it.
    #[error("canary control key: {0}")]
    Key(String),
    /// A control answer or an expectation file failed authentication with the control key:
    /// it is not what the canary sent or signed.
    #[error("canary authentication failed: {0}")]
    Unauthenticated(String),
}
