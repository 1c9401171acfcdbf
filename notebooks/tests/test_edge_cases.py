"""Edge cases of the queries on small variations of the example (written with pyarrow, same
schema): RFC 8461 mx pattern matching, and what counts as an observation of "no STARTTLS"."""

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mxray_sql
from conftest import flat_example


def variant(tmp_path, table, edit):
    """A copy of the example (flat layout) with `edit(DataFrame) -> DataFrame` applied to one
    table."""
    d = tmp_path / "variant"
    shutil.copytree(flat_example(), d)
    t = pq.read_table(d / f"{table}.parquet")
    df = edit(t.to_pandas())
    pq.write_table(pa.Table.from_pandas(df, schema=t.schema, preserve_index=False),
                   d / f"{table}.parquet")
    return d


@pytest.mark.parametrize(
    "patterns, covered",
    [
        (["mx.elsewhere.lab.test"], False),  # the lab's own case
        (["*.sts-mx-outside.lab.test"], True),  # wildcard: exactly one more label
        (["MX.STS-MX-OUTSIDE.LAB.TEST"], True),  # names compare case-insensitively
        (["*.lab.test"], False),  # a wildcard matches one label, not two
        (["*.mx.sts-mx-outside.lab.test"], False),  # not the name itself
        (["sts-mx-outside.lab.test"], False),  # the domain is not its MX
        (["mx.elsewhere.lab.test", "*.sts-mx-outside.lab.test"], True),  # any pattern
    ],
)
def test_mx_pattern_matching(tmp_path, patterns, covered):
    def edit(df):
        sel = df["domain"] == "sts-mx-outside.lab.test"
        df.loc[sel, "mx_patterns"] = df.loc[sel, "mx_patterns"].map(lambda _: list(patterns))
        return df

    with mxray_sql.connect(variant(tmp_path, "mta_sts_policies", edit)) as s:
        got = s.run("mta_sts_mx_not_covered")
    listed = "sts-mx-outside.lab.test" in set(got["domain"])
    assert listed == (not covered)


@pytest.mark.parametrize(
    "isp_result, error_class, counts",
    [
        ("no_starttls", None, True),  # EHLO answered without STARTTLS: an observation
        ("error", "connect_timeout", False),  # no session: says nothing about STARTTLS
        ("error", "greeting_timeout", False),
    ],
)
def test_only_sessions_that_reached_ehlo_count(tmp_path, isp_result, error_class, counts):
    new_ip = "198.51.100.7"

    def edit(df):
        good = df[(df["sni"] == "mx.good.lab.test")]
        first = good["probed_at"].min().date()
        rows = good[good["probed_at"].dt.date == first].copy()
        assert set(rows["vantage"]) == {"clean", "isp"}
        rows["ip"] = new_ip
        isp = rows["vantage"] == "isp"
        rows.loc[isp, "result"] = isp_result
        rows.loc[isp, "error_class"] = error_class
        rows.loc[isp, "starttls_advertised"] = False
        return pd.concat([df, rows], ignore_index=True)

    with mxray_sql.connect(variant(tmp_path, "smtp_probes", edit)) as s:
        dis = s.run("vantage_disagreement")
        sig = s.run("stripping_by_network")
    mine = dis[dis["ip"] == new_ip]
    assert (len(mine) == 1) == counts
    if counts:
        assert mine.iloc[0]["vantage"] == "isp" and list(mine.iloc[0]["seen_by"]) == ["clean"]
        # Not in any ip_asn prefix of the example: counted under AS 0.
        row = sig[(sig["signal"] == "vantage_disagreement") & (sig["asn"] == 0)]
        assert row["ips"].sum() == 1
