//! What the per-scan probe map keeps of a probe: [`CachedProbe`], the verdict inputs only,
//! and [`ProbeFacts`], the one view the verdict code ([`crate::verdict`], [`crate::legacy`])
//! reads probes through, so it judges a full `smtp_probe` record and a cached entry alike.
//!
//! The full record (transcript, raw replies, timings, chain) goes to the sink once; the map
//! holds up to `MemoryBounds::probes` entries for the rest of the scan, so every byte of an
//! entry counts (see `MemoryBounds` for the measured sizes). The kept set is derived from
//! what the readers use: `result`, `error_class`, `reached_ehlo`, `starttls_advertised`,
//! `tls_version`, `tls_legacy`, `pkix_valid`, `pkix_error`, `dane`, `stripping_signals`, the
//! RFC 8460 results under DANE, and `ip`/`port` (the error strings and the delivery-port
//! filter). A field added to a reader must be added here too: the test
//! `verdicts_from_cached_probes_equal_verdicts_from_records` in [`crate::verdict`] compares
//! both forms over varied probes.

use std::borrow::Cow;
use std::fmt::Display;
use std::net::IpAddr;

use mxray_model::{
    DaneVerdict, PkixError, ProbeErrorClass, ProbeResult, SmtpProbeRecord, StrippingSignal,
    TlsRptResult,
};

/// The probe fields the verdicts read, whatever holds them.
pub trait ProbeFacts {
    /// `starttls_ok`, `no_starttls` or `error`.
    fn result(&self) -> ProbeResult;
    fn error_class(&self) -> Option<ProbeErrorClass>;
    /// The session reached a successful EHLO/HELO.
    fn reached_ehlo(&self) -> bool;
    fn starttls_advertised(&self) -> bool;
    fn tls_version(&self) -> Option<&str>;
    fn tls_legacy(&self) -> bool;
    fn pkix_valid(&self) -> Option<bool>;
    fn pkix_error(&self) -> Option<PkixError>;
    /// The host-level DANE result.
    fn dane(&self) -> DaneVerdict;
    /// Whether the host's TLSA RRset is secure ([`mxray_smtp::tlsrpt::host_dane_applies`]).
    fn host_dane_applies(&self) -> bool;
    fn stripping_signals(&self) -> &[StrippingSignal];
    /// The probe's RFC 8460 results when DANE applies to it
    /// ([`mxray_smtp::tlsrpt::for_probe`] with `dane_applies`).
    fn tlsrpt_under_dane(&self) -> Cow<'_, [TlsRptResult]>;
    /// The destination address, for error strings (`smtp:<class>: <ip>:<port>`).
    fn ip(&self) -> &dyn Display;
    fn port(&self) -> u16;
}

/// The accessors of the fields [`SmtpProbeRecord`] and [`CachedProbe`] both have under the
/// same name and meaning, written once (the `ip` is text in one and an `IpAddr` in the other;
/// both display as the address).
macro_rules! same_named_facts {
    () => {
        fn result(&self) -> ProbeResult {
            self.result
        }
        fn error_class(&self) -> Option<ProbeErrorClass> {
            self.error_class
        }
        fn reached_ehlo(&self) -> bool {
            self.reached_ehlo
        }
        fn starttls_advertised(&self) -> bool {
            self.starttls_advertised
        }
        fn tls_version(&self) -> Option<&str> {
            self.tls_version.as_deref()
        }
        fn tls_legacy(&self) -> bool {
            self.tls_legacy
        }
        fn pkix_valid(&self) -> Option<bool> {
            self.pkix_valid
        }
        fn pkix_error(&self) -> Option<PkixError> {
            self.pkix_error
        }
        fn dane(&self) -> DaneVerdict {
            self.dane
        }
        fn stripping_signals(&self) -> &[StrippingSignal] {
            &self.stripping_signals
        }
        fn ip(&self) -> &dyn Display {
            &self.ip
        }
        fn port(&self) -> u16 {
            self.port
        }
    };
}

impl ProbeFacts for SmtpProbeRecord {
    same_named_facts!();
    fn host_dane_applies(&self) -> bool {
        mxray_smtp::tlsrpt::host_dane_applies(self)
    }
    fn tlsrpt_under_dane(&self) -> Cow<'_, [TlsRptResult]> {
        Cow::Owned(mxray_smtp::tlsrpt::for_probe(self, true))
    }
}

/// A probe as the per-scan map keeps it (see the module doc). About a tenth of the full
/// record inline, and heap only for stripping signals and RFC 8460 results, which most
/// probes lack (an empty boxed slice does not allocate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedProbe {
    /// The destination address (the probe target's, so never a parse of text).
    pub ip: IpAddr,
    pub port: u16,
    pub result: ProbeResult,
    pub error_class: Option<ProbeErrorClass>,
    pub reached_ehlo: bool,
    pub starttls_advertised: bool,
    pub tls_legacy: bool,
    /// Computed once here rather than per domain (both from mxray-smtp's own functions).
    pub host_dane_applies: bool,
    pub pkix_valid: Option<bool>,
    pub pkix_error: Option<PkixError>,
    pub dane: DaneVerdict,
    /// The negotiated version; the usual names borrow a static string, so no allocation.
    pub tls_version: Option<Cow<'static, str>>,
    pub stripping_signals: Box<[StrippingSignal]>,
    pub tlsrpt_under_dane: Box<[TlsRptResult]>,
}

impl CachedProbe {
    /// What the map keeps of `r`, a probe of `ip` (the target's address: `r.ip` is its text).
    pub fn new(ip: IpAddr, r: &SmtpProbeRecord) -> Self {
        let tls_version = r.tls_version.as_deref().map(|v| {
            // The names the probe writes, kept without a heap copy each.
            match mxray_net::tls::VERSION_NAMES.iter().find(|(_, k)| *k == v) {
                Some((_, k)) => Cow::Borrowed(*k),
                None => Cow::Owned(v.to_owned()),
            }
        });
        CachedProbe {
            ip,
            port: r.port,
            result: r.result,
            error_class: r.error_class,
            reached_ehlo: r.reached_ehlo,
            starttls_advertised: r.starttls_advertised,
            tls_legacy: r.tls_legacy,
            host_dane_applies: r.host_dane_applies(),
            pkix_valid: r.pkix_valid,
            pkix_error: r.pkix_error,
            dane: r.dane,
            tls_version,
            stripping_signals: r.stripping_signals.clone().into_boxed_slice(),
            tlsrpt_under_dane: r.tlsrpt_under_dane().into_owned().into_boxed_slice(),
        }
    }

    /// From a journal's record (`--resume`): None when its address is not an address, which
    /// mxray never writes.
    pub fn from_record(r: &SmtpProbeRecord) -> Option<Self> {
        let ip = r.ip.parse::<IpAddr>().ok()?;
        Some(Self::new(ip, r))
    }
}

impl ProbeFacts for CachedProbe {
    same_named_facts!();
    fn host_dane_applies(&self) -> bool {
        self.host_dane_applies
    }
    fn tlsrpt_under_dane(&self) -> Cow<'_, [TlsRptResult]> {
        Cow::Borrowed(&self.tlsrpt_under_dane)
    }
}

/// A 128-bit digest of a name, for the sets that only need to know whether a name was seen
/// (the `dns_host` records written, the hosts given a second lookup): 16 bytes and no heap
/// instead of the name. Two names colliding (odds about 2^-64 at 2^32 names) would only make
/// one of them skip its `dns_host` record or its second lookup.
pub fn name_digest(name: &str) -> u128 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    u128::from_le_bytes(first)
}

/// A certificate's SHA-256 as the written-certificates set keeps it: the 32 bytes of the hex
/// text mxray-smtp writes. Text that is not 64 hex digits (never written by mxray) is hashed
/// instead, so it still de-duplicates by its text and never panics.
pub fn cert_key(sha256_hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if sha256_hex.len() == 64 && hex::decode_to_slice(sha256_hex, &mut out).is_ok() {
        return out;
    }
    use sha2::{Digest, Sha256};
    Sha256::digest(sha256_hex.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::examples;

    #[test]
    fn a_cached_probe_reads_like_its_record() {
        let mut r = examples::smtp_probe();
        r.dane = DaneVerdict::Mismatch;
        r.stripping_signals = vec![StrippingSignal::StarttlsRejected];
        r.tls_version = Some("TLSv1.2".into());
        let c = CachedProbe::from_record(&r).expect("example ip parses");
        assert_eq!(c.ip().to_string(), r.ip);
        assert_eq!(ProbeFacts::tls_version(&c), Some("TLSv1.2"));
        assert!(matches!(c.tls_version, Some(Cow::Borrowed(_))));
        assert_eq!(c.tlsrpt_under_dane(), r.tlsrpt_under_dane());
        assert_eq!(c.stripping_signals(), r.stripping_signals());
        assert_eq!(c.host_dane_applies(), r.host_dane_applies());
        r.tls_version = Some("TLSv9".into());
        let odd = CachedProbe::new(c.ip, &r);
        assert_eq!(ProbeFacts::tls_version(&odd), Some("TLSv9"));
        r.ip = "not an address".into();
        assert_eq!(CachedProbe::from_record(&r), None);
    }

    #[test]
    fn certificate_keys_are_the_digest_bytes_and_never_panic() {
        let hex_text = "00ff".repeat(16);
        let k = cert_key(&hex_text);
        assert_eq!(k[0], 0x00);
        assert_eq!(k[1], 0xff);
        assert_eq!(cert_key(&hex_text.to_uppercase()), k);
        // Not 64 hex digits: hashed, distinct, stable.
        for odd in ["", "zz", "é", &"g".repeat(64)] {
            assert_ne!(cert_key(odd), k);
            assert_eq!(cert_key(odd), cert_key(odd));
        }
        assert_ne!(
            name_digest("mx1.example.com"),
            name_digest("mx2.example.com")
        );
    }

    /// The per-entry figures quoted in `MemoryBounds`' doc; fails when they drift far.
    #[test]
    fn entry_sizes_stay_small() {
        let cached = std::mem::size_of::<CachedProbe>();
        let record = std::mem::size_of::<SmtpProbeRecord>();
        eprintln!(
            "size_of: SmtpProbeRecord {record}, CachedProbe {cached}, ProbeKey {}, \
             OnceCell<Arc<CachedProbe>> {}, cert key {}, host key {}",
            std::mem::size_of::<crate::pipeline::ProbeKey>(),
            std::mem::size_of::<tokio::sync::OnceCell<std::sync::Arc<CachedProbe>>>(),
            std::mem::size_of::<[u8; 32]>(),
            std::mem::size_of::<u128>()
        );
        assert!(cached <= 96, "{cached}");
    }
}
