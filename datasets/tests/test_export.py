"""scripts/export-dataset and scripts/load-asn, and the checked-in example release."""

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "datasets" / "example"
EXPORT = [sys.executable, str(REPO / "scripts" / "export-dataset")]
LOAD_ASN = [sys.executable, str(REPO / "scripts" / "load-asn")]
TABLES = ("scans", "domains", "dns_hosts", "smtp_probes", "certificates", "mta_sts_policies")


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_example_release_matches_its_manifest():
    m = json.loads((EXAMPLE / "manifest.json").read_text())
    assert m["format"] == "mxray-parquet"
    for table in TABLES:
        e = m["tables"][table]
        path = EXAMPLE / e["file"]
        assert path.stat().st_size == e["bytes"] and sha256(path) == e["sha256"], table
        assert pq.read_metadata(path).num_rows == e["rows"], table
    for e in m["extra_files"].values():
        assert sha256(EXAMPLE / e["file"]) == e["sha256"]
    assert len(m["scans"]) == 6
    assert len(m["release"]["simulated_dates"]) == 6
    card = (EXAMPLE / "CARD.md").read_text()
    assert "Simulated dates" in card and "{{" not in card
    # Small enough to check in.
    assert sum(p.stat().st_size for p in EXAMPLE.iterdir()) < 600_000


def test_example_keeps_mxray_column_types():
    s = pq.read_schema(EXAMPLE / "smtp_probes.parquet")
    assert str(s.field("probed_at").type) == "timestamp[ms, tz=UTC]"
    assert str(s.field("port").type) == "uint16"
    assert str(s.field("starttls_advertised").type) == "bool"
    certs = pd.read_parquet(EXAMPLE / "certificates.parquet")
    assert certs["sha256"].is_unique


def copy_release(tmp_path, name="in"):
    d = tmp_path / name
    shutil.copytree(EXAMPLE, d)
    return d


def test_export_round_trip_is_lossless(tmp_path):
    src = copy_release(tmp_path)
    out = tmp_path / "out"
    subprocess.run([*EXPORT, str(src), "--out", str(out), "--title", "t"], check=True)
    for table in TABLES:
        a = pd.read_parquet(src / f"{table}.parquet")
        b = pd.read_parquet(out / f"{table}.parquet")
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    m = json.loads((out / "manifest.json").read_text())
    assert m["tables"]["domains"]["sha256"] == sha256(out / "domains.parquet")
    card = (out / "CARD.md").read_text()
    assert "| scans | 6 |" in card and "clean, isp" in card
    assert "{{" not in card
    # A release is never overwritten silently.
    r = subprocess.run([*EXPORT, str(src), "--out", str(out), "--title", "t"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "already holds a release" in r.stderr


def test_export_merges_scans_and_deduplicates_certificates(tmp_path):
    a, b = copy_release(tmp_path, "a"), copy_release(tmp_path, "b")
    out = tmp_path / "out"
    subprocess.run([*EXPORT, str(a), str(b), "--out", str(out), "--title", "t"], check=True)
    n_domains = pq.read_metadata(EXAMPLE / "domains.parquet").num_rows
    assert pq.read_metadata(out / "domains.parquet").num_rows == 2 * n_domains
    certs = pd.read_parquet(out / "certificates.parquet")
    assert certs["sha256"].is_unique
    assert len(certs) == pq.read_metadata(EXAMPLE / "certificates.parquet").num_rows


def test_export_refuses_a_modified_file(tmp_path):
    src = copy_release(tmp_path)
    data = bytearray((src / "domains.parquet").read_bytes())
    data[100] ^= 0xFF
    (src / "domains.parquet").write_bytes(bytes(data))
    r = subprocess.run([*EXPORT, str(src), "--out", str(tmp_path / "out"), "--title", "t"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "domains.parquet: SHA-256 is" in r.stderr and "modified" in r.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_simulate_date_shifts_every_timestamp_of_one_scan(tmp_path):
    src = copy_release(tmp_path)
    scans = pd.read_parquet(src / "scans.parquet")
    first = scans.sort_values("started_at").iloc[0]
    out = tmp_path / "out"
    subprocess.run([*EXPORT, str(src), "--out", str(out), "--title", "t",
                    "--simulate-date", f"{first['scan_id']}=2020-02-03"], check=True)
    new = pd.read_parquet(out / "scans.parquet").set_index("scan_id")
    assert new.loc[first["scan_id"], "started_at"].date() == dt.date(2020, 2, 3)
    shift = new.loc[first["scan_id"], "started_at"] - first["started_at"]
    assert shift.total_seconds() % 86400 == 0  # whole days: time of day kept
    old_d = pd.read_parquet(src / "domains.parquet")
    new_d = pd.read_parquet(out / "domains.parquet")
    key = ["scan_id", "vantage", "domain"]
    j = old_d.merge(new_d, on=key, suffixes=("_old", "_new"))
    moved = j[j["scan_id"] == first["scan_id"]]
    kept = j[j["scan_id"] != first["scan_id"]]
    assert len(moved) > 0 and ((moved["scanned_at_new"] - moved["scanned_at_old"]) == shift).all()
    assert (kept["scanned_at_new"] == kept["scanned_at_old"]).all()
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
        # The release is an mxray result directory: `mxray load` verifies and ingests it.
        mxray = REPO / "target" / "debug" / "mxray"
        if not mxray.exists():
            pytest.skip("SKIP: target/debug/mxray not built")
        subprocess.run([str(mxray), "load", str(EXAMPLE), "--clickhouse", db_url], check=True,
                       capture_output=True)
        m = json.loads((EXAMPLE / "manifest.json").read_text())
        for table in ("domains", "smtp_probes", "scans"):
            n = ch(url, f"SELECT count() FROM {db}.{table} FINAL").strip()
            assert int(n) == m["tables"][table]["rows"], table
    finally:
        ch(url, f"DROP DATABASE IF EXISTS {db}")
