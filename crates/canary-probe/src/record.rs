//! The `canary_result` record of a probe: the [`crate::TamperReport`] as an ordinary row of table
//! `canary_results`, next to the session's `smtp_probe` row.

use std::net::SocketAddr;

use mxray_model::{
    CanaryResultRecord, CanaryVerdict, CertificateRecord, SmtpProbeRecord, TlsEngine, UtcTime,
};
use mxray_net::units::{cap, saturating_u32};
use mxray_smtp::judge::{self, Judge, Rules, SessionFacts, Timings, TlsFacts};
use mxray_smtp::machine::Observations;
use mxray_smtp::reply::{advertises_starttls, ehlo_keywords};
use mxray_smtp::ProbeTarget;
use rustls::pki_types::{CertificateDer, UnixTime};

use crate::diverge::DivergenceKind;
use crate::report::{CanaryLogStatus, CanaryOutcome, Finding, Severity, Stream, Verdict};
use crate::session::Session;

/// Longest `detail` stored (the whole text stays in `report`).
const DETAIL_CAP: usize = 1024;

impl Verdict {
    /// The verdict in the model vocabulary.
    pub const fn to_model(self) -> CanaryVerdict {
        match self {
            Verdict::Clean => CanaryVerdict::Clean,
            Verdict::Tampered => CanaryVerdict::Tampered,
            Verdict::Blocked => CanaryVerdict::Blocked,
            Verdict::Error => CanaryVerdict::Error,
        }
    }
}

impl Stream {
    /// The stream's name, as in the JSON report and the `tampered_streams` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stream::ServerPlain => "server_plain",
            Stream::ServerTls => "server_tls",
            Stream::ClientPlain => "client_plain",
            Stream::ClientTls => "client_tls",
            Stream::Certificate => "certificate",
            Stream::TlsHandshake => "tls_handshake",
            Stream::Control => "control",
        }
    }
}

impl DivergenceKind {
    /// The kind's name, as in the JSON report and the `divergence_kind` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            DivergenceKind::Differ => "differ",
            DivergenceKind::Truncated => "truncated",
            DivergenceKind::Extra => "extra",
        }
    }
}

impl CanaryLogStatus {
    /// The status's name, as in the JSON report and the `canary_log` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            CanaryLogStatus::Compared => "compared",
            CanaryLogStatus::NotFound => "not_found",
            CanaryLogStatus::Unavailable => "unavailable",
            CanaryLogStatus::Forged => "forged",
            CanaryLogStatus::NotAsked => "not_asked",
        }
    }
}

/// The finding whose divergence is reported in the row: the first tampered one with byte
/// offsets, else the first with byte offsets at all (a truncated stream).
fn first_divergence(findings: &[Finding]) -> Option<&Finding> {
    let with_bytes = || findings.iter().filter(|f| f.divergence.is_some());
    with_bytes()
        .find(|f| f.severity == Severity::Tampered)
        .or_else(|| with_bytes().next())
}

/// The `canary_result` record of a probe (table `canary_results`), for the outputs next to
/// [`crate::probe_record`]'s `smtp_probe` row of the same session and `scan_id`.
///
/// `tampered_streams` lists the streams with proof of rewriting (severity `tampered`), in the
/// report's order and without repeats; the `divergence_*` and excerpt columns describe the
/// first byte divergence (`first_divergence` order); `report` is the whole [`TamperReport`]
/// as JSON (every finding, both sides' bytes).
///
/// [`TamperReport`]: crate::TamperReport
pub fn canary_record(
    outcome: &CanaryOutcome,
    scan_id: uuid::Uuid,
    vantage: &str,
) -> CanaryResultRecord {
    let r = &outcome.report;
    let mut tampered_streams: Vec<String> = Vec::new();
    for f in r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Tampered)
    {
        let name = f.stream.as_str();
        if !tampered_streams.iter().any(|s| s == name) {
            tampered_streams.push(name.to_owned());
        }
    }
    let first = first_divergence(&r.findings);
    let d = first.and_then(|f| f.divergence.as_ref());
    // A report always serialises (plain data, string keys); an empty object is the fallback
    // that keeps the row rather than losing the verdict.
    let report = serde_json::to_string(r).unwrap_or_else(|_| "{}".to_owned());
    let target = r.target.or(outcome.session.target);
    CanaryResultRecord {
        scan_id,
        vantage: vantage.to_owned(),
        probed_at: r.probed_at,
        target_ip: target.map(|t| t.ip().to_string()).unwrap_or_default(),
        target_port: target.map(|t| t.port()).unwrap_or(0),
        local_ip: r.local.map(|l| l.ip().to_string()),
        local_port: r.local.map(|l| l.port()),
        implicit_tls: r.implicit_tls,
        verdict: r.verdict.to_model(),
        error_class: r.error_class,
        detail: cap(&r.detail, DETAIL_CAP).to_owned(),
        tampered_streams,
        divergence_stream: first.map(|f| f.stream.as_str().to_owned()),
        divergence_kind: d.map(|d| d.kind.as_str().to_owned()),
        divergence_offset: d.map(|d| saturating_u32(d.offset)),
        divergence_line: d.map(|d| saturating_u32(d.line)),
        expected_excerpt: d.map(|d| d.expected.clone()),
        actual_excerpt: d.map(|d| d.actual.clone()),
        canary_log: r.canary_log.as_str().to_owned(),
        canary_saw_client: r.canary_client.map(|a| a.to_string()),
        cert_expected: r.cert_expected.clone(),
        cert_seen: r.cert_seen.clone(),
        report,
    }
}

/// The `smtp_probe` record of a canary session (plus `certificate` records of its chain),
/// judged by the scanner's own [`mxray_smtp::judge`] under [`Rules::Canary`].
///
/// `result`, `error_class`, the EHLO fields and the stripping signals mean what they mean
/// for any probe, so canary sessions sit in `smtp_probes` next to ordinary ones. The
/// differences are [`Rules::Canary`]'s: the canary probe sends STARTTLS even when it is not
/// advertised (so `starttls_reply_code` may be a 500 with `result = no_starttls`), a session
/// that completed TLS is `starttls_ok`, and no RFC 8460 results are derived. No SNI, PKIX or
/// DANE judgement (the canary's certificate is compared by hash in the [`TamperReport`],
/// stored as a `canary_result` record by [`crate::canary_record`]); replies and details are
/// capped at 8 KiB.
///
/// [`TamperReport`]: crate::TamperReport
pub fn probe_record(
    s: &Session,
    scan_id: uuid::Uuid,
    vantage: &str,
) -> (SmtpProbeRecord, Vec<CertificateRecord>) {
    const CAP: usize = 8192;
    let keywords = s.ehlo.as_ref().map(ehlo_keywords).unwrap_or_default();
    let advertised = advertises_starttls(&keywords);
    let obs = Observations {
        greeting: s.greeting.clone(),
        ehlo: s.ehlo.clone(),
        rejected_ehlo: None,
        used_helo: false,
        ehlo_keywords: keywords,
        starttls_advertised: advertised,
        starttls_forced: !advertised && !s.implicit_tls && s.starttls_reply.is_some(),
        starttls_reply: s.starttls_reply.clone(),
        tls_completed: s.tls_completed,
        tls_failed: s.tls_attempted && !s.tls_completed && !s.implicit_tls,
        post_tls_ehlo: s.tls_ehlo.clone(),
        post_tls_keywords: s.tls_ehlo.as_ref().map(ehlo_keywords).unwrap_or_default(),
        error: s.error.clone(),
        tls_alert: s.tls_alert,
        implicit_tls: s.implicit_tls,
    };
    let target = s
        .target
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let facts = SessionFacts {
        probed_at: s.probed_at.unwrap_or_else(UtcTime::now),
        obs,
        pre_connect: None,
        timings: Timings {
            connect_ms: s.connect_ms,
            total_ms: s.total_ms,
            ..Timings::default()
        },
        sni_sent: None,
        tls: TlsFacts {
            version: s.tls_version.clone(),
            cipher: s.cipher.clone(),
            kx_group: s.kx_group.clone(),
        },
        chain: s
            .chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect(),
        transcript: s.transcript.clone(),
        // The canary speaks rustls only: it checks the path, not legacy servers.
        engine: s.tls_attempted.then_some(TlsEngine::Rustls),
        first: None,
    };
    let judge = Judge {
        scan_id,
        vantage,
        pkix: None,
        max_reply: CAP,
        max_detail: CAP,
        rules: Rules::Canary,
        now: UnixTime::now(),
    };
    let out = judge::probe_output(&ProbeTarget::new(target.ip(), target.port()), facts, &judge);
    (out.record, out.certificates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diverge::diverge;
    use crate::{Session, TamperReport};
    use mxray_model::{ProbeErrorClass, UtcTime};

    fn finding(stream: Stream, expected: &[u8], actual: &[u8]) -> Finding {
        let d = diverge(expected, actual).expect("differs");
        let severity = if d.kind == DivergenceKind::Truncated {
            Severity::Incomplete
        } else {
            Severity::Tampered
        };
        Finding {
            stream,
            severity,
            divergence: Some(d),
            detail: "x".into(),
        }
    }

    fn report(verdict: Verdict, findings: Vec<Finding>) -> TamperReport {
        TamperReport {
            verdict,
            detail: "d".repeat(3000),
            vantage: "isp".into(),
            probed_at: UtcTime::from_unix(1_764_417_600),
            target: Some("127.0.12.2:25".parse().expect("sa")),
            local: Some("127.0.99.1:40000".parse().expect("sa")),
            implicit_tls: false,
            error_class: None,
            findings,
            canary_log: CanaryLogStatus::Compared,
            canary_log_detail: None,
            canary_client: Some("127.0.0.1:50000".parse().expect("sa")),
            cert_expected: vec!["aa".into()],
            cert_seen: vec![],
            received_plain: b"250-XXXXXXXA\r\n".to_vec(),
            received_tls: Vec::new(),
            sent_plain: b"STARTTLS\r\n".to_vec(),
            canary_received_plain: b"XXXXXXXA\r\n".to_vec(),
        }
    }

    fn outcome(report: TamperReport) -> CanaryOutcome {
        CanaryOutcome {
            report,
            session: Session::default(),
        }
    }

    #[test]
    fn a_tampered_report_names_its_streams_and_first_divergence() {
        let findings = vec![
            // A truncation first: the row must still show the rewriting.
            finding(Stream::ServerTls, b"250 OK\r\n", b"250"),
            finding(
                Stream::ServerPlain,
                b"250-STARTTLS\r\n",
                b"250-XXXXXXXA\r\n",
            ),
            finding(Stream::ClientPlain, b"STARTTLS\r\n", b"XXXXXXXA\r\n"),
            finding(Stream::ServerPlain, b"ab", b"ac"),
        ];
        let out = outcome(report(Verdict::Tampered, findings));
        let id = uuid::Uuid::from_u128(7);
        let rec = canary_record(&out, id, "isp");
        assert_eq!(rec.scan_id, id);
        assert_eq!(rec.verdict, CanaryVerdict::Tampered);
        assert_eq!(rec.tampered_streams, ["server_plain", "client_plain"]);
        assert_eq!(rec.divergence_stream.as_deref(), Some("server_plain"));
        assert_eq!(rec.divergence_kind.as_deref(), Some("differ"));
        assert_eq!(rec.divergence_offset, Some(4));
        assert_eq!(rec.divergence_line, Some(1));
        assert_eq!(rec.expected_excerpt.as_deref(), Some("250-STARTTLS\\r\\n"));
        assert_eq!(rec.actual_excerpt.as_deref(), Some("250-XXXXXXXA\\r\\n"));
        assert_eq!(
            (rec.target_ip.as_str(), rec.target_port),
            ("127.0.12.2", 25)
        );
        assert_eq!(rec.local_ip.as_deref(), Some("127.0.99.1"));
        assert_eq!(rec.local_port, Some(40000));
        assert_eq!(rec.canary_log, "compared");
        assert_eq!(rec.canary_saw_client.as_deref(), Some("127.0.0.1:50000"));
        assert!(rec.detail.len() < 1100, "detail is capped");
        let back: TamperReport = serde_json::from_str(&rec.report).expect("report JSON");
        assert_eq!(back, out.report, "the full report survives in `report`");
    }

    #[test]
    fn a_blocked_report_has_no_divergence_and_keeps_the_error_class() {
        let mut r = report(Verdict::Blocked, Vec::new());
        r.error_class = Some(ProbeErrorClass::ConnectRefused);
        r.local = None;
        r.canary_log = CanaryLogStatus::NotAsked;
        r.canary_client = None;
        let rec = canary_record(&outcome(r), uuid::Uuid::from_u128(1), "blocked");
        assert_eq!(rec.verdict, CanaryVerdict::Blocked);
        assert_eq!(rec.error_class, Some(ProbeErrorClass::ConnectRefused));
        assert!(rec.tampered_streams.is_empty());
        assert_eq!(rec.divergence_stream, None);
        assert_eq!(rec.divergence_offset, None);
        assert_eq!((rec.local_ip, rec.local_port), (None, None));
        assert_eq!(rec.canary_log, "not_asked");
        assert_eq!(rec.canary_saw_client, None);
    }

    #[test]
    fn an_incomplete_report_shows_where_the_stream_stopped() {
        let f = finding(
            Stream::ServerPlain,
            b"220 canary\r\n250 OK\r\n",
            b"220 canary\r\n",
        );
        let rec = canary_record(
            &outcome(report(Verdict::Error, vec![f])),
            uuid::Uuid::from_u128(1),
            "v",
        );
        assert!(rec.tampered_streams.is_empty());
        assert_eq!(rec.divergence_kind.as_deref(), Some("truncated"));
        assert_eq!(rec.divergence_offset, Some(12));
        assert_eq!(rec.divergence_line, Some(2));
    }

    #[test]
    fn names_match_the_json_report() {
        for s in [
            Stream::ServerPlain,
            Stream::ServerTls,
            Stream::ClientPlain,
            Stream::ClientTls,
            Stream::Certificate,
            Stream::TlsHandshake,
            Stream::Control,
        ] {
            assert_eq!(
                serde_json::to_value(s).expect("json"),
                serde_json::Value::from(s.as_str())
            );
        }
        for k in [
            DivergenceKind::Differ,
            DivergenceKind::Truncated,
            DivergenceKind::Extra,
        ] {
            assert_eq!(
                serde_json::to_value(k).expect("json"),
                serde_json::Value::from(k.as_str())
            );
        }
        for c in [
            CanaryLogStatus::Compared,
            CanaryLogStatus::NotFound,
            CanaryLogStatus::Unavailable,
            CanaryLogStatus::Forged,
            CanaryLogStatus::NotAsked,
        ] {
            assert_eq!(
                serde_json::to_value(c).expect("json"),
                serde_json::Value::from(c.as_str())
            );
        }
        for v in [
            Verdict::Clean,
            Verdict::Tampered,
            Verdict::Blocked,
            Verdict::Error,
        ] {
            assert_eq!(
                serde_json::to_value(v).expect("json"),
                serde_json::Value::from(v.to_model().as_str())
            );
        }
    }
}
