//! The JSON lines wire format, pinned: `golden/records.jsonl` holds the model's example records
//! (one of each type) as this schema version writes them. A change to a field name, a
//! vocabulary string, the field order or a value's encoding fails here, so it can only happen
//! on purpose (with a schema migration and DESIGN.md). After such a change, regenerate with
//! `MXRAY_BLESS=1 cargo test -p mxray-model --test golden` and review the diff.

use std::path::PathBuf;

use mxray_model::{examples, Record};

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/records.jsonl")
}

fn lines_now() -> String {
    let mut out = String::new();
    for rec in examples::all() {
        out.push_str(&serde_json::to_string(&rec).expect("serialize"));
        out.push('\n');
    }
    out
}

#[test]
fn json_lines_match_the_golden_file() {
    let now = lines_now();
    if std::env::var_os("MXRAY_BLESS").is_some() {
        std::fs::write(golden_path(), &now).expect("write golden");
    }
    let golden = std::fs::read_to_string(golden_path()).expect("golden file");
    for (i, (g, n)) in golden.lines().zip(now.lines()).enumerate() {
        assert_eq!(
            n, g,
            "line {i}: the JSON wire format changed (regenerate with MXRAY_BLESS=1 only if \
             that was intended)"
        );
    }
    assert_eq!(golden.lines().count(), now.lines().count(), "record count");
}

#[test]
fn the_golden_lines_read_back_as_the_examples() {
    let golden = std::fs::read_to_string(golden_path()).expect("golden file");
    let read: Vec<Record> = golden
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(read, examples::all());
}
