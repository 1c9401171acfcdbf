//! The policy file (RFC 8461 §3.2) and MX pattern matching (§4.1), pure.
//!
//! ```text
//! sts-policy-record    = sts-policy-field *WSP *(sts-policy-term-delim sts-policy-field *WSP)
//!                        [sts-policy-term-delim]
//! sts-policy-field     = version / mode / max_age / mx / extension   ; "key:" *WSP value
//! sts-policy-term-delim = CRLF / LF                                  ; errata 6253
//! mode value           = %s"testing" / %s"enforce" / %s"none"
//! max_age value        = 1*10(DIGIT)                                 ; at most 31557600
//! mx value             = ["*."] Domain
//! ```
//!
//! The verdict ([`PolicyParse::policy`]) is what a conforming sender concludes. Everything a
//! stricter or looser implementation could judge differently is a [`PolicyWarning`], so both
//! readings can be computed from the record later.

use std::fmt;
use std::net::IpAddr;

use mxray_model::MtaStsMode;

/// The largest `max_age` RFC 8461 allows: 31557600 s, about one year.
pub const MAX_AGE_LIMIT: u32 = 31_557_600;

/// A valid STSv1 policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `mode`.
    pub mode: MtaStsMode,
    /// `max_age`, seconds (0..=31557600).
    pub max_age: u32,
    /// `mx` patterns in order, as written (minus a trailing dot). Empty only when mode is none.
    pub mx: Vec<String>,
}

impl Policy {
    /// The first pattern that matches `host`, if any.
    pub fn matching_pattern(&self, host: &str) -> Option<&str> {
        self.mx
            .iter()
            .map(String::as_str)
            .find(|p| mx_pattern_matches(p, host))
    }
}

/// Why a fetched body is not a valid STSv1 policy (status `policy_invalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// No `version` field.
    #[error("no version field")]
    MissingVersion,
    /// `version` is not `STSv1`.
    #[error("version {0:?} is not STSv1")]
    BadVersion(String),
    /// No `mode` field.
    #[error("no mode field")]
    MissingMode,
    /// `mode` is not `enforce`, `testing` or `none` (case-sensitive).
    #[error("mode {0:?} is not enforce, testing or none")]
    BadMode(String),
    /// No `max_age` field.
    #[error("no max_age field")]
    MissingMaxAge,
    /// `max_age` is not 1-10 decimal digits.
    #[error("max_age {0:?} is not a decimal integer of at most 10 digits")]
    BadMaxAge(String),
    /// `max_age` is above 31557600.
    #[error("max_age {0} exceeds 31557600")]
    MaxAgeOutOfRange(u64),
    /// Mode `enforce` or `testing` without any usable `mx` field.
    #[error("mode {0} requires at least one valid mx field")]
    MissingMx(MtaStsMode),
}

/// Kinds of tolerated deviations, each with a stable code written to `warnings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WarningKind {
    /// A line that is not `key: value` (ignored).
    JunkLine,
    /// An empty line between fields (ignored).
    BlankLine,
    /// A non-`mx` key given again; the first value is used.
    RepeatedKey,
    /// Whitespace before the key or between key and `:` (tolerated; the ABNF has none).
    KeyWhitespace,
    /// A key that differs from a known key only by case; the ABNF is case-sensitive, so it is
    /// an unknown key and ignored.
    KeyCase,
    /// An IP address literal as `mx` pattern (can never match an MX host name).
    IpInMx,
    /// An `mx` value that is not `["*."] Domain` (ignored).
    InvalidMx,
    /// An `mx` value with a trailing dot (tolerated, dot removed).
    MxTrailingDot,
    /// `mx` fields in a policy whose mode is none (harmless).
    MxWithModeNone,
    /// The body is not valid UTF-8 (read lossily).
    NonUtf8,
    /// A byte-order mark at the start of the body (skipped).
    ByteOrderMark,
    /// Both CRLF and bare LF line endings in one body (each is valid alone).
    MixedLineEndings,
    /// A bare CR that does not end a line (treated as part of the line).
    BareCr,
    /// `Content-Type` with parameters, e.g. `text/plain; charset=utf-8` (allowed, noted).
    ContentTypeParameters,
    /// `Content-Type` in another case than `text/plain` (media types are case-insensitive).
    ContentTypeCase,
}

impl WarningKind {
    /// The stable code (the part before `:` in a warning string).
    pub const fn as_str(self) -> &'static str {
        match self {
            WarningKind::JunkLine => "junk_line",
            WarningKind::BlankLine => "blank_line",
            WarningKind::RepeatedKey => "repeated_key",
            WarningKind::KeyWhitespace => "key_whitespace",
            WarningKind::KeyCase => "key_case",
            WarningKind::IpInMx => "ip_in_mx",
            WarningKind::InvalidMx => "invalid_mx",
            WarningKind::MxTrailingDot => "mx_trailing_dot",
            WarningKind::MxWithModeNone => "mx_with_mode_none",
            WarningKind::NonUtf8 => "non_utf8",
            WarningKind::ByteOrderMark => "byte_order_mark",
            WarningKind::MixedLineEndings => "mixed_line_endings",
            WarningKind::BareCr => "bare_cr",
            WarningKind::ContentTypeParameters => "content_type_parameters",
            WarningKind::ContentTypeCase => "content_type_case",
        }
    }
}

/// One tolerated deviation. Displayed as `code: detail`, the form stored in `warnings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWarning {
    /// What kind of deviation.
    pub kind: WarningKind,
    /// Where and what, in words (line numbers are 1-based).
    pub detail: String,
}

impl PolicyWarning {
    pub(crate) fn new(kind: WarningKind, detail: impl Into<String>) -> Self {
        PolicyWarning {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

/// The result of [`parse_policy`]: the verdict plus every tolerated deviation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyParse {
    /// The valid policy, or why there is none.
    pub policy: Result<Policy, PolicyError>,
    /// Deviations, in body order.
    pub warnings: Vec<PolicyWarning>,
}

/// Longest value kept verbatim in a warning.
const SNIPPET: usize = 80;

fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(SNIPPET).collect();
    if s.chars().count() > SNIPPET {
        out.push('…');
    }
    format!("{out:?}")
}

/// Most `mx` patterns [`mx_patterns_for_log`] names.
pub const MAX_LOGGED_PATTERNS: usize = 8;
/// Longest text [`mx_patterns_for_log`] writes before the count of those left out.
pub const MAX_LOGGED_PATTERN_CHARS: usize = 256;

/// The `mx` patterns of a policy as one bounded, comma-separated text for a log or summary
/// line: at most [`MAX_LOGGED_PATTERNS`] patterns and [`MAX_LOGGED_PATTERN_CHARS`] characters,
/// then `(+N more)`. A 64 KiB policy can hold thousands of patterns; the record keeps them
/// all, a human line does not need to.
///
/// ```
/// use mxray_mtasts::mx_patterns_for_log;
/// assert_eq!(mx_patterns_for_log(&["a.example".into(), "*.b.example".into()]), "a.example,*.b.example");
/// let many: Vec<String> = (0..1000).map(|i| format!("mx{i}.example")).collect();
/// assert!(mx_patterns_for_log(&many).ends_with(" (+992 more)"));
/// ```
pub fn mx_patterns_for_log(patterns: &[String]) -> String {
    let mut out = String::new();
    let mut shown = 0usize;
    for p in patterns.iter().take(MAX_LOGGED_PATTERNS) {
        let sep = usize::from(shown > 0);
        if out.len() + sep + p.len() > MAX_LOGGED_PATTERN_CHARS {
            // Patterns are validated host names (ASCII), but cut on a char boundary anyway
            // so that an unvalidated caller cannot make this panic.
            if shown == 0 {
                out.push_str(mxray_net::units::cap(p, MAX_LOGGED_PATTERN_CHARS));
                out.push('…');
                shown = 1;
            }
            break;
        }
        if sep == 1 {
            out.push(',');
        }
        out.push_str(p);
        shown += 1;
    }
    let left_out = patterns.len() - shown;
    if left_out > 0 {
        out.push_str(&format!(" (+{left_out} more)"));
    }
    out
}

/// Parses a policy body. Lines end in CRLF or LF (both valid, RFC 8461 errata 6253).
///
/// ```
/// use mxray_mtasts::parse_policy;
/// use mxray_model::MtaStsMode;
/// let p = parse_policy("version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n");
/// let policy = p.policy.unwrap();
/// assert_eq!(policy.mode, MtaStsMode::Enforce);
/// assert_eq!(policy.mx, ["*.example.com"]);
/// assert!(p.warnings.is_empty());
/// ```
pub fn parse_policy(body: &str) -> PolicyParse {
    let mut warnings = Vec::new();
    let body = match body.strip_prefix('\u{feff}') {
        Some(rest) => {
            warnings.push(PolicyWarning::new(
                WarningKind::ByteOrderMark,
                "UTF-8 BOM at start",
            ));
            rest
        }
        None => body,
    };
    let crlf = body.matches("\r\n").count();
    let lf = body.matches('\n').count();
    if crlf > 0 && lf > crlf {
        warnings.push(PolicyWarning::new(
            WarningKind::MixedLineEndings,
            format!("{crlf} CRLF and {} bare LF line endings", lf - crlf),
        ));
    }

    let mut version: Option<String> = None;
    let mut mode: Option<String> = None;
    let mut max_age: Option<String> = None;
    let mut mx: Vec<String> = Vec::new();

    let mut lines: Vec<&str> = body.split('\n').collect();
    // A final delimiter leaves one empty piece: that is the optional trailing term-delim.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    for (i, raw) in lines.iter().enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.contains('\r') {
            warnings.push(PolicyWarning::new(WarningKind::BareCr, format!("line {n}")));
        }
        if line.trim_matches([' ', '\t']).is_empty() {
            warnings.push(PolicyWarning::new(
                WarningKind::BlankLine,
                format!("line {n}"),
            ));
            continue;
        }
        let Some((key_raw, value_raw)) = line.split_once(':') else {
            warnings.push(PolicyWarning::new(
                WarningKind::JunkLine,
                format!("line {n}: {}", snippet(line)),
            ));
            continue;
        };
        let key = key_raw.trim_matches([' ', '\t']);
        if key != key_raw {
            warnings.push(PolicyWarning::new(
                WarningKind::KeyWhitespace,
                format!("line {n}: key {}", snippet(key_raw)),
            ));
        }
        // "key:" *WSP value *WSP
        let value = value_raw.trim_matches([' ', '\t']);
        if key.is_empty() || !crate::txt::valid_ext_name(key) {
            warnings.push(PolicyWarning::new(
                WarningKind::JunkLine,
                format!("line {n}: invalid key {}", snippet(key)),
            ));
            continue;
        }
        let slot = match key {
            "version" => Some(&mut version),
            "mode" => Some(&mut mode),
            "max_age" => Some(&mut max_age),
            "mx" => None,
            other => {
                let lower = other.to_ascii_lowercase();
                if matches!(lower.as_str(), "version" | "mode" | "max_age" | "mx") {
                    warnings.push(PolicyWarning::new(
                        WarningKind::KeyCase,
                        format!(
                            "line {n}: key {} ignored (keys are case-sensitive)",
                            snippet(other)
                        ),
                    ));
                }
                continue; // unknown keys are ignored
            }
        };
        match slot {
            Some(slot) => {
                if slot.is_some() {
                    warnings.push(PolicyWarning::new(
                        WarningKind::RepeatedKey,
                        format!("line {n}: {key} repeated, first value kept"),
                    ));
                } else {
                    *slot = Some(value.to_owned());
                }
            }
            None => match check_mx(value) {
                Ok((pattern, warning)) => {
                    if let Some(w) = warning {
                        warnings.push(PolicyWarning::new(
                            w,
                            format!("line {n}: {}", snippet(value)),
                        ));
                    }
                    mx.push(pattern);
                }
                Err(()) => warnings.push(PolicyWarning::new(
                    WarningKind::InvalidMx,
                    format!("line {n}: {}", snippet(value)),
                )),
            },
        }
    }

    let policy = build(version, mode, max_age, mx, &mut warnings);
    PolicyParse { policy, warnings }
}

fn build(
    version: Option<String>,
    mode: Option<String>,
    max_age: Option<String>,
    mx: Vec<String>,
    warnings: &mut Vec<PolicyWarning>,
) -> Result<Policy, PolicyError> {
    match version {
        None => return Err(PolicyError::MissingVersion),
        Some(v) if v != "STSv1" => return Err(PolicyError::BadVersion(v)),
        Some(_) => {}
    }
    let mode = match mode.as_deref() {
        None => return Err(PolicyError::MissingMode),
        Some("enforce") => MtaStsMode::Enforce,
        Some("testing") => MtaStsMode::Testing,
        Some("none") => MtaStsMode::None,
        Some(other) => return Err(PolicyError::BadMode(other.to_owned())),
    };
    let max_age = match max_age {
        None => return Err(PolicyError::MissingMaxAge),
        Some(s) => {
            if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PolicyError::BadMaxAge(s));
            }
            let n: u64 = s.parse().map_err(|_| PolicyError::BadMaxAge(s.clone()))?;
            if n > u64::from(MAX_AGE_LIMIT) {
                return Err(PolicyError::MaxAgeOutOfRange(n));
            }
            u32::try_from(n).map_err(|_| PolicyError::MaxAgeOutOfRange(n))?
        }
    };
    if mx.is_empty() && mode != MtaStsMode::None {
        return Err(PolicyError::MissingMx(mode));
    }
    if !mx.is_empty() && mode == MtaStsMode::None {
        warnings.push(PolicyWarning::new(
            WarningKind::MxWithModeNone,
            format!("{} mx field(s) with mode none", mx.len()),
        ));
    }
    Ok(Policy { mode, max_age, mx })
}

/// Checks `["*."] Domain`; returns the pattern to keep and an optional warning kind.
fn check_mx(value: &str) -> Result<(String, Option<WarningKind>), ()> {
    let (body, dot_warning) = match value.strip_suffix('.') {
        Some(b) if !b.is_empty() => (b, Some(WarningKind::MxTrailingDot)),
        _ => (value, None),
    };
    let domain = body.strip_prefix("*.").unwrap_or(body);
    if !valid_domain(domain) {
        return Err(());
    }
    if body == domain && domain.parse::<IpAddr>().is_ok() {
        return Ok((body.to_owned(), Some(WarningKind::IpInMx)));
    }
    Ok((body.to_owned(), dot_warning))
}

/// RFC 5321 `Domain`: dot-separated `Let-dig [Ldh-str]` labels of at most 63 octets.
fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

/// Whether an MX host matches a policy `mx` pattern (RFC 8461 §4.1): case-insensitive,
/// trailing dots ignored, and `*.example.com` matches exactly one extra leftmost label
/// (`mail.example.com`, not `example.com`, not `a.b.example.com`).
///
/// ```
/// use mxray_mtasts::mx_pattern_matches;
/// assert!(mx_pattern_matches("*.Example.com", "MX1.example.COM."));
/// assert!(!mx_pattern_matches("*.example.com", "a.b.example.com"));
/// assert!(!mx_pattern_matches("*.example.com", "example.com"));
/// ```
pub fn mx_pattern_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    let host = host.strip_suffix('.').unwrap_or(host);
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => match host.split_once('.') {
            Some((first, rest)) => {
                !first.is_empty() && !suffix.is_empty() && rest.eq_ignore_ascii_case(suffix)
            }
            None => false,
        },
        None => pattern.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(p: &PolicyParse) -> Vec<WarningKind> {
        p.warnings.iter().map(|w| w.kind).collect()
    }

    const ENFORCE_LF: &str =
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

    #[test]
    fn rfc8461_example_with_lf_and_crlf() {
        let lf = parse_policy(ENFORCE_LF);
        let crlf = parse_policy(&ENFORCE_LF.replace('\n', "\r\n"));
        for p in [&lf, &crlf] {
            let pol = p.policy.as_ref().expect("valid");
            assert_eq!(pol.mode, MtaStsMode::Enforce);
            assert_eq!(pol.max_age, 604_800);
            assert_eq!(
                pol.mx,
                ["mail.example.com", "*.example.net", "backupmx.example.com"]
            );
            assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        }
        // No final newline: the trailing delimiter is optional.
        let p = parse_policy(ENFORCE_LF.trim_end());
        assert!(p.policy.is_ok() && p.warnings.is_empty());
    }

    #[test]
    fn mixed_line_endings_are_valid_but_noted() {
        let p = parse_policy("version: STSv1\r\nmode: testing\nmx: a.example\r\nmax_age: 1\n");
        assert_eq!(p.policy.clone().expect("valid").mode, MtaStsMode::Testing);
        assert!(kinds(&p).contains(&WarningKind::MixedLineEndings));
    }

    #[test]
    fn testing_and_none() {
        let t = parse_policy("version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 0\n");
        let t = t.policy.expect("testing");
        assert_eq!((t.mode, t.max_age), (MtaStsMode::Testing, 0));
        let n = parse_policy("version: STSv1\nmode: none\nmax_age: 86400\n");
        let n = n.policy.expect("none without mx is valid");
        assert_eq!(n.mode, MtaStsMode::None);
        assert!(n.mx.is_empty());
    }

    #[test]
    fn missing_mx_is_invalid_unless_mode_none() {
        let p = parse_policy("version: STSv1\nmode: enforce\nmax_age: 86400\n");
        assert_eq!(p.policy, Err(PolicyError::MissingMx(MtaStsMode::Enforce)));
        let p =
            parse_policy("version: STSv1\nmode: testing\nmx: bad_host.example\nmax_age: 86400\n");
        assert_eq!(p.policy, Err(PolicyError::MissingMx(MtaStsMode::Testing)));
        assert_eq!(kinds(&p), [WarningKind::InvalidMx]);
    }

    #[test]
    fn max_age_bounds() {
        let body =
            |v: &str| format!("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: {v}\n");
        assert_eq!(
            parse_policy(&body("31557600")).policy.map(|p| p.max_age),
            Ok(MAX_AGE_LIMIT)
        );
        assert_eq!(
            parse_policy(&body("31557601")).policy,
            Err(PolicyError::MaxAgeOutOfRange(31_557_601))
        );
        assert_eq!(
            parse_policy(&body("99999999999")).policy,
            Err(PolicyError::BadMaxAge("99999999999".into()))
        );
        for bad in ["-1", "+5", "1.5", "", "1 day", "0x10"] {
            assert!(
                matches!(
                    parse_policy(&body(bad)).policy,
                    Err(PolicyError::BadMaxAge(_))
                ),
                "{bad:?}"
            );
        }
        let p = parse_policy("version: STSv1\nmode: enforce\nmx: a.example\n");
        assert_eq!(p.policy, Err(PolicyError::MissingMaxAge));
    }

    #[test]
    fn unknown_or_wrong_case_mode_and_version() {
        let p = parse_policy("version: STSv1\nmode: reject\nmx: a.example\nmax_age: 1\n");
        assert_eq!(p.policy, Err(PolicyError::BadMode("reject".into())));
        let p = parse_policy("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n");
        assert_eq!(p.policy, Err(PolicyError::BadMode("Enforce".into())));
        let p = parse_policy("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n");
        assert_eq!(p.policy, Err(PolicyError::BadVersion("STSv2".into())));
        let p = parse_policy("mode: enforce\nmx: a.example\nmax_age: 1\n");
        assert_eq!(p.policy, Err(PolicyError::MissingVersion));
        let p = parse_policy("version: STSv1\nMode: enforce\nmx: a.example\nmax_age: 1\n");
        assert_eq!(p.policy, Err(PolicyError::MissingMode));
        assert_eq!(kinds(&p), [WarningKind::KeyCase]);
        assert_eq!(parse_policy("").policy, Err(PolicyError::MissingVersion));
    }

    #[test]
    fn extra_whitespace_is_tolerated() {
        let p = parse_policy(
            "version:STSv1  \nmode:\t enforce\t\n  mx : mail.example.com\nmax_age:   86400 \n",
        );
        let pol = p.policy.clone().expect("valid");
        assert_eq!((pol.mode, pol.max_age), (MtaStsMode::Enforce, 86400));
        assert_eq!(pol.mx, ["mail.example.com"]);
        // Only the whitespace around the key is outside the ABNF.
        assert_eq!(kinds(&p), [WarningKind::KeyWhitespace]);
    }

    #[test]
    fn junk_blank_repeated_and_unknown() {
        let p = parse_policy(
            "version: STSv1\n\nthis is junk\nmode: testing\nmode: enforce\nfoo: bar\nmx: a.example\nmax_age: 5\nmax_age: 6\n",
        );
        let pol = p.policy.clone().expect("valid");
        assert_eq!((pol.mode, pol.max_age), (MtaStsMode::Testing, 5));
        assert_eq!(
            kinds(&p),
            [
                WarningKind::BlankLine,
                WarningKind::JunkLine,
                WarningKind::RepeatedKey,
                WarningKind::RepeatedKey
            ]
        );
        assert_eq!(
            p.warnings[1].to_string(),
            "junk_line: line 3: \"this is junk\""
        );
    }

    #[test]
    fn mx_values() {
        let p = parse_policy(
            "version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmx: MX.Example.COM.\nmx: *.*.example\nmx: mail example\nmax_age: 5\n",
        );
        let pol = p.policy.clone().expect("valid");
        assert_eq!(pol.mx, ["192.0.2.1", "MX.Example.COM"]);
        assert_eq!(
            kinds(&p),
            [
                WarningKind::IpInMx,
                WarningKind::MxTrailingDot,
                WarningKind::InvalidMx,
                WarningKind::InvalidMx
            ]
        );
        assert_eq!(
            pol.matching_pattern("mx.example.com"),
            Some("MX.Example.COM")
        );
    }

    #[test]
    fn bom_and_mode_none_with_mx() {
        let p = parse_policy("\u{feff}version: STSv1\nmode: none\nmx: a.example\nmax_age: 5\n");
        assert!(p.policy.is_ok());
        assert_eq!(
            kinds(&p),
            [WarningKind::ByteOrderMark, WarningKind::MxWithModeNone]
        );
    }

    #[test]
    fn wildcard_matching() {
        assert!(mx_pattern_matches("*.example.com", "mx1.example.com"));
        assert!(mx_pattern_matches("*.example.com", "MX1.EXAMPLE.COM."));
        assert!(!mx_pattern_matches("*.example.com", "example.com"));
        assert!(!mx_pattern_matches("*.example.com", "a.b.example.com"));
        assert!(!mx_pattern_matches("*.example.com", ".example.com"));
        assert!(!mx_pattern_matches("*.example.com", "mx1.example.com.evil"));
        assert!(!mx_pattern_matches("*.example.com", "mx1example.com"));
        assert!(mx_pattern_matches("mail.example.com", "Mail.Example.Com"));
        assert!(!mx_pattern_matches("mail.example.com", "mail2.example.com"));
        assert!(!mx_pattern_matches(
            "mail.example.com",
            "x.mail.example.com"
        ));
        assert!(!mx_pattern_matches("", "a"));
        assert!(!mx_pattern_matches("*.", "a."));
    }

    #[test]
    fn logged_patterns_are_bounded() {
        let all = |n: usize, len: usize| -> Vec<String> {
            (0..n)
                .map(|i| format!("{i:0>width$}.example", width = len))
                .collect()
        };
        // A few short patterns: all of them, nothing left out.
        let few = all(3, 2);
        assert_eq!(
            mx_patterns_for_log(&few),
            "00.example,01.example,02.example"
        );
        // Thousands: at most MAX_LOGGED_PATTERNS named, the rest counted.
        let many = all(5000, 4);
        let line = mx_patterns_for_log(&many);
        assert_eq!(line.split(',').count(), MAX_LOGGED_PATTERNS);
        assert!(line.ends_with(&format!(" (+{} more)", 5000 - MAX_LOGGED_PATTERNS)));
        // Long patterns: the character cap stops earlier, and says how many are missing.
        let long = all(20, 60);
        let line = mx_patterns_for_log(&long);
        let (named, more) = line.split_once(" (+").expect("count of the rest");
        assert!(named.len() <= MAX_LOGGED_PATTERN_CHARS, "{}", named.len());
        let shown = named.split(',').count();
        assert!(shown < MAX_LOGGED_PATTERNS);
        assert_eq!(more, format!("{} more)", 20 - shown));
        // One pattern longer than the cap on its own (not a valid host name, but bounded too).
        let huge = vec!["é".repeat(1000)];
        let line = mx_patterns_for_log(&huge);
        assert!(
            line.len() <= MAX_LOGGED_PATTERN_CHARS + '…'.len_utf8(),
            "{}",
            line.len()
        );
        assert!(!line.contains("more"));
        assert_eq!(mx_patterns_for_log(&[]), "");
    }
}
