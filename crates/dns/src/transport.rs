//! The thin I/O edge: one query over UDP (TCP when truncated, or when the UDP answer was
//! larger than the EDNS size advertised) to one of the configured resolvers, under a rate
//! limit, an AIMD limit on queries in flight per resolver, a global in-flight bound, a timeout
//! on every await, and bounded retries on timeout only.
//!
//! Stray datagrams (anything on the query's socket that is not the reply: another ID, another
//! question, not a response, undecodable) are counted and ignored; the attempt waits for the
//! real reply until its deadline, and an attempt that got nothing usable is retried as a
//! timeout. The socket is connected, so the kernel drops datagrams from any other source
//! address or port before they reach us.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use mxray_model::DnsOutcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::{timeout, timeout_at, Instant};

use crate::aimd::{Aimd, Signal};
use crate::udp_pool::{Delivery, Slot, UdpPool};
use crate::wire::{build_query, ede_of, parse_reply, QueryFlags, ReplyError};
use crate::DnsConfig;

/// Stray datagrams a socket takes before it is abandoned and the attempts waiting on it are
/// given up (as timeouts, retried on a fresh socket). A flood of strays is someone on the path
/// or a broken server; past this many the socket stops spending CPU on them. Well above what
/// late answers on a socket's 64 queries give.
pub(crate) const MAX_STRAYS_PER_ATTEMPT: u32 = 256;

/// A transport-level failure: no usable reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// `timeout`, `truncated`, `malformed` or `other`.
    pub(crate) class: DnsOutcome,
    /// Human detail.
    pub(crate) detail: String,
}

/// Result of one query, with the number of attempts it took.
#[derive(Debug)]
pub(crate) struct Exchange {
    /// The reply, or why there is none.
    pub(crate) result: Result<Message, Failure>,
    /// Attempts made (1 + retries).
    pub(crate) attempts: u32,
}

/// Counters of the transport, for the progress line and the benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DnsStats {
    /// Queries sent over UDP (every attempt, including the validator's and CD re-queries).
    pub queries: u64,
    /// Datagrams ignored because they were not the reply (see `docs/dns.md`).
    pub stray_datagrams: u64,
    /// Attempts that ended without a usable reply (timeouts, including those full of strays).
    pub attempt_timeouts: u64,
    /// Queries asked again over TCP because the UDP reply had TC set.
    pub tcp_after_truncation: u64,
    /// Queries asked again over TCP because the UDP reply exceeded the advertised EDNS size.
    pub tcp_after_oversize: u64,
    /// Overload back-offs (multiplicative decreases), over all resolvers.
    pub overload_backoffs: u64,
    /// The current AIMD limit on queries in flight, per resolver (config order).
    pub in_flight_limits: Vec<(SocketAddr, usize)>,
}

#[derive(Debug, Default)]
struct Counters {
    queries: AtomicU64,
    /// Shared with the socket readers, which see the strays.
    strays: Arc<AtomicU64>,
    attempt_timeouts: AtomicU64,
    tcp_after_truncation: AtomicU64,
    tcp_after_oversize: AtomicU64,
}

/// A semaphore whose size follows an [`Aimd`] controller. Shrinking forgets idle permits
/// and, for permits in use, takes them back as they are released (`debt`).
#[derive(Debug)]
struct Gate {
    sem: Semaphore,
    state: Mutex<GateState>,
}

#[derive(Debug)]
struct GateState {
    aimd: Aimd,
    debt: usize,
}

/// One query's place under a resolver's limit; released on drop.
struct GatePermit<'a> {
    gate: &'a Gate,
    permit: Option<SemaphorePermit<'a>>,
    generation: u64,
}

impl Gate {
    fn new(ceiling: usize) -> Gate {
        let aimd = Aimd::new(ceiling);
        Gate {
            sem: Semaphore::new(aimd.limit()),
            state: Mutex::new(GateState { aimd, debt: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn permit<'a>(&'a self, permit: SemaphorePermit<'a>) -> GatePermit<'a> {
        GatePermit {
            gate: self,
            permit: Some(permit),
            generation: self.state().aimd.generation(),
        }
    }

    fn try_acquire(&self) -> Option<GatePermit<'_>> {
        self.sem.try_acquire().ok().map(|p| self.permit(p))
    }

    async fn acquire(&self) -> Option<GatePermit<'_>> {
        // The semaphore is never closed; `None` only if it were.
        self.sem.acquire().await.ok().map(|p| self.permit(p))
    }

    fn record(&self, generation: u64, signal: Signal) {
        let mut st = self.state();
        let old = st.aimd.limit();
        let new = st.aimd.record(generation, signal);
        if new > old {
            for _ in old..new {
                if st.debt > 0 {
                    st.debt -= 1;
                } else {
                    self.sem.add_permits(1);
                }
            }
        } else if new < old {
            let cut = old - new;
            let forgotten = self.sem.forget_permits(cut);
            st.debt += cut - forgotten;
        }
    }

    fn limit(&self) -> usize {
        self.state().aimd.limit()
    }

    fn decreases(&self) -> u64 {
        self.state().aimd.decreases()
    }
}

impl GatePermit<'_> {
    /// Reports what the attempt said about the resolver's load.
    fn finish(self, signal: Signal) {
        self.gate.record(self.generation, signal);
    }
}

impl Drop for GatePermit<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.permit.take() {
            let mut st = self.gate.state();
            if st.debt > 0 {
                st.debt -= 1;
                p.forget();
            }
        }
    }
}

struct Upstream {
    addr: SocketAddr,
    limiter: Option<DefaultDirectRateLimiter>,
    gate: Gate,
    pool: UdpPool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("addr", &self.addr)
            .field("gate", &self.gate)
            .finish()
    }
}

/// Shared transport state (one per collector).
#[derive(Debug)]
pub(crate) struct Transport {
    upstreams: Vec<Upstream>,
    next: AtomicUsize,
    in_flight: Semaphore,
    timeout: Duration,
    attempts: u32,
    backoff: Duration,
    edns_payload: u16,
    dialer: Option<mxray_net::Dialer>,
    counters: Counters,
}

enum Attempt {
    Reply(Message),
    /// Nothing usable by the deadline (or too many strays).
    Timeout,
    /// Only undecodable replies with our ID by the deadline.
    Garbled(String),
    Fail(Failure),
    /// TC=1 over UDP.
    Truncated,
    /// Longer than the advertised EDNS size, without TC.
    Oversized,
}

/// What an attempt's outcome says about the resolver's load.
fn signal_of(a: &Attempt) -> Signal {
    match a {
        Attempt::Timeout => Signal::Overload,
        Attempt::Reply(m)
            if m.metadata.response_code == ResponseCode::ServFail
                && !ede_of(m).iter().any(|e| e.is_bogus()) =>
        {
            Signal::Overload
        }
        Attempt::Reply(_) => Signal::Success,
        Attempt::Garbled(_) | Attempt::Fail(_) | Attempt::Truncated | Attempt::Oversized => {
            Signal::Neutral
        }
    }
}

impl Transport {
    /// Builds the transport; the config was validated by the caller.
    pub(crate) fn new(cfg: &DnsConfig) -> Self {
        let ceiling = cfg.max_in_flight.max(1);
        let counters = Counters::default();
        let upstreams = cfg
            .resolvers
            .iter()
            .map(|addr| Upstream {
                addr: *addr,
                limiter: NonZeroU32::new(cfg.qps_per_resolver)
                    .map(|q| RateLimiter::direct(Quota::per_second(q))),
                gate: Gate::new(ceiling),
                pool: UdpPool::new(
                    *addr,
                    cfg.source_ip,
                    advertised_size(cfg.edns_payload),
                    counters.strays.clone(),
                ),
            })
            .collect();
        Transport {
            upstreams,
            next: AtomicUsize::new(0),
            in_flight: Semaphore::new(ceiling),
            timeout: cfg.timeout,
            attempts: cfg.attempts.max(1),
            backoff: cfg.backoff,
            edns_payload: cfg.edns_payload,
            dialer: cfg.dialer.clone(),
            counters,
        }
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> DnsStats {
        let c = &self.counters;
        DnsStats {
            queries: c.queries.load(Ordering::Relaxed),
            stray_datagrams: c.strays.load(Ordering::Relaxed),
            attempt_timeouts: c.attempt_timeouts.load(Ordering::Relaxed),
            tcp_after_truncation: c.tcp_after_truncation.load(Ordering::Relaxed),
            tcp_after_oversize: c.tcp_after_oversize.load(Ordering::Relaxed),
            overload_backoffs: self.upstreams.iter().map(|u| u.gate.decreases()).sum(),
            in_flight_limits: self
                .upstreams
                .iter()
                .map(|u| (u.addr, u.gate.limit()))
                .collect(),
        }
    }

    /// The next resolver in round-robin order, with a permit under its limit: the first one
    /// from there that has room, else wait for that one. A resolver that backed off (or is
    /// down) thus does not hold up queries another resolver can take.
    async fn pick(&self) -> Option<(&Upstream, GatePermit<'_>)> {
        let n = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n.max(1);
        for k in 0..n {
            let up = self.upstreams.get((start + k) % n)?;
            if let Some(p) = up.gate.try_acquire() {
                return Some((up, p));
            }
        }
        let up = self.upstreams.get(start)?;
        let p = up.gate.acquire().await?;
        Some((up, p))
    }

    /// Sends one query, retrying on timeout (on the next resolver, after a backoff).
    pub(crate) async fn exchange(
        &self,
        name: &Name,
        qtype: RecordType,
        flags: QueryFlags,
    ) -> Exchange {
        let flags = QueryFlags {
            edns_payload: self.edns_payload,
            ..flags
        };
        let mut attempts = 0;
        let mut strays = 0u32;
        loop {
            attempts += 1;
            let Some((up, gate_permit)) = self.pick().await else {
                return Exchange {
                    result: Err(Failure {
                        class: DnsOutcome::Other,
                        detail: "no resolver configured".into(),
                    }),
                    attempts,
                };
            };
            if let Some(l) = &up.limiter {
                l.until_ready().await;
            }
            let outcome = {
                let _permit = self.in_flight.acquire().await;
                self.once(up, name, qtype, flags, &mut strays).await
            };
            gate_permit.finish(signal_of(&outcome));
            let strays_note = if strays > 0 {
                format!(" ({strays} stray datagrams ignored)")
            } else {
                String::new()
            };
            let result = match outcome {
                Attempt::Reply(m) => Ok(m),
                Attempt::Fail(f) => Err(f),
                Attempt::Truncated | Attempt::Oversized => Err(Failure {
                    class: DnsOutcome::Truncated,
                    detail: "truncated".into(),
                }),
                Attempt::Timeout | Attempt::Garbled(_) if attempts < self.attempts => {
                    let exp = attempts.saturating_sub(1).min(6);
                    tokio::time::sleep(self.backoff * (1u32 << exp)).await;
                    continue;
                }
                Attempt::Timeout => Err(Failure {
                    class: DnsOutcome::Timeout,
                    detail: format!("no reply after {attempts} attempts{strays_note}"),
                }),
                // The last attempt's garbled reply is what the resolver said: `malformed`.
                Attempt::Garbled(d) => Err(Failure {
                    class: DnsOutcome::Malformed,
                    detail: format!(
                        "undecodable reply after {attempts} attempts: {d}{strays_note}"
                    ),
                }),
            };
            return Exchange { result, attempts };
        }
    }

    async fn once(
        &self,
        up: &Upstream,
        name: &Name,
        qtype: RecordType,
        flags: QueryFlags,
        strays: &mut u32,
    ) -> Attempt {
        let mut slot = match up.pool.reserve(name, qtype) {
            Ok(s) => s,
            Err(e) => {
                return Attempt::Fail(Failure {
                    class: DnsOutcome::Other,
                    detail: format!("udp socket: {e}"),
                })
            }
        };
        let id = slot.id();
        let query = match build_query(id, name, qtype, flags) {
            Ok(q) => q,
            Err(e) => {
                return Attempt::Fail(Failure {
                    class: DnsOutcome::Other,
                    detail: format!("encode: {e}"),
                })
            }
        };
        let udp = self.udp(&mut slot, &query, strays).await;
        // The ID is free again; the TCP retry keeps it, on its own connection.
        drop(slot);
        let why = match udp {
            Attempt::Truncated => {
                self.counters
                    .tcp_after_truncation
                    .fetch_add(1, Ordering::Relaxed);
                "TCP retry"
            }
            Attempt::Oversized => {
                self.counters
                    .tcp_after_oversize
                    .fetch_add(1, Ordering::Relaxed);
                "TCP retry after a UDP reply over the advertised EDNS size"
            }
            other => return other,
        };
        match self.tcp(up.addr, &query, id, name, qtype).await {
            Attempt::Reply(m) => Attempt::Reply(m),
            Attempt::Fail(f) => Attempt::Fail(Failure {
                class: DnsOutcome::Truncated,
                detail: format!("{why}: {}", f.detail),
            }),
            _ => Attempt::Fail(Failure {
                class: DnsOutcome::Truncated,
                detail: format!("{why} timed out"),
            }),
        }
    }

    /// One UDP attempt on a pooled socket (`udp_pool`): send, then wait for the reader to hand
    /// over the reply until the deadline. Strays are the socket's while the query waited.
    async fn udp(&self, slot: &mut Slot, query: &[u8], strays: &mut u32) -> Attempt {
        let io_fail = |what: &str, e: std::io::Error| {
            Attempt::Fail(Failure {
                class: DnsOutcome::Other,
                detail: format!("udp {what}: {e}"),
            })
        };
        let deadline = Instant::now() + self.timeout;
        self.counters.queries.fetch_add(1, Ordering::Relaxed);
        match timeout_at(deadline, slot.send(query)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return port_unreachable()
            }
            Ok(Err(e)) => return io_fail("send", e),
            Err(_) => return self.timed_out(),
        }
        let delivery = slot.wait(deadline).await;
        *strays = strays.saturating_add(u32::try_from(slot.strays()).unwrap_or(u32::MAX));
        match delivery {
            Some(Delivery::Reply(m)) if m.metadata.truncation => Attempt::Truncated,
            Some(Delivery::Reply(m)) => Attempt::Reply(m),
            Some(Delivery::Oversized) => Attempt::Oversized,
            Some(Delivery::Refused) => port_unreachable(),
            Some(Delivery::Abandoned(why)) => {
                tracing::debug!("udp attempt abandoned: {why}");
                self.timed_out()
            }
            None => match slot.garbled() {
                Some(d) => Attempt::Garbled(d),
                None => self.timed_out(),
            },
        }
    }

    fn timed_out(&self) -> Attempt {
        self.counters
            .attempt_timeouts
            .fetch_add(1, Ordering::Relaxed);
        Attempt::Timeout
    }

    async fn tcp(
        &self,
        server: SocketAddr,
        query: &[u8],
        id: u16,
        name: &Name,
        qtype: RecordType,
    ) -> Attempt {
        let work = async {
            let mut stream = match &self.dialer {
                Some(d) => d.connect(server).await.map_err(|e| e.to_string())?,
                None => TcpStream::connect(server)
                    .await
                    .map_err(|e| e.to_string())?,
            };
            let len = u16::try_from(query.len()).map_err(|_| "query too long".to_string())?;
            let mut out = Vec::with_capacity(query.len() + 2);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(query);
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
            let mut lenbuf = [0u8; 2];
            stream
                .read_exact(&mut lenbuf)
                .await
                .map_err(|e| e.to_string())?;
            let n = usize::from(u16::from_be_bytes(lenbuf));
            let mut body = vec![0u8; n];
            stream
                .read_exact(&mut body)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<Vec<u8>, String>(body)
        };
        match timeout(self.timeout, work).await {
            Err(_) => Attempt::Timeout,
            Ok(Err(e)) => Attempt::Fail(Failure {
                class: DnsOutcome::Other,
                detail: format!("tcp: {e}"),
            }),
            Ok(Ok(body)) => match parse_reply(&body, id, name, qtype) {
                Ok(m) => Attempt::Reply(m),
                Err(ReplyError::Garbage(d)) | Err(ReplyError::Foreign(d)) => {
                    Attempt::Fail(Failure {
                        class: DnsOutcome::Malformed,
                        detail: format!("tcp reply: {d}"),
                    })
                }
            },
        }
    }
}

fn port_unreachable() -> Attempt {
    Attempt::Fail(Failure {
        class: DnsOutcome::Other,
        detail: "udp: port unreachable".into(),
    })
}

/// The receive buffer's size less one: the EDNS payload size advertised, at least 512. A
/// datagram that fills the buffer (one byte more) is longer than allowed, and was cut.
fn advertised_size(edns_payload: u16) -> usize {
    usize::from(edns_payload.max(512))
}

/// A random query ID (RFC 5452): std's randomly seeded SipHash over a counter and the time.
pub(crate) fn rand_id() -> u16 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STATE: RandomState = RandomState::new();
    }
    STATE.with(|s| {
        let mut h = s.build_hasher();
        h.write_usize(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        (h.finish() & 0xffff) as u16
    })
}
