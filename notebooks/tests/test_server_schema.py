"""The queries run unchanged on server-shaped tables (current ClickHouse, in chDB).

A ClickHouse database filled by `mxray migrate` + inserts differs from the Parquet views: booleans
are UInt8, `scan_id` is a UUID, times are DateTime (seconds), the TLSA records of `dns_hosts` are a
Nested column, and every table is a ReplacingMergeTree whose duplicates (a retried insert, a
directory loaded twice) disappear only in merges. This test builds such a database from the
example (inserted twice, so every row has an unmerged duplicate), runs every query the way
mxray_sql.ClickHouseSource does (setting `final = 1`), and compares with the Parquet results.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mxray_sql
from conftest import flat_example

# The identity of each record: the ORDER BY of crates/store/src/schema.rs (docs/storage.md).
ORDER_BY = {
    "scans": "scan_id, vantage",
    "domains": "domain, scanned_at, vantage, scan_id",
    "dns_hosts": "host, resolved_at, vantage, scan_id",
    "smtp_probes": "ip, port, probed_at, vantage, scan_id, ifNull(sni, '')",
    "certificates": "sha256",
    "mta_sts_policies": "domain, fetched_at, vantage, scan_id",
}
TLSA_FIELDS = ("usage", "selector", "matching_type", "data")


def server_type(field: pa.Field) -> str:
    t = field.type
    if field.name == "scan_id":
        base = "UUID"
    elif pa.types.is_string(t):
        base = "String"
    elif pa.types.is_boolean(t):
        base = "UInt8"  # 18.16 has no Bool; the DDL uses UInt8 everywhere
    elif pa.types.is_unsigned_integer(t):
        base = f"UInt{t.bit_width}"
    elif pa.types.is_timestamp(t):
        base = "DateTime('UTC')"  # the test server runs in UTC
    elif pa.types.is_list(t) and pa.types.is_string(t.value_type):
        base = "Array(String)"
    else:
        raise AssertionError(f"unexpected column {field}")
    return f"Nullable({base})" if field.nullable else base


def create_server_db(session, db: str) -> None:
    session.query(f"CREATE DATABASE {db}", "CSV")
    for table in mxray_sql.SCAN_TABLES:
        if table in mxray_sql.OPTIONAL_TABLES:
            continue  # no query of the library reads it
        path = flat_example() / f"{table}.parquet"
        schema = pq.read_schema(path)
        cols, selects, names = [], [], []
        for f in schema:
            if f.name == "tlsa":
                cols.append("tlsa Nested(usage UInt8, selector UInt8, matching_type UInt8, data String)")
                for sub in TLSA_FIELDS:
                    names.append(f"`tlsa.{sub}`")
                    selects.append(f"arrayMap(x -> tupleElement(x, '{sub}'), tlsa)")
            else:
                cols.append(f"`{f.name}` {server_type(f)}")
                names.append(f"`{f.name}`")
                selects.append(f"`{f.name}`")
        session.query(
            f"CREATE TABLE {db}.{table} ({', '.join(cols)}) "
            f"ENGINE = ReplacingMergeTree ORDER BY ({ORDER_BY[table]})", "CSV")
        for _ in range(2):  # every row twice, in two parts: unmerged duplicates
            session.query(
                f"INSERT INTO {db}.{table} ({', '.join(names)}) "
                f"SELECT {', '.join(selects)} FROM file('{path}', Parquet)", "CSV")
    session.query(
        f"CREATE TABLE {db}.ip_asn {mxray_sql.IP_ASN_DDL} "
        f"ENGINE = MergeTree ORDER BY (family, length, network)", "CSV")
    session.query(f"INSERT INTO {db}.ip_asn SELECT family, network, length, asn, as_name, country "
                  f"FROM file('{flat_example() / 'ip_asn.parquet'}', Parquet)", "CSV")
    # The views, as `mxray migrate` makes them: from inside the database.
    session.query(f"USE {db}", "CSV")
    for view, select in mxray_sql.view_definitions().items():
        session.query(f"CREATE VIEW {db}.{view} AS {select}", "CSV")


class ServerShaped(mxray_sql.Source):
    """Runs like ClickHouseSource on a current server: plain table names, `final = 1`."""

    def __init__(self, db, final=True):
        self.session = mxray_sql._chdb_session()
        self.db = db
        self.final = final
        self.description = f"server-shaped chDB database {db}"

    def sql(self, sql):
        self.session.query(f"USE {self.db}", "CSV")
        self.session.query(f"SET final = {int(self.final)}", "CSV")
        try:
            return self.session.query(sql, "DataFrame")
        finally:
            self.session.query("SET final = 0", "CSV")


@pytest.fixture(scope="module")
def server_db():
    session = mxray_sql._chdb_session()
    db = "mxray_server_shaped"
    session.query(f"DROP DATABASE IF EXISTS {db}", "CSV")
    create_server_db(session, db)
    yield db
    session.query(f"DROP DATABASE IF EXISTS {db}", "CSV")


def normal(v):
    if isinstance(v, (list, tuple, np.ndarray)):
        return tuple(normal(x) for x in v)
    if isinstance(v, pd.Timestamp):
        return v.tz_localize(None) if v.tzinfo is None else v.tz_convert("UTC").tz_localize(None)
    if hasattr(v, "isoformat") and not isinstance(v, str):
        return pd.Timestamp(v).tz_localize(None) if getattr(v, "tzinfo", None) is None \
            else pd.Timestamp(v).tz_convert("UTC").tz_localize(None)
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return round(float(v), 9)
    if isinstance(v, (int, np.integer)):
        return int(v)
    return str(v)


def frame_rows(df):
    return sorted((tuple(normal(v) for v in row) for row in df.itertuples(index=False)), key=repr)


@pytest.mark.parametrize("name", [q.name for q in mxray_sql.list_queries()])
def test_query_runs_unchanged_on_server_tables(name, src, server_db):
    parquet = src.run(name)
    server = ServerShaped(server_db).run(name)
    assert list(server.columns) == list(parquet.columns)
    assert frame_rows(server) == frame_rows(parquet)


def test_without_final_the_duplicates_would_count_twice(server_db, src):
    # Proves the comparison above is not vacuous: the server tables do hold every row twice.
    raw = ServerShaped(server_db, final=False).sql("SELECT count() AS n FROM domains")["n"][0]
    assert raw == 2 * src.sql("SELECT count() AS n FROM domains")["n"][0]
