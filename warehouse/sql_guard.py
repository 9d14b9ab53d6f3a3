"""Which user SQL the read-only sandbox runs: exactly one SELECT over the queryable lake tables, checked on
DuckDB's own parse tree (never by matching the text, which comments and string literals can disguise).

DuckDB's settings alone do not make a connection safe for user SQL (STACK-NOTES.md): `sqlite_scan` reads
SQLite files with external access off, and `ducklake_rewrite_data_files(...)` inside a plain SELECT writes
Parquet. So a statement passes only when, in its parse tree (`json_serialize_sql`):
- it is the only statement and a SELECT (also VALUES, FROM-first, UNION, WITH, PIVOT/UNPIVOT ref);
- every table it names is a queryable lake table (`lake` or `lake.main` may prefix it) or one of its own
  CTEs with a plain identifier for a name: no file names or URLs (replacement scans), no other catalog;
  and no CTE takes the name of a table or view that is not queryable (out of the CTE's scope the name
  would reach that table: `cursors`, `batches`, `pg_settings`, `duckdb_tables` ...);
- every table function is one of ALLOWED_TABLE_FUNCTIONS (range, generate_series, unnest, json_each,
  json_tree): never read_*, glob, query, sqlite_*, ducklake_*, duckdb_*, pragma_*, which_secret ...;
- every other function is a scalar, aggregate or window function of DuckDB itself (the set a plain DuckDB
  knows, so nothing an extension adds) minus DENIED_FUNCTIONS, called by its plain name;
- no DESCRIBE/SHOW/SUMMARIZE (the table list answers those) and no query node other than SELECT, set
  operations and CTEs.
This module imports only duckdb: the sandbox's worker process runs the same check again after it has
loaded the lake's extensions, before it runs the statement.
"""
from __future__ import annotations

import functools
import json
import re
import threading
from typing import Iterable, Iterator

import duckdb

MAX_SQL_CHARS = 100_000

ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})

# Functions of DuckDB itself that user SQL must not call: they read settings or variables, advance
# sequences, sleep, write DuckDB's log, or parse, plan or run SQL given as a string (which this check would
# never see).
DENIED_FUNCTIONS = frozenset({
    "current_setting", "getvariable", "getenv", "nextval", "currval", "setseed", "sleep_ms", "pg_sleep",
    "write_log", "json_serialize_plan", "json_serialize_sql", "json_deserialize_sql",
    "json_execute_serialized_sql", "query", "query_table", "duckdb_profiling_settings",
})
DENIED_PREFIXES = ("__", "ducklake_", "sqlite_", "duckdb_", "pragma_", "read_", "parquet_", "enable_",
                   "disable_", "which_secret")

SAFE_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
TABLE_REFS = frozenset({"BASE_TABLE", "SUBQUERY", "JOIN", "TABLE_FUNCTION", "EXPRESSION_LIST", "EMPTY",
                        "PIVOT", "SHOW_REF", "COLUMN_DATA", "DELIM_GET", "CTE", "BOUND_TABLE_REF", "INVALID"})
SAFE_TABLE_REFS = frozenset({"BASE_TABLE", "SUBQUERY", "JOIN", "TABLE_FUNCTION", "EXPRESSION_LIST", "EMPTY",
                             "PIVOT"})
# How a lake table may be written: raw_beacon, main.raw_beacon, lake.raw_beacon, lake.main.raw_beacon.
TABLE_QUALIFIERS = frozenset({("", ""), ("", "main"), ("", "lake"), ("lake", "main")})
FUNCTION_QUALIFIERS = frozenset({("", ""), ("", "main"), ("system", "main"), ("", "pg_catalog")})
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SqlRefused(ValueError):
    """User SQL that is refused, or failed while running; the message is one sentence for the user."""


def plain_connection() -> duckdb.DuckDBPyConnection:
    """An empty in-memory DuckDB that never loads or installs an extension on its own."""
    return duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                                  "threads": 1})


@functools.cache
def callable_functions() -> frozenset[str]:
    """DuckDB's own scalar, aggregate, window and macro functions that user SQL may call."""
    con = plain_connection()
    try:
        rows = con.execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions() "
                           "WHERE function_type IN ('scalar', 'aggregate', 'macro')").fetchall()
    finally:
        con.close()
    names = {row[0] for row in rows} | {"unnest"}        # unnest(list) in a select list
    return frozenset(name for name in names if name not in DENIED_FUNCTIONS and not name.startswith(DENIED_PREFIXES))


def one_line(exc: BaseException | str) -> str:
    """DuckDB's message without its kind prefix, hint lines and caret picture, capped for an error answer."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = re.sub(r"^[A-Za-z ]*Error:\s*", "", text)
    text = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)[0]     # the first sentence; hints follow it
    return text if len(text) <= 300 else text[:297] + "..."


_parsers = threading.local()


def _parser() -> duckdb.DuckDBPyConnection:
    """This thread's parsing connection: it only ever parses user SQL (extract_statements and
    json_serialize_sql), never runs it, and keeping it saves ~30 ms of CPU per check."""
    con = getattr(_parsers, "con", None)
    if con is None:
        con = _parsers.con = plain_connection()
    return con


def check_select(sql: str, tables: Iterable[str], functions: frozenset[str] | None = None,
                 reserved: Iterable[str] = ()) -> str:
    """The statement's text (stripped) if it may run; raises SqlRefused saying why not.

    `tables`: the queryable tables. `reserved`: names of every other table or view the connection could
    reach (bookkeeping tables, system views): a CTE may not take one of those names, because a reference
    outside the CTE's scope (another subquery, an earlier CTE of the same WITH) would read that table.
    `functions`: the callable set when the caller already has it (it costs ~0.1-0.3 s of CPU)."""
    text = (sql or "").strip()
    if not text:
        raise SqlRefused("the SQL is empty: send one SELECT statement")
    if len(text) > MAX_SQL_CHARS:
        raise SqlRefused(f"the SQL is longer than {MAX_SQL_CHARS} characters")
    con = _parser()
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        raise SqlRefused(f"the SQL does not parse: {one_line(exc)}") from None
    if len(statements) != 1:
        raise SqlRefused(f"send exactly one statement, not {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise SqlRefused(f"only a SELECT can run here, not {kind.name.replace('_', ' ')}")
    try:
        serialized = con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()[0]
    except duckdb.Error as exc:
        raise SqlRefused(f"the SQL cannot be checked: {one_line(exc)}") from None
    try:
        tree = json.loads(serialized)
    except (RecursionError, ValueError):
        raise SqlRefused("the SQL is nested too deeply to be checked") from None
    if tree.get("error"):
        raise SqlRefused(f"the SQL cannot be checked: {one_line(str(tree.get('error_message', '')))}")
    tables = {name.lower() for name in tables}
    reserved = {name.lower() for name in reserved} - tables
    _check_tree(tree, tables, functions or callable_functions(), reserved)
    return text


def _dicts(tree) -> Iterator[dict]:
    """Every object in the parse tree, without recursion (a deep tree must not overflow the stack)."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check_tree(tree: dict, tables: set[str], functions: frozenset[str], reserved: set[str]) -> None:
    nodes = list(_dicts(tree))
    ctes = _cte_names(nodes, reserved)
    table_function_calls: set[int] = set()
    for node in nodes:
        kind = node.get("type")
        if "class" in node or not isinstance(kind, str):
            continue                                        # expressions are checked below
        if kind.endswith("_NODE") and kind not in SAFE_QUERY_NODES:
            raise SqlRefused(f"only a plain SELECT can run here ({kind.removesuffix('_NODE').replace('_', ' ')} is refused)")
        if kind not in TABLE_REFS:
            continue
        if kind == "SHOW_REF":
            raise SqlRefused("DESCRIBE, SHOW and SUMMARIZE are not available here: the table list gives every "
                             "queryable table and its columns")
        if kind not in SAFE_TABLE_REFS:
            raise SqlRefused(f"a {kind.replace('_', ' ').lower()} table reference is not allowed here")
        if kind == "BASE_TABLE":
            _check_table(node, ctes, tables)
        elif kind == "TABLE_FUNCTION":
            call = node.get("function") or {}
            name = str(call.get("function_name", "")).lower()
            if (call.get("class") != "FUNCTION" or name not in ALLOWED_TABLE_FUNCTIONS
                    or (call.get("catalog", ""), call.get("schema", "")) not in FUNCTION_QUALIFIERS):
                raise SqlRefused(f"the table function {name or '?'} is not available here (only "
                                 f"{', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))})")
            table_function_calls.add(id(call))
    for node in nodes:
        if node.get("class") == "PARAMETER":
            raise SqlRefused("parameters ($1, ?) cannot be given here: write the values into the SQL")
        if "function_name" in node and id(node) not in table_function_calls:
            _check_function(node, functions)


def _cte_names(nodes: list[dict], reserved: set[str]) -> set[str]:
    names = set()
    for node in nodes:
        cte_map = node.get("cte_map")
        if not isinstance(cte_map, dict):
            continue
        for entry in cte_map.get("map") or []:
            name = str(entry.get("key", ""))
            if not PLAIN_NAME.match(name):
                raise SqlRefused(f"name the CTE {name!r} with letters, digits and underscores only")
            if name.lower() in reserved:
                raise SqlRefused(f"the name {name} is taken by a table that is not queryable: give the CTE another name")
            names.add(name.lower())
    return names


def _check_table(node: dict, ctes: set[str], tables: set[str]) -> None:
    name = str(node.get("table_name", ""))
    qualifier = (str(node.get("catalog_name") or "").lower(), str(node.get("schema_name") or "").lower())
    if qualifier == ("", "") and name.lower() in ctes:
        return
    if name.lower() in tables and qualifier in TABLE_QUALIFIERS:
        return
    shown = ".".join(part for part in (*qualifier, name) if part)
    raise SqlRefused(f"{shown} is not a queryable table (see the table list)")


def _check_function(node: dict, functions: frozenset[str]) -> None:
    name = str(node["function_name"]).lower()
    qualifier = (str(node.get("catalog") or "").lower(), str(node.get("schema") or "").lower())
    if qualifier not in FUNCTION_QUALIFIERS:
        raise SqlRefused(f"call the function {name} by its plain name")
    if name not in functions:
        raise SqlRefused(f"the function {name} is not available in read-only SQL")
