"""Reading a release in either layout, for the dataset tests (no test here)."""

import atexit
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "datasets" / "example"
EXPORT = [sys.executable, str(REPO / "scripts" / "export-dataset")]
TABLES = ("scans", "domains", "dns_hosts", "smtp_probes", "certificates", "mta_sts_policies",
          "canary_results")
#: The record's time column whose UTC date is the `date` partition.
DATE_COLUMN = {"scans": "started_at", "domains": "scanned_at", "dns_hosts": "resolved_at",
               "smtp_probes": "probed_at", "mta_sts_policies": "fetched_at",
               "canary_results": "probed_at"}
PARTITIONED = tuple(DATE_COLUMN)


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def read_arrow(root: Path, table: str) -> pa.Table:
    """One table as mxray wrote it (columns in mxray's order, `vantage` a string column), from
    a release of either layout: the Hive one through `pyarrow.dataset(..., partitioning="hive")`
    of the table's directory."""
    m = manifest(root)
    if m["format"] == "mxray-parquet":
        return pq.read_table(root / m["tables"][table]["file"])
    entry = m["tables"][table]
    t = ds.dataset(root / entry["path"], format="parquet", partitioning="hive").to_table()
    return restore(t, entry["columns"])


def restore(t: pa.Table, columns: list[str]) -> pa.Table:
    """A table read with hive partitioning, back to mxray's columns: `date` dropped, `vantage`
    (a string from the path) in its place and as mxray types it (string, not null)."""
    if "vantage" in t.column_names and t.schema.field("vantage").nullable:
        v = t.column("vantage").cast(pa.string())
        t = t.set_column(t.column_names.index("vantage"),
                         pa.field("vantage", pa.string(), nullable=False), v)
    return t.select(columns)


def sort_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order (by their text), for comparing reads in different orders."""
    def text(v):
        return repr(v.tolist() if hasattr(v, "tolist") else v)

    if df.empty:
        return df.reset_index(drop=True)
    key = df.apply(lambda r: "\x1f".join(text(v) for v in r), axis=1)
    return df.iloc[key.argsort(kind="stable")].reset_index(drop=True)


_FLAT: dict[str, Path] = {}


def flat_example() -> Path:
    """The example in the flat layout, exported from the checked-in release once per session
    (`scripts/export-dataset --layout flat`): what the partitioned reads must equal."""
    if "dir" not in _FLAT:
        tmp = Path(tempfile.mkdtemp(prefix="mxray-flat-example-"))
        atexit.register(shutil.rmtree, tmp, True)
        out = tmp / "example"
        subprocess.run([*EXPORT, str(EXAMPLE), "--out", str(out), "--title", "flat copy",
                        "--layout", "flat",
                        "--ip-asn", str(EXAMPLE / "table=ip_asn" / "part-0.parquet")],
                       check=True, capture_output=True)
        _FLAT["dir"] = out
    return _FLAT["dir"]
