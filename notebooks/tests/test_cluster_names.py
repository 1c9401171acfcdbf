"""The SQL library names only the public tables, so it runs unchanged on a cluster database.

On a cluster (`mxray migrate --cluster`, docs/scale.md) each public name is a Distributed table
over per-node `<table>_local` tables with the same columns; a query that named a `_local` table,
or qualified a table with a database, would read one node's shard or the wrong database.
"""

import re

import mxray_sql

_SOURCE = re.compile(
    r"\b(ARRAY\s+)?(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_.]*)\s*(\()?", re.IGNORECASE
)
_CTE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*\(", re.IGNORECASE)


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def test_the_library_reads_only_public_unqualified_tables():
    queries = mxray_sql.list_queries()
    assert len(queries) >= 10
    seen = set()
    for q in queries:
        sql = _strip_comments(q.text)
        ctes = {m.group(1) for m in _CTE.finditer(sql)}
        for m in _SOURCE.finditer(sql):
            array, name, call = m.group(1), m.group(2), m.group(3)
            if array or call or name in ctes:
                continue  # ARRAY JOIN of a column, a table function, or a CTE
            assert "." not in name, f"{q.name}: {name} names a database"
            assert not name.endswith("_local"), f"{q.name}: {name} is one node's shard"
            assert name in mxray_sql.TABLES + mxray_sql.VIEWS, \
                f"{q.name}: {name} is not a public table or view"
            seen.add(name)
    assert {"domains", "smtp_probes", "scan_dates"} <= seen


def test_no_query_defines_a_view_of_the_library_again():
    for q in mxray_sql.list_queries():
        for view in mxray_sql.VIEWS:
            assert not re.search(rf"\b{view}\s+AS\s*\(", q.text, re.IGNORECASE), \
                f"{q.name} defines {view} itself: use the view (notebooks/sql/views/)"


def test_the_views_read_only_public_unqualified_tables_and_earlier_views():
    created = []
    for view, select in mxray_sql.view_definitions().items():
        names = {m.group(2) for m in _SOURCE.finditer(_strip_comments(select))}
        assert names and names <= set(mxray_sql.TABLES) | set(created), f"{view}: {names}"
        created.append(view)
    assert {"scan_dates", "starttls_observations"} <= set(created)
