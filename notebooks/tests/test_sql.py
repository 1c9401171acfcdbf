"""Every query of notebooks/sql/ on the example dataset (chDB, current ClickHouse), checked
against what pandas computes independently from the same Parquet files."""

import datetime as dt

import pandas as pd
import pytest

import mxray_sql

MAIL = ("mx", "implicit")
BROKEN = ("bogus", "no_tls", "mismatch", "unusable")


def as_date(x):
    return pd.Timestamp(x).date()


def rows(df, cols):
    return sorted(tuple(r) for r in df[cols].itertuples(index=False))


# ------------------------------------------------------------------------------------ library


def test_every_query_has_a_header_and_returns_its_documented_columns(src):
    queries = mxray_sql.list_queries()
    assert len(queries) >= 13
    for q in queries:
        assert q.question, q.name
        df = src.run(q.name)
        assert list(df.columns) == q.column_names, (q.name, list(df.columns), q.column_names)


def test_bind_checks_parameters():
    q = mxray_sql.load_query("certs_expiring")
    assert "30" in mxray_sql.bind(q) and "{days" not in mxray_sql.bind(q)
    assert "HAVING days_left <= 7" in mxray_sql.bind(q, {"days": 7})
    with pytest.raises(mxray_sql.QueryError, match="unknown parameter"):
        mxray_sql.bind(q, {"dayz": 7})
    with pytest.raises(mxray_sql.QueryError, match="not an integer"):
        mxray_sql.bind(q, {"days": "7; DROP TABLE domains"})
    with pytest.raises(mxray_sql.QueryError, match="negative"):
        mxray_sql.bind(q, {"days": -1})
    with pytest.raises(mxray_sql.QueryError, match="no query"):
        mxray_sql.load_query("no_such_query")


def test_directory_of_scan_directories_is_one_source(tmp_path, tables):
    # Two "scan directories" under one root, the release in each layout (Hive-partitioned and
    # flat): every row counted twice.
    import shutil

    from conftest import flat_example

    shutil.copytree(mxray_sql.Path(tables_root()), tmp_path / "a")
    shutil.copytree(flat_example(), tmp_path / "b")
    with mxray_sql.connect(tmp_path) as s:
        n = s.sql("SELECT count() AS n FROM domains")["n"][0]
        assert n == 2 * len(tables.domains)
        # The adoption query keeps the latest record per domain, date and vantage: no double count.
        df = s.run("adoption_domains")
    assert df["domains"].sum() == len(tables.domains)


def tables_root():
    from conftest import EXAMPLE

    return EXAMPLE


# ----------------------------------------------------------------------------------- adoption


def test_adoption_domains_equals_pandas(src, tables):
    got = src.run("adoption_domains")
    d = tables.domains
    expected = []
    for (date, vantage), g in d.groupby(["scan_date", "vantage"]):
        mail = g[g["mx_kind"].isin(MAIL)]
        n = len(mail)
        counts = {
            "domains": len(g),
            "mail_domains": n,
            "starttls_all": (mail["starttls"] == "all").sum(),
            "pkix_all": (mail["pkix"] == "all").sum(),
            "dane_valid": (mail["dane"] == "valid").sum(),
            "dane_broken": mail["dane"].isin(BROKEN).sum(),
            "mta_sts_enforce": (mail["mta_sts"] == "enforce").sum(),
            "mta_sts_testing": (mail["mta_sts"] == "testing").sum(),
            "mta_sts_compliant": (mail["mta_sts_compliant"] == True).sum(),  # noqa: E712
            "tls_rpt": mail["tls_rpt"].sum(),
        }
        expected.append((date, vantage, counts))
    assert len(got) == len(expected) == 6  # 3 dates x 2 vantages
    for (date, vantage, counts), (_, row) in zip(expected, got.iterrows()):
        assert (as_date(row["scan_date"]), row["vantage"]) == (date, vantage)
        for k, v in counts.items():
            assert row[k] == v, (date, vantage, k, row[k], v)
            if k not in ("domains", "mail_domains"):
                assert row[f"{k}_share"] == pytest.approx(v / counts["mail_domains"])


def test_adoption_hosts_equals_pandas(src, tables):
    got = src.run("adoption_hosts").set_index(["scan_date", "vantage"])
    p = tables.probes.assign(
        tls=tables.probes["result"] == "starttls_ok",
        pkix=tables.probes["pkix_valid"] == True,  # noqa: E712
        dane_ok=tables.probes["dane"] == "valid",
    )
    for (date, vantage), g in p.groupby(["scan_date", "vantage"]):
        row = got.loc[(pd.Timestamp(date), vantage)] if (pd.Timestamp(date), vantage) in got.index \
            else got.loc[(date, vantage)]
        hosts = g[g["sni"].notna()].groupby("sni")
        ips = g.groupby(["ip", "port"])
        assert row["mx_hosts"] == hosts.ngroups
        assert row["mx_hosts_starttls"] == hosts["tls"].all().sum()
        assert row["mx_hosts_pkix"] == hosts["pkix"].all().sum()
        assert row["mx_hosts_dane_valid"] == hosts["dane_ok"].all().sum()
        assert row["ips"] == ips.ngroups
        assert row["ips_starttls"] == ips["tls"].any().sum()
        assert row["ips_pkix"] == ips["pkix"].any().sum()
        assert row["ips_starttls_share"] == pytest.approx(ips["tls"].any().sum() / ips.ngroups)


def test_dane_classes_equals_pandas(src, tables):
    got = src.run("dane_classes")
    mail = tables.domains[tables.domains["mx_kind"].isin(MAIL)]
    exp = mail.groupby(["scan_date", "vantage", "dane"]).size().reset_index(name="domains")
    got_rows = sorted((as_date(r.scan_date), r.vantage, r.dane, r.domains) for r in got.itertuples())
    assert got_rows == sorted(exp.itertuples(index=False, name=None))
    for _, g in got.groupby(["scan_date", "vantage"]):
        assert g["share"].sum() == pytest.approx(1.0)
    assert set(got[got["broken"] == 1]["dane"]) <= set(BROKEN)
    # The lab's DANE cases: good and dane-ta valid, tlsa-mismatch mismatch, bogus bogus.
    assert {"valid", "mismatch", "bogus", "insecure"} <= set(got["dane"])


def test_mta_sts_classes_equals_pandas(src, tables):
    got = src.run("mta_sts_classes")
    d = tables.domains.assign(error_class=tables.domains["mta_sts_error"].fillna(""))
    exp = d.groupby(["scan_date", "vantage", "mta_sts", "error_class"]).size()
    got_map = {(as_date(r.scan_date), r.vantage, r.mta_sts, r.error_class): r.domains
               for r in got.itertuples()}
    assert got_map == {k: v for k, v in exp.items()}
    # Every fetch error class the lab serves is there, per date and vantage.
    fetch = got[got["mta_sts"] == "fetch_error"]
    assert {"http_status", "redirect", "cert", "content_type"} <= set(fetch["error_class"])


def test_tls_versions_shares_sum_to_one(src, tables):
    got = src.run("tls_versions")
    ok = tables.probes[tables.probes["result"] == "starttls_ok"]
    for (date, vantage), g in got.groupby(["scan_date", "vantage"]):
        assert g["share"].sum() == pytest.approx(1.0)
        sel = ok[(ok["scan_date"] == as_date(date)) & (ok["vantage"] == vantage)]
        assert g["ips"].sum() >= sel.groupby(["ip", "port"]).ngroups
    # The versions the probes negotiated (the lab has a TLS 1.0-only host, reached through the
    # OpenSSL engine: `tls_legacy`).
    assert set(got["tls_version"]) == set(ok["tls_version"].dropna())
    assert set(got["tls_version"]) <= {"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"}
    legacy = ok[ok["tls_version"].isin(["TLSv1.0", "TLSv1.1"])]
    assert legacy["tls_legacy"].all()


def test_mx_providers_counts_shared_hosts(src, tables):
    got = src.run("mx_providers", suffix_labels=3, top=3)
    assert (got.groupby(["scan_date", "vantage"]).size() <= 3).all()
    mail = tables.domains[tables.domains["mx_kind"].isin(MAIL)].explode("mx_hosts")
    shared = mail[mail["mx_hosts"].str.endswith(".shared.lab.test", na=False)]
    exp = shared.groupby(["scan_date", "vantage"])["domain"].nunique()
    top = got[got["provider"] == "shared.lab.test"]
    assert len(top) == 6
    for r in top.itertuples():
        assert r.domains == exp[(as_date(r.scan_date), r.vantage)]
        assert r.mx_hosts == 4  # mx1..mx4.shared.lab.test
    # Default grouping is the registrable domain: everything in the lab is lab.test.
    default = src.run("mx_providers")
    assert set(default["provider"]) == {"lab.test"}


# -------------------------------------------------------------------------------- correctness


def test_dane_broken_domains(src, tables):
    got = src.run("dane_broken_domains")
    d = tables.domains[tables.domains["dane"].isin(["mismatch", "no_tls"])]
    assert rows(got, ["vantage", "domain", "dane"]) == rows(d, ["vantage", "domain", "dane"])
    mism = got[got["domain"] == "tlsa-mismatch.lab.test"]
    assert len(mism) == 6
    for probes in mism["probes"]:
        assert list(probes) == ["mx.tlsa-mismatch.lab.test 127.0.10.3 starttls_ok mismatch"]


def test_mta_sts_mx_not_covered(src, tables):
    got = src.run("mta_sts_mx_not_covered")
    assert set(got["domain"]) == {"sts-mx-outside.lab.test"}
    assert len(got) == 6
    for r in got.itertuples():
        assert list(r.uncovered) == ["mx.sts-mx-outside.lab.test"]
        assert r.mode == "enforce" and r.mta_sts_compliant == 0
    # Domains with a valid, covering policy (good.lab.test, enforce) are not listed.
    valid = tables.policies[tables.policies["status"].isin(["enforce", "testing", "mode_none"])]
    assert "good.lab.test" in set(valid["domain"])


def test_certs_expiring_horizon(src, tables):
    got = src.run("certs_expiring", days=30)
    latest = max(tables.scans["scan_date"])
    assert set(got["scan_date"].map(as_date)) == {latest}
    # The lab's expired certificate is listed, already expired; all listed certs are within 30 d.
    exp = got[got["subject"].str.startswith("CN=mx.expired.lab.test")]
    assert len(exp) >= 1 and (exp["days_left"] < 0).all()
    assert (got["days_left"] <= 30).all()
    # Independently: leaf certificates of latest-date probes, not_after <= start + 30 days.
    scans = tables.scans[tables.scans["scan_date"] == latest]
    p = tables.probes[tables.probes["scan_id"].isin(scans["scan_id"])]
    p = p[p["chain_sha256"].map(len) > 0]
    leaf = p.assign(sha256=p["chain_sha256"].map(lambda c: c[0]))
    start = scans["started_at"].min()
    certs = tables.certs.drop_duplicates("sha256").set_index("sha256")
    within = {s for s in leaf["sha256"] if (certs.loc[s, "not_after"] - start).total_seconds()
              <= 30 * 86400 + 86399}
    assert set(got["sha256"]) == within
    # A longer horizon lists more, never fewer, certificates; the big shared hosts come first.
    more = src.run("certs_expiring", days=400)
    assert set(got["sha256"]) < set(more["sha256"])
    assert more["domains"].iloc[0] == more["domains"].max()


# ---------------------------------------------------------------------------------- stripping


def stripped_ip(tables):
    h = tables.dns_hosts[tables.dns_hosts["host"] == "mx.stripped.lab.test"]
    ips = {a for addrs in h["addresses"] for a in addrs}
    assert len(ips) == 1
    return ips.pop()


def observed(probes):
    ok = probes["result"].isin(["starttls_ok", "no_starttls"]) | probes["starttls_advertised"]
    return (probes[ok].groupby(["scan_date", "vantage", "ip", "port"])["starttls_advertised"]
            .any().reset_index(name="offered"))


def test_vantage_disagreement_finds_the_stripped_domain_at_isp_only(src, tables):
    got = src.run("vantage_disagreement")
    ip = stripped_ip(tables)
    mine = got[got["ip"] == ip]
    assert set(mine["vantage"]) == {"isp"}
    assert len(mine) == 3  # every simulated date
    for r in mine.itertuples():
        assert list(r.seen_by) == ["clean"]
        assert list(r.hosts) == ["mx.stripped.lab.test"]
        assert "starttls_mangled" in list(r.signals)
    # Independently in pandas: (date, ip, port) offered to one vantage, not to another.
    o = observed(tables.probes)
    offered_any = o[o["offered"]].groupby(["scan_date", "ip", "port"]).size().rename("n")
    cand = o[~o["offered"]].join(offered_any, on=["scan_date", "ip", "port"], how="inner")
    exp = sorted((d, v, i, int(p)) for d, v, i, p in cand[["scan_date", "vantage", "ip", "port"]]
                 .itertuples(index=False))
    assert sorted((as_date(r.scan_date), r.vantage, r.ip, int(r.port)) for r in got.itertuples()) == exp


def test_history_regression_equals_pandas(src, tables):
    got = src.run("history_regression")
    o = observed(tables.probes)
    exp = []
    for vantage, g in o.groupby("vantage"):
        now = tables.scans[tables.scans["vantage"] == vantage]["scan_date"].max()
        cur = g[(g["scan_date"] == now) & ~g["offered"]]
        before = g[(g["scan_date"] < now) & g["offered"]]
        for r in cur.itertuples():
            b = before[(before["ip"] == r.ip) & (before["port"] == r.port)]
            if len(b):
                exp.append((vantage, r.ip, int(r.port), now, min(b["scan_date"]), max(b["scan_date"])))
    got_rows = [(r.vantage, r.ip, int(r.port), as_date(r.now_date), as_date(r.first_offered),
                 as_date(r.last_offered)) for r in got.itertuples()]
    assert sorted(got_rows) == sorted(exp)
    # The example's lab changed between dates, so some hosts stopped offering STARTTLS.
    assert len(got_rows) > 0
    # The stripped IP never offered STARTTLS to isp: not a regression there.
    assert stripped_ip(tables) not in set(got[got["vantage"] == "isp"]["ip"])


def test_ip_asn_longest_prefix_match(src, tables):
    got = src.run("ip_asn_lookup").set_index("ip")
    assert got.loc[stripped_ip(tables), "asn"] == 64498
    assert got.loc[stripped_ip(tables), "as_name"] == "LAB-EYEBALL-ISP"
    assert got.loc[stripped_ip(tables), "prefix"] == "127.0.10.16/28"
    assert got.loc["127.0.10.1", "asn"] == 64497
    assert got.loc["127.0.20.1", "asn"] == 64499
    assert set(got.index) == set(tables.probes["ip"])


def test_ip_asn_from_pfx2as_prefers_the_longest_prefix(tmp_path):
    import subprocess

    from conftest import EXAMPLE, REPO

    out = tmp_path / "ip_asn.parquet"
    subprocess.run([str(REPO / "scripts" / "load-asn"), str(REPO / "datasets" / "fixtures" / "pfx2as-lab.tsv"),
                    "--out", str(out)], check=True)
    with mxray_sql.connect(EXAMPLE, ip_asn=out) as s:
        got = s.run("ip_asn_lookup").set_index("ip")
    # 127.0.10.26 is in 127.0.0.0/8 (64496), 127.0.10.0/24 (64497) and 127.0.10.16/28 (64498_64511).
    assert got.loc["127.0.10.26", "asn"] == 64498
    assert got.loc["127.0.10.26", "prefix"] == "127.0.10.16/28"
    assert got.loc["127.0.10.1", "asn"] == 64497
    pool = [ip for ip in got.index if ip.startswith("127.1.")]  # the lab's synthetic hosts
    assert pool and set(got.loc[pool, "asn"]) == {64500}  # an AS set keeps its first AS


def test_stripping_by_network_equals_pandas(src, tables):
    got = src.run("stripping_by_network")
    recorded = tables.probes.explode("stripping_signals").dropna(subset=["stripping_signals"])
    exp = (recorded.groupby(["scan_date", "vantage", "stripping_signals"])
           .apply(lambda g: g.groupby(["ip", "port"]).ngroups, include_groups=False))
    got_rec = got[got["signal"] != "vantage_disagreement"]
    got_sum = got_rec.groupby([got_rec["scan_date"].map(as_date), "vantage", "signal"])["ips"].sum()
    assert {k: int(v) for k, v in got_sum.items()} == {k: int(v) for k, v in exp.items()}
    mangled = got[got["signal"] == "starttls_mangled"]
    assert set(mangled["asn"]) == {64498}
    # The isp vantage is behind the stripping middlebox on every date; the clean vantage sees
    # mangling only from the second date on, when --lab-epoch 1 strips regress.lab.test for
    # every client (the history_regression case), never on the first.
    dates = sorted(set(mangled["scan_date"].map(as_date)))
    isp = mangled[mangled["vantage"] == "isp"]
    clean = mangled[mangled["vantage"] == "clean"]
    assert set(isp["scan_date"].map(as_date)) == set(dates) and len(dates) == 3
    assert set(clean["scan_date"].map(as_date)) == set(dates[1:])
    assert (isp.set_index(isp["scan_date"].map(as_date))["ips"].to_dict()
            == {dates[0]: 1, dates[1]: 2, dates[2]: 2})
    dis = got[got["signal"] == "vantage_disagreement"]
    assert set(dis["vantage"]) == {"isp"} and set(dis["as_name"]) == {"LAB-EYEBALL-ISP"}
    assert len(dis) == 3


def test_empty_ip_asn_maps_nothing(tmp_path):
    import shutil

    from conftest import flat_example

    for f in flat_example().glob("*.parquet"):
        if f.name != "ip_asn.parquet":
            shutil.copy(f, tmp_path / f.name)
    with mxray_sql.connect(tmp_path) as s:
        got = s.run("stripping_by_network")
        assert len(got) > 0 and set(got["asn"]) == {0}
        assert set(s.run("ip_asn_lookup")["prefix"]) == {""}


def test_sample_dates_are_the_simulated_ones(tables):
    assert sorted(set(tables.scans["scan_date"])) == [
        dt.date(2026, 9, 1), dt.date(2026, 10, 1), dt.date(2026, 11, 1)]
    assert sorted(set(tables.scans["vantage"])) == ["clean", "isp"]


def test_vantage_disagreement_agrees_with_mxray_report(src):
    """The Rust `mxray report` finds the same disagreements (over all dates) as the SQL."""
    import json
    import subprocess

    from conftest import EXAMPLE, REPO, flat_example

    mxray = REPO / "target" / "debug" / "mxray"
    if not mxray.exists():
        pytest.skip("SKIP: target/debug/mxray not built")

    def mxray_report(d):
        return json.loads(subprocess.run([str(mxray), "report", "--json", str(d)], check=True,
                                         capture_output=True, text=True).stdout)

    # `mxray report` reads the Hive-partitioned release and its flat export alike.
    hive = mxray_report(EXAMPLE)
    assert hive == mxray_report(flat_example())
    report = hive["disagreements"]
    from_report = {(d["ip"], int(d["port"]), tuple(sorted(v[0] for v in d["without_tls"])))
                   for d in report}
    got = src.run("vantage_disagreement")
    from_sql = {(ip, int(port), tuple(sorted(g["vantage"].unique())))
                for (ip, port), g in got.groupby(["ip", "port"])}
    assert from_sql == from_report
    assert from_sql  # the stripped host is found by both
