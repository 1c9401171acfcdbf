//! Misbehaving mail-transport servers on loopback: the fixture of the hostile-peer suite
//! (`crates/cli/tests/hostile.rs`, `docs/hostile.md`).
//!
//! What it does: [`HostileWorld::start`] serves every case of the [`catalogue`] under the
//! zone `hostile.test`:
//! - SMTP servers on port 25 (or a given port), one loopback address (and /24) per case, each
//!   misbehaving in one way ([`SmtpMisbehaviour`]): tarpits, resets, endless and trickled
//!   lines, binary greetings, `421`, STARTTLS followed by a 1 MB certificate, an oversized TLS
//!   record or garbage; and 2,000 tarpits at once for the load case;
//! - MTA-STS HTTPS servers `mta-sts.<domain>` ([`HttpsMisbehaviour`]): heads and chunked
//!   bodies that never end, gzip bombs, trickled bodies, a 1 MB certificate, with
//!   certificates from a CA generated at start ([`HostileWorld::ca_pem`]);
//! - one DNS front (UDP and TCP) that answers `hostile.test` itself, with the [`DnsTrick`]s
//!   (compression loops, spoofed and oversized datagrams, answers to another question), and
//!   relays every other query byte for byte to the good world's resolver (the lab's), so one
//!   `--resolver` serves both worlds;
//! - a log of every session each server had ([`SessionLog`]), so time bounds are measured by
//!   the server, outside mxray;
//! - [`run_measured`]: a child's exit status, wall time and peak RSS from `wait4(2)`.
//!
//! Each case says what mxray must record ([`Expected`]) and how long one session may last;
//! the catalogue is the one list of facts, `docs/hostile.md`'s table is generated from it.
//!
//! What it does not: scan, judge records (the suite does), run outside 127.0.0.0/8, or isolate
//! itself (the suite runs it in a private network namespace, where port 25 can be bound).
//!
//! Main types: [`HostileWorld`], [`WorldOptions`], [`HostileCase`], [`Expected`],
//! [`SessionLog`], [`Measured`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), mxray_hostile::HostileError> {
//! use mxray_hostile::{HostileWorld, WorldOptions};
//! let upstream = "127.0.53.54:53".parse().expect("addr"); // the good world's resolver
//! let world = HostileWorld::start(WorldOptions::new(upstream)).await?;
//! println!("--resolver {} --ca-file <{} bytes of PEM>", world.front(), world.ca_pem().len());
//! for placed in world.cases() {
//!     println!("{} {:?}", placed.domains[0], placed.case.expected);
//! }
//! # Ok(()) }
//! ```

mod catalogue;
mod dns;
mod gzip;
mod https;
mod pki;
mod rss;
mod smtp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub use catalogue::{
    catalogue, markdown_table, Behaviour, DnsTrick, Expected, HostileCase, HttpsMisbehaviour, Kind,
    SmtpMisbehaviour, LOAD_TARPITS, ZONE,
};
pub use dns::DECOY;
pub use gzip::{bomb_member, inflated_size};
pub use pki::HUGE_CERT_PADDING;
pub use rss::{run_measured, Measured};

/// Longest any hostile session is held by the server (a client that never leaves).
pub const HOLD_LIMIT: Duration = Duration::from_secs(120);

/// The address of the plain (well-behaved, no STARTTLS) SMTP server that is the MX of the
/// HTTPS and DNS cases.
pub const PLAIN_IP: Ipv4Addr = Ipv4Addr::new(127, 66, 200, 1);

/// Why the hostile world could not start.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HostileError {
    /// A socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: Arc<std::io::Error>,
    },
    /// Certificate generation or the TLS configuration failed.
    #[error("hostile PKI: {0}")]
    Pki(String),
    /// The catalogue does not fit the address plan.
    #[error("address plan: {0}")]
    Plan(String),
}

/// One session a server had: accepted, and (once over) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// When the server accepted the connection.
    pub opened: Instant,
    /// When the server saw the client leave (or gave up); `None` while it lasts.
    pub closed: Option<Instant>,
}

impl Session {
    /// How long it lasted (so far).
    pub fn duration(&self) -> Duration {
        self.closed.unwrap_or_else(Instant::now) - self.opened
    }
}

/// The sessions of a case's servers; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct SessionLog(Arc<Mutex<Vec<Session>>>);

impl SessionLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Session>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> usize {
        let mut v = self.lock();
        v.push(Session {
            opened: Instant::now(),
            closed: None,
        });
        v.len() - 1
    }

    fn close(&self, id: usize) {
        if let Some(s) = self.lock().get_mut(id) {
            s.closed = Some(Instant::now());
        }
    }

    /// Every session so far.
    pub fn sessions(&self) -> Vec<Session> {
        self.lock().clone()
    }
}

/// Writes `bytes` one at a time, `every` apart, until they are out or the client leaves (a
/// read that returns end-of-file or an error): a slowloris that notices the close at once.
pub(crate) async fn trickle<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    bytes: &[u8],
    every: Duration,
) {
    let (mut r, mut w) = tokio::io::split(s);
    let mut sink = [0u8; 1024];
    for b in bytes {
        if w.write_all(&[*b]).await.is_err() || w.flush().await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(every);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                n = r.read(&mut sink) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
            }
        }
    }
}

/// How to start the hostile world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldOptions {
    /// Where the DNS front listens. Default `127.53.0.1:53`.
    pub front: SocketAddr,
    /// The good world's resolver, to which the front relays every query outside
    /// `hostile.test`.
    pub upstream: SocketAddr,
    /// The port of every SMTP server. Default 25.
    pub smtp_port: u16,
    /// The port of every HTTPS server. Default 443.
    pub https_port: u16,
    /// Domains of the load case. Default [`LOAD_TARPITS`].
    pub load_count: usize,
}

impl WorldOptions {
    /// The defaults, relaying to `upstream`.
    pub fn new(upstream: SocketAddr) -> Self {
        WorldOptions {
            front: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 53, 0, 1)), 53),
            upstream,
            smtp_port: 25,
            https_port: 443,
            load_count: LOAD_TARPITS,
        }
    }
}

/// A case with its place in the world.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The catalogue entry (for the load case, `count` is the number started).
    pub case: HostileCase,
    /// Its domains.
    pub domains: Vec<String>,
    /// The addresses of its misbehaving SMTP servers (SMTP and load cases).
    pub smtp_ips: Vec<Ipv4Addr>,
    /// The address of its misbehaving HTTPS server (HTTPS cases).
    pub https_ip: Option<Ipv4Addr>,
    /// The sessions its misbehaving servers had.
    pub sessions: SessionLog,
}

/// The running hostile world; dropping it stops every server.
#[derive(Debug)]
pub struct HostileWorld {
    front: SocketAddr,
    ca_pem: String,
    cases: Vec<Placed>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for HostileWorld {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn listen(ip: Ipv4Addr, port: u16) -> Result<TcpListener, HostileError> {
    let addr = SocketAddr::new(IpAddr::V4(ip), port);
    TcpListener::bind(addr)
        .await
        .map_err(|e| HostileError::Bind {
            addr,
            source: Arc::new(e),
        })
}

impl HostileWorld {
    /// Generates the certificates, binds every server and the DNS front, and starts serving.
    pub async fn start(opts: WorldOptions) -> Result<HostileWorld, HostileError> {
        let mut cases: Vec<Placed> = Vec::new();
        let mut zone = dns::Zone::default();
        let (mut smtp_k, mut https_k) = (0u8, 0u8);
        for case in catalogue() {
            let mut case = case;
            if case.kind == Kind::Load {
                case.count = opts.load_count;
            }
            let domains = case.domains();
            let mut placed = Placed {
                domains: domains.clone(),
                case,
                smtp_ips: Vec::new(),
                https_ip: None,
                sessions: SessionLog::default(),
            };
            for (i, d) in domains.iter().enumerate() {
                let mx = format!("mx.{d}");
                zone.mx(d, &mx);
                let ip = match (placed.case.kind, placed.case.behaviour) {
                    (Kind::Load, _) => {
                        let hi = u8::try_from(100 + i / 250)
                            .map_err(|_| HostileError::Plan("too many tarpits".into()))?;
                        Ipv4Addr::new(127, hi, (i % 250) as u8, 1)
                    }
                    (_, Behaviour::Smtp(_)) => {
                        smtp_k += 1;
                        if smtp_k >= 200 {
                            return Err(HostileError::Plan("too many SMTP cases".into()));
                        }
                        Ipv4Addr::new(127, 66, smtp_k, 1)
                    }
                    _ => PLAIN_IP,
                };
                if ip != PLAIN_IP {
                    placed.smtp_ips.push(ip);
                }
                zone.a(&mx, ip);
                match placed.case.behaviour {
                    Behaviour::Https(_) => {
                        https_k += 1;
                        let ip = Ipv4Addr::new(127, 67, https_k, 1);
                        placed.https_ip = Some(ip);
                        zone.txt(&format!("_mta-sts.{d}"), "v=STSv1; id=20260101T000000;");
                        zone.a(&format!("mta-sts.{d}"), ip);
                    }
                    Behaviour::Dns(t) => zone.trick(d, t),
                    Behaviour::Smtp(_) => {}
                }
            }
            cases.push(placed);
        }
        zone.mx(DECOY, DECOY);

        let names: Vec<String> = cases
            .iter()
            .filter(|p| p.case.kind != Kind::Load)
            .flat_map(|p| {
                let d = &p.domains[0];
                [format!("mx.{d}"), format!("mta-sts.{d}")]
            })
            .collect();
        let pki = pki::Pki::generate(&names)?;
        let normal = TlsAcceptor::from(pki.server_config(false)?);
        let huge = TlsAcceptor::from(pki.server_config(true)?);

        let mut tasks = Vec::new();
        let front = dns::start(opts.front, opts.upstream, Arc::new(zone), &mut tasks).await?;
        let plain = listen(PLAIN_IP, opts.smtp_port).await?;
        tasks.push(tokio::spawn(smtp::serve(
            plain,
            SmtpMisbehaviour::Plain,
            None,
            SessionLog::default(),
        )));
        for p in &cases {
            match p.case.behaviour {
                Behaviour::Smtp(m) => {
                    let tls =
                        (m == SmtpMisbehaviour::StarttlsHugeCertificate).then(|| huge.clone());
                    for ip in &p.smtp_ips {
                        let l = listen(*ip, opts.smtp_port).await?;
                        tasks.push(tokio::spawn(smtp::serve(
                            l,
                            m,
                            tls.clone(),
                            p.sessions.clone(),
                        )));
                    }
                }
                Behaviour::Https(m) => {
                    if let Some(ip) = p.https_ip {
                        let l = listen(ip, opts.https_port).await?;
                        let acceptor = if m == HttpsMisbehaviour::HugeCertificate {
                            huge.clone()
                        } else {
                            normal.clone()
                        };
                        tasks.push(tokio::spawn(https::serve(
                            l,
                            m,
                            acceptor,
                            p.sessions.clone(),
                        )));
                    }
                }
                Behaviour::Dns(_) => {}
            }
        }
        Ok(HostileWorld {
            front: front.addr,
            ca_pem: pki.ca_pem().to_owned(),
            cases,
            tasks,
        })
    }

    /// The DNS front: pass it as `--resolver`.
    pub fn front(&self) -> SocketAddr {
        self.front
    }

    /// The hostile CA, PEM: add it to `--ca-file`.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Every case, placed, in catalogue order.
    pub fn cases(&self) -> &[Placed] {
        &self.cases
    }

    /// Every hostile domain.
    pub fn domains(&self) -> Vec<String> {
        self.cases
            .iter()
            .flat_map(|p| p.domains.iter().cloned())
            .collect()
    }
}
