//! The charts, as SVG strings generated here (no chart library): adoption by vantage at the
//! latest scan date, and one time series per adoption metric (one line per vantage). The same
//! strings go inline into the HTML page and, rasterized, into the PNG files.
//!
//! Each series is a `<g class="series" data-series="NAME">`, each legend entry a
//! `<text class="legend">NAME</text>`: the browser test reads them back.

use std::fmt::Write as _;

use mxray_scan::report::{AdoptionRow, Report};

use crate::html::escape;
use crate::sql::{self, SqlFile};

/// One chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File and anchor name (`adoption-latest`, `series-starttls_all`, ...).
    pub id: String,
    pub title: String,
    /// The query that computes the plotted numbers.
    pub sql: SqlFile,
    /// The series names (the vantages), in legend order.
    pub series: Vec<String>,
    /// The SVG document.
    pub svg: String,
}

/// The metrics charted, with their labels.
pub const CHARTED: [(&str, &str); 5] = [
    ("starttls_all", "STARTTLS on every MX"),
    ("pkix_all", "PKIX-valid certificate on every MX"),
    ("dane_valid", "DANE valid"),
    ("mta_sts_enforce", "MTA-STS enforce"),
    ("tls_rpt", "TLS-RPT record"),
];

const WIDTH: f64 = 680.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 50.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;
/// Colour-blind-safe palette (Okabe-Ito), cycled.
const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

fn plot_w() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_h() -> f64 {
    HEIGHT - TOP - BOTTOM
}

fn y_of(share: f64) -> f64 {
    TOP + plot_h() * (1.0 - share.clamp(0.0, 1.0))
}

fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The frame: background, title, y grid in percent, legend.
fn open(title: &str, series: &[String]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"DejaVu Sans, Verdana, sans-serif\" \
         font-size=\"11\" role=\"img\"><title>{t}</title>\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"13\" font-weight=\"bold\" fill=\"#222\">{t}</text>",
        t = escape(title)
    );
    for pct in [0, 25, 50, 75, 100] {
        let y = y_of(f64::from(pct) / 100.0);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{pct}%</text>",
            LEFT + plot_w(),
            LEFT - 6.0,
            y + 4.0
        );
    }
    let lx = WIDTH - RIGHT + 16.0;
    for (i, name) in series.iter().enumerate() {
        let y = TOP + 8.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            "<g class=\"legend-item\"><rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" \
             fill=\"{}\"/><text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\" fill=\"#222\">{}</text></g>",
            y - 10.0,
            colour(i),
            lx + 18.0,
            y,
            escape(name)
        );
    }
    s
}

fn no_data(s: &mut String) {
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">no data</text>",
        LEFT + plot_w() / 2.0,
        TOP + plot_h() / 2.0
    );
}

/// Percent with one decimal, as every rendering prints shares.
pub fn pct(share: f64) -> String {
    format!("{:.1}%", 100.0 * share)
}

/// Adoption at each vantage's latest scan date: grouped bars, one bar per vantage.
pub fn adoption_latest(r: &Report) -> Chart {
    let vantages = r.vantages();
    let latest: Vec<&AdoptionRow> = vantages
        .iter()
        .filter_map(|v| r.adoption.iter().rev().find(|row| &row.vantage == v))
        .collect();
    let title = "Adoption by vantage, latest scan date (share of mail domains)";
    let mut s = open(title, &vantages);
    if latest.is_empty() {
        no_data(&mut s);
    }
    let group_w = plot_w() / CHARTED.len() as f64;
    let bar_w = (group_w * 0.8 / latest.len().max(1) as f64).min(28.0);
    for (g, (_, label)) in CHARTED.iter().enumerate() {
        let cx = LEFT + group_w * (g as f64 + 0.5);
        let short = label.split(' ').next().unwrap_or(label);
        let _ = write!(
            s,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
            TOP + plot_h() + 16.0,
            escape(short)
        );
    }
    for (i, row) in latest.iter().enumerate() {
        let _ = write!(
            s,
            "<g class=\"series\" data-series=\"{}\" fill=\"{}\">",
            escape(&row.vantage),
            colour(i)
        );
        for (g, (metric, label)) in CHARTED.iter().enumerate() {
            let share = row.share(metric).unwrap_or(0.0);
            let n = row.count(metric).unwrap_or(0);
            let x = LEFT + group_w * (g as f64 + 0.5) - bar_w * latest.len() as f64 / 2.0
                + bar_w * i as f64;
            let y = y_of(share);
            let h = (TOP + plot_h() - y).max(0.5);
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{} {}: \
                 {} ({} of {} mail domains, {})</title></rect>",
                TOP + plot_h() - h,
                (bar_w - 2.0).max(1.0),
                escape(&row.vantage),
                escape(&row.scan_date),
                escape(label),
                n,
                row.mail_domains,
                pct(share)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    Chart {
        id: "adoption-latest".into(),
        title: title.into(),
        sql: sql::ADOPTION_DOMAINS,
        series: latest.iter().map(|r| r.vantage.clone()).collect(),
        svg: s,
    }
}

/// One metric over the scan dates, one line per vantage.
pub fn time_series(r: &Report, metric: &str, label: &str) -> Chart {
    let dates = r.dates();
    let series = r.series(metric);
    let names: Vec<String> = series.keys().cloned().collect();
    let title = format!("{label}: share of mail domains per scan date");
    let mut s = open(&title, &names);
    if dates.is_empty() {
        no_data(&mut s);
    }
    let step = plot_w() / dates.len().max(1) as f64;
    let x_of = |date: &str| {
        let i = dates.iter().position(|d| d == date).unwrap_or(0);
        LEFT + step * (i as f64 + 0.5)
    };
    // At most ~8 date labels.
    let every = dates.len().div_ceil(8).max(1);
    for (i, d) in dates.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
            LEFT + step * (i as f64 + 0.5),
            TOP + plot_h() + 16.0,
            escape(d)
        );
    }
    for (i, (vantage, points)) in series.iter().enumerate() {
        let c = colour(i);
        let _ = write!(
            s,
            "<g class=\"series\" data-series=\"{}\" stroke=\"{c}\" fill=\"{c}\">",
            escape(vantage)
        );
        if points.len() > 1 {
            let pts: Vec<String> = points
                .iter()
                .map(|(d, v)| format!("{:.1},{:.1}", x_of(d), y_of(*v)))
                .collect();
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke-width=\"2\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
        for (d, v) in points {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"><title>{} {}: {}</title></circle>",
                x_of(d),
                y_of(*v),
                escape(vantage),
                escape(d),
                pct(*v)
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    Chart {
        id: format!("series-{metric}"),
        title,
        sql: sql::ADOPTION_DOMAINS,
        series: names,
        svg: s,
    }
}

/// Every chart of the report, in page order.
pub fn charts(r: &Report) -> Vec<Chart> {
    let mut out = vec![adoption_latest(r)];
    for (metric, label) in CHARTED {
        out.push(time_series(r, metric, label));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::examples;

    fn two_vantages_two_dates() -> Report {
        let mut r = Report::default();
        for (day, vantage) in [(0, "b"), (0, "a"), (7, "a"), (7, "b")] {
            let mut d = examples::domain();
            d.vantage = vantage.into();
            d.scan_id = uuid::Uuid::from_u128(day + 1);
            d.scanned_at =
                mxray_model::UtcTime::from_unix(d.scanned_at.unix() + day as i64 * 86_400);
            r.add_domain(&d);
        }
        r.finish();
        r
    }

    #[test]
    fn one_series_per_vantage_one_point_per_date() {
        let r = two_vantages_two_dates();
        let c = time_series(&r, "starttls_all", "STARTTLS");
        assert_eq!(c.series, vec!["a", "b"]);
        assert_eq!(c.svg.matches("<g class=\"series\"").count(), 2);
        assert_eq!(c.svg.matches("<circle").count(), 4);
        assert_eq!(c.svg.matches("<polyline").count(), 2);
        let legend: Vec<&str> = c
            .svg
            .split("<text class=\"legend\"")
            .skip(1)
            .map(|t| &t[t.find('>').expect("tag") + 1..t.find("</text>").expect("end")])
            .collect();
        assert_eq!(legend, vec!["a", "b"]);
        let all = charts(&r);
        assert_eq!(all.len(), 1 + CHARTED.len());
        assert!(all.iter().all(|c| c.sql == sql::ADOPTION_DOMAINS));
        // Bars: one per vantage per charted metric, at the latest date.
        let bars = &all[0];
        // (Two more rects: the legend.)
        assert_eq!(bars.svg.matches("<rect x=").count() - 2, 2 * CHARTED.len());
    }

    #[test]
    fn an_empty_report_still_draws_frames() {
        let c = charts(&Report::default());
        assert!(c
            .iter()
            .all(|c| c.svg.contains("no data") && c.series.is_empty()));
    }
}
