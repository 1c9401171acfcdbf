//! Issue 14's order test: the lab's domains scanned in forward order, in reverse and shuffled
//! give identical `domain` records (scan id and timestamps aside). A probe is shared by every
//! domain whose MX points at its address; the verdict must not depend on which domain asked
//! first (the `shared-dane-*` cases put a signed and an unsigned domain on one DANE host, and
//! the reverse order puts the unsigned one first).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use mxray_model::Record;

/// The domain records of one scan of `list` against the lab in `lab_dir`, by domain, as JSON
/// without the fields that differ between any two scans (scan id, time).
fn scan(lab_dir: &Path, list: &[String], work: &Path, tag: &str) -> BTreeMap<String, String> {
    let input = work.join(format!("{tag}.txt"));
    std::fs::write(&input, list.join("\n") + "\n").expect("write list");
    let out = common::run_ok([
        "scan".as_ref(),
        input.as_os_str(),
        "--lab-remote".as_ref(),
        lab_dir.as_os_str(),
        "--quiet".as_ref(),
        "--jsonl".as_ref(),
        "-".as_ref(),
        "--out".as_ref(),
        work.join(format!("out-{tag}")).as_os_str(),
    ]);
    let mut got = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(Record::Domain(d)) = serde_json::from_str::<Record>(line) else {
            continue;
        };
        let mut v = serde_json::to_value(&d).expect("json");
        if let Some(o) = v.as_object_mut() {
            o.remove("scan_id");
            o.remove("scanned_at");
        }
        got.insert(d.domain.clone(), v.to_string());
    }
    got
}

/// Fisher-Yates with a fixed splitmix64 stream: the same "random" order on every run, so a
/// failure can be replayed.
fn shuffled(list: &[String], seed: u64) -> Vec<String> {
    let mut v = list.to_vec();
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (domain, ra) in a {
        match b.get(domain) {
            Some(rb) if rb == ra => {}
            Some(rb) => out.push(format!("{domain}:\n  {ra}\n  {rb}")),
            None => out.push(format!("{domain}: missing")),
        }
    }
    for domain in b.keys().filter(|d| !a.contains_key(*d)) {
        out.push(format!("{domain}: extra"));
    }
    out
}

#[test]
fn lab_scanned_forward_reverse_and_shuffled_gives_identical_domain_records() {
    let dir = tempfile::tempdir().expect("tmp");
    let lab_dir = dir.path().join("lab");
    let _lab = common::RemoteLab::start(&lab_dir);
    let forward: Vec<String> = std::fs::read_to_string(lab_dir.join("domains.txt"))
        .expect("domains.txt")
        .lines()
        .map(str::to_owned)
        .collect();
    // The shared-host pairs are what makes order matter: both orders must occur.
    let pos = |d: &str| forward.iter().position(|x| x == d).expect(d);
    assert!(pos("dane-shared.lab.test") < pos("shared.insecure.lab.test"));
    let mut reverse = forward.clone();
    reverse.reverse();
    let shuffle = shuffled(&forward, 14);
    assert_ne!(shuffle, forward);
    assert_ne!(shuffle, reverse);

    let a = scan(&lab_dir, &forward, dir.path(), "forward");
    assert_eq!(a.len(), forward.len(), "one domain record per lab domain");
    let b = scan(&lab_dir, &reverse, dir.path(), "reverse");
    let c = scan(&lab_dir, &shuffle, dir.path(), "shuffled");
    let d1 = diff(&a, &b);
    assert!(d1.is_empty(), "forward vs reverse:\n{}", d1.join("\n"));
    let d2 = diff(&a, &c);
    assert!(d2.is_empty(), "forward vs shuffled:\n{}", d2.join("\n"));
}
