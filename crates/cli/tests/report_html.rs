//! `mxray report --html` and `--png` on a two-vantage, three-date lab dataset, checked in a
//! real browser: headless Chromium (Debian's `chromium` + `chromium-driver`) driven over
//! chromedriver's WebDriver HTTP API on loopback. The test fails (never skips) when Chromium
//! or chromedriver is missing. A screenshot of the page is kept as an artifact under
//! `target/test-artifacts/report-html/` (with the page itself and its PNG charts).
//!
//! The dataset: `mxray scan --lab` from vantages `clean` and `isp` (the lab's stripping
//! middlebox sits on `isp`'s path), three times (lab epochs 0, 0, 1: the regress host loses
//! STARTTLS in epoch 1), each scan's records moved to its own date a week apart, and one
//! hostile EHLO line and host name (`<script>` in both) written into the stripped host's probe;
//! an IP-to-AS table (`--ip-asn`) whose AS name is markup too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{lab_scan, run_ok};
use mxray_model::{Record, RecordKind, UtcTime};
use mxray_store::{read_table_file, ParquetOptions, ParquetSink};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const HOSTILE_EHLO: &str = "250-<script>window.__pwned=1</script>";
const HOSTILE_HOST: &str = "mx.<img src=x onerror=window.__pwned=2>.lab.test";
const HOSTILE_AS: &str = "AS-<svg onload=window.__pwned=3>";
const VANTAGES: [&str; 2] = ["clean", "isp"];

/// Moves every timestamp of a result directory's scans, domains and probes by `shift` seconds
/// into `out`; with `hostile`, the stripped host's probes get a `<script>` EHLO line and host.
fn shifted(src: &Path, out: &Path, shift: i64, hostile: bool) {
    let mut sink = ParquetSink::create(out, ParquetOptions::default()).expect("sink");
    let t = |u: UtcTime| UtcTime::from_unix(u.unix() + shift);
    for kind in [RecordKind::Scan, RecordKind::Domain, RecordKind::SmtpProbe] {
        let path = src.join(format!("{}.parquet", kind.table()));
        for mut rec in read_table_file(&path, kind).expect("read lab output") {
            match &mut rec {
                Record::Scan(s) => {
                    s.started_at = t(s.started_at);
                    s.finished_at = s.finished_at.map(t);
                }
                Record::Domain(d) => d.scanned_at = t(d.scanned_at),
                Record::SmtpProbe(p) => {
                    p.probed_at = t(p.probed_at);
                    if hostile && p.sni.as_deref() == Some("mx.stripped.lab.test") {
                        p.ehlo_raw = format!("{HOSTILE_EHLO}\r\n{}", p.ehlo_raw);
                        p.transcript = format!("S: {HOSTILE_EHLO}\n{}", p.transcript);
                        p.sni = Some(HOSTILE_HOST.into());
                    }
                }
                _ => {}
            }
            sink.write_sync(&rec).expect("write");
        }
    }
    sink.close_sync().expect("close");
}

/// Two vantages x three dates; returns the six result directories.
fn dataset(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for (date, epoch) in ["0", "0", "1"].iter().enumerate() {
        for v in VANTAGES {
            let raw = root.join(format!("raw-{v}-{date}"));
            lab_scan([
                std::ffi::OsStr::new("--vantage"),
                v.as_ref(),
                "--lab-epoch".as_ref(),
                epoch.as_ref(),
                "--out".as_ref(),
                raw.as_os_str(),
            ]);
            let out = root.join(format!("{v}-{date}"));
            // Dates a week apart, the last one today.
            let shift = -(2 - date as i64) * 7 * 86_400;
            shifted(&raw, &out, shift, date == 2);
            dirs.push(out);
        }
    }
    dirs
}

fn report(dirs: &[PathBuf], extra: &[&std::ffi::OsStr]) -> Vec<u8> {
    let mut args: Vec<std::ffi::OsString> = vec!["report".into()];
    args.extend(extra.iter().map(|a| a.to_os_string()));
    args.extend(dirs.iter().map(|d| d.as_os_str().to_owned()));
    run_ok(args).stdout
}

fn artifacts() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("test-artifacts/report-html");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

// ---- the page's numbers against --json ------------------------------------------------------

/// Every `<a class="n" ...>TEXT</a>`: (attributes, text).
fn number_links(page: &str) -> Vec<(BTreeMap<String, String>, String)> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find("<a class=\"n\" ") {
        rest = &rest[i + 3..];
        let end = rest.find('>').expect("tag end");
        let mut attrs = BTreeMap::new();
        let mut a = &rest[..end];
        while let Some(eq) = a.find("=\"") {
            let name = a[..eq].trim().to_string();
            let after = &a[eq + 2..];
            let close = after.find('"').expect("attribute end");
            attrs.insert(name, after[..close].to_string());
            a = &after[close + 1..];
        }
        let body = &rest[end + 1..];
        let text = &body[..body.find("</a>").expect("</a>")];
        out.push((attrs, text.to_string()));
    }
    out
}

fn pct(n: f64, of: f64) -> String {
    format!("{:.1}%", if of == 0.0 { 0.0 } else { 100.0 * n / of })
}

/// Checks every number link of the page against the JSON report; returns how many.
fn check_numbers(page: &str, v: &Value) -> usize {
    let links = number_links(page);
    for (attrs, text) in &links {
        let href = attrs.get("href").expect("href");
        let anchor = href.strip_prefix('#').expect("in-page link");
        assert!(
            page.contains(&format!("<details class=\"sql\" id=\"{anchor}\">")),
            "{href}: no embedded SQL"
        );
        let path = attrs.get("title").expect("title names the SQL file");
        assert!(page.contains(&format!("<code>{path}</code>")), "{path}");
        if let Some(k) = attrs.get("data-k") {
            let n = v.pointer(k).unwrap_or_else(|| panic!("{k} not in --json"));
            if let Some(of) = attrs.get("data-of") {
                let of = v.pointer(of).and_then(Value::as_f64).expect("denominator");
                assert_eq!(*text, pct(n.as_f64().expect("number"), of), "{k}");
            } else {
                let prefix = attrs.get("data-prefix").map(String::as_str).unwrap_or("");
                assert_eq!(*text, format!("{prefix}{n}"), "{k}");
            }
        } else {
            let list = attrs.get("data-len").expect("data-k or data-len");
            let items = v.pointer(list).and_then(Value::as_array).expect("list");
            let n = match attrs.get("data-kind") {
                Some(kind) => items.iter().filter(|i| i["kind"] == **kind).count(),
                None => items.len(),
            };
            assert_eq!(*text, n.to_string(), "{list} {:?}", attrs.get("data-kind"));
        }
    }
    links.len()
}

// ---- WebDriver over loopback ----------------------------------------------------------------

struct Driver {
    child: Child,
    port: u16,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One HTTP/1.1 request to chromedriver on 127.0.0.1; returns the JSON body.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // Read the header, then exactly the body (chromedriver may keep the connection open).
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = s.read(&mut buf)?;
        if n == 0 || raw.len() > 1 << 20 {
            return Err(std::io::Error::other("no HTTP header end"));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let lower = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let length: Option<usize> = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    let chunked = lower.contains("transfer-encoding: chunked");
    loop {
        let body = raw.len() - split - 4;
        let done = match length {
            Some(n) => body >= n,
            None => chunked && raw.ends_with(b"0\r\n\r\n"),
        };
        if done || raw.len() > 64 << 20 {
            break;
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut payload = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &payload[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .unwrap_or(rest.len());
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16)
                .map_err(std::io::Error::other)?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + size]);
            rest = &rest[nl + 2 + size + 2..];
        }
        payload = out;
    }
    serde_json::from_slice(&payload).map_err(std::io::Error::other)
}

impl Driver {
    fn start(profile: &Path) -> Driver {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install Debian's chromium and chromium-driver \
                 (scripts/apt-packages.d/report.txt; scripts/test installs them)"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        // From here on, a panic kills chromedriver (Drop): a leaked one would keep the build
        // lock's inherited descriptor open.
        let mut d = Driver {
            child,
            port,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = http(port, "GET", "/status", None) {
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,4000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let v = http(port, "POST", "/session", Some(&caps)).expect("new session");
        d.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        d
    }

    fn cmd(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{what}", self.session);
        let v = http(self.port, method, &path, body.as_ref()).expect("webdriver");
        assert!(v["value"].get("error").is_none(), "{what}: {v}");
        v["value"].clone()
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn click(&self, css: &str) {
        let e = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = e
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_string();
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// The browser console since the last call.
    fn console(&self) -> Vec<Value> {
        let v = self.cmd("POST", "/se/log", Some(json!({"type": "browser"})));
        v.as_array().cloned().unwrap_or_default()
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let data: Vec<u8> = chunk
            .iter()
            .filter(|c| **c != b'=')
            .map(|c| val(*c))
            .collect();
        let mut n: u32 = 0;
        for (i, d) in data.iter().enumerate() {
            n |= u32::from(*d) << (18 - 6 * i);
        }
        for i in 0..data.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn column(d: &Driver, table: &str, col: usize) -> Vec<String> {
    let v = d.js(&format!(
        "return Array.from(document.querySelectorAll('#{table} tbody tr')).map(function(r)\
         {{return r.cells[{col}].textContent.trim();}});"
    ));
    v.as_array()
        .expect("column")
        .iter()
        .map(|x| x.as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn html_report_of_two_vantages_and_three_dates_renders_in_chromium() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dirs = dataset(tmp.path());
    let art = artifacts();
    let page_path = art.join("report.html");
    let png_dir = art.join("png");
    let _ = std::fs::remove_dir_all(&png_dir);
    // The destinations' networks (AS names are outside data too).
    let ip_asn = tmp.path().join("ip_asn.parquet");
    mxray_report::asn::write_parquet(
        &ip_asn,
        &[("127.0.0.0".parse().expect("ip"), 8, 64496, HOSTILE_AS)],
    )
    .expect("ip_asn");
    let json: Value = serde_json::from_slice(&report(
        &dirs,
        &["--json".as_ref(), "--ip-asn".as_ref(), ip_asn.as_os_str()],
    ))
    .expect("json");
    report(
        &dirs,
        &[
            "--html".as_ref(),
            page_path.as_os_str(),
            "--png".as_ref(),
            png_dir.as_os_str(),
            "--ip-asn".as_ref(),
            ip_asn.as_os_str(),
        ],
    );
    let page = std::fs::read_to_string(&page_path).expect("page");

    // The dataset is what the test means: three dates, two vantages, the stripped path and
    // the regressed host found.
    let dates: BTreeSet<&str> = json["adoption"]
        .as_array()
        .expect("adoption")
        .iter()
        .filter_map(|r| r["scan_date"].as_str())
        .collect();
    assert_eq!(dates.len(), 3, "{dates:?}");
    let kinds: BTreeSet<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    for k in [
        "stripping_suspected",
        "vantage_disagreement",
        "history_regression",
    ] {
        assert!(kinds.contains(k), "no {k} finding: {kinds:?}");
    }
    assert!(json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .all(|f| f["ip"].is_null() || f["network"]["asn"] == 64496));
    assert!(!json["dane_problems"].as_array().expect("dane").is_empty());
    assert!(!json["mta_sts_problems"].as_array().expect("sts").is_empty());

    // The page's numbers are the JSON's numbers, each linked to embedded SQL.
    let checked = check_numbers(&page, &json);
    assert!(checked > 100, "only {checked} numbers on the page");

    // Hostile input stays text in the markup.
    assert!(!page.contains("<script>window.__pwned"));
    assert!(page.contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;"));
    assert!(!page.contains("<img src=x"));
    assert!(!page.contains("<svg onload"));
    assert!(page.contains("data-k=\"/findings/0/network/asn\""));
    assert_eq!(
        page.matches("<script>").count(),
        1,
        "one script: the page's own"
    );

    // --png: one decodable, non-blank PNG per chart of the page.
    let marker = "<figure id=\"chart-";
    let chart_ids: Vec<String> = page
        .match_indices(marker)
        .map(|(i, _)| {
            let rest = &page[i + marker.len()..];
            rest[..rest.find('"').expect("id end")].to_string()
        })
        .collect();
    assert_eq!(chart_ids.len(), 6, "{chart_ids:?}");
    let mut pngs: Vec<String> = std::fs::read_dir(&png_dir)
        .expect("png dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pngs.sort();
    let mut want: Vec<String> = chart_ids.iter().map(|c| format!("{c}.png")).collect();
    want.sort();
    assert_eq!(pngs, want);
    for p in &pngs {
        let pix = resvg::tiny_skia::Pixmap::load_png(png_dir.join(p)).expect("decodable PNG");
        assert!(pix.width() >= 600 && pix.height() >= 200, "{p}");
        let colours: BTreeSet<[u8; 4]> = pix
            .pixels()
            .iter()
            .map(|c| [c.red(), c.green(), c.blue(), c.alpha()])
            .collect();
        assert!(colours.len() > 10, "{p}: {} colours: blank", colours.len());
    }

    // The browser.
    let profile = tmp.path().join("chromium-profile");
    let d = Driver::start(&profile);
    // The console channel works (a message we write shows up), then is empty of errors.
    let url = format!("file://{}", page_path.display());
    d.cmd("POST", "/url", Some(json!({"url": url})));
    d.js("console.error('mxray-test-probe');");
    let log = d.console();
    assert!(
        log.iter().any(|e| e["message"]
            .as_str()
            .unwrap_or("")
            .contains("mxray-test-probe")),
        "the browser log does not work: {log:?}"
    );
    let errors: Vec<&Value> = log
        .iter()
        .filter(|e| {
            !e["message"]
                .as_str()
                .unwrap_or("")
                .contains("mxray-test-probe")
        })
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(errors.is_empty(), "console: {errors:?}");
    assert_eq!(d.js("return typeof window.__pwned;"), "undefined");
    assert_eq!(
        d.js("return performance.getEntriesByType('resource').length;"),
        0
    );
    let text = d.js("return document.body.textContent;");
    assert!(text
        .as_str()
        .unwrap_or("")
        .contains("<script>window.__pwned=1</script>"));
    assert!(text.as_str().unwrap_or("").contains(HOSTILE_HOST));
    assert!(text.as_str().unwrap_or("").contains(HOSTILE_AS));

    // Every chart rendered, with one series per vantage.
    let charts = d.js(
        "return Array.from(document.querySelectorAll('figure.chart')).map(function(f){\
         var s=f.querySelector('svg'),b=s.getBoundingClientRect();return {id:f.id,\
         w:b.width,h:b.height,marks:s.querySelectorAll('g.series rect, g.series circle').length,\
         series:Array.from(s.querySelectorAll('g.series')).map(function(g){\
         return g.getAttribute('data-series');}),legend:Array.from(s.querySelectorAll(\
         'text.legend')).map(function(t){return t.textContent;})};});",
    );
    let charts = charts.as_array().expect("charts");
    assert_eq!(charts.len(), 6, "{charts:?}");
    for c in charts {
        assert!(c["w"].as_f64().unwrap_or(0.0) > 300.0, "{c}");
        assert!(c["h"].as_f64().unwrap_or(0.0) > 100.0, "{c}");
        assert_eq!(c["series"], json!(VANTAGES), "{c}");
        assert_eq!(c["legend"], json!(VANTAGES), "{c}");
        assert!(c["marks"].as_u64().unwrap_or(0) >= 2, "{c}");
    }
    // Time series: one point per date per vantage.
    let series = &charts[1];
    assert_eq!(series["marks"], 6, "{series}");

    // Sorting: text ascending, then descending; numbers numerically.
    let domains = column(&d, "t-dane", 2);
    assert!(domains.len() > 3);
    d.click("#t-dane th:nth-child(3)");
    let up = column(&d, "t-dane", 2);
    let mut want = domains.clone();
    want.sort(); // the page compares text by code point
    assert_eq!(up, want);
    d.click("#t-dane th:nth-child(3)");
    let down = column(&d, "t-dane", 2);
    assert_eq!(down, up.iter().rev().cloned().collect::<Vec<_>>());
    d.click("#t-dane-classes th:nth-child(4)");
    let counts: Vec<u64> = column(&d, "t-dane-classes", 3)
        .iter()
        .map(|s| s.parse().expect("count"))
        .collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    // A number's link opens its SQL.
    d.click("#t-adoption tbody tr:first-child td:nth-child(5) a");
    assert_eq!(
        d.js("return document.getElementById('sql-adoption_domains').open;"),
        true
    );
    let log = d.console();
    assert!(log.is_empty(), "console after interaction: {log:?}");

    d.js("window.scrollTo(0,0);");
    let shot = d.cmd("GET", "/screenshot", None);
    let png = base64_decode(shot.as_str().expect("screenshot"));
    assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    std::fs::write(art.join("screenshot.png"), png).expect("keep screenshot");
}
