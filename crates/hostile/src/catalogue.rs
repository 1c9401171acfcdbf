//! The catalogue: every hostile case, what its server does and what mxray must record. One
//! list ([`catalogue`]); `docs/hostile.md`'s table is [`markdown_table`] of it (a unit test
//! keeps the two equal).

use mxray_model::{DnsOutcome, MtaStsError, MtaStsStatus, ProbeErrorClass};

/// The DNS zone every hostile domain lives in (answered by the [`crate::DnsFront`] itself).
pub const ZONE: &str = "hostile.test";

/// Which protocol a case misbehaves in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The MX host's SMTP server (port 25).
    Smtp,
    /// The MTA-STS policy host `mta-sts.<domain>` (HTTPS, port 443).
    Https,
    /// The DNS answers for the domain's MX query.
    Dns,
    /// Many SMTP servers at once.
    Load,
}

impl Kind {
    /// Lower-case name, as in the docs table.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Smtp => "smtp",
            Kind::Https => "https",
            Kind::Dns => "dns",
            Kind::Load => "load",
        }
    }
}

/// What a hostile SMTP server does after accepting a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMisbehaviour {
    /// Accepts and says nothing, holding the connection until the client leaves.
    Tarpit,
    /// Accepts, then resets (RST, SO_LINGER 0) at once.
    ResetAfterAccept,
    /// `220 ` followed by an endless line: never a CRLF.
    EndlessGreetingLine,
    /// `220-...` continuation lines forever: a multi-line greeting that never ends.
    EndlessMultilineGreeting,
    /// `220 ` then one byte every 300 ms, never a CRLF (slowloris).
    SlowlorisGreeting,
    /// A greeting of binary bytes (NUL, 0xFF, ...) ended by CRLF.
    BinaryGreeting,
    /// A proper greeting, then an EHLO reply of `250-` lines that never ends.
    EndlessEhloReply,
    /// A proper greeting, then the EHLO reply trickled one byte every 300 ms, never ending.
    SlowlorisEhloReply,
    /// A proper greeting, then `421` to EHLO.
    Busy421,
    /// STARTTLS offered and accepted, then a TLS server whose certificate is 1 MB.
    StarttlsHugeCertificate,
    /// STARTTLS offered and accepted, then a TLS record header announcing 65,535 bytes.
    StarttlsOversizedRecord,
    /// STARTTLS offered and accepted, then text instead of TLS.
    StarttlsGarbage,
    /// A well-behaved server without STARTTLS: the MX of the HTTPS and DNS cases.
    Plain,
}

/// What a hostile MTA-STS HTTPS server does after the TLS handshake and the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpsMisbehaviour {
    /// `HTTP/1.1 200 OK` and then one header line that never ends.
    EndlessHead,
    /// A chunked `text/plain` body whose chunks never end.
    EndlessChunkedBody,
    /// `Content-Encoding: gzip`, a 48 KiB body that inflates to about 7.8 MB of zeros.
    GzipBomb,
    /// `Content-Encoding: gzip`, no length, about 1 MB of gzip members (about 160 MB inflated).
    GzipBombOverCap,
    /// A valid head announcing 100 bytes, then the body one byte per second.
    TrickledBody,
    /// A TLS server whose certificate is 1 MB.
    HugeCertificate,
}

/// What the DNS front answers to the case domain's MX query (every other name of the case
/// is answered normally).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTrick {
    /// An answer whose owner name is a compression pointer to itself (a loop), every time.
    CompressionLoop,
    /// First a datagram with the wrong ID and a decoy MX, then the same decoy with the right
    /// ID from another source port, then (50 ms later) the real answer.
    SpoofedFirst,
    /// Over UDP a 1,500-byte answer without TC (over the advertised 1,232 bytes); over TCP the
    /// real answer.
    OversizedUdp,
    /// The right ID, but the answer to another question (`decoy.hostile.test`), every time.
    WrongQuestion,
}

/// The server side of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// The MX host's SMTP server misbehaves.
    Smtp(SmtpMisbehaviour),
    /// The MTA-STS HTTPS server misbehaves (the MX is a [`SmtpMisbehaviour::Plain`] server).
    Https(HttpsMisbehaviour),
    /// The DNS front misbehaves (the MX is a [`SmtpMisbehaviour::Plain`] server).
    Dns(DnsTrick),
}

/// What mxray must record for a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Every `smtp_probe` record of the case's MX address: this `error_class`.
    Probe(ProbeErrorClass),
    /// The domain's `mta_sts_policy` record: this `status` and `error_class`.
    Policy(MtaStsStatus, Option<MtaStsError>),
    /// The domain's `domain` record: this `mx_rcode` and these `mx_hosts`.
    Mx(DnsOutcome, &'static [&'static str]),
}

impl Expected {
    /// The record field(s) and value, as the docs table shows them.
    pub fn describe(&self) -> String {
        match self {
            Expected::Probe(c) => format!("`smtp_probe.error_class` = `{c}`"),
            Expected::Policy(s, None) => format!("`mta_sts_policy.status` = `{s}`"),
            Expected::Policy(s, Some(e)) => {
                format!("`mta_sts_policy.status` = `{s}`, `error_class` = `{e}`")
            }
            Expected::Mx(rcode, []) => format!("`domain.mx_rcode` = `{rcode}`, no `mx_hosts`"),
            Expected::Mx(rcode, hosts) => format!(
                "`domain.mx_rcode` = `{rcode}`, `mx_hosts` = `{}`",
                hosts.join(", ")
            ),
        }
    }
}

/// One hostile case.
#[derive(Debug, Clone, PartialEq)]
pub struct HostileCase {
    /// Short name; the domain is `<name>.hostile.test` (for [`Kind::Load`]:
    /// `t<i>.<name>.hostile.test`, `i` from 0 to `count - 1`).
    pub name: &'static str,
    /// Which protocol misbehaves.
    pub kind: Kind,
    /// What the server does, in words.
    pub does: &'static str,
    /// The server configuration.
    pub behaviour: Behaviour,
    /// What mxray must record.
    pub expected: Expected,
    /// The longest one session with the server may last, in units of `--timeout`, measured
    /// by the server (accept to the client's close), plus one second of slack; `None` for
    /// DNS cases (bounded by the whole scan's time only).
    pub session_bound: Option<f64>,
    /// How many domains (and servers) of this case: 1 except for [`Kind::Load`].
    pub count: usize,
}

impl HostileCase {
    /// The case's domains.
    pub fn domains(&self) -> Vec<String> {
        if self.kind == Kind::Load {
            (0..self.count)
                .map(|i| format!("t{i}.{}.{ZONE}", self.name))
                .collect()
        } else {
            vec![format!("{}.{ZONE}", self.name)]
        }
    }
}

/// How many tarpits the load case starts at once.
pub const LOAD_TARPITS: usize = 2000;

/// Every hostile case, in table order.
pub fn catalogue() -> Vec<HostileCase> {
    use Behaviour::{Dns, Https, Smtp};
    use DnsTrick as D;
    use HttpsMisbehaviour as H;
    use ProbeErrorClass as P;
    use SmtpMisbehaviour as S;
    let smtp = |name, does, m, class, bound| HostileCase {
        name,
        kind: Kind::Smtp,
        does,
        behaviour: Smtp(m),
        expected: Expected::Probe(class),
        session_bound: Some(bound),
        count: 1,
    };
    let https = |name, does, m, status, error, bound| HostileCase {
        name,
        kind: Kind::Https,
        does,
        behaviour: Https(m),
        expected: Expected::Policy(status, error),
        session_bound: Some(bound),
        count: 1,
    };
    let dns = |name, does, t, rcode, hosts| HostileCase {
        name,
        kind: Kind::Dns,
        does,
        behaviour: Dns(t),
        expected: Expected::Mx(rcode, hosts),
        session_bound: None,
        count: 1,
    };
    vec![
        smtp(
            "smtp-tarpit",
            "accepts, never says anything",
            S::Tarpit,
            P::GreetingTimeout,
            2.0,
        ),
        smtp(
            "smtp-reset",
            "resets (RST) right after accepting",
            S::ResetAfterAccept,
            P::ConnectionClosed,
            0.0,
        ),
        smtp(
            "smtp-endless-line",
            "`220 ` and then an endless line, never a CRLF",
            S::EndlessGreetingLine,
            P::ReplyTooLong,
            1.0,
        ),
        smtp(
            "smtp-endless-multiline",
            "`220-...` continuation lines forever",
            S::EndlessMultilineGreeting,
            P::ReplyTooLong,
            1.0,
        ),
        smtp(
            "smtp-slowloris",
            "`220 ` and then one byte every 300 ms, never a CRLF",
            S::SlowlorisGreeting,
            P::GreetingTimeout,
            2.0,
        ),
        smtp(
            "smtp-binary-greeting",
            "a greeting of binary bytes",
            S::BinaryGreeting,
            P::ProtocolError,
            1.0,
        ),
        smtp(
            "smtp-endless-ehlo",
            "greets, then an EHLO reply of `250-` lines that never ends",
            S::EndlessEhloReply,
            P::ReplyTooLong,
            1.0,
        ),
        smtp(
            "smtp-slowloris-ehlo",
            "greets, then the EHLO reply one byte every 300 ms, never ending",
            S::SlowlorisEhloReply,
            P::ReadTimeout,
            1.0,
        ),
        smtp(
            "smtp-busy",
            "greets, then `421` to EHLO",
            S::Busy421,
            P::Busy,
            1.0,
        ),
        smtp(
            "smtp-huge-cert",
            "STARTTLS accepted, then a TLS server with a 1 MB certificate",
            S::StarttlsHugeCertificate,
            P::TlsTooLarge,
            1.0,
        ),
        smtp(
            "smtp-oversized-record",
            "STARTTLS accepted, then a TLS record header announcing 65,535 bytes",
            S::StarttlsOversizedRecord,
            P::TlsTooLarge,
            1.0,
        ),
        smtp(
            "smtp-tls-garbage",
            "STARTTLS accepted, then text instead of TLS",
            S::StarttlsGarbage,
            P::TlsError,
            1.0,
        ),
        https(
            "https-endless-head",
            "`200 OK` and then one header line that never ends",
            H::EndlessHead,
            MtaStsStatus::FetchError,
            Some(MtaStsError::HttpProtocol),
            2.0,
        ),
        https(
            "https-endless-chunks",
            "a chunked `text/plain` body that never ends",
            H::EndlessChunkedBody,
            MtaStsStatus::FetchError,
            Some(MtaStsError::TooLarge),
            2.0,
        ),
        https(
            "https-gzip-bomb",
            "`Content-Encoding: gzip`, 48 KiB inflating to 7.8 MB; mxray asks for no encoding and never inflates: the raw bytes are the policy",
            H::GzipBomb,
            MtaStsStatus::PolicyInvalid,
            None,
            2.0,
        ),
        https(
            "https-gzip-bomb-large",
            "`Content-Encoding: gzip`, no length, 1 MB of gzip (160 MB inflated)",
            H::GzipBombOverCap,
            MtaStsStatus::FetchError,
            Some(MtaStsError::TooLarge),
            2.0,
        ),
        https(
            "https-trickle",
            "a valid head for 100 bytes, then one byte per second",
            H::TrickledBody,
            MtaStsStatus::FetchError,
            Some(MtaStsError::Timeout),
            2.0,
        ),
        https(
            "https-huge-cert",
            "a TLS server with a 1 MB certificate",
            H::HugeCertificate,
            MtaStsStatus::FetchError,
            Some(MtaStsError::Tls),
            2.0,
        ),
        dns(
            "dns-compression-loop",
            "the MX answer's owner name is a compression pointer to itself",
            D::CompressionLoop,
            DnsOutcome::Malformed,
            &[],
        ),
        dns(
            "dns-spoofed",
            "a decoy MX with the wrong ID, the decoy again from another port, then the real answer",
            D::SpoofedFirst,
            DnsOutcome::NoError,
            &["mx.dns-spoofed.hostile.test"],
        ),
        dns(
            "dns-oversized",
            "a 1,500-byte UDP answer without TC; the real answer over TCP",
            D::OversizedUdp,
            DnsOutcome::NoError,
            &["mx.dns-oversized.hostile.test"],
        ),
        dns(
            "dns-wrong-question",
            "the right ID with the answer to another question, every time",
            D::WrongQuestion,
            DnsOutcome::Timeout,
            &[],
        ),
        HostileCase {
            name: "tarpits",
            kind: Kind::Load,
            does: "2,000 domains, each with its own tarpit MX on its own address (and /24), all at once",
            behaviour: Smtp(S::Tarpit),
            expected: Expected::Probe(P::GreetingTimeout),
            session_bound: Some(2.0),
            count: LOAD_TARPITS,
        },
    ]
}

/// The docs table of `cases` (Markdown): case, domain, kind, what the server does, what mxray
/// must record, the session time bound.
pub fn markdown_table(cases: &[HostileCase]) -> String {
    let mut out = String::from(
        "| case | domain | kind | the server | mxray records | session bound |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for c in cases {
        let domain = match c.kind {
            Kind::Load => format!("`t0.{}.{ZONE}` ... ({})", c.name, c.count),
            _ => format!("`{}.{ZONE}`", c.name),
        };
        let bound = match c.session_bound {
            Some(b) => format!("{b} × timeout + 1 s"),
            None => "the scan's".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {domain} | {} | {} | {} | {bound} |\n",
            c.name,
            c.kind.as_str(),
            c.does,
            c.expected.describe()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- catalogue: begin (generated from crates/hostile/src/catalogue.rs; MXRAY_BLESS=1 cargo test -p mxray-hostile rewrites it) -->\n";
    const END: &str = "<!-- catalogue: end -->";

    #[test]
    fn case_names_are_unique_dns_labels() {
        let cases = catalogue();
        let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate case names");
        for c in &cases {
            assert!(
                c.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                c.name
            );
            assert_eq!(c.count == 1, c.kind != Kind::Load, "{}", c.name);
        }
    }

    #[test]
    fn docs_table_is_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/hostile.md");
        let doc = std::fs::read_to_string(&path).expect("docs/hostile.md");
        let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
            panic!("docs/hostile.md lacks the catalogue markers");
        };
        let table = markdown_table(&catalogue());
        let have = &doc[b + BEGIN.len()..e];
        if have != table {
            if std::env::var_os("MXRAY_BLESS").is_some() {
                let new = format!("{}{table}{}", &doc[..b + BEGIN.len()], &doc[e..]);
                std::fs::write(&path, new).expect("write docs/hostile.md");
            } else {
                panic!("docs/hostile.md's table differs from the catalogue (MXRAY_BLESS=1 rewrites it):\n{table}");
            }
        }
    }
}
