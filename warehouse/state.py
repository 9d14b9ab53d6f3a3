"""The SQLite state database (`<dir>/state.sqlite`, WAL): run log and the durable receive inbox.

The API writes webhook deliveries (and beacon hits) here before it answers, so nothing that got a 2xx is
lost; the scheduler drains the inbox into the lake. Any process may write here: SQLite serialises writers,
and `busy_timeout` makes them wait instead of failing.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from config import Config

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,               -- collect | backfill | drain | cube
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,             -- running | ok | failed
    records INTEGER DEFAULT 0,
    inserted INTEGER DEFAULT 0,
    duplicates INTEGER DEFAULT 0,
    quarantined INTEGER DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_source ON runs (source, id);
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


class State:
    def __init__(self, cfg: Config):
        self.path: Path = cfg.warehouse_dir / "state.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self.connection() as con:
            con.executescript(SCHEMA)

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

    # -- run log -----------------------------------------------------------------------------------------
    def start_run(self, source: str, kind: str) -> int:
        with self.connection() as con:
            return con.execute("INSERT INTO runs (source, kind, started_at, status) VALUES (?, ?, ?, 'running')",
                               [source, kind, now_iso()]).lastrowid

    def add_to_run(self, run_id: int, records: int, inserted: int, duplicates: int, quarantined: int) -> None:
        with self.connection() as con:
            con.execute("UPDATE runs SET records = records + ?, inserted = inserted + ?, duplicates = duplicates + ?,"
                        " quarantined = quarantined + ? WHERE id = ?",
                        [records, inserted, duplicates, quarantined, run_id])

    def finish_run(self, run_id: int, error: str | None = None) -> None:
        with self.connection() as con:
            con.execute("UPDATE runs SET finished_at = ?, status = ?, error = ? WHERE id = ?",
                        [now_iso(), "failed" if error else "ok", error, run_id])

    def recent_runs(self, source: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        with self.connection() as con:
            where, args = ("WHERE source = ?", [source]) if source else ("", [])
            return [dict(r) for r in con.execute(f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT ?",
                                                 [*args, limit]).fetchall()]

    def source_status(self) -> dict[str, dict[str, Any]]:
        """Per source: the last run, the last successful run and how many runs in a row failed."""
        with self.connection() as con:
            sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM runs").fetchall()]
            status = {}
            for source in sources:
                runs = [dict(r) for r in con.execute(
                    "SELECT * FROM runs WHERE source = ? AND status != 'running' ORDER BY id DESC LIMIT 50",
                    [source]).fetchall()]
                last_ok = con.execute("SELECT finished_at FROM runs WHERE source = ? AND status = 'ok' "
                                      "ORDER BY id DESC LIMIT 1", [source]).fetchone()
                failures = 0
                for run in runs:
                    if run["status"] != "failed":
                        break
                    failures += 1
                status[source] = {"last_run": runs[0] if runs else None,
                                  "last_success_at": last_ok[0] if last_ok else None,
                                  "consecutive_failures": failures}
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
        with self.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                before = con.total_changes
                con.executemany(
                    "INSERT OR IGNORE INTO inbox (kind, dedupe_key, received_at, headers, body) VALUES (?, ?, ?, ?, ?)",
                    [(kind, key, now, json.dumps(headers), body) for key, headers, body in deliveries])
                added = con.total_changes - before
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return added

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
