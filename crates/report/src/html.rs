//! The HTML page: one self-contained file (inline CSS, inline SVG, a few lines of inline JS
//! for sortable tables; a Content-Security-Policy that allows nothing else, so the page makes
//! no request when opened and an injected script could not run even if escaping failed).
//!
//! Every statistic is an `<a class="n">` that links to the embedded SQL that computes it
//! (`href="#sql-<name>"`, `title` = the file's path) and says where the same number is in the
//! `--json` output: `data-k` is a JSON pointer to the value; a share also has `data-of` (the
//! pointer of its denominator; the text is `k / of` in percent); a count of list entries has
//! `data-len` (the list's pointer) and optionally `data-kind` (only entries of that `kind`).

use std::fmt::Write as _;

use mxray_scan::report::{AdoptionRow, ClassCount, Finding, FindingKind, Report};
use sha2::{Digest, Sha256};

use crate::sql::{self, SqlFile};
use crate::svg::{pct, Chart};

/// Escapes text for HTML and XML (element content and quoted attributes alike).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab/newline are invalid in XML 1.0.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Options of the page.
#[derive(Debug, Clone)]
pub struct PageOptions {
    /// Page title. Default: "mxray report".
    pub title: String,
    /// Where the records came from (directories, ClickHouse database), shown in the header.
    pub source: String,
    /// Rows shown per long table (all rows are in `--json`). Default 1000: keeps a 100,000-
    /// domain report's page small.
    pub row_cap: usize,
    /// Stripping findings shown (each carries EHLO and transcript excerpts). Default 300.
    pub finding_cap: usize,
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            title: "mxray report".into(),
            source: String::new(),
            row_cap: 1000,
            finding_cap: 300,
        }
    }
}

const CSS: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:1.5em auto;max-width:1200px;\
color:#222;padding:0 1em}h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}\
nav a{margin-right:1em}figure{display:inline-block;vertical-align:top;width:560px;margin:.5em 1em .5em 0}figure svg{width:100%;height:auto}figcaption{font-size:.85em;\
color:#555}table{border-collapse:collapse;margin:.5em 0;font-size:.85em}th,td{border:1px solid #ddd;\
padding:3px 6px;vertical-align:top;text-align:left}th{background:#f3f3f3;cursor:pointer;\
user-select:none}th[aria-sort=ascending]::after{content:' \\25B2'}th[aria-sort=descending]::after\
{content:' \\25BC'}td.num{text-align:right;white-space:nowrap}a.n{color:#0645ad;text-decoration:none}\
a.n:hover{text-decoration:underline}pre{white-space:pre-wrap;word-break:break-all;margin:.2em 0;\
background:#f8f8f8;padding:4px;font-size:.9em;max-width:60em}details.sql pre{max-height:30em;\
overflow:auto}.note{color:#666;font-size:.85em}.ev{margin:.3em 0}.tw{content-visibility:auto;contain-intrinsic-size:auto 900px;overflow-x:auto}:target{outline:2px solid #E69F00}";

const JS: &str = "(function(){function key(td){if(!td)return '';var v=td.getAttribute('data-v');\
if(v!==null&&v!==''&&!isNaN(v))return Number(v);return td.textContent.trim();}\
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',\
function(){var t=th.closest('table'),b=t.tBodies[0],row=th.parentNode,\
i=Array.prototype.indexOf.call(row.children,th),asc=th.getAttribute('aria-sort')!=='ascending';\
row.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort');});\
th.setAttribute('aria-sort',asc?'ascending':'descending');var rows=Array.prototype.slice.call(b.rows);\
rows.sort(function(x,y){var a=key(x.cells[i]),c=key(y.cells[i]);var r=(typeof a==='number'&&\
typeof c==='number')?a-c:(String(a)<String(c)?-1:String(a)>String(c)?1:0);return asc?r:-r;});\
rows.forEach(function(r){b.appendChild(r);});});});\
function openTarget(){var id=decodeURIComponent(location.hash.slice(1));if(!id)return;\
var e=document.getElementById(id);if(e&&e.tagName==='DETAILS')e.open=true;}\
window.addEventListener('hashchange',openTarget);openTarget();})();";

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn csp_hash(s: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(s.as_bytes())))
}

/// A number that links to its SQL: `<a class="n" ...>`.
fn link(text: &str, q: &SqlFile, attrs: &str) -> String {
    format!(
        "<a class=\"n\" href=\"#{}\" title=\"{}\" {attrs}>{}</a>",
        q.anchor(),
        escape(q.path),
        escape(text)
    )
}

/// A count at JSON pointer `k`.
fn count(n: u64, q: &SqlFile, k: &str) -> String {
    link(&n.to_string(), q, &format!("data-k=\"{k}\""))
}

/// A share `k / of` in percent.
fn share(n: u64, of: u64, q: &SqlFile, k: &str, of_k: &str) -> String {
    let s = if of == 0 { 0.0 } else { n as f64 / of as f64 };
    link(&pct(s), q, &format!("data-k=\"{k}\" data-of=\"{of_k}\""))
}

/// A number of list entries (optionally of one kind).
fn len(n: usize, q: &SqlFile, list: &str, kind: Option<&str>) -> String {
    let kind = kind
        .map(|k| format!(" data-kind=\"{k}\""))
        .unwrap_or_default();
    link(&n.to_string(), q, &format!("data-len=\"{list}\"{kind}"))
}

fn num_td(sort_value: u64, inner: &str) -> String {
    format!("<td class=\"num\" data-v=\"{sort_value}\">{inner}</td>")
}

fn td(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

fn thead(cols: &[&str]) -> String {
    let mut s = String::from("<thead><tr>");
    for c in cols {
        let _ = write!(s, "<th>{}</th>", escape(c));
    }
    s.push_str("</tr></thead>");
    s
}

fn shown_note(shown: usize, total: usize, what: &str) -> String {
    if shown < total {
        format!(
            "<p class=\"note\">First {shown} of {total} {what} shown; all of them are in \
             <code>mxray report --json</code> and in the query's result.</p>"
        )
    } else {
        String::new()
    }
}

fn adoption_table(r: &Report) -> String {
    let q = &sql::ADOPTION_DOMAINS;
    let mut cols = vec!["scan date", "vantage", "domains", "mail domains"];
    cols.extend(AdoptionRow::METRICS);
    let mut s = format!(
        "<div class=\"tw\"><table class=\"sortable\" id=\"t-adoption\">{}<tbody>",
        thead(&cols)
    );
    for (i, row) in r.adoption.iter().enumerate() {
        let p = format!("/adoption/{i}");
        s.push_str("<tr>");
        s.push_str(&td(&row.scan_date));
        s.push_str(&td(&row.vantage));
        s.push_str(&num_td(
            row.domains,
            &count(row.domains, q, &format!("{p}/domains")),
        ));
        s.push_str(&num_td(
            row.mail_domains,
            &count(row.mail_domains, q, &format!("{p}/mail_domains")),
        ));
        for m in AdoptionRow::METRICS {
            let n = row.count(m).unwrap_or(0);
            let k = format!("{p}/{m}");
            let inner = format!(
                "{} ({})",
                count(n, q, &k),
                share(n, row.mail_domains, q, &k, &format!("{p}/mail_domains"))
            );
            s.push_str(&num_td(n, &inner));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

fn class_table(rows: &[ClassCount], list: &str, q: &SqlFile, with_error: bool, id: &str) -> String {
    let mut cols = vec!["scan date", "vantage", "class"];
    if with_error {
        cols.push("error class");
    }
    cols.extend(["domains", "share"]);
    let mut s = format!(
        "<div class=\"tw\"><table class=\"sortable\" id=\"{id}\">{}<tbody>",
        thead(&cols)
    );
    for (i, c) in rows.iter().enumerate() {
        let p = format!("{list}/{i}");
        s.push_str("<tr>");
        s.push_str(&td(&c.scan_date));
        s.push_str(&td(&c.vantage));
        s.push_str(&td(&c.class));
        if with_error {
            s.push_str(&td(&c.error_class));
        }
        let k = format!("{p}/domains");
        s.push_str(&num_td(c.domains, &count(c.domains, q, &k)));
        s.push_str(&num_td(
            c.domains,
            &share(c.domains, c.of, q, &k, &format!("{p}/of")),
        ));
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

fn join<T: std::fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

fn finding_sql(kind: FindingKind) -> &'static SqlFile {
    match kind {
        FindingKind::StrippingSuspected => &sql::STRIPPING_DOMAINS,
        FindingKind::VantageDisagreement => &sql::VANTAGE_DISAGREEMENT,
        FindingKind::HistoryRegression => &sql::HISTORY_REGRESSION,
    }
}

fn findings_table(r: &Report, cap: usize) -> String {
    let cols = [
        "kind",
        "domain",
        "destination",
        "MX host (SNI)",
        "network",
        "vantages",
        "dates",
        "signals",
        "evidence",
    ];
    let mut s = format!(
        "<div class=\"tw\"><table class=\"sortable\" id=\"t-findings\">{}<tbody>",
        thead(&cols)
    );
    for (i, f) in r.findings.iter().take(cap).enumerate() {
        s.push_str(&finding_row(i, f));
    }
    s.push_str("</tbody></table></div>");
    s.push_str(&shown_note(
        cap.min(r.findings.len()),
        r.findings.len(),
        "findings",
    ));
    s
}

fn finding_row(i: usize, f: &Finding) -> String {
    let mut s = String::from("<tr>");
    let _ = write!(
        s,
        "<td><a href=\"#{}\" title=\"{}\">{}</a></td>",
        finding_sql(f.kind).anchor(),
        escape(finding_sql(f.kind).path),
        f.kind.as_str()
    );
    s.push_str(&td(f.domain.as_deref().unwrap_or("")));
    let dest = match (&f.ip, f.port) {
        (Some(ip), Some(port)) if ip.contains(':') => format!("[{ip}]:{port}"),
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        _ => String::new(),
    };
    s.push_str(&td(&dest));
    s.push_str(&td(f.sni.as_deref().unwrap_or("")));
    match &f.network {
        Some(n) => {
            let asn = link(
                &format!("AS{}", n.asn),
                &sql::IP_ASN_LOOKUP,
                &format!("data-k=\"/findings/{i}/network/asn\" data-prefix=\"AS\""),
            );
            let _ = write!(
                s,
                "<td data-v=\"{}\">{asn} {} <span class=\"note\">{}</span></td>",
                n.asn,
                escape(&n.as_name),
                escape(&n.prefix)
            );
        }
        None => s.push_str("<td></td>"),
    }
    s.push_str(&td(&f.vantages.join(", ")));
    s.push_str(&td(&f.dates.join(", ")));
    s.push_str(&td(&join(&f.signals, ", ")));
    s.push_str("<td>");
    if !f.evidence.is_empty() {
        let _ = write!(
            s,
            "<details><summary>{} probe{}</summary>",
            f.evidence.len(),
            if f.evidence.len() == 1 { "" } else { "s" }
        );
        for e in &f.evidence {
            let _ = write!(
                s,
                "<div class=\"ev\"><b>{}</b> {} {} {}: STARTTLS {}{}<pre>{}</pre>",
                escape(&e.vantage),
                escape(&e.date),
                escape(&e.ip),
                e.port,
                if e.starttls_advertised {
                    "advertised"
                } else {
                    "not advertised"
                },
                if e.starttls_ok {
                    ", TLS completed"
                } else {
                    ", no TLS"
                },
                escape(e.ehlo.trim_end())
            );
            if !e.transcript.is_empty() {
                let _ = write!(s, "<pre>{}</pre>", escape(e.transcript.trim_end()));
            }
            s.push_str("</div>");
        }
        s.push_str("</details>");
    }
    s.push_str("</td></tr>");
    s
}

fn dane_table(r: &Report, cap: usize) -> String {
    let cols = [
        "scan date",
        "vantage",
        "domain",
        "dane",
        "starttls",
        "what is wrong",
        "RFC 8460 result",
        "MX hosts",
    ];
    let mut s = format!(
        "<div class=\"tw\"><table class=\"sortable\" id=\"t-dane\">{}<tbody>",
        thead(&cols)
    );
    for p in r.dane_problems.iter().take(cap) {
        s.push_str("<tr>");
        for cell in [
            p.scan_date.as_str(),
            &p.vantage,
            &p.domain,
            p.dane.as_str(),
            p.starttls.as_str(),
            p.what,
            &join(&p.tlsrpt_results, ", "),
            &p.mx_hosts.join(", "),
        ] {
            s.push_str(&td(cell));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s.push_str(&shown_note(
        cap.min(r.dane_problems.len()),
        r.dane_problems.len(),
        "domains",
    ));
    s
}

fn mta_sts_table(r: &Report, cap: usize) -> String {
    let cols = [
        "scan date",
        "vantage",
        "domain",
        "mta_sts",
        "error class",
        "compliant",
        "what is wrong",
        "RFC 8460 result",
    ];
    let mut s = format!(
        "<div class=\"tw\"><table class=\"sortable\" id=\"t-mta-sts\">{}<tbody>",
        thead(&cols)
    );
    for p in r.mta_sts_problems.iter().take(cap) {
        s.push_str("<tr>");
        let err = p.error_class.map(|e| e.as_str()).unwrap_or("");
        let compliant = match p.compliant {
            Some(true) => "yes",
            Some(false) => "no",
            None => "",
        };
        for cell in [
            p.scan_date.as_str(),
            &p.vantage,
            &p.domain,
            p.mta_sts.as_str(),
            err,
            compliant,
            &p.what,
            &join(&p.tlsrpt_results, ", "),
        ] {
            s.push_str(&td(cell));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s.push_str(&shown_note(
        cap.min(r.mta_sts_problems.len()),
        r.mta_sts_problems.len(),
        "domains",
    ));
    s
}

fn figure(c: &Chart) -> String {
    format!(
        "<figure id=\"chart-{}\" class=\"chart\">{}<figcaption>{}: computed by \
         <a href=\"#{}\">{}</a></figcaption></figure>",
        escape(&c.id),
        c.svg,
        escape(&c.title),
        c.sql.anchor(),
        escape(c.sql.path)
    )
}

/// The whole page.
pub fn page(r: &Report, charts: &[Chart], o: &PageOptions) -> String {
    let csp = format!(
        "default-src 'none'; style-src {}; script-src {}; img-src data:; base-uri 'none'; \
         form-action 'none'",
        csp_hash(CSS),
        csp_hash(JS)
    );
    let mut s = String::with_capacity(256 * 1024);
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{CSS}</style></head><body><h1>{t}</h1>",
        t = escape(&o.title)
    );
    if !o.source.is_empty() {
        let _ = write!(s, "<p class=\"note\">Records: {}</p>", escape(&o.source));
    }
    s.push_str(
        "<p class=\"note\">Every number links to the SQL that computes it (embedded at the end \
         of the page; run it with chDB on the Parquet files or on ClickHouse). Click a column \
         heading to sort.</p><nav><a href=\"#adoption\">Adoption</a><a href=\"#stripping\">\
         Stripping</a><a href=\"#dane\">DANE</a><a href=\"#mta-sts\">MTA-STS</a>\
         <a href=\"#sql\">SQL</a></nav>",
    );

    // Summary.
    let kinds = [
        FindingKind::StrippingSuspected,
        FindingKind::VantageDisagreement,
        FindingKind::HistoryRegression,
    ];
    s.push_str("<h2 id=\"summary\">Summary</h2><table id=\"t-summary\"><tbody>");
    for k in kinds {
        let n = r.findings.iter().filter(|f| f.kind == k).count();
        let _ = write!(
            s,
            "<tr><th>{}</th><td class=\"num\">{}</td></tr>",
            k.as_str(),
            len(n, finding_sql(k), "/findings", Some(k.as_str()))
        );
    }
    let _ = write!(
        s,
        "<tr><th>DANE broken (domain, date, vantage)</th><td class=\"num\">{}</td></tr>\
         <tr><th>MTA-STS broken or not compliant</th><td class=\"num\">{}</td></tr>\
         </tbody></table>",
        len(
            r.dane_problems.len(),
            &sql::DANE_BROKEN_DOMAINS,
            "/dane_problems",
            None
        ),
        len(
            r.mta_sts_problems.len(),
            &sql::MTA_STS_CLASSES,
            "/mta_sts_problems",
            None
        )
    );

    s.push_str("<h2 id=\"adoption\">Adoption</h2>");
    for c in charts {
        s.push_str(&figure(c));
    }
    s.push_str(
        "<p class=\"note\">Per scan date and vantage, latest record per domain; shares are of \
         the mail domains (mx_kind mx or implicit).</p>",
    );
    s.push_str(&adoption_table(r));

    s.push_str(
        "<h2 id=\"stripping\">Stripping findings</h2><p class=\"note\">EHLO replies and \
         transcripts are the servers' (or the path's) own bytes, shown as text.</p>",
    );
    s.push_str(&findings_table(r, o.finding_cap));

    s.push_str("<h2 id=\"dane\">DANE</h2>");
    s.push_str(&class_table(
        &r.dane_classes,
        "/dane_classes",
        &sql::DANE_CLASSES,
        false,
        "t-dane-classes",
    ));
    s.push_str("<h3>Broken DANE</h3>");
    s.push_str(&dane_table(r, o.row_cap));

    s.push_str("<h2 id=\"mta-sts\">MTA-STS</h2>");
    s.push_str(&class_table(
        &r.mta_sts_classes,
        "/mta_sts_classes",
        &sql::MTA_STS_CLASSES,
        true,
        "t-mta-sts-classes",
    ));
    let _ = write!(
        s,
        "<h3>Broken or not compliant</h3><p class=\"note\">Not compliant: see also \
         <a href=\"#{}\">{}</a> for the uncovered MX hosts.</p>",
        sql::MTA_STS_MX_NOT_COVERED.anchor(),
        sql::MTA_STS_MX_NOT_COVERED.path
    );
    s.push_str(&mta_sts_table(r, o.row_cap));

    s.push_str("<h2 id=\"sql\">SQL</h2>");
    for q in sql::ALL {
        let _ = write!(
            s,
            "<details class=\"sql\" id=\"{}\"><summary><code>{}</code></summary><pre>{}</pre>\
             </details>",
            q.anchor(),
            escape(q.path),
            escape(q.text)
        );
    }
    let _ = writeln!(s, "<script>{JS}</script></body></html>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::{examples, ProbeResult, StrippingSignal};

    /// A report whose network data carries markup: vantage names, host names, EHLO lines.
    pub(crate) fn hostile_report() -> Report {
        let mut r = Report::default();
        let mut clean = examples::smtp_probe();
        clean.vantage = "clean".into();
        clean.sni = Some("mx.<b>bold</b>.example".into());
        let mut isp = clean.clone();
        isp.vantage = "isp<script>alert(1)</script>".into();
        isp.result = ProbeResult::NoStarttls;
        isp.starttls_advertised = false;
        isp.chain_sha256.clear();
        isp.ehlo_raw = "250-<script>alert('ehlo')</script>\r\n250 XXXXXXXA\r\n".into();
        isp.transcript = "S: 250 \"><img src=x onerror=alert(2)>\n".into();
        isp.stripping_signals = vec![StrippingSignal::StarttlsMangled];
        r.add_probe(&clean);
        r.add_probe(&isp);
        let mut d = examples::domain();
        d.domain = "<i>dom</i>.example".into();
        d.vantage = isp.vantage.clone();
        d.dane = mxray_model::DaneVerdict::Bogus;
        r.add_domain(&d);
        d.vantage = "clean".into();
        r.add_domain(&d);
        r.finish();
        r
    }

    #[test]
    fn network_strings_are_text_everywhere() {
        let r = hostile_report();
        let charts = crate::svg::charts(&r);
        let page = page(&r, &charts, &PageOptions::default());
        for bad in ["<script>alert", "<img", "<b>bold", "<i>dom"] {
            assert!(!page.contains(bad), "{bad} unescaped");
        }
        assert!(page.contains("&lt;script&gt;alert(&#39;ehlo&#39;)&lt;/script&gt;"));
        assert!(page.contains("mx.&lt;b&gt;bold&lt;/b&gt;.example"));
        assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
        assert_eq!(page.matches("<script>").count(), 1);
        for c in &charts {
            assert!(!c.svg.contains("<script"), "{}", c.id);
        }
    }

    #[test]
    fn every_number_links_to_embedded_sql() {
        let r = hostile_report();
        let page = page(&r, &crate::svg::charts(&r), &PageOptions::default());
        let mut links = 0;
        let marker = "<a class=\"n\" href=\"#";
        for (i, _) in page.match_indices(marker) {
            let rest = &page[i + marker.len()..];
            let anchor = &rest[..rest.find('"').expect("href end")];
            assert!(
                page.contains(&format!("<details class=\"sql\" id=\"{anchor}\">")),
                "{anchor}"
            );
            links += 1;
        }
        assert!(links > 20, "{links}");
        // Numbers appear only inside those links: every numeric cell holds one.
        for (i, _) in page.match_indices("<td class=\"num\"") {
            let cell = &page[i..i + page[i..].find("</td>").expect("cell end")];
            assert!(cell.contains("<a class=\"n\""), "{cell}");
        }
        // The CSP admits exactly the page's own style and script.
        assert!(page.contains(&csp_hash(JS)) && page.contains(&csp_hash(CSS)));
        assert!(page.contains("default-src 'none'"));
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("a\u{1b}b\r"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
