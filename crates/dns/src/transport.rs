//! The thin I/O edge: one query over UDP (TCP when truncated) to one of the configured
//! resolvers, under a rate limit, an in-flight bound, a timeout on every await, and bounded
//! retries on timeout only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RecordType};
use mxray_model::DnsOutcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::{timeout, timeout_at, Instant};

use crate::wire::{build_query, parse_reply, QueryFlags, ReplyError};
use crate::DnsConfig;

/// Foreign or garbled datagrams tolerated while waiting for the real reply.
const MAX_STRAY_DATAGRAMS: u32 = 32;

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

struct Upstream {
    addr: SocketAddr,
    limiter: Option<DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("addr", &self.addr)
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
    source_ip: Option<IpAddr>,
    dialer: Option<mxray_net::Dialer>,
}

enum Attempt {
    Reply(Message),
    Timeout,
    Fail(Failure),
    Truncated,
}

impl Transport {
    /// Builds the transport; the config was validated by the caller.
    pub(crate) fn new(cfg: &DnsConfig) -> Self {
        let upstreams = cfg
            .resolvers
            .iter()
            .map(|addr| Upstream {
                addr: *addr,
                limiter: NonZeroU32::new(cfg.qps_per_resolver)
                    .map(|q| RateLimiter::direct(Quota::per_second(q))),
            })
            .collect();
        Transport {
            upstreams,
            next: AtomicUsize::new(0),
            in_flight: Semaphore::new(cfg.max_in_flight.max(1)),
            timeout: cfg.timeout,
            attempts: cfg.attempts.max(1),
            backoff: cfg.backoff,
            edns_payload: cfg.edns_payload,
            source_ip: cfg.source_ip,
            dialer: cfg.dialer.clone(),
        }
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
        loop {
            attempts += 1;
            let idx = self.next.fetch_add(1, Ordering::Relaxed) % self.upstreams.len().max(1);
            let Some(up) = self.upstreams.get(idx) else {
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
                self.once(up.addr, name, qtype, flags).await
            };
            let result = match outcome {
                Attempt::Reply(m) => Ok(m),
                Attempt::Fail(f) => Err(f),
                Attempt::Truncated => Err(Failure {
                    class: DnsOutcome::Truncated,
                    detail: "truncated".into(),
                }),
                Attempt::Timeout if attempts < self.attempts => {
                    let exp = attempts.saturating_sub(1).min(6);
                    tokio::time::sleep(self.backoff * (1u32 << exp)).await;
                    continue;
                }
                Attempt::Timeout => Err(Failure {
                    class: DnsOutcome::Timeout,
                    detail: format!("no reply after {attempts} attempts"),
                }),
            };
            return Exchange { result, attempts };
        }
    }

    async fn once(
        &self,
        server: SocketAddr,
        name: &Name,
        qtype: RecordType,
        flags: QueryFlags,
    ) -> Attempt {
        let id: u16 = rand_id();
        let query = match build_query(id, name, qtype, flags) {
            Ok(q) => q,
            Err(e) => {
                return Attempt::Fail(Failure {
                    class: DnsOutcome::Other,
                    detail: format!("encode: {e}"),
                })
            }
        };
        match self.udp(server, &query, id, name, qtype).await {
            Attempt::Truncated => match self.tcp(server, &query, id, name, qtype).await {
                Attempt::Reply(m) => Attempt::Reply(m),
                Attempt::Fail(f) => Attempt::Fail(Failure {
                    class: DnsOutcome::Truncated,
                    detail: format!("TCP retry: {}", f.detail),
                }),
                Attempt::Timeout => Attempt::Fail(Failure {
                    class: DnsOutcome::Truncated,
                    detail: "TCP retry timed out".into(),
                }),
                Attempt::Truncated => Attempt::Truncated,
            },
            other => other,
        }
    }

    async fn udp(
        &self,
        server: SocketAddr,
        query: &[u8],
        id: u16,
        name: &Name,
        qtype: RecordType,
    ) -> Attempt {
        let local = match (self.source_ip, server) {
            (Some(ip), _) => SocketAddr::new(ip, 0),
            (None, SocketAddr::V4(_)) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            (None, SocketAddr::V6(_)) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let io_fail = |what: &str, e: std::io::Error| {
            Attempt::Fail(Failure {
                class: DnsOutcome::Other,
                detail: format!("udp {what}: {e}"),
            })
        };
        let sock = match UdpSocket::bind(local).await {
            Ok(s) => s,
            Err(e) => return io_fail("bind", e),
        };
        // connect(): the kernel then drops datagrams from any other source.
        if let Err(e) = sock.connect(server).await {
            return io_fail("connect", e);
        }
        let deadline = Instant::now() + self.timeout;
        match timeout_at(deadline, sock.send(query)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return io_fail("send", e),
            Err(_) => return Attempt::Timeout,
        }
        // Room for the advertised payload and then some; a longer datagram is cut by the kernel
        // and then fails to parse (a peer that ignores our EDNS size is misbehaving anyway).
        let mut buf = vec![0u8; usize::from(self.edns_payload.max(512)) + 2048];
        let mut strays = 0u32;
        let mut last_stray = String::new();
        loop {
            match timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) if strays > 0 => {
                    return Attempt::Fail(Failure {
                        class: DnsOutcome::Malformed,
                        detail: format!("{strays} unusable replies: {last_stray}"),
                    })
                }
                Err(_) => return Attempt::Timeout,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Attempt::Fail(Failure {
                        class: DnsOutcome::Other,
                        detail: "udp: port unreachable".into(),
                    })
                }
                Ok(Err(e)) => return io_fail("recv", e),
                Ok(Ok(n)) => match parse_reply(&buf[..n], id, name, qtype) {
                    Ok(m) if m.metadata.truncation => return Attempt::Truncated,
                    Ok(m) => return Attempt::Reply(m),
                    Err(ReplyError::Garbage(d)) | Err(ReplyError::Foreign(d)) => {
                        strays += 1;
                        last_stray = d;
                        if strays >= MAX_STRAY_DATAGRAMS {
                            return Attempt::Fail(Failure {
                                class: DnsOutcome::Malformed,
                                detail: format!("{strays} unusable replies: {last_stray}"),
                            });
                        }
                    }
                },
            }
        }
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

/// A random query ID (RFC 5452): std's randomly seeded SipHash over a counter and the time.
fn rand_id() -> u16 {
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
