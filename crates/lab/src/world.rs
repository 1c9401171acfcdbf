//! The running world: the registry the lab's servers are started from and consult while they
//! run. Which SMTP host listens on which address ([`World::smtp_hosts`]), which middleboxes sit
//! in front of which server ([`World::middleboxes`]), which addresses serve MTA-STS
//! ([`World::https_ips`]), and, as a [`PolicyLookup`], the policy answer for a host name (case
//! policies, then the synthetic population). Built by the catalogue; no server holds it except
//! through that lookup.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::spec::{HostSpec, PolicyLookup, PolicySpec, HTTPS_IP};
use crate::synth::Synthetic;

/// A stripping middlebox: a proxy listening on `listen` in front of the SMTP server on
/// `backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Middlebox {
    /// The address the MX host name resolves to.
    pub(crate) listen: Ipv4Addr,
    /// The real server behind it.
    pub(crate) backend: Ipv4Addr,
    /// Masks STARTTLS for every client, not only the isp range (the `--lab-epoch` regression).
    pub(crate) everyone: bool,
}

/// Everything the servers need to know, shared read-only.
#[derive(Debug)]
pub(crate) struct World {
    hosts: HashMap<Ipv4Addr, HostSpec>,
    middleboxes: Vec<Middlebox>,
    policies: HashMap<String, PolicySpec>,
    synthetic: Arc<Synthetic>,
}

impl World {
    /// The world of the case hosts, middleboxes and policies, plus the synthetic population.
    pub(crate) fn new(
        hosts: HashMap<Ipv4Addr, HostSpec>,
        middleboxes: Vec<Middlebox>,
        policies: HashMap<String, PolicySpec>,
        synthetic: Arc<Synthetic>,
    ) -> Self {
        World {
            hosts,
            middleboxes,
            policies,
            synthetic,
        }
    }

    /// Every SMTP listener address with its host behaviour (case, shared and pool hosts).
    pub(crate) fn smtp_hosts(&self) -> Vec<(Ipv4Addr, HostSpec)> {
        let mut v: Vec<(Ipv4Addr, HostSpec)> =
            self.hosts.iter().map(|(ip, h)| (*ip, h.clone())).collect();
        v.extend(self.synthetic.pool_hosts());
        v.sort_by_key(|(ip, _)| *ip);
        v
    }

    /// The stripping middleboxes.
    pub(crate) fn middleboxes(&self) -> &[Middlebox] {
        &self.middleboxes
    }

    /// The MTA-STS HTTPS addresses: [`HTTPS_IP`] for the cases, then the synthetic ones.
    pub(crate) fn https_ips(&self) -> Vec<Ipv4Addr> {
        let mut v = vec![HTTPS_IP];
        v.extend(self.synthetic.https_ips());
        v
    }
}

impl PolicyLookup for World {
    /// The MTA-STS answer for an HTTPS host name.
    fn policy(&self, host: &str) -> Option<PolicySpec> {
        self.policies
            .get(host)
            .cloned()
            .or_else(|| self.synthetic.policy(host))
    }
}
