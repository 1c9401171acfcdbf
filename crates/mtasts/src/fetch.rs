//! The policy fetch (RFC 8461 §3.3): HTTPS GET of `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
//!
//! The driver ([`PolicyFetcher::fetch`]) is thin: TCP through [`mxray_net::Dialer`] (policy
//! check, rate limits, source address, lab port remap), TLS through rustls (TLS 1.2+, SNI and
//! PKIX name `mta-sts.<domain>`, webpki roots plus `--ca-file`), one HTTP/1.1 request through
//! hyper, the body read up to the cap, all under one overall timeout. What the response means
//! is decided by the pure [`check_response`] and [`check_media_type`].
//!
//! Redirects are never followed (§3.3). Each fetch opens its own connection: policy hosts
//! differ per domain, so pooling would only help when one domain is fetched repeatedly; TLS
//! session resumption, which the shared [`rustls::ClientConfig`] keeps, covers that case.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use mxray_model::MtaStsError;
use mxray_net::{DialError, Dialer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::policy::{PolicyWarning, WarningKind};

/// The well-known path of the policy file.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// The body cap: 64 KiB, the limit RFC 8461 §3.3 suggests for senders.
pub const DEFAULT_BODY_CAP: usize = 64 * 1024;

/// Most response headers kept in [`FetchOutcome::headers`].
const MAX_KEPT_HEADERS: usize = 64;
/// Longest header value kept verbatim.
const MAX_HEADER_VALUE: usize = 512;

/// Fetch settings.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Overall budget for one fetch: connect, TLS, request, headers and body. Default 20 s:
    /// RFC 8461 §3.3 asks senders for "a timeout on the order of a minute"; a measurement
    /// spends a third of that and records `timeout` beyond it.
    pub timeout: Duration,
    /// Bodies longer than this are `too_large`. Default [`DEFAULT_BODY_CAP`] (64 KiB).
    pub body_cap: usize,
    /// Extra trusted roots (PEM, `--ca-file`), added to the webpki (Mozilla) roots.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// `User-Agent` header. Default `mxray/<version> (MTA-STS measurement)`.
    pub user_agent: String,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            timeout: Duration::from_secs(20),
            body_cap: DEFAULT_BODY_CAP,
            extra_roots_pem: None,
            user_agent: concat!(
                "mxray/",
                env!("CARGO_PKG_VERSION"),
                " (MTA-STS measurement)"
            )
            .to_owned(),
        }
    }
}

/// mxray's own failures when setting up a fetcher (never a property of a measured domain).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FetchSetupError {
    /// `--ca-file` is not PEM or holds no certificate.
    #[error("extra CA file: {0}")]
    CaFile(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

/// A classified fetch failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchFailure {
    /// The `mta_sts_error` class.
    pub class: MtaStsError,
    /// What happened, in words.
    pub detail: String,
}

impl FetchFailure {
    /// A failure of `class`.
    pub fn new(class: MtaStsError, detail: impl Into<String>) -> Self {
        FetchFailure {
            class,
            detail: detail.into(),
        }
    }
}

/// Everything observed during one fetch, successful or not. Filled as far as the fetch got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// The address the TCP connection went to (port 443 before any lab remap).
    pub peer: Option<SocketAddr>,
    /// Negotiated TLS version (`TLSv1.2`, `TLSv1.3`).
    pub tls_version: Option<String>,
    /// HTTP status code.
    pub http_status: Option<u16>,
    /// `Content-Type` as sent.
    pub content_type: Option<String>,
    /// Response headers (name lowercased, value lossy UTF-8), at most 64, values capped.
    pub headers: Vec<(String, String)>,
    /// The body as received, at most `body_cap` bytes.
    pub body: Option<Vec<u8>>,
    /// Tolerated deviations of the response (media type parameters or case).
    pub warnings: Vec<PolicyWarning>,
    /// `Ok(())` when a 200 `text/plain` body within the cap arrived in time.
    pub result: Result<(), FetchFailure>,
    /// Wall time of the fetch, milliseconds.
    pub elapsed_ms: u32,
}

impl FetchOutcome {
    /// An outcome that got nowhere: `failure` and nothing else observed.
    pub fn failed(failure: FetchFailure) -> Self {
        FetchOutcome {
            peer: None,
            tls_version: None,
            http_status: None,
            content_type: None,
            headers: Vec::new(),
            body: None,
            warnings: Vec::new(),
            result: Err(failure),
            elapsed_ms: 0,
        }
    }
}

/// Checks a `Content-Type` header: the media type must be `text/plain` (case-insensitive);
/// parameters such as `charset` are allowed and noted.
///
/// ```
/// use mxray_mtasts::check_media_type;
/// assert!(check_media_type(Some("text/plain")).unwrap().is_empty());
/// assert_eq!(check_media_type(Some("text/plain; charset=utf-8")).unwrap().len(), 1);
/// assert!(check_media_type(Some("text/html")).is_err());
/// assert!(check_media_type(None).is_err());
/// ```
pub fn check_media_type(content_type: Option<&str>) -> Result<Vec<PolicyWarning>, String> {
    let Some(ct) = content_type else {
        return Err("no Content-Type header".to_owned());
    };
    let (essence, params) = match ct.split_once(';') {
        Some((e, p)) => (e, Some(p)),
        None => (ct, None),
    };
    let essence = essence.trim_matches([' ', '\t']);
    if !essence.eq_ignore_ascii_case("text/plain") {
        return Err(format!("media type {essence:?} is not text/plain"));
    }
    let mut warnings = Vec::new();
    if essence != "text/plain" {
        warnings.push(PolicyWarning::new(
            WarningKind::ContentTypeCase,
            format!("{ct:?}"),
        ));
    }
    if params.is_some() {
        warnings.push(PolicyWarning::new(
            WarningKind::ContentTypeParameters,
            format!("{ct:?}"),
        ));
    }
    Ok(warnings)
}

/// Judges a response head: only 200 counts, a 3xx is `redirect` (never followed), any other
/// status is `http_status`, then the media type must be `text/plain`.
pub fn check_response(
    status: u16,
    content_type: Option<&str>,
    location: Option<&str>,
) -> Result<Vec<PolicyWarning>, FetchFailure> {
    if (300..400).contains(&status) {
        let to = location.map(|l| format!(" to {l:?}")).unwrap_or_default();
        return Err(FetchFailure::new(
            MtaStsError::Redirect,
            format!("HTTP {status} redirect{to} (RFC 8461 §3.3: not followed)"),
        ));
    }
    if status != 200 {
        return Err(FetchFailure::new(
            MtaStsError::HttpStatus,
            format!("HTTP {status}"),
        ));
    }
    check_media_type(content_type).map_err(|e| FetchFailure::new(MtaStsError::ContentType, e))
}

/// Fetches MTA-STS policies. Cheap to share (`&self`), one per process.
#[derive(Debug, Clone)]
pub struct PolicyFetcher {
    tls: Arc<ClientConfig>,
    dialer: Dialer,
    cfg: FetchConfig,
}

impl PolicyFetcher {
    /// Builds the TLS configuration (ring provider, TLS 1.2 and 1.3, webpki roots plus the
    /// extra PEM roots, ALPN `http/1.1`).
    pub fn new(cfg: FetchConfig, dialer: Dialer) -> Result<Self, FetchSetupError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &cfg.extra_roots_pem {
            let mut added = 0usize;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| FetchSetupError::CaFile(e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| FetchSetupError::CaFile(e.to_string()))?;
                added += 1;
            }
            if added == 0 {
                return Err(FetchSetupError::CaFile("no certificate in PEM".to_owned()));
            }
        }
        let mut config = mxray_net::tls::client_config(mxray_net::tls::ServerAuth::Roots(roots))
            .map_err(|e| FetchSetupError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(PolicyFetcher {
            tls: Arc::new(config),
            dialer,
            cfg,
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// Fetches the policy of `domain` from `addrs` (the addresses of `mta-sts.<domain>`, tried
    /// in order until a TCP connection succeeds). Never fails: every failure is in the outcome.
    pub async fn fetch(&self, domain: &str, addrs: &[IpAddr]) -> FetchOutcome {
        let started = Instant::now();
        let mut out =
            FetchOutcome::failed(FetchFailure::new(MtaStsError::Connect, "not attempted"));
        let res =
            match tokio::time::timeout(self.cfg.timeout, self.run(domain, addrs, &mut out)).await {
                Ok(r) => r,
                Err(_) => Err(FetchFailure::new(
                    MtaStsError::Timeout,
                    format!("fetch not finished after {:?}", self.cfg.timeout),
                )),
            };
        out.result = res;
        out.elapsed_ms = mxray_net::units::millis(started.elapsed());
        out
    }

    async fn run(
        &self,
        domain: &str,
        addrs: &[IpAddr],
        out: &mut FetchOutcome,
    ) -> Result<(), FetchFailure> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let host = format!("mta-sts.{domain}");
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| FetchFailure::new(MtaStsError::Dns, format!("{host:?}: {e}")))?;
        if addrs.is_empty() {
            return Err(FetchFailure::new(
                MtaStsError::Dns,
                format!("{host} has no address"),
            ));
        }

        // TCP: the first address that connects.
        let mut errors = Vec::new();
        let mut tcp = None;
        let mut reset_after_accept = false;
        for ip in addrs {
            let sa = SocketAddr::new(*ip, 443);
            match self.dialer.connect(sa).await {
                Ok(s) => {
                    out.peer = Some(sa);
                    tcp = Some(s);
                    break;
                }
                Err(e) => {
                    reset_after_accept |= matches!(e, DialError::ResetAfterAccept);
                    errors.push(format!("{sa}: {}", dial_detail(&e)));
                }
            }
        }
        let Some(tcp) = tcp else {
            // A host that accepted and reset did answer: whether the reset reached us in the
            // connect or in the handshake is a race, and the handshake case is `tls`.
            let class = if reset_after_accept {
                MtaStsError::Tls
            } else {
                MtaStsError::Connect
            };
            return Err(FetchFailure::new(class, errors.join("; ")));
        };

        // TLS.
        let connector = TlsConnector::from(Arc::clone(&self.tls));
        let tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(classify_tls_io)?;
        out.tls_version = tls
            .get_ref()
            .1
            .protocol_version()
            .map(mxray_net::tls::version_name);

        // HTTP/1.1.
        let mut builder = hyper::client::conn::http1::Builder::new();
        builder.max_buf_size(self.cfg.body_cap.max(16 * 1024));
        let (mut sender, conn) = builder
            .handshake::<_, Empty<Bytes>>(TokioIo::new(tls))
            .await
            .map_err(|e| {
                FetchFailure::new(MtaStsError::HttpProtocol, format!("HTTP setup: {e}"))
            })?;
        let conn = AbortOnDrop(tokio::spawn(conn));
        let req = http::Request::builder()
            .method(http::Method::GET)
            .uri(POLICY_PATH)
            .header(http::header::HOST, host.as_str())
            .header(http::header::USER_AGENT, self.cfg.user_agent.as_str())
            .header(http::header::ACCEPT, "text/plain")
            .header(http::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchFailure::new(MtaStsError::HttpProtocol, format!("request: {e}")))?;
        let resp = sender.send_request(req).await.map_err(classify_hyper)?;

        let status = resp.status().as_u16();
        out.http_status = Some(status);
        let header_str = |name: http::header::HeaderName| {
            resp.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        out.content_type = header_str(http::header::CONTENT_TYPE);
        let location = header_str(http::header::LOCATION);
        out.headers = resp
            .headers()
            .iter()
            .take(MAX_KEPT_HEADERS)
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                let v = mxray_net::units::cap_owned(v, MAX_HEADER_VALUE);
                (k.as_str().to_owned(), v)
            })
            .collect();
        let content_length = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());

        let verdict = check_response(status, out.content_type.as_deref(), location.as_deref());
        if let Err(f) = &verdict {
            if f.class == MtaStsError::Redirect {
                return Err(f.clone());
            }
        }
        let cap = self.cfg.body_cap;
        if content_length.is_some_and(|n| n > cap as u64) {
            verdict?;
            return Err(FetchFailure::new(
                MtaStsError::TooLarge,
                format!(
                    "Content-Length {} exceeds {cap} bytes",
                    content_length.unwrap_or(0)
                ),
            ));
        }

        // Body, capped; kept even for error statuses, as evidence.
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        let mut too_large = false;
        let mut body_error = None;
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = cap.saturating_sub(buf.len());
                        if data.len() > room {
                            buf.extend_from_slice(&data[..room]);
                            too_large = true;
                            break;
                        }
                        buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    body_error = Some(e);
                    break;
                }
            }
        }
        out.body = Some(buf);
        drop(conn);
        let warnings = verdict?;
        if too_large {
            return Err(FetchFailure::new(
                MtaStsError::TooLarge,
                format!("body exceeds {cap} bytes"),
            ));
        }
        if let Some(e) = body_error {
            return Err(classify_hyper(e));
        }
        out.warnings = warnings;
        Ok(())
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn dial_detail(e: &DialError) -> String {
    match e {
        DialError::Blocked(r) => format!("blocked, nothing sent: {r}"),
        other => other.to_string(),
    }
}

/// A handshake error: certificate problems are `cert`, everything else `tls`.
fn classify_tls_io(e: std::io::Error) -> FetchFailure {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(c)) => {
            FetchFailure::new(MtaStsError::Cert, format!("certificate: {c:?}"))
        }
        Some(other) => FetchFailure::new(MtaStsError::Tls, other.to_string()),
        None => FetchFailure::new(MtaStsError::Tls, format!("handshake: {e}")),
    }
}

/// An HTTP exchange error. A TLS error underneath is `tls`; anything else (the peer closed
/// before a response or mid-body, sent something that is not HTTP/1.1, or a response head
/// over hyper's buffer limit) is `http_protocol`: no status was received, so it is never
/// `http_status`.
fn classify_hyper(e: hyper::Error) -> FetchFailure {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return FetchFailure::new(MtaStsError::Tls, r.to_string());
        }
        src = s.source();
    }
    let what = if e.is_incomplete_message() {
        "connection closed before a complete HTTP response"
    } else if e.is_parse_too_large() {
        "response head too large"
    } else if e.is_parse() {
        "not a valid HTTP/1.1 response"
    } else {
        "no valid HTTP response"
    };
    FetchFailure::new(MtaStsError::HttpProtocol, format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_never_followed() {
        for s in [301, 302, 303, 307, 308] {
            let f = check_response(s, Some("text/plain"), Some("https://x/")).expect_err("3xx");
            assert_eq!(f.class, MtaStsError::Redirect, "{s}");
        }
    }

    #[test]
    fn only_200_counts() {
        for s in [204, 206, 404, 500, 100] {
            let f = check_response(s, Some("text/plain"), None).expect_err("not 200");
            assert_eq!(f.class, MtaStsError::HttpStatus, "{s}");
        }
        assert_eq!(check_response(200, Some("text/plain"), None), Ok(vec![]));
    }

    #[test]
    fn media_types() {
        for bad in [
            "text/html",
            "text/plain-x",
            "application/octet-stream",
            "text/plainx",
            "",
        ] {
            let f = check_response(200, Some(bad), None).expect_err(bad);
            assert_eq!(f.class, MtaStsError::ContentType, "{bad}");
        }
        assert_eq!(
            check_response(200, None, None).map_err(|f| f.class),
            Err(MtaStsError::ContentType)
        );
        let w = check_media_type(Some("Text/Plain ; charset=\"utf-8\"")).expect("allowed");
        let kinds: Vec<_> = w.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            [
                WarningKind::ContentTypeCase,
                WarningKind::ContentTypeParameters
            ]
        );
    }
}
