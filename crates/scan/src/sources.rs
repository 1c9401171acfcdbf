//! What the pipeline needs from the network, as traits: DNS ([`DnsSource`]), SMTP probes
//! ([`ProbeSource`]) and MTA-STS ([`PolicySource`]). A scan uses mxray-dns, mxray-smtp and
//! mxray-mtasts; the pipeline's unit tests swap in tables, the way hickory's `RuntimeProvider`
//! lets tests swap the network, so sharing, priming, retries and order independence are
//! tested without sockets.

use std::sync::Arc;

use futures::future::BoxFuture;
use mxray_dns::{AddressLookup, DnsCollector, DomainDns, HostDns};
use mxray_mtasts::{MtaStsAssessment, MtaStsInput, PolicyFetcher};
use mxray_smtp::{ProbeOutput, ProbeTarget, Prober};

/// DNS for the pipeline.
pub trait DnsSource: Send + Sync + std::fmt::Debug + 'static {
    /// MX, `_mta-sts` and `_smtp._tls` of a domain.
    fn domain<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, DomainDns>;
    /// One MX host (cached: resolved once per scan).
    fn host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Arc<HostDns>>;
    /// One MX host resolved again (a second attempt), replacing the cached result.
    fn host_again<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Arc<HostDns>>;
    /// Addresses of any name (`mta-sts.<domain>`).
    fn addresses<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AddressLookup>;
    /// The transport's counters, for the progress line; `None` for sources without one.
    fn transport_stats(&self) -> Option<mxray_dns::DnsStats> {
        None
    }
}

/// SMTP probes for the pipeline.
pub trait ProbeSource: Send + Sync + std::fmt::Debug + 'static {
    /// One probe of one target; never fails (every outcome is in the record).
    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeOutput>;
}

/// MTA-STS for the pipeline.
pub trait PolicySource: Send + Sync + std::fmt::Debug + 'static {
    /// The assessment of a domain's policy from its DNS inputs.
    fn assess<'a>(&'a self, input: &'a MtaStsInput) -> BoxFuture<'a, MtaStsAssessment>;
}

impl DnsSource for DnsCollector {
    fn domain<'a>(&'a self, domain: &'a str) -> BoxFuture<'a, DomainDns> {
        Box::pin(DnsCollector::domain(self, domain))
    }
    fn host<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Arc<HostDns>> {
        Box::pin(DnsCollector::host(self, host))
    }
    fn host_again<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Arc<HostDns>> {
        Box::pin(DnsCollector::host_again(self, host))
    }
    fn addresses<'a>(&'a self, name: &'a str) -> BoxFuture<'a, AddressLookup> {
        Box::pin(DnsCollector::addresses(self, name))
    }
    fn transport_stats(&self) -> Option<mxray_dns::DnsStats> {
        Some(self.stats())
    }
}

impl ProbeSource for Prober {
    fn probe<'a>(&'a self, target: &'a ProbeTarget) -> BoxFuture<'a, ProbeOutput> {
        Box::pin(Prober::probe(self, target))
    }
}

impl PolicySource for PolicyFetcher {
    fn assess<'a>(&'a self, input: &'a MtaStsInput) -> BoxFuture<'a, MtaStsAssessment> {
        Box::pin(mxray_mtasts::assess(input, self))
    }
}
