"""DuckDB connections to the DuckLake warehouse (SQLite catalog in WAL mode, Parquet data files).

The scheduler is the one writer; the API and dashboard sessions attach the same catalog read-only, so no
DuckDB file lock ever stands between processes. Extensions come from the pinned extension wheels: DuckDB's
own download would need the internet, and their signatures are checked on LOAD (we never allow unsigned).
"""
from __future__ import annotations

import importlib.util
import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import duckdb

from config import Config
from warehouse.retry import Retryable, retry

DUCKDB_VERSION = duckdb.__version__
INLINE_ROW_LIMIT = 1000   # small commits (webhooks, snapshots) stay in the catalog until flushed


class WarehouseError(Exception):
    """The warehouse cannot be opened or written; the message says why in one line."""


def extension_file(name: str) -> Path:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise WarehouseError(f"the duckdb-extension-{name} package is not installed (see requirements.txt)")
    path = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{DUCKDB_VERSION}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise WarehouseError(f"{path} is missing: duckdb-extension-{name} does not match duckdb {DUCKDB_VERSION}")
    return path


def catalog_path(cfg: Config) -> Path:
    return cfg.warehouse_dir / "lake.sqlite"


def data_path(cfg: Config) -> str:
    return cfg.warehouse.data_path or str(cfg.warehouse_dir / "lake") + "/"


def _create_lake(cfg: Config) -> None:
    """Make a new lake's catalog under a private name, let DuckLake write its tables into it, and only then
    link it into place. A reader attaching meanwhile finds no catalog ("does not exist yet") or a whole one,
    never the half-made file DuckLake's first ATTACH is writing (it answered `Existing DuckLake at ...`), and a
    writer killed halfway leaves only its private file. Two writers racing: the first link wins, the other
    uses it. The catalog is in WAL mode (Litestream replicates WAL-mode SQLite only; the mode persists)."""
    catalog = catalog_path(cfg)
    catalog.parent.mkdir(parents=True, exist_ok=True)
    making = catalog.with_name(f".{catalog.name}.making-{os.getpid()}")
    parts = [making, making.with_name(making.name + "-wal"), making.with_name(making.name + "-shm")]
    try:
        with closing(sqlite3.connect(making)) as con:
            con.execute("PRAGMA journal_mode=wal")
        con = _duckdb(cfg)
        try:
            con.execute(attach_statement(cfg, read_only=False, catalog=making))
        finally:
            con.close()
        with closing(sqlite3.connect(making)) as con:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")      # all of it in the one file that is linked
        try:
            os.link(making, catalog)
        except FileExistsError:
            pass
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def extension_files(cfg: Config) -> list[Path]:
    """The extensions a lake connection loads (httpfs only for an s3:// data path)."""
    needed = ["ducklake", "sqlite_scanner"] + (["httpfs"] if data_path(cfg).startswith("s3://") else [])
    return [extension_file(name) for name in needed]


def attach_statement(cfg: Config, *, read_only: bool, catalog: Path | None = None) -> str:
    """The ATTACH that makes the lake `lake` (also run by the read-only SQL sandbox's own process)."""
    options = [f"DATA_PATH '{data_path(cfg)}'", f"DATA_INLINING_ROW_LIMIT {INLINE_ROW_LIMIT}"]
    if read_only:
        options.append("READ_ONLY")
    return f"ATTACH 'ducklake:sqlite:{catalog or catalog_path(cfg)}' AS lake ({', '.join(options)})"


def _duckdb(cfg: Config) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection in UTC with the lake's extensions loaded from their wheels (never downloaded)."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute("SET TimeZone = 'UTC'")
    for path in extension_files(cfg):
        con.execute(f"LOAD '{path}'")
    return con


def connect(cfg: Config, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake attached as `lake` and session time zone UTC."""
    catalog = catalog_path(cfg)
    if not catalog.exists():
        if read_only:
            raise WarehouseError(f"{catalog} does not exist yet: start the scheduler (or `make run`) first")
        _create_lake(cfg)
    con = _duckdb(cfg)

    def attach():
        try:
            con.execute(attach_statement(cfg, read_only=read_only))
        except duckdb.Error as exc:
            # Another process (the writer, Litestream's checkpoint) may hold the catalog for a moment.
            if is_commit_conflict(exc):
                raise Retryable(str(exc)) from exc
            raise
    try:
        retry(attach, attempts=8, base_delay=0.1, max_delay=2.0, what="attach the lake")
    except (duckdb.Error, Retryable) as exc:
        con.close()
        raise WarehouseError(f"cannot attach the lake at {catalog}: {exc}") from None
    return con


def is_commit_conflict(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "conflict" in text or "busy" in text


def write_transaction(con: duckdb.DuckDBPyConnection, work, *, what: str = "commit"):
    """Run `work(con)` inside BEGIN/COMMIT, retrying the whole transaction when another writer holds the
    catalog. Either everything `work` wrote is committed or nothing is."""
    def attempt():
        con.execute("BEGIN TRANSACTION")
        try:
            result = work(con)
            con.execute("COMMIT")
            return result
        except BaseException as exc:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            if isinstance(exc, duckdb.Error) and is_commit_conflict(exc):
                raise Retryable(str(exc)) from exc
            raise
    # A CLI backfill may run beside the scheduler: a commit that overlaps the other writer's loses and is
    # redone whole, so allow for a busy minute.
    return retry(attempt, attempts=20, base_delay=0.05, max_delay=5.0, what=what)


class Reader:
    """A per-process read-only connection; each call gets its own cursor (DuckDB cursors are safe to use
    from different threads), and each query sees the latest committed snapshot."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._con is None:
                self._con = connect(self.cfg, read_only=True)
            return self._con.cursor()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
