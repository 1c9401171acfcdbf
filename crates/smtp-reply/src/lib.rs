//! SMTP reply parsing (RFC 5321 §4.2): bounded, lenient about line endings, strict about codes.
//!
//! What it does: [`ReplyParser`] is fed raw bytes as they arrive and yields complete
//! [`Reply`]s. It never holds more than `max_line` bytes of an unfinished line nor more than
//! `max_reply` bytes of an unfinished reply, so a hostile peer cannot make it grow without
//! bound. [`ehlo_keywords`] and [`advertises_starttls`] read an EHLO reply.
//!
//! What it does not: any I/O, timeouts or the dialogue (the SMTP client in `mxray-smtp`
//! drives it; the canary server checks its canned replies with it), nor parse commands.
//! It is its own crate so that a server can check replies without linking the client.
//!
//! Main types: [`ReplyParser`], [`Reply`], [`ReplyError`]. `mxray_smtp::reply` re-exports
//! this crate.

use std::fmt;

/// One complete SMTP reply: a three-digit code and its text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code (e.g. 250): that of the last line, which ends the reply. When the lines
    /// of a multi-line reply disagree, this is what Postfix's client reads too (`smtp_chat.c`
    /// takes the code of the final line).
    pub code: u16,
    /// The text of each line after the code and separator, lossy UTF-8, without CRLF.
    pub lines: Vec<String>,
    /// The raw bytes of the reply as received, line endings included.
    pub raw: Vec<u8>,
}

impl Reply {
    /// The reply a server sends as `lines` under `code`: what [`ReplyParser`] would return for
    /// those lines on the wire (raw bytes included). For servers, fixtures and tests.
    pub fn from_lines(code: u16, lines: &[&str]) -> Reply {
        let mut reply = Reply {
            code,
            lines: lines.iter().map(|l| (*l).to_owned()).collect(),
            raw: Vec::new(),
        };
        reply.raw = format!("{}\r\n", reply.display_lines()).into_bytes();
        reply
    }

    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The text of all lines joined with a space.
    pub fn text(&self) -> String {
        self.lines.join(" ")
    }

    /// The reply as `code text` lines joined with CRLF, as it appeared on the wire modulo
    /// invalid UTF-8: what `banner` records.
    pub fn display_lines(&self) -> String {
        let n = self.lines.len();
        let mut out = String::new();
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                out.push_str("\r\n");
            }
            let sep = if i + 1 == n { ' ' } else { '-' };
            out.push_str(&format!("{}{}{}", self.code, sep, l));
        }
        out
    }

    /// The raw bytes as lossy UTF-8.
    pub fn raw_lossy(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// Why the byte stream is not a valid sequence of replies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line longer than the configured maximum (without its end).
    #[error("reply line longer than {max} bytes")]
    LineTooLong {
        /// The cap.
        max: usize,
    },
    /// A multi-line reply larger than the configured maximum.
    #[error("reply larger than {max} bytes")]
    ReplyTooLarge {
        /// The cap.
        max: usize,
    },
    /// A line that does not start with a three-digit code and a separator.
    #[error("malformed reply line: {0}")]
    Malformed(String),
}

/// Incremental reply parser with hard size limits.
///
/// It accepts what Postfix's SMTP client accepts: lines up to `max_line` bytes of text (line
/// ending not counted), multi-line replies whose lines carry different codes (the last line's
/// code is the reply's), bare `LF` endings and a bare code without text.
#[derive(Clone)]
pub struct ReplyParser {
    buf: Vec<u8>,
    max_line: usize,
    max_reply: usize,
    /// Lines of the reply in progress.
    pending: Vec<String>,
    pending_raw: Vec<u8>,
}

impl fmt::Debug for ReplyParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyParser")
            .field("buffered", &self.buf.len())
            .field("pending_lines", &self.pending.len())
            .finish()
    }
}

impl ReplyParser {
    /// A parser refusing lines over `max_line` bytes and replies over `max_reply` bytes.
    pub fn new(max_line: usize, max_reply: usize) -> Self {
        ReplyParser {
            buf: Vec::new(),
            max_line: max_line.max(8),
            max_reply: max_reply.max(8),
            pending: Vec::new(),
            pending_raw: Vec::new(),
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet consumed by a reply (e.g. what followed a `220` to
    /// STARTTLS, which belongs to the TLS handshake). Empties the parser.
    pub fn take_unconsumed(&mut self) -> Vec<u8> {
        self.pending.clear();
        let mut out = std::mem::take(&mut self.pending_raw);
        out.append(&mut self.buf);
        out
    }

    /// How many bytes are buffered (partial lines included).
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.pending_raw.len()
    }

    /// Every reply complete in the bytes fed so far, in order. An error ends the list (a
    /// reader stops at the first bad reply: what follows it cannot be framed).
    pub fn complete_replies(&mut self) -> Vec<Result<Reply, ReplyError>> {
        let mut out = Vec::new();
        loop {
            match self.next_reply() {
                Ok(Some(r)) => out.push(Ok(r)),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }

    /// The next complete reply, `Ok(None)` when more bytes are needed.
    pub fn next_reply(&mut self) -> Result<Option<Reply>, ReplyError> {
        loop {
            // A line may hold `max_line` bytes of text plus its CR LF.
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > self.max_line + 1 {
                    return Err(ReplyError::LineTooLong { max: self.max_line });
                }
                return Ok(None);
            };
            let text_len = if nl > 0 && self.buf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            if text_len > self.max_line {
                return Err(ReplyError::LineTooLong { max: self.max_line });
            }
            let raw_line: Vec<u8> = self.buf.drain(..=nl).collect();
            if self.pending_raw.len() + raw_line.len() > self.max_reply {
                return Err(ReplyError::ReplyTooLarge {
                    max: self.max_reply,
                });
            }
            let mut line = &raw_line[..raw_line.len() - 1];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            let (code, last, text) = parse_line(line)?;
            self.pending.push(text);
            self.pending_raw.extend_from_slice(&raw_line);
            if last {
                return Ok(Some(Reply {
                    code,
                    lines: std::mem::take(&mut self.pending),
                    raw: std::mem::take(&mut self.pending_raw),
                }));
            }
        }
    }
}

/// Parses `DDD[ -]text` (or a bare `DDD`). Returns code, whether it is the last line, text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), ReplyError> {
    let malformed = || {
        let shown: String = String::from_utf8_lossy(&line[..line.len().min(64)])
            .chars()
            .map(|c| if c.is_control() { '.' } else { c })
            .collect();
        ReplyError::Malformed(shown)
    };
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err(malformed());
    }
    if !(b'2'..=b'5').contains(&line[0]) {
        return Err(malformed());
    }
    let code = u16::from(line[0] - b'0') * 100
        + u16::from(line[1] - b'0') * 10
        + u16::from(line[2] - b'0');
    let (last, rest) = match line.get(3) {
        None => (true, &line[3..3]),
        Some(b' ') => (true, &line[4..]),
        Some(b'-') => (false, &line[4..]),
        Some(_) => return Err(malformed()),
    };
    Ok((code, last, String::from_utf8_lossy(rest).into_owned()))
}

/// EHLO keywords of a 250 reply (RFC 5321 §4.1.1.1): every line after the first (which is
/// the server's name and greeting), upper-cased keyword followed by its parameters as sent,
/// whitespace normalised to single spaces. Empty lines are skipped.
pub fn ehlo_keywords(reply: &Reply) -> Vec<String> {
    reply
        .lines
        .iter()
        .skip(1)
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let kw = words.next()?.to_ascii_uppercase();
            let params: Vec<&str> = words.collect();
            Some(if params.is_empty() {
                kw
            } else {
                format!("{kw} {}", params.join(" "))
            })
        })
        .collect()
}

/// Whether `STARTTLS` is among the keywords (exactly, case-insensitively).
pub fn advertises_starttls(keywords: &[String]) -> bool {
    keywords
        .iter()
        .any(|k| k.split(' ').next() == Some("STARTTLS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Vec<Result<Reply, ReplyError>> {
        let mut p = ReplyParser::new(512, 4096);
        p.feed(bytes);
        p.complete_replies()
    }

    #[test]
    fn single_and_multiline_replies() {
        let r = parse_all(
            b"220 mx.example ESMTP\r\n250-mx.example\r\n250-SIZE 100\r\n250 STARTTLS\r\n",
        );
        assert_eq!(r.len(), 2);
        let greet = r[0].as_ref().expect("greeting");
        assert_eq!(greet.code, 220);
        assert_eq!(greet.lines, vec!["mx.example ESMTP"]);
        let ehlo = r[1].as_ref().expect("ehlo");
        assert_eq!(ehlo.code, 250);
        assert_eq!(ehlo.lines.len(), 3);
        assert_eq!(ehlo_keywords(ehlo), vec!["SIZE 100", "STARTTLS"]);
        assert_eq!(
            ehlo.raw,
            b"250-mx.example\r\n250-SIZE 100\r\n250 STARTTLS\r\n"
        );
        assert!(advertises_starttls(&ehlo_keywords(ehlo)));
    }

    #[test]
    fn reply_split_across_segments_byte_by_byte() {
        let wire = b"250-a.example\r\n250-PIPELINING\r\n250 starttls\r\n";
        let mut p = ReplyParser::new(512, 4096);
        let mut got = None;
        for b in wire.iter() {
            assert!(got.is_none(), "reply complete before its last line");
            p.feed(&[*b]);
            got = p.next_reply().expect("valid");
        }
        let r = got.expect("complete");
        assert_eq!(ehlo_keywords(&r), vec!["PIPELINING", "STARTTLS"]);
    }

    #[test]
    fn bare_lf_and_bare_code_are_accepted() {
        let r = parse_all(b"250\n");
        let reply = r[0].as_ref().expect("ok");
        assert_eq!(
            (reply.code, reply.lines.clone()),
            (250, vec![String::new()])
        );
    }

    #[test]
    fn long_line_is_refused_before_its_end_arrives() {
        let mut p = ReplyParser::new(512, 4096);
        p.feed(b"220 ");
        p.feed(&[b'a'; 600]);
        assert_eq!(p.next_reply(), Err(ReplyError::LineTooLong { max: 512 }));
    }

    #[test]
    fn large_multiline_reply_is_refused() {
        let mut wire = Vec::new();
        for _ in 0..200 {
            wire.extend_from_slice(b"250-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\n");
        }
        let r = parse_all(&wire);
        assert_eq!(
            r.last(),
            Some(&Err(ReplyError::ReplyTooLarge { max: 4096 }))
        );
    }

    #[test]
    fn garbage_and_mixed_codes_are_malformed() {
        assert!(matches!(
            parse_all(b"\x16\x03\x01\x02\x00\r\n")[0],
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_all(b"HTTP/1.1 400\r\n")[0],
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_all(b"199 x\r\n")[0],
            Err(ReplyError::Malformed(_))
        ));
        assert!(matches!(
            parse_all(b"250x\r\n")[0],
            Err(ReplyError::Malformed(_))
        ));
    }

    #[test]
    fn mixed_codes_in_a_multiline_reply_take_the_last_code_as_postfix_does() {
        // Postfix smtp_chat.c: continuation lines may carry any code; the final line's code
        // is the reply's.
        let r = parse_all(b"250-mx.example\r\n251-SIZE 100\r\n250 STARTTLS\r\n");
        let ehlo = r[0].as_ref().expect("accepted");
        assert_eq!(ehlo.code, 250);
        assert_eq!(ehlo_keywords(ehlo), vec!["SIZE 100", "STARTTLS"]);
        let r = parse_all(b"220-mx.example ESMTP\r\n250 ready\r\n");
        assert_eq!(r[0].as_ref().map(|g| g.code), Ok(250));
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_accepted_with_its_crlf() {
        let mut wire = b"250 ".to_vec();
        wire.extend(std::iter::repeat_n(b'a', 508));
        assert_eq!(wire.len(), 512);
        // Fed in two parts: the CR arrives before the LF and must not trip the cap.
        let mut p = ReplyParser::new(512, 4096);
        p.feed(&wire);
        p.feed(b"\r");
        assert_eq!(p.next_reply(), Ok(None));
        p.feed(b"\n");
        assert_eq!(p.next_reply().map(|r| r.map(|r| r.code)), Ok(Some(250)));
        let mut p = ReplyParser::new(512, 4096);
        wire.push(b'a');
        p.feed(&wire);
        p.feed(b"\r\n");
        assert_eq!(p.next_reply(), Err(ReplyError::LineTooLong { max: 512 }));
    }

    #[test]
    fn unconsumed_bytes_after_a_reply_are_returned() {
        let mut p = ReplyParser::new(512, 4096);
        p.feed(b"220 go ahead\r\n\x16\x03\x03");
        assert_eq!(p.next_reply().expect("ok").map(|r| r.code), Some(220));
        assert_eq!(p.take_unconsumed(), b"\x16\x03\x03");
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn starttls_must_be_the_whole_keyword() {
        assert!(!advertises_starttls(&[
            "XSTARTTLS".into(),
            "STARTTLSX".into()
        ]));
        assert!(advertises_starttls(&["STARTTLS".into()]));
    }
}
