//! Where mxray may connect, how fast, and from which address.
//!
//! What it does: [`DestinationPolicy`] refuses reserved/private destinations (ZMap's default
//! blocklist) unless allowed, and any `--blocklist` CIDR; [`RateLimits`] holds the global
//! new-connections-per-second limit, the per-destination-IP limit and the per-/24 (IPv6: /48)
//! limit; [`Dialer`] puts them together: policy check *right before* connect, rate limits,
//! optional source-address bind, connect timeout, and typed [`DialError`] classes.
//!
//! What it does not: speak any protocol, resolve names, or retry. It is shared by the SMTP
//! prober and the MTA-STS fetcher so both obey the same rules.
//!
//! For mxray's own servers (the canary, the lab, the hostile-peer fixtures) it has one piece of
//! the other side: [`accept`], an accept loop step that backs off on `accept()` errors such as
//! EMFILE instead of spinning, and [`recv_datagram`], the same for a UDP server's receive.
//!
//! Two small helpers every record writer uses live here too, as the lowest crate all of them
//! depend on: [`tls`] (the one rustls client configuration builder, [`tls::client_config`],
//! and the one spelling of TLS versions, [`tls::version_name`]) and [`units`] (durations in
//! whole milliseconds, [`units::millis`]; text cut to a byte cap, [`units::cap`]).
//!
//! Port remapping ([`Dialer::with_port_remap`]) exists only for the loopback lab, which may
//! not be able to bind ports 25/443; it is not reachable from any command-line flag.
//!
//! ```
//! use mxray_net::DestinationPolicy;
//! let policy = DestinationPolicy::new(false, Vec::new());
//! assert!(policy.check("10.1.2.3".parse().unwrap()).is_err());
//! assert!(policy.check("192.0.2.1".parse().unwrap()).is_err()); // TEST-NET-1
//! assert!(policy.check("8.8.8.8".parse().unwrap()).is_ok());
//! ```

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub mod tls;
pub mod units;

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long [`accept`] waits after a failed `accept()` before trying again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The next connection of `listener`. A failed `accept()` (EMFILE or ENFILE when descriptors
/// run out, ECONNABORTED, ENOBUFS) is logged and retried after [`ACCEPT_BACKOFF`]: retrying at
/// once would spin a core while the condition lasts, and the pending connections wait in the
/// kernel's backlog meanwhile.
pub async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(conn) => return conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// How long [`recv_datagram`] waits after a failed `recv_from()`. Shorter than
/// [`ACCEPT_BACKOFF`]: the usual cause is one ICMP error of one earlier send, not a lasting
/// condition, and a DNS server should not stall on it.
pub const RECV_BACKOFF: Duration = Duration::from_millis(5);

/// The next datagram of `sock` into `buf`: its length and sender. A failed `recv_from()` (on
/// Linux an ICMP error of an earlier send surfaces here) is retried after [`RECV_BACKOFF`]:
/// retrying at once could spin while errors are queued.
pub async fn recv_datagram(sock: &tokio::net::UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
    loop {
        match sock.recv_from(buf).await {
            Ok(got) => return got,
            Err(e) => {
                tracing::debug!(error = %e, "recv_from failed; backing off");
                tokio::time::sleep(RECV_BACKOFF).await;
            }
        }
    }
}

/// IPv4 ranges refused by default: ZMap's `blocklist.conf` (RFC 6890 special-purpose space).
pub const RESERVED_V4: &[&str] = &[
    "0.0.0.0/8",          // RFC 1122: "this" network
    "10.0.0.0/8",         // RFC 1918: private
    "100.64.0.0/10",      // RFC 6598: shared address space (CGN)
    "127.0.0.0/8",        // RFC 1122: loopback
    "169.254.0.0/16",     // RFC 3927: link local
    "172.16.0.0/12",      // RFC 1918: private
    "192.0.0.0/24",       // RFC 6890: IETF protocol assignments
    "192.0.2.0/24",       // RFC 5737: TEST-NET-1
    "192.88.99.0/24",     // RFC 3068: 6to4 relay anycast
    "192.168.0.0/16",     // RFC 1918: private
    "198.18.0.0/15",      // RFC 2544: benchmarking
    "198.51.100.0/24",    // RFC 5737: TEST-NET-2
    "203.0.113.0/24",     // RFC 5737: TEST-NET-3
    "240.0.0.0/4",        // RFC 1112: reserved
    "255.255.255.255/32", // RFC 919: limited broadcast
    "224.0.0.0/4",        // RFC 5771: multicast
];

/// IPv6 ranges refused by default (RFC 6890 and successors).
pub const RESERVED_V6: &[&str] = &[
    "::/128",         // unspecified
    "::1/128",        // loopback
    "::ffff:0:0/96",  // IPv4-mapped (checked as IPv4 instead)
    "64:ff9b:1::/48", // local-use NAT64
    "100::/64",       // discard-only
    "2001::/23",      // IETF protocol assignments
    "2001:db8::/32",  // documentation
    "fc00::/7",       // unique local
    "fe80::/10",      // link local
    "ff00::/8",       // multicast
];

/// Why a destination was refused before any packet was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Reserved or private address and `--allow-private` not given.
    #[error("{ip} is in reserved range {range} (use --allow-private to probe it)")]
    Reserved {
        /// The refused address.
        ip: IpAddr,
        /// The reserved range it falls in.
        range: IpNet,
    },
    /// Listed in `--blocklist`.
    #[error("{ip} is in blocklisted range {range}")]
    Blocklisted {
        /// The refused address.
        ip: IpAddr,
        /// The blocklist entry it falls in.
        range: IpNet,
    },
}

/// A `--blocklist` file line that is not a CIDR or address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("blocklist line {line}: {text:?} is not an IP address or CIDR prefix")]
pub struct BlocklistError {
    /// 1-based line number.
    pub line: usize,
    /// The offending text.
    pub text: String,
}

/// Which destination addresses may be contacted.
#[derive(Debug, Clone)]
pub struct DestinationPolicy {
    reserved: Vec<IpNet>,
    blocklist: Vec<IpNet>,
}

impl DestinationPolicy {
    /// `allow_private = false` refuses [`RESERVED_V4`]/[`RESERVED_V6`]; `blocklist` entries are
    /// refused always.
    pub fn new(allow_private: bool, blocklist: Vec<IpNet>) -> Self {
        let reserved = if allow_private {
            Vec::new()
        } else {
            RESERVED_V4
                .iter()
                .chain(RESERVED_V6)
                .filter_map(|s| s.parse().ok())
                .collect()
        };
        DestinationPolicy {
            reserved,
            blocklist,
        }
    }

    /// Parses a blocklist: one address or CIDR per line, `#` comments, blank lines ignored.
    pub fn parse_blocklist(text: &str) -> Result<Vec<IpNet>, BlocklistError> {
        let mut out = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let net = line
                .parse::<IpNet>()
                .or_else(|_| line.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| BlocklistError {
                    line: i + 1,
                    text: line.to_owned(),
                })?;
            out.push(net.trunc());
        }
        Ok(out)
    }

    /// Whether `ip` may be contacted. IPv4-mapped IPv6 addresses are judged as IPv4.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if let Some(range) = self.blocklist.iter().find(|n| n.contains(&ip)) {
            return Err(Refusal::Blocklisted { ip, range: *range });
        }
        if let Some(range) = self.reserved.iter().find(|n| n.contains(&ip)) {
            return Err(Refusal::Reserved { ip, range: *range });
        }
        Ok(())
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Rate limits for new connections. Defaults are zgrab2's politeness defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// New connections per second, all destinations together. Default 1000/s: enough for a
    /// top-million scan in well under an hour, far below what a single host's uplink notices.
    pub global_per_sec: u32,
    /// New connections per second to one destination IP. Default 20/s, as zgrab2.
    pub per_ip_per_sec: u32,
    /// New connections per second into one /24 (IPv6: /48). Default 100/s: a provider's MX
    /// farm in one /24 sees at most this, however many of its domains are in the input.
    pub per_prefix_per_sec: u32,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            global_per_sec: 1000,
            per_ip_per_sec: 20,
            per_prefix_per_sec: 100,
        }
    }
}

/// Shared limiters: one per process, cloned (`Arc`) into every dialer.
#[derive(Debug)]
pub struct RateLimits {
    global: DefaultDirectRateLimiter,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_prefix: DefaultKeyedRateLimiter<IpNet>,
    waits: AtomicU64,
}

impl RateLimits {
    /// Builds the limiters; zero rates are raised to 1/s.
    pub fn new(cfg: RateConfig) -> Self {
        let q = |n: u32| Quota::per_second(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        RateLimits {
            global: governor::RateLimiter::direct(q(cfg.global_per_sec)),
            per_ip: governor::RateLimiter::keyed(q(cfg.per_ip_per_sec)),
            per_prefix: governor::RateLimiter::keyed(q(cfg.per_prefix_per_sec)),
            waits: AtomicU64::new(0),
        }
    }

    /// Waits until a new connection to `ip` is allowed by all three limits.
    pub async fn until_ready(&self, ip: IpAddr) {
        let ip = canonical(ip);
        let prefix = match ip {
            IpAddr::V4(_) => IpNet::new(ip, 24),
            IpAddr::V6(_) => IpNet::new(ip, 48),
        }
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip));
        self.per_ip.until_key_ready(&ip).await;
        self.per_prefix.until_key_ready(&prefix).await;
        self.global.until_ready().await;
        // The keyed limiters remember every key; forget idle ones now and then so a scan of
        // millions of IPs keeps bounded memory.
        if self.waits.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            self.per_ip.retain_recent();
            self.per_prefix.retain_recent();
        }
    }
}

/// Why a connection was not established. Each maps onto a recorded error class.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// Refused by [`DestinationPolicy`]; nothing was sent.
    #[error(transparent)]
    Blocked(#[from] Refusal),
    /// TCP RST.
    #[error("connection refused")]
    Refused,
    /// No TCP handshake within the timeout.
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    /// The TCP handshake completed, then the peer reset (or aborted) the connection before
    /// the connect returned: a server that accepts and drops at once (a connection limit, a
    /// TCP wrapper). Not a connect failure: the destination answered.
    #[error("connection reset right after the TCP handshake")]
    ResetAfterAccept,
    /// No route / host or network unreachable.
    #[error("unreachable: {0}")]
    Unreachable(Arc<io::Error>),
    /// Anything else (e.g. the source address cannot be bound).
    #[error("connect failed: {0}")]
    Other(Arc<io::Error>),
    /// `--source-ip` was given, but none of the destination's address family.
    #[error("no --source-ip of the address family of {ip}")]
    NoSourceAddress {
        /// The destination.
        ip: IpAddr,
    },
}

impl DialError {
    fn from_io(e: io::Error) -> Self {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => DialError::Refused,
            ConnectionReset | ConnectionAborted => DialError::ResetAfterAccept,
            HostUnreachable | NetworkUnreachable => DialError::Unreachable(Arc::new(e)),
            _ if matches!(e.raw_os_error(), Some(101) | Some(113)) => {
                // ENETUNREACH / EHOSTUNREACH on Linux when the kind is not mapped.
                DialError::Unreachable(Arc::new(e))
            }
            _ => DialError::Other(Arc::new(e)),
        }
    }
}

/// Opens TCP connections under a [`DestinationPolicy`] and [`RateLimits`].
#[derive(Debug, Clone)]
pub struct Dialer {
    policy: Arc<DestinationPolicy>,
    limits: Arc<RateLimits>,
    /// At most one source address per family; empty: the OS chooses.
    source_ips: Vec<IpAddr>,
    connect_timeout: Duration,
    port_remap: Arc<Vec<(u16, u16)>>,
}

impl Dialer {
    /// A dialer with the given policy and limits, no source bind, a 10 s connect timeout.
    pub fn new(policy: Arc<DestinationPolicy>, limits: Arc<RateLimits>) -> Self {
        Dialer {
            policy,
            limits,
            source_ips: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            port_remap: Arc::new(Vec::new()),
        }
    }

    /// Binds every connection to this local address (`--source-ip`).
    pub fn with_source_ip(self, ip: Option<IpAddr>) -> Self {
        self.with_source_ips(ip.into_iter().collect())
    }

    /// Binds outgoing connections to these addresses, one per address family (`--source-ip`
    /// given once for IPv4 and once for IPv6). A later address of the same family replaces an
    /// earlier one. When any is given, a destination of a family without one is refused with
    /// [`DialError::NoSourceAddress`] rather than left to the OS: a vantage must not leak out
    /// of an address the researcher did not choose.
    pub fn with_source_ips(mut self, ips: Vec<IpAddr>) -> Self {
        let mut chosen: Vec<IpAddr> = Vec::new();
        for ip in ips {
            chosen.retain(|c| c.is_ipv4() != ip.is_ipv4());
            chosen.push(ip);
        }
        self.source_ips = chosen;
        self
    }

    /// Connect timeout.
    pub fn with_connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Lab only: connections to port `from` go to port `to` instead (the lab serves all its
    /// IPs on one high port per service when it cannot bind 25/443). The policy check still
    /// sees the original address.
    pub fn with_port_remap(mut self, from: u16, to: u16) -> Self {
        let mut v = (*self.port_remap).clone();
        v.retain(|(f, _)| *f != from);
        v.push((from, to));
        self.port_remap = Arc::new(v);
        self
    }

    /// The destination policy in force.
    pub fn policy(&self) -> &DestinationPolicy {
        &self.policy
    }

    /// The source address, if bound.
    pub fn source_ip(&self) -> Option<IpAddr> {
        self.source_ips.first().copied()
    }

    /// Every configured source address (at most one per family).
    pub fn source_ips(&self) -> &[IpAddr] {
        &self.source_ips
    }

    /// The source address for a destination: `Ok(None)` when none is configured at all.
    fn source_for(&self, dest: IpAddr) -> Result<Option<IpAddr>, DialError> {
        if self.source_ips.is_empty() {
            return Ok(None);
        }
        // The socket's family is the destination's as written (an IPv4-mapped IPv6 address
        // is dialled over IPv6).
        self.source_ips
            .iter()
            .find(|s| s.is_ipv4() == dest.is_ipv4())
            .copied()
            .map(Some)
            .ok_or(DialError::NoSourceAddress { ip: dest })
    }

    /// Checks the policy, waits for the rate limits, then connects with the timeout.
    /// The policy check happens here, immediately before connect, whatever produced `addr`.
    pub async fn connect(&self, addr: SocketAddr) -> Result<TcpStream, DialError> {
        self.admit(addr.ip()).await?;
        self.connect_admitted(addr).await
    }

    /// The checks before a connect that cost no packet: the destination policy and a source
    /// address of the destination's family; then the wait for the rate limiters. Returns how
    /// long the limiters held the caller back (so probes can record it apart from
    /// `connect_ms`).
    pub async fn admit(&self, ip: IpAddr) -> Result<Duration, DialError> {
        self.policy.check(ip)?;
        self.source_for(ip)?;
        let t0 = tokio::time::Instant::now();
        self.limits.until_ready(ip).await;
        Ok(t0.elapsed())
    }

    /// Connects to a destination already [`admit`](Self::admit)ted, without waiting for the
    /// rate limits again. The destination policy is checked once more, right before the
    /// connect.
    pub async fn connect_admitted(&self, addr: SocketAddr) -> Result<TcpStream, DialError> {
        self.policy.check(addr.ip())?;
        let source = self.source_for(addr.ip())?;
        let target = match self
            .port_remap
            .iter()
            .find(|(from, _)| *from == addr.port())
        {
            Some((_, to)) => SocketAddr::new(addr.ip(), *to),
            None => addr,
        };
        let socket = match target {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(DialError::from_io)?;
        if let Some(src) = source {
            socket
                .bind(SocketAddr::new(src, 0))
                .map_err(|e| DialError::Other(Arc::new(e)))?;
        }
        match tokio::time::timeout(self.connect_timeout, socket.connect(target)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) => Err(DialError::from_io(e)),
            Err(_) => Err(DialError::Timeout(self.connect_timeout)),
        }
    }
}

/// Loopback addresses, handy for tests: `127.0.0.1` and `::1`.
pub const LOOPBACK: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_reset_in_the_connect_is_not_a_connect_failure() {
        for kind in [
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
        ] {
            assert!(matches!(
                DialError::from_io(io::Error::from(kind)),
                DialError::ResetAfterAccept
            ));
        }
        assert!(matches!(
            DialError::from_io(io::Error::from(io::ErrorKind::ConnectionRefused)),
            DialError::Refused
        ));
    }

    #[test]
    fn reserved_ranges_are_refused_by_default() {
        let p = DestinationPolicy::new(false, vec![]);
        for s in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.5",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "224.0.0.1",
        ] {
            assert!(
                matches!(p.check(ip(s)), Err(Refusal::Reserved { .. })),
                "{s}"
            );
        }
        for s in ["8.8.8.8", "2a00:1450::1", "::ffff:8.8.8.8"] {
            assert_eq!(p.check(ip(s)), Ok(()), "{s}");
        }
    }

    #[test]
    fn allow_private_lifts_reserved_but_not_blocklist() {
        let bl = DestinationPolicy::parse_blocklist("# comment\n127.0.0.2\n\n10.0.0.0/8 # x\n")
            .expect("parse");
        let p = DestinationPolicy::new(true, bl);
        assert_eq!(p.check(ip("127.0.0.1")), Ok(()));
        assert!(matches!(
            p.check(ip("127.0.0.2")),
            Err(Refusal::Blocklisted { .. })
        ));
        assert!(matches!(
            p.check(ip("10.9.9.9")),
            Err(Refusal::Blocklisted { .. })
        ));
    }

    #[test]
    fn bad_blocklist_line_names_line_and_text() {
        let err = DestinationPolicy::parse_blocklist("1.2.3.0/24\nnot-a-net\n").expect_err("bad");
        assert_eq!(err.line, 2);
        assert_eq!(err.text, "not-a-net");
    }

    #[tokio::test]
    async fn blocked_destination_sends_nothing() {
        // A listener on loopback that would see any connection attempt.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let d = Dialer::new(
            Arc::new(DestinationPolicy::new(false, vec![])),
            Arc::new(RateLimits::new(RateConfig::default())),
        );
        assert!(matches!(d.connect(addr).await, Err(DialError::Blocked(_))));
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(
            accepted.is_err(),
            "a blocked destination must see no connection"
        );
    }

    #[tokio::test]
    async fn refused_and_remapped_connects() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let d = Dialer::new(
            Arc::new(DestinationPolicy::new(true, vec![])),
            Arc::new(RateLimits::new(RateConfig::default())),
        )
        .with_source_ip(Some(ip("127.0.0.1")))
        .with_port_remap(25, port);
        let s = d
            .connect("127.0.0.1:25".parse().expect("sa"))
            .await
            .expect("connect");
        assert_eq!(s.peer_addr().expect("peer").port(), port);
        drop(listener);
        let d2 = Dialer::new(
            Arc::new(DestinationPolicy::new(true, vec![])),
            Arc::new(RateLimits::new(RateConfig::default())),
        );
        let err = d2
            .connect(SocketAddr::new(ip("127.0.0.1"), port))
            .await
            .expect_err("closed");
        assert!(matches!(err, DialError::Refused), "{err:?}");
    }

    #[tokio::test]
    async fn a_destination_without_a_source_of_its_family_is_refused_before_any_packet() {
        let d = Dialer::new(
            Arc::new(DestinationPolicy::new(true, vec![])),
            Arc::new(RateLimits::new(RateConfig::default())),
        )
        .with_source_ips(vec![ip("127.0.0.1")]);
        assert!(matches!(
            d.admit(ip("::1")).await,
            Err(DialError::NoSourceAddress { .. })
        ));
        assert!(d.admit(ip("127.0.0.2")).await.is_ok());
        // One per family: a second IPv4 replaces the first, an IPv6 is kept beside it.
        let d = d.with_source_ips(vec![ip("127.0.0.1"), ip("::1"), ip("127.0.0.3")]);
        assert_eq!(d.source_ips(), &[ip("::1"), ip("127.0.0.3")]);
        assert!(d.admit(ip("::1")).await.is_ok());
    }
}
