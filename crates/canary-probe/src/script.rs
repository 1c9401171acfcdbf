//! The probe's side of the dialogue as a state machine with no I/O.
//!
//! Unlike the scanner's dialogue (`mxray_smtp::machine`), the canary probe sends `STARTTLS`
//! even when the EHLO reply does not advertise it: the target is our own canary, which always
//! offers it, and sending it is what reveals a path that rewrites the *client's* command too.
//! Order: greeting, `EHLO`, `STARTTLS`, (TLS) `EHLO`, `QUIT`; with implicit TLS: (TLS)
//! greeting, `EHLO`, `QUIT`. It never sends MAIL, RCPT or DATA. Its steps are the one
//! driver's ([`mxray_smtp::driver::Step`]); `crate::session` runs it there.

use mxray_smtp::driver::Step;
use mxray_smtp::reply::Reply;

/// What the probe waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeState {
    /// The greeting.
    ExpectGreeting,
    /// The reply to EHLO before TLS.
    ExpectEhlo,
    /// The reply to STARTTLS.
    ExpectStartTls,
    /// The TLS handshake (driven outside).
    ExpectTls,
    /// The reply to EHLO inside TLS.
    ExpectTlsEhlo,
    /// The reply to QUIT.
    ExpectQuit,
    /// Nothing more.
    Done,
}

/// The probe dialogue.
#[derive(Debug, Clone)]
pub struct ProbeScript {
    state: ProbeState,
    ehlo_name: String,
    implicit_tls: bool,
    in_tls: bool,
}

impl ProbeScript {
    /// A dialogue introducing itself as `ehlo_name`. With `implicit_tls` the driver runs the
    /// handshake first ([`ProbeScript::first_step`] says so) and then calls
    /// [`ProbeScript::on_tls`].
    pub fn new(ehlo_name: impl Into<String>, implicit_tls: bool) -> Self {
        ProbeScript {
            state: if implicit_tls {
                ProbeState::ExpectTls
            } else {
                ProbeState::ExpectGreeting
            },
            ehlo_name: ehlo_name.into(),
            implicit_tls,
            in_tls: false,
        }
    }

    /// The first step after connecting: read the greeting, or run TLS (implicit TLS).
    pub fn first_step(&self) -> Step {
        if self.implicit_tls {
            Step::StartTls
        } else {
            Step::Read
        }
    }

    /// The current state.
    pub fn state(&self) -> ProbeState {
        self.state
    }

    /// TLS is established.
    pub fn in_tls(&self) -> bool {
        self.in_tls
    }

    fn send(&mut self, next: ProbeState, line: &str) -> Step {
        self.state = next;
        Step::Send(format!("{line}\r\n").into_bytes())
    }

    /// A complete reply arrived.
    pub fn on_reply(&mut self, reply: &Reply) -> Step {
        let ehlo = format!("EHLO {}", self.ehlo_name);
        match self.state {
            ProbeState::ExpectGreeting if reply.is_positive() => {
                let next = if self.in_tls {
                    ProbeState::ExpectTlsEhlo
                } else {
                    ProbeState::ExpectEhlo
                };
                self.send(next, &ehlo)
            }
            ProbeState::ExpectEhlo if reply.is_positive() => {
                self.send(ProbeState::ExpectStartTls, "STARTTLS")
            }
            ProbeState::ExpectStartTls if reply.code == 220 => {
                self.state = ProbeState::ExpectTls;
                Step::StartTls
            }
            ProbeState::ExpectGreeting
            | ProbeState::ExpectEhlo
            | ProbeState::ExpectStartTls
            | ProbeState::ExpectTlsEhlo => self.send(ProbeState::ExpectQuit, "QUIT"),
            ProbeState::ExpectQuit | ProbeState::ExpectTls | ProbeState::Done => {
                self.state = ProbeState::Done;
                Step::Close
            }
        }
    }

    /// The TLS handshake completed.
    pub fn on_tls(&mut self) -> Step {
        self.in_tls = true;
        if self.implicit_tls {
            self.state = ProbeState::ExpectGreeting;
            return Step::Read;
        }
        let ehlo = format!("EHLO {}", self.ehlo_name);
        self.send(ProbeState::ExpectTlsEhlo, &ehlo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16) -> Reply {
        Reply::from_lines(code, &[""])
    }

    fn sent(step: Step) -> String {
        match step {
            Step::Send(b) => String::from_utf8_lossy(&b).into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn starttls_dialogue() {
        let mut s = ProbeScript::new("probe.example", false);
        assert_eq!(s.first_step(), Step::Read);
        assert_eq!(sent(s.on_reply(&reply(220))), "EHLO probe.example\r\n");
        assert_eq!(sent(s.on_reply(&reply(250))), "STARTTLS\r\n");
        assert_eq!(s.on_reply(&reply(220)), Step::StartTls);
        assert_eq!(sent(s.on_tls()), "EHLO probe.example\r\n");
        assert_eq!(sent(s.on_reply(&reply(250))), "QUIT\r\n");
        assert_eq!(s.on_reply(&reply(221)), Step::Close);
        assert_eq!(s.state(), ProbeState::Done);
    }

    #[test]
    fn starttls_is_sent_even_when_not_advertised_and_refusal_quits() {
        let mut s = ProbeScript::new("p", false);
        s.on_reply(&reply(220));
        // The EHLO reply's keywords do not matter: STARTTLS is sent anyway.
        assert_eq!(sent(s.on_reply(&reply(250))), "STARTTLS\r\n");
        assert_eq!(sent(s.on_reply(&reply(500))), "QUIT\r\n");
        assert_eq!(s.on_reply(&reply(221)), Step::Close);
        assert!(!s.in_tls());
    }

    #[test]
    fn implicit_tls_dialogue_and_bad_greeting() {
        let mut s = ProbeScript::new("p", true);
        assert_eq!(s.first_step(), Step::StartTls);
        assert_eq!(s.on_tls(), Step::Read);
        assert_eq!(sent(s.on_reply(&reply(220))), "EHLO p\r\n");
        assert_eq!(sent(s.on_reply(&reply(250))), "QUIT\r\n");
        let mut s = ProbeScript::new("p", false);
        assert_eq!(sent(s.on_reply(&reply(554))), "QUIT\r\n");
    }
}
