//! The lab's SMTP servers: a pure dialogue core ([`Dialogue`]) and a thin tokio + rustls driver.
//!
//! A server never accepts mail: MAIL/RCPT/DATA get `502`, as the scanner never sends them.
//! Everything read from a client is bounded: 1,000-byte lines (RFC 5321 §4.5.3.1.4 allows
//! 1,000 octets with CRLF), 60 s per line, 50 commands, 5 minutes per session.

use std::sync::Arc;
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::pki::{LegacyTls, Pki};
use crate::spec::{HostSpec, SmtpBehaviour};

/// Longest command line accepted, CRLF included.
pub(crate) const MAX_LINE: usize = 1000;
const LINE_TIMEOUT: Duration = Duration::from_secs(60);
const SESSION_DEADLINE: Duration = Duration::from_secs(300);
const MAX_COMMANDS: usize = 50;
/// How long the tarpit holds a connection without a byte before closing it.
pub(crate) const TARPIT_HOLD: Duration = Duration::from_secs(120);
/// Concurrent sessions per listener.
const SESSIONS_PER_LISTENER: usize = 512;

/// What the driver must do after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send this reply, read the next command.
    Reply(String),
    /// Send this reply, then start the TLS handshake.
    ReplyThenTls(String),
    /// Send this reply, then break the connection (no TLS).
    ReplyThenBreak(String),
    /// Send this reply and close.
    ReplyThenClose(String),
}

/// The server side of one SMTP session, without I/O.
#[derive(Debug, Clone)]
pub(crate) struct Dialogue {
    name: String,
    behaviour: SmtpBehaviour,
    tls: bool,
    commands: usize,
}

impl Dialogue {
    pub(crate) fn new(name: &str, behaviour: SmtpBehaviour) -> Self {
        Dialogue {
            name: name.to_owned(),
            behaviour,
            tls: false,
            commands: 0,
        }
    }

    /// The greeting; `None` for the tarpit.
    pub(crate) fn greeting(&self) -> Option<String> {
        match self.behaviour {
            SmtpBehaviour::Tarpit => None,
            SmtpBehaviour::DecorativeBanner => Some(format!(
                "220-**************************************\r\n\
                 220-*** Authorized use only ***\r\n\
                 220-**************************************\r\n\
                 220 {} ESMTP mxray-lab\r\n",
                self.name
            )),
            _ => Some(format!("220 {} ESMTP mxray-lab\r\n", self.name)),
        }
    }

    fn advertises_starttls(&self) -> bool {
        !self.tls
            && !matches!(
                self.behaviour,
                SmtpBehaviour::NoStarttls | SmtpBehaviour::HiddenStarttls
            )
    }

    /// Whether the STARTTLS command is accepted (advertised or not).
    fn accepts_starttls(&self) -> bool {
        self.advertises_starttls() || (!self.tls && self.behaviour == SmtpBehaviour::HiddenStarttls)
    }

    /// The TLS handshake completed.
    pub(crate) fn tls_started(&mut self) {
        self.tls = true;
    }

    /// Handles one command line (without CRLF).
    pub(crate) fn on_line(&mut self, line: &str) -> Action {
        self.commands += 1;
        if self.commands > MAX_COMMANDS {
            return Action::ReplyThenClose("421 4.7.0 too many commands\r\n".into());
        }
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                // Postfix's client reads a multi-line reply by the last line's code.
                let cont = if self.behaviour == SmtpBehaviour::MixedCodeEhlo {
                    "251"
                } else {
                    "250"
                };
                let mut r = format!(
                    "250-{} greets you\r\n{cont}-PIPELINING\r\n{cont}-SIZE 10240000\r\n",
                    self.name
                );
                if self.behaviour == SmtpBehaviour::MaskedKeywordBesideStarttls {
                    r.push_str("250-XXXXXXXA\r\n");
                }
                if self.advertises_starttls() {
                    r.push_str(&format!("{cont}-STARTTLS\r\n"));
                }
                r.push_str("250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
                Action::Reply(r)
            }
            "HELO" => Action::Reply(format!("250 {}\r\n", self.name)),
            "STARTTLS" if !self.accepts_starttls() => {
                Action::Reply("502 5.5.1 STARTTLS not available\r\n".into())
            }
            "STARTTLS" => match self.behaviour {
                SmtpBehaviour::Reject454 => {
                    Action::Reply("454 4.7.0 TLS not available due to temporary reason\r\n".into())
                }
                SmtpBehaviour::TlsFailAfterReady => {
                    Action::ReplyThenBreak("220 2.0.0 Ready to start TLS\r\n".into())
                }
                _ => Action::ReplyThenTls("220 2.0.0 Ready to start TLS\r\n".into()),
            },
            "NOOP" => Action::Reply("250 2.0.0 OK\r\n".into()),
            "RSET" => Action::Reply("250 2.0.0 OK\r\n".into()),
            "QUIT" => Action::ReplyThenClose("221 2.0.0 Bye\r\n".into()),
            "MAIL" | "RCPT" | "DATA" => {
                Action::Reply("502 5.5.1 the lab accepts no mail\r\n".into())
            }
            _ => Action::Reply("500 5.5.2 command not recognized\r\n".into()),
        }
    }
}

/// Reads one line of at most `cap` bytes (CRLF or LF ended). `Ok(None)`: EOF, over-long line
/// or non-UTF-8 garbage (the caller closes).
pub(crate) async fn read_line_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    cap: usize,
) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(None);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if line.len() > cap {
            return Ok(None);
        }
        if done {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(String::from_utf8(line).ok());
        }
    }
}

/// The certificate chooser of one host.
#[derive(Debug)]
struct HostCerts {
    pki: Arc<Pki>,
    spec: HostSpec,
}

impl ResolvesServerCert for HostCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let names = match &self.spec.cert_names {
            Some(n) => n.clone(),
            None => match hello.server_name() {
                Some(sni) if sni.to_ascii_lowercase().ends_with(".lab.test") => {
                    vec![sni.to_ascii_lowercase()]
                }
                _ => vec![self.spec.name.clone()],
            },
        };
        self.pki.certified_key(self.spec.cert, &names).ok()
    }
}

/// A TLS acceptor presenting `spec`'s certificate.
pub(crate) fn acceptor(pki: Arc<Pki>, spec: HostSpec) -> Option<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(HostCerts { pki, spec }));
    Some(TlsAcceptor::from(Arc::new(cfg)))
}

enum Outcome {
    Closed,
    StartTls,
    Break,
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    d: &mut Dialogue,
) -> std::io::Result<Outcome> {
    loop {
        let line =
            match tokio::time::timeout(LINE_TIMEOUT, read_line_capped(stream, MAX_LINE)).await {
                Ok(Ok(Some(l))) => l,
                Ok(Ok(None)) => {
                    let _ = stream
                        .get_mut()
                        .write_all(b"500 5.5.6 line too long or closed\r\n")
                        .await;
                    return Ok(Outcome::Closed);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    let _ = stream.get_mut().write_all(b"421 4.4.2 timeout\r\n").await;
                    return Ok(Outcome::Closed);
                }
            };
        match d.on_line(&line) {
            Action::Reply(r) => stream.get_mut().write_all(r.as_bytes()).await?,
            Action::ReplyThenTls(r) => {
                stream.get_mut().write_all(r.as_bytes()).await?;
                return Ok(Outcome::StartTls);
            }
            Action::ReplyThenBreak(r) => {
                stream.get_mut().write_all(r.as_bytes()).await?;
                return Ok(Outcome::Break);
            }
            Action::ReplyThenClose(r) => {
                stream.get_mut().write_all(r.as_bytes()).await?;
                return Ok(Outcome::Closed);
            }
        }
    }
}

/// One session on an accepted connection.
pub(crate) async fn session(stream: TcpStream, spec: HostSpec, pki: Arc<Pki>) {
    let _ = tokio::time::timeout(SESSION_DEADLINE, session_inner(stream, spec, pki)).await;
}

async fn session_inner(mut stream: TcpStream, spec: HostSpec, pki: Arc<Pki>) -> Option<()> {
    let mut d = Dialogue::new(&spec.name, spec.behaviour);
    let Some(greeting) = d.greeting() else {
        // Tarpit: hold the connection, say nothing, then drop it.
        tokio::time::sleep(TARPIT_HOLD).await;
        return None;
    };
    stream.write_all(greeting.as_bytes()).await.ok()?;
    let mut plain = BufReader::new(stream);
    match converse(&mut plain, &mut d).await.ok()? {
        Outcome::Closed => return Some(()),
        Outcome::Break => {
            // "220 Ready", then garbage instead of a ServerHello, then close.
            let s = plain.get_mut();
            let _ = s.write_all(b"this is not TLS\r\n").await;
            let _ = s.shutdown().await;
            return Some(());
        }
        Outcome::StartTls => {}
    }
    // Bytes pipelined after STARTTLS are dropped (no command injection, RFC 3207 §5).
    let tcp = plain.into_inner();
    if let Some(legacy) = LegacyTls::of(spec.behaviour) {
        // What rustls cannot serve (TLS 1.0, an RSA-1024 key): OpenSSL, as the old servers
        // of the long tail run it.
        let names = spec
            .cert_names
            .clone()
            .unwrap_or_else(|| vec![spec.name.clone()]);
        let ctx = pki.openssl_acceptor(legacy, &names).ok()?;
        let ssl = openssl::ssl::Ssl::new(ctx.context()).ok()?;
        let mut tls = Box::pin(tokio_openssl::SslStream::new(ssl, tcp).ok()?);
        tokio::time::timeout(LINE_TIMEOUT, tls.as_mut().accept())
            .await
            .ok()?
            .ok()?;
        return converse_in_tls(tls, &mut d).await;
    }
    let acceptor = acceptor(pki, spec)?;
    let tls = tokio::time::timeout(LINE_TIMEOUT, acceptor.accept(tcp))
        .await
        .ok()?
        .ok()?;
    converse_in_tls(tls, &mut d).await
}

/// The dialogue after a completed TLS handshake, whichever engine made it; then close.
async fn converse_in_tls<S: AsyncRead + AsyncWrite + Unpin>(
    tls: S,
    d: &mut Dialogue,
) -> Option<()> {
    d.tls_started();
    let mut tls = BufReader::new(tls);
    let _ = converse(&mut tls, d).await;
    let _ = tls.get_mut().shutdown().await;
    Some(())
}

/// Accept loop of one SMTP listener: every connection is a session of the host `spec`.
pub(crate) async fn serve(listener: TcpListener, spec: HostSpec, pki: Arc<Pki>) {
    let mut sessions = tokio::task::JoinSet::new();
    let slots = Arc::new(Semaphore::new(SESSIONS_PER_LISTENER));
    loop {
        let (stream, _) = mxray_net::accept(&listener).await;
        while sessions.try_join_next().is_some() {}
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let spec = spec.clone();
        let pki = pki.clone();
        sessions.spawn(async move {
            let _permit = permit;
            session(stream, spec, pki).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ehlo_lists_starttls_only_when_offered() {
        let mut d = Dialogue::new("mx.lab.test", SmtpBehaviour::Starttls);
        let Action::Reply(r) = d.on_line("EHLO scanner") else {
            panic!("reply")
        };
        assert!(r.contains("250-STARTTLS\r\n"));
        let mut d = Dialogue::new("mx.lab.test", SmtpBehaviour::NoStarttls);
        let Action::Reply(r) = d.on_line("ehlo scanner") else {
            panic!("reply")
        };
        assert!(!r.contains("STARTTLS"));
        assert!(r.ends_with("250 8BITMIME\r\n"));
    }

    #[test]
    fn starttls_outcomes_by_behaviour() {
        let mut d = Dialogue::new("h", SmtpBehaviour::Starttls);
        assert!(matches!(d.on_line("STARTTLS"), Action::ReplyThenTls(r) if r.starts_with("220 ")));
        let mut d = Dialogue::new("h", SmtpBehaviour::Reject454);
        assert!(matches!(d.on_line("STARTTLS"), Action::Reply(r) if r.starts_with("454 ")));
        let mut d = Dialogue::new("h", SmtpBehaviour::TlsFailAfterReady);
        assert!(
            matches!(d.on_line("STARTTLS"), Action::ReplyThenBreak(r) if r.starts_with("220 "))
        );
        let mut d = Dialogue::new("h", SmtpBehaviour::NoStarttls);
        assert!(matches!(d.on_line("STARTTLS"), Action::Reply(r) if r.starts_with("502 ")));
    }

    #[test]
    fn after_tls_starttls_is_gone_and_mail_is_refused() {
        let mut d = Dialogue::new("h", SmtpBehaviour::Starttls);
        d.tls_started();
        let Action::Reply(r) = d.on_line("EHLO x") else {
            panic!("reply")
        };
        assert!(!r.contains("STARTTLS"));
        assert!(matches!(d.on_line("MAIL FROM:<a@b>"), Action::Reply(r) if r.starts_with("502")));
        assert!(matches!(d.on_line("QUIT"), Action::ReplyThenClose(r) if r.starts_with("221")));
    }

    #[test]
    fn tarpit_never_greets_and_command_count_is_capped() {
        assert_eq!(Dialogue::new("h", SmtpBehaviour::Tarpit).greeting(), None);
        let mut d = Dialogue::new("h", SmtpBehaviour::Starttls);
        for _ in 0..MAX_COMMANDS {
            assert!(matches!(d.on_line("NOOP"), Action::Reply(_)));
        }
        assert!(matches!(d.on_line("NOOP"), Action::ReplyThenClose(r) if r.starts_with("421")));
    }

    fn ehlo(d: &mut Dialogue) -> String {
        match d.on_line("EHLO scanner") {
            Action::Reply(r) => r,
            other => panic!("EHLO answered {other:?}"),
        }
    }

    #[test]
    fn decorative_banner_is_multi_line_with_words_and_starttls_intact() {
        let mut d = Dialogue::new("h.lab.test", SmtpBehaviour::DecorativeBanner);
        let g = d.greeting().expect("greets");
        let lines: Vec<&str> = g.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[..3].iter().all(|l| l.starts_with("220-")));
        assert_eq!(lines[1], "220-*** Authorized use only ***");
        assert_eq!(lines[3], "220 h.lab.test ESMTP mxray-lab");
        assert!(ehlo(&mut d).contains("250-STARTTLS\r\n"));
    }

    #[test]
    fn x_keyword_sits_beside_an_intact_starttls() {
        let mut d = Dialogue::new("h", SmtpBehaviour::MaskedKeywordBesideStarttls);
        let r = ehlo(&mut d);
        assert!(r.contains("250-XXXXXXXA\r\n") && r.contains("250-STARTTLS\r\n"));
        assert!(matches!(d.on_line("STARTTLS"), Action::ReplyThenTls(_)));
    }

    #[test]
    fn hidden_starttls_is_not_listed_but_accepted_once() {
        let mut d = Dialogue::new("h", SmtpBehaviour::HiddenStarttls);
        assert!(!ehlo(&mut d).contains("STARTTLS"));
        assert!(matches!(d.on_line("STARTTLS"), Action::ReplyThenTls(r) if r.starts_with("220 ")));
        d.tls_started();
        assert!(matches!(d.on_line("STARTTLS"), Action::Reply(r) if r.starts_with("502 ")));
    }

    #[test]
    fn mixed_code_ehlo_ends_with_a_250_line() {
        let mut d = Dialogue::new("h", SmtpBehaviour::MixedCodeEhlo);
        let r = ehlo(&mut d);
        assert!(r.starts_with("250-h greets you\r\n251-PIPELINING\r\n"));
        assert!(r.contains("251-STARTTLS\r\n"));
        assert!(r.ends_with("250 8BITMIME\r\n"));
    }

    #[tokio::test]
    async fn capped_line_reader() {
        let data: &[u8] = b"EHLO a\r\nQUIT\n";
        let mut r = BufReader::new(data);
        assert_eq!(
            read_line_capped(&mut r, 100)
                .await
                .ok()
                .flatten()
                .as_deref(),
            Some("EHLO a")
        );
        assert_eq!(
            read_line_capped(&mut r, 100)
                .await
                .ok()
                .flatten()
                .as_deref(),
            Some("QUIT")
        );
        assert_eq!(read_line_capped(&mut r, 100).await.ok().flatten(), None);
        let long = vec![b'a'; 5000];
        let mut r = BufReader::new(long.as_slice());
        assert_eq!(read_line_capped(&mut r, 1000).await.ok().flatten(), None);
    }
}
