"""Shared fixtures: the checked-in example dataset, read by chDB (through mxray_sql) and,
independently, by pandas."""

import sys
from pathlib import Path

import pandas as pd
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1]
REPO = NOTEBOOKS.parent
EXAMPLE = REPO / "datasets" / "example"
sys.path.insert(0, str(NOTEBOOKS))

import mxray_sql  # noqa: E402


@pytest.fixture(scope="session")
def src():
    s = mxray_sql.connect(EXAMPLE)
    yield s
    s.close()


class Tables:
    """The example's tables as pandas DataFrames, with the scan date joined in."""

    def __init__(self, root: Path):
        self.scans = pd.read_parquet(root / "scans.parquet")
        self.scans["scan_date"] = self.scans["started_at"].dt.date
        dates = self.scans[["scan_id", "vantage", "scan_date"]]
        self.domains = pd.read_parquet(root / "domains.parquet").merge(dates, on=["scan_id", "vantage"])
        self.probes = pd.read_parquet(root / "smtp_probes.parquet").merge(dates, on=["scan_id", "vantage"])
        self.dns_hosts = pd.read_parquet(root / "dns_hosts.parquet").merge(dates, on=["scan_id", "vantage"])
        self.policies = pd.read_parquet(root / "mta_sts_policies.parquet").merge(dates, on=["scan_id", "vantage"])
        self.certs = pd.read_parquet(root / "certificates.parquet")


@pytest.fixture(scope="session")
def tables():
    return Tables(EXAMPLE)
