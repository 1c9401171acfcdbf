//! A lightweight STARTTLS server for `scripts/bench-smtp`: loopback only.
//!
//! `starttls-bench-server --prefixes P --hosts H --port N [--tarpit] [--threads T]` listens on
//! 127.0.{1..P}.{1..H}, port N (several /24s, so per-prefix rate limits can be exercised). Normal mode: greeting, EHLO (with STARTTLS), 220, TLS 1.3 with an
//! ECDSA P-256 certificate, EHLO, QUIT. Tarpit mode: accepts and never says anything.
//! Legacy mode (`--legacy`): the TLS is OpenSSL speaking only TLS 1.0 at security level 0
//! with a self-signed RSA 2048 certificate, which rustls cannot talk to, so every probe takes
//! mxray's OpenSSL fallback (a second session). Prints `ready` on stdout when every listener
//! is bound.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let prefixes: u8 = arg(&args, "--prefixes")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1);
    let hosts: u8 = arg(&args, "--hosts")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1);
    let port: u16 = arg(&args, "--port")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2525);
    let threads: usize = arg(&args, "--threads")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1);
    let tarpit = args.iter().any(|a| a == "--tarpit");
    let legacy = args.iter().any(|a| a == "--legacy");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(run(prefixes, hosts, port, tarpit, legacy))
}

/// The server's TLS: rustls (TLS 1.3, ECDSA) or OpenSSL (TLS 1.0 only, RSA).
#[derive(Clone)]
enum Tls {
    Rustls(tokio_rustls::TlsAcceptor),
    Openssl(Arc<openssl::ssl::SslAcceptor>),
}

fn legacy_acceptor() -> Result<Arc<openssl::ssl::SslAcceptor>, Box<dyn std::error::Error>> {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, ssl, x509};
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = x509::X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "mx1.bench.test")?;
    let name = name.build();
    let mut b = x509::X509::builder()?;
    b.set_version(2)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let (from, to) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(30)?);
    b.set_not_before(&from)?;
    b.set_not_after(&to)?;
    b.sign(&key, MessageDigest::sha256())?;
    let cert = b.build();
    let mut a = ssl::SslAcceptor::mozilla_intermediate(ssl::SslMethod::tls_server())?;
    a.set_security_level(0);
    a.set_min_proto_version(Some(ssl::SslVersion::TLS1))?;
    a.set_max_proto_version(Some(ssl::SslVersion::TLS1))?;
    a.set_cipher_list("ALL:@SECLEVEL=0")?;
    a.set_certificate(&cert)?;
    a.set_private_key(&key)?;
    Ok(Arc::new(a.build()))
}

async fn run(
    prefixes: u8,
    hosts: u8,
    port: u16,
    tarpit: bool,
    legacy: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let key = rcgen::KeyPair::generate()?; // ECDSA P-256
    let names = vec!["mx1.bench.test".to_owned(), "*.bench.test".to_owned()];
    let cert = rcgen::CertificateParams::new(names)?.self_signed(&key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    let acceptor = if legacy {
        Tls::Openssl(legacy_acceptor()?)
    } else {
        Tls::Rustls(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    };
    let mut handles = Vec::new();
    let ips = (1..=prefixes).flat_map(|p| (1..=hosts).map(move |h| Ipv4Addr::new(127, 0, p, h)));
    for ip in ips {
        let addr = SocketAddr::new(IpAddr::V4(ip), port);
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.set_reuseaddr(true)?;
        sock.bind(addr)?;
        let listener: TcpListener = sock.listen(4096)?;
        let acceptor = acceptor.clone();
        handles.push(tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    continue;
                };
                if tarpit {
                    held.push(s); // never answer; keep the socket open
                    continue;
                }
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = session(s, acceptor).await;
                });
            }
        }));
    }
    println!("ready");
    for h in handles {
        let _ = h.await;
    }
    Ok(())
}

async fn session(s: tokio::net::TcpStream, acceptor: Tls) -> std::io::Result<()> {
    let _ = s.set_nodelay(true);
    let mut r = BufReader::new(s);
    r.get_mut()
        .write_all(b"220 mx.bench.test ESMTP bench\r\n")
        .await?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => r
                .get_mut()
                .write_all(
                    b"250-mx.bench.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n",
                )
                .await?,
            "STARTTLS" => {
                r.get_mut().write_all(b"220 2.0.0 Ready\r\n").await?;
                return match &acceptor {
                    Tls::Rustls(a) => inside(a.accept(r.into_inner()).await?).await,
                    Tls::Openssl(a) => {
                        let ssl =
                            openssl::ssl::Ssl::new(a.context()).map_err(std::io::Error::other)?;
                        let mut tls = Box::pin(
                            tokio_openssl::SslStream::new(ssl, r.into_inner())
                                .map_err(std::io::Error::other)?,
                        );
                        tls.as_mut()
                            .accept()
                            .await
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                        inside(tls).await
                    }
                };
            }
            "QUIT" => {
                r.get_mut().write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => r.get_mut().write_all(b"502 no\r\n").await?,
        }
    }
}

async fn inside<S: AsyncRead + AsyncWrite + Unpin>(io: S) -> std::io::Result<()> {
    let mut r = BufReader::new(io);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if line.to_ascii_uppercase().starts_with("QUIT") {
            r.get_mut().write_all(b"221 Bye\r\n").await?;
            let _ = r.get_mut().shutdown().await;
            return Ok(());
        }
        r.get_mut()
            .write_all(b"250-mx.bench.test\r\n250 PIPELINING\r\n")
            .await?;
    }
}
