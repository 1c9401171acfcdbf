//! The canary server: the tokio/rustls driver around [`ServerSession`], its connection log
//! and the control endpoint that serves the log to probes.

use std::collections::VecDeque;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mxray_model::UtcTime;
use rustls::ServerConfig;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::TlsAcceptor;

use crate::auth::ControlEndpoint;
use crate::auth::{self, ControlKey, SignedExpectation};
use crate::expect::{CannedReplies, Expectation, Identity};
use crate::session::{ServerAction, ServerSession, LINE_TOO_LONG};
use crate::{wire, CanaryError};

/// Longest command line the canary reads (RFC 5321 §4.5.3.1.4: 512 with CRLF; some slack).
pub const MAX_COMMAND_LINE: usize = 1024;

/// One SMTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSpec {
    /// Address to bind (port 0: any free port).
    pub addr: SocketAddr,
    /// TLS from the first byte (submissions port 465, RFC 8314) instead of STARTTLS.
    pub implicit_tls: bool,
}

impl ListenSpec {
    /// A STARTTLS listener (ports 25, 587).
    pub fn starttls(addr: SocketAddr) -> Self {
        ListenSpec {
            addr,
            implicit_tls: false,
        }
    }

    /// An implicit-TLS listener (port 465).
    pub fn implicit_tls(addr: SocketAddr) -> Self {
        ListenSpec {
            addr,
            implicit_tls: true,
        }
    }
}

/// Configuration of a [`CanaryServer`]. Build with [`CanaryConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct CanaryConfig {
    /// SMTP listeners. Default: one STARTTLS listener on `127.0.0.1:0`.
    pub listen: Vec<ListenSpec>,
    /// Control endpoint address; `None` disables it. Default `127.0.0.1:0`. It answers only
    /// requests authenticated with [`CanaryConfig::control_key`] ([`crate::auth`]).
    pub control: Option<SocketAddr>,
    /// The key that authenticates the control endpoint's requests and answers and signs
    /// expectation files. Default `None`: a fresh random key at start
    /// ([`CanaryHandle::control_key`] tells it).
    pub control_key: Option<ControlKey>,
    /// Append one JSON line per finished connection to this file. Default none.
    pub log_file: Option<PathBuf>,
    /// Certificate and key presented in TLS.
    pub identity: Identity,
    /// The fixed replies. Default [`CannedReplies::default`].
    pub replies: CannedReplies,
    /// Bytes kept per direction and phase (plain, TLS) of each connection. Default 16 KiB:
    /// a probe dialogue is under 1 KiB; the cap bounds what a hostile client costs.
    pub max_logged_bytes: usize,
    /// Connections kept in memory for the control endpoint (oldest dropped first). Default
    /// 10 000.
    pub max_log_entries: usize,
    /// Timeout for each read and for the TLS handshake. Default 30 s.
    pub read_timeout: Duration,
    /// Whole-session deadline. Default 120 s.
    pub session_timeout: Duration,
    /// Concurrent SMTP sessions; more wait in the accept queue. Default 256.
    pub max_sessions: usize,
}

impl CanaryConfig {
    /// Defaults (see the fields) with this identity.
    pub fn new(identity: Identity) -> Self {
        let lo: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        CanaryConfig {
            listen: vec![ListenSpec::starttls(lo)],
            control: Some(lo),
            control_key: None,
            log_file: None,
            identity,
            replies: CannedReplies::default(),
            max_logged_bytes: 16 * 1024,
            max_log_entries: 10_000,
            read_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(120),
            max_sessions: 256,
        }
    }
}

/// What the canary saw of one connection: the log entry served to probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientLog {
    /// Sequence number within this canary process.
    pub id: u64,
    /// When the connection was accepted (UTC).
    pub at: UtcTime,
    /// The canary address that accepted it.
    pub listen: SocketAddr,
    /// The client's address and port as the canary saw them.
    pub client: SocketAddr,
    /// The listener was implicit TLS.
    pub implicit_tls: bool,
    /// Bytes received from the client before TLS, exactly as read (escaped text in JSON).
    #[serde(with = "wire::text")]
    pub received_plain: Vec<u8>,
    /// Bytes the canary sent before TLS.
    #[serde(with = "wire::text")]
    pub sent_plain: Vec<u8>,
    /// Bytes received inside TLS.
    #[serde(with = "wire::text")]
    pub received_tls: Vec<u8>,
    /// Bytes sent inside TLS.
    #[serde(with = "wire::text")]
    pub sent_tls: Vec<u8>,
    /// Some byte field hit the cap.
    pub truncated: bool,
    /// The TLS handshake completed.
    pub tls_completed: bool,
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// Why the TLS handshake failed.
    pub tls_error: Option<String>,
    /// How the session ended (`closed_by_canary`, `eof`, `timeout`, `line_too_long`, ...);
    /// null while it is still open.
    pub ended: Option<String>,
}

/// The in-memory connection log, shared with the control endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CanaryLog {
    inner: Arc<Mutex<LogInner>>,
    max_bytes: usize,
}

#[derive(Debug)]
struct LogInner {
    entries: VecDeque<ClientLog>,
    next_id: u64,
    max_entries: usize,
    file: Option<std::fs::File>,
}

#[derive(Debug, Clone, Copy)]
enum Field {
    ReceivedPlain,
    SentPlain,
    ReceivedTls,
    SentTls,
}

impl CanaryLog {
    fn new(max_entries: usize, max_bytes: usize, file: Option<std::fs::File>) -> Self {
        CanaryLog {
            inner: Arc::new(Mutex::new(LogInner {
                entries: VecDeque::new(),
                next_id: 0,
                max_entries: max_entries.max(1),
                file,
            })),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self, listen: SocketAddr, client: SocketAddr, implicit_tls: bool) -> u64 {
        let mut g = self.lock();
        let id = g.next_id;
        g.next_id += 1;
        if g.entries.len() >= g.max_entries {
            g.entries.pop_front();
        }
        g.entries.push_back(ClientLog {
            id,
            at: UtcTime::now(),
            listen,
            client,
            implicit_tls,
            received_plain: Vec::new(),
            sent_plain: Vec::new(),
            received_tls: Vec::new(),
            sent_tls: Vec::new(),
            truncated: false,
            tls_completed: false,
            sni: None,
            tls_error: None,
            ended: None,
        });
        id
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut ClientLog)) {
        let mut g = self.lock();
        if let Some(e) = g.entries.iter_mut().rev().find(|e| e.id == id) {
            f(e);
        }
    }

    fn append(&self, id: u64, field: Field, bytes: &[u8]) {
        let max = self.max_bytes;
        self.update(id, |e| {
            let v = match field {
                Field::ReceivedPlain => &mut e.received_plain,
                Field::SentPlain => &mut e.sent_plain,
                Field::ReceivedTls => &mut e.received_tls,
                Field::SentTls => &mut e.sent_tls,
            };
            let room = max.saturating_sub(v.len());
            if bytes.len() > room {
                e.truncated = true;
            }
            v.extend_from_slice(&bytes[..bytes.len().min(room)]);
        });
    }

    fn close(&self, id: u64, ended: String) {
        let mut g = self.lock();
        let Some(e) = g.entries.iter_mut().rev().find(|e| e.id == id) else {
            return;
        };
        e.ended = Some(ended);
        let line = serde_json::to_string(e).unwrap_or_default();
        if let Some(f) = g.file.as_mut() {
            // One small write per finished connection; a failure is logged, never fatal.
            if let Err(err) = writeln!(f, "{line}") {
                tracing::warn!(error = %err, "canary log file write failed");
            }
        }
    }

    /// The newest entry of a connection from `client` (address and port), if still kept.
    pub fn find(&self, client: SocketAddr) -> Option<ClientLog> {
        self.lock()
            .entries
            .iter()
            .rev()
            .find(|e| e.client == client)
            .cloned()
    }

    /// The newest entry whose received bytes (before or inside TLS) contain `token`.
    pub fn find_token(&self, token: &[u8]) -> Option<ClientLog> {
        if token.is_empty() {
            return None;
        }
        let has = |h: &[u8]| h.windows(token.len()).any(|w| w == token);
        self.lock()
            .entries
            .iter()
            .rev()
            .find(|e| has(&e.received_plain) || has(&e.received_tls))
            .cloned()
    }

    /// All entries kept, oldest first.
    pub fn entries(&self) -> Vec<ClientLog> {
        self.lock().entries.iter().cloned().collect()
    }
}

/// The control SMTP server. [`CanaryServer::start`] binds everything and returns a
/// [`CanaryHandle`]; the servers run until the handle is dropped.
#[derive(Debug)]
pub struct CanaryServer;

/// A running canary: its bound addresses, expectation and log. Dropping it stops the
/// listeners (sessions in progress finish within their deadline).
#[derive(Debug)]
pub struct CanaryHandle {
    smtp: Vec<ListenSpec>,
    control: Option<SocketAddr>,
    control_key: ControlKey,
    expectation: Expectation,
    log: CanaryLog,
    tasks: Vec<JoinHandle<()>>,
}

impl CanaryHandle {
    /// The bound SMTP listeners (actual ports when 0 was asked for), in config order.
    pub fn listeners(&self) -> &[ListenSpec] {
        &self.smtp
    }

    /// The first bound SMTP address.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp.first().map(|l| l.addr)
    }

    /// The bound control endpoint.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control
    }

    /// The key of the control endpoint and of expectation files (given or generated).
    pub fn control_key(&self) -> &ControlKey {
        &self.control_key
    }

    /// The control endpoint with its key: what a probe needs to ask it.
    pub fn control_endpoint(&self) -> Option<ControlEndpoint> {
        self.control.map(|addr| ControlEndpoint {
            addr,
            key: self.control_key.clone(),
        })
    }

    /// What probes must see.
    pub fn expectation(&self) -> &Expectation {
        &self.expectation
    }

    /// The expectation signed with the control key: the content of an expectation file.
    pub fn signed_expectation(&self) -> Result<SignedExpectation, CanaryError> {
        SignedExpectation::sign(&self.expectation, &self.control_key)
    }

    /// The connection log.
    pub fn log(&self) -> &CanaryLog {
        &self.log
    }
}

impl Drop for CanaryHandle {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Shared {
    cfg: CanaryConfig,
    acceptor: TlsAcceptor,
    log: CanaryLog,
    expectation: Expectation,
    control_key: ControlKey,
    permits: Arc<Semaphore>,
    control_permits: Arc<Semaphore>,
}

impl CanaryServer {
    /// Validates the configuration, binds every listener and starts serving.
    pub async fn start(cfg: CanaryConfig) -> Result<CanaryHandle, CanaryError> {
        cfg.replies.validate()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| CanaryError::Certificate(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(cfg.identity.chain().to_vec(), cfg.identity.key())
            .map_err(|e| CanaryError::Certificate(e.to_string()))?;
        let file = match &cfg.log_file {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| CanaryError::Io(format!("log file {}: {e}", p.display())))?,
            ),
            None => None,
        };
        let log = CanaryLog::new(cfg.max_log_entries, cfg.max_logged_bytes, file);
        let expectation = Expectation::new(&cfg.replies, cfg.identity.chain_sha256());
        let control_key = match &cfg.control_key {
            Some(k) => k.clone(),
            None => ControlKey::generate()?,
        };
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for spec in &cfg.listen {
            let l = TcpListener::bind(spec.addr)
                .await
                .map_err(|e| CanaryError::Io(format!("bind {}: {e}", spec.addr)))?;
            let addr = l
                .local_addr()
                .map_err(|e| CanaryError::Io(format!("local address: {e}")))?;
            bound.push(ListenSpec {
                addr,
                implicit_tls: spec.implicit_tls,
            });
            listeners.push(l);
        }
        let control = match cfg.control {
            Some(a) => {
                let l = TcpListener::bind(a)
                    .await
                    .map_err(|e| CanaryError::Io(format!("bind control {a}: {e}")))?;
                let addr = l
                    .local_addr()
                    .map_err(|e| CanaryError::Io(format!("local address: {e}")))?;
                Some((l, addr))
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            permits: Arc::new(Semaphore::new(cfg.max_sessions.max(1))),
            control_permits: Arc::new(Semaphore::new(CONTROL_SESSIONS)),
            cfg,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
            log: log.clone(),
            expectation: expectation.clone(),
            control_key: control_key.clone(),
        });
        let mut tasks = Vec::new();
        for (l, spec) in listeners.into_iter().zip(&bound) {
            tasks.push(tokio::spawn(accept_smtp(l, *spec, shared.clone())));
        }
        let control_addr = control.as_ref().map(|c| c.1);
        if let Some((l, _)) = control {
            tasks.push(tokio::spawn(accept_control(l, shared.clone())));
        }
        Ok(CanaryHandle {
            smtp: bound,
            control: control_addr,
            control_key,
            expectation,
            log,
            tasks,
        })
    }
}

async fn accept_smtp(listener: TcpListener, spec: ListenSpec, shared: Arc<Shared>) {
    loop {
        // Take the permit before accepting: excess clients wait in the kernel's backlog
        // instead of holding file descriptors here.
        let Ok(permit) = shared.permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, client) = mxray_net::accept(&listener).await;
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let id = shared.log.open(spec.addr, client, spec.implicit_tls);
            let deadline = Instant::now() + shared.cfg.session_timeout;
            let ended = serve_smtp(stream, id, spec.implicit_tls, &shared, deadline).await;
            shared.log.close(id, ended);
        });
    }
}

/// Why a dialogue phase ended.
enum PhaseEnd {
    StartTls,
    Ended(String),
}

async fn serve_smtp(
    stream: TcpStream,
    id: u64,
    implicit_tls: bool,
    shared: &Shared,
    deadline: Instant,
) -> String {
    let mut session = ServerSession::new(shared.cfg.replies.clone(), implicit_tls);
    let mut stream = stream;
    if !implicit_tls {
        match converse(&mut stream, &mut session, id, false, shared, deadline, true).await {
            PhaseEnd::Ended(why) => return why,
            PhaseEnd::StartTls => {}
        }
    }
    let hs_end = (Instant::now() + shared.cfg.read_timeout).min(deadline);
    let mut tls = match timeout_at(hs_end, shared.acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            shared.log.update(id, |l| l.tls_error = Some(e.to_string()));
            return "tls_failed".into();
        }
        Err(_) => {
            shared
                .log
                .update(id, |l| l.tls_error = Some("handshake timed out".into()));
            return "tls_timeout".into();
        }
    };
    let sni = tls.get_ref().1.server_name().map(str::to_owned);
    shared.log.update(id, |l| {
        l.tls_completed = true;
        l.sni = sni;
    });
    session.on_tls_established();
    let end = converse(
        &mut tls,
        &mut session,
        id,
        true,
        shared,
        deadline,
        implicit_tls,
    )
    .await;
    let close_by = (Instant::now() + Duration::from_secs(1)).min(deadline);
    let _ = timeout_at(close_by, tls.shutdown()).await;
    match end {
        PhaseEnd::Ended(why) => why,
        PhaseEnd::StartTls => "starttls_in_tls".into(),
    }
}

/// One phase (plain or TLS) of the dialogue. Received bytes are logged as they arrive,
/// before the canary answers, so a client that has its reply can ask the control endpoint.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    session: &mut ServerSession,
    id: u64,
    in_tls: bool,
    shared: &Shared,
    deadline: Instant,
    greet: bool,
) -> PhaseEnd {
    let (rx, tx) = if in_tls {
        (Field::ReceivedTls, Field::SentTls)
    } else {
        (Field::ReceivedPlain, Field::SentPlain)
    };
    let log = &shared.log;
    if greet
        && send(io, log, id, tx, &session.greeting(), deadline)
            .await
            .is_err()
    {
        return PhaseEnd::Ended("write_failed".into());
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let action = session.on_line(&line[..line.len() - 1]);
            let (bytes, next) = match action {
                ServerAction::Reply(b) => (b, None),
                ServerAction::ReplyThenTls(b) => (b, Some(PhaseEnd::StartTls)),
                ServerAction::ReplyThenClose(b) => {
                    (b, Some(PhaseEnd::Ended("closed_by_canary".into())))
                }
            };
            if send(io, log, id, tx, &bytes, deadline).await.is_err() {
                return PhaseEnd::Ended("write_failed".into());
            }
            match next {
                Some(PhaseEnd::StartTls) => {
                    // RFC 3207 §4.2 / CVE-2011-0411: bytes pipelined after STARTTLS are
                    // dropped (they are in the log already).
                    return PhaseEnd::StartTls;
                }
                Some(end @ PhaseEnd::Ended(_)) => {
                    let _ = timeout_at(deadline, io.shutdown()).await;
                    return end;
                }
                None => {}
            }
        }
        if buf.len() > MAX_COMMAND_LINE {
            let _ = send(io, log, id, tx, LINE_TOO_LONG, deadline).await;
            return PhaseEnd::Ended("line_too_long".into());
        }
        let read_end = (Instant::now() + shared.cfg.read_timeout).min(deadline);
        match timeout_at(read_end, io.read(&mut chunk)).await {
            Err(_) => return PhaseEnd::Ended("timeout".into()),
            Ok(Ok(0)) => return PhaseEnd::Ended("eof".into()),
            Ok(Err(e)) => return PhaseEnd::Ended(format!("read_error: {e}")),
            Ok(Ok(n)) => {
                log.append(id, rx, &chunk[..n]);
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// Logs then writes `bytes`.
async fn send<S: AsyncWrite + Unpin>(
    io: &mut S,
    log: &CanaryLog,
    id: u64,
    field: Field,
    bytes: &[u8],
    deadline: Instant,
) -> Result<(), ()> {
    log.append(id, field, bytes);
    match timeout_at(deadline, io.write_all(bytes)).await {
        Ok(Ok(())) => match timeout_at(deadline, io.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(()),
        },
        _ => Err(()),
    }
}

/// The control protocol: one authenticated request line, one authenticated JSON line back per
/// request (the framing and MACs are in [`crate::auth`]). The commands:
///
/// * `EXPECT` → the [`Expectation`] (what probes must see).
/// * `LOG <ip>:<port>` (IPv6 as `[addr]:port`) → the [`ClientLog`] of the newest connection
///   from that client address and port, or `{"error":"not_found"}`.
/// * `FIND <token>` → the newest connection whose received bytes contain the token (1-64
///   characters from `A-Za-z0-9-`), or `{"error":"not_found"}`: how a probe behind NAT or a
///   proxy finds its session (it puts the token in its EHLO name).
/// * `QUIT` → closes. Anything else → `{"error":"bad_request"}`.
///
/// A request that is not authenticated with the canary's key gets the unauthenticated
/// [`auth::REFUSAL`] line and the connection is closed: without the key nothing of the log
/// is served. Lines are capped at [`MAX_CONTROL_LINE`] bytes and a connection serves at most
/// 64 requests.
pub const CONTROL_PROTOCOL: &str = "EXPECT | LOG <ip:port> | FIND <token> | QUIT";

/// Longest control request line read, line end included (a `FIND` with a 64-character token,
/// the 32-character nonce and the 64-character MAC fit in under 200 bytes).
pub const MAX_CONTROL_LINE: usize = 512;

/// Requests served per control connection.
const CONTROL_REQUESTS: usize = 64;

/// Answers one authenticated control command. `None` means close.
fn control_answer(command: &str, log: &CanaryLog, exp: &Expectation) -> Option<String> {
    let line = command.trim();
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    let err = |e: &str| serde_json::json!({ "error": e }).to_string();
    Some(match verb.to_ascii_uppercase().as_str() {
        "QUIT" => return None,
        "EXPECT" => serde_json::to_string(exp).unwrap_or_else(|_| err("internal")),
        "LOG" => match arg.trim().parse::<SocketAddr>() {
            Ok(client) => match log.find(client) {
                Some(entry) => serde_json::to_string(&entry).unwrap_or_else(|_| err("internal")),
                None => err("not_found"),
            },
            Err(_) => err("bad_request"),
        },
        "FIND" => {
            let t = arg.trim();
            let ok = (1..=64).contains(&t.len())
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                err("bad_request")
            } else {
                match log.find_token(t.as_bytes()) {
                    Some(entry) => {
                        serde_json::to_string(&entry).unwrap_or_else(|_| err("internal"))
                    }
                    None => err("not_found"),
                }
            }
        }
        _ => err("bad_request"),
    })
}

/// What the control endpoint does with one request line.
#[derive(Debug, PartialEq, Eq)]
enum ControlReply {
    /// Write this authenticated answer line (LF included) and read the next request.
    Answer(String),
    /// Write [`auth::REFUSAL`] and close: the request was not authenticated.
    Refuse,
    /// Close (an authenticated `QUIT`).
    Close,
}

/// The pure core of the control endpoint: one request line (line end included or not) in,
/// what to do out.
fn control_reply(
    line: &[u8],
    key: &ControlKey,
    log: &CanaryLog,
    exp: &Expectation,
) -> ControlReply {
    let Ok(text) = std::str::from_utf8(line) else {
        return ControlReply::Refuse;
    };
    let Ok((command, nonce)) = auth::open_request(key, text) else {
        return ControlReply::Refuse;
    };
    match control_answer(&command, log, exp) {
        Some(json) => ControlReply::Answer(auth::answer_line(key, &command, &nonce, &json)),
        None => ControlReply::Close,
    }
}

/// For the fuzz target `canary_control` (`fuzz/`), not an API: `request` as a raw control
/// line and, when it is one UTF-8 line, as the command of a correctly authenticated request,
/// through the endpoint's pure core, with a fixed key and a log holding one connection that
/// received `logged`. Panics when an answer the endpoint gives does not verify with its own
/// key or is not JSON: that would be a bug, which the fuzzer reports as a crash.
#[doc(hidden)]
pub fn fuzz_control_request(request: &[u8], logged: &[u8]) {
    let log = CanaryLog::new(2, 4096, None);
    let client = SocketAddr::from(([127, 0, 99, 1], 4000));
    let id = log.open(SocketAddr::from(([127, 0, 0, 1], 25)), client, false);
    log.append(id, Field::ReceivedPlain, logged);
    let exp = Expectation::new(&CannedReplies::default(), vec!["00".into()]);
    let key = ControlKey::from_bytes([7; auth::KEY_LEN]);
    let nonce = [3u8; auth::NONCE_LEN];
    let check = |line: &[u8]| {
        let ControlReply::Answer(answer) = control_reply(line, &key, &log, &exp) else {
            return;
        };
        let text = std::str::from_utf8(line).expect("an answered request is UTF-8");
        let (command, nonce) =
            auth::open_request(&key, text).expect("an answered request verifies");
        let json = auth::open_answer(&key, &command, &nonce, answer.trim_end().as_bytes())
            .expect("the endpoint's answers verify with its key");
        serde_json::from_str::<serde_json::Value>(json).expect("the endpoint answers JSON");
    };
    check(request);
    if let Ok(command) = std::str::from_utf8(request) {
        if !command.contains(['\r', '\n']) {
            check(auth::request_line(&key, command, &nonce).as_bytes());
        }
    }
}

/// Concurrent control-endpoint connections.
const CONTROL_SESSIONS: usize = 64;

async fn accept_control(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok(permit) = shared.control_permits.clone().acquire_owned().await else {
            return;
        };
        let (mut stream, peer) = mxray_net::accept(&listener).await;
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let deadline = Instant::now() + shared.cfg.session_timeout;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 512];
            let mut served = 0;
            while served < CONTROL_REQUESTS {
                if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    let reply =
                        control_reply(&line, &shared.control_key, &shared.log, &shared.expectation);
                    let answer = match reply {
                        ControlReply::Answer(a) => a,
                        ControlReply::Close => break,
                        ControlReply::Refuse => {
                            // Debug, not warn: anyone who reaches the port can cause these.
                            tracing::debug!(%peer, "control request not authenticated: refused");
                            let refusal = format!("{}\n", auth::REFUSAL);
                            let _ =
                                timeout_at(deadline, stream.write_all(refusal.as_bytes())).await;
                            break;
                        }
                    };
                    if !matches!(
                        timeout_at(deadline, stream.write_all(answer.as_bytes())).await,
                        Ok(Ok(()))
                    ) {
                        break;
                    }
                    served += 1;
                    continue;
                }
                if buf.len() >= MAX_CONTROL_LINE {
                    break;
                }
                let read_end = (Instant::now() + shared.cfg.read_timeout).min(deadline);
                match timeout_at(read_end, stream.read(&mut chunk)).await {
                    Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => break,
                }
            }
            let _ = timeout_at(deadline, stream.shutdown()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_requests_are_answered_as_json_lines() {
        let log = CanaryLog::new(2, 8, None);
        let exp = Expectation::new(&CannedReplies::default(), vec!["00".into()]);
        let a: SocketAddr = "127.0.99.1:4000".parse().expect("sa");
        let id = log.open("127.0.0.1:25".parse().expect("sa"), a, false);
        log.append(id, Field::ReceivedPlain, b"EHLO x\r\nSTARTTLS\r\n");
        let got = control_answer(&format!("LOG {a}\r"), &log, &exp).expect("answer");
        let entry: ClientLog = serde_json::from_str(&got).expect("json");
        assert_eq!(entry.received_plain, b"EHLO x\r\n", "capped at 8 bytes");
        assert!(entry.truncated);
        assert_eq!(
            control_answer("LOG 127.0.99.1:4001", &log, &exp).as_deref(),
            Some(r#"{"error":"not_found"}"#)
        );
        assert_eq!(
            control_answer("LOG nonsense", &log, &exp).as_deref(),
            Some(r#"{"error":"bad_request"}"#)
        );
        let e: Expectation =
            serde_json::from_str(&control_answer("expect", &log, &exp).expect("a")).expect("json");
        assert_eq!(e, exp);
        assert_eq!(control_answer("QUIT", &log, &exp), None);
        let got = control_answer("FIND EHLO", &log, &exp).expect("answer");
        assert_eq!(
            serde_json::from_str::<ClientLog>(&got)
                .expect("json")
                .client,
            a
        );
        assert_eq!(
            control_answer("FIND c0ffee", &log, &exp).as_deref(),
            Some(r#"{"error":"not_found"}"#)
        );
        assert_eq!(
            control_answer("FIND a b", &log, &exp).as_deref(),
            Some(r#"{"error":"bad_request"}"#)
        );
    }

    #[test]
    fn only_authenticated_requests_are_answered() {
        let log = CanaryLog::new(2, 64, None);
        let exp = Expectation::new(&CannedReplies::default(), vec!["00".into()]);
        let a: SocketAddr = "127.0.99.1:4000".parse().expect("sa");
        log.open("127.0.0.1:25".parse().expect("sa"), a, false);
        let key = ControlKey::from_bytes([5; auth::KEY_LEN]);
        let other = ControlKey::from_bytes([6; auth::KEY_LEN]);
        let nonce = [1u8; auth::NONCE_LEN];
        let command = format!("LOG {a}");
        let ControlReply::Answer(line) = control_reply(
            auth::request_line(&key, &command, &nonce).as_bytes(),
            &key,
            &log,
            &exp,
        ) else {
            panic!("an authenticated request is answered");
        };
        let json = auth::open_answer(&key, &command, &nonce, line.trim_end().as_bytes())
            .expect("the answer verifies");
        assert!(json.contains("127.0.99.1:4000"), "{json}");
        // The old plain protocol, another key, a changed argument, bytes that are not UTF-8.
        let forged = auth::request_line(&key, &command, &nonce).replace("4000", "4001");
        for bad in [
            format!("{command}\r\n").into_bytes(),
            auth::request_line(&other, &command, &nonce).into_bytes(),
            forged.into_bytes(),
            b"LOG \xff\r\n".to_vec(),
        ] {
            assert_eq!(control_reply(&bad, &key, &log, &exp), ControlReply::Refuse);
        }
        assert_eq!(
            control_reply(
                auth::request_line(&key, "QUIT", &nonce).as_bytes(),
                &key,
                &log,
                &exp
            ),
            ControlReply::Close
        );
    }

    #[test]
    fn the_log_keeps_the_newest_entries() {
        let log = CanaryLog::new(2, 64, None);
        let l: SocketAddr = "127.0.0.1:25".parse().expect("sa");
        for port in 1..=3u16 {
            log.open(l, SocketAddr::new(l.ip(), port), false);
        }
        let ports: Vec<u16> = log.entries().iter().map(|e| e.client.port()).collect();
        assert_eq!(ports, vec![2, 3]);
        assert!(log.find(SocketAddr::new(l.ip(), 1)).is_none());
    }
}
