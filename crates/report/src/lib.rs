//! Renderings of `mxray report` for people who would rather look than read: one
//! self-contained HTML page ([`html::page`]), its SVG charts ([`svg::charts`]) and the same
//! charts as PNG files ([`png::write_pngs`], the very SVG strings rasterized with resvg).
//!
//! What it does: turns one finished [`mxray_scan::report::Report`] (the same struct the
//! terminal and `--json` renderings print) into markup. Every statistic on the page links to
//! the SQL of notebooks/sql that computes it; the SQL files are embedded at build time
//! ([`sql`]). Everything that came from the network (EHLO lines, host names, transcripts) is
//! escaped ([`html::escape`]): the page is built from hostile input. The page makes no network
//! request when opened: inline CSS, inline SVG, a few lines of inline JS (sortable tables).
//! [`asn::IpNetworks`] reads the `ip_asn` table of scripts/load-asn (Parquet) for the
//! destinations' networks.
//!
//! What it does not: compute anything the report does not hold (no second computation), read
//! records, or fetch fonts, scripts or styles from anywhere.
//!
//! Main types: [`svg::Chart`], [`html::PageOptions`], [`asn::IpNetworks`], [`ReportError`].
//!
//! ```
//! use mxray_scan::report::Report;
//! let mut r = Report::default();
//! r.add_domain(&mxray_model::examples::domain());
//! r.finish();
//! let charts = mxray_report::svg::charts(&r);
//! let page = mxray_report::html::page(&r, &charts, &mxray_report::html::PageOptions::default());
//! assert!(page.starts_with("<!DOCTYPE html>"));
//! assert!(page.contains("notebooks/sql/adoption_domains.sql"));
//! ```

pub mod asn;
pub mod html;
pub mod png;
pub mod sql;
pub mod svg;

use std::path::PathBuf;

/// What went wrong while rendering or writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An SVG chart resvg could not parse (a bug in [`svg`]).
    #[error("chart {chart}: SVG not renderable: {detail}")]
    Svg { chart: String, detail: String },
    /// A chart with no size, or a PNG that could not be encoded.
    #[error("chart {chart}: {detail}")]
    Png { chart: String, detail: String },
    /// The IP-to-AS table is not what scripts/load-asn writes.
    #[error("IP-to-AS table {path}: {detail}")]
    IpAsn { path: PathBuf, detail: String },
}
