//! Path tampering canaries, the server half: a control SMTP server whose every byte is
//! known, what a probe must see from it, and the authenticated control endpoint.
//!
//! What it does:
//! * [`CanaryServer`] (tokio + rustls) answers with fixed replies ([`CannedReplies`], a
//!   greeting and an EHLO reply with STARTTLS by default), completes STARTTLS (or implicit
//!   TLS, port 465) with a known certificate ([`Identity`]), refuses mail, and logs exactly
//!   what each client sent with its address and port ([`ClientLog`]), in memory and as JSON
//!   lines. A small line-based control endpoint ([`server::CONTROL_PROTOCOL`]) serves that log
//!   and the canary's [`Expectation`] to probes, every request and answer authenticated with
//!   the canary's [`ControlKey`] (HMAC-SHA256, [`auth`]); expectation files are signed with
//!   the same key ([`SignedExpectation`]). [`ControlEndpoint`] is where a probe asks.
//! * [`wire`]: the escaped-bytes text form the log, the expectation and reports share.
//!
//! What it does not: probe. The probe (the SMTP client session through the scanner's driver,
//! the control-endpoint client, the byte-for-byte comparison into a `TamperReport`, the
//! vantage self-check and the records) is crate `mxray-canary-probe`; this half links no SMTP
//! client, so the lab can embed a canary without the scanner. It needs only
//! `mxray-smtp-reply`, to check that canned replies are single valid SMTP replies. It
//! resolves no names and does not encrypt the control channel (authenticated, not
//! confidential: a party on the path reads answers, but cannot change them unnoticed).
//!
//! Main types: [`CanaryServer`] / [`CanaryHandle`], [`CanaryConfig`], [`CannedReplies`],
//! [`Expectation`], [`Identity`], [`ClientLog`] / [`CanaryLog`], [`ControlKey`],
//! [`ControlEndpoint`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), mxray_canary::CanaryError> {
//! use mxray_canary::{CanaryConfig, CanaryServer, Identity};
//!
//! let canary = CanaryServer::start(CanaryConfig::new(Identity::generate(&[])?)).await?;
//! println!("SMTP on {:?}, expect {:?}", canary.smtp_addr(), canary.expectation().greeting);
//! // A remote probe builds the endpoint from the address and the key file `serve` wrote.
//! let _control = canary.control_endpoint();
//! # Ok(()) }
//! ```

pub mod auth;
pub mod expect;
pub mod server;
pub mod session;
pub mod wire;

pub use auth::{ControlEndpoint, ControlKey, SignedExpectation};
pub use expect::{CannedReplies, Expectation, Identity, DEFAULT_NAME};
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
