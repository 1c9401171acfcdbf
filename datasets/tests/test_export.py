"""scripts/export-dataset and scripts/load-asn, and the checked-in example release."""

import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request

import pandas as pd
import pyarrow.parquet as pq
import pytest

from release_io import EXAMPLE, EXPORT, REPO, TABLES, manifest, read_arrow, sort_frame

LOAD_ASN = [sys.executable, str(REPO / "scripts" / "load-asn")]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_example_release_matches_its_manifest():
    m = manifest(EXAMPLE)
    assert m["format"] == "mxray-parquet-hive"
    assert set(m["tables"]) == set(TABLES) | {"ip_asn"}
    for f in m["files"]:
        path = EXAMPLE / f["path"]
        assert path.stat().st_size == f["bytes"] and sha256(path) == f["sha256"], f["path"]
        assert pq.read_metadata(path).num_rows == f["rows"], f["path"]
    for e in m["extra_files"].values():
        assert sha256(EXAMPLE / e["file"]) == e["sha256"]
    assert len(m["scans"]) == 6
    assert len(m["release"]["simulated_dates"]) == 6
    card = (EXAMPLE / "CARD.md").read_text()
    assert "Simulated dates" in card and "{{" not in card and "table=domains/" in card
    assert (EXAMPLE / "DATA-DICTIONARY.md").read_text() == (REPO / "datasets/README.md").read_text()
    # Small enough to check in.
    assert sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file()) < 1_200_000


def test_example_keeps_mxray_column_types():
    s = read_arrow(EXAMPLE, "smtp_probes").schema
    assert str(s.field("probed_at").type) == "timestamp[ms, tz=UTC]"
    assert str(s.field("port").type) == "uint16"
    assert str(s.field("starttls_advertised").type) == "bool"
    assert str(s.field("vantage").type) == "string"
    certs = read_arrow(EXAMPLE, "certificates").to_pandas()
    assert certs["sha256"].is_unique


def copy_release(tmp_path, name="in"):
    d = tmp_path / name
    shutil.copytree(EXAMPLE, d)
    return d


def frames_equal(a, b):
    """Equal rows; the order may differ (a Hive table reads partition by partition)."""
    pd.testing.assert_frame_equal(sort_frame(a.to_pandas()), sort_frame(b.to_pandas()))


@pytest.mark.parametrize("layout", ["hive", "flat"])
def test_export_round_trip_is_lossless(tmp_path, layout):
    src = copy_release(tmp_path)
    out = tmp_path / "out"
    subprocess.run([*EXPORT, str(src), "--out", str(out), "--title", "t", "--layout", layout,
                    "--part-rows", "100"], check=True)
    for table in TABLES:
        a, b = read_arrow(src, table), read_arrow(out, table)
        assert a.schema.equals(b.schema), table
        frames_equal(a, b)
    m = manifest(out)
    if layout == "hive":
        # The same rows land in the same parts.
        assert ([(f["path"], f["rows"]) for f in m["files"] if f["table"] != "ip_asn"]
                == [(f["path"], f["rows"]) for f in manifest(src)["files"] if f["table"] != "ip_asn"])
    else:
        assert m["format"] == "mxray-parquet"
        assert m["tables"]["domains"]["sha256"] == sha256(out / "domains.parquet")
    card = (out / "CARD.md").read_text()
    assert "clean, isp" in card and "{{" not in card
    # A release is never overwritten silently; --force replaces it (no file of the old one left).
    r = subprocess.run([*EXPORT, str(src), "--out", str(out), "--title", "t"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "already holds a release" in r.stderr
    other = "flat" if layout == "hive" else "hive"
    subprocess.run([*EXPORT, str(src), "--out", str(out), "--title", "t", "--layout", other,
                    "--force"], check=True)
    left = {p.relative_to(out).as_posix() for p in out.rglob("*.parquet")}
    if other == "flat":
        assert left == {f"{t}.parquet" for t in TABLES}
    else:
        assert left == {f["path"] for f in manifest(out)["files"]}


def test_part_cap_splits_partitions(tmp_path):
    out = tmp_path / "out"
    subprocess.run([*EXPORT, str(EXAMPLE), "--out", str(out), "--title", "t", "--part-rows", "30"],
                   check=True)
    m = manifest(out)
    parts = [f for f in m["files"] if f["path"].startswith("table=domains/vantage=isp/date=2026-10-01/")]
    assert [f["path"].rsplit("/", 1)[1] for f in parts] == [f"part-{i}.parquet" for i in range(len(parts))]
    assert len(parts) >= 4 and all(f["rows"] <= 30 for f in parts)
    assert sum(f["rows"] for f in parts) == sum(
        f["rows"] for f in manifest(EXAMPLE)["files"]
        if f["path"].startswith("table=domains/vantage=isp/date=2026-10-01/"))
    frames_equal(read_arrow(EXAMPLE, "domains"), read_arrow(out, "domains"))
    r = subprocess.run([*EXPORT, str(EXAMPLE), "--out", str(tmp_path / "x"), "--title", "t",
                        "--part-rows", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "--part-rows" in r.stderr


def test_export_merges_scans_and_deduplicates_certificates(tmp_path):
    a, b = copy_release(tmp_path, "a"), copy_release(tmp_path, "b")
    out = tmp_path / "out"
    subprocess.run([*EXPORT, str(a), str(b), "--out", str(out), "--title", "t"], check=True)
    n_domains = read_arrow(EXAMPLE, "domains").num_rows
    assert read_arrow(out, "domains").num_rows == 2 * n_domains
    certs = read_arrow(out, "certificates").to_pandas()
    assert certs["sha256"].is_unique
    assert len(certs) == read_arrow(EXAMPLE, "certificates").num_rows


def test_export_refuses_a_modified_file(tmp_path):
    src = copy_release(tmp_path)
    victim = next(f["path"] for f in manifest(src)["files"] if f["table"] == "domains")
    data = bytearray((src / victim).read_bytes())
    data[100] ^= 0xFF
    (src / victim).write_bytes(bytes(data))
    r = subprocess.run([*EXPORT, str(src), "--out", str(tmp_path / "out"), "--title", "t"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{victim}: SHA-256 is" in r.stderr and "modified" in r.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_simulate_date_shifts_every_timestamp_of_one_scan(tmp_path):
    src = copy_release(tmp_path)
    scans = read_arrow(src, "scans").to_pandas()
    first = scans.sort_values("started_at").iloc[0]
    out = tmp_path / "out"
    subprocess.run([*EXPORT, str(src), "--out", str(out), "--title", "t",
                    "--simulate-date", f"{first['scan_id']}=2020-02-03"], check=True)
    new = read_arrow(out, "scans").to_pandas().set_index("scan_id")
    assert new.loc[first["scan_id"], "started_at"].date() == dt.date(2020, 2, 3)
    shift = new.loc[first["scan_id"], "started_at"] - first["started_at"]
    assert shift.total_seconds() % 86400 == 0  # whole days: time of day kept
    old_d = read_arrow(src, "domains").to_pandas()
    new_d = read_arrow(out, "domains").to_pandas()
    key = ["scan_id", "vantage", "domain"]
    j = old_d.merge(new_d, on=key, suffixes=("_old", "_new"))
    moved = j[j["scan_id"] == first["scan_id"]]
    kept = j[j["scan_id"] != first["scan_id"]]
    assert len(moved) > 0 and ((moved["scanned_at_new"] - moved["scanned_at_old"]) == shift).all()
    assert (kept["scanned_at_new"] == kept["scanned_at_old"]).all()
    # The moved scan's rows are in the partition of their new date.
    part = [f for f in manifest(out)["files"] if f["table"] == "domains"
            and f["partition"] == {"vantage": first["vantage"], "date": "2020-02-03"}]
    assert sum(f["rows"] for f in part) == len(moved)
    assert "Simulated dates" in (out / "CARD.md").read_text()
    r = subprocess.run([*EXPORT, str(src), "--out", str(tmp_path / "x"), "--title", "t",
                        "--simulate-date", "nope=2020-01-01"], capture_output=True, text=True)
    assert r.returncode == 1 and "no such scan" in r.stderr


def test_load_asn_formats_and_errors(tmp_path):
    out = tmp_path / "a.parquet"
    subprocess.run([*LOAD_ASN, str(REPO / "datasets/fixtures/ip2asn-lab.tsv"), "--out", str(out)],
                   check=True)
    t = pd.read_parquet(out)
    row = t[(t["network"] == "127.0.10.16") & (t["length"] == 28)].iloc[0]
    assert (row["asn"], row["as_name"], row["country"]) == (64498, "LAB-EYEBALL-ISP", "ZZ")
    assert 0 not in set(t["asn"])  # "Not routed" ranges dropped
    # Ranges that are not CIDR-aligned become several prefixes covering exactly the range.
    loop = t[(t["asn"] == 64496) & (t["family"] == 4)]
    import ipaddress

    covered = sum(ipaddress.ip_network(f"{n}/{l}").num_addresses
                  for n, l in zip(loop["network"], loop["length"]))
    assert covered == (10 * 256) + (10 * 256 - 32)  # 127.0.0.0-127.0.9.255, 127.0.10.32-127.0.19.255
    bad = tmp_path / "bad.tsv"
    bad.write_text("1.0.0.0\t24\t13335\n1.0.1.0\t24\n")
    r = subprocess.run([*LOAD_ASN, str(bad), "--out", str(tmp_path / "b.parquet")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "bad.tsv:2" in r.stderr
    assert not (tmp_path / "b.parquet").exists()


def clickhouse_url():
    url = os.environ.get("MXRAY_TEST_CLICKHOUSE_URL")
    if not url:
        if os.environ.get("MXRAY_REQUIRE_SERVERS") == "1":
            pytest.fail("MXRAY_TEST_CLICKHOUSE_URL is not set")
        pytest.skip("SKIP: no ClickHouse (MXRAY_TEST_CLICKHOUSE_URL)")
    return url.rstrip("/")


def ch(url, sql):
    req = urllib.request.Request(url + "/", data=sql.encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def test_load_asn_into_clickhouse_and_mxray_load_of_a_release(tmp_path):
    url = clickhouse_url()
    base = urllib.parse.urlsplit(url)
    db = f"mxray_t_analysis_{os.getpid()}"
    db_url = urllib.parse.urlunsplit((base.scheme, base.netloc, "/" + db, "", ""))
    try:
        subprocess.run([*LOAD_ASN, str(REPO / "datasets/fixtures/pfx2as-lab.tsv"),
                        "--clickhouse", db_url], check=True)
        assert ch(url, f"SELECT count() FROM {db}.ip_asn").strip() == "6"
        subprocess.run([*LOAD_ASN, str(REPO / "datasets/fixtures/pfx2as-lab.tsv"),
                        "--clickhouse", db_url, "--replace"], check=True)
        assert ch(url, f"SELECT asn FROM {db}.ip_asn WHERE network = '127.0.10.16'").strip() == "64498"
        # `mxray load` verifies and ingests the release (Hive layout: every part).
        mxray = REPO / "target" / "debug" / "mxray"
        if not mxray.exists():
            if os.environ.get("MXRAY_REQUIRE_SERVERS") == "1":
                pytest.fail("target/debug/mxray is not built")
            pytest.skip("SKIP: target/debug/mxray not built")
        subprocess.run([str(mxray), "load", str(EXAMPLE), "--clickhouse", db_url], check=True,
                       capture_output=True)
        m = manifest(EXAMPLE)
        for table in TABLES:
            n = ch(url, f"SELECT count() FROM {db}.{table} FINAL").strip()
            assert int(n) == m["tables"][table]["rows"], table
    finally:
        ch(url, f"DROP DATABASE IF EXISTS {db}")
