//! Where two byte streams part ways: the pure comparison behind every tamper finding.

use serde::{Deserialize, Serialize};

use mxray_canary::wire::escape;

/// Bytes of context shown before the first differing byte (at most back to its line start).
const BEFORE: usize = 48;
/// Bytes of context shown from the first differing byte on.
const AFTER: usize = 64;

/// How the actual stream differs from the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceKind {
    /// Both streams have a byte at `offset` and the bytes differ: content was rewritten.
    Differ,
    /// The actual stream stops at `offset`, a strict prefix of the expected one: the session
    /// ended early (timeout, reset), which alone is not proof of tampering.
    Truncated,
    /// The expected stream is a strict prefix of the actual one: bytes were added.
    Extra,
}

/// The first place where `actual` differs from `expected`, with both sides' bytes around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// What kind of difference.
    pub kind: DivergenceKind,
    /// Offset (0-based) of the first differing byte; the common prefix is this long.
    pub offset: usize,
    /// Line (1-based, counted by LF) of that byte; the same in both streams since the prefix
    /// up to it is equal.
    pub line: usize,
    /// Byte column (1-based) of that byte within its line.
    pub column: usize,
    /// Expected bytes from a little before the offset (escaped, see [`mxray_canary::wire`]).
    pub expected: String,
    /// Actual bytes over the same window (escaped).
    pub actual: String,
    /// Offset in both streams where `expected` and `actual` start.
    pub context_start: usize,
    /// Length of the whole expected stream.
    pub expected_len: usize,
    /// Length of the whole actual stream.
    pub actual_len: usize,
}

/// Compares byte for byte; `None` when the streams are identical.
///
/// ```
/// use mxray_canary_probe::diverge::{diverge, DivergenceKind};
/// let d = diverge(b"250-SIZE 1\r\n250 STARTTLS\r\n", b"250-SIZE 1\r\n250 XXXXXXXA\r\n").unwrap();
/// assert_eq!((d.kind, d.offset, d.line, d.column), (DivergenceKind::Differ, 16, 2, 5));
/// assert_eq!(d.expected, "250 STARTTLS\\r\\n");
/// assert_eq!(d.actual, "250 XXXXXXXA\\r\\n");
/// ```
pub fn diverge(expected: &[u8], actual: &[u8]) -> Option<Divergence> {
    let offset = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    let kind = if offset < expected.len() && offset < actual.len() {
        DivergenceKind::Differ
    } else if expected.len() == actual.len() {
        return None;
    } else if actual.len() < expected.len() {
        DivergenceKind::Truncated
    } else {
        DivergenceKind::Extra
    };
    let prefix = &expected[..offset];
    let line = prefix.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = prefix
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = offset - line_start + 1;
    let context_start = line_start.max(offset.saturating_sub(BEFORE));
    let window = |s: &[u8]| -> String {
        let end = s.len().min(offset + AFTER);
        escape(s.get(context_start..end).unwrap_or_default())
    };
    Some(Divergence {
        kind,
        offset,
        line,
        column,
        expected: window(expected),
        actual: window(actual),
        context_start,
        expected_len: expected.len(),
        actual_len: actual.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_streams_do_not_diverge() {
        assert_eq!(diverge(b"", b""), None);
        assert_eq!(diverge(b"220 x\r\n", b"220 x\r\n"), None);
    }

    #[test]
    fn rewritten_keyword_is_located_by_line_and_column() {
        let exp = b"220 canary ESMTP\r\n250-canary\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
        let act = b"220 canary ESMTP\r\n250-canary\r\n250-PIPELINING\r\n250 XXXXXXXA\r\n";
        let d = diverge(exp, act).expect("differs");
        assert_eq!(d.kind, DivergenceKind::Differ);
        assert_eq!(d.line, 4);
        assert_eq!(d.column, 5);
        assert_eq!(&exp[d.offset..d.offset + 1], b"S");
        assert_eq!(d.expected, "250 STARTTLS\\r\\n");
        assert_eq!(d.actual, "250 XXXXXXXA\\r\\n");
        assert_eq!((d.expected_len, d.actual_len), (exp.len(), act.len()));
    }

    #[test]
    fn truncation_and_extra_bytes_are_told_apart() {
        let d = diverge(b"220 a\r\n250 b\r\n", b"220 a\r\n").expect("short");
        assert_eq!(
            (d.kind, d.offset, d.line, d.column),
            (DivergenceKind::Truncated, 7, 2, 1)
        );
        assert_eq!(d.actual, "");
        let d = diverge(b"220 a\r\n", b"220 a\r\n250 injected\r\n").expect("long");
        assert_eq!(d.kind, DivergenceKind::Extra);
        assert_eq!(d.actual, "250 injected\\r\\n");
    }

    #[test]
    fn context_is_bounded_on_long_lines() {
        let mut exp = vec![b'a'; 10_000];
        let mut act = exp.clone();
        act[5_000] = b'b';
        exp.extend_from_slice(b"\r\n");
        let d = diverge(&exp, &act).expect("differs");
        assert_eq!(d.offset, 5_000);
        assert_eq!(d.context_start, 5_000 - BEFORE);
        assert_eq!(d.expected.len(), BEFORE + AFTER);
        assert!(d.actual.starts_with(&"a".repeat(BEFORE)));
        assert_eq!(d.actual.as_bytes()[BEFORE], b'b');
    }
}
