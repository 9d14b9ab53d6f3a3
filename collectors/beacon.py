"""`beacon`: the web beacon's hits, from the SQLite inbox into `raw_beacon`.

The API's edge (`api/beacon.py`) validates each hit and stores it in the inbox before it answers; this
module owns the inbox format both ways (`encode` for the edge and the demo seeding, `deliveries_batch` for
the scheduler's drain). There is nothing to poll: the source's schedule brings the web.* rollups up to date
(`SOURCE.scheduled`).

One inbox row = one accepted hit: `dedupe_key` is the hit id made at receive time (the natural key of
`raw_beacon`), `body` the JSON of a `Hit`. A row that cannot be read goes to quarantine with the reason and
never blocks the rows behind it.
"""
from __future__ import annotations

import re
import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from json.encoder import encode_basestring as json_string    # quotes and escapes, as json.dumps(ensure_ascii=False)
from typing import Any, Literal

from pydantic import Field, field_validator
from collectors.base import Batch, Demo, Inbox, Malformed, ROLLUP, Rejected, Source
from config import SourceConfig
from warehouse.catalog import COUNTER, DISTINCT, FROM_EARLIEST, Metric, RawTable
from warehouse.metrics import BEACON_FIRST_HOURS, beacon_sql

log = logging.getLogger("caskalytics.collectors.beacon")
UTC = timezone.utc
TABLE = "raw_beacon"


class BeaconConfig(SourceConfig):
    """The web beacon (`/api/event`, `/b.gif`): which sites' hits count, and how visitors and blog views are
    told apart. Hits arrive through the inbox (drained every 5 s); `schedule` is how often the web.* rollups
    are brought up to date."""
    sites: list[str]                        # host names, e.g. ["cask.co"]; a leading "www." is ignored
    blog_prefixes: list[str] = ["/blog/"]   # page views of paths starting with one of these are blog views
    session_minutes: int = Field(default=30, ge=1, le=1440)    # inactivity that ends a session
    visitor_days: int = Field(default=395, ge=1, le=3650)      # the snippet's visitor id lives this long after a visit
    visitor_storage: Literal["localStorage", "cookie"] = "localStorage"    # where the snippet keeps that id
    schedule: str = "every 1 minutes"       # how often the web.* rollups catch up with the drained hits

    @field_validator("sites")
    @classmethod
    def host_names(cls, value: list[str]) -> list[str]:
        hosts = [host.strip().lower().removeprefix("www.") for host in value]
        for host in hosts:
            if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*", host):
                raise ValueError(f"host names such as 'cask.co' (no scheme, port or path), got {host!r}")
        if not hosts:
            raise ValueError("at least one site")
        return hosts

    @field_validator("blog_prefixes")
    @classmethod
    def path_prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not prefix.startswith("/"):
                raise ValueError(f"path prefixes starting with '/', such as '/blog/', got {prefix!r}")
        return value


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




SOURCE = Source(
    name="beacon",
    settings=BeaconConfig,
    collector=None,               # hits arrive through the inbox: nothing to poll
    tables=(
        RawTable(
            "raw_beacon",
            "ts TIMESTAMPTZ, hit_id VARCHAR, site VARCHAR, name VARCHAR, path VARCHAR, visitor_id VARCHAR, via VARCHAR, "
            "referrer VARCHAR, utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR, utm_term VARCHAR, "
            "utm_content VARCHAR",
            key=("hit_id",),
            same_key_same_ts=True,
        ),
    ),
    metrics=(
        Metric("web.pageviews", COUNTER, ("path",), "Page views (beacon hits named pageview) by page path",
               sql=lambda cfg: beacon_sql(cfg, "web.pageviews")),
        Metric("web.sessions", COUNTER, (),
               "Visits: a visitor's hits less than [sources.beacon] session_minutes apart; counted where they start",
               sql=lambda cfg: beacon_sql(cfg, "web.sessions")),
        Metric("web.visitors", DISTINCT, (), "Unique visitors with a hit in the period"),
        Metric("web.new_visitors", DISTINCT, (), "Visitors whose first hit ever falls in the period"),
        Metric("web.returning_visitors", DISTINCT, (), "Visitors in the period first seen before it"),
        Metric("web.blog_views", COUNTER, (), "Page views of paths under [sources.beacon] blog_prefixes",
               sql=lambda cfg: beacon_sql(cfg, "web.blog_views")),
    ),
    # A late hit can change later hours' session starts and which hit is a visitor's first.
    recompute=FROM_EARLIEST,
    first_seen_sql=BEACON_FIRST_HOURS,
    # Drained hits leave the inbox at once (the lake has them, keyed by hit id). The drain (every 5 s) only
    # lands hits in raw_beacon; recounting a year of distinct visitors takes seconds, so the web.* rollups are
    # brought up to date on [sources.beacon] schedule (every minute by default) instead.
    inbox=Inbox(deliveries_batch, keep_days=0, cube_after_drain=False),
    scheduled=ROLLUP,
    demo=Demo("beacon"),
)
