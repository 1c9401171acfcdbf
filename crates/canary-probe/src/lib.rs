//! Path tampering canaries, the probe half: one session with a canary (`mxray-canary`'s
//! server, whose every byte is known), compared byte for byte and in both directions with
//! what the canary sent and received.
//!
//! What it does:
//! * [`probe()`] runs the probe dialogue ([`script::ProbeScript`]) through the scanner's one
//!   SMTP client driver ([`mxray_smtp::driver`]) over [`mxray_net::Dialer`], records the
//!   bytes it sent and received before and inside TLS and the certificate chain
//!   ([`Session`]), fetches what the canary received from this connection over the
//!   authenticated control endpoint ([`fetch_client_log`], [`fetch_expectation`]), and
//!   [`compare`]s both directions with [`diverge::diverge`]. The result is a [`TamperReport`]
//!   (`clean`, `tampered`, `blocked`, `error`) with the diverging bytes (a control answer that
//!   fails authentication is a `tampered` finding of its own, stream `control`).
//! * [`canary_record`] makes the outcome a `canary_result` record (table `canary_results`)
//!   and [`probe_record`] the ordinary `smtp_probe` record of the same session, judged by the
//!   scanner's [`mxray_smtp::judge`].
//! * [`self_check`] tells whether a vantage's outbound port 25 is `open`, `blocked` or
//!   `intercepted` (the `scan` record's `port25_check`).
//!
//! What it does not: serve (the canary itself, its expectation and control key are
//! `mxray-canary`), resolve names, do reverse DNS of the source address (the caller does,
//! with `mxray-dns`), or match connections through NAT (the canary log is looked up by the
//! probe's local address and port, then by the EHLO token; behind NAT the client direction
//! may be `not_found` and only the canary-to-probe direction is compared). A refused or
//! timed-out connection is `blocked`, never `tampered` and never "no STARTTLS".
//!
//! Main types: [`ProbeOptions`], [`Session`], [`TamperReport`] ([`Verdict`], [`Finding`]),
//! [`CanaryOutcome`], [`CanaryView`], [`VantageCheck`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), mxray_canary::CanaryError> {
//! use std::sync::Arc;
//! use mxray_canary::{CanaryConfig, CanaryServer, Identity};
//! use mxray_canary_probe::{probe, ProbeOptions, Verdict};
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

pub mod control;
pub mod diverge;
pub mod probe;
pub mod record;
pub mod report;
pub mod script;
pub mod session;

pub use control::{fetch_client_log, fetch_client_log_by_token, fetch_expectation};
pub use diverge::{diverge, Divergence, DivergenceKind};
pub use probe::{probe, self_check, VantageCheck};
pub use record::{canary_record, probe_record};
pub use report::{
    compare, control_forged, CanaryLogStatus, CanaryOutcome, CanaryView, Finding, Severity, Stream,
    TamperReport, Verdict,
};
pub use session::{run_session, ProbeOptions, Session};
