"""Read-only SQL over the lake for users (`POST /sql`, exports of a query): one SELECT, its own process.

    run_readonly(cfg, sql, limit=1000, timeout_s=None) -> SqlResult     # columns, rows, truncated, elapsed_ms
    with readonly_batches(cfg, sql) as stream: ...                      # Arrow record batches, for exports
    queryable_tables(cfg) -> [{"name", "kind", "columns": [{"name", "type"}]}]

Users write plain DuckDB SQL against the queryable tables (`SELECT site, count(*) FROM raw_beacon GROUP BY
site`): every raw source table (kind "raw"), `metric_points` ("facts"), `rollups` ("rollups") and
`quarantine` (rejected input, with the reason). Bookkeeping (batches, cursors, cube state, the ledgers of
files read) and the state DB are not queryable.

Anything refused or failed raises `SqlRefused` (a ValueError) whose message is one sentence for the user.
Three layers, each enough for some attacks and none trusted alone:

1. The statement (`warehouse.sql_guard.check_select`, on DuckDB's parse tree, never on the text): exactly
   one statement, and a SELECT; only the queryable tables and the query's own CTEs (whose names may not be
   those of other tables or views, which an out-of-scope reference would read); table functions only
   from an allow-list (range, generate_series, unnest, json_each, json_tree); other functions only DuckDB's
   own, minus those that read settings/variables, sleep, write, or plan SQL from a string. That refuses
   COPY, EXPORT, ATTACH/DETACH, SET/RESET/PRAGMA, INSTALL/LOAD, CALL (ducklake_* maintenance, checkpoint),
   DDL and DML, transactions, USE, multi-statement strings, read_*/glob/query/sqlite_scan/ducklake_* (which
   STACK-NOTES.md found working even with external access off), files or URLs named as tables,
   DESCRIBE/SHOW/SUMMARIZE, prepared-statement parameters, and the DuckLake catalog's own tables.
2. The connection (`warehouse.sql_worker.locked_down_connection`): a fresh in-memory DuckDB per query that
   attaches the lake READ_ONLY as its default catalog with extensions loaded from the signed wheels, then
   sets `allowed_directories` to the lake's data folder, `enable_external_access = false`, a memory limit,
   one thread, no temp directory, no persistent secrets, no Python replacement scans, and
   `lock_configuration = true`.
3. The process (`warehouse/sql_worker.py`): the query runs in a child process whose address space is
   capped (DuckDB's memory_limit does not cover every allocation: a scalar `range(1e8)` built 9 GB and ran
   a minute past interrupt() in-process). A timer interrupts the query at the time limit ("the query ran
   longer than 10 s"); work that ignores the interrupt ends with the process 2 s later, and a worker
   that is somehow still there KILL_GRACE_S after the limit is killed. At most MAX_CONCURRENT
   queries run at once. The API's long-lived connections never see user SQL.

A worker costs ~0.6 s of CPU to start (Python, DuckDB, checking the two extensions' signatures, ATTACH), over
1 s of wall time on a busy machine. So `run_readonly` keeps one spare: a worker started ahead, already locked
down (its connection built and the lake attached read-only), waiting for its query on stdin. A query takes
the spare if it was made for the same set-up (same config, limits and callable functions) and is younger than
SPARE_MAX_AGE_S, and a new spare starts when the answer is in. The spare is the same process with the same
guarantees: it has run no SQL but its own set-up, serves exactly one query, and each query still sees the
lake's latest snapshot (DuckLake reads the catalog per transaction). Streams (`readonly_batches`) start
their own worker: an export takes seconds anyway. `SPARE_WORKER = False` turns the spare off.
"""
from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import duckdb

from config import Config
from warehouse import lake
from warehouse.schema import BOOKKEEPING_DDL
from warehouse.sql_guard import SqlRefused, callable_functions, check_select, plain_connection

if TYPE_CHECKING:
    import pyarrow

__all__ = ["SqlRefused", "SqlResult", "SqlStream", "run_readonly", "readonly_batches", "queryable_tables"]

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
DEFAULT_TIMEOUT_S = 10.0
MEMORY_LIMIT_MB = 512          # DuckDB's memory_limit in the worker
ADDRESS_SPACE_MB = MEMORY_LIMIT_MB + 1536   # the worker's RLIMIT_AS: Python, DuckDB, extensions (~800 MB mapped)
THREADS = 1                    # two cores serve the scheduler, the API and every dashboard session
MAX_CONCURRENT = 2
MAX_ANSWER_BYTES = 64_000_000  # run_readonly's JSON answer; exports stream instead
KILL_GRACE_S = 30.0            # the worker stops itself at the limit + 2 s; this kill is the last resort
WORKER = Path(__file__).with_name("sql_worker.py")
SPARE_WORKER = True            # keep one locked-down worker started ahead for run_readonly
SPARE_MAX_AGE_S = 600.0        # an older spare is replaced rather than used

_slots = threading.BoundedSemaphore(MAX_CONCURRENT)


@dataclass
class SqlResult:
    columns: list[dict]                  # [{"name": ..., "type": DuckDB type name}]
    rows: list[list]                     # JSON-safe values (see sql_worker.jsonable)
    truncated: bool                      # more rows than `limit` existed
    elapsed_ms: int                      # running and fetching the query in the worker
    def as_dict(self) -> dict:
        return {"columns": self.columns, "rows": self.rows, "truncated": self.truncated,
                "elapsed_ms": self.elapsed_ms}


def table_kinds(cfg: Config) -> dict[str, str]:
    """Every queryable table and its kind: the sources' raw tables (not their read-ledgers), the cube, and
    the quarantine."""
    kinds = {name: "raw" for name in cfg.catalog.tables if name.startswith("raw_")}
    kinds.update(metric_points="facts", rollups="rollups", quarantine="quarantine")
    return kinds


def _reserved_names(cfg: Config) -> frozenset[str]:
    return _reserved(frozenset(cfg.catalog.tables), frozenset(table_kinds(cfg)))


@functools.cache
def _reserved(declared: frozenset[str], queryable: frozenset[str]) -> frozenset[str]:
    """Tables and views a query could reach but must not (the worker lists them from its own connection;
    this is the same list, known without a lake, for refusing early)."""
    names = set(declared) | set(re.findall(r"lake\.(\w+)", " ".join(BOOKKEEPING_DDL)))
    con = plain_connection()
    try:   # information_schema is off the search path: its names (tables, columns ...) stay free for CTEs
        names |= {row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views() "
            "WHERE schema_name <> 'information_schema'").fetchall()}
    finally:
        con.close()
    return frozenset(names - queryable)


def queryable_tables(cfg: Config, con: duckdb.DuckDBPyConnection | None = None) -> list[dict]:
    """The tables user SQL may read, with their columns as the lake has them (raw, facts, rollups,
    quarantine; by name within each kind). `con`: a read-only lake cursor to reuse, else a fresh one."""
    kinds = table_kinds(cfg)
    own = con is None
    if own:
        try:
            con = lake.connect(cfg, read_only=True)
        except lake.WarehouseError as exc:
            raise SqlRefused(str(exc)) from None
    try:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = 'lake' AND schema_name = 'main' ORDER BY table_name, column_index").fetchall()
    finally:
        if own:
            con.close()
    tables: dict[str, dict] = {}
    for table, column, kind in rows:
        if table in kinds:
            tables.setdefault(table, {"name": table, "kind": kinds[table], "columns": []})["columns"].append(
                {"name": column, "type": kind})
    order = ["raw", "facts", "rollups", "quarantine"]
    return sorted(tables.values(), key=lambda t: (order.index(t["kind"]), t["name"]))


def run_readonly(cfg: Config, sql: str, limit: int = DEFAULT_LIMIT, timeout_s: float | None = None) -> SqlResult:
    """Run one user SELECT against the lake, read-only, in a throwaway locked-down process; at most `limit`
    rows (`truncated` says there were more); stopped after `timeout_s` (default 10 s)."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_LIMIT:
        raise SqlRefused(f"the row limit must be a whole number from 0 to {MAX_LIMIT}")
    timeout = _timeout(timeout_s)
    text = check_select(sql, table_kinds(cfg), reserved=_reserved_names(cfg))   # refuse at once, without a process
    setup = _setup(cfg)
    query = _query(text, timeout, mode="rows", limit=limit)
    with _slot(timeout):
        process = _spares.take(setup) if SPARE_WORKER else None
        if process is None:
            process = _start(setup)
        try:
            out, err = process.communicate(_line(query), timeout=timeout + KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise SqlRefused(_ran_too_long(timeout)) from None
    if SPARE_WORKER:
        _spares.prepare(setup)
    if process.returncode != 0:
        raise SqlRefused(_worker_error(err, process.returncode))
    answer = json.loads(out)
    return SqlResult(answer["columns"], answer["rows"], answer["truncated"], answer["elapsed_ms"])


@dataclass
class SqlStream:
    """One SELECT's result as Arrow record batches, read from the worker process as they come (memory stays
    at about one batch). Iterate it, or hand `reader()` to pyarrow writers or a plain `duckdb.from_arrow`.
    A failure or the time limit mid-stream raises SqlRefused from the iteration: a cut-off stream never
    passes for a complete one."""
    schema: "pyarrow.Schema"
    columns: list[dict]                  # [{"name", "type"}] with DuckDB's type names
    _batches: Iterator = field(repr=False)

    def __iter__(self):
        return self._batches

    def reader(self):
        import pyarrow as pa
        return pa.RecordBatchReader.from_batches(self.schema, self._batches)


@contextmanager
def readonly_batches(cfg: Config, sql: str, timeout_s: float | None = None,
                     batch_rows: int = 100_000) -> Iterator[SqlStream]:
    """Like run_readonly without a row limit, for exports: yields a SqlStream. The time limit covers the
    whole stream, including the time the caller takes to consume it; the worker ends on leaving the block."""
    import pyarrow as pa
    timeout = _timeout(timeout_s)
    text = check_select(sql, table_kinds(cfg), reserved=_reserved_names(cfg))
    setup, query = _setup(cfg), _query(text, timeout, mode="arrow", batch_rows=batch_rows)
    with _slot(timeout):
        process = _start(setup)
        killed = threading.Event()
        watchdog = threading.Timer(timeout + KILL_GRACE_S, lambda: (killed.set(), process.kill()))
        watchdog.daemon = True
        watchdog.start()

        def failure() -> SqlRefused:
            try:
                code = process.wait(KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            err = process.stderr.read()
            if killed.is_set() and b'"error"' not in err:
                return SqlRefused(_ran_too_long(timeout))
            return SqlRefused(_worker_error(err, code or 1))

        def batches():
            try:
                yield from reader
            except (pa.ArrowException, OSError):
                raise failure() from None
            if process.wait(KILL_GRACE_S) != 0:       # a worker that failed after its last whole batch
                raise failure()

        try:
            process.stdin.write(_line(query))
            process.stdin.close()
            try:
                reader = pa.ipc.open_stream(process.stdout)
            except (pa.ArrowException, OSError):
                raise failure() from None
            meta = reader.schema.metadata or {}
            types = json.loads(meta.get(b"duckdb_types", b"[]"))
            schema = reader.schema.remove_metadata()
            columns = [{"name": f.name, "type": t} for f, t in zip(schema, types)]
            yield SqlStream(schema, columns, batches())
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
            process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                pipe.close()


def _timeout(timeout_s: float | None) -> float:
    timeout = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise SqlRefused("the time limit must be a number of seconds above 0 and at most 3600")
    return float(timeout)


def _setup(cfg: Config) -> dict:
    """The worker's first line: everything its locked-down connection and its checks need but the query."""
    if not lake.catalog_path(cfg).exists():
        raise SqlRefused("the lake does not exist yet: start the scheduler (or `make run`) first")
    return {
        "tables": sorted(table_kinds(cfg)), "functions": sorted(callable_functions()),
        "max_answer_bytes": MAX_ANSWER_BYTES,
        "memory_limit_mb": MEMORY_LIMIT_MB, "address_space_mb": ADDRESS_SPACE_MB, "threads": THREADS,
        "extensions": [str(path) for path in lake.extension_files(cfg)],
        "attach": lake.attach_statement(cfg, read_only=True), "data_path": lake.data_path(cfg),
    }


def _query(sql: str, timeout: float, *, mode: str, limit: int = 0, batch_rows: int = 0) -> dict:
    """The worker's second line."""
    return {"sql": sql, "mode": mode, "limit": limit, "batch_rows": batch_rows, "timeout_s": timeout}


def _request(cfg: Config, sql: str, timeout: float, *, mode: str, limit: int = 0, batch_rows: int = 0) -> dict:
    """Both lines in one dict (what the worker works from)."""
    return {**_setup(cfg), **_query(sql, timeout, mode=mode, limit=limit, batch_rows=batch_rows)}


def _line(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


@contextmanager
def _slot(timeout: float):
    if not _slots.acquire(timeout=timeout):
        raise SqlRefused("too many SQL queries are running at once: try again in a moment")
    try:
        yield
    finally:
        _slots.release()


def _start(setup: dict) -> subprocess.Popen:
    """A worker that has its set-up line and builds its connection while the query is on its way."""
    # Fewer malloc arenas: each reserves address space, which counts against the worker's RLIMIT_AS.
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    process = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, close_fds=True)
    process.stdin.write(_line(setup))
    process.stdin.flush()
    return process


class _Spare:
    """At most one worker started ahead, for the next run_readonly with the same set-up."""

    def __init__(self):
        self._lock = threading.Lock()
        self._worker: tuple[str, float, subprocess.Popen] | None = None

    def take(self, setup: dict) -> subprocess.Popen | None:
        key = json.dumps(setup, sort_keys=True)
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is None:
            return None
        made_for, started, process = worker
        if made_for == key and time.monotonic() - started < SPARE_MAX_AGE_S and process.poll() is None:
            return process
        _dismiss(process)
        return None

    def prepare(self, setup: dict) -> None:
        key = json.dumps(setup, sort_keys=True)
        with self._lock:
            if self._worker is not None and self._worker[0] == key and self._worker[2].poll() is None:
                return
            old, self._worker = self._worker, None
        if old is not None:
            _dismiss(old[2])
        try:
            process = _start(setup)
        except OSError as exc:            # no spare is no failure: the next query starts its own worker
            log.warning("cannot start a spare SQL worker: %s", exc)
            return
        with self._lock:
            if self._worker is None:
                self._worker = (key, time.monotonic(), process)
                return
        _dismiss(process)                 # another thread put one in meanwhile

    def pid(self) -> int | None:
        """The spare's process id, if there is one (for tests and diagnostics)."""
        with self._lock:
            return self._worker[2].pid if self._worker else None

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            _dismiss(worker[2])


def _dismiss(process: subprocess.Popen) -> None:
    """End an unused worker: end of input tells it to exit; kill it if it does not."""
    try:
        process.communicate(timeout=5)
    except (subprocess.TimeoutExpired, OSError, ValueError):
        process.kill()
        process.communicate()


_spares = _Spare()
atexit.register(_spares.close)


def _ran_too_long(timeout: float) -> str:
    return f"the query ran longer than {timeout:g} s"


def _worker_error(err: bytes, returncode: int) -> str:
    """The worker's own one-sentence error, or what its exit says."""
    lines = err.decode("utf-8", "replace").strip().splitlines()
    if lines:
        try:
            return json.loads(lines[-1])["error"]
        except (ValueError, KeyError, TypeError):
            pass
    if returncode < 0:
        return (f"the query stopped without an answer (signal {-returncode}); it may have needed more than "
                f"{MEMORY_LIMIT_MB} MB of memory")
    log.warning("SQL worker exited %s: %s", returncode, " | ".join(lines[-5:]))
    return "the SQL sandbox failed; the server log has the details"
