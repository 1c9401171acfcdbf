//! Campaigns: one logical scan split over `--shard I/N` runs, possibly on many machines and at
//! different times. Pure: from the `scan` records of a campaign, which shard runs to report and
//! which shards are missing or incomplete, so that a partial campaign is never presented as
//! complete.
//!
//! A shard may have several runs: the scheduler retried it after a node died, or it was
//! resumed. Exactly one run per shard is chosen (the complete one that finished last; without
//! one, the incomplete one that got furthest), so a retried shard neither doubles nor loses
//! domains in the report.

use std::collections::BTreeMap;

use mxray_model::{ScanRecord, ScanStatus};
use serde::Serialize;
use uuid::Uuid;

/// Why a campaign cannot be reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// No `scan` record names the campaign.
    #[error("no scan of campaign {0:?} in the data")]
    Unknown(String),
    /// The shard runs disagree on the shard count (`I/N` with different N).
    #[error("campaign {campaign:?}: its scans disagree on the shard count ({counts:?})")]
    ShardCounts {
        /// The campaign.
        campaign: String,
        /// The counts seen.
        counts: Vec<u32>,
    },
    /// A `shard` value that is not `I/N`.
    #[error("campaign {campaign:?}: scan {scan_id} has shard {shard:?}, not I/N")]
    BadShard {
        /// The campaign.
        campaign: String,
        /// The scan.
        scan_id: Uuid,
        /// Its shard text.
        shard: String,
    },
}

/// One shard's chosen run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardRun {
    /// Shard index.
    pub index: u32,
    /// The scan chosen for it.
    pub scan_id: Uuid,
    /// Its status.
    pub status: ScanStatus,
    /// Domains it wrote.
    pub domains_done: u64,
    /// Other runs of the same shard, not used (retries, superseded attempts).
    pub superseded: Vec<Uuid>,
}

/// Where a campaign stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignStatus {
    /// The campaign.
    pub campaign: String,
    /// Shards it was split into.
    pub shard_count: u32,
    /// The chosen run of every shard that has one, by index.
    pub shards: Vec<ShardRun>,
    /// Shard indexes without any run.
    pub missing: Vec<u32>,
    /// Shard indexes whose chosen run is not complete (running or interrupted).
    pub incomplete: Vec<u32>,
}

impl CampaignStatus {
    /// The status of `campaign` from `scan` records (any order, duplicates allowed: a scan
    /// read twice from ClickHouse before a merge is the same run).
    pub fn from_scans<'a>(
        campaign: &str,
        scans: impl IntoIterator<Item = &'a ScanRecord>,
    ) -> Result<CampaignStatus, CampaignError> {
        let mut runs: BTreeMap<u32, BTreeMap<Uuid, &ScanRecord>> = BTreeMap::new();
        let mut counts: Vec<u32> = Vec::new();
        for s in scans.into_iter().filter(|s| s.campaign == campaign) {
            let (index, count) = parse_shard(&s.shard).ok_or_else(|| CampaignError::BadShard {
                campaign: campaign.to_owned(),
                scan_id: s.scan_id,
                shard: s.shard.clone(),
            })?;
            if !counts.contains(&count) {
                counts.push(count);
            }
            let slot = runs.entry(index).or_default().entry(s.scan_id).or_insert(s);
            // The same scan twice (e.g. its `running` and `complete` rows): keep the later.
            if rank(s) > rank(slot) {
                *slot = s;
            }
        }
        let shard_count = match counts.as_slice() {
            [] => return Err(CampaignError::Unknown(campaign.to_owned())),
            [n] => *n,
            _ => {
                counts.sort_unstable();
                return Err(CampaignError::ShardCounts {
                    campaign: campaign.to_owned(),
                    counts,
                });
            }
        };
        let mut shards = Vec::new();
        for (index, by_id) in &runs {
            let mut all: Vec<&ScanRecord> = by_id.values().copied().collect();
            all.sort_by_key(|s| std::cmp::Reverse(rank(s)));
            let chosen = all[0];
            shards.push(ShardRun {
                index: *index,
                scan_id: chosen.scan_id,
                status: chosen.status,
                domains_done: chosen.domains_done,
                superseded: all[1..].iter().map(|s| s.scan_id).collect(),
            });
        }
        let missing = (0..shard_count).filter(|i| !runs.contains_key(i)).collect();
        let incomplete = shards
            .iter()
            .filter(|r| r.status != ScanStatus::Complete)
            .map(|r| r.index)
            .collect();
        Ok(CampaignStatus {
            campaign: campaign.to_owned(),
            shard_count,
            shards,
            missing,
            incomplete,
        })
    }

    /// Every shard has a complete run.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.incomplete.is_empty()
    }

    /// The scans whose records make up the campaign's report (one per shard).
    pub fn chosen_scans(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.shards.iter().map(|r| r.scan_id)
    }

    /// One paragraph for the terminal: the campaign, its shards, what is missing.
    pub fn render(&self) -> String {
        let complete = self.shards.len() - self.incomplete.len();
        let mut s = format!(
            "campaign {}: {} of {} shards complete",
            self.campaign, complete, self.shard_count
        );
        if !self.missing.is_empty() {
            s.push_str(&format!("; missing shards {}", list(&self.missing)));
        }
        if !self.incomplete.is_empty() {
            s.push_str(&format!("; incomplete shards {}", list(&self.incomplete)));
        }
        let retried: usize = self.shards.iter().map(|r| r.superseded.len()).sum();
        if retried > 0 {
            s.push_str(&format!("; {retried} superseded runs ignored"));
        }
        s.push('\n');
        s
    }
}

/// Complete before incomplete; then the later finish; then more domains.
fn rank(s: &ScanRecord) -> (bool, Option<i64>, u64) {
    (
        s.status == ScanStatus::Complete,
        s.finished_at.map(|t| t.unix()),
        s.domains_done,
    )
}

fn parse_shard(s: &str) -> Option<(u32, u32)> {
    let (i, n) = s.split_once('/')?;
    let (i, n) = (i.parse().ok()?, n.parse().ok()?);
    (n > 0 && i < n).then_some((i, n))
}

fn list(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxray_model::{examples, UtcTime};

    fn run(shard: &str, status: ScanStatus, finished: i64, domains: u64) -> ScanRecord {
        ScanRecord {
            scan_id: Uuid::now_v7(),
            campaign: "c1".into(),
            shard: shard.into(),
            status,
            finished_at: Some(UtcTime::from_unix(finished)),
            domains_done: domains,
            ..examples::scan()
        }
    }

    #[test]
    fn a_complete_campaign_uses_one_run_per_shard() {
        let first = run("1/3", ScanStatus::Interrupted, 1_000, 40);
        let retry = run("1/3", ScanStatus::Complete, 5_000, 100);
        let scans = vec![
            run("0/3", ScanStatus::Complete, 2_000, 100),
            first.clone(),
            retry.clone(),
            run("2/3", ScanStatus::Complete, 3_000, 100),
            ScanRecord {
                campaign: "other".into(),
                ..run("0/3", ScanStatus::Complete, 9_000, 7)
            },
        ];
        let st = CampaignStatus::from_scans("c1", &scans).expect("status");
        assert!(st.is_complete(), "{st:?}");
        assert_eq!(st.shard_count, 3);
        assert_eq!(st.chosen_scans().count(), 3);
        assert_eq!(st.shards[1].scan_id, retry.scan_id);
        assert_eq!(st.shards[1].superseded, vec![first.scan_id]);
        assert!(st.render().contains("3 of 3 shards complete; 1 superseded"));
    }

    #[test]
    fn missing_and_incomplete_shards_are_named() {
        let scans = vec![
            run("0/4", ScanStatus::Complete, 2_000, 100),
            run("2/4", ScanStatus::Interrupted, 3_000, 12),
        ];
        let st = CampaignStatus::from_scans("c1", &scans).expect("status");
        assert!(!st.is_complete());
        assert_eq!(st.missing, vec![1, 3]);
        assert_eq!(st.incomplete, vec![2]);
        assert_eq!(
            st.render(),
            "campaign c1: 1 of 4 shards complete; missing shards 1, 3; incomplete shards 2\n"
        );
    }

    #[test]
    fn the_same_scan_read_twice_is_one_run() {
        let running = ScanRecord {
            finished_at: None,
            ..run("0/1", ScanStatus::Running, 0, 0)
        };
        let done = ScanRecord {
            status: ScanStatus::Complete,
            finished_at: Some(UtcTime::from_unix(10)),
            domains_done: 5,
            ..running.clone()
        };
        let st = CampaignStatus::from_scans("c1", [&running, &done]).expect("status");
        assert!(st.is_complete());
        assert!(st.shards[0].superseded.is_empty());
    }

    #[test]
    fn unknown_campaigns_and_disagreeing_counts_are_errors() {
        let scans = vec![
            run("0/2", ScanStatus::Complete, 1, 1),
            run("1/3", ScanStatus::Complete, 1, 1),
        ];
        assert_eq!(
            CampaignStatus::from_scans("nope", &scans),
            Err(CampaignError::Unknown("nope".into()))
        );
        assert!(matches!(
            CampaignStatus::from_scans("c1", &scans),
            Err(CampaignError::ShardCounts { .. })
        ));
        let bad = vec![run("x", ScanStatus::Complete, 1, 1)];
        assert!(matches!(
            CampaignStatus::from_scans("c1", &bad),
            Err(CampaignError::BadShard { .. })
        ));
    }
}
