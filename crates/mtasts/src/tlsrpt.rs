//! TLS-RPT discovery: the `_smtp._tls.<domain>` TXT record (RFC 8460 §3), pure.
//!
//! ```text
//! tlsrpt-record  = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//! field-delim    = *WSP ";" *WSP
//! tlsrpt-field   = tlsrpt-rua / tlsrpt-extension
//! tlsrpt-version = %s"v=TLSRPTv1"
//! tlsrpt-rua     = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//! tlsrpt-uri     = URI   ; "mailto:" or "https:"
//! ```

use crate::txt::{begins_with_version, parse_tag_list};

const TLSRPT_VERSION: &str = "v=TLSRPTv1";

/// Why a domain has no usable TLS-RPT record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRptError {
    /// No record begins with `v=TLSRPTv1`.
    #[error("no TXT record starts with v=TLSRPTv1")]
    NoRecord,
    /// More than one record begins with `v=TLSRPTv1`.
    #[error("{0} TXT records start with v=TLSRPTv1; exactly one is required")]
    Multiple(usize),
    /// The record does not follow the ABNF.
    #[error("invalid v=TLSRPTv1 record: {0}")]
    Syntax(String),
    /// No `rua` field.
    #[error("the v=TLSRPTv1 record has no rua field")]
    MissingRua,
    /// `rua` holds no `mailto:` or `https:` URI.
    #[error("rua has no mailto: or https: URI")]
    NoUsableUri,
}

/// The TLS-RPT findings of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRpt {
    /// Exactly one valid `v=TLSRPTv1` record with at least one usable `rua` URI.
    pub valid: bool,
    /// The usable `rua` URIs (`mailto:` and `https:`), in order.
    pub rua: Vec<String>,
    /// Why `valid` is false; `None` when valid.
    pub error: Option<TlsRptError>,
    /// Tolerated deviations: `code: detail` (unsupported URI schemes, repeated `rua`).
    pub warnings: Vec<String>,
    /// The `v=TLSRPTv1` record, when exactly one was found.
    pub record: Option<String>,
}

impl TlsRpt {
    fn invalid(error: TlsRptError, record: Option<String>, warnings: Vec<String>) -> Self {
        TlsRpt {
            valid: false,
            rua: Vec::new(),
            error: Some(error),
            warnings,
            record,
        }
    }
}

/// Parses the TXT records found at `_smtp._tls.<domain>` (strings of a record concatenated).
///
/// ```
/// use mxray_mtasts::parse_tlsrpt;
/// let t = parse_tlsrpt(&["v=TLSRPTv1; rua=mailto:tlsrpt@example.com".to_owned()]);
/// assert!(t.valid);
/// assert_eq!(t.rua, ["mailto:tlsrpt@example.com"]);
/// ```
pub fn parse_tlsrpt(records: &[String]) -> TlsRpt {
    let found: Vec<&String> = records
        .iter()
        .filter(|r| begins_with_version(r, TLSRPT_VERSION))
        .collect();
    let record = match found.as_slice() {
        [] => return TlsRpt::invalid(TlsRptError::NoRecord, None, Vec::new()),
        [one] => (*one).clone(),
        many => return TlsRpt::invalid(TlsRptError::Multiple(many.len()), None, Vec::new()),
    };
    let fields = match parse_tag_list(&record, TLSRPT_VERSION, true) {
        Ok(f) => f,
        Err(e) => return TlsRpt::invalid(TlsRptError::Syntax(e), Some(record), Vec::new()),
    };
    let mut warnings = Vec::new();
    let mut rua_value = None;
    for (name, value) in fields {
        if name == "rua" {
            if rua_value.is_some() {
                warnings.push("repeated_rua: a later rua field is ignored".to_owned());
            } else {
                rua_value = Some(value);
            }
        }
    }
    let Some(rua_value) = rua_value else {
        return TlsRpt::invalid(TlsRptError::MissingRua, Some(record), warnings);
    };
    let mut rua = Vec::new();
    for uri in rua_value.split(',') {
        let uri = uri.trim_matches([' ', '\t']);
        if uri.is_empty() || uri.contains([' ', '\t']) {
            return TlsRpt::invalid(
                TlsRptError::Syntax(format!("rua list {rua_value:?} has an empty or spaced URI")),
                Some(record),
                warnings,
            );
        }
        let scheme = uri
            .split_once(':')
            .map(|(s, rest)| (s.to_ascii_lowercase(), rest));
        match scheme {
            Some((s, rest)) if (s == "mailto" || s == "https") && !rest.is_empty() => {
                rua.push(uri.to_owned())
            }
            _ => warnings.push(format!("unsupported_uri: {uri:?}")),
        }
    }
    if rua.is_empty() {
        return TlsRpt::invalid(TlsRptError::NoUsableUri, Some(record), warnings);
    }
    TlsRpt {
        valid: true,
        rua,
        error: None,
        warnings,
        record: Some(record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(records: &[&str]) -> TlsRpt {
        let v: Vec<String> = records.iter().map(|s| (*s).to_owned()).collect();
        parse_tlsrpt(&v)
    }

    #[test]
    fn rfc8460_examples() {
        let a = t(&["v=TLSRPTv1;rua=mailto:reports@example.com"]);
        assert!(a.valid && a.error.is_none());
        assert_eq!(a.rua, ["mailto:reports@example.com"]);
        let b = t(&["v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt"]);
        assert_eq!(b.rua, ["https://reporting.example.com/v1/tlsrpt"]);
    }

    #[test]
    fn several_uris_with_whitespace() {
        let r = t(&["v=TLSRPTv1; rua=mailto:a@example.com , https://r.example/x;"]);
        assert!(r.valid);
        assert_eq!(r.rua, ["mailto:a@example.com", "https://r.example/x"]);
    }

    #[test]
    fn absent_multiple_and_broken() {
        assert_eq!(t(&[]).error, Some(TlsRptError::NoRecord));
        assert_eq!(t(&["v=spf1 -all"]).error, Some(TlsRptError::NoRecord));
        let two = t(&[
            "v=TLSRPTv1; rua=mailto:a@x.example",
            "v=TLSRPTv1; rua=mailto:b@x.example",
        ]);
        assert_eq!(two.error, Some(TlsRptError::Multiple(2)));
        assert!(!two.valid && two.rua.is_empty());
        assert_eq!(
            t(&["v=TLSRPTv1; foo=bar"]).error,
            Some(TlsRptError::MissingRua)
        );
        assert!(matches!(
            t(&["v=TLSRPTv1 rua=mailto:a@b"]).error,
            Some(TlsRptError::Syntax(_))
        ));
        assert!(matches!(
            t(&["v=TLSRPTv1; rua=mailto:a@b,,"]).error,
            Some(TlsRptError::Syntax(_))
        ));
    }

    #[test]
    fn unsupported_schemes() {
        let r = t(&["v=TLSRPTv1; rua=http://r.example/x"]);
        assert_eq!(r.error, Some(TlsRptError::NoUsableUri));
        assert!(!r.valid);
        let r = t(&["v=TLSRPTv1; rua=http://r.example/x,mailto:a@b.example"]);
        assert!(r.valid);
        assert_eq!(r.rua, ["mailto:a@b.example"]);
        assert_eq!(r.warnings, ["unsupported_uri: \"http://r.example/x\""]);
    }
}
