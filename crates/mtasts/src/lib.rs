//! MTA-STS (RFC 8461) discovery, policy fetch and validation, and TLS-RPT (RFC 8460) records.
//!
//! What it does:
//! - [`parse_sts_txt`]: the `_mta-sts.<domain>` TXT record (§3.1), pure.
//! - [`PolicyFetcher`]: the HTTPS fetch of `https://mta-sts.<domain>/.well-known/mta-sts.txt`
//!   (§3.3) on hyper + rustls, through [`mxray_net::Dialer`]; redirects never followed, only
//!   200 `text/plain`, 64 KiB cap, one overall timeout; every failure is a [`FetchFailure`]
//!   with an `mta_sts_error` class, never an `Err`.
//! - [`parse_policy`]: the policy body (§3.2), pure, with a [`PolicyWarning`] for every
//!   tolerated deviation; [`mx_pattern_matches`] (§4.1).
//! - [`assess`]: TXT outcome + addresses + fetch → [`MtaStsAssessment`] →
//!   [`mxray_model::MtaStsPolicyRecord`]; [`compliance`], [`dane_conflict`] and
//!   [`tlsrpt_results`] combine a policy with SMTP probe facts ([`MxTlsFacts`]).
//! - [`parse_tlsrpt`]: the `_smtp._tls.<domain>` TXT record (RFC 8460 §3), pure.
//!
//! What it does not: resolve names (DNS results are inputs; `mxray-dns` does the lookups),
//! probe SMTP (`mxray-smtp`), cache policies across scans, or send TLS reports.
//!
//! ```
//! use mxray_mtasts::{parse_policy, parse_sts_txt, mx_pattern_matches, compliance, MxTlsFacts};
//! let txt = parse_sts_txt(&["v=STSv1; id=20240101;".to_owned()]).unwrap();
//! assert_eq!(txt.id, "20240101");
//! let parsed = parse_policy("version: STSv1\r\nmode: enforce\r\nmx: *.example.com\r\nmax_age: 604800\r\n");
//! let policy = parsed.policy.unwrap();
//! assert!(mx_pattern_matches(&policy.mx[0], "mx1.example.com"));
//! let mx = MxTlsFacts {
//!     host: "mx1.example.com".into(),
//!     starttls_ok: true,
//!     tls_version: Some("TLSv1.3".into()),
//!     pkix_valid: true,
//!     ..Default::default()
//! };
//! assert_eq!(compliance(&policy, &[mx]), Some(true));
//! ```

mod assess;
mod fetch;
mod policy;
mod tlsrpt;
mod txt;

pub use assess::{
    assess, assess_txt, check_mx_hosts, compliance, conclude, dane_conflict, mta_sts_compliant,
    tlsrpt_results, MtaStsAssessment, MtaStsInput, MxCheck, MxFailure, MxTlsFacts,
};
pub use fetch::{
    check_media_type, check_response, FetchConfig, FetchFailure, FetchOutcome, FetchSetupError,
    PolicyFetcher, DEFAULT_BODY_CAP, POLICY_PATH,
};
pub use policy::{
    mx_pattern_matches, mx_patterns_for_log, parse_policy, Policy, PolicyError, PolicyParse,
    PolicyWarning, WarningKind, MAX_AGE_LIMIT, MAX_LOGGED_PATTERNS, MAX_LOGGED_PATTERN_CHARS,
};
pub use tlsrpt::{parse_tlsrpt, TlsRpt, TlsRptError};
pub use txt::{parse_sts_txt, StsTxt, TxtError};
