//! `--dnssec validate`: hickory's DNSSEC validator (`DnssecDnsHandle`) on top of our
//! transport, so that retries, rate limits, the in-flight bound and TCP fallback apply to the
//! validator's own DNSKEY/DS/NS queries as well.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, BoxStream, StreamExt};
use hickory_net::dnssec::DnssecDnsHandle;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::FirstAnswer;
use hickory_net::{DnsHandle, NetError};
use hickory_proto::dnssec::rdata::{DNSSECRData, DNSKEY};
use hickory_proto::dnssec::{PublicKey, TrustAnchors, Verifier};
use hickory_proto::op::{DnsRequest, DnsResponse, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mxray_model::DnsOutcome;

use crate::transport::{Failure, Transport};
use crate::wire::QueryFlags;
use crate::TrustAnchorSet;

/// Prefix of the `NetError::Msg` that carries our transport failure through the validator.
const TAG: &str = "mxray-transport";

/// The validator's view of our transport.
#[derive(Clone, Debug)]
pub(crate) struct InnerHandle {
    pub(crate) transport: Arc<Transport>,
    keys: Arc<KeyCache>,
}

/// The validator's chain queries (DNSKEY, DS and NS, answers and denials), shared by every
/// validation in the scan. hickory's validator asks, for every answer it checks, for the NS and
/// DS RRsets of each name on the way up to find zone cuts and prove them signed or unsigned, and
/// for the DNSKEY RRsets of the zones; one domain's MX, TXT, address and TLSA lookups repeat
/// most of them. A validating resolver keeps them for their TTL (negative answers: the SOA's),
/// and so do we, at most [`KEY_CACHE_TTL`] and [`KEY_CACHE_CAPACITY`] entries. Failures
/// (timeouts, SERVFAIL) are never kept. Measured on a lab scan: the NS and DS queries were 70 %
/// of all queries.
#[derive(Debug, Default)]
struct KeyCache {
    map: std::sync::Mutex<HashMap<(Name, RecordType), (Instant, DnsResponse)>>,
}

/// Longest a DNSKEY/DS answer is reused (shorter when its TTL is).
const KEY_CACHE_TTL: Duration = Duration::from_secs(300);
/// Most DNSKEY/DS RRsets kept; when full, expired entries go, then everything.
const KEY_CACHE_CAPACITY: usize = 8192;

/// Entries of hickory's cache of validated RRsets (query, RRset and RRSIGs -> proof). hickory's
/// default is 1,048,576, a few hundred bytes each: a scan validates about six new RRsets per
/// domain, so the cache filled after ~170,000 domains and then held several hundred MB for
/// the rest of the scan. Re-validation pays off only for RRsets asked again within their TTL
/// (the shared MX hosts of providers), which a small cache of the recent ones covers.
const VALIDATION_CACHE_CAPACITY: usize = 16_384;

impl KeyCache {
    fn get(&self, key: &(Name, RecordType)) -> Option<DnsResponse> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, r)| r.clone())
    }

    fn put(&self, key: (Name, RecordType), response: &DnsResponse) {
        if !matches!(
            response.response_code,
            ResponseCode::NoError | ResponseCode::NXDomain
        ) {
            return;
        }
        // Positive: the smallest answer TTL; negative (NODATA, NXDOMAIN): the SOA's TTL.
        let ttl = if response.answers.is_empty() {
            response
                .authorities
                .iter()
                .filter(|r| r.record_type() == RecordType::SOA)
                .map(|r| r.ttl)
                .min()
        } else {
            response.answers.iter().map(|r| r.ttl).min()
        };
        let ttl = ttl
            .map(|t| Duration::from_secs(u64::from(t)).min(KEY_CACHE_TTL))
            .unwrap_or(Duration::ZERO);
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= KEY_CACHE_CAPACITY {
            map.retain(|_, (until, _)| *until > now);
            if map.len() >= KEY_CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (now + ttl, response.clone()));
    }
}

impl DnsHandle for InnerHandle {
    type Response = BoxStream<'static, Result<DnsResponse, NetError>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Self::Response {
        let transport = Arc::clone(&self.transport);
        let keys = Arc::clone(&self.keys);
        stream::once(async move {
            let Some(query) = request.queries.first().cloned() else {
                return Err(NetError::from("no query in request"));
            };
            let cacheable = matches!(
                query.query_type,
                RecordType::DNSKEY | RecordType::DS | RecordType::NS
            );
            let key = (query.name.to_lowercase(), query.query_type);
            if cacheable {
                if let Some(hit) = keys.get(&key) {
                    return Ok(hit);
                }
            }
            let flags = QueryFlags {
                dnssec_ok: true,
                // Against a validating resolver: hand us the data, we validate it ourselves.
                checking_disabled: true,
                edns_payload: 0,
            };
            let ex = transport
                .exchange(&query.name, query.query_type, flags)
                .await;
            match ex.result {
                Ok(msg) => {
                    let response = DnsResponse::from_message(msg).map_err(NetError::from)?;
                    if cacheable {
                        keys.put(key, &response);
                    }
                    Ok(response)
                }
                Err(f) => Err(NetError::Msg(encode_failure(&f, ex.attempts))),
            }
        })
        .boxed()
    }
}

fn encode_failure(f: &Failure, attempts: u32) -> String {
    format!("{TAG}|{}|{attempts}|{}", f.class.as_str(), f.detail)
}

/// Recovers a transport failure from a validator error; other errors become `other`.
pub(crate) fn decode_failure(err: &NetError) -> (Failure, u32) {
    if let NetError::Msg(s) = err {
        let mut parts = s.splitn(4, '|');
        if parts.next() == Some(TAG) {
            let class = parts
                .next()
                .and_then(|c| c.parse::<DnsOutcome>().ok())
                .unwrap_or(DnsOutcome::Other);
            let attempts = parts.next().and_then(|a| a.parse().ok()).unwrap_or(1);
            let detail = parts.next().unwrap_or("").to_owned();
            return (Failure { class, detail }, attempts);
        }
    }
    let class = match err {
        NetError::Timeout => DnsOutcome::Timeout,
        NetError::ForeignClassRecord { .. } | NetError::Proto(_) => DnsOutcome::Malformed,
        _ => DnsOutcome::Other,
    };
    (
        Failure {
            class,
            detail: err.to_string(),
        },
        1,
    )
}

/// The validating handle used by the collector.
pub(crate) type Validator = DnssecDnsHandle<InnerHandle>;

/// Builds the validator from the built-in root anchors and `set`.
///
/// hickory trusts a non-root zone only when every key of its DNSKEY RRset is an anchor (it
/// otherwise asks the parent for DS, which a test or lab zone has none of). So, as a
/// validating resolver does with a trust anchor (RFC 4035 §5), each anchored zone's DNSKEY
/// RRset is fetched once, must carry a currently valid RRSIG made by an anchor key (a DNSKEY
/// anchor, or a key matching a DS anchor), and then all its zone keys become anchors. Problems
/// are returned as strings; a zone whose DNSKEY RRset cannot be authenticated keeps only its
/// DNSKEY anchors (if any), so its answers are never wrongly `secure`.
pub(crate) async fn build_validator(
    transport: Arc<Transport>,
    set: &TrustAnchorSet,
) -> (Validator, Vec<String>) {
    let mut anchors = TrustAnchors::default();
    let mut problems = Vec::new();
    let mut zones: Vec<Name> = Vec::new();
    for name in set
        .dnskeys
        .iter()
        .map(|(n, _)| n)
        .chain(set.ds.iter().map(|(n, _)| n))
    {
        if !zones.iter().any(|z| z.eq_ignore_root(name)) {
            zones.push(name.clone());
        }
    }
    for (name, key) in &set.dnskeys {
        anchors.insert_with_name(key.public_key(), name.into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let now = u32::try_from(now).unwrap_or(u32::MAX);
    for zone in zones {
        match anchor_zone(&transport, set, &zone, now).await {
            Ok(keys) => {
                for key in keys {
                    anchors.insert_with_name(key.public_key(), (&zone).into());
                }
            }
            Err(p) => problems.push(format!("trust anchor {zone}: {p}")),
        }
    }
    let inner = InnerHandle {
        transport,
        keys: Arc::default(),
    };
    let handle = DnssecDnsHandle::with_trust_anchor(inner, Arc::new(anchors))
        .validation_cache_size(VALIDATION_CACHE_CAPACITY);
    (handle, problems)
}

/// The zone keys of `zone`'s DNSKEY RRset, if an anchor key validly signed it.
async fn anchor_zone(
    transport: &Transport,
    set: &TrustAnchorSet,
    zone: &Name,
    now: u32,
) -> Result<Vec<DNSKEY>, String> {
    let flags = QueryFlags {
        dnssec_ok: true,
        checking_disabled: true,
        edns_payload: 0,
    };
    let ex = transport.exchange(zone, RecordType::DNSKEY, flags).await;
    let msg = ex
        .result
        .map_err(|f| format!("DNSKEY lookup {}: {}", f.class, f.detail))?;
    let rrset: Vec<&Record> = msg
        .answers
        .iter()
        .filter(|r| r.name.eq_ignore_root(zone) && r.record_type() == RecordType::DNSKEY)
        .collect();
    let keys: Vec<&DNSKEY> = rrset
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k),
            _ => None,
        })
        .collect();
    let is_anchor = |k: &DNSKEY| {
        set.dnskeys.iter().any(|(n, a)| {
            n.eq_ignore_root(zone)
                && a.public_key().public_bytes() == k.public_key().public_bytes()
                && a.public_key().algorithm() == k.public_key().algorithm()
        }) || set
            .ds
            .iter()
            .any(|(n, ds)| n.eq_ignore_root(zone) && ds.covers(zone, k).unwrap_or(false))
    };
    let anchor_keys: Vec<&DNSKEY> = keys.iter().copied().filter(|k| is_anchor(k)).collect();
    if anchor_keys.is_empty() {
        return Err("no DNSKEY in the zone matches the anchor".into());
    }
    let sigs = msg.answers.iter().filter_map(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) if r.name.eq_ignore_root(zone) => Some(sig),
        _ => None,
    });
    for sig in sigs {
        let input = sig.input();
        if input.type_covered != RecordType::DNSKEY
            || !input.signer_name.eq_ignore_root(zone)
            || input.sig_inception.get() > now
            || input.sig_expiration.get() < now
        {
            continue;
        }
        for key in &anchor_keys {
            if key.calculate_key_tag().ok() != Some(input.key_tag) {
                continue;
            }
            if key
                .verify_rrsig(zone, DNSClass::IN, sig, rrset.iter().copied())
                .is_ok()
            {
                return Ok(keys
                    .iter()
                    .filter(|k| k.zone_key() && !k.revoke())
                    .map(|k| (*k).clone())
                    .collect());
            }
        }
    }
    Err("DNSKEY RRset not validly signed by an anchor key".into())
}

/// Sends one validated query.
pub(crate) async fn validated_lookup(
    v: &Validator,
    query: hickory_proto::op::Query,
    options: hickory_proto::op::DnsRequestOptions,
) -> Result<DnsResponse, NetError> {
    v.lookup(query, options).first_answer().await
}
