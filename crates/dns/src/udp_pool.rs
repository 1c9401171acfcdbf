//! Shared UDP sockets for the queries to one resolver, so that a query costs a `send` and a
//! `recv` instead of a socket's whole life (`socket`, `bind`, `connect`, two `epoll_ctl`,
//! `close`): on a lab scan those were a fifth of the scanner's CPU.
//!
//! Each socket is `connect()`ed to its resolver (the kernel drops datagrams from any other
//! address or port), carries at most [`MAX_PENDING`] queries at once under distinct random IDs,
//! and at most [`MAX_USES`] queries in its life, after which it is retired and a fresh socket,
//! on a fresh random port, takes its place. One reader task per socket hands each reply to the
//! query whose ID *and* question it matches ([`Datagram::classify`]); everything else is a stray,
//! counted on the socket and in the transport's total. A socket that has seen
//! [`MAX_STRAYS_PER_SOCKET`] strays is abandoned (its queries end as timeouts and are retried
//! on another socket): past that many it is flooded, and reading on spends CPU for nothing.
//!
//! *Why not a socket per query, as before:* the source port is then 16 more bits an off-path
//! spoofer must guess per query. Here a port serves up to [`MAX_USES`] queries (seconds, on a
//! busy scan) before it changes; the ID, the question match and the connected socket still
//! apply, and mxray talks to a resolver it was given (normally on loopback or the local
//! network), not to the Internet's authoritative servers. See docs/dns.md.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use crate::wire::Datagram;

/// Queries waiting on one socket at most. Small enough that a burst of replies fits the
/// kernel's default receive buffer (~200 KB) with room to spare.
pub(crate) const MAX_PENDING: usize = 16;
/// Queries one socket carries before it is retired (its port is then given up).
pub(crate) const MAX_USES: u32 = 64;
/// Strays one socket takes before it is abandoned as flooded. Equal to the bound one attempt
/// used to have on its own socket, so a flood ends the attempts it hits as it did then.
pub(crate) const MAX_STRAYS_PER_SOCKET: u64 = crate::transport::MAX_STRAYS_PER_ATTEMPT as u64;
/// How often an idle reader checks whether its socket is still wanted.
const READER_TICK: Duration = Duration::from_millis(500);

/// What the reader hands a waiting query.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Its reply (TC may be set).
    Reply(Message),
    /// Its ID and question, longer than the advertised size: ask over TCP.
    Oversized,
    /// ICMP port unreachable on the socket: nothing listens at the resolver's port.
    Refused,
    /// The socket failed or was abandoned (flooded): the attempt counts as a timeout.
    Abandoned(String),
}

struct Entry {
    name: Name,
    qtype: RecordType,
    tx: Option<oneshot::Sender<Delivery>>,
    /// The last undecodable reply with this ID, if any.
    garbled: Option<String>,
}

struct Shared {
    sock: UdpSocket,
    pending: Mutex<HashMap<u16, Entry>>,
    uses: AtomicU32,
    /// False once the reader is gone: the socket takes no more queries.
    alive: AtomicBool,
    /// Strays seen on this socket so far.
    strays: AtomicU64,
    /// The transport's total of strays.
    total_strays: Arc<AtomicU64>,
    /// The EDNS payload size advertised (at least 512); the receive buffer is one byte longer.
    advertised: usize,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, HashMap<u16, Entry>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the socket out of service and ends every waiting query with `what`. `alive` is
    /// cleared first, so that a query retried at once is not given this socket again.
    fn shut(&self, what: impl Fn() -> Delivery) {
        self.alive.store(false, Ordering::Release);
        self.drain(what);
    }

    /// Ends every waiting query with `what`.
    fn drain(&self, what: impl Fn() -> Delivery) {
        for (_, mut e) in self.pending().drain() {
            if let Some(tx) = e.tx.take() {
                let _ = tx.send(what());
            }
        }
    }

    fn stray(&self) {
        self.strays.fetch_add(1, Ordering::Relaxed);
        self.total_strays.fetch_add(1, Ordering::Relaxed);
    }

    fn handle(&self, received: &[u8]) {
        let Some(id) = received.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            self.stray();
            return;
        };
        let mut pending = self.pending();
        let Some(entry) = pending.get_mut(&id) else {
            drop(pending);
            tracing::debug!("stray datagram ignored: id {id} is not waiting");
            self.stray();
            return;
        };
        let delivery =
            match Datagram::classify(received, self.advertised, id, &entry.name, entry.qtype) {
                Datagram::Reply(m) => Delivery::Reply(m),
                Datagram::Oversized => Delivery::Oversized,
                Datagram::Garbled(d) => {
                    tracing::debug!(name = %entry.name, "garbled reply ignored: {d}");
                    entry.garbled = Some(d);
                    drop(pending);
                    self.stray();
                    return;
                }
                Datagram::Stray(d) => {
                    tracing::debug!(name = %entry.name, "stray datagram ignored: {d}");
                    drop(pending);
                    self.stray();
                    return;
                }
            };
        if let Some(mut e) = pending.remove(&id) {
            if let Some(tx) = e.tx.take() {
                let _ = tx.send(delivery);
            }
        }
    }
}

/// Marks the socket dead when its reader ends, however it ends (also when the runtime that
/// ran it shuts down), and ends the queries still waiting on it.
struct ReaderGuard(Arc<Shared>);

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.0
            .shut(|| Delivery::Abandoned("the socket's reader stopped".into()));
    }
}

async fn read_loop(shared: Arc<Shared>) {
    let guard = ReaderGuard(shared);
    let shared = &guard.0;
    let mut buf = vec![0u8; shared.advertised + 1];
    loop {
        // Nobody else holds the socket: the pool retired it (or is gone) and no query waits.
        if Arc::strong_count(shared) == 1 {
            return;
        }
        if shared.strays.load(Ordering::Relaxed) >= MAX_STRAYS_PER_SOCKET {
            shared.shut(|| Delivery::Abandoned("flooded with stray datagrams".into()));
            return;
        }
        match tokio::time::timeout(READER_TICK, shared.sock.recv(&mut buf)).await {
            Err(_) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                shared.drain(|| Delivery::Refused);
            }
            Ok(Err(e)) => {
                let detail = format!("udp recv: {e}");
                shared.shut(|| Delivery::Abandoned(detail.clone()));
                return;
            }
            Ok(Ok(n)) => shared.handle(buf.get(..n).unwrap_or(&buf)),
        }
    }
}

/// The sockets of one resolver.
pub(crate) struct UdpPool {
    server: SocketAddr,
    source_ip: Option<IpAddr>,
    advertised: usize,
    total_strays: Arc<AtomicU64>,
    active: Mutex<Vec<Arc<Shared>>>,
}

impl std::fmt::Debug for UdpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpPool")
            .field("server", &self.server)
            .finish()
    }
}

/// A query's place on a socket: its ID, its reply channel. Leaving it (drop) frees the ID.
pub(crate) struct Slot {
    shared: Arc<Shared>,
    id: u16,
    rx: oneshot::Receiver<Delivery>,
    strays_at_start: u64,
}

impl Slot {
    /// The query's ID.
    pub(crate) fn id(&self) -> u16 {
        self.id
    }

    /// Sends the query.
    pub(crate) async fn send(&self, query: &[u8]) -> std::io::Result<usize> {
        self.shared.sock.send(query).await
    }

    /// The reader's delivery, or `None` at `deadline`.
    pub(crate) async fn wait(&mut self, deadline: tokio::time::Instant) -> Option<Delivery> {
        match tokio::time::timeout_at(deadline, &mut self.rx).await {
            Ok(Ok(d)) => Some(d),
            Ok(Err(_)) => Some(Delivery::Abandoned("the socket's reader stopped".into())),
            Err(_) => None,
        }
    }

    /// Strays the socket saw since this query was registered.
    pub(crate) fn strays(&self) -> u64 {
        self.shared
            .strays
            .load(Ordering::Relaxed)
            .saturating_sub(self.strays_at_start)
    }

    /// The last undecodable reply with this query's ID, if any arrived.
    pub(crate) fn garbled(&self) -> Option<String> {
        self.shared
            .pending()
            .get(&self.id)
            .and_then(|e| e.garbled.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.pending().remove(&self.id);
    }
}

impl UdpPool {
    pub(crate) fn new(
        server: SocketAddr,
        source_ip: Option<IpAddr>,
        advertised: usize,
        total_strays: Arc<AtomicU64>,
    ) -> UdpPool {
        UdpPool {
            server,
            source_ip,
            advertised,
            total_strays,
            active: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> std::io::Result<Arc<Shared>> {
        let local = match (self.source_ip, self.server) {
            (Some(ip), _) => SocketAddr::new(ip, 0),
            (None, SocketAddr::V4(_)) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            (None, SocketAddr::V6(_)) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let std_sock = std::net::UdpSocket::bind(local)?;
        // connect(): the kernel then drops datagrams from any other source address or port.
        std_sock.connect(self.server)?;
        std_sock.set_nonblocking(true)?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| std::io::Error::other(format!("no tokio runtime: {e}")))?;
        let shared = Arc::new(Shared {
            sock: UdpSocket::from_std(std_sock)?,
            pending: Mutex::new(HashMap::new()),
            uses: AtomicU32::new(0),
            alive: AtomicBool::new(true),
            strays: AtomicU64::new(0),
            total_strays: self.total_strays.clone(),
            advertised: self.advertised,
        });
        handle.spawn(read_loop(shared.clone()));
        Ok(shared)
    }

    /// A slot for a query of `name`/`qtype` on a socket with room, opening one if needed.
    pub(crate) fn reserve(&self, name: &Name, qtype: RecordType) -> std::io::Result<Slot> {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        active.retain(|s| s.alive.load(Ordering::Acquire));
        let found = active.iter().position(|s| s.pending().len() < MAX_PENDING);
        let index = match found {
            Some(i) => i,
            None => {
                active.push(self.open()?);
                active.len() - 1
            }
        };
        let Some(shared) = active.get(index).cloned() else {
            return Err(std::io::Error::other("socket pool index"));
        };
        if shared.uses.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_USES {
            active.swap_remove(index);
        }
        drop(active);
        let (tx, rx) = oneshot::channel();
        let mut pending = shared.pending();
        let id = loop {
            let id = crate::transport::rand_id();
            if !pending.contains_key(&id) {
                break id;
            }
        };
        pending.insert(
            id,
            Entry {
                name: name.clone(),
                qtype,
                tx: Some(tx),
                garbled: None,
            },
        );
        drop(pending);
        let strays_at_start = shared.strays.load(Ordering::Relaxed);
        Ok(Slot {
            shared,
            id,
            rx,
            strays_at_start,
        })
    }
}
