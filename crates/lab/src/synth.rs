//! Synthetic domains (`--lab-domains N`): a deterministic, seed-driven mix of postures served
//! from computed zones, so 100,000+ domains cost no start-up time and no per-domain memory in
//! the DNS server.
//!
//! Domain `i` is `s<i>.syn.lab.test` (unsigned delegated zone: most of the real world) or, for
//! the DANE profile, `s<i>.ssyn.lab.test` (a signed child, signed online). The mix per 1,000:
//! 10 null MX, 20 DANE (signed, DANE-EE on a distinct host), 30 MTA-STS enforce + TLS-RPT,
//! 10 MTA-STS testing, 490 on one of four shared MX hosts (the big providers), 440 on a distinct
//! MX host name. Distinct host names map onto a pool of at most [`MAX_POOL`] loopback addresses
//! spread over 250 /24s of 127.1.0.0/16, each with its own behaviour (75 % good, 12 % no STARTTLS, 6 % self-signed,
//! 3 % expired, 2 % wrong name, 2 % STARTTLS answered 454). Pool servers pick the certificate
//! name from the client's SNI. The `mta-sts.` hosts of synthetic domains point to at most
//! [`MAX_HTTPS_POOL`] addresses, one per /24 of 127.2.0.0/16.

use std::net::Ipv4Addr;
use std::sync::Arc;

use hickory_proto::rr::rdata::tlsa::{CertUsage, Matching, Selector};
use hickory_proto::rr::rdata::{A, MX, TLSA, TXT};
use hickory_proto::rr::{Name, RData, Record};
use mxray_model::{
    DaneVerdict, DnssecStatus, DomainVerdict, MtaStsStatus, MxKind, PkixVerdict, StarttlsVerdict,
    StrippingSignal,
};

use crate::dns::{DynamicZone, TTL};
use crate::oracle::{ExpectedPosture, PostureExt as _};
use crate::spec::{CertKind, HostSpec, PolicySpec, SmtpBehaviour};

/// Number of shared MX hosts (`mx1.shared.lab.test` ... in 127.0.20.0/24).
pub(crate) const SHARED_HOSTS: u8 = 4;
/// Largest number of distinct loopback addresses for synthetic MX hosts.
pub const MAX_POOL: usize = 1000;
/// Largest number of MTA-STS HTTPS addresses for synthetic domains.
pub const MAX_HTTPS_POOL: usize = 250;
/// The unsigned synthetic zone.
pub const SYN_ZONE: &str = "syn.lab.test";
/// The signed synthetic zone.
pub const SSYN_ZONE: &str = "ssyn.lab.test";

pub(crate) fn shared_host_name(k: u8) -> String {
    format!("mx{k}.shared.lab.test")
}

pub(crate) fn shared_host_ip(k: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 20, k)
}

/// splitmix64 of `seed` and `x`: the only source of "randomness".
fn mix(seed: u64, x: u64) -> u64 {
    let mut z = seed ^ x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Posture family of a synthetic domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    NullMx,
    Dane,
    StsEnforce,
    StsTesting,
    Shared,
    Distinct,
}

/// Behaviour of a pool address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolProfile {
    Good,
    NoStarttls,
    SelfSigned,
    Expired,
    WrongName,
    Reject454,
}

/// The synthetic population.
#[derive(Debug)]
pub(crate) struct Synthetic {
    seed: u64,
    n: usize,
    pool: usize,
    tlsa: Vec<u8>,
}

impl Synthetic {
    /// `n` domains from `seed`; `tlsa` is the DANE-EE 3 1 1 data matching the lab leaf key.
    pub(crate) fn new(seed: u64, n: usize, tlsa: Vec<u8>) -> Self {
        Synthetic {
            seed,
            n,
            pool: n.min(MAX_POOL),
            tlsa,
        }
    }

    pub(crate) fn profile(&self, i: usize) -> Profile {
        match mix(self.seed, i as u64) % 1000 {
            0..10 => Profile::NullMx,
            10..30 => Profile::Dane,
            30..60 => Profile::StsEnforce,
            60..70 => Profile::StsTesting,
            70..560 => Profile::Shared,
            _ => Profile::Distinct,
        }
    }

    fn zone_of(&self, i: usize) -> &'static str {
        if self.profile(i) == Profile::Dane {
            SSYN_ZONE
        } else {
            SYN_ZONE
        }
    }

    /// The name of synthetic domain `i`.
    pub(crate) fn domain(&self, i: usize) -> String {
        format!("s{i}.{}", self.zone_of(i))
    }

    fn shared(&self, i: usize) -> u8 {
        (mix(self.seed ^ 0x5151, i as u64) % u64::from(SHARED_HOSTS)) as u8 + 1
    }

    pub(crate) fn pool_profile(&self, j: usize) -> PoolProfile {
        if j == 0 {
            return PoolProfile::Good;
        }
        match mix(self.seed ^ 0xB00B, j as u64) % 100 {
            0..75 => PoolProfile::Good,
            75..87 => PoolProfile::NoStarttls,
            87..93 => PoolProfile::SelfSigned,
            93..96 => PoolProfile::Expired,
            96..98 => PoolProfile::WrongName,
            _ => PoolProfile::Reject454,
        }
    }

    /// Pool address `j`: spread over 250 /24s (127.1.0.0/16), as distinct MX hosts are on the
    /// Internet, so per-prefix rate limits see what they would see there.
    pub(crate) fn pool_ip(j: usize) -> Ipv4Addr {
        Ipv4Addr::new(127, 1, (j % 250) as u8, (j / 250) as u8 + 1)
    }

    fn https_pool(&self) -> usize {
        self.n.min(MAX_HTTPS_POOL)
    }

    /// The MTA-STS HTTPS addresses of the synthetic domains (one per /24 in 127.2.0.0/16).
    pub(crate) fn https_ips(&self) -> Vec<Ipv4Addr> {
        (0..self.https_pool())
            .map(|k| Ipv4Addr::new(127, 2, k as u8, 1))
            .collect()
    }

    fn https_ip(&self, i: usize) -> Ipv4Addr {
        let k = (mix(self.seed ^ 0x4433, i as u64) % self.https_pool().max(1) as u64) as u8;
        Ipv4Addr::new(127, 2, k, 1)
    }

    fn pool_index(&self, i: usize) -> usize {
        if self.pool == 0 {
            return 0;
        }
        let start = (mix(self.seed ^ 0x7007, i as u64) % self.pool as u64) as usize;
        if self.profile(i) != Profile::Dane {
            return start;
        }
        (0..self.pool)
            .map(|k| (start + k) % self.pool)
            .find(|&j| self.pool_profile(j) == PoolProfile::Good)
            .unwrap_or(0)
    }

    fn mx_host(&self, i: usize) -> Option<String> {
        match self.profile(i) {
            Profile::NullMx => None,
            Profile::Dane | Profile::Distinct => Some(format!("mx.{}", self.domain(i))),
            _ => Some(shared_host_name(self.shared(i))),
        }
    }

    /// Pool listeners: (address, behaviour).
    pub(crate) fn pool_hosts(&self) -> Vec<(Ipv4Addr, HostSpec)> {
        (0..self.pool)
            .map(|j| {
                let (behaviour, cert) = match self.pool_profile(j) {
                    PoolProfile::Good => (SmtpBehaviour::Starttls, CertKind::Valid),
                    PoolProfile::NoStarttls => (SmtpBehaviour::NoStarttls, CertKind::Valid),
                    PoolProfile::SelfSigned => (SmtpBehaviour::Starttls, CertKind::SelfSigned),
                    PoolProfile::Expired => (SmtpBehaviour::Starttls, CertKind::Expired),
                    PoolProfile::WrongName => (SmtpBehaviour::Starttls, CertKind::WrongName),
                    PoolProfile::Reject454 => (SmtpBehaviour::Reject454, CertKind::Valid),
                };
                let spec = HostSpec {
                    name: format!("pool{j}.lab.test"),
                    behaviour,
                    cert,
                    cert_names: None,
                };
                (Self::pool_ip(j), spec)
            })
            .collect()
    }

    /// Expected posture of domain `i`.
    pub(crate) fn expected(&self, i: usize) -> ExpectedPosture {
        let domain = self.domain(i);
        let dnssec = if self.zone_of(i) == SSYN_ZONE {
            DnssecStatus::Secure
        } else {
            DnssecStatus::Insecure
        };
        let host = self.mx_host(i);
        let hosts: Vec<&str> = host.iter().map(|s| s.as_str()).collect();
        let good = DomainVerdict::plain_good(&hosts, dnssec);
        let (case, p) = match self.profile(i) {
            Profile::NullMx => (
                "synthetic:null-mx",
                DomainVerdict::no_hosts(MxKind::NullMx, dnssec),
            ),
            Profile::Shared => ("synthetic:shared-mx", good),
            Profile::Dane => (
                "synthetic:dane",
                DomainVerdict {
                    dane: DaneVerdict::Valid,
                    ..good
                },
            ),
            Profile::StsEnforce => (
                "synthetic:mta-sts-enforce",
                DomainVerdict {
                    mta_sts: MtaStsStatus::Enforce,
                    mta_sts_compliant: Some(true),
                    tls_rpt: true,
                    ..good
                },
            ),
            Profile::StsTesting => (
                "synthetic:mta-sts-testing",
                DomainVerdict {
                    mta_sts: MtaStsStatus::Testing,
                    mta_sts_compliant: Some(true),
                    ..good
                },
            ),
            Profile::Distinct => match self.pool_profile(self.pool_index(i)) {
                PoolProfile::Good => ("synthetic:distinct-good", good),
                PoolProfile::NoStarttls => (
                    "synthetic:distinct-no-starttls",
                    DomainVerdict {
                        starttls: StarttlsVerdict::None,
                        pkix: PkixVerdict::NotApplicable,
                        ..good
                    },
                ),
                PoolProfile::SelfSigned => (
                    "synthetic:distinct-self-signed",
                    DomainVerdict {
                        pkix: PkixVerdict::None,
                        ..good
                    },
                ),
                PoolProfile::Expired => (
                    "synthetic:distinct-expired",
                    DomainVerdict {
                        pkix: PkixVerdict::None,
                        ..good
                    },
                ),
                PoolProfile::WrongName => (
                    "synthetic:distinct-wrong-name",
                    DomainVerdict {
                        pkix: PkixVerdict::None,
                        ..good
                    },
                ),
                PoolProfile::Reject454 => (
                    "synthetic:distinct-starttls-454",
                    // A 454 to STARTTLS is a weak signal (DESIGN.md): recorded, and not
                    // `stripping_suspected`, as in the `starttls-454` case.
                    DomainVerdict {
                        starttls: StarttlsVerdict::None,
                        pkix: PkixVerdict::NotApplicable,
                        ..good
                    }
                    .signal(StrippingSignal::StarttlsRejected),
                ),
            },
        };
        ExpectedPosture {
            domain,
            case: case.to_owned(),
            about: "synthetic".into(),
            clean: p.clone(),
            isp: p,
        }
    }

    pub(crate) fn expected_all(&self) -> Vec<ExpectedPosture> {
        (0..self.n).map(|i| self.expected(i)).collect()
    }

    /// Parses `s<i>.<zone>` (lower case, no trailing dot) into `i` when it is a synthetic domain.
    fn index_of(&self, label: &str, zone: &str) -> Option<usize> {
        let i: usize = label.strip_prefix('s')?.parse().ok()?;
        let canonical = format!("s{i}");
        (canonical == label && i < self.n && self.zone_of(i) == zone).then_some(i)
    }

    /// The MTA-STS policy for `mta-sts.s<i>.syn.lab.test`.
    pub(crate) fn policy(&self, host: &str) -> Option<PolicySpec> {
        let rest = host.strip_prefix("mta-sts.")?;
        let (label, zone) = rest.split_once('.')?;
        let i = self.index_of(label, zone)?;
        let mx = self.mx_host(i)?;
        match self.profile(i) {
            Profile::StsEnforce => Some(PolicySpec::policy("enforce", &[&mx])),
            Profile::StsTesting => Some(PolicySpec::policy("testing", &[&mx])),
            _ => None,
        }
    }

    /// Records at `labels` (relative to `zone`, most specific first; last is `s<i>`).
    fn records(&self, zone: &str, rel: &[String], owner: &Name) -> Option<Vec<Record>> {
        let (last, prefix) = rel.split_last()?;
        let i = self.index_of(last, zone)?;
        let profile = self.profile(i);
        let rec = |d: RData| Record::from_rdata(owner.clone(), TTL, d);
        let p: Vec<&str> = prefix.iter().map(|s| s.as_str()).collect();
        let sts = matches!(profile, Profile::StsEnforce | Profile::StsTesting);
        let own_mx = matches!(profile, Profile::Dane | Profile::Distinct);
        match (p.as_slice(), profile) {
            ([], Profile::NullMx) => Some(vec![rec(RData::MX(MX::new(0, Name::root())))]),
            ([], _) => {
                let host = self.mx_host(i)?;
                let n = Name::from_ascii(format!("{host}.")).ok()?;
                Some(vec![rec(RData::MX(MX::new(10, n)))])
            }
            (["mx"], _) if own_mx => {
                Some(vec![rec(RData::A(A(Self::pool_ip(self.pool_index(i)))))])
            }
            (["_tcp", "mx"], Profile::Dane) => Some(vec![]),
            (["_25", "_tcp", "mx"], Profile::Dane) => Some(vec![rec(RData::TLSA(TLSA::new(
                CertUsage::DaneEe,
                Selector::Spki,
                Matching::Sha256,
                self.tlsa.clone(),
            )))]),
            (["_mta-sts"], _) if sts => Some(vec![rec(RData::TXT(TXT::new(vec![
                "v=STSv1; id=20261129T000000;".into(),
            ])))]),
            (["mta-sts"], _) if sts => Some(vec![rec(RData::A(A(self.https_ip(i))))]),
            (["_tls"], Profile::StsEnforce) => Some(vec![]),
            (["_smtp", "_tls"], Profile::StsEnforce) => Some(vec![rec(RData::TXT(TXT::new(
                vec![format!("v=TLSRPTv1; rua=mailto:tlsrpt@{}", self.domain(i))],
            )))]),
            _ => None,
        }
    }
}

/// One of the two synthetic zones, computed from [`Synthetic`].
#[derive(Debug)]
pub(crate) struct SynthZone {
    pub(crate) synth: Arc<Synthetic>,
    pub(crate) zone: &'static str,
}

impl DynamicZone for SynthZone {
    fn records_at(&self, name: &Name) -> Option<Vec<Record>> {
        let ascii = name.to_lowercase().to_ascii();
        let ascii = ascii.trim_end_matches('.');
        let rel = ascii.strip_suffix(self.zone)?.strip_suffix('.')?;
        let labels: Vec<String> = rel.split('.').map(str::to_owned).collect();
        self.synth.records(self.zone, &labels, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = Synthetic::new(7, 1000, vec![0; 32]);
        let b = Synthetic::new(7, 1000, vec![0; 32]);
        let c = Synthetic::new(8, 1000, vec![0; 32]);
        let da: Vec<String> = (0..1000).map(|i| a.domain(i)).collect();
        let db: Vec<String> = (0..1000).map(|i| b.domain(i)).collect();
        assert_eq!(da, db);
        assert_eq!(a.expected_all(), b.expected_all());
        assert_ne!(a.expected_all(), c.expected_all());
    }

    #[test]
    fn realistic_mix() {
        let s = Synthetic::new(1, 100_000, vec![0; 32]);
        let e = s.expected_all();
        let count = |f: &dyn Fn(&ExpectedPosture) -> bool| e.iter().filter(|x| f(x)).count();
        let starttls = count(&|x| x.clean.starttls == StarttlsVerdict::All);
        let dane = count(&|x| x.clean.dane == DaneVerdict::Valid);
        let sts = count(&|x| x.clean.mta_sts != MtaStsStatus::None);
        assert!(
            starttls > 80_000 && starttls < 95_000,
            "starttls {starttls}"
        );
        assert!(dane > 1_000 && dane < 3_500, "dane {dane}");
        assert!(sts > 2_500 && sts < 6_000, "sts {sts}");
    }

    #[test]
    fn zone_records_follow_profiles() {
        let s = Arc::new(Synthetic::new(3, 5000, vec![1; 32]));
        let dane = (0..5000)
            .find(|&i| s.profile(i) == Profile::Dane)
            .expect("a dane domain");
        let z = SynthZone {
            synth: s.clone(),
            zone: SSYN_ZONE,
        };
        let tlsa = Name::from_ascii(format!("_25._tcp.mx.s{dane}.ssyn.lab.test.")).expect("name");
        let r = z.records_at(&tlsa).expect("tlsa exists");
        assert!(matches!(r[0].data, RData::TLSA(_)));
        // The same index in the other zone does not exist.
        let other = SynthZone {
            synth: s.clone(),
            zone: SYN_ZONE,
        };
        let n = Name::from_ascii(format!("s{dane}.syn.lab.test.")).expect("name");
        assert!(other.records_at(&n).is_none());
        let beyond = Name::from_ascii("s5000.syn.lab.test.").expect("name");
        assert!(other.records_at(&beyond).is_none());
        let padded = Name::from_ascii("s01.syn.lab.test.").expect("name");
        assert!(other.records_at(&padded).is_none());
    }
}
