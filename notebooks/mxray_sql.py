"""Run the mxray SQL library (notebooks/sql/*.sql) on a ClickHouse server or on Parquet files.

The queries name plain tables (``scans``, ``domains``, ``dns_hosts``, ``smtp_probes``,
``certificates``, ``mta_sts_policies``, ``ip_asn``) and the views of ``sql/views/``
(``scan_dates``). This module binds those names:

- to a ClickHouse database (``http[s]://[user[:password]@]host[:port][/database]``, the database
  defaults to ``mxray``) through clickhouse-connect; on servers that know the ``final`` setting
  (ClickHouse 23.2 and later) every query runs with ``final = 1``, so rows that the
  ReplacingMergeTree tables have not merged yet are not counted twice;
- or to views over Parquet files in an in-process chDB session (the current ClickHouse engine):
  a result directory of ``mxray scan --out DIR`` (``<table>.parquet``), a release written by
  ``scripts/export-dataset`` in either layout (the Hive-partitioned
  ``table=<name>/vantage=<v>/date=<D>/part-N.parquet``, whose ``manifest.json`` gives each table's
  columns, or the flat one), a directory of such directories, or several of them. A partitioned
  table is one ``file()`` glob over its directory with ``use_hive_partitioning``: ``vantage``
  comes from the path, and the view has the table's columns in mxray's order, as a flat file
  does (no ``date`` or ``table`` column). ``ip_asn`` comes from an ``ip_asn.parquet`` or a
  ``table=ip_asn/`` found there (``scripts/load-asn``), or from ``ip_asn=PATH``; without one it is
  an empty table.

What it does not do: it does not change the SQL. Each file runs unchanged with ``clickhouse
client``/``clickhouse local`` (pass ``--param_NAME=VALUE``); this module only substitutes the
``{name:Type}`` parameters with literals (the defaults are declared in each file's header).

Example::

    import mxray_sql
    with mxray_sql.connect("datasets/example") as src:
        df = src.run("adoption_domains")
        certs = src.run("certs_expiring", days=30)

Command line::

    python notebooks/mxray_sql.py list
    python notebooks/mxray_sql.py run datasets/example vantage_disagreement
    python notebooks/mxray_sql.py run http://127.0.0.1:8123/mxray certs_expiring --param days=14
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

SQL_DIR = Path(__file__).resolve().parent / "sql"
#: The views the queries share (``scan_dates``, ...): one ``SELECT`` per file, over the tables
#: below and the other views.
#: ``mxray migrate`` creates them in ClickHouse from the same files; here they are made in the
#: chDB session.
VIEWS_DIR = SQL_DIR / "views"

#: The tables every source provides (the six mxray tables plus the IP-to-AS map).
SCAN_TABLES = ("scans", "domains", "dns_hosts", "smtp_probes", "certificates", "mta_sts_policies",
               "canary_results")
# Tables that older result directories lack (canary_results: schema version 2); no view is
# made for them there.
OPTIONAL_TABLES = ("canary_results",)
TABLES = SCAN_TABLES + ("ip_asn",)


def view_definitions() -> dict[str, str]:
    """Each view of the library by name: its ``SELECT`` (the file without its comment header),
    in an order that creates a view after the views it reads (``starttls_observations`` joins
    ``scan_dates``)."""
    selects = {}
    for path in sorted(VIEWS_DIR.glob("*.sql")):
        lines = path.read_text(encoding="utf-8").splitlines()
        selects[path.stem] = "\n".join(l for l in lines if not l.lstrip().startswith("--")).strip()

    def reads(select: str) -> set[str]:
        return {m.group(1) for m in re.finditer(r"\b(?:FROM|JOIN)\s+([A-Za-z_]\w*)", select,
                                                re.IGNORECASE)}

    ordered: dict[str, str] = {}
    while len(ordered) < len(selects):
        ready = [name for name, select in selects.items() if name not in ordered
                 and all(v in ordered for v in reads(select) & selects.keys() - {name})]
        if not ready:
            raise ValueError(f"views read each other in a cycle: {sorted(selects.keys() - ordered.keys())}")
        for name in ready:
            ordered[name] = selects[name]
    return ordered


#: The names a query may read: the tables and the views.
VIEWS = tuple(view_definitions())

#: Columns of ``ip_asn`` (what ``scripts/load-asn`` writes).
IP_ASN_DDL = (
    "(family UInt8, network String, length UInt8, asn UInt32, as_name String, country String)"
)

_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9_() ,']+)\}")
_HEADER_PARAM_RE = re.compile(
    r"^--\s*Param\s+([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z0-9_()]+)\s*=\s*([^\s:]+)\s*:?\s*(.*)$"
)


class QueryError(Exception):
    """A query could not be loaded, bound or run (message names the query)."""


@dataclass(frozen=True)
class Param:
    """A ``{name:Type}`` parameter declared in a query header (``-- Param name Type = default``)."""

    name: str
    type: str
    default: str
    doc: str


@dataclass(frozen=True)
class Query:
    """One SQL file of the library, with its parsed header."""

    name: str
    path: Path
    text: str
    question: str
    columns: tuple[tuple[str, str], ...]
    params: Mapping[str, Param] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


def _parse_header(name: str, path: Path, text: str) -> Query:
    question: list[str] = []
    columns: list[tuple[str, str]] = []
    params: dict[str, Param] = {}
    section = None
    for line in text.splitlines():
        if not line.startswith("--"):
            break
        body = line[2:].strip()
        m = _HEADER_PARAM_RE.match(line)
        if m:
            params[m.group(1)] = Param(m.group(1), m.group(2), m.group(3), m.group(4).strip())
            section = None
            continue
        if body.startswith("Question:"):
            section = "q"
            question.append(body[len("Question:"):].strip())
        elif body.startswith("Columns:"):
            section = "c"
        elif section == "q" and body:
            question.append(body)
        elif section == "c" and body:
            col, _, doc = body.partition(":")
            if " " in col.strip() or not col.strip():
                raise QueryError(f"{path}: malformed column line {line!r}")
            columns.append((col.strip(), doc.strip()))
        elif not body:
            section = None
    if not question or not columns:
        raise QueryError(f"{path}: the header needs a '-- Question:' and a '-- Columns:' section")
    return Query(name, path, text, " ".join(question), tuple(columns), params)


def load_query(name: str) -> Query:
    """The query ``notebooks/sql/<name>.sql``."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        known = ", ".join(q.name for q in list_queries())
        raise QueryError(f"no query {name!r} in {SQL_DIR} (known: {known})")
    return _parse_header(name, path, path.read_text(encoding="utf-8"))


def list_queries() -> list[Query]:
    """Every query of the library, by name."""
    return [load_query(p.stem) for p in sorted(SQL_DIR.glob("*.sql"))]


def _literal(value: object, ch_type: str, where: str) -> str:
    base = ch_type
    if base.startswith("Nullable("):
        if value is None:
            return "NULL"
        base = base[len("Nullable("):-1]
    if re.fullmatch(r"U?Int(8|16|32|64|128|256)", base):
        try:
            n = int(str(value), 10)
        except ValueError:
            raise QueryError(f"{where}: {value!r} is not an integer ({ch_type})") from None
        if base.startswith("U") and n < 0:
            raise QueryError(f"{where}: {value!r} is negative ({ch_type})")
        return str(n)
    if re.fullmatch(r"Float(32|64)", base):
        try:
            return repr(float(str(value)))
        except ValueError:
            raise QueryError(f"{where}: {value!r} is not a number ({ch_type})") from None
    if base == "Date":
        text = value.isoformat() if isinstance(value, _dt.date) else str(value)
        try:
            _dt.date.fromisoformat(text)
        except ValueError:
            raise QueryError(f"{where}: {value!r} is not a date YYYY-MM-DD") from None
        return f"toDate('{text}')"
    if base == "String":
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"
    raise QueryError(f"{where}: parameter type {ch_type} is not supported by the runner")


def bind(query: Query, params: Mapping[str, object] | None = None) -> str:
    """The SQL of ``query`` with every ``{name:Type}`` replaced by a literal.

    Values come from ``params``, else from the header's defaults; an unknown parameter name or
    a missing value is an error (a typo must not silently run with the default).
    """
    params = dict(params or {})
    unknown = set(params) - set(query.params)
    if unknown:
        raise QueryError(
            f"{query.name}: unknown parameter(s) {sorted(unknown)}; "
            f"declared: {sorted(query.params) or 'none'}"
        )

    def sub(m: re.Match[str]) -> str:
        name, ch_type = m.group(1), m.group(2)
        if name in params:
            value = params[name]
        elif name in query.params:
            value = query.params[name].default
        else:
            raise QueryError(f"{query.name}: parameter {{{name}}} has no '-- Param' header line")
        return _literal(value, ch_type, f"{query.name}.{name}")

    return _PARAM_RE.sub(sub, query.text)


class Source:
    """Where the tables live. Use :func:`connect`; call :meth:`close` (or use ``with``)."""

    description = ""

    def sql(self, sql: str):  # pragma: no cover - interface
        """Run raw SQL, return a pandas DataFrame."""
        raise NotImplementedError

    def run(self, name: str, **params: object):
        """Run library query ``name`` with ``params``; a pandas DataFrame in the header's
        column order."""
        query = load_query(name)
        try:
            df = self.sql(bind(query, params))
        except QueryError:
            raise
        except Exception as e:  # the engines raise their own exception types
            hint = ""
            if "ip_asn" in str(e):
                hint = " (load a prefix-to-AS table with scripts/load-asn)"
            raise QueryError(f"{name} failed on {self.description}: {e}{hint}") from e
        return df

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sql_string(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: ``format`` of a release in the Hive-partitioned layout (scripts/export-dataset).
HIVE_FORMAT = "mxray-parquet-hive"


def hive_manifest(root: os.PathLike | str) -> dict | None:
    """The manifest of a Hive-layout release at ``root``, or None when ``root`` is not one."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        if any(Path(root).glob("table=*")):
            raise QueryError(f"{root}: a table=<name>/ layout without manifest.json (it names "
                             "each table's columns)")
        return None
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise QueryError(f"{path}: cannot read the manifest ({e})") from None
    return m if m.get("format") == HIVE_FORMAT else None


@dataclass(frozen=True)
class HiveTable:
    """One table of a Hive-layout release: its directory and its columns in mxray's order."""

    path: Path
    columns: tuple[str, ...]
    partitioning: tuple[str, ...]

    def select(self, columns: Iterable[str] | None = None) -> str:
        """A SELECT of the table's columns over every part (one glob, hive partitioning on)."""
        cols = []
        for c in (self.columns if columns is None else columns):
            # A partition value is LowCardinality(String) from the path; the flat files hold String.
            cols.append(f"CAST(`{c}` AS String) AS `{c}`" if c in self.partitioning else f"`{c}`")
        glob = _sql_string(str(self.path / "**" / "*.parquet"))
        return (f"SELECT {', '.join(cols)} FROM file({glob}, Parquet) "
                "SETTINGS use_hive_partitioning = 1")


def find_tables(roots: Iterable[os.PathLike | str], table: str) -> list[Path | HiveTable]:
    """Where ``table`` lives under each root: ``<table>.parquet`` files (a result directory,
    a flat release) or the ``table=<table>/`` directory of a Hive-layout release; the root
    itself or its sub-directories (a directory of scans or releases)."""
    found: list[Path | HiveTable] = []

    def in_dir(d: Path) -> bool:
        m = hive_manifest(d)
        if m is not None:
            entry = m.get("tables", {}).get(table)
            if entry is not None:
                found.append(HiveTable((d / entry["path"]).resolve(), tuple(entry["columns"]),
                                       tuple(c for c in entry.get("partitioning", [])
                                             if c in entry["columns"])))
            return True
        direct = d / f"{table}.parquet"
        if direct.is_file():
            found.append(direct.resolve())
            return True
        return False

    for root in roots:
        root = Path(root)
        if root.is_file():
            if root.name == f"{table}.parquet":
                found.append(root.resolve())
            continue
        if not in_dir(root):
            for sub in sorted(p for p in root.iterdir() if p.is_dir()):
                in_dir(sub)
    return found


def find_table_files(roots: Iterable[os.PathLike | str], table: str) -> list[Path]:
    """The Parquet files of ``table`` under the roots (every part of a Hive-layout table)."""
    files: list[Path] = []
    for t in find_tables(roots, table):
        files.extend([t] if isinstance(t, Path) else sorted(t.path.glob("**/*.parquet")))
    return files


_CHDB = {"session": None, "tmp": None, "count": 0}


def _chdb_session():
    """The process-wide chDB session (chDB runs one embedded server per process)."""
    if _CHDB["session"] is None:
        import atexit

        import chdb.session  # imported here: the server path does not need chDB

        _CHDB["tmp"] = tempfile.TemporaryDirectory(prefix="mxray-chdb-")
        _CHDB["session"] = chdb.session.Session(_CHDB["tmp"].name)

        def _cleanup():
            if _CHDB["session"] is not None:
                _CHDB["session"].close()
                _CHDB["session"] = None
            _CHDB["tmp"].cleanup()

        atexit.register(_cleanup)
    return _CHDB["session"]


class ParquetSource(Source):
    """The tables as views over Parquet files, in a database of its own in the process-wide
    chDB session (several sources can be open at once)."""

    def __init__(self, roots: Iterable[os.PathLike | str], ip_asn: os.PathLike | str | None = None):
        self.roots = [Path(r) for r in roots]
        for r in self.roots:
            if not r.exists():
                raise QueryError(f"no such Parquet directory or file: {r}")
        self._session = _chdb_session()
        _CHDB["count"] += 1
        self.database = f"mxray_{os.getpid()}_{_CHDB['count']}"
        self.description = "Parquet " + ", ".join(str(r) for r in self.roots)
        #: Per table, its ``<table>.parquet`` files and Hive-layout table directories.
        self.files: dict[str, list[Path | HiveTable]] = {}
        db = self.database
        self._exec(f"CREATE DATABASE {db}")
        try:
            for table in SCAN_TABLES:
                found = find_tables(self.roots, table)
                if not found and table in OPTIONAL_TABLES:
                    continue
                if not found:
                    raise QueryError(f"no {table}.parquet or table={table}/ under "
                                     f"{', '.join(map(str, self.roots))}")
                self.files[table] = found
                body = " UNION ALL ".join(
                    f"SELECT * FROM file({_sql_string(str(f))}, Parquet)" if isinstance(f, Path)
                    else f.select()
                    for f in found
                )
                self._exec(f"CREATE VIEW {db}.{table} AS {body}")
            asn_found = ([Path(ip_asn).resolve()] if ip_asn else find_tables(self.roots, "ip_asn"))
            if asn_found:
                self.files["ip_asn"] = asn_found
                asn_cols = ("family", "network", "length", "asn", "as_name", "country")
                body = " UNION ALL ".join(
                    f"SELECT {', '.join(asn_cols)} FROM file({_sql_string(str(f))}, Parquet)"
                    if isinstance(f, Path) else f.select(asn_cols)
                    for f in asn_found
                )
                self._exec(f"CREATE VIEW {db}.ip_asn AS {body}")
            else:
                self._exec(f"CREATE TABLE {db}.ip_asn {IP_ASN_DDL} ENGINE = Memory")
            # The views name unqualified tables: created from inside the source's database.
            self._exec(f"USE {db}")
            for view, select in view_definitions().items():
                self._exec(f"CREATE VIEW {db}.{view} AS {select}")
        except QueryError:
            self.close()
            raise
        except Exception as e:
            self.close()
            raise QueryError(f"cannot read {self.description}: {e}") from e

    def _exec(self, sql: str) -> None:
        self._session.query(sql, "CSV")

    def sql(self, sql: str):
        if self._session is None:
            raise QueryError(f"{self.description}: the source is closed")
        self._exec(f"USE {self.database}")
        return self._session.query(sql, "DataFrame")

    def close(self) -> None:
        if self._session is not None:
            try:
                self._exec(f"DROP DATABASE IF EXISTS {self.database}")
            finally:
                self._session = None


class ClickHouseSource(Source):
    """The tables of one ClickHouse database, through clickhouse-connect (HTTP)."""

    def __init__(self, url: str):
        import urllib.parse

        import clickhouse_connect

        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise QueryError(f"not a ClickHouse HTTP URL: {url!r}")
        database = u.path.strip("/") or "mxray"
        self.description = f"ClickHouse {u.hostname}:{u.port}/{database}"
        try:
            self.client = clickhouse_connect.get_client(
                host=u.hostname,
                port=u.port or (8443 if u.scheme == "https" else 8123),
                username=urllib.parse.unquote(u.username or "default"),
                password=urllib.parse.unquote(u.password or ""),
                database=database,
                secure=u.scheme == "https",
            )
        except Exception as e:  # clickhouse-connect raises its own types
            raise QueryError(
                f"cannot connect to {self.description}: {e} (the SQL library and "
                "clickhouse-connect need a current ClickHouse; for an old server, query the "
                "Parquet files with chDB instead)"
            ) from e
        version = str(self.client.server_version)
        parts = [int(p) for p in re.findall(r"\d+", version)[:2]] + [0, 0]
        # FINAL for every table, so unmerged duplicates of the ReplacingMergeTree tables are not
        # counted twice (the `final` setting exists since 23.2).
        self.settings = {"final": 1} if (parts[0], parts[1]) >= (23, 2) else {}

    def sql(self, sql: str):
        return self.client.query_df(sql, settings=self.settings)

    def close(self) -> None:
        self.client.close()


def connect(source, ip_asn: os.PathLike | str | None = None) -> Source:
    """A :class:`Source` for a ClickHouse URL, or for one or several Parquet directories."""
    if isinstance(source, Source):
        return source
    if isinstance(source, str) and re.match(r"^https?://", source):
        return ClickHouseSource(source)
    roots = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    return ParquetSource(roots, ip_asn=ip_asn)


def default_source() -> str:
    """``$MXRAY_SOURCE``, else the example dataset checked in beside the notebooks."""
    env = os.environ.get("MXRAY_SOURCE")
    if env:
        return env
    return str(Path(__file__).resolve().parent.parent / "datasets" / "example")


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the queries and their questions")
    r = sub.add_parser("run", help="run a query")
    r.add_argument("source", help="ClickHouse URL or Parquet directory")
    r.add_argument("query")
    r.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--ip-asn", help="ip_asn.parquet to use (Parquet sources)")
    r.add_argument("--format", choices=["table", "csv"], default="table")
    a = ap.parse_args(argv)
    if a.cmd == "list":
        for q in list_queries():
            params = " ".join(f"{p.name}={p.default}" for p in q.params.values())
            print(f"{q.name}: {q.question}" + (f" [{params}]" if params else ""))
        return 0
    params = {}
    for p in a.param:
        k, eq, v = p.partition("=")
        if not eq:
            ap.error(f"--param wants NAME=VALUE, got {p!r}")
        params[k] = v
    try:
        with connect(a.source, ip_asn=a.ip_asn) as src:
            df = src.run(a.query, **params)
    except QueryError as e:
        print(f"mxray_sql: {e}", file=sys.stderr)
        return 1
    if a.format == "csv":
        df.to_csv(sys.stdout, index=False)
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", 500, "display.width", 200):
            print(df.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
