//! The Parquet wire format, pinned: `fixtures/golden/<table>.parquet` is the model's example
//! records as this schema version's writer wrote them. The current reader must read them back
//! as the examples, and the current writer must produce the same Parquet schema (column names,
//! physical and logical types, repetition, order) and the same rows. A change fails here, so
//! it can only happen on purpose (with a schema migration). After such a change, regenerate
//! with `MXRAY_BLESS=1 cargo test -p mxray-store --test golden` and review the diff. The
//! ClickHouse DDL is pinned the same way (`fixtures/golden/ddl.sql`).

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

/// Every DDL statement this version issues: a fresh single server ([`schema::ddl_statements`]),
/// the tables of a cluster, and every migration's `ADD COLUMN` on both layouts and its views on
/// a cluster.
fn ddl_text() -> String {
    use mxray_store::schema::{self, Layout};
    let mut out = schema::ddl_statements("mxray");
    let cluster = Layout::Cluster("mxray_cluster".into());
    out.push(cluster.create_migrations_table("mxray"));
    for kind in RecordKind::ALL {
        out.extend(cluster.create_table("mxray", *kind));
    }
    for m in schema::MIGRATIONS {
        for add in m.add_columns {
            out.extend(Layout::Single.add_column("mxray", add));
            out.extend(cluster.add_column("mxray", add));
        }
        out.extend(m.views.iter().map(|v| cluster.create_view("mxray", v)));
    }
    out.iter().map(|s| format!("{s};\n\n")).collect()
}

#[test]
fn the_ddl_matches_the_golden_text() {
    let path = golden_dir().join("ddl.sql");
    let now = ddl_text();
    if std::env::var_os("MXRAY_BLESS").is_some() {
        std::fs::write(&path, &now).expect("bless");
    }
    let golden = std::fs::read_to_string(&path).expect("golden DDL");
    for (i, (g, n)) in golden.lines().zip(now.lines()).enumerate() {
        assert_eq!(
            n,
            g,
            "ddl.sql line {}: the ClickHouse DDL changed (regenerate with MXRAY_BLESS=1 only if \
             that was intended, with a migration)",
            i + 1
        );
    }
    assert_eq!(
        golden.lines().count(),
        now.lines().count(),
        "ddl.sql: line count"
    );
}
