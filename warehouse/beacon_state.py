"""The web beacon's part of the state database (`<dir>/state.sqlite`): the daily salt and the dropped-hit
counters; and the hot path that puts accepted hits into the shared inbox (`store_hits`).

- `beacon_salts`: one random 32-byte salt per UTC day, made by whichever API worker needs it first. Pixel
  hits without a visitor id get `blake2b(ip, user agent, site; key = that day's salt)` as their visitor id, so
  the id cannot be traced back to the IP address once the salt is gone: every other day's salt is deleted
  when a new day's salt is made.
- `beacon_dropped`: hits refused or not counted, per UTC day and typed reason (invalid, unknown_site, bot,
  disabled, store_failed). Kept until deleted by hand (a few rows a day).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Mapping

from warehouse.state import State, now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS beacon_salts (day TEXT PRIMARY KEY, salt BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS beacon_dropped (
    day TEXT NOT NULL,               -- UTC day the hit arrived
    reason TEXT NOT NULL,            -- invalid | unknown_site | bot | disabled | store_failed
    hits INTEGER NOT NULL,
    PRIMARY KEY (day, reason)
);
"""


class Busy(Exception):
    """Another connection holds the state database's write lock right now."""


class BeaconState:
    def __init__(self, state: State):
        self.state = state
        self._local = threading.local()
        with state.connection() as con:
            con.executescript(SCHEMA)

    def store_hits(self, bodies: list[bytes]) -> int:
        """Put accepted hits (JSON objects as `collectors.beacon.encode` makes them) in the inbox, keyed by
        their hit id, in one transaction; returns how many were new. Never waits: `Busy` when another
        connection holds the write lock (the API calls this on its event loop). One statement over
        json_each, committed on its own (autocommit): one SQLite step for the whole group, not BEGIN, an
        INSERT per hit and COMMIT. The connection (one per thread) does not checkpoint by itself, since a
        checkpoint syncs to disk: `checkpoint()` does, from a housekeeping thread."""
        try:
            return self._nowait().execute(
                "INSERT OR IGNORE INTO inbox (kind, dedupe_key, received_at, headers, body) "
                "SELECT 'beacon', value ->> '$.hit_id', ?, '{}', CAST(value AS BLOB) FROM json_each(?)",
                [now_iso(), b"[" + b",".join(bodies) + b"]"]).rowcount
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise Busy(str(exc)) from None
            raise

    def store_hits_waiting(self, bodies: list[bytes], timeout: float = 30.0) -> int:
        """`store_hits`, retrying every millisecond while the database is busy (SQLite's own busy handler
        sleeps up to 25-100 ms between tries, far longer than the other writers' transactions last)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.store_hits(bodies)
            except Busy:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.001)

    def checkpoint(self) -> None:
        """Copy the WAL into the database file as far as readers allow (PASSIVE: blocks nobody)."""
        with self.state.connection() as con:
            con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _nowait(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self.state._connect()
            con.execute("PRAGMA busy_timeout=0")
            con.execute("PRAGMA wal_autocheckpoint=0")
        return con

    def salt(self, day: str) -> bytes:
        """The salt of UTC day `day` (YYYY-MM-DD), made if missing; every other day's salt is deleted."""
        with self.state.transaction() as con:
            con.execute("INSERT OR IGNORE INTO beacon_salts (day, salt) VALUES (?, ?)", [day, os.urandom(32)])
            con.execute("DELETE FROM beacon_salts WHERE day != ?", [day])
            return bytes(con.execute("SELECT salt FROM beacon_salts WHERE day = ?", [day]).fetchone()[0])

    def salt_days(self) -> list[str]:
        with self.state.connection() as con:
            return [r[0] for r in con.execute("SELECT day FROM beacon_salts ORDER BY day").fetchall()]

    def add_dropped(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add {(day, reason): hits} to the counters, in one transaction."""
        if not counts:
            return
        with self.state.transaction() as con:
            con.executemany("INSERT INTO beacon_dropped (day, reason, hits) VALUES (?, ?, ?) "
                            "ON CONFLICT (day, reason) DO UPDATE SET hits = hits + excluded.hits",
                            [(day, reason, n) for (day, reason), n in counts.items()])

    def dropped(self, since: str | None = None) -> list[dict]:
        """[{day, reason, hits}] oldest day first, from UTC day `since` on (default: all)."""
        with self.state.connection() as con:
            return [dict(r) for r in con.execute(
                "SELECT day, reason, hits FROM beacon_dropped WHERE day >= ? ORDER BY day, reason",
                [since or ""]).fetchall()]
