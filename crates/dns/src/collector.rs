//! The collector: lookups with CNAME chasing and DNSSEC status, MX/TXT per domain, and the
//! deduplicated per-host lookups (addresses + TLSA, RFC 7672 §2.2.2).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use hickory_net::{DnsError as HickoryDnsError, NetError};
use hickory_proto::op::{DnsRequestOptions, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use mxray_model::{DnsHostRecord, DnsOutcome, DnssecStatus, MxKind, TlsaRecord, UtcTime};
use serde::Serialize;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::transport::{DnsStats, Failure, Transport};
use crate::validate::{build_validator, decode_failure, validated_lookup, Validator};
use crate::wire::{
    ad_status, better_outcome, display_name, ede_of, follow, join_txt, outcome_of, parse_name,
    status_of_proof, tlsa_record, validated_status, weaker, QueryFlags, MAX_CNAME_HOPS,
};
use crate::{DnsConfig, DnsError, DnssecMode, TrustAnchorSet, MAX_MX_HOSTS};

/// One lookup of `name`/`qtype`, CNAMEs followed (across replies, bounded).
#[derive(Debug, Clone, Serialize)]
pub struct RrsetLookup {
    /// The name asked for, lower-case, no trailing dot.
    pub name: String,
    /// The record type asked for (`MX`, `A`, ...).
    pub qtype: String,
    /// Outcome: `noerror` (records found), `nodata`, `nxdomain`, or the failure class.
    pub outcome: DnsOutcome,
    /// Weakest DNSSEC status over the CNAMEs and the final RRset (or its denial).
    pub dnssec: DnssecStatus,
    /// Smallest TTL of the final RRset.
    pub ttl: Option<u32>,
    /// The records of `qtype` at the end of the chain.
    #[serde(skip)]
    pub records: Vec<RData>,
    /// CNAME targets followed, excluding `name`.
    pub cname_chain: Vec<String>,
    /// Extended DNS Errors seen (`code: text`).
    pub ede: Vec<String>,
    /// Failure detail (for outcomes other than noerror/nodata/nxdomain), or notes.
    pub detail: Option<String>,
    /// Queries sent at the top level (validator sub-queries not counted).
    pub attempts: u32,
}

impl RrsetLookup {
    fn new(name: &Name, qtype: RecordType) -> Self {
        RrsetLookup {
            name: display_name(name),
            qtype: qtype.to_string(),
            outcome: DnsOutcome::NotQueried,
            dnssec: DnssecStatus::Indeterminate,
            ttl: None,
            records: Vec::new(),
            cname_chain: Vec::new(),
            ede: Vec::new(),
            detail: None,
            attempts: 0,
        }
    }

    /// Whether the outcome is a failure (not an answer or a denial).
    pub fn failed(&self) -> bool {
        !matches!(
            self.outcome,
            DnsOutcome::NoError
                | DnsOutcome::NoData
                | DnsOutcome::NxDomain
                | DnsOutcome::NotQueried
        )
    }

    /// `QTYPE:class: name[ (detail)]` when the lookup failed.
    pub fn error(&self) -> Option<String> {
        if !self.failed() {
            return None;
        }
        Some(match &self.detail {
            Some(d) => format!("{}:{}: {} ({d})", self.qtype, self.outcome, self.name),
            None => format!("{}:{}: {}", self.qtype, self.outcome, self.name),
        })
    }

    /// `dns:class: QTYPE name[ (detail)]` (the `domain` record's convention) when it failed.
    pub fn domain_error(&self) -> Option<String> {
        if !self.failed() {
            return None;
        }
        Some(match &self.detail {
            Some(d) => format!("dns:{}: {} {} ({d})", self.outcome, self.qtype, self.name),
            None => format!("dns:{}: {} {}", self.outcome, self.qtype, self.name),
        })
    }
}

/// A TXT lookup (`_mta-sts.<domain>`, `_smtp._tls.<domain>`): each record's strings joined.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TxtLookup {
    /// Outcome of the lookup.
    pub outcome: DnsOutcome,
    /// DNSSEC status of the TXT RRset (or its denial).
    pub dnssec: DnssecStatus,
    /// One string per TXT record, its character-strings concatenated.
    pub records: Vec<String>,
}

/// Plain A/AAAA lookup of a name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddressLookup {
    /// The name, lower-case, no trailing dot.
    pub name: String,
    /// The better of the A and AAAA outcomes.
    pub outcome: DnsOutcome,
    /// The weaker of the A and AAAA statuses (and of their CNAMEs).
    pub dnssec: DnssecStatus,
    /// The A lookup's status alone (and its CNAMEs').
    pub a_dnssec: DnssecStatus,
    /// The AAAA lookup's status alone (and its CNAMEs').
    pub aaaa_dnssec: DnssecStatus,
    /// A addresses, then AAAA.
    pub addresses: Vec<IpAddr>,
    /// CNAME chain from the name (from the A lookup, or AAAA if A gave none).
    pub cname_chain: Vec<String>,
    /// Smallest TTL of the address RRsets.
    pub ttl: Option<u32>,
    /// Extended DNS Errors.
    pub ede: Vec<String>,
    /// Lookup errors, `QTYPE:class: name[ (detail)]`.
    pub errors: Vec<String>,
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MxEntry {
    /// Preference (lower first).
    pub preference: u16,
    /// Exchange, lower-case, no trailing dot (`.` for a null MX).
    pub exchange: String,
}

/// The DNS part of a domain's posture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainDns {
    /// The domain, lower-case, no trailing dot.
    pub domain: String,
    /// `mx`, `null_mx`, `implicit`, `none` or `error`.
    pub mx_kind: MxKind,
    /// Outcome of the MX lookup.
    pub mx_outcome: DnsOutcome,
    /// DNSSEC status of the MX RRset or its denial.
    pub mx_dnssec: DnssecStatus,
    /// TTL of the MX RRset.
    pub mx_ttl: Option<u32>,
    /// CNAME chain of the domain itself when its MX lookup went through CNAMEs.
    pub mx_cname_chain: Vec<String>,
    /// The MX records in preference order (ties in answer order).
    pub mx: Vec<MxEntry>,
    /// Mail hosts in preference order, deduplicated; `[domain]` for `implicit`.
    pub mx_hosts: Vec<String>,
    /// `_mta-sts.<domain>` TXT.
    pub mta_sts: TxtLookup,
    /// `_smtp._tls.<domain>` TXT.
    pub tls_rpt: TxtLookup,
    /// Extended DNS Errors seen on these lookups.
    pub ede: Vec<String>,
    /// Errors as `dns:class: QTYPE name[ (detail)]`.
    pub errors: Vec<String>,
}

impl DomainDns {
    /// The MX hosts to resolve and probe: the first [`MAX_MX_HOSTS`] of `mx_hosts` (in
    /// preference order) when the domain has MX or implicit MX, else none.
    pub fn hosts_to_follow(&self) -> &[String] {
        if matches!(self.mx_kind, MxKind::Mx | MxKind::Implicit) {
            self.mx_hosts.get(..MAX_MX_HOSTS).unwrap_or(&self.mx_hosts)
        } else {
            &[]
        }
    }
}

/// Everything about one MX host, resolved once per scan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostDns {
    /// When it was resolved.
    pub resolved_at: UtcTime,
    /// The host name, lower-case, no trailing dot.
    pub host: String,
    /// A addresses then AAAA.
    pub addresses: Vec<IpAddr>,
    /// CNAME chain from `host`, excluding it.
    pub cname_chain: Vec<String>,
    /// Better of the A and AAAA outcomes.
    pub address_outcome: DnsOutcome,
    /// Weaker of the A and AAAA statuses.
    pub address_dnssec: DnssecStatus,
    /// The A lookup's status alone (DANE over IPv4 rests on it).
    pub a_dnssec: DnssecStatus,
    /// The AAAA lookup's status alone (DANE over IPv6 rests on it).
    pub aaaa_dnssec: DnssecStatus,
    /// Smallest address TTL.
    pub address_ttl: Option<u32>,
    /// `_25._tcp.<name>` that gave the TLSA RRset.
    pub tlsa_owner: Option<String>,
    /// Outcome of the (last) TLSA lookup; `not_queried` without addresses.
    pub tlsa_outcome: DnsOutcome,
    /// DNSSEC status of the TLSA RRset or its denial.
    pub tlsa_dnssec: DnssecStatus,
    /// TTL of the TLSA RRset.
    pub tlsa_ttl: Option<u32>,
    /// The TLSA records.
    pub tlsa: Vec<TlsaRecord>,
    /// Extended DNS Errors.
    pub ede: Vec<String>,
    /// Errors as `QTYPE:class: name[ (detail)]`.
    pub errors: Vec<String>,
}

impl HostDns {
    /// The `dns_host` record.
    pub fn to_record(&self, scan_id: Uuid, vantage: &str) -> DnsHostRecord {
        DnsHostRecord {
            scan_id,
            vantage: vantage.to_owned(),
            resolved_at: self.resolved_at,
            host: self.host.clone(),
            addresses: self.addresses.iter().map(|a| a.to_string()).collect(),
            cname_chain: self.cname_chain.clone(),
            address_rcode: self.address_outcome,
            address_dnssec: self.address_dnssec,
            address_ttl: self.address_ttl,
            tlsa_owner: self.tlsa_owner.clone(),
            tlsa_rcode: self.tlsa_outcome,
            tlsa_dnssec: self.tlsa_dnssec,
            tlsa_ttl: self.tlsa_ttl,
            tlsa: self.tlsa.clone(),
            ede: self.ede.clone(),
            errors: self.errors.clone(),
            a_dnssec: self.a_dnssec,
            aaaa_dnssec: self.aaaa_dnssec,
            attempt: 1,
        }
    }
}

/// A bounded FIFO cache of host results with in-flight coalescing.
#[derive(Debug, Default)]
struct HostCache {
    map: HashMap<String, Arc<OnceCell<Arc<HostDns>>>>,
    order: VecDeque<String>,
}

struct Inner {
    cfg: DnsConfig,
    transport: Arc<Transport>,
    anchors: Option<TrustAnchorSet>,
    validator: OnceCell<(Validator, Vec<String>)>,
    hosts: Mutex<HostCache>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("cfg", &self.cfg)
            .field("transport", &self.transport)
            .field("validator_ready", &self.validator.initialized())
            .finish_non_exhaustive()
    }
}

/// The DNS/TLSA collector. Cheap to clone (an `Arc` inside); share one per scan so that MX
/// hosts are resolved once.
#[derive(Debug, Clone)]
pub struct DnsCollector {
    inner: Arc<Inner>,
}

/// One reply and what it says about DNSSEC.
struct Hop {
    msg: Message,
    /// Status decided before looking at records (`ad` mode, or a validator denial verdict).
    status: Option<DnssecStatus>,
    note: Option<String>,
}

impl DnsCollector {
    /// Checks the configuration and builds the collector (no I/O yet).
    pub fn new(cfg: DnsConfig) -> Result<DnsCollector, DnsError> {
        if cfg.resolvers.is_empty() {
            return Err(DnsError::Config("at least one resolver is required".into()));
        }
        if cfg.timeout.is_zero() {
            return Err(DnsError::Config("timeout must be positive".into()));
        }
        let transport = Arc::new(Transport::new(&cfg));
        let anchors = match &cfg.mode {
            DnssecMode::Ad => None,
            DnssecMode::Validate { trust_anchors } => Some(trust_anchors.clone()),
        };
        Ok(DnsCollector {
            inner: Arc::new(Inner {
                cfg,
                transport,
                anchors,
                validator: OnceCell::new(),
                hosts: Mutex::new(HostCache::default()),
            }),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &DnsConfig {
        &self.inner.cfg
    }

    /// The transport's counters so far: queries, stray datagrams ignored, attempt timeouts,
    /// TCP retries, overload back-offs and the current in-flight limit per resolver.
    pub fn stats(&self) -> DnsStats {
        self.inner.transport.stats()
    }

    /// Problems met while setting up trust anchors (`validate` mode; empty before first use).
    pub fn trust_anchor_problems(&self) -> Vec<String> {
        self.inner
            .validator
            .get()
            .map(|(_, p)| p.clone())
            .unwrap_or_default()
    }

    async fn validator(&self) -> Option<&Validator> {
        let set = self.inner.anchors.as_ref()?;
        let (v, _) = self
            .inner
            .validator
            .get_or_init(|| build_validator(Arc::clone(&self.inner.transport), set))
            .await;
        Some(v)
    }

    /// One query, mode-specific status. `Err` carries the failure and attempts.
    async fn query(&self, name: &Name, qtype: RecordType) -> (Result<Hop, Failure>, u32) {
        let cfg = &self.inner.cfg;
        if let Some(v) = self.validator().await {
            let mut opts = DnsRequestOptions::default();
            opts.use_edns = true;
            opts.edns_set_dnssec_ok = true;
            opts.recursion_desired = true;
            opts.edns_payload_len = cfg.edns_payload;
            // Bound the whole validation (the validator's sub-queries have their own timeouts).
            let budget = cfg.timeout * cfg.attempts.max(1) * 16;
            let res = tokio::time::timeout(
                budget,
                validated_lookup(v, Query::query(name.clone(), qtype), opts),
            )
            .await;
            return match res {
                Err(_) => (
                    Err(Failure {
                        class: DnsOutcome::Timeout,
                        detail: "validation did not finish in time".into(),
                    }),
                    1,
                ),
                Ok(Ok(resp)) => (
                    Ok(Hop {
                        msg: resp.into_message(),
                        status: None,
                        note: None,
                    }),
                    1,
                ),
                Ok(Err(NetError::Dns(HickoryDnsError::Nsec {
                    response, proof, ..
                }))) => {
                    let msg = response.into_message();
                    // hickory judges a denial against the query name; after a CNAME the denial
                    // is for the target. Keep the (validated) CNAMEs and let the chase ask for
                    // the target itself, where the denial is checked properly.
                    let via_cname = msg.answers.iter().any(|r| {
                        r.record_type() == RecordType::CNAME && r.name.eq_ignore_root(name)
                    });
                    let rcode = msg.metadata.response_code;
                    if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
                        // hickory asks a denial proof of any reply without answers, but a
                        // SERVFAIL (or REFUSED) to a CD query denies nothing: it is the
                        // resolver's failure to get an answer, not a validation verdict.
                        return (
                            Ok(Hop {
                                msg,
                                status: Some(DnssecStatus::Indeterminate),
                                note: Some(format!(
                                    "the resolver answered {rcode}: nothing to validate"
                                )),
                            }),
                            1,
                        );
                    }
                    let status = (!via_cname).then(|| status_of_proof(proof));
                    (
                        Ok(Hop {
                            msg,
                            status,
                            note: Some(format!("denial proof {proof}")),
                        }),
                        1,
                    )
                }
                Ok(Err(e)) => {
                    let (f, attempts) = decode_failure(&e);
                    (Err(f), attempts)
                }
            };
        }
        let flags = QueryFlags {
            dnssec_ok: true,
            checking_disabled: false,
            edns_payload: cfg.edns_payload,
        };
        let ex = self.inner.transport.exchange(name, qtype, flags).await;
        let mut attempts = ex.attempts;
        let msg = match ex.result {
            Ok(m) => m,
            Err(f) => return (Err(f), attempts),
        };
        let ede = ede_of(&msg);
        let mut status = ad_status(&msg, &ede);
        let mut note = None;
        if msg.metadata.response_code == ResponseCode::ServFail
            && status == DnssecStatus::Indeterminate
        {
            // A validating resolver that fails validation says SERVFAIL; if the same question
            // with CD gets an answer, validation (not the authority) failed: bogus.
            let cd = QueryFlags {
                checking_disabled: true,
                ..flags
            };
            let ex2 = self.inner.transport.exchange(name, qtype, cd).await;
            attempts += ex2.attempts;
            if let Ok(m2) = ex2.result {
                if matches!(
                    m2.metadata.response_code,
                    ResponseCode::NoError | ResponseCode::NXDomain
                ) {
                    status = DnssecStatus::Bogus;
                    note = Some("SERVFAIL, answered with CD: validation failed".into());
                }
            }
        }
        (
            Ok(Hop {
                msg,
                status: Some(status),
                note,
            }),
            attempts,
        )
    }

    /// Looks up `name`/`qtype`, following CNAMEs across replies.
    pub async fn lookup(&self, name: &Name, qtype: RecordType) -> RrsetLookup {
        let mut out = RrsetLookup::new(name, qtype);
        let mut cur = name.clone();
        let mut visited = vec![name.clone()];
        let mut status = DnssecStatus::Secure;
        for _ in 0..=MAX_CNAME_HOPS {
            let (res, attempts) = self.query(&cur, qtype).await;
            out.attempts += attempts;
            let hop = match res {
                Ok(h) => h,
                Err(f) => {
                    out.outcome = f.class;
                    out.dnssec = DnssecStatus::Indeterminate;
                    out.detail = Some(if out.cname_chain.is_empty() {
                        f.detail
                    } else {
                        format!("at {}: {}", display_name(&cur), f.detail)
                    });
                    return out;
                }
            };
            out.ede.extend(ede_of(&hop.msg).iter().map(|e| e.render()));
            let f = follow(&hop.msg, &cur, qtype);
            let hop_status = hop.status.unwrap_or_else(|| validated_status(&hop.msg, &f));
            status = weaker(status, hop_status);
            let mut looped = f.looped;
            for n in &f.chain {
                if visited.iter().any(|v| v.eq_ignore_root(n)) {
                    looped = true;
                    break;
                }
                visited.push(n.clone());
                out.cname_chain.push(display_name(n));
            }
            if looped {
                out.outcome = DnsOutcome::Malformed;
                out.dnssec = weaker(status, DnssecStatus::Indeterminate);
                out.detail = Some("CNAME loop".into());
                return out;
            }
            let rcode = hop.msg.metadata.response_code;
            if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
                // SERVFAIL, REFUSED, ...: no data. In `ad` mode the hop status may say bogus;
                // a validator has nothing to judge here.
                out.outcome = outcome_of(rcode, false);
                out.dnssec = match hop.status {
                    Some(DnssecStatus::Bogus) if self.inner.anchors.is_none() => {
                        DnssecStatus::Bogus
                    }
                    _ => DnssecStatus::Indeterminate,
                };
                out.detail = hop.note;
                return out;
            }
            if status == DnssecStatus::Bogus && self.inner.anchors.is_some() {
                // Local validation failed: treat it as a validating resolver would (SERVFAIL),
                // so that both modes agree and nothing downstream uses bogus data.
                out.outcome = DnsOutcome::ServFail;
                out.dnssec = DnssecStatus::Bogus;
                out.detail = Some("DNSSEC validation failed (bogus)".into());
                return out;
            }
            if !f.records.is_empty() {
                out.outcome = DnsOutcome::NoError;
                out.dnssec = status;
                out.ttl = f.records.iter().map(|r| r.ttl).min();
                out.records = f.records.into_iter().map(|r| r.data).collect();
                out.detail = hop.note;
                return out;
            }
            let validating = self.inner.anchors.is_some();
            if !f.chain.is_empty()
                && (rcode == ResponseCode::NoError
                    || (validating && rcode == ResponseCode::NXDomain))
            {
                // The chain left this reply without an answer: ask for its end.
                cur = f.last;
                continue;
            }
            // NODATA or NXDOMAIN: the status is that of the denial (and the CNAMEs before it).
            out.outcome = outcome_of(rcode, false);
            out.dnssec = status;
            out.detail = hop.note;
            return out;
        }
        out.outcome = DnsOutcome::Malformed;
        out.dnssec = DnssecStatus::Indeterminate;
        out.detail = Some(format!("CNAME chain longer than {MAX_CNAME_HOPS}"));
        out
    }

    /// Plain A and AAAA of any name (e.g. `mta-sts.<domain>`), CNAMEs followed.
    pub async fn addresses(&self, name: &str) -> AddressLookup {
        let parsed = match parse_name(name) {
            Ok(n) => n,
            Err(e) => {
                return AddressLookup {
                    name: name.trim().to_ascii_lowercase(),
                    outcome: DnsOutcome::Other,
                    dnssec: DnssecStatus::Indeterminate,
                    a_dnssec: DnssecStatus::Indeterminate,
                    aaaa_dnssec: DnssecStatus::Indeterminate,
                    addresses: Vec::new(),
                    cname_chain: Vec::new(),
                    ttl: None,
                    ede: Vec::new(),
                    errors: vec![format!("A:other: {e}")],
                }
            }
        };
        self.addresses_of(&parsed).await
    }

    async fn addresses_of(&self, name: &Name) -> AddressLookup {
        let (a, aaaa) = tokio::join!(
            self.lookup(name, RecordType::A),
            self.lookup(name, RecordType::AAAA)
        );
        let mut addresses: Vec<IpAddr> = Vec::new();
        for r in a.records.iter().chain(aaaa.records.iter()) {
            let ip = match r {
                RData::A(x) => IpAddr::V4(x.0),
                RData::AAAA(x) => IpAddr::V6(x.0),
                _ => continue,
            };
            if !addresses.contains(&ip) {
                addresses.push(ip);
            }
        }
        let cname_chain = if a.cname_chain.is_empty() {
            aaaa.cname_chain.clone()
        } else {
            a.cname_chain.clone()
        };
        let ttl = [a.ttl, aaaa.ttl].into_iter().flatten().min();
        let mut ede = a.ede.clone();
        ede.extend(aaaa.ede.iter().filter(|e| !a.ede.contains(e)).cloned());
        AddressLookup {
            name: display_name(name),
            outcome: better_outcome(a.outcome, aaaa.outcome),
            dnssec: weaker(a.dnssec, aaaa.dnssec),
            a_dnssec: a.dnssec,
            aaaa_dnssec: aaaa.dnssec,
            addresses,
            cname_chain,
            ttl,
            ede,
            errors: [a.error(), aaaa.error()].into_iter().flatten().collect(),
        }
    }

    /// TXT records of a name, each record's strings joined.
    async fn txt(&self, name: Result<Name, String>) -> (TxtLookup, RrsetLookup) {
        let name = match name {
            Ok(n) => n,
            Err(e) => {
                let mut l = RrsetLookup::new(&Name::root(), RecordType::TXT);
                l.outcome = DnsOutcome::Other;
                l.detail = Some(e);
                return (
                    TxtLookup {
                        outcome: DnsOutcome::Other,
                        dnssec: DnssecStatus::Indeterminate,
                        records: Vec::new(),
                    },
                    l,
                );
            }
        };
        let l = self.lookup(&name, RecordType::TXT).await;
        let records = l
            .records
            .iter()
            .filter_map(|r| match r {
                RData::TXT(t) => Some(join_txt(&t.txt_data)),
                _ => None,
            })
            .collect();
        (
            TxtLookup {
                outcome: l.outcome,
                dnssec: l.dnssec,
                records,
            },
            l,
        )
    }

    /// MX, `_mta-sts` TXT and `_smtp._tls` TXT of a domain (MX hosts not resolved: see
    /// [`DnsCollector::host`]).
    pub async fn domain(&self, domain: &str) -> DomainDns {
        let name = match parse_name(domain) {
            Ok(n) => n,
            Err(e) => {
                let failed = TxtLookup {
                    outcome: DnsOutcome::NotQueried,
                    dnssec: DnssecStatus::Indeterminate,
                    records: Vec::new(),
                };
                return DomainDns {
                    domain: domain.trim().trim_end_matches('.').to_ascii_lowercase(),
                    mx_kind: MxKind::Error,
                    mx_outcome: DnsOutcome::Other,
                    mx_dnssec: DnssecStatus::Indeterminate,
                    mx_ttl: None,
                    mx_cname_chain: Vec::new(),
                    mx: Vec::new(),
                    mx_hosts: Vec::new(),
                    mta_sts: failed.clone(),
                    tls_rpt: failed,
                    ede: Vec::new(),
                    errors: vec![format!("dns:other: {e}")],
                };
            }
        };
        let sts_name = name.prepend_label("_mta-sts").map_err(|e| e.to_string());
        let rpt_name = name
            .prepend_label("_tls")
            .and_then(|n| n.prepend_label("_smtp"))
            .map_err(|e| e.to_string());
        let (mx, (mta_sts, sts_l), (tls_rpt, rpt_l)) = tokio::join!(
            self.lookup(&name, RecordType::MX),
            self.txt(sts_name),
            self.txt(rpt_name)
        );
        let mut errors = Vec::new();
        let mut ede = Vec::new();
        for l in [&mx, &sts_l, &rpt_l] {
            if let Some(e) = l.domain_error() {
                errors.push(e);
            }
            for e in &l.ede {
                if !ede.contains(e) {
                    ede.push(e.clone());
                }
            }
        }
        let mut entries: Vec<MxEntry> = mx
            .records
            .iter()
            .filter_map(|r| match r {
                RData::MX(m) => Some(MxEntry {
                    preference: m.preference,
                    exchange: display_name(&m.exchange),
                }),
                _ => None,
            })
            .collect();
        entries.sort_by_key(|e| e.preference);
        let mut hosts: Vec<String> = Vec::new();
        for e in &entries {
            if e.exchange != "." && !hosts.contains(&e.exchange) {
                hosts.push(e.exchange.clone());
            }
        }
        let kind = match mx.outcome {
            DnsOutcome::NoError if hosts.is_empty() => MxKind::NullMx,
            DnsOutcome::NoError => MxKind::Mx,
            DnsOutcome::NxDomain => MxKind::None,
            DnsOutcome::NoData => {
                // RFC 5321 §5.1: no MX, the domain's own address records.
                let addrs = self.addresses_of(&name).await;
                errors.extend(addrs.errors.iter().map(|e| format!("dns:{e}")));
                for e in &addrs.ede {
                    if !ede.contains(e) {
                        ede.push(e.clone());
                    }
                }
                if addrs.addresses.is_empty() {
                    if matches!(addrs.outcome, DnsOutcome::NoData | DnsOutcome::NxDomain) {
                        MxKind::None
                    } else {
                        // The address lookups failed: whether mail is accepted is unknown.
                        MxKind::Error
                    }
                } else {
                    hosts.push(display_name(&name));
                    MxKind::Implicit
                }
            }
            _ => MxKind::Error,
        };
        DomainDns {
            domain: display_name(&name),
            mx_kind: kind,
            mx_outcome: mx.outcome,
            mx_dnssec: mx.dnssec,
            mx_ttl: mx.ttl,
            mx_cname_chain: mx.cname_chain,
            mx: entries,
            mx_hosts: hosts,
            mta_sts,
            tls_rpt,
            ede,
            errors,
        }
    }

    /// Addresses, CNAME chain and TLSA of one MX host, resolved once per collector (bounded
    /// FIFO cache; concurrent callers for the same host share one lookup).
    pub async fn host(&self, host: &str) -> Arc<HostDns> {
        let key = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let cell = {
            let mut cache = match self.inner.hosts.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            match cache.map.get(&key) {
                Some(c) => Arc::clone(c),
                None => {
                    let c = Arc::new(OnceCell::new());
                    let cap = self.inner.cfg.host_cache_capacity;
                    if cap > 0 {
                        cache.map.insert(key.clone(), Arc::clone(&c));
                        cache.order.push_back(key.clone());
                        while cache.map.len() > cap {
                            match cache.order.pop_front() {
                                Some(old) => {
                                    cache.map.remove(&old);
                                }
                                None => break,
                            }
                        }
                    }
                    c
                }
            }
        };
        Arc::clone(cell.get_or_init(|| self.resolve_host(&key)).await)
    }

    /// Resolves `host` again, bypassing and then replacing its cached result (the scan's
    /// second attempt at a host whose first resolution failed with a transient outcome).
    pub async fn host_again(&self, host: &str) -> Arc<HostDns> {
        let key = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let fresh = self.resolve_host(&key).await;
        let cell = Arc::new(OnceCell::new_with(Some(Arc::clone(&fresh))));
        if let Ok(mut cache) = self.inner.hosts.lock() {
            if let Some(slot) = cache.map.get_mut(&key) {
                *slot = cell;
            }
        }
        fresh
    }

    async fn resolve_host(&self, host: &str) -> Arc<HostDns> {
        let resolved_at = UtcTime::now();
        let name = match parse_name(host) {
            Ok(n) => n,
            Err(e) => {
                return Arc::new(HostDns {
                    resolved_at,
                    host: host.to_owned(),
                    addresses: Vec::new(),
                    cname_chain: Vec::new(),
                    address_outcome: DnsOutcome::Other,
                    address_dnssec: DnssecStatus::Indeterminate,
                    a_dnssec: DnssecStatus::Indeterminate,
                    aaaa_dnssec: DnssecStatus::Indeterminate,
                    address_ttl: None,
                    tlsa_owner: None,
                    tlsa_outcome: DnsOutcome::NotQueried,
                    tlsa_dnssec: DnssecStatus::Indeterminate,
                    tlsa_ttl: None,
                    tlsa: Vec::new(),
                    ede: Vec::new(),
                    errors: vec![format!("A:other: {e}")],
                })
            }
        };
        let addrs = self.addresses_of(&name).await;
        let mut errors = addrs.errors.clone();
        let mut ede = addrs.ede.clone();
        let mut tlsa_owner = None;
        let mut tlsa_outcome = DnsOutcome::NotQueried;
        let mut tlsa_dnssec = DnssecStatus::Indeterminate;
        let mut tlsa_ttl = None;
        let mut tlsa = Vec::new();
        if !addrs.addresses.is_empty() {
            // RFC 7672 §2.2.2: a secure CNAME expansion: TLSA of the expanded name first, then
            // the original name; otherwise the original name only. One secure address lookup
            // proves the expansion (a failed AAAA lookup does not make the A chain insecure).
            let mut bases = Vec::new();
            if addrs.a_dnssec == DnssecStatus::Secure || addrs.aaaa_dnssec == DnssecStatus::Secure {
                if let Some(last) = addrs.cname_chain.last() {
                    if let Ok(n) = parse_name(last) {
                        bases.push(n);
                    }
                }
            }
            bases.push(name.clone());
            for base in bases {
                let owner = match base
                    .prepend_label("_tcp")
                    .and_then(|n| n.prepend_label("_25"))
                {
                    Ok(o) => o,
                    Err(e) => {
                        errors.push(format!("TLSA:other: {base} ({e})"));
                        continue;
                    }
                };
                let l = self.lookup(&owner, RecordType::TLSA).await;
                for e in &l.ede {
                    if !ede.contains(e) {
                        ede.push(e.clone());
                    }
                }
                if let Some(e) = l.error() {
                    errors.push(e);
                }
                tlsa_outcome = l.outcome;
                tlsa_dnssec = l.dnssec;
                tlsa_ttl = l.ttl;
                if l.outcome == DnsOutcome::NoError {
                    tlsa = l.records.iter().filter_map(tlsa_record).collect();
                    tlsa_owner = Some(display_name(&owner));
                    break;
                }
                if !matches!(l.outcome, DnsOutcome::NoData | DnsOutcome::NxDomain) {
                    // A failed TLSA lookup makes the host's DANE state unknown: stop here.
                    break;
                }
            }
        }
        Arc::new(HostDns {
            resolved_at,
            host: display_name(&name),
            addresses: addrs.addresses,
            cname_chain: addrs.cname_chain,
            address_outcome: addrs.outcome,
            address_dnssec: addrs.dnssec,
            a_dnssec: addrs.a_dnssec,
            aaaa_dnssec: addrs.aaaa_dnssec,
            address_ttl: addrs.ttl,
            tlsa_owner,
            tlsa_outcome,
            tlsa_dnssec,
            tlsa_ttl,
            tlsa,
            ede,
            errors,
        })
    }
}
