"""The SQLite state database (`<dir>/state.sqlite`, WAL): run log, retry times and the durable receive inbox.

The API writes webhook deliveries (and beacon hits) here before it answers, so nothing that got a 2xx is
lost; the scheduler drains the inbox into the lake. Any process may write here: SQLite serialises writers,
and `busy_timeout` makes them wait instead of failing. A write of more than one statement goes through
`State.transaction()`; every run goes through `State.run()`.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from config import Config, ConfigError
from warehouse import stopping

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,               -- collect | backfill | drain | rollup
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,             -- running | ok | failed | interrupted (stopped on purpose, or its process died)
    records INTEGER DEFAULT 0,
    inserted INTEGER DEFAULT 0,
    duplicates INTEGER DEFAULT 0,
    quarantined INTEGER DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_source ON runs (source, id);
CREATE TABLE IF NOT EXISTS retries (
    source TEXT PRIMARY KEY,          -- a source whose last run failed, until a run succeeds
    next_retry_at TEXT NOT NULL       -- when the scheduler tries it again (ISO UTC)
);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,           -- drain order; the lake keeps the last drained id as a cursor
    kind TEXT NOT NULL,               -- github | beacon
    dedupe_key TEXT,                  -- X-GitHub-Delivery for webhooks
    received_at TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    UNIQUE (kind, dedupe_key)
);
"""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def one_line(exc: BaseException) -> str:
    """An exception as the one line the run log, `status` and the CLI show."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}" if not isinstance(exc, ConfigError) else text[0]


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # someone else's process: alive
        return True
    return True


def _finish(con: sqlite3.Connection, run_id: int, status: str, error: str | None) -> None:
    con.execute("UPDATE runs SET finished_at = ?, status = ?, error = ? WHERE id = ?", [now_iso(), status, error, run_id])


class RunLog:
    """One row of the run log while its run goes on (`State.run`)."""

    def __init__(self, state: State, run_id: int):
        self.state, self.id = state, run_id

    def add(self, result: Any) -> None:
        """Count a committed batch (anything with records, inserted, duplicates and quarantined)."""
        with self.state.connection() as con:
            con.execute("UPDATE runs SET records = records + ?, inserted = inserted + ?, duplicates = duplicates + ?,"
                        " quarantined = quarantined + ? WHERE id = ?",
                        [result.records, result.inserted, result.duplicates, result.quarantined, self.id])


class State:
    def __init__(self, cfg: Config):
        self.path: Path = cfg.warehouse_dir / "state.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self.connection() as con:
            con.executescript(SCHEMA)
            if "pid" not in {row[1] for row in con.execute("PRAGMA table_info(runs)")}:
                try:     # a state file from before runs recorded their process
                    con.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):      # another process added it first
                        raise

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=wal")
        con.execute("PRAGMA synchronous=NORMAL")   # durable across process crashes, which is what we promise
        con.execute("PRAGMA busy_timeout=30000")
        con.row_factory = sqlite3.Row
        return con

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        yield con

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any exception) on this thread's connection. IMMEDIATE takes
        the write lock at the start, so a read-then-write inside cannot interleave with another writer's and
        never fails half-way with SQLITE_BUSY on the upgrade from reader to writer."""
        with self.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    # -- run log -----------------------------------------------------------------------------------------
    @contextmanager
    def run(self, source: str, kind: str) -> Iterator[RunLog]:
        """One run in the log: `running` while the block runs, then `ok`; `failed` with the exception's one
        line; `interrupted` when the process is stopping (`warehouse.stopping`, Ctrl-C), whatever the exception
        (a simulator shut down with us refuses connections: that is not a source failure). An ok run clears
        the source's retry time."""
        with self.connection() as con:
            run = RunLog(self, con.execute("INSERT INTO runs (source, kind, started_at, status, pid) "
                                           "VALUES (?, ?, ?, 'running', ?)",
                                           [source, kind, now_iso(), os.getpid()]).lastrowid)
        try:
            yield run
        except BaseException as exc:
            stopped = isinstance(exc, (stopping.Interrupted, KeyboardInterrupt)) or stopping.requested()
            with self.connection() as con:
                _finish(con, run.id, "interrupted" if stopped else "failed", one_line(exc))
            raise
        with self.transaction() as con:
            _finish(con, run.id, "ok", None)
            con.execute("DELETE FROM retries WHERE source = ?", [source])

    def interrupt_leftover_runs(self) -> int:
        """Mark `running` rows whose process is gone (killed, crashed, machine restarted) `interrupted`; the
        scheduler calls this at start. Returns how many."""
        with self.transaction() as con:
            leftover = [row["id"] for row in con.execute("SELECT id, pid FROM runs WHERE status = 'running'")
                        if row["pid"] != os.getpid() and not _alive(row["pid"])]
            con.executemany("UPDATE runs SET finished_at = ?, status = 'interrupted', error = ? WHERE id = ?",
                            [(now_iso(), "the process stopped before the run finished", run_id) for run_id in leftover])
        return len(leftover)

    def set_retry(self, source: str, at: datetime) -> None:
        """Record when the scheduler tries a failed source again (`status`, `/health`); an ok run clears it."""
        with self.connection() as con:
            con.execute("INSERT INTO retries (source, next_retry_at) VALUES (?, ?) ON CONFLICT (source) "
                        "DO UPDATE SET next_retry_at = excluded.next_retry_at",
                        [source, at.astimezone(timezone.utc).isoformat(timespec="seconds")])

    def recent_runs(self, source: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        with self.connection() as con:
            where, args = ("WHERE source = ?", [source]) if source else ("", [])
            return [dict(r) for r in con.execute(f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT ?",
                                                 [*args, limit]).fetchall()]

    def source_status(self) -> dict[str, dict[str, Any]]:
        """Per source: the last finished run, the last successful run, how many runs in a row failed (an
        interrupted run neither breaks nor extends the streak) and, after a failure, when it is retried."""
        with self.connection() as con:
            sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM runs").fetchall()]
            retries = dict(con.execute("SELECT source, next_retry_at FROM retries").fetchall())
            status = {}
            for source in sources:
                runs = [dict(r) for r in con.execute(
                    "SELECT * FROM runs WHERE source = ? AND status != 'running' ORDER BY id DESC LIMIT 50",
                    [source]).fetchall()]
                last_ok = con.execute("SELECT finished_at FROM runs WHERE source = ? AND status = 'ok' "
                                      "ORDER BY id DESC LIMIT 1", [source]).fetchone()
                failures = 0
                for run in runs:
                    if run["status"] == "interrupted":
                        continue
                    if run["status"] != "failed":
                        break
                    failures += 1
                status[source] = {"last_run": runs[0] if runs else None,
                                  "last_success_at": last_ok[0] if last_ok else None,
                                  "consecutive_failures": failures,
                                  "next_retry_at": retries.get(source) if failures else None}
            return status

    # -- inbox -------------------------------------------------------------------------------------------
    def receive(self, kind: str, dedupe_key: str | None, headers: dict[str, str], body: bytes) -> bool:
        """Store one delivery durably; False when the same `dedupe_key` was received before."""
        with self.connection() as con:
            cursor = con.execute(
                "INSERT OR IGNORE INTO inbox (kind, dedupe_key, received_at, headers, body) VALUES (?, ?, ?, ?, ?)",
                [kind, dedupe_key, now_iso(), json.dumps(headers), body])
            return cursor.rowcount == 1

    def receive_many(self, kind: str, deliveries: list[tuple[str | None, dict[str, str], bytes]]) -> int:
        """Store many (dedupe_key, headers, body) deliveries in one transaction (group commit: beacon hits
        of many concurrent requests; demo seeding); returns how many were new."""
        now = now_iso()
        with self.transaction() as con:
            before = con.total_changes
            con.executemany(
                "INSERT OR IGNORE INTO inbox (kind, dedupe_key, received_at, headers, body) VALUES (?, ?, ?, ?, ?)",
                [(kind, key, now, json.dumps(headers), body) for key, headers, body in deliveries])
            return con.total_changes - before

    def inbox_kinds(self) -> list[str]:
        """The kinds in the inbox, one index lookup per kind (not a scan of a possibly large inbox)."""
        with self.connection() as con:
            return [r[0] for r in con.execute("""
                WITH RECURSIVE k(kind) AS (
                    SELECT min(kind) FROM inbox
                    UNION ALL SELECT (SELECT min(kind) FROM inbox WHERE kind > k.kind) FROM k WHERE k.kind IS NOT NULL)
                SELECT kind FROM k WHERE kind IS NOT NULL""").fetchall()]

    def inbox_after(self, kind: str, after_id: int, limit: int = 5000) -> list[sqlite3.Row]:
        with self.connection() as con:
            # `+kind` keeps SQLite off the (kind, dedupe_key) index: through it, every call read and sorted
            # all rows of the kind, so draining a backlog took time quadratic in its size. By id it reads
            # the next rows only.
            return con.execute("SELECT * FROM inbox WHERE +kind = ? AND id > ? ORDER BY id LIMIT ?",
                               [kind, after_id, limit]).fetchall()

    def prune_inbox(self, kind: str, up_to_id: int, keep_days: int = 30) -> None:
        """Drop drained deliveries older than `keep_days` (kept that long to dedupe GitHub redeliveries)."""
        cutoff = datetime.fromtimestamp(time.time() - keep_days * 86400, timezone.utc).isoformat()
        with self.connection() as con:
            # The newest row always stays: SQLite gives a new row max(id) + 1, so deleting the newest row would
            # let later deliveries reuse ids at or below the drain cursors, and they would never be drained.
            # In short transactions: one long DELETE would hold the write lock the API's inbox writes wait for.
            while con.execute("DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE kind = ? AND id <= ? "
                              "AND received_at < ? AND id < (SELECT max(id) FROM inbox) LIMIT 500)",
                              [kind, up_to_id, cutoff]).rowcount:
                pass
