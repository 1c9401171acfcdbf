"""The Hive-partitioned release layout (`table=<name>/vantage=<v>/date=<D>/part-N.parquet`) read
as one table by pyarrow, pandas, chDB (current ClickHouse, `file()` with
`use_hive_partitioning`) and DuckDB, with partition filters, giving what the flat layout of the
same scans gives. Two pairs of releases: the checked-in example and its flat export, and two
fresh lab scans exported in both layouts directly (parts of 7 rows, so every partition splits)."""

import datetime as dt
import os
import re
import subprocess
import sys

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from release_io import (DATE_COLUMN, EXAMPLE, EXPORT, PARTITIONED, REPO, TABLES, flat_example,
                        manifest, read_arrow, restore, sort_frame)

sys.path.insert(0, str(REPO / "notebooks"))
import mxray_sql  # noqa: E402


def chdb_query(sql, fmt):
    """Through the process-wide chDB session (chDB runs one embedded server per process)."""
    return mxray_sql._chdb_session().query(sql, fmt)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """Two lab scans (vantages `a` and `b`, `b` moved to the next day) exported by
    scripts/export-dataset in both layouts."""
    mxray = REPO / "target" / "debug" / "mxray"
    if not mxray.exists():
        if os.environ.get("MXRAY_REQUIRE_SERVERS") == "1":
            pytest.fail("target/debug/mxray is not built (cargo build -p mxray)")
        pytest.skip("SKIP: target/debug/mxray not built")
    tmp = tmp_path_factory.mktemp("fresh")
    dirs, sims = [], []
    for i, v in enumerate(["a", "b"]):
        d = tmp / f"scan-{v}"
        subprocess.run([str(mxray), "scan", "--lab", "--lab-domains", "20", "--lab-seed", "7",
                        "--timeout", "3", "--vantage", v, "--out", str(d), "-q"],
                       check=True, capture_output=True)
        sid = manifest(d)["scans"][0]["scan_id"]
        sims += ["--simulate-date", f"{sid}=2026-0{i + 1}-15"]
        dirs.append(str(d))
    hive, flat = tmp / "hive", tmp / "flat"
    subprocess.run([*EXPORT, *dirs, "--out", str(hive), "--title", "t", "--part-rows", "7", *sims],
                   check=True, capture_output=True)
    subprocess.run([*EXPORT, *dirs, "--out", str(flat), "--title", "t", "--layout", "flat", *sims],
                   check=True, capture_output=True)
    return hive, flat


@pytest.fixture(params=["example", "fresh"])
def pair(request):
    """(Hive-layout release, flat release of the same scans)."""
    if request.param == "example":
        return EXAMPLE, flat_example()
    return request.getfixturevalue("fresh")


def partitions(flat, table):
    """The (vantage, date) pairs of a flat table, computed from its own rows."""
    t = pq.read_table(flat / f"{table}.parquet").to_pandas()
    if t.empty:
        return []
    dates = t[DATE_COLUMN[table]].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d")
    return sorted(set(zip(t["vantage"], dates)))


def flat_rows(flat, table, vantage=None, date=None) -> pd.DataFrame:
    df = pq.read_table(flat / f"{table}.parquet").to_pandas()
    if vantage is not None:
        df = df[df["vantage"] == vantage]
    if date is not None:
        df = df[df[DATE_COLUMN[table]].dt.strftime("%Y-%m-%d") == date]
    return sort_frame(df)


def test_layout_and_manifest(pair):
    hive, _ = pair
    m = manifest(hive)
    assert m["format"] == "mxray-parquet-hive" and m["layout"] == "hive"
    on_disk = {p.relative_to(hive).as_posix() for p in hive.rglob("*.parquet")}
    assert on_disk == {f["path"] for f in m["files"]}
    pattern = re.compile(r"table=(\w+)/vantage=([a-z0-9._-]+)/date=(\d{4}-\d\d-\d\d)/part-\d+\.parquet")
    split = False
    for f in m["files"]:
        path = hive / f["path"]
        meta = pq.read_metadata(path)
        assert meta.num_rows == f["rows"] <= m["part_rows"], f["path"]
        assert f["schema_version"] == m["schema_version"]
        split |= f["path"].endswith("/part-1.parquet")
        cols = pq.read_schema(path).names
        if f["table"] in PARTITIONED:
            g = pattern.fullmatch(f["path"])
            assert g and g[1] == f["table"], f["path"]
            assert f["partition"] == {"vantage": g[2], "date": g[3]}
            # The partition columns are in the path only.
            assert "vantage" not in cols and "date" not in cols
            # date is the UTC date of the record's own time column, for every row.
            times = pq.read_table(path, columns=[DATE_COLUMN[f["table"]]]).column(0).to_pylist()
            assert {t.astimezone(dt.timezone.utc).date().isoformat() for t in times} <= {g[3]}
        else:
            assert re.fullmatch(rf"table={f['table']}/part-\d+\.parquet", f["path"]), f["path"]
            assert f["partition"] == {}
    assert split, "no part cap reached: the reads never meet a split partition"
    for name, entry in m["tables"].items():
        mine = [f for f in m["files"] if f["table"] == name]
        assert entry["rows"] == sum(f["rows"] for f in mine) and entry["files"] == len(mine)
    # SHA256SUMS covers every file and matches.
    r = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=hive,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    listed = {line.split("  ", 1)[1] for line in (hive / "SHA256SUMS").read_text().splitlines()}
    assert on_disk <= listed and "CARD.md" in listed and "DATA-DICTIONARY.md" in listed


def test_pyarrow_dataset_with_partition_filter_equals_flat(pair):
    hive, flat = pair
    m = manifest(hive)
    for table in PARTITIONED:
        keys = partitions(flat, table)
        if table == "canary_results":
            assert keys == []
            continue
        assert len(keys) >= 2, table
        # The typed partitioning a user would write: date as a date.
        part = ds.partitioning(pa.schema([("vantage", pa.string()), ("date", pa.date32())]),
                               flavor="hive")
        d = ds.dataset(hive / f"table={table}", format="parquet", partitioning=part)
        for vantage, date in keys:
            got = d.to_table(filter=(ds.field("vantage") == vantage)
                             & (ds.field("date") == dt.date.fromisoformat(date)))
            got = restore(got, m["tables"][table]["columns"]).to_pandas()
            assert len(got) > 0
            pd.testing.assert_frame_equal(sort_frame(got), flat_rows(flat, table, vantage, date))
        whole = d.to_table()
        assert whole.num_rows == pq.read_metadata(flat / f"{table}.parquet").num_rows


def test_every_table_reads_back_equal_to_flat(pair):
    hive, flat = pair
    for table in TABLES:
        a, b = read_arrow(hive, table), pq.read_table(flat / f"{table}.parquet")
        assert a.schema.equals(b.schema), table
        pd.testing.assert_frame_equal(sort_frame(a.to_pandas()), sort_frame(b.to_pandas()))


def test_pandas_reads_a_table_directory_as_one_table(pair):
    hive, flat = pair
    for table in ("domains", "smtp_probes", "certificates"):
        df = pd.read_parquet(hive / f"table={table}")
        assert len(df) == pq.read_metadata(flat / f"{table}.parquet").num_rows
        assert set(df["vantage"].astype(str)) == set(flat_rows(flat, table)["vantage"])
    vantage, date = partitions(flat, "domains")[-1]
    df = pd.read_parquet(hive / "table=domains", filters=[("vantage", "=", vantage),
                                                         ("date", "=", date)])
    assert len(df) == len(flat_rows(flat, "domains", vantage, date)) > 0


def test_a_partition_key_also_inside_the_files_breaks_pandas(pair, tmp_path):
    """Why the partition columns are in the path only: with `vantage` also a column of the
    files, pyarrow's hive discovery (a dictionary column) and the file's string column clash."""
    hive, _ = pair
    src = hive / "table=domains"
    for f in src.rglob("*.parquet"):
        t = pq.read_table(f)  # one file: no partition columns added
        v = re.search(r"vantage=([^/]+)", f.as_posix())[1]
        dst = tmp_path / f.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(t.add_column(0, "vantage", pa.array([v] * t.num_rows)), dst)
    with pytest.raises(pa.ArrowTypeError, match="vantage"):
        pd.read_parquet(tmp_path)
    pd.read_parquet(src)  # the release's own layout reads


def test_chdb_file_glob_with_partition_filter_equals_flat(pair):
    hive, flat = pair
    for table in PARTITIONED:
        col = DATE_COLUMN[table]
        for vantage, date in partitions(flat, table):
            glob = f"{hive}/table={table}/**/*.parquet"
            got = chdb_query(
                f"SELECT count() AS n, uniqExact(scan_id) AS scans, min({col}) AS first "
                f"FROM file('{glob}', Parquet) WHERE vantage = '{vantage}' AND date = '{date}' "
                "SETTINGS use_hive_partitioning = 1", "DataFrame")
            want = chdb_query(
                f"SELECT count() AS n, uniqExact(scan_id) AS scans, min({col}) AS first "
                f"FROM file('{flat}/{table}.parquet', Parquet) "
                f"WHERE vantage = '{vantage}' AND toDate({col}, 'UTC') = '{date}'", "DataFrame")
            pd.testing.assert_frame_equal(got, want)
            assert got["n"][0] > 0
    # The partition columns' types as ClickHouse infers them from the path.
    types = chdb_query(f"SELECT toTypeName(vantage), toTypeName(date) FROM "
                       f"file('{hive}/table=domains/**/*.parquet', Parquet) LIMIT 1 "
                       "SETTINGS use_hive_partitioning = 1", "CSV").data()
    assert "String" in types and "Date" in types


def test_duckdb_reads_the_partitions_as_one_table(pair):
    hive, flat = pair
    for table in ("domains", "smtp_probes", "dns_hosts"):
        # DuckDB types the date partition as DATE.
        got = duckdb.sql(
            f"SELECT vantage, date, count(*) AS n FROM read_parquet('{hive}/table={table}/*/*/*.parquet', "
            "hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
        want = [(v, dt.date.fromisoformat(d), len(flat_rows(flat, table, v, d)))
                for v, d in partitions(flat, table)]
        assert got == want, table
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{hive}/table=certificates/*.parquet')").fetchall()[0][0]
    assert n == pq.read_metadata(flat / "certificates.parquet").num_rows


def test_sql_library_gives_the_flat_results(pair):
    hive, flat = pair
    with mxray_sql.connect(hive) as h, mxray_sql.connect(flat) as f:
        assert all(isinstance(t, mxray_sql.HiveTable) for t in h.files["domains"])
        nonempty = 0
        for q in mxray_sql.list_queries():
            a, b = h.run(q.name), f.run(q.name)
            pd.testing.assert_frame_equal(a, b, obj=q.name)
            nonempty += len(a) > 0
        assert nonempty >= 8
        # The views have mxray's columns: no `date` or `table` from the path.
        cols = list(h.sql("SELECT * FROM domains LIMIT 0").columns)
        assert cols == list(f.sql("SELECT * FROM domains LIMIT 0").columns)
