//! Discovery: the `_mta-sts.<domain>` TXT record (RFC 8461 §3.1), pure.
//!
//! ```text
//! sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//! sts-field       = sts-id / sts-extension
//! sts-field-delim = *WSP ";" *WSP
//! sts-version     = %s"v=STSv1"
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//! sts-extension   = sts-ext-name "=" sts-ext-value
//! sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```

/// The single valid `v=STSv1` TXT record of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsTxt {
    /// The `id` field: 1 to 32 ASCII letters and digits.
    pub id: String,
    /// Extension fields (`name=value`), in order. A repeated `id` field lands here too.
    pub extensions: Vec<(String, String)>,
    /// The record as published (strings of the TXT record concatenated).
    pub record: String,
}

/// Why a domain has no usable `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxtError {
    /// No record begins with `v=STSv1`: the domain has no MTA-STS policy (status `none`).
    #[error("no TXT record starts with v=STSv1")]
    NoRecord,
    /// More than one record begins with `v=STSv1` (status `txt_invalid`).
    #[error("{0} TXT records start with v=STSv1; exactly one is required")]
    Multiple(usize),
    /// The one `v=STSv1` record does not follow the ABNF (status `txt_invalid`).
    #[error("invalid v=STSv1 record: {0}")]
    Syntax(String),
    /// The record has no `id` field (status `txt_invalid`).
    #[error("the v=STSv1 record has no id field")]
    MissingId,
    /// The `id` is not 1-32 letters and digits (status `txt_invalid`).
    #[error("id {0:?} is not 1-32 ASCII letters and digits")]
    BadId(String),
}

impl TxtError {
    /// Whether this means "no policy" (`none`) rather than a broken one (`txt_invalid`).
    pub fn is_absent(&self) -> bool {
        matches!(self, TxtError::NoRecord)
    }
}

const STS_VERSION: &str = "v=STSv1";

/// Whether a TXT record takes part in MTA-STS discovery.
///
/// RFC 8461 §3.1 discards "records that do not begin with `v=STSv1;`". mxray also keeps a
/// record where `v=STSv1` is followed by whitespace or nothing (`v=STSv1 ;id=1`, `v=STSv1`):
/// such a record is then reported as `txt_invalid` with its syntax error instead of vanishing
/// into `none`. For a sender both readings mean "no usable policy".
pub(crate) fn begins_with_version(record: &str, version: &str) -> bool {
    match record.strip_prefix(version) {
        Some(rest) => rest.is_empty() || rest.starts_with([';', ' ', '\t']),
        None => false,
    }
}

/// Parses the TXT records found at `_mta-sts.<domain>` (each record's strings already
/// concatenated, as DNS delivers a record split into several strings).
///
/// ```
/// use mxray_mtasts::{parse_sts_txt, TxtError};
/// let txt = parse_sts_txt(&["v=STSv1; id=20240101T000000;".to_owned()]).unwrap();
/// assert_eq!(txt.id, "20240101T000000");
/// assert_eq!(parse_sts_txt(&["v=spf1 -all".to_owned()]), Err(TxtError::NoRecord));
/// ```
pub fn parse_sts_txt(records: &[String]) -> Result<StsTxt, TxtError> {
    let sts: Vec<&String> = records
        .iter()
        .filter(|r| begins_with_version(r, STS_VERSION))
        .collect();
    let record = match sts.as_slice() {
        [] => return Err(TxtError::NoRecord),
        [one] => one.as_str(),
        many => return Err(TxtError::Multiple(many.len())),
    };
    let fields = parse_tag_list(record, STS_VERSION, false).map_err(TxtError::Syntax)?;
    let mut id = None;
    let mut extensions = Vec::new();
    for (name, value) in fields {
        if name == "id" && id.is_none() {
            if value.is_empty()
                || value.len() > 32
                || !value.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(TxtError::BadId(value));
            }
            id = Some(value);
        } else {
            extensions.push((name, value));
        }
    }
    let id = id.ok_or(TxtError::MissingId)?;
    Ok(StsTxt {
        id,
        extensions,
        record: record.to_owned(),
    })
}

/// Splits `version *(delim field) [delim]` into `(name, value)` pairs, checking the shared
/// ABNF of RFC 8461 §3.1 and RFC 8460 §3: extension names and values. With `rua_value`,
/// a field named `rua` may contain whitespace around its commas (RFC 8460).
///
/// Whitespace after the last field without a trailing `;` is tolerated (the ABNF has none).
pub(crate) fn parse_tag_list(
    record: &str,
    version: &str,
    rua_value: bool,
) -> Result<Vec<(String, String)>, String> {
    let rest = record
        .strip_prefix(version)
        .ok_or_else(|| format!("does not start with {version}"))?;
    let rest = rest.trim_end_matches([' ', '\t']);
    let mut parts = rest.split(';');
    // Before the first ';' only whitespace may follow the version.
    let head = parts.next().unwrap_or("");
    if !head.trim_matches([' ', '\t']).is_empty() {
        return Err(format!("unexpected text {head:?} after {version}"));
    }
    let parts: Vec<&str> = parts.collect();
    let mut fields = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let field = part.trim_matches([' ', '\t']);
        if field.is_empty() {
            if i + 1 == parts.len() && i > 0 {
                break; // the optional trailing delimiter
            }
            return Err("empty field (\";;\" or nothing after the version)".to_owned());
        }
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| format!("field {field:?} is not name=value"))?;
        if !valid_ext_name(name) {
            return Err(format!("invalid field name {name:?}"));
        }
        let ok = if rua_value && name == "rua" {
            !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
        } else {
            valid_ext_value(value)
        };
        if !ok {
            return Err(format!("invalid value {value:?} for field {name:?}"));
        }
        fields.push((name.to_owned(), value.to_owned()));
    }
    if fields.is_empty() {
        return Err(format!("no field after {version}"));
    }
    Ok(fields)
}

/// `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`
pub(crate) fn valid_ext_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// `1*(%x21-3A / %x3C / %x3E-7E)`: visible ASCII except `;` and `=`.
pub(crate) fn valid_ext_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|c| matches!(c, 0x21..=0x3A | 0x3C | 0x3E..=0x7E))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(records: &[&str]) -> Result<StsTxt, TxtError> {
        let v: Vec<String> = records.iter().map(|s| (*s).to_owned()).collect();
        parse_sts_txt(&v)
    }

    #[test]
    fn rfc8461_example_record() {
        let t = txt(&["v=STSv1; id=20160831085700Z;"]).expect("valid");
        assert_eq!(t.id, "20160831085700Z");
        assert!(t.extensions.is_empty());
    }

    #[test]
    fn no_record_is_none_not_invalid() {
        assert_eq!(txt(&[]), Err(TxtError::NoRecord));
        let e = txt(&["v=spf1 -all", "hello"]).expect_err("none");
        assert!(e.is_absent());
        // Case matters: %s"v=STSv1".
        assert_eq!(txt(&["V=stsv1; id=1"]), Err(TxtError::NoRecord));
        // A different version token is not ours.
        assert_eq!(txt(&["v=STSv10; id=1"]), Err(TxtError::NoRecord));
    }

    #[test]
    fn two_sts_records_are_invalid_even_if_other_records_exist() {
        let e = txt(&["v=STSv1; id=1", "v=spf1 -all", "v=STSv1; id=2"]).expect_err("two");
        assert_eq!(e, TxtError::Multiple(2));
        assert!(!e.is_absent());
    }

    #[test]
    fn bad_ids() {
        assert_eq!(
            txt(&["v=STSv1; id=abc-def"]),
            Err(TxtError::BadId("abc-def".into()))
        );
        let long = format!("v=STSv1; id={}", "a".repeat(33));
        assert!(matches!(txt(&[&long]), Err(TxtError::BadId(_))));
        assert_eq!(
            txt(&[&format!("v=STSv1; id={}", "a".repeat(32))]).map(|t| t.id.len()),
            Ok(32)
        );
        assert!(matches!(txt(&["v=STSv1; id="]), Err(TxtError::Syntax(_))));
        assert_eq!(txt(&["v=STSv1; foo=bar"]), Err(TxtError::MissingId));
        assert!(matches!(txt(&["v=STSv1"]), Err(TxtError::Syntax(_))));
        assert!(matches!(txt(&["v=STSv1;"]), Err(TxtError::Syntax(_))));
    }

    #[test]
    fn extension_fields_are_tolerated_and_kept() {
        let t = txt(&["v=STSv1; id=abc123; ext_1.x=some:value;"]).expect("valid");
        assert_eq!(t.id, "abc123");
        assert_eq!(
            t.extensions,
            vec![("ext_1.x".to_owned(), "some:value".to_owned())]
        );
        // An extension value may not contain '=' or spaces.
        assert!(matches!(
            txt(&["v=STSv1; id=1; x=a=b"]),
            Err(TxtError::Syntax(_))
        ));
        assert!(matches!(
            txt(&["v=STSv1; id=1; _x=a"]),
            Err(TxtError::Syntax(_))
        ));
    }

    #[test]
    fn whitespace_around_delimiters() {
        let t = txt(&["v=STSv1 ;\tid=42 ;  "]).expect("valid");
        assert_eq!(t.id, "42");
        let t = txt(&["v=STSv1;id=42"]).expect("no space");
        assert_eq!(t.id, "42");
        assert!(matches!(
            txt(&["v=STSv1; id=1;; x=2"]),
            Err(TxtError::Syntax(_))
        ));
        assert!(matches!(
            txt(&["v=STSv1 junk; id=1"]),
            Err(TxtError::Syntax(_))
        ));
    }

    #[test]
    fn record_split_across_strings_is_read_concatenated() {
        // DNS: "v=STSv1; id=2019" "0101T000000" -> one record, strings joined without a space.
        let joined = ["v=STSv1; id=2019", "0101T000000"].concat();
        assert_eq!(txt(&[&joined]).expect("valid").id, "20190101T000000");
    }

    #[test]
    fn repeated_id_keeps_the_first() {
        let t = txt(&["v=STSv1; id=first; id=second"]).expect("valid");
        assert_eq!(t.id, "first");
        assert_eq!(t.extensions, vec![("id".to_owned(), "second".to_owned())]);
    }
}
