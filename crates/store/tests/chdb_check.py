"""chDB (current ClickHouse, in-process) checks driven by crates/store/tests/chdb.rs.

    chdb_check.py ddl FILE       run every statement of FILE (JSON list of SQL strings) in a fresh
                                 chDB session; print the created tables and views as JSON
    chdb_check.py parquet DIR    read every DIR/<table>.parquet with file(..., Parquet); print
                                 {"table": [rows as JSON objects]} as JSON
"""

import json
import os
import sys
import tempfile

import chdb
from chdb import session

TABLES = [
    "scans",
    "domains",
    "dns_hosts",
    "smtp_probes",
    "certificates",
    "mta_sts_policies",
    "canary_results",
]
SETTINGS = (
    "SETTINGS output_format_json_quote_64bit_integers = 0, "
    "date_time_output_format = 'iso', session_timezone = 'UTC', "
    "output_format_json_named_tuples_as_objects = 1"
)


def ddl(path):
    with open(path) as f:
        statements = json.load(f)
    with tempfile.TemporaryDirectory() as tmp:
        s = session.Session(tmp)
        for stmt in statements:
            s.query(stmt)
        db = statements[0].split()[-1].strip("`")
        out = s.query(
            f"SELECT name, engine FROM system.tables WHERE database = '{db}' ORDER BY name",
            "JSONEachRow",
        )
        rows = [json.loads(line) for line in str(out).splitlines() if line.strip()]
        s.close()
    print(json.dumps(rows))


def parquet(d):
    result = {}
    for t in TABLES:
        p = os.path.join(d, f"{t}.parquet")
        out = chdb.query(f"SELECT * FROM file('{p}', Parquet) {SETTINGS}", "JSONEachRow")
        result[t] = [json.loads(line) for line in str(out).splitlines() if line.strip()]
    print(json.dumps(result))


if __name__ == "__main__":
    {"ddl": ddl, "parquet": parquet}[sys.argv[1]](sys.argv[2])
