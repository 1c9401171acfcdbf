"""Shared fixtures: the checked-in example dataset (Hive layout), read by chDB (through
mxray_sql) and, independently, by pandas; and the same release in the flat layout."""

import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1]
REPO = NOTEBOOKS.parent
EXAMPLE = REPO / "datasets" / "example"
sys.path.insert(0, str(NOTEBOOKS))

import mxray_sql  # noqa: E402

_FLAT: dict[str, Path] = {}


def flat_example() -> Path:
    """The example in the flat layout (`<table>.parquet` with `vantage` inside, as `mxray scan
    --out` writes), exported from the checked-in release by `scripts/export-dataset --layout
    flat` once per session: the reference the partitioned reads are compared with, and the base
    of the edited variants."""
    if "dir" not in _FLAT:
        tmp = Path(tempfile.mkdtemp(prefix="mxray-flat-example-"))
        atexit.register(shutil.rmtree, tmp, True)
        out = tmp / "example"
        subprocess.run([sys.executable, str(REPO / "scripts" / "export-dataset"), str(EXAMPLE),
                        "--out", str(out), "--title", "flat copy", "--layout", "flat",
                        "--ip-asn", str(EXAMPLE / "table=ip_asn" / "part-0.parquet")],
                       check=True, capture_output=True)
        _FLAT["dir"] = out
    return _FLAT["dir"]


def read_table(root: Path, name: str) -> pd.DataFrame:
    """One table as pandas reads it: `pd.read_parquet` of the table's directory in the Hive
    layout (all parts as one table; the path's `vantage` back to a plain string column in
    mxray's place, the `date` partition dropped), or of `<table>.parquet` in the flat one."""
    flat = root / f"{name}.parquet"
    if flat.is_file():
        return pd.read_parquet(flat)
    df = pd.read_parquet(root / f"table={name}")
    if "date" in df.columns:  # no mxray table has a `date` column: it is the partition
        df = df.drop(columns=["date"])
    if isinstance(df.get("vantage", pd.Series(dtype=str)).dtype, pd.CategoricalDtype):
        vantage = df.pop("vantage").astype(str)
        df.insert(1, "vantage", vantage)
    return df


@pytest.fixture(scope="session")
def src():
    s = mxray_sql.connect(EXAMPLE)
    yield s
    s.close()


class Tables:
    """The example's tables as pandas DataFrames, with the scan date joined in."""

    def __init__(self, root: Path):
        self.scans = read_table(root, "scans")
        self.scans["scan_date"] = self.scans["started_at"].dt.date
        dates = self.scans[["scan_id", "vantage", "scan_date"]]
        self.domains = read_table(root, "domains").merge(dates, on=["scan_id", "vantage"])
        self.probes = read_table(root, "smtp_probes").merge(dates, on=["scan_id", "vantage"])
        self.dns_hosts = read_table(root, "dns_hosts").merge(dates, on=["scan_id", "vantage"])
        self.policies = read_table(root, "mta_sts_policies").merge(dates, on=["scan_id", "vantage"])
        self.certs = read_table(root, "certificates")


@pytest.fixture(scope="session")
def tables():
    return Tables(EXAMPLE)
