"""Alert evaluation's own part of the state database (`<dir>/state.sqlite`), beside `notify_state`'s tables:

- `alert_rules`: rules added through the API or the dashboard (config rules stay in config.toml), each kept as
  the JSON of its `[[alerts.rules]]` keys, so one model (`config.AlertRule`) reads both kinds;
- read-only views the evaluator needs of tables others own: alert events in a time window (digests), and the
  newest run of each source whatever its status (a run still going tells "catching up").

Times are ISO 8601 UTC strings (`notify_state.iso`), so comparing the text compares the times.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from warehouse.notify_state import iso
from warehouse.state import State

SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_rules (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,            -- JSON of the rule's [[alerts.rules]] keys
    created_at TEXT NOT NULL
);
"""


class AlertStore:
    def __init__(self, state: State):
        self.state = state
        with state.connection() as con:
            con.executescript(SCHEMA)

    # -- rules managed through the API ---------------------------------------------------------------------
    def rules(self) -> list[dict[str, Any]]:
        """Stored rules, oldest first: {"name", "definition": {...}, "created_at"}."""
        with self.state.connection() as con:
            return [{"name": r["name"], "definition": json.loads(r["definition"]), "created_at": r["created_at"]}
                    for r in con.execute("SELECT * FROM alert_rules ORDER BY created_at, name").fetchall()]

    def add_rule(self, name: str, definition: dict[str, Any], now: datetime) -> bool:
        """Store a rule; False when one of that name is stored already."""
        with self.state.connection() as con:
            return con.execute("INSERT OR IGNORE INTO alert_rules (name, definition, created_at) VALUES (?, ?, ?)",
                               [name, json.dumps(definition), iso(now)]).rowcount == 1

    def delete_rule(self, name: str) -> bool:
        """Remove a stored rule and its evaluation memory (a rule added again later starts afresh); its
        events stay, as history."""
        with self.state.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                deleted = con.execute("DELETE FROM alert_rules WHERE name = ?", [name]).rowcount == 1
                if deleted:
                    con.execute("DELETE FROM alert_state WHERE rule IN (?, ?)", [name, f"held:{name}"])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return deleted

    # -- what the evaluator reads --------------------------------------------------------------------------
    def events_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Alert events of the local period [start, end), oldest first: those about a bucket starting in it
        (a firing is logged after its bucket ended, often in the next period), and the others (failures,
        held rules) logged in it."""
        with self.state.connection() as con:
            return [dict(r) for r in con.execute(
                "SELECT * FROM alert_events WHERE (bucket_start IS NOT NULL AND bucket_start >= ? AND bucket_start < ?)"
                " OR (bucket_start IS NULL AND at >= ? AND at < ?) ORDER BY id",
                [_label(start), _label(end), iso(start), iso(end)]).fetchall()]

    def alert_states(self) -> list[dict[str, Any]]:
        with self.state.connection() as con:
            return [dict(r) for r in con.execute("SELECT * FROM alert_state ORDER BY rule").fetchall()]

    def newest_runs(self) -> dict[str, dict[str, Any]]:
        """Per source, its newest run of any status (`running` included)."""
        with self.state.connection() as con:
            return {r["source"]: dict(r) for r in con.execute(
                "SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY source)").fetchall()}


def _label(moment: datetime) -> str:
    """A local time as bucket labels spell it ("YYYY-MM-DD" or "YYYY-MM-DDTHH:MM"), so they compare as text."""
    return moment.strftime("%Y-%m-%dT%H:%M") if (moment.hour, moment.minute) != (0, 0) else moment.date().isoformat()
