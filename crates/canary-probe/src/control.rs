//! The client of a canary's authenticated control endpoint ([`mxray_canary::auth`]): its
//! expectation and its log of one connection.

use std::net::SocketAddr;
use std::time::Duration;

use mxray_canary::auth::{self, AnswerError};
use mxray_canary::{CanaryError, ClientLog, ControlEndpoint, Expectation};
use mxray_net::Dialer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};

use crate::report::CanaryView;

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
/// (see [`crate::control_forged`] to record it).
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
/// `token` (see [`crate::ProbeOptions::token`]). Authentication as in [`fetch_client_log`].
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
