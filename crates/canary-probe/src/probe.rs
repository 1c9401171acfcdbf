//! `canary probe` and the vantage self-check: a session, the canary's log of it, the
//! comparison.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mxray_canary::Expectation;
use mxray_model::Port25Check;
use mxray_net::Dialer;
use serde::{Deserialize, Serialize};

use crate::control::{fetch_client_log, fetch_client_log_by_token};
use crate::report::{compare, is_policy_class, CanaryOutcome, CanaryView, Verdict};
use crate::session::{run_session, ProbeOptions};
use mxray_canary::ControlEndpoint;

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
