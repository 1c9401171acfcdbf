//! `mxray report`: adoption shares and stripping findings, computed from records. Pure: the
//! caller streams `domain` and `smtp_probe` records in (from Parquet files or ClickHouse).
//!
//! `vantage_disagreement` here is the in-scan-window comparison of DESIGN.md: an (IP, port,
//! SNI) whose probe completed STARTTLS from one vantage and was seen without STARTTLS (server
//! answered) from another *on the same UTC day* (the scan window).
//! `history_regression`: from one vantage, an (IP, port, SNI) that completed STARTTLS in an
//! earlier probe and answered without it in its latest probe (scans ordered by probe time).

use std::collections::BTreeMap;

use mxray_model::{DomainRecord, ProbeResult, SmtpProbeRecord, StrippingSignal};
use serde::Serialize;

use crate::verdict::reached;

/// Counts per vantage and field value.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// vantage -> field -> value -> domains.
    pub shares: BTreeMap<String, BTreeMap<&'static str, BTreeMap<String, u64>>>,
    /// vantage -> domains.
    pub domains: BTreeMap<String, u64>,
    /// Domains with stripping signals: (vantage, domain, signals).
    pub stripping: Vec<(String, String, Vec<StrippingSignal>)>,
    /// Disagreements between vantages over the same destination.
    pub disagreements: Vec<Disagreement>,
    /// Destinations that stopped offering STARTTLS to a vantage.
    pub regressions: Vec<Regression>,
    /// (ip, port, sni) -> (probe time, vantage) -> what was seen.
    #[serde(skip)]
    probes: BTreeMap<Destination, BTreeMap<(i64, String), ProbeView>>,
}

/// A probed destination: IP, port and SNI name.
type Destination = (String, u16, Option<String>);

/// An IP that offered STARTTLS to a vantage earlier and no longer does.
#[derive(Debug, Clone, Serialize)]
pub struct Regression {
    pub ip: String,
    pub port: u16,
    pub sni: Option<String>,
    pub vantage: String,
    /// Last day (UTC, `YYYY-MM-DD`) with STARTTLS.
    pub last_tls_day: String,
    /// Latest day, without STARTTLS.
    pub latest_day: String,
    /// Stripping signals of the latest probe.
    pub signals: Vec<StrippingSignal>,
}

fn day_string(day: i64) -> String {
    mxray_model::UtcTime::from_unix(day * 86_400)
        .to_string()
        .chars()
        .take(10)
        .collect()
}

/// What one vantage saw of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeView {
    pub starttls_ok: bool,
    pub starttls_advertised: bool,
    pub leaf_sha256: Option<String>,
    pub signals: Vec<StrippingSignal>,
}

/// An IP whose STARTTLS offer (or certificate) differs between vantages.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub ip: String,
    pub port: u16,
    pub sni: Option<String>,
    /// The scan window (UTC day).
    pub day: String,
    /// Vantages that completed STARTTLS.
    pub with_tls: Vec<String>,
    /// Vantages whose session answered without completing STARTTLS, with their signals.
    pub without_tls: Vec<(String, Vec<StrippingSignal>)>,
}

impl Report {
    /// Adds one `domain` record.
    pub fn add_domain(&mut self, d: &DomainRecord) {
        *self.domains.entry(d.vantage.clone()).or_default() += 1;
        let fields = self.shares.entry(d.vantage.clone()).or_default();
        let mut count = |field: &'static str, value: String| {
            *fields.entry(field).or_default().entry(value).or_default() += 1;
        };
        count("starttls", d.starttls.to_string());
        count("pkix", d.pkix.to_string());
        count("dane", d.dane.to_string());
        count("mta_sts", d.mta_sts.to_string());
        if let Some(e) = d.mta_sts_error {
            count("mta_sts_error", e.to_string());
        }
        count("tls_rpt", d.tls_rpt.to_string());
        count("stripping_suspected", d.stripping_suspected.to_string());
        if d.stripping_suspected {
            self.stripping.push((
                d.vantage.clone(),
                d.domain.clone(),
                d.stripping_signals.clone(),
            ));
        }
    }

    /// Adds one `smtp_probe` record.
    pub fn add_probe(&mut self, p: &SmtpProbeRecord) {
        if !reached(p) {
            return;
        }
        let view = ProbeView {
            starttls_ok: p.result == ProbeResult::StarttlsOk,
            starttls_advertised: p.starttls_advertised,
            leaf_sha256: p.chain_sha256.first().cloned(),
            signals: p.stripping_signals.clone(),
        };
        self.probes
            .entry((p.ip.clone(), p.port, p.sni.clone()))
            .or_default()
            .insert((p.probed_at.unix(), p.vantage.clone()), view);
    }

    /// Computes the disagreements and regressions; call after the last record.
    pub fn finish(&mut self) {
        self.disagreements.clear();
        self.regressions.clear();
        for ((ip, port, sni), views) in &self.probes {
            // Same day, different vantages (the latest probe of each vantage that day).
            let day_of = |t: i64| t.div_euclid(86_400);
            let days: std::collections::BTreeSet<i64> =
                views.keys().map(|(t, _)| day_of(*t)).collect();
            for day in &days {
                let mut latest: BTreeMap<&String, &ProbeView> = BTreeMap::new();
                for ((_, v), p) in views.iter().filter(|((t, _), _)| day_of(*t) == *day) {
                    latest.insert(v, p); // ascending time: the last one wins
                }
                let today: Vec<(&String, &ProbeView)> = latest.into_iter().collect();
                if today.len() < 2 {
                    continue;
                }
                let with: Vec<String> = today
                    .iter()
                    .filter(|(_, v)| v.starttls_ok)
                    .map(|(k, _)| (*k).clone())
                    .collect();
                let without: Vec<(String, Vec<StrippingSignal>)> = today
                    .iter()
                    .filter(|(_, v)| !v.starttls_ok)
                    .map(|(k, v)| ((*k).clone(), v.signals.clone()))
                    .collect();
                // DESIGN.md: one vantage sees STARTTLS (or a certificate) and another does not.
                // A *different* certificate is not counted: load balancers legitimately differ.
                let with_cert = today
                    .iter()
                    .filter(|(_, v)| v.leaf_sha256.is_some())
                    .count();
                if (!with.is_empty() && !without.is_empty())
                    || (with_cert > 0 && with_cert < today.len())
                {
                    self.disagreements.push(Disagreement {
                        ip: ip.clone(),
                        port: *port,
                        sni: sni.clone(),
                        day: day_string(*day),
                        with_tls: with,
                        without_tls: without,
                    });
                }
            }
            // Same vantage, over days.
            let vantages: std::collections::BTreeSet<&String> =
                views.keys().map(|(_, v)| v).collect();
            for vantage in vantages {
                let series: Vec<(i64, &ProbeView)> = views
                    .iter()
                    .filter(|((_, v), _)| v == vantage)
                    .map(|((d, _), p)| (*d, p))
                    .collect();
                let Some((latest_day, latest)) = series.last() else {
                    continue;
                };
                if latest.starttls_ok {
                    continue;
                }
                if let Some((tls_day, _)) = series.iter().rev().skip(1).find(|(_, p)| p.starttls_ok)
                {
                    self.regressions.push(Regression {
                        ip: ip.clone(),
                        port: *port,
                        sni: sni.clone(),
                        vantage: vantage.clone(),
                        last_tls_day: day_string(tls_day.div_euclid(86_400)),
                        latest_day: day_string(latest_day.div_euclid(86_400)),
                        signals: latest.signals.clone(),
                    });
                }
            }
        }
        self.stripping.sort();
    }

    /// The plain-text table.
    pub fn render(&self, stripping_only: bool) -> String {
        let mut s = String::new();
        if !stripping_only {
            for (vantage, fields) in &self.shares {
                let total = self.domains.get(vantage).copied().unwrap_or(0).max(1);
                s.push_str(&format!("vantage {vantage}: {total} domains\n"));
                for (field, values) in fields {
                    let parts: Vec<String> = values
                        .iter()
                        .map(|(v, n)| format!("{v} {n} ({:.1}%)", 100.0 * *n as f64 / total as f64))
                        .collect();
                    s.push_str(&format!("  {field:<20} {}\n", parts.join(", ")));
                }
            }
        }
        s.push_str(&format!("stripping suspects: {}\n", self.stripping.len()));
        for (v, d, sig) in &self.stripping {
            let sig: Vec<String> = sig.iter().map(|x| x.to_string()).collect();
            s.push_str(&format!("  {v:<12} {d:<40} {}\n", sig.join(",")));
        }
        s.push_str(&format!(
            "vantage disagreements: {}\n",
            self.disagreements.len()
        ));
        for d in &self.disagreements {
            let without: Vec<String> = d
                .without_tls
                .iter()
                .map(|(v, sig)| {
                    let sig: Vec<String> = sig.iter().map(|x| x.to_string()).collect();
                    format!("{v} [{}]", sig.join(","))
                })
                .collect();
            s.push_str(&format!(
                "  {}:{} ({}) STARTTLS from {} ; not from {}\n",
                d.ip,
                d.port,
                d.sni.as_deref().unwrap_or("-"),
                d.with_tls.join(","),
                without.join(", ")
            ));
        }
        s.push_str(&format!(
            "history regressions: {}\n",
            self.regressions.len()
        ));
        for r in &self.regressions {
            let sig: Vec<String> = r.signals.iter().map(|x| x.to_string()).collect();
            s.push_str(&format!(
                "  {}:{} ({}) vantage {}: STARTTLS until {}, not on {} [{}]\n",
                r.ip,
                r.port,
                r.sni.as_deref().unwrap_or("-"),
                r.vantage,
                r.last_tls_day,
                r.latest_day,
                sig.join(",")
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::*;

    #[test]
    fn stripped_path_is_a_disagreement_and_shares_add_up() {
        let mut r = Report::default();
        let mut clean = examples::smtp_probe();
        clean.vantage = "clean".into();
        clean.error_class = None;
        let mut isp = clean.clone();
        isp.vantage = "isp".into();
        isp.result = ProbeResult::NoStarttls;
        isp.starttls_advertised = false;
        isp.chain_sha256.clear();
        isp.stripping_signals = vec![StrippingSignal::StarttlsMangled];
        let mut other = clean.clone();
        other.ip = "192.0.2.8".into();
        let mut other_isp = other.clone();
        other_isp.vantage = "isp".into();
        for p in [&clean, &isp, &other, &other_isp] {
            r.add_probe(p);
        }
        let mut d = examples::domain();
        d.vantage = "isp".into();
        r.add_domain(&d);
        d.stripping_suspected = false;
        r.add_domain(&d);
        r.finish();
        assert_eq!(r.disagreements.len(), 1);
        assert_eq!(r.disagreements[0].ip, "192.0.2.7");
        assert_eq!(r.disagreements[0].with_tls, vec!["clean".to_string()]);
        assert_eq!(r.shares["isp"]["stripping_suspected"]["true"], 1);
        assert_eq!(r.domains["isp"], 2);
        assert!(r.render(false).contains("192.0.2.7:25"));
        assert!(r.regressions.is_empty());
    }

    #[test]
    fn regression_over_days_from_one_vantage() {
        let mut r = Report::default();
        let mut before = examples::smtp_probe();
        before.error_class = None;
        let mut after = before.clone();
        after.probed_at = UtcTime::from_unix(before.probed_at.unix() + 7 * 86_400);
        after.result = ProbeResult::NoStarttls;
        after.stripping_signals = vec![StrippingSignal::StarttlsMangled];
        let mut other_vantage_later = after.clone();
        other_vantage_later.vantage = "isp".into();
        for p in [&before, &after, &other_vantage_later] {
            r.add_probe(p);
        }
        r.finish();
        assert_eq!(r.regressions.len(), 1, "{:?}", r.regressions);
        assert_eq!(r.regressions[0].vantage, "default");
        assert_eq!(r.regressions[0].last_tls_day, "2025-11-29");
        assert_eq!(r.regressions[0].latest_day, "2025-12-06");
        // Different days are not a vantage disagreement.
        assert!(r.disagreements.is_empty());
    }
}
