//! Fake SMTP servers for the prober's tests: tokio + rustls on 127.0.0.1:0.
#![allow(dead_code, unreachable_pub)]

pub mod legacy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A certificate and its key.
pub struct Cert {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key: KeyPair,
    pub params: CertificateParams,
}

pub fn ca(name: &str) -> Cert {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).expect("ca");
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        params,
    }
}

pub fn leaf(names: &[&str], issuer: Option<&Cert>, validity: Option<(i32, i32)>) -> Cert {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().copied().unwrap_or("leaf"),
    );
    if let Some((from, to)) = validity {
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
    }
    let cert = match issuer {
        Some(ca) => {
            let iss = Issuer::from_params(&ca.params, &ca.key);
            params.signed_by(&key, &iss).expect("sign")
        }
        None => params.self_signed(&key).expect("self-sign"),
    };
    Cert {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        params,
    }
}

pub fn server_config(
    chain: &[&Cert],
    key: &KeyPair,
    tls12_only: bool,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            chain.iter().map(|c| c.der.clone()).collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("server config");
    Arc::new(cfg)
}

/// What the server does after answering 220 to STARTTLS.
#[derive(Clone)]
pub enum AfterStarttls {
    Tls(Arc<rustls::ServerConfig>),
    /// An OpenSSL server (legacy versions, ciphers and keys rustls does not speak).
    Openssl(Arc<openssl::ssl::SslAcceptor>),
    Bytes(Vec<u8>),
}

/// A scripted server. Replies are raw bytes, written as given.
#[derive(Clone)]
pub struct Spec {
    pub greeting: Vec<u8>,
    pub greeting_delay: Duration,
    pub ehlo: Vec<u8>,
    pub helo: Vec<u8>,
    pub starttls: Vec<u8>,
    pub after_starttls: Option<AfterStarttls>,
    pub post_tls_ehlo: Vec<u8>,
    /// Reset the connection (RST) after writing this part of the EHLO reply.
    pub reset_mid_ehlo: Option<Vec<u8>>,
    /// Write every reply in small segments with flushes and pauses.
    pub split: bool,
    /// Implicit TLS (port 465 style): `after_starttls` runs right after accept, then the
    /// greeting and the dialogue happen inside TLS.
    pub implicit: bool,
}

impl Spec {
    pub fn starttls(cfg: Arc<rustls::ServerConfig>) -> Self {
        Spec {
            greeting: b"220 mx.test ESMTP fake\r\n".to_vec(),
            greeting_delay: Duration::ZERO,
            ehlo: b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n"
                .to_vec(),
            helo: b"250 mx.test\r\n".to_vec(),
            starttls: b"220 2.0.0 Ready to start TLS\r\n".to_vec(),
            after_starttls: Some(AfterStarttls::Tls(cfg)),
            post_tls_ehlo: b"250-mx.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n".to_vec(),
            reset_mid_ehlo: None,
            split: false,
            implicit: false,
        }
    }

    pub fn plain(ehlo: &[u8]) -> Self {
        Spec {
            greeting: b"220 mx.test ESMTP fake\r\n".to_vec(),
            greeting_delay: Duration::ZERO,
            ehlo: ehlo.to_vec(),
            helo: b"250 mx.test\r\n".to_vec(),
            starttls: b"502 5.5.1 not here\r\n".to_vec(),
            after_starttls: None,
            post_tls_ehlo: Vec::new(),
            reset_mid_ehlo: None,
            split: false,
            implicit: false,
        }
    }
}

/// A running fake server.
pub struct Server {
    pub addr: std::net::SocketAddr,
    /// Commands received, in order, across all connections ("[TLS]" marks the handshake).
    pub commands: Arc<Mutex<Vec<String>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl Server {
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().expect("lock").clone()
    }
    pub fn connections(&self) -> usize {
        *self.connections.lock().expect("lock")
    }
}

pub async fn spawn(spec: Spec) -> Server {
    spawn_on("127.0.0.1:0", spec).await.expect("bind 127.0.0.1")
}

/// Like [`spawn`] on another loopback address (`[::1]:0`); None when it cannot be bound.
pub async fn spawn_on(bind: &str, spec: Spec) -> Option<Server> {
    let listener = TcpListener::bind(bind).await.ok()?;
    let addr = listener.local_addr().expect("addr");
    let commands = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(Mutex::new(0));
    let (c2, n2) = (commands.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            *n2.lock().expect("lock") += 1;
            let (spec, c3) = (spec.clone(), c2.clone());
            tokio::spawn(async move {
                let _ = serve(sock, spec, c3).await;
            });
        }
    });
    Some(Server {
        addr,
        commands,
        connections,
    })
}

async fn write<S: AsyncWrite + Unpin>(
    io: &mut S,
    bytes: &[u8],
    split: bool,
) -> std::io::Result<()> {
    if split {
        for chunk in bytes.chunks(3) {
            io.write_all(chunk).await?;
            io.flush().await?;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    } else {
        io.write_all(bytes).await?;
        io.flush().await
    }
}

async fn serve(sock: TcpStream, spec: Spec, log: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    if spec.implicit {
        match &spec.after_starttls {
            Some(AfterStarttls::Tls(cfg)) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
                let mut tls = acceptor.accept(sock).await?;
                log.lock().expect("lock").push("[TLS]".into());
                write(&mut tls, &spec.greeting, spec.split).await?;
                return serve_tls(tls, &spec, log).await;
            }
            Some(AfterStarttls::Openssl(acceptor)) => {
                let mut tls = legacy::accept(acceptor, sock).await?;
                log.lock().expect("lock").push("[TLS]".into());
                write(&mut tls, &spec.greeting, spec.split).await?;
                return serve_tls(tls, &spec, log).await;
            }
            _ => return Ok(()),
        }
    }
    tokio::time::sleep(spec.greeting_delay).await;
    let mut r = BufReader::new(sock);
    write(r.get_mut(), &spec.greeting, spec.split).await?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        log.lock().expect("lock").push(cmd.clone());
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                if let Some(part) = &spec.reset_mid_ehlo {
                    r.get_mut().write_all(part).await?;
                    r.get_mut().flush().await?;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    r.get_ref().set_zero_linger()?;
                    return Ok(());
                }
                write(r.get_mut(), &spec.ehlo, spec.split).await?
            }
            "HELO" => write(r.get_mut(), &spec.helo, spec.split).await?,
            "STARTTLS" => {
                write(r.get_mut(), &spec.starttls, spec.split).await?;
                if !spec.starttls.starts_with(b"220") {
                    continue;
                }
                match &spec.after_starttls {
                    Some(AfterStarttls::Tls(cfg)) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
                        let tls = acceptor.accept(r.into_inner()).await?;
                        log.lock().expect("lock").push("[TLS]".into());
                        return serve_tls(tls, &spec, log).await;
                    }
                    Some(AfterStarttls::Openssl(acceptor)) => {
                        // Bytes buffered after the STARTTLS line would be lost: none are sent.
                        let tls = legacy::accept(acceptor, r.into_inner()).await?;
                        log.lock().expect("lock").push("[TLS]".into());
                        return serve_tls(tls, &spec, log).await;
                    }
                    Some(AfterStarttls::Bytes(b)) => {
                        r.get_mut().write_all(b).await?;
                        r.get_mut().flush().await?;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        return Ok(());
                    }
                    None => return Ok(()),
                }
            }
            "QUIT" => {
                write(r.get_mut(), b"221 2.0.0 Bye\r\n", false).await?;
                return Ok(());
            }
            _ => {
                write(
                    r.get_mut(),
                    b"502 5.5.2 Error: command not recognized\r\n",
                    false,
                )
                .await?
            }
        }
    }
}

async fn serve_tls<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    spec: &Spec,
    log: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut r = BufReader::new(io);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        log.lock().expect("lock").push(cmd.clone());
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => write(r.get_mut(), &spec.post_tls_ehlo, spec.split).await?,
            "QUIT" => {
                write(r.get_mut(), b"221 2.0.0 Bye\r\n", false).await?;
                let _ = r.get_mut().shutdown().await;
                return Ok(());
            }
            _ => write(r.get_mut(), b"502 5.5.2 no\r\n", false).await?,
        }
    }
}
