//! The page's size is bounded by its row caps, not by the number of domains: a report where
//! every one of 60,000 domain records (3 dates x 2 vantages x 10,000) is broken (DANE
//! mismatch, MTA-STS fetch error, stripping suspected, a vantage disagreement with 1 KiB of
//! markup-heavy EHLO and transcript per probe) still renders a page under 5 MB (issue 20's
//! aim). The page is kept as
//! `target/test-artifacts/report-worst-case.html` (scripts/report-load-time.py measures how
//! long Chromium needs to load it; docs/benchmarks.md).

use mxray_model::{
    examples, DaneVerdict, MtaStsError, MtaStsStatus, ProbeResult, StrippingSignal, TlsRptResult,
    UtcTime,
};
use mxray_report::html::{page, PageOptions};
use mxray_scan::report::Report;

#[test]
fn a_report_where_everything_is_broken_stays_under_5_mb() {
    let mut r = Report::default();
    let t0 = examples::domain().scanned_at.unix();
    // Every character escapes to 4-6 bytes.
    let ehlo = format!("250-{}\r\n250 XXXXXXXA\r\n", "<\"&'>".repeat(200));
    let transcript = format!("S: {}\n", "\"<>&'".repeat(200));
    for date in 0..3_i64 {
        let at = UtcTime::from_unix(t0 + date * 7 * 86_400);
        for vantage in ["clean", "isp"] {
            for i in 0..10_000 {
                let host = format!("mx{i}.example");
                let mut d = examples::domain();
                d.scan_id = uuid::Uuid::from_u128(date as u128 * 10 + u128::from(vantage == "isp"));
                d.vantage = vantage.into();
                d.scanned_at = at;
                d.domain = format!("d{i}.example");
                d.mx_hosts = vec![host.clone()];
                d.dane = DaneVerdict::Mismatch;
                d.mta_sts = MtaStsStatus::FetchError;
                d.mta_sts_error = Some(MtaStsError::Tls);
                d.tlsrpt_results =
                    vec![TlsRptResult::TlsaInvalid, TlsRptResult::StsPolicyFetchError];
                d.stripping_suspected = vantage == "isp";
                r.add_domain(&d);
                let mut p = examples::smtp_probe();
                p.scan_id = d.scan_id;
                p.vantage = vantage.into();
                p.probed_at = at;
                p.ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
                p.sni = Some(host);
                if vantage == "isp" {
                    p.result = ProbeResult::NoStarttls;
                    p.starttls_advertised = false;
                    p.chain_sha256.clear();
                    p.ehlo_raw = ehlo.clone();
                    p.transcript = transcript.clone();
                    p.stripping_signals = vec![StrippingSignal::StarttlsMangled];
                }
                r.add_probe(&p);
            }
        }
    }
    r.finish();
    assert_eq!(r.dane_problems.len(), 60_000);
    assert!(r.findings.len() > 50_000, "{}", r.findings.len());
    let charts = mxray_report::svg::charts(&r);
    let html = page(&r, &charts, &PageOptions::default());
    let mb = html.len() as f64 / 1e6;
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts");
    std::fs::write(dir.join("report-worst-case.html"), &html).expect("keep page");
    assert!(mb < 5.0, "worst-case page: {mb:.2} MB");
    assert!(mb > 1.0, "the caps were not reached: {mb:.2} MB");
}
