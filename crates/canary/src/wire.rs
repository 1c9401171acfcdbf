//! Raw bytes as readable, lossless text: the escaping used for every byte stream in logs and
//! reports.
//!
//! Printable ASCII stays as is, except `\` which becomes `\\`; CR, LF and TAB become `\r`,
//! `\n`, `\t`; every other byte becomes `\xNN` (lower-case hex). [`unescape`] inverts
//! [`escape`] exactly, so a JSON log line can be compared byte for byte with what a probe
//! sent. The [`text`] module plugs this into serde (`#[serde(with = "wire::text")]`).

/// Why an escaped string does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad escape at byte {offset} of escaped text")]
pub struct UnescapeError {
    /// Offset into the escaped text.
    pub offset: usize,
}

/// Escapes `bytes` (see the module documentation).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Decodes what [`escape`] produced.
pub fn unescape(text: &str) -> Result<Vec<u8>, UnescapeError> {
    let s = text.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let bad = UnescapeError { offset: i };
        match s.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).ok_or(bad.clone())?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad.clone())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad)?);
                i += 4;
                continue;
            }
            _ => return Err(bad),
        }
        i += 2;
    }
    Ok(out)
}

/// Serde adapter: `Vec<u8>` as escaped text.
pub mod text {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes bytes as escaped text.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::escape(bytes))
    }

    /// Deserializes escaped text into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let t = String::deserialize(d)?;
        super::unescape(&t).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_is_readable_and_lossless() {
        let raw: Vec<u8> = b"250-STARTTLS\r\n\\ok\t\x16\x03\x01\xff".to_vec();
        let t = escape(&raw);
        assert_eq!(t, "250-STARTTLS\\r\\n\\\\ok\\t\\x16\\x03\\x01\\xff");
        assert_eq!(unescape(&t).expect("valid"), raw);
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(unescape(&escape(&all)).expect("valid"), all);
    }

    #[test]
    fn bad_escapes_are_refused() {
        assert_eq!(unescape("ab\\q"), Err(UnescapeError { offset: 2 }));
        assert_eq!(unescape("\\x4"), Err(UnescapeError { offset: 0 }));
        assert_eq!(unescape("\\xzz"), Err(UnescapeError { offset: 0 }));
        assert_eq!(unescape("end\\"), Err(UnescapeError { offset: 3 }));
    }
}
