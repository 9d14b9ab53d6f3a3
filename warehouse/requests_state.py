"""Backfill requests: the dashboard queues them in the state database, the scheduler (the lake's one writer)
runs them and records their progress here.

A request is `queued`, then `running` (with rows read so far and the collector's progress), then `done` or
`failed` (with the one-line reason). A request left `running` by a scheduler that stopped is queued again
when the scheduler starts (`requeue_interrupted`): natural keys make reading a range twice harmless.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from warehouse.state import State, now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS backfill_requests (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    start_day TEXT NOT NULL,           -- inclusive dates in the reporting time zone, YYYY-MM-DD
    end_day TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status TEXT NOT NULL,              -- queued | running | done | failed
    started_at TEXT,
    finished_at TEXT,
    batches INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    inserted INTEGER NOT NULL DEFAULT 0,
    progress_done INTEGER,             -- the collector's own progress (e.g. chunks), when it reports one
    progress_total INTEGER,
    label TEXT,                        -- the last committed batch's label
    error TEXT
);
CREATE INDEX IF NOT EXISTS backfill_requests_by_status ON backfill_requests (status, id);
"""


class BackfillRequests:
    def __init__(self, state: State):
        self.state = state
        with state.connection() as con:
            con.executescript(SCHEMA)

    def queue(self, source: str, start: date, end: date) -> int:
        """Queue a backfill of [start, end]; the id of an identical request still queued or running is
        returned instead of a second one."""
        with self.state.connection() as con:
            same = con.execute("SELECT id FROM backfill_requests WHERE source = ? AND start_day = ? AND end_day = ? "
                               "AND status IN ('queued', 'running')", [source, start.isoformat(), end.isoformat()]).fetchone()
            if same:
                return same[0]
            return con.execute("INSERT INTO backfill_requests (source, start_day, end_day, requested_at, status) "
                               "VALUES (?, ?, ?, ?, 'queued')",
                               [source, start.isoformat(), end.isoformat(), now_iso()]).lastrowid

    def claim_next(self) -> dict[str, Any] | None:
        """The oldest queued request, now marked running; None when nothing is queued."""
        with self.state.connection() as con:
            row = con.execute("UPDATE backfill_requests SET status = 'running', started_at = ? WHERE id = "
                              "(SELECT id FROM backfill_requests WHERE status = 'queued' ORDER BY id LIMIT 1) "
                              "RETURNING *", [now_iso()]).fetchone()
            return dict(row) if row else None

    def progress(self, request_id: int, batches: int, records: int, inserted: int, done: int | None = None,
                 total: int | None = None, label: str | None = None) -> None:
        with self.state.connection() as con:
            con.execute("UPDATE backfill_requests SET batches = ?, records = ?, inserted = ?, progress_done = ?, "
                        "progress_total = ?, label = ? WHERE id = ?",
                        [batches, records, inserted, done, total, label, request_id])

    def finish(self, request_id: int, error: str | None = None) -> None:
        with self.state.connection() as con:
            con.execute("UPDATE backfill_requests SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                        ["failed" if error else "done", now_iso(), error, request_id])

    def requeue_interrupted(self) -> int:
        """Queue again what a stopped scheduler left running; returns how many."""
        with self.state.connection() as con:
            return con.execute("UPDATE backfill_requests SET status = 'queued', started_at = NULL "
                               "WHERE status = 'running'").rowcount

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest requests, newest first."""
        with self.state.connection() as con:
            return [dict(r) for r in con.execute("SELECT * FROM backfill_requests ORDER BY id DESC LIMIT ?",
                                                 [limit]).fetchall()]
