//! Reading the domain list: plain lists or Tranco-style `rank,domain` CSV, normalised, de-duplicated,
//! junk recorded with its line number.
//!
//! Pure over any `BufRead`: the caller supplies the file or stdin. Lines are capped at
//! [`MAX_LINE`] bytes so a hostile input (one endless line) costs bounded memory.

use crate::recent::RecentSet;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead};

use sha2::{Digest, Sha256};

/// Longest input line kept; longer lines are rejected (a domain name is at most 253 bytes).
pub const MAX_LINE: usize = 4096;

/// Why an input line was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// 1-based line number.
    pub line: u64,
    /// The offending text (capped at 200 bytes).
    pub text: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

/// One item of the input stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputItem {
    /// A new, normalised domain (lower-case A-labels, no trailing dot).
    Domain(String),
    /// A line that is not a domain.
    Junk(InputError),
}

/// Normalises one domain name: trims, strips one trailing dot, maps Unicode names to A-labels
/// (UTS #46 / IDNA 2008 as the `idna` crate implements it), lower-cases, and checks the
/// host-name syntax of RFC 1123 (letters, digits, hyphens; labels 1-63; at least two labels;
/// total at most 253). Underscore labels are refused: they are not mail domains.
pub fn normalise_domain(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim();
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() {
        return Err("empty name");
    }
    let ascii = if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(s).map_err(|_| "not a valid internationalised domain name")?
    };
    if ascii.len() > 253 {
        return Err("name longer than 253 bytes");
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 {
        return Err("not a fully qualified name (one label)");
    }
    for l in &labels {
        if l.is_empty() {
            return Err("empty label");
        }
        if l.len() > 63 {
            return Err("label longer than 63 bytes");
        }
        if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("characters other than letters, digits and hyphens");
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err("label starts or ends with a hyphen");
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("numeric top-level label (an IP address?)");
    }
    Ok(ascii)
}

/// Extracts the name from a line: a plain name, or the second field of `rank,domain` CSV.
/// Comments (`#`) and blank lines give `None`.
fn name_of_line(line: &str) -> Option<&str> {
    let line = line.trim_start_matches('\u{feff}').trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    match line.split_once(',') {
        Some((rank, rest)) if rank.trim().bytes().all(|b| b.is_ascii_digit()) => {
            Some(rest.split(',').next().unwrap_or("").trim())
        }
        _ => Some(line),
    }
}

/// A streaming reader of domains from plain or Tranco CSV input.
///
/// De-duplication keeps a 64-bit hash per distinct domain, not the names, and only of the last
/// [`DEDUP_WINDOW`] distinct domains ([`crate::recent::RecentSet`]), so its memory (about 20 MB
/// at most) does not grow with the input: a duplicate further apart than that is scanned (and
/// written) again. Tranco lists have no duplicates; sort other inputs if that matters. A 64-bit
/// collision within the window would drop a domain: about one chance in 10^6.
#[derive(Debug)]
pub struct DomainReader<R> {
    inner: R,
    line_no: u64,
    seen: RecentSet<u64>,
    sha: Sha256,
    buf: Vec<u8>,
    duplicates: u64,
}

/// How many distinct domains de-duplication remembers (see [`DomainReader`]).
pub const DEDUP_WINDOW: usize = 1 << 21;

/// A fixed-key hasher so de-duplication is deterministic across runs.
#[derive(Debug, Clone, Default)]
pub struct FixedState;

impl BuildHasher for FixedState {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

/// FNV-1a, 64 bit.
#[derive(Debug, Clone)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn hash_name(name: &str) -> u64 {
    // Two different FNV passes folded together would be overkill; SHA-256 is cheap enough at
    // input rates and has no adversarial collisions.
    let d = Sha256::digest(name.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

impl<R: BufRead> DomainReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        DomainReader {
            inner,
            line_no: 0,
            seen: RecentSet::new(DEDUP_WINDOW),
            sha: Sha256::new(),
            buf: Vec::with_capacity(256),
            duplicates: 0,
        }
    }

    /// SHA-256 (hex) of every byte read so far; after the last item, of the whole input.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha.clone().finalize())
    }

    /// Lines that repeated an earlier domain.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Reads one line into `buf`, at most [`MAX_LINE`] bytes kept; returns (bytes read, overlong).
    fn read_line(&mut self) -> io::Result<(usize, bool)> {
        self.buf.clear();
        let mut total = 0usize;
        let mut overlong = false;
        loop {
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok((total, overlong));
            }
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            self.sha.update(&chunk[..take]);
            let room = MAX_LINE.saturating_sub(self.buf.len());
            if take > room {
                overlong = true;
            }
            self.buf.extend_from_slice(&chunk[..take.min(room)]);
            total += take;
            self.inner.consume(take);
            if done {
                return Ok((total, overlong));
            }
        }
    }

    /// The next new domain or junk line; `None` at the end of the input.
    pub fn next_item(&mut self) -> io::Result<Option<InputItem>> {
        loop {
            let (n, overlong) = self.read_line()?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            let junk = |reason| {
                let mut t: String = text.trim_end().chars().take(200).collect();
                if t.len() > 200 {
                    t.truncate(200);
                }
                InputItem::Junk(InputError {
                    line: self.line_no,
                    text: t,
                    reason,
                })
            };
            if overlong {
                return Ok(Some(junk("line longer than 4096 bytes")));
            }
            let Some(name) = name_of_line(&text) else {
                continue;
            };
            match normalise_domain(name) {
                Ok(d) => {
                    if self.seen.insert(hash_name(&d)) {
                        return Ok(Some(InputItem::Domain(d)));
                    }
                    self.duplicates += 1;
                }
                Err(reason) => return Ok(Some(junk(reason))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &str) -> (Vec<String>, Vec<InputError>) {
        let mut r = DomainReader::new(input.as_bytes());
        let (mut ok, mut bad) = (vec![], vec![]);
        while let Some(item) = r.next_item().expect("read") {
            match item {
                InputItem::Domain(d) => ok.push(d),
                InputItem::Junk(e) => bad.push(e),
            }
        }
        (ok, bad)
    }

    #[test]
    fn plain_and_tranco_csv_normalised_and_deduplicated() {
        let input = "\u{feff}1,Google.com\n2,example.ORG.\n# comment\n\nexample.org\nbücher.example\n3,google.com\n";
        let (ok, bad) = read_all(input);
        assert_eq!(
            ok,
            vec!["google.com", "example.org", "xn--bcher-kva.example"]
        );
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn junk_lines_have_line_numbers_and_reasons() {
        let input = "good.example\nnot a domain\n192.168.1.1\nlocalhost\n-bad-.example\na..b\n";
        let (ok, bad) = read_all(input);
        assert_eq!(ok, vec!["good.example"]);
        let lines: Vec<u64> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert_eq!(bad[1].reason, "numeric top-level label (an IP address?)");
    }

    #[test]
    fn overlong_line_is_junk_and_bounded() {
        let long = "a".repeat(100_000);
        let input = format!("x.example\n{long}\ny.example");
        let (ok, bad) = read_all(&input);
        assert_eq!(ok, vec!["x.example", "y.example"]);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 2);
        assert!(bad[0].text.len() <= 200);
    }

    #[test]
    fn checksum_covers_the_whole_input() {
        let input = "a.example\nb.example\n";
        let mut r = DomainReader::new(input.as_bytes());
        while r.next_item().expect("read").is_some() {}
        assert_eq!(
            r.sha256_hex(),
            hex::encode(Sha256::digest(input.as_bytes()))
        );
    }
}
