//! A simulated mail Internet on loopback: the fixture of `mxray scan --lab`, of the end-to-end
//! tests and of the benchmarks.
//!
//! What it does: [`Lab::start`] generates fresh keys and certificates and serves, on 127.0.0.0/8
//! only,
//! - DNS for the zone tree under `lab.test.` (RFC 6761 reserved TLD): a signed apex, an
//!   unsigned delegated child `insecure.lab.test`, a child `bogus.lab.test` whose TLSA
//!   signatures are corrupt, and the synthetic zones `syn.lab.test` (unsigned) and
//!   `ssyn.lab.test` (signed); the trust anchor is [`Lab::trust_anchor_text`];
//! - SMTP servers, one loopback address per simulated host, with per-host behaviour
//!   (STARTTLS, none, 454, broken handshake, tarpit) and certificates from a lab CA
//!   ([`Lab::ca_pem`]);
//! - an HTTPS server for every `mta-sts.<domain>` policy;
//! - a STARTTLS-stripping middlebox in front of `stripped.lab.test`'s MX, active only for
//!   clients whose source address is in 127.0.99.0/24 (the `isp` vantage). On Linux every
//!   127.0.0.0/8 address is local, so binding 127.0.99.1 as a source needs no root;
//! - a path-tampering canary (`mxray-canary`'s [`mxray_canary::CanaryServer`], embedded) behind
//!   a second instance of that middlebox: [`Lab::canary_smtp`] is the address to probe,
//!   [`Lab::canary_control`] the canary's control endpoint (reached directly, not through the
//!   middlebox; authenticated with [`Lab::canary_control_key`]). `mxray canary probe` reports it `tampered` from 127.0.99.1 and `clean` from
//!   127.0.0.1;
//! - one domain per case with the posture a correct scan must report ([`Lab::expected`],
//!   [`Lab::list_table`]), plus `N` synthetic domains from a seed.
//!
//! What it does not: scan (that is the pipeline in `mxray`), touch any non-loopback address,
//! accept mail, or read system configuration. Its servers consult no global state: each gets
//! its own spec (an SMTP listener its [`HostSpec`], a middlebox its backend) or a narrow lookup
//! (the HTTPS server a policy lookup), never the whole world.
//!
//! Main types: [`Lab`], [`LabOptions`], [`PortChoice`], [`ExpectedPosture`] (the expected
//! [`mxray_model::DomainVerdict`] per vantage, compared with a scan's
//! [`mxray_model::DomainRecord::verdict`] in one `==`; [`expected_verdicts`]), [`PostureExt`],
//! [`HostSpec`], [`PolicySpec`].
//!
//! Modules, one job each; the arrows are their `use crate::...` imports, and no two modules
//! import each other:
//!
//! ```text
//! spec       the address plan; HostSpec, SmtpBehaviour, CertKind, PolicySpec;
//!            the PolicyLookup trait                               -> (none)
//! error      LabError                                             -> (none)
//! oracle     ExpectedPosture, PostureExt, the --list table        -> (none; mxray-model)
//! pki        the lab CA, leaf certificates, OpenSSL contexts      -> spec, error
//! dns        zones, online signing, the two DNS servers           -> error
//! smtp       the SMTP server: pure dialogue + tokio driver        -> spec, pki
//! https      the MTA-STS HTTPS server, over a PolicyLookup        -> spec, pki
//! strip      the STARTTLS-stripping middlebox                     -> spec
//! synth      synthetic domains: computed zones, pool hosts,
//!            their expectations                                   -> spec, oracle, dns
//! world      the running registry: SMTP hosts, middleboxes,
//!            HTTPS addresses, the PolicyLookup the HTTPS server
//!            gets                                                 -> spec, synth
//! catalogue  the cases (Builder): zones, hosts, policies and
//!            expectations, handed out as Built                    -> spec, oracle, pki, dns,
//!                                                                    synth, world, error
//! lib.rs     Lab: starts the servers from what the catalogue built
//! ```
//!
//! ```no_run
//! # async fn demo() -> Result<(), mxray_lab::LabError> {
//! use mxray_lab::{Lab, LabOptions, PortChoice, PostureExt as _};
//! let lab = Lab::start(LabOptions { synthetic_domains: 100, ports: PortChoice::High, ..LabOptions::default() }).await?;
//! println!("resolver {} smtp port {}", lab.resolver(), lab.smtp_port());
//! println!("canary {} control {}", lab.canary_smtp(), lab.canary_control());
//! for e in lab.expected() {
//!     println!("{} {}", e.domain, e.clean.summary());
//! }
//! lab.shutdown().await;
//! # Ok(()) }
//! ```

mod catalogue;
mod dns;
mod error;
mod https;
mod oracle;
mod pki;
mod smtp;
mod spec;
mod strip;
mod synth;
mod world;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hickory_proto::rr::Name;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use error::LabError;
pub use https::POLICY_PATH;
pub use oracle::{expected_verdicts, table, ExpectedPosture, PostureExt};
pub use spec::{
    CertKind, HostSpec, PolicySpec, SmtpBehaviour, APEX, BOGUS_CHILD, CANARY_BACKEND_IP, CANARY_IP,
    CANARY_NAME, DNS_AD_IP, DNS_IP, HTTPS_IP, INSECURE_CHILD, ISP_NET, ISP_SOURCE, WRONG_NAME,
};
pub use strip::{is_isp, mask_starttls, MASK};
pub use synth::{MAX_HTTPS_POOL, MAX_POOL, SSYN_ZONE, SYN_ZONE};

/// Which ports the lab's services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PortChoice {
    /// Try the standard ports (53, 25, 443); for each service that cannot bind them, fall back
    /// to [`PortChoice::High`].
    #[default]
    Auto,
    /// 53, 25 and 443, or fail.
    Standard,
    /// One free high port per service, shared by all lab addresses (DNS: an ephemeral port).
    High,
}

/// How to start the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabOptions {
    /// Synthetic domains to add (`--lab-domains N`). Default 0.
    pub synthetic_domains: usize,
    /// Seed of the synthetic mix. Default 1.
    pub seed: u64,
    /// Ports. Default [`PortChoice::Auto`].
    pub ports: PortChoice,
    /// Simulated time (`--lab-epoch N`). Default 0. From epoch 1 on, `regress.lab.test`'s MX,
    /// which offers STARTTLS in epoch 0, sits behind a middlebox that masks STARTTLS for every
    /// client: scans of epoch 0 and then 1 show a `history_regression`.
    pub epoch: u32,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            synthetic_domains: 0,
            seed: 1,
            ports: PortChoice::Auto,
            epoch: 0,
        }
    }
}

/// A running lab. Dropping it without [`Lab::shutdown`] also stops every server.
#[derive(Debug)]
pub struct Lab {
    resolver: SocketAddr,
    ad_resolver: SocketAddr,
    smtp_port: u16,
    https_port: u16,
    trust_anchor: String,
    ca_pem: String,
    expected: Vec<ExpectedPosture>,
    smtp_listeners: usize,
    canary: mxray_canary::CanaryHandle,
    canary_smtp: SocketAddr,
    canary_control: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds TCP listeners on every address at one port.
async fn bind_all(
    ips: &[Ipv4Addr],
    standard: u16,
    choice: PortChoice,
) -> Result<(u16, Vec<TcpListener>), LabError> {
    async fn at(ips: &[Ipv4Addr], port: u16) -> Result<(u16, Vec<TcpListener>), LabError> {
        let mut out = Vec::with_capacity(ips.len());
        let mut port = port;
        for ip in ips {
            let addr = SocketAddr::new(IpAddr::V4(*ip), port);
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| LabError::bind(addr, e))?;
            if port == 0 {
                port = l.local_addr().map_err(|e| LabError::bind(addr, e))?.port();
            }
            out.push(l);
        }
        Ok((port, out))
    }
    if choice != PortChoice::High {
        match at(ips, standard).await {
            Ok(r) => return Ok(r),
            Err(e) if choice == PortChoice::Standard => return Err(e),
            Err(_) => {}
        }
    }
    let mut last = None;
    for _ in 0..20 {
        match at(ips, 0).await {
            Ok(r) => return Ok(r),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(LabError::Dns("no free port".into())))
}

/// One DNS server of the lab (UDP and TCP on `ip`) answering in `mode`: the authoritative
/// one the scanner validates itself, or the validating-resolver emulation (`--dnssec ad`).
/// Its address.
async fn serve_dns(
    ip: Ipv4Addr,
    mode: dns::Mode,
    choice: PortChoice,
    authority: &Arc<dns::Authority>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Result<SocketAddr, LabError> {
    let (udp, tcp, addr) = bind_dns(ip, choice).await?;
    tasks.push(tokio::spawn(dns::serve_udp(udp, authority.clone(), mode)));
    tasks.push(tokio::spawn(dns::serve_tcp(tcp, authority.clone(), mode)));
    Ok(addr)
}

async fn bind_dns(ip: Ipv4Addr, choice: PortChoice) -> Result<dns_bound::Bound, LabError> {
    let addr = |p| SocketAddr::new(IpAddr::V4(ip), p);
    if choice != PortChoice::High {
        match dns::bind(addr(53)).await {
            Ok(b) => return Ok(b),
            Err(e) if choice == PortChoice::Standard => return Err(e),
            Err(_) => {}
        }
    }
    dns::bind(addr(0)).await
}

/// The embedded canary: default replies, a fresh self-signed certificate for [`CANARY_NAME`],
/// SMTP and control on ephemeral ports of [`CANARY_BACKEND_IP`], a fresh control key, no log
/// file.
async fn start_canary() -> Result<mxray_canary::CanaryHandle, LabError> {
    use mxray_canary::{CanaryConfig, CanaryServer, Identity, ListenSpec};
    let identity = Identity::generate(&[CANARY_NAME.to_owned()])
        .map_err(|e| LabError::Canary(e.to_string()))?;
    let mut cfg = CanaryConfig::new(identity);
    let at = |port| SocketAddr::new(IpAddr::V4(CANARY_BACKEND_IP), port);
    cfg.listen = vec![ListenSpec::starttls(at(0))];
    cfg.control = Some(at(0));
    cfg.log_file = None;
    CanaryServer::start(cfg)
        .await
        .map_err(|e| LabError::Canary(e.to_string()))
}

mod dns_bound {
    pub(crate) type Bound = (
        tokio::net::UdpSocket,
        tokio::net::TcpListener,
        std::net::SocketAddr,
    );
}

/// The expected postures for `opts` without starting any server (what `mxray lab --list`
/// prints). Deterministic: the same as [`Lab::expected`] of any lab started with the same
/// `synthetic_domains` and `seed`.
pub fn expected_postures(opts: &LabOptions) -> Result<Vec<ExpectedPosture>, LabError> {
    let pki = pki::Pki::generate()?;
    let mut b = catalogue::Builder::new(&pki, opts.epoch)?;
    b.cases()?;
    let synthetic = Arc::new(synth::Synthetic::new(
        opts.seed,
        opts.synthetic_domains,
        pki.leaf_spki_sha256(),
    ));
    Ok(b.finish(synthetic, Vec::new())?.expected)
}

impl Lab {
    /// Generates keys and certificates, binds every server and starts serving.
    pub async fn start(opts: LabOptions) -> Result<Lab, LabError> {
        let pki = Arc::new(pki::Pki::generate()?);
        let mut b = catalogue::Builder::new(&pki, opts.epoch)?;
        b.cases()?;
        let synthetic = Arc::new(synth::Synthetic::new(
            opts.seed,
            opts.synthetic_domains,
            pki.leaf_spki_sha256(),
        ));
        let zone_name =
            |s: &str| Name::from_ascii(format!("{s}.")).map_err(|e| LabError::Dns(e.to_string()));
        let synthetic_zone = |zone: &'static str, signing| {
            let synth = Arc::new(synth::SynthZone {
                synth: synthetic.clone(),
                zone,
            });
            dns::Zone::new_dynamic(zone_name(zone)?, signing, synth)
        };
        let extra = vec![
            synthetic_zone(SYN_ZONE, dns::Signing::Unsigned)?,
            synthetic_zone(SSYN_ZONE, dns::Signing::Signed)?,
        ];
        let catalogue::Built {
            zones,
            world,
            expected,
        } = b.finish(synthetic, extra)?;
        let apex = zone_name(APEX)?;
        let trust_anchor = zones
            .iter()
            .find(|z| z.origin() == &apex)
            .and_then(|z| z.key())
            .map(|k| format!("{APEX}. 3600 IN DNSKEY {}\n", k.dnskey()))
            .ok_or(LabError::Dns("apex has no key".into()))?;
        let authority = Arc::new(dns::Authority::new(zones));
        let world = Arc::new(world);
        let mut tasks = Vec::new();

        let resolver = serve_dns(
            DNS_IP,
            dns::Mode::Authoritative,
            opts.ports,
            &authority,
            &mut tasks,
        )
        .await?;
        let ad_resolver = serve_dns(
            DNS_AD_IP,
            dns::Mode::Validating,
            opts.ports,
            &authority,
            &mut tasks,
        )
        .await?;

        let hosts = world.smtp_hosts();
        let mut ips: Vec<Ipv4Addr> = hosts.iter().map(|(ip, _)| *ip).collect();
        ips.extend(world.middleboxes().iter().map(|m| m.listen));
        ips.push(CANARY_IP);
        let (smtp_port, listeners) = bind_all(&ips, 25, opts.ports).await?;
        let smtp_listeners = listeners.len();
        let mut listeners = listeners.into_iter();
        for (_, spec) in hosts {
            let Some(l) = listeners.next() else { break };
            tasks.push(tokio::spawn(smtp::serve(l, spec, pki.clone())));
        }
        let policy = Arc::new(mxray_net::DestinationPolicy::new(true, Vec::new()));
        let limits = Arc::new(mxray_net::RateLimits::new(mxray_net::RateConfig {
            global_per_sec: 1_000_000,
            per_ip_per_sec: 1_000_000,
            per_prefix_per_sec: 1_000_000,
        }));
        let dialer = mxray_net::Dialer::new(policy, limits);
        for m in world.middleboxes() {
            let Some(l) = listeners.next() else { break };
            let backend = SocketAddr::new(IpAddr::V4(m.backend), smtp_port);
            tasks.push(tokio::spawn(strip::serve(
                l,
                backend,
                dialer.clone(),
                m.everyone,
            )));
        }
        let canary_front = listeners
            .next()
            .ok_or(LabError::Canary("no listener for the canary".into()))?;
        let canary = start_canary().await?;
        let (Some(canary_backend), Some(canary_control)) =
            (canary.smtp_addr(), canary.control_addr())
        else {
            return Err(LabError::Canary("the canary has no listener".into()));
        };
        tasks.push(tokio::spawn(strip::serve(
            canary_front,
            canary_backend,
            dialer.clone(),
            false,
        )));
        let canary_smtp = SocketAddr::new(IpAddr::V4(CANARY_IP), smtp_port);

        let (https_port, https_l) = bind_all(&world.https_ips(), 443, opts.ports).await?;
        // The HTTPS server sees the world only as a policy lookup.
        let policies: Arc<dyn spec::PolicyLookup> = world;
        let acceptor = https::acceptor(pki.clone(), policies.clone()).ok_or(LabError::Pki(
            "cannot build the HTTPS TLS configuration".into(),
        ))?;
        let https_listeners = https_l.len();
        for l in https_l {
            tasks.push(tokio::spawn(https::serve(
                l,
                acceptor.clone(),
                policies.clone(),
            )));
        }
        tracing::info!(
            %resolver,
            %ad_resolver,
            smtp_port,
            https_port,
            smtp_listeners,
            https_listeners,
            "lab started"
        );
        Ok(Lab {
            resolver,
            ad_resolver,
            smtp_port,
            https_port,
            trust_anchor,
            ca_pem: pki.ca_pem().to_owned(),
            expected,
            smtp_listeners,
            canary,
            canary_smtp,
            canary_control,
            tasks,
        })
    }

    /// Stops every server and waits for them to end.
    pub async fn shutdown(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// The lab DNS server (authoritative for `lab.test.`, answers stub queries): pass it as
    /// `--resolver` with `--dnssec validate --trust-anchor <file of trust_anchor_text()>`.
    pub fn resolver(&self) -> SocketAddr {
        self.resolver
    }

    /// A validating-resolver emulation over the same data (AD on secure answers, SERVFAIL on
    /// bogus ones): pass it as `--resolver` with `--dnssec ad`.
    pub fn ad_resolver(&self) -> SocketAddr {
        self.ad_resolver
    }

    /// The trust anchor: the DNSKEY of `lab.test.` in presentation form (one line), as hickory's
    /// `TrustAnchors::from_str` and Unbound's `trust-anchor-file` read it.
    pub fn trust_anchor_text(&self) -> String {
        self.trust_anchor.clone()
    }

    /// The lab CA certificate, PEM (`--ca-file`).
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The port every lab SMTP address listens on (25, or a shared high port: remap 25 to it).
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }

    /// The port of the MTA-STS HTTPS server (443, or a high port: remap 443 to it).
    pub fn https_port(&self) -> u16 {
        self.https_port
    }

    /// Every lab domain: the case domains, then the synthetic ones.
    pub fn domains(&self) -> Vec<String> {
        self.expected.iter().map(|e| e.domain.clone()).collect()
    }

    /// What a correct scan reports for each domain, in [`Lab::domains`] order.
    pub fn expected(&self) -> &[ExpectedPosture] {
        &self.expected
    }

    /// The expected posture of one domain.
    pub fn expected_for(&self, domain: &str) -> Option<&ExpectedPosture> {
        self.expected.iter().find(|e| e.domain == domain)
    }

    /// The source address a vantage binds: `isp` → 127.0.99.1 (behind the middlebox); any
    /// other vantage binds nothing special (`None`).
    pub fn vantage_source_ip(&self, vantage: &str) -> Option<IpAddr> {
        (vantage == "isp").then_some(IpAddr::V4(ISP_SOURCE))
    }

    /// The `mxray lab --list` table.
    pub fn list_table(&self) -> String {
        table(&self.expected)
    }

    /// The lab canary as a vantage sees it: the stripping middlebox in front of the embedded
    /// canary ([`CANARY_IP`], port [`Lab::smtp_port`]). Probe it with `mxray canary probe`.
    pub fn canary_smtp(&self) -> SocketAddr {
        self.canary_smtp
    }

    /// The embedded canary's control endpoint (expectation and client log), reached directly,
    /// not through the middlebox: `mxray canary probe ... --expect <this>`.
    pub fn canary_control(&self) -> SocketAddr {
        self.canary_control
    }

    /// The embedded canary's control key (a fresh random one per lab): probes need it to ask
    /// the control endpoint, and to verify an expectation file.
    pub fn canary_control_key(&self) -> &mxray_canary::ControlKey {
        self.canary.control_key()
    }

    /// [`Lab::canary_control`] with its key, for a canary probe (`mxray_canary_probe::probe`).
    pub fn canary_control_endpoint(&self) -> mxray_canary::ControlEndpoint {
        mxray_canary::ControlEndpoint {
            addr: self.canary_control,
            key: self.canary.control_key().clone(),
        }
    }

    /// What a probe of [`Lab::canary_smtp`] must see on an untampered path.
    pub fn canary_expectation(&self) -> &mxray_canary::Expectation {
        self.canary.expectation()
    }

    /// The embedded canary's log of what clients sent it.
    pub fn canary_log(&self) -> &mxray_canary::CanaryLog {
        self.canary.log()
    }

    /// Number of SMTP listening addresses (case hosts, shared hosts, pool, middleboxes,
    /// the canary's middlebox).
    pub fn smtp_listeners(&self) -> usize {
        self.smtp_listeners
    }

    /// A short human description of the running lab (addresses and ports).
    pub fn describe(&self) -> String {
        format!(
            "lab DNS (authoritative, for --dnssec validate): {}\n\
             lab DNS (validating emulation, for --dnssec ad): {}\n\
             SMTP: {} addresses in 127.0.0.0/8, port {}\n\
             MTA-STS HTTPS: {}:{} (synthetic domains: 127.2.0.0/16)\n\
             isp vantage source: {} (stripping middlebox active for 127.0.99.0/24)\n\
             canary (behind the stripping middlebox): {}, control endpoint {}\n\
             domains: {}\n",
            self.resolver,
            self.ad_resolver,
            self.smtp_listeners,
            self.smtp_port,
            HTTPS_IP,
            self.https_port,
            ISP_SOURCE,
            self.canary_smtp,
            self.canary_control,
            self.expected.len(),
        )
    }
}
