//! The lab's HTTPS server for MTA-STS policies (RFC 8461 §3.2): one address for every
//! `mta-sts.<domain>` name, the certificate chosen by SNI, the answer by the Host header, both
//! from a [`PolicyLookup`] (the server knows nothing else of the lab).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::pki::Pki;
use crate::spec::{CertKind, PolicyLookup, PolicySpec};

const CONN_DEADLINE: Duration = Duration::from_secs(30);
const MAX_CONNS: usize = 512;
/// The well-known path of the policy.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

#[derive(Debug)]
struct SniCerts {
    pki: Arc<Pki>,
    policies: Arc<dyn PolicyLookup>,
}

impl ResolvesServerCert for SniCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name()?.to_ascii_lowercase();
        if !sni.ends_with(".lab.test") {
            return None;
        }
        let kind = self
            .policies
            .policy(&sni)
            .map(|p| p.cert)
            .unwrap_or(CertKind::Valid);
        self.pki.certified_key(kind, &[sni]).ok()
    }
}

fn respond(policies: &dyn PolicyLookup, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("")
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let spec = (req.uri().path() == POLICY_PATH)
        .then(|| policies.policy(&host))
        .flatten();
    let spec = spec.unwrap_or(PolicySpec {
        status: 404,
        content_type: "text/plain".into(),
        body: "not found\n".into(),
        location: None,
        cert: CertKind::Valid,
    });
    let mut b = Response::builder()
        .status(StatusCode::from_u16(spec.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, spec.content_type);
    if let Some(loc) = spec.location {
        b = b.header(http::header::LOCATION, loc);
    }
    b.body(Full::new(Bytes::from(spec.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A TLS acceptor choosing certificates by SNI.
pub(crate) fn acceptor(pki: Arc<Pki>, policies: Arc<dyn PolicyLookup>) -> Option<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniCerts { pki, policies }));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(TlsAcceptor::from(Arc::new(cfg)))
}

/// Accept loop of the HTTPS server.
pub(crate) async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    policies: Arc<dyn PolicyLookup>,
) {
    let mut sessions = tokio::task::JoinSet::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNS));
    loop {
        let (stream, _) = mxray_net::accept(&listener).await;
        while sessions.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let acceptor = acceptor.clone();
        let policies = policies.clone();
        sessions.spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(CONN_DEADLINE, async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = service_fn(move |req: Request<Incoming>| {
                    let r = respond(policies.as_ref(), &req);
                    async move { Ok::<_, Infallible>(r) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            })
            .await;
        });
    }
}
