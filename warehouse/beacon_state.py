"""The web beacon's part of the state database (`<dir>/state.sqlite`): the daily salt and the dropped-hit
counters. Accepted hits themselves go through the shared inbox (`State.receive_many`).

- `beacon_salts`: one random 32-byte salt per UTC day, made by whichever API worker needs it first. Pixel
  hits without a visitor id get `blake2b(ip, user agent, site; key = that day's salt)` as their visitor id, so
  the id cannot be traced back to the IP address once the salt is gone: every other day's salt is deleted
  when a new day's salt is made.
- `beacon_dropped`: hits refused or not counted, per UTC day and typed reason (invalid, unknown_site, bot,
  disabled, store_failed). Kept until deleted by hand (a few rows a day).
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from warehouse.state import State

SCHEMA = """
CREATE TABLE IF NOT EXISTS beacon_salts (day TEXT PRIMARY KEY, salt BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS beacon_dropped (
    day TEXT NOT NULL,               -- UTC day the hit arrived
    reason TEXT NOT NULL,            -- invalid | unknown_site | bot | disabled | store_failed
    hits INTEGER NOT NULL,
    PRIMARY KEY (day, reason)
);
"""


class BeaconState:
    def __init__(self, state: State):
        self.state = state
        with state.connection() as con:
            con.executescript(SCHEMA)

    def salt(self, day: str) -> bytes:
        """The salt of UTC day `day` (YYYY-MM-DD), made if missing; every other day's salt is deleted."""
        with self.state.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute("INSERT OR IGNORE INTO beacon_salts (day, salt) VALUES (?, ?)", [day, os.urandom(32)])
                con.execute("DELETE FROM beacon_salts WHERE day != ?", [day])
                salt = con.execute("SELECT salt FROM beacon_salts WHERE day = ?", [day]).fetchone()[0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return bytes(salt)

    def salt_days(self) -> list[str]:
        with self.state.connection() as con:
            return [r[0] for r in con.execute("SELECT day FROM beacon_salts ORDER BY day").fetchall()]

    def add_dropped(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Add {(day, reason): hits} to the counters, in one transaction."""
        if not counts:
            return
        with self.state.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("INSERT INTO beacon_dropped (day, reason, hits) VALUES (?, ?, ?) "
                                "ON CONFLICT (day, reason) DO UPDATE SET hits = hits + excluded.hits",
                                [(day, reason, n) for (day, reason), n in counts.items()])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def dropped(self, since: str | None = None) -> list[dict]:
        """[{day, reason, hits}] oldest day first, from UTC day `since` on (default: all)."""
        with self.state.connection() as con:
            return [dict(r) for r in con.execute(
                "SELECT day, reason, hits FROM beacon_dropped WHERE day >= ? ORDER BY day, reason",
                [since or ""]).fetchall()]
