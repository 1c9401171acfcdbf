//! The canary's side of an SMTP session as a state machine with no I/O.
//!
//! The driver splits what the client sends into lines (LF-terminated, CR optional), hands
//! each to [`ServerSession::on_line`] and performs the returned [`ServerAction`]. Every reply
//! comes from [`CannedReplies`], so the bytes a client should see are known in advance.

use crate::expect::CannedReplies;

/// Commands accepted per session before the canary ends it (a probe needs five).
pub const MAX_COMMANDS: usize = 32;

/// Reply when [`MAX_COMMANDS`] is exceeded.
pub const TOO_MANY: &[u8] = b"421 4.7.0 Too many commands, closing\r\n";

/// Reply to a command line longer than the driver's cap (RFC 5321 §4.2.2 code 500).
pub const LINE_TOO_LONG: &[u8] = b"500 5.5.2 Line too long, closing\r\n";

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAction {
    /// Send these bytes and read the next line.
    Reply(Vec<u8>),
    /// Send these bytes (the 220 to STARTTLS), drop any bytes already buffered (RFC 3207 §4.2:
    /// nothing sent before the handshake may be acted on), then run the TLS handshake.
    ReplyThenTls(Vec<u8>),
    /// Send these bytes, then close.
    ReplyThenClose(Vec<u8>),
}

/// One client session.
#[derive(Debug, Clone)]
pub struct ServerSession {
    replies: CannedReplies,
    in_tls: bool,
    commands: usize,
}

impl ServerSession {
    /// A session; `implicit_tls` when TLS was established before the greeting (port 465).
    pub fn new(replies: CannedReplies, implicit_tls: bool) -> Self {
        ServerSession {
            replies,
            in_tls: implicit_tls,
            commands: 0,
        }
    }

    /// The greeting bytes.
    pub fn greeting(&self) -> Vec<u8> {
        self.replies.greeting.clone().into_bytes()
    }

    /// TLS is active.
    pub fn in_tls(&self) -> bool {
        self.in_tls
    }

    /// Call once the STARTTLS handshake completed.
    pub fn on_tls_established(&mut self) {
        self.in_tls = true;
    }

    /// One command line, without its line end.
    pub fn on_line(&mut self, line: &[u8]) -> ServerAction {
        self.commands += 1;
        if self.commands > MAX_COMMANDS {
            return ServerAction::ReplyThenClose(TOO_MANY.to_vec());
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb = line[..verb_end].to_ascii_uppercase();
        let r = &self.replies;
        let reply = |s: &String| ServerAction::Reply(s.clone().into_bytes());
        match verb.as_slice() {
            b"EHLO" if self.in_tls => reply(&r.ehlo_tls),
            b"EHLO" => reply(&r.ehlo),
            b"HELO" => reply(&r.helo),
            b"STARTTLS" if self.in_tls => reply(&r.bad_sequence),
            b"STARTTLS" => ServerAction::ReplyThenTls(r.starttls.clone().into_bytes()),
            b"QUIT" => ServerAction::ReplyThenClose(r.quit.clone().into_bytes()),
            b"NOOP" | b"RSET" => reply(&r.ok),
            b"MAIL" | b"RCPT" | b"DATA" | b"BDAT" => reply(&r.refuse_mail),
            _ => reply(&r.unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(a: &ServerAction) -> String {
        match a {
            ServerAction::Reply(b)
            | ServerAction::ReplyThenTls(b)
            | ServerAction::ReplyThenClose(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }

    #[test]
    fn probe_dialogue_gets_the_canned_bytes() {
        let r = CannedReplies::default();
        let mut s = ServerSession::new(r.clone(), false);
        assert_eq!(s.greeting(), r.greeting.as_bytes());
        assert_eq!(
            s.on_line(b"EHLO probe.example\r"),
            ServerAction::Reply(r.ehlo.clone().into_bytes())
        );
        assert_eq!(
            s.on_line(b"starttls"),
            ServerAction::ReplyThenTls(r.starttls.clone().into_bytes())
        );
        s.on_tls_established();
        assert_eq!(text(&s.on_line(b"EHLO probe.example")), r.ehlo_tls);
        assert_eq!(text(&s.on_line(b"STARTTLS")), r.bad_sequence);
        assert_eq!(
            s.on_line(b"QUIT"),
            ServerAction::ReplyThenClose(r.quit.into_bytes())
        );
    }

    #[test]
    fn mail_is_refused_and_rewritten_commands_are_unknown() {
        let r = CannedReplies::default();
        let mut s = ServerSession::new(r.clone(), false);
        for cmd in [&b"MAIL FROM:<a@b>"[..], b"RCPT TO:<c@d>", b"DATA"] {
            assert_eq!(text(&s.on_line(cmd)), r.refuse_mail);
        }
        assert_eq!(text(&s.on_line(b"XXXXXXXA")), r.unknown);
        assert_eq!(text(&s.on_line(b"")), r.unknown);
    }

    #[test]
    fn implicit_tls_sessions_never_offer_starttls_and_sessions_are_bounded() {
        let r = CannedReplies::default();
        let mut s = ServerSession::new(r.clone(), true);
        assert_eq!(text(&s.on_line(b"EHLO x")), r.ehlo_tls);
        for _ in 1..MAX_COMMANDS {
            assert!(matches!(s.on_line(b"NOOP"), ServerAction::Reply(_)));
        }
        assert_eq!(
            s.on_line(b"NOOP"),
            ServerAction::ReplyThenClose(TOO_MANY.to_vec())
        );
    }
}
