//! Conversions every record writer needs: durations in whole milliseconds and text cut to a
//! byte cap, both saturating instead of failing.

use std::time::Duration;

/// `d` in whole milliseconds, `u32::MAX` when longer (49 days: never a real session).
pub fn millis(d: Duration) -> u32 {
    saturating_u32(d.as_millis())
}

/// `n` as a `u32`, `u32::MAX` when larger.
pub fn saturating_u32(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// `s` cut to at most `max` bytes, on a character boundary (never splits a UTF-8 sequence).
pub fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// [`cap`] of an owned string, without copying when it fits.
pub fn cap_owned(mut s: String, max: usize) -> String {
    let end = cap(&s, max).len();
    s.truncate(end);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_truncate_and_saturate() {
        assert_eq!(millis(Duration::from_micros(1999)), 1);
        assert_eq!(millis(Duration::from_secs(3)), 3000);
        assert_eq!(millis(Duration::from_secs(u64::MAX)), u32::MAX);
        assert_eq!(saturating_u32(5usize), 5);
        assert_eq!(saturating_u32(u64::MAX), u32::MAX);
    }

    #[test]
    fn caps_cut_on_character_boundaries() {
        assert_eq!(cap("abc", 3), "abc");
        assert_eq!(cap("abcd", 3), "abc");
        // "é" is two bytes: a cap inside it keeps the character out.
        assert_eq!(cap("aé", 2), "a");
        assert_eq!(cap("", 0), "");
        assert_eq!(cap_owned("aéb".to_owned(), 3), "aé");
        assert_eq!(cap_owned("x".repeat(10), 4), "xxxx");
    }
}
