"""`beacon`: the web beacon's hits, from the SQLite inbox into `raw_beacon`.

The API's edge (`api/beacon.py`) validates each hit and stores it in the inbox before it answers; this
module owns the inbox format both ways (`encode` for the edge and the demo seeding, `deliveries_batch` for
the scheduler's drain). There is nothing to poll: `Beacon.collect` yields no batches, and its scheduled run
exists to bring the web.* rollups up to date (see CUBE_AFTER_DRAIN).

One inbox row = one accepted hit: `dedupe_key` is the hit id made at receive time (the natural key of
`raw_beacon`), `body` the JSON of a `Hit`. A row that cannot be read goes to quarantine with the reason and
never blocks the rows behind it.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime, timezone
from json.encoder import encode_basestring as json_string    # quotes and escapes, as json.dumps(ensure_ascii=False)
from typing import Any

from collectors.base import Batch, Context, Rejected

log = logging.getLogger("caskalytics.collectors.beacon")
UTC = timezone.utc
INBOX_KEEP_DAYS = 0        # drained hits leave the inbox at once: the lake has them, keyed by hit id
# The drain (every 5 s) only lands hits in raw_beacon; recounting a year of distinct visitors takes seconds,
# so the web.* rollups are brought up to date by the scheduled collect job ([sources.beacon] schedule,
# every minute by default), which ends with the cube update like every collect.
CUBE_AFTER_DRAIN = False
TABLE = "raw_beacon"


@dataclass
class Hit:
    """One accepted hit, as stored (no IP address, no User-Agent: only what the metrics need)."""
    hit_id: str                  # made at receive time: time-ordered hex, unique
    ts: str                      # receive time, ISO 8601 UTC
    site: str                    # the configured site it was counted for
    name: str                    # "pageview", or a custom event name ("email_open", "signup")
    path: str                    # the page URL's path, no query string or fragment
    visitor_id: str              # the snippet's random id, or "h:" + a keyed daily hash (pixel hits)
    via: str                     # "event" (POST /api/event), "pixel" (GET /b.gif), "demo" (demo seeding)
    referrer: str | None = None  # the referring URL without query string and fragment
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None


HIT_FIELDS = tuple(f.name for f in fields(Hit))
REQUIRED = ("hit_id", "ts", "site", "name", "path", "visitor_id", "via")


def encode(hit: Hit) -> bytes:
    """The inbox body for `hit`: the JSON object of its fields, each a string or null. Written out with json's
    own string escaping: on every hit's path this costs half of `json.dumps`, which builds an encoder per call."""
    return ("{" + ",".join([f'"{name}":{"null" if value is None else json_string(value)}'
                            for name, value in vars(hit).items()]) + "}").encode()


class Malformed(ValueError):
    """An inbox row that is not a hit as `encode` writes it; the message says what is wrong."""


def hit_record(row: sqlite3.Row) -> dict[str, Any]:
    """The raw_beacon row for one inbox row."""
    try:
        data = json.loads(bytes(row["body"]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Malformed("the body is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise Malformed("the body is not a JSON object")
    for name in REQUIRED:
        if not isinstance(data.get(name), str) or not data[name]:
            raise Malformed(f"{name} is missing or not a non-empty string")
    if data["hit_id"] != row["dedupe_key"]:
        raise Malformed(f"hit_id {data['hit_id']!r:.40} differs from the inbox key {row['dedupe_key']!r:.40}")
    try:
        ts = datetime.fromisoformat(data["ts"])
    except ValueError:
        raise Malformed(f"ts is not an ISO 8601 time: {data['ts']!r:.40}") from None
    if ts.tzinfo is None:
        raise Malformed(f"ts has no UTC offset: {data['ts']!r:.40}")
    record = {name: data.get(name) for name in HIT_FIELDS}
    record["ts"] = ts.astimezone(UTC)
    return record


def deliveries_batch(rows: Iterable[sqlite3.Row]) -> Batch:
    """One batch for inbox rows of kind "beacon": the hits, the unreadable rows quarantined, and the cursor
    {"last_id": the highest row id}."""
    rows = list(rows)
    hits, rejected = [], []
    for row in rows:
        try:
            hits.append(hit_record(row))
        except Malformed as exc:
            rejected.append(Rejected(f"beacon hit: {exc}", bytes(row["body"] or b"").decode("utf-8", "replace"),
                                     row["dedupe_key"] or f"inbox row {row['id']}"))
    last_id = max((row["id"] for row in rows), default=None)
    return Batch(records={TABLE: hits}, cursor={"last_id": last_id} if last_id is not None else None,
                 rejected=rejected, label=f"inbox rows {rows[0]['id']}..{last_id}" if rows else "")


class Beacon:
    """Hits reach the lake through the inbox drain (`pipeline.drain_inbox`); there is nothing to poll."""
    name = "beacon"

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        return iter(())

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        return iter(())
