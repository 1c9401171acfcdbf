//! The SMTP client dialogue as a state machine with no I/O.
//!
//! Each [`State`] is named for what the client expects next. The driver reads a reply, hands
//! it to [`Dialogue::on_reply`] and performs the returned [`Action`]: send a command, run the
//! TLS handshake, or close. Transport failures are reported with [`Dialogue::on_io_failure`]
//! and TLS handshake outcomes with [`Dialogue::on_tls_established`] / [`Dialogue::on_tls_failed`];
//! the dialogue turns them into a recorded error class that depends on where it happened.
//! [`Dialogue`] implements [`crate::driver::Script`], so the one driver runs it.
//!
//! The dialogue never sends MAIL, RCPT or DATA: greeting, EHLO (HELO on a 5xx), STARTTLS,
//! EHLO again after TLS, QUIT. With [`Dialogue::force_starttls`] it sends STARTTLS even when
//! the EHLO reply does not advertise it (zgrab2's `--send-starttls-override`): a `220` and a
//! completed handshake then prove that the server speaks TLS and the EHLO reply was rewritten
//! on the path; a refusal is the expected answer of a server without STARTTLS, not an error.
//! On an implicit-TLS port (465, RFC 8314 §3.3),
//! [`Dialogue::implicit_tls`] starts with the handshake: TLS, greeting, EHLO, QUIT.

use mxray_model::ProbeErrorClass;

use crate::driver::{Phase, Script, Step, TlsFailure};
use crate::reply::{advertises_starttls, ehlo_keywords, Reply};

/// What the client waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// The server's 220 greeting.
    ExpectGreeting,
    /// The reply to `EHLO`.
    ExpectEhloReply,
    /// The reply to `HELO` (sent after EHLO got a 5xx).
    ExpectHeloReply,
    /// The reply to `STARTTLS`.
    ExpectStartTlsReply,
    /// The end of the TLS handshake (driven outside, reported back).
    ExpectTlsHandshake,
    /// The reply to `EHLO` inside TLS.
    ExpectPostTlsEhloReply,
    /// The reply to `QUIT`.
    ExpectQuitReply,
    /// Nothing: the session is over.
    Closed,
}

impl State {
    /// True once the TLS handshake succeeded (the post-TLS states).
    pub fn inside_tls(self) -> bool {
        matches!(self, State::ExpectPostTlsEhloReply)
    }
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send this command line (CRLF is appended by the driver), then read the next reply.
    Send(String),
    /// Run the TLS handshake on the connection, then report with
    /// [`Dialogue::on_tls_established`] or [`Dialogue::on_tls_failed`].
    StartTls,
    /// Close the connection; the dialogue is over.
    Close,
}

/// A transport-level failure seen by the driver while waiting for a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoFailure {
    /// The per-phase timeout expired.
    Timeout,
    /// The whole-session deadline expired.
    Deadline,
    /// EOF or reset.
    Closed(String),
    /// A line or reply over the caps.
    TooLong(String),
    /// Bytes that are not an SMTP reply.
    Malformed(String),
}

/// Everything the dialogue observed; turned into a record by the driver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// The greeting.
    pub greeting: Option<Reply>,
    /// The reply to EHLO (or to HELO when `used_helo`).
    pub ehlo: Option<Reply>,
    /// The first EHLO reply when it was rejected and HELO followed.
    pub rejected_ehlo: Option<Reply>,
    /// HELO was used after EHLO was refused.
    pub used_helo: bool,
    /// Parsed pre-TLS EHLO keywords.
    pub ehlo_keywords: Vec<String>,
    /// STARTTLS among the keywords.
    pub starttls_advertised: bool,
    /// STARTTLS was sent although not advertised (forced).
    pub starttls_forced: bool,
    /// The reply to STARTTLS.
    pub starttls_reply: Option<Reply>,
    /// The TLS handshake completed.
    pub tls_completed: bool,
    /// The handshake was attempted and failed.
    pub tls_failed: bool,
    /// The EHLO reply inside TLS.
    pub post_tls_ehlo: Option<Reply>,
    /// Parsed post-TLS EHLO keywords.
    pub post_tls_keywords: Vec<String>,
    /// Why the session ended early, if it did.
    pub error: Option<(ProbeErrorClass, String)>,
    /// TLS alert code when the handshake ended with one.
    pub tls_alert: Option<u8>,
    /// The session was implicit TLS (RFC 8314 §3.3): TLS before the greeting, no STARTTLS;
    /// the greeting and the EHLO reply were read inside TLS (`post_tls_ehlo`).
    pub implicit_tls: bool,
}

impl Observations {
    /// The session reached a successful (`250`) EHLO or HELO (on implicit TLS: inside TLS).
    pub fn reached_ehlo(&self) -> bool {
        let ok = |r: &Option<Reply>| r.as_ref().is_some_and(|r| r.code == 250);
        ok(&self.ehlo) || (self.implicit_tls && ok(&self.post_tls_ehlo))
    }
}

/// The client side of one SMTP session.
#[derive(Debug, Clone)]
pub struct Dialogue {
    state: State,
    ehlo_name: String,
    force_starttls: bool,
    obs: Observations,
}

impl Dialogue {
    /// A session on an implicit-TLS port (RFC 8314 §3.3): the driver runs the handshake first
    /// and reports it with [`Dialogue::on_implicit_tls_established`] or
    /// [`Dialogue::on_tls_failed`]; then the greeting, one EHLO (inside TLS) and QUIT.
    pub fn implicit_tls(ehlo_name: impl Into<String>) -> Self {
        let mut d = Dialogue::new(ehlo_name);
        d.state = State::ExpectTlsHandshake;
        d.obs.implicit_tls = true;
        d
    }

    /// The implicit-TLS handshake completed: wait for the greeting (read it next).
    pub fn on_implicit_tls_established(&mut self) {
        self.obs.tls_completed = true;
        self.state = State::ExpectGreeting;
    }
}

impl Dialogue {
    /// A new session that will introduce itself as `ehlo_name`.
    pub fn new(ehlo_name: impl Into<String>) -> Self {
        Dialogue {
            state: State::ExpectGreeting,
            ehlo_name: ehlo_name.into(),
            force_starttls: false,
            obs: Observations::default(),
        }
    }

    /// Sends STARTTLS after a successful EHLO even when the reply does not advertise it.
    pub fn force_starttls(mut self, force: bool) -> Self {
        self.force_starttls = force;
        self
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// What has been observed so far.
    pub fn observations(&self) -> &Observations {
        &self.obs
    }

    /// Ends the dialogue, returning the observations.
    pub fn into_observations(self) -> Observations {
        self.obs
    }

    fn fail(&mut self, class: ProbeErrorClass, detail: String) {
        if self.obs.error.is_none() {
            self.obs.error = Some((class, detail));
        }
    }

    fn quit(&mut self) -> Action {
        self.state = State::ExpectQuitReply;
        Action::Send("QUIT".into())
    }

    fn close(&mut self) -> Action {
        self.state = State::Closed;
        Action::Close
    }

    fn ehlo(&self) -> Action {
        Action::Send(format!("EHLO {}", self.ehlo_name))
    }

    /// Consumes a complete reply in the current state.
    pub fn on_reply(&mut self, reply: Reply) -> Action {
        let summary = || format!("{} {}", reply.code, reply.text());
        match self.state {
            State::ExpectGreeting => {
                let code = reply.code;
                let detail = summary();
                self.obs.greeting = Some(reply);
                match code {
                    // Implicit TLS: the EHLO is already inside TLS, and STARTTLS never follows.
                    220 if self.obs.implicit_tls => {
                        self.state = State::ExpectPostTlsEhloReply;
                        self.ehlo()
                    }
                    220 => {
                        self.state = State::ExpectEhloReply;
                        self.ehlo()
                    }
                    400..=499 => {
                        self.fail(ProbeErrorClass::Greeting4xx, detail);
                        self.quit()
                    }
                    500..=599 => {
                        self.fail(ProbeErrorClass::Greeting5xx, detail);
                        self.quit()
                    }
                    _ => {
                        self.fail(ProbeErrorClass::ProtocolError, format!("greeting {detail}"));
                        self.quit()
                    }
                }
            }
            State::ExpectEhloReply | State::ExpectHeloReply if reply.code == 421 => {
                // RFC 5321 §3.8: the service is closing; try later. Busy, not refused.
                let detail = summary();
                self.obs.ehlo = Some(reply);
                self.fail(ProbeErrorClass::Busy, format!("EHLO: {detail}"));
                self.quit()
            }
            State::ExpectEhloReply => {
                if reply.code == 250 {
                    self.obs.ehlo_keywords = ehlo_keywords(&reply);
                    self.obs.starttls_advertised = advertises_starttls(&self.obs.ehlo_keywords);
                    self.obs.ehlo = Some(reply);
                    if self.obs.starttls_advertised {
                        self.state = State::ExpectStartTlsReply;
                        Action::Send("STARTTLS".into())
                    } else if self.force_starttls {
                        self.obs.starttls_forced = true;
                        self.state = State::ExpectStartTlsReply;
                        Action::Send("STARTTLS".into())
                    } else {
                        self.quit()
                    }
                } else if reply.is_permanent() {
                    // RFC 5321 §4.1.4: a client may fall back to HELO when EHLO is refused.
                    self.obs.rejected_ehlo = Some(reply);
                    self.obs.used_helo = true;
                    self.state = State::ExpectHeloReply;
                    Action::Send(format!("HELO {}", self.ehlo_name))
                } else {
                    let detail = summary();
                    self.obs.ehlo = Some(reply);
                    self.fail(ProbeErrorClass::EhloRejected, format!("EHLO: {detail}"));
                    self.quit()
                }
            }
            State::ExpectHeloReply => {
                let ok = reply.code == 250;
                let detail = summary();
                self.obs.ehlo = Some(reply);
                if !ok {
                    self.fail(
                        ProbeErrorClass::EhloRejected,
                        format!("EHLO and HELO refused: {detail}"),
                    );
                }
                // HELO offers no extensions, hence no STARTTLS.
                self.quit()
            }
            State::ExpectStartTlsReply => {
                let code = reply.code;
                let detail = summary();
                self.obs.starttls_reply = Some(reply);
                match code {
                    220 => {
                        self.state = State::ExpectTlsHandshake;
                        Action::StartTls
                    }
                    // Not offered, asked anyway, refused: what a server without STARTTLS says.
                    400..=599 if self.obs.starttls_forced => self.quit(),
                    400..=499 => {
                        self.fail(ProbeErrorClass::Starttls4xx, detail);
                        self.quit()
                    }
                    500..=599 => {
                        self.fail(ProbeErrorClass::Starttls5xx, detail);
                        self.quit()
                    }
                    _ => {
                        self.fail(ProbeErrorClass::ProtocolError, format!("STARTTLS {detail}"));
                        self.quit()
                    }
                }
            }
            State::ExpectTlsHandshake => {
                // A reply cannot arrive during the handshake; the driver never calls this.
                self.fail(
                    ProbeErrorClass::ProtocolError,
                    "reply during TLS handshake".into(),
                );
                self.close()
            }
            State::ExpectPostTlsEhloReply => {
                if reply.code == 250 {
                    self.obs.post_tls_keywords = ehlo_keywords(&reply);
                } else {
                    self.fail(
                        ProbeErrorClass::PostTlsError,
                        format!("EHLO after TLS: {}", summary()),
                    );
                }
                self.obs.post_tls_ehlo = Some(reply);
                self.quit()
            }
            State::ExpectQuitReply | State::Closed => self.close(),
        }
    }

    /// The TLS handshake completed: say EHLO again.
    pub fn on_tls_established(&mut self) -> Action {
        self.obs.tls_completed = true;
        self.state = State::ExpectPostTlsEhloReply;
        self.ehlo()
    }

    /// The TLS handshake failed with this class (and alert code, when one was received).
    /// The connection cannot carry SMTP any more: close it.
    pub fn on_tls_failed(
        &mut self,
        class: ProbeErrorClass,
        alert: Option<u8>,
        detail: String,
    ) -> Action {
        self.obs.tls_failed = true;
        self.obs.tls_alert = alert;
        self.fail(class, detail);
        self.close()
    }

    /// A transport failure while waiting in the current state.
    pub fn on_io_failure(&mut self, failure: IoFailure) -> Action {
        let state = self.state;
        if matches!(state, State::ExpectQuitReply | State::Closed) {
            // The answer to QUIT is a courtesy; its absence is not a finding.
            return self.close();
        }
        let (class, detail) = match failure {
            IoFailure::Deadline => (
                ProbeErrorClass::SessionDeadline,
                "session deadline".to_owned(),
            ),
            _ if state.inside_tls() => (ProbeErrorClass::PostTlsError, describe(&failure)),
            IoFailure::Timeout if state == State::ExpectGreeting => {
                (ProbeErrorClass::GreetingTimeout, "no greeting".to_owned())
            }
            IoFailure::Timeout if state == State::ExpectTlsHandshake => (
                ProbeErrorClass::TlsTimeout,
                "TLS handshake timed out".to_owned(),
            ),
            IoFailure::Timeout => (ProbeErrorClass::ReadTimeout, describe(&failure)),
            IoFailure::Closed(_) => (ProbeErrorClass::ConnectionClosed, describe(&failure)),
            IoFailure::TooLong(_) => (ProbeErrorClass::ReplyTooLong, describe(&failure)),
            IoFailure::Malformed(_) => (ProbeErrorClass::ProtocolError, describe(&failure)),
        };
        let detail = format!("{}: {detail}", phase_name(state));
        self.fail(class, detail);
        self.close()
    }
}

/// The scanner's dialogue under the one driver ([`crate::driver::drive`]).
impl Script for Dialogue {
    fn first_step(&self) -> Step {
        if self.state == State::ExpectTlsHandshake {
            Step::StartTls
        } else {
            Step::Read
        }
    }

    fn phase(&self) -> Phase {
        match self.state {
            State::ExpectGreeting => Phase::Greeting,
            State::ExpectEhloReply | State::ExpectHeloReply => Phase::Ehlo,
            State::ExpectStartTlsReply => Phase::StartTls,
            State::ExpectTlsHandshake => Phase::TlsHandshake,
            State::ExpectPostTlsEhloReply => Phase::PostTlsEhlo,
            State::ExpectQuitReply => Phase::Quit,
            State::Closed => Phase::Closed,
        }
    }

    fn reply(&mut self, reply: Reply) -> Step {
        self.on_reply(reply).into()
    }

    fn read_failed(&mut self, failure: IoFailure) -> Step {
        self.on_io_failure(failure).into()
    }

    fn tls_done(&mut self) -> Step {
        if self.obs.implicit_tls {
            self.on_implicit_tls_established();
            Step::Read
        } else {
            self.on_tls_established().into()
        }
    }

    fn tls_failed(&mut self, failure: TlsFailure) {
        match failure {
            TlsFailure::Failed(f) => {
                self.on_tls_failed(f.class, f.alert, f.detail);
            }
            TlsFailure::Timeout => {
                self.on_tls_failed(
                    ProbeErrorClass::TlsTimeout,
                    None,
                    "TLS handshake timed out".into(),
                );
            }
            TlsFailure::Deadline => {
                self.on_io_failure(IoFailure::Deadline);
            }
        }
    }
}

impl From<Action> for Step {
    fn from(a: Action) -> Step {
        match a {
            Action::Send(cmd) => Step::Send(format!("{cmd}\r\n").into_bytes()),
            Action::StartTls => Step::StartTls,
            Action::Close => Step::Close,
        }
    }
}

fn describe(f: &IoFailure) -> String {
    match f {
        IoFailure::Timeout => "timed out".into(),
        IoFailure::Deadline => "session deadline".into(),
        IoFailure::Closed(s) | IoFailure::TooLong(s) | IoFailure::Malformed(s) => s.clone(),
    }
}

/// A short name of the phase, used in `error_detail`.
pub fn phase_name(state: State) -> &'static str {
    match state {
        State::ExpectGreeting => "greeting",
        State::ExpectEhloReply => "EHLO",
        State::ExpectHeloReply => "HELO",
        State::ExpectStartTlsReply => "STARTTLS",
        State::ExpectTlsHandshake => "TLS handshake",
        State::ExpectPostTlsEhloReply => "EHLO after TLS",
        State::ExpectQuitReply => "QUIT",
        State::Closed => "closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply::from_lines(code, lines)
    }

    #[test]
    fn full_starttls_dialogue() {
        let mut d = Dialogue::new("scanner.example");
        assert_eq!(
            d.on_reply(reply(220, &["mx ESMTP"])),
            Action::Send("EHLO scanner.example".into())
        );
        assert_eq!(d.state(), State::ExpectEhloReply);
        assert_eq!(
            d.on_reply(reply(250, &["mx", "PIPELINING", "STARTTLS"])),
            Action::Send("STARTTLS".into())
        );
        assert_eq!(d.on_reply(reply(220, &["2.0.0 Ready"])), Action::StartTls);
        assert_eq!(
            d.on_tls_established(),
            Action::Send("EHLO scanner.example".into())
        );
        assert_eq!(
            d.on_reply(reply(250, &["mx", "AUTH PLAIN"])),
            Action::Send("QUIT".into())
        );
        assert_eq!(d.on_reply(reply(221, &["bye"])), Action::Close);
        let o = d.into_observations();
        assert!(o.tls_completed && o.starttls_advertised && o.error.is_none());
        assert_eq!(o.post_tls_keywords, vec!["AUTH PLAIN"]);
    }

    #[test]
    fn no_starttls_quits_politely() {
        let mut d = Dialogue::new("s");
        d.on_reply(reply(220, &["x"]));
        assert_eq!(
            d.on_reply(reply(250, &["mx", "SIZE 1"])),
            Action::Send("QUIT".into())
        );
        let o = d.observations();
        assert!(!o.starttls_advertised && o.error.is_none());
    }

    #[test]
    fn refused_greetings_are_classified() {
        for (code, class) in [
            (554, ProbeErrorClass::Greeting5xx),
            (421, ProbeErrorClass::Greeting4xx),
        ] {
            let mut d = Dialogue::new("s");
            assert_eq!(
                d.on_reply(reply(code, &["no"])),
                Action::Send("QUIT".into())
            );
            assert_eq!(d.observations().error.as_ref().map(|e| e.0), Some(class));
        }
    }

    #[test]
    fn ehlo_5xx_falls_back_to_helo() {
        let mut d = Dialogue::new("s");
        d.on_reply(reply(220, &["x"]));
        assert_eq!(
            d.on_reply(reply(502, &["no EHLO"])),
            Action::Send("HELO s".into())
        );
        assert_eq!(d.on_reply(reply(250, &["hi"])), Action::Send("QUIT".into()));
        let o = d.observations();
        assert!(o.used_helo && o.error.is_none() && !o.starttls_advertised);
        let mut d = Dialogue::new("s");
        d.on_reply(reply(220, &["x"]));
        d.on_reply(reply(500, &["no"]));
        d.on_reply(reply(501, &["no"]));
        assert_eq!(
            d.observations().error.as_ref().map(|e| e.0),
            Some(ProbeErrorClass::EhloRejected)
        );
    }

    #[test]
    fn a_421_to_ehlo_is_busy_not_rejected() {
        let mut d = Dialogue::new("s");
        d.on_reply(reply(220, &["x"]));
        assert_eq!(
            d.on_reply(reply(421, &["4.3.2 too many connections, try later"])),
            Action::Send("QUIT".into())
        );
        assert_eq!(
            d.observations().error.as_ref().map(|e| e.0),
            Some(ProbeErrorClass::Busy)
        );
        assert!(!d.observations().reached_ehlo());
        // After EHLO 5xx, a 421 to HELO is busy too.
        let mut d = Dialogue::new("s");
        d.on_reply(reply(220, &["x"]));
        d.on_reply(reply(502, &["no EHLO"]));
        d.on_reply(reply(421, &["closing"]));
        assert_eq!(
            d.observations().error.as_ref().map(|e| e.0),
            Some(ProbeErrorClass::Busy)
        );
    }

    #[test]
    fn starttls_refusals_are_classified() {
        for (code, class) in [
            (454, ProbeErrorClass::Starttls4xx),
            (502, ProbeErrorClass::Starttls5xx),
        ] {
            let mut d = Dialogue::new("s");
            d.on_reply(reply(220, &["x"]));
            d.on_reply(reply(250, &["mx", "STARTTLS"]));
            assert_eq!(
                d.on_reply(reply(code, &["TLS not available"])),
                Action::Send("QUIT".into())
            );
            assert_eq!(d.observations().error.as_ref().map(|e| e.0), Some(class));
        }
    }

    #[test]
    fn io_failures_map_by_phase() {
        let mut d = Dialogue::new("s");
        assert_eq!(d.on_io_failure(IoFailure::Timeout), Action::Close);
        assert_eq!(
            d.observations().error.as_ref().map(|e| e.0),
            Some(ProbeErrorClass::GreetingTimeout)
        );

        let mut d = Dialogue::new("s");
        d.on_reply(reply(220, &["x"]));
        d.on_io_failure(IoFailure::Closed("reset".into()));
        assert_eq!(
            d.observations().error.as_ref().map(|e| e.0),
            Some(ProbeErrorClass::ConnectionClosed)
        );

        let mut d = Dialogue::new("s");
        d.on_reply(reply(220, &["x"]));
        d.on_reply(reply(250, &["mx", "STARTTLS"]));
        d.on_reply(reply(220, &["go"]));
        d.on_tls_established();
        d.on_io_failure(IoFailure::Timeout);
        assert_eq!(
            d.observations().error.as_ref().map(|e| e.0),
            Some(ProbeErrorClass::PostTlsError)
        );
    }

    #[test]
    fn forced_starttls_is_sent_when_not_advertised_and_a_refusal_is_no_error() {
        let mut d = Dialogue::new("s").force_starttls(true);
        d.on_reply(reply(220, &["x"]));
        assert_eq!(
            d.on_reply(reply(250, &["mx", "SIZE 1"])),
            Action::Send("STARTTLS".into())
        );
        assert_eq!(
            d.on_reply(reply(502, &["5.5.1 unrecognized"])),
            Action::Send("QUIT".into())
        );
        let o = d.observations();
        assert!(o.starttls_forced && !o.starttls_advertised && o.error.is_none());
        assert_eq!(o.starttls_reply.as_ref().map(|r| r.code), Some(502));

        let mut d = Dialogue::new("s").force_starttls(true);
        d.on_reply(reply(220, &["x"]));
        d.on_reply(reply(250, &["mx", "XXXXXXXA"]));
        assert_eq!(d.on_reply(reply(220, &["go ahead"])), Action::StartTls);
        d.on_tls_established();
        assert!(d.observations().starttls_forced && d.observations().tls_completed);

        // Advertised: forcing changes nothing.
        let mut d = Dialogue::new("s").force_starttls(true);
        d.on_reply(reply(220, &["x"]));
        d.on_reply(reply(250, &["mx", "STARTTLS"]));
        assert!(!d.observations().starttls_forced);
    }

    #[test]
    fn implicit_tls_starts_with_the_handshake_and_never_sends_starttls() {
        let mut d = Dialogue::implicit_tls("s");
        assert_eq!(d.state(), State::ExpectTlsHandshake);
        d.on_implicit_tls_established();
        assert_eq!(d.state(), State::ExpectGreeting);
        assert_eq!(
            d.on_reply(reply(220, &["mx ESMTP"])),
            Action::Send("EHLO s".into())
        );
        // STARTTLS in the EHLO reply inside TLS is not acted upon.
        assert_eq!(
            d.on_reply(reply(250, &["mx", "AUTH PLAIN", "STARTTLS"])),
            Action::Send("QUIT".into())
        );
        assert_eq!(d.on_reply(reply(221, &["bye"])), Action::Close);
        let o = d.into_observations();
        assert!(o.implicit_tls && o.tls_completed && o.error.is_none());
        assert!(o.ehlo.is_none() && !o.starttls_advertised && o.starttls_reply.is_none());
        assert_eq!(o.post_tls_keywords, vec!["AUTH PLAIN", "STARTTLS"]);

        let mut d = Dialogue::implicit_tls("s");
        assert_eq!(
            d.on_tls_failed(ProbeErrorClass::TlsAlert, Some(42), "alert".into()),
            Action::Close
        );
        let o = d.observations();
        assert!(o.tls_failed && !o.tls_completed && o.greeting.is_none());
        assert_eq!(
            o.error.as_ref().map(|e| e.0),
            Some(ProbeErrorClass::TlsAlert)
        );
    }

    #[test]
    fn missing_quit_reply_is_not_an_error() {
        let mut d = Dialogue::new("s");
        d.on_reply(reply(220, &["x"]));
        d.on_reply(reply(250, &["mx"]));
        assert_eq!(
            d.on_io_failure(IoFailure::Closed("eof".into())),
            Action::Close
        );
        assert!(d.observations().error.is_none());
    }
}
