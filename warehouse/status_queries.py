"""What the dashboard shows about the sources themselves: how fresh each one's data is, its rows, cursor and
quarantined records (from the lake), and its outages and catch-ups (from the run log in the state database).

Read-only; the lake functions take a read cursor (`warehouse.lake.Reader.cursor()`), the run-log ones a
`warehouse.state.State`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from config import Config
from warehouse.state import State

QUARANTINE_RECORD_CHARS = 500     # a quarantined record is shown cut to this length


def latest_data(cur, cfg: Config) -> dict[str, datetime]:
    """Per source, the newest observation time (UTC) in its rollups; sources without data are absent.

    The year rollups hold each metric's newest `last_ts` in a few rows, so this reads almost nothing."""
    rows = cur.execute("SELECT metric, max(last_ts) FROM lake.rollups WHERE grain = 'year' GROUP BY metric").fetchall()
    newest: dict[str, datetime] = {}
    for metric, last_ts in rows:
        declared = cfg.catalog.metrics.get(metric)
        if declared is None or last_ts is None:
            continue
        last_ts = last_ts.astimezone(timezone.utc)
        if declared.source not in newest or last_ts > newest[declared.source]:
            newest[declared.source] = last_ts
    return newest


def raw_row_counts(cur, cfg: Config) -> dict[str, dict[str, int]]:
    """Per source, the rows in each of its raw tables (tables not created yet count 0)."""
    existing = {row[0] for row in cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()}
    counts: dict[str, dict[str, int]] = {}
    for source in cfg.catalog.sources:
        counts[source] = {}
        for table in cfg.catalog.raw_tables_of(source):
            counts[source][table] = (cur.execute(f'SELECT count(*) FROM lake."{table}"').fetchone()[0]
                                     if table in existing else 0)
    return counts


def cursors(cur) -> dict[str, dict]:
    """Each cursor's latest value (sources and inbox drains, e.g. `github.inbox`) and when it moved."""
    rows = cur.execute("""
        SELECT source, arg_max(cursor, batch), max(updated_at) FROM lake.cursors GROUP BY source""").fetchall()
    return {source: {"cursor": json.loads(cursor) if cursor else None, "updated_at": updated}
            for source, cursor, updated in rows}


def quarantine_summary(cur) -> list[dict]:
    """Quarantined records per source and reason: `{source, reason, records, last_at}`, most recent first."""
    rows = cur.execute("""
        SELECT source, reason, count(*) AS records, max(received_at) AS last_at FROM lake.quarantine
        GROUP BY source, reason ORDER BY last_at DESC""").fetchall()
    return [{"source": s, "reason": r, "records": n, "last_at": t} for s, r, n, t in rows]


def quarantine_rows(cur, source: str, limit: int = 50) -> list[dict]:
    """The newest quarantined records of `source`: `{received_at, reason, origin, record}` (record cut short)."""
    rows = cur.execute(f"""
        SELECT received_at, reason, origin, left(record, {QUARANTINE_RECORD_CHARS}) FROM lake.quarantine
        WHERE source = ? ORDER BY received_at DESC LIMIT ?""", [source, limit]).fetchall()
    return [{"received_at": t, "reason": r, "origin": o, "record": rec} for t, r, o, rec in rows]


@dataclass(frozen=True)
class Outage:
    """Consecutive failed runs of a source, and the run that ended them (the catch-up), if any."""
    source: str
    start: datetime                  # the first failed run's start (UTC)
    end: datetime | None             # the catch-up run's end; None while the source still fails
    failed_runs: int
    error: str | None                # the last failure's one line
    caught_up_records: int | None    # records the catch-up run read


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def outages(state: State, since: datetime | None = None) -> list[Outage]:
    """Every stretch of failed collections (kind collect or backfill) that overlaps `since` or later, oldest
    first. A stretch ends with the source's next successful run, which read the missed window."""
    with state.connection() as con:
        rows = [dict(r) for r in con.execute("""
            SELECT source, started_at, finished_at, status, records, error FROM runs
            WHERE kind IN ('collect', 'backfill') AND status != 'running' ORDER BY source, id""").fetchall()]
    found: list[Outage] = []
    open_: dict[str, list[dict]] = {}
    for run in rows:
        failed = open_.setdefault(run["source"], [])
        if run["status"] == "failed":
            failed.append(run)
            continue
        if failed:
            found.append(Outage(run["source"], _parse(failed[0]["started_at"]), _parse(run["finished_at"]),
                                len(failed), failed[-1]["error"], run["records"]))
            open_[run["source"]] = []
    for source, failed in open_.items():
        if failed:
            found.append(Outage(source, _parse(failed[0]["started_at"]), None, len(failed), failed[-1]["error"], None))
    if since is not None:
        found = [o for o in found if o.end is None or o.end >= since]
    return sorted(found, key=lambda o: o.start)
