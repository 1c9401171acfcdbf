//! The Parquet wire format, pinned: `fixtures/golden/<table>.parquet` is the model's example
//! records as this schema version's writer wrote them. The current reader must read them back
//! as the examples, and the current writer must produce the same Parquet schema (column names,
//! physical and logical types, repetition, order) and the same rows. A change fails here, so
//! it can only happen on purpose (with a schema migration). After such a change, regenerate
//! with `MXRAY_BLESS=1 cargo test -p mxray-store --test golden` and review the diff.

use std::path::{Path, PathBuf};

use mxray_model::{examples, Record, RecordKind};
use mxray_store::{read_table_file, ParquetOptions, ParquetSink};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn write_examples(dir: &Path) {
    let mut sink = ParquetSink::create(dir, ParquetOptions::default()).expect("sink");
    for r in examples::all() {
        sink.write_sync(&r).expect("write");
    }
    sink.close_sync().expect("close");
}

fn schema_text(path: &Path) -> String {
    let f = std::fs::File::open(path).expect("open");
    let r = SerializedFileReader::new(f).expect("parquet");
    let mut out = Vec::new();
    parquet::schema::printer::print_schema(
        &mut out,
        r.metadata().file_metadata().schema_descr().root_schema(),
    );
    String::from_utf8(out).expect("utf-8")
}

fn of_kind(kind: RecordKind) -> Vec<Record> {
    examples::all()
        .into_iter()
        .filter(|r| r.kind() == kind)
        .collect()
}

#[test]
fn the_writer_matches_the_golden_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let now = tmp.path().join("out");
    write_examples(&now);
    if std::env::var_os("MXRAY_BLESS").is_some() {
        for kind in RecordKind::ALL {
            let name = format!("{}.parquet", kind.table());
            std::fs::copy(now.join(&name), golden_dir().join(&name)).expect("bless");
        }
    }
    for kind in RecordKind::ALL {
        let name = format!("{}.parquet", kind.table());
        let golden = golden_dir().join(&name);
        assert_eq!(
            schema_text(&now.join(&name)),
            schema_text(&golden),
            "{name}: the Parquet schema changed (regenerate with MXRAY_BLESS=1 only if that \
             was intended)"
        );
        assert_eq!(
            read_table_file(&now.join(&name), *kind).expect("read new"),
            read_table_file(&golden, *kind).expect("read golden"),
            "{name}: the rows changed"
        );
    }
}

#[test]
fn the_reader_reads_the_golden_files_as_the_examples() {
    for kind in RecordKind::ALL {
        let path = golden_dir().join(format!("{}.parquet", kind.table()));
        let read = read_table_file(&path, *kind).expect("golden file reads");
        assert_eq!(read, of_kind(*kind), "{}", kind.table());
    }
}
