"""`youtube`: daily views and the subscriber count of one channel.

Two reads per run (HTTP, auth and retries in `youtube_api.py`):

- **Data API `channels.list`** (part=statistics): the current `subscriberCount` (a string, as are
  all counts there), stored in `raw_youtube_channel` at the server's time. It is the one exact subscriber
  count YouTube gives; a channel that hides it (`hiddenSubscriberCount`) gives none, and that is
  quarantined so the run log shows it. An empty list means `channel_id` names no channel the grant can
  see: a `SourceError`.
- **Analytics `reports.query`** (dimensions=day; views, subscribersGained, subscribersLost): one row per
  day, stored in `raw_youtube` (`schema.observation_table`) stamped 12:00 UTC of the day.

Which days are final. YouTube reports a day two to three days late and revises the newest days for a
while, so every run re-asks every day after the cursor, `{"final_through": "YYYY-MM-DD"}`, which moves
only up to `late_days` before today (today by the API server's clock, in Pacific time as YouTube's days
are). Each fetch is stored; the cube keeps the latest one of each day.

Missing rows. The API leaves out days without data. A missing day counts as 0 only when the API has
answered for it, which we know once it has reported a later day: the days after the newest reported row
may just be late, so they are neither written as 0 nor passed by the cursor (a longer reporting delay
just widens the next run's question). The first run goes back `history_days`; a run after an outage asks
from the cursor, oldest first, `chunk_days` per question, each chunk committed with its cursor.

Subscribers (see `warehouse.metrics.youtube_subscribers_sql`): the latest snapshot is the anchor, and the
daily history is rebuilt backwards from it with each day's net gain (gained - lost), so each snapshot
re-anchors the whole history.
"""
from __future__ import annotations

import re
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from collectors.base import Batch, Context, Demo, Malformed, Rejected, Source, SourceError, quarantine_text
from collectors.daily_reports import chunks, parse_day, stamp
from collectors.youtube_api import REPORT_METRICS, YouTubeApi
from config import SourceConfig
from warehouse.catalog import ALL_HOURS, COUNTER, GAUGE, Metric, RawTable, observation_table
from warehouse.metrics import observation_sql, youtube_subscribers_sql

log = logging.getLogger("caskalytics.collectors.youtube")
PACIFIC = ZoneInfo("America/Los_Angeles")       # YouTube Analytics days are Pacific-time days
METRIC_NAMES = {"views": "youtube.views", "subscribersGained": "youtube.subscribers_gained",
                "subscribersLost": "youtube.subscribers_lost"}
MAX_COUNT = 2**53                                # stored as DOUBLE: exact up to here


class YoutubeConfig(SourceConfig):
    """YouTube Analytics (daily views, subscribers gained/lost) and the Data API (current subscriber count),
    with an OAuth 2.0 refresh token exchanged at `token_url`."""
    channel_id: str = "MINE"             # "MINE" = the channel the OAuth grant belongs to, or a "UC..." channel id
    analytics_url: str = "https://youtubeanalytics.googleapis.com/"
    data_api_url: str = "https://youtube.googleapis.com/"
    token_url: str = "https://oauth2.googleapis.com/token"
    client_id_env: str = "YOUTUBE_CLIENT_ID"
    client_secret_env: str = "YOUTUBE_CLIENT_SECRET"
    refresh_token_env: str = "YOUTUBE_REFRESH_TOKEN"
    schedule: str = "every 6 hours"
    chunk_days: int = Field(default=30, ge=1)
    late_days: int = Field(default=3, ge=0)   # YouTube revises the most recent days: re-ask them until older
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("channel_id")
    @classmethod
    def mine_or_channel_id(cls, value: str) -> str:
        if value != "MINE" and not re.fullmatch(r"UC[\w-]{22}", value):
            raise ValueError(f"'MINE' or a channel id such as 'UCxqx59koIGfGRRGeEm5qzjQ', got {value!r}")
        return value



def _count(value: Any, name: str) -> int:
    """A count: a JSON integer (Analytics) or a string of digits (the Data API's statistics)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise Malformed(f"{name} is not a count: {value!r:.80}")
    return value


def _days(first: date, last: date) -> Iterator[date]:
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


# -- answers -> rows ----------------------------------------------------------------------------------------
def snapshot_row(item: Any, taken_at: datetime) -> dict[str, Any]:
    """The raw_youtube_channel row of a channels.list item; `subscribers` is None when the count is hidden."""
    if not isinstance(item, dict) or not isinstance(item.get("statistics"), dict):
        raise Malformed("the channel has no statistics object")
    statistics = item["statistics"]
    hidden = statistics.get("hiddenSubscriberCount") is True
    def optional(key: str) -> int | None:
        return _count(statistics[key], f"statistics.{key}") if key in statistics else None

    return {"ts": taken_at, "channel_id": str(item.get("id", "")),
            "subscribers": None if hidden else _count(statistics.get("subscriberCount"), "statistics.subscriberCount"),
            "hidden": hidden, "views": optional("viewCount"), "videos": optional("videoCount")}


@dataclass
class DailyReport:
    """One reports.query answer: the readable days, the days whose rows could not be read, and those rows."""
    values: dict[date, dict[str, int]] = field(default_factory=dict)
    unreadable: set[date] = field(default_factory=set)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def last_day(self) -> date | None:
        return max([*self.values, *self.unreadable], default=None)


def parse_report(body: Any, first: date, last: date, origin: str) -> DailyReport:
    """Rows ordered like `columnHeaders` ([day, metric...]), read by header name. `Malformed` when the table
    itself is unusable; a bad row is rejected on its own."""
    if not isinstance(body, dict) or not isinstance(body.get("columnHeaders"), list):
        raise Malformed("the answer has no columnHeaders")
    names = [h.get("name") if isinstance(h, dict) else None for h in body["columnHeaders"]]
    needed = ["day", *REPORT_METRICS]
    if any(names.count(name) != 1 for name in needed):
        raise Malformed(f"columnHeaders {names} do not hold each of {needed} once")
    rows = body.get("rows", [])                  # left out when there is no data
    if not isinstance(rows, list):
        raise Malformed("rows is not a list")
    report = DailyReport()
    for row in rows:
        try:
            day, values = _row(row, names, first, last)
        except Malformed as exc:
            report.rejected.append(Rejected(f"YouTube Analytics row: {exc}", quarantine_text(row), origin))
            day = _day_of(row, names)
            if day and first <= day <= last:
                report.unreadable.add(day)      # reported, but not readable: neither a value nor a zero
            continue
        report.values[day] = values
    return report


def _row(row: Any, names: list, first: date, last: date) -> tuple[date, dict[str, int]]:
    if not isinstance(row, list) or len(row) != len(names):
        raise Malformed(f"a row has {len(row) if isinstance(row, list) else 'no'} cells for {len(names)} columns")
    day = _day_of(row, names)
    if day is None:
        raise Malformed(f"day is not a date: {row[names.index('day')]!r:.40}")
    if not first <= day <= last:
        raise Malformed(f"day {day} is outside the range asked for ({first}..{last})")
    cells = dict(zip(names, row))
    return day, {metric: _count(cells[metric], metric) for metric in REPORT_METRICS}


def _day_of(row: Any, names: list) -> date | None:
    try:
        return date.fromisoformat(row[names.index("day")])
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def observations(day: date, values: dict[str, int], fetched_at: datetime) -> list[dict[str, Any]]:
    return [{"ts": stamp(day), "metric": METRIC_NAMES[metric], "dims": "{}", "value": value,
             "fetched_at": fetched_at} for metric, value in values.items()]


# -- the collector ------------------------------------------------------------------------------------------
class YouTube:

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        settings: YoutubeConfig = ctx.settings
        api = YouTubeApi(settings, ctx.secret)
        snapshot, rejected = self._snapshot(api)
        today = api.server_time.astimezone(PACIFIC).date()
        final_until = today - timedelta(days=settings.late_days + 1)
        saved = parse_day((cursor or {}).get("final_through"))
        start = saved + timedelta(days=1) if saved else today - timedelta(days=settings.history_days)
        yield from self._read_days(api, settings, start, today - timedelta(days=1), final_until, saved,
                                   {"raw_youtube_channel": snapshot}, rejected)

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        """Re-read the days [start, end] (cursor left alone); the latest fetch of each day wins."""
        settings: YoutubeConfig = ctx.settings
        yield from self._read_days(YouTubeApi(settings, ctx.secret), settings, start, end, final_until=None,
                                   saved=None, first_records={}, first_rejected=[])

    def _snapshot(self, api: YouTubeApi) -> tuple[list[dict], list[Rejected]]:
        item = api.channel()
        channel = api.settings.channel_id
        if item is None:
            raise SourceError(f"YouTube lists no channel {channel!r} for these credentials at "
                              f"{api.settings.data_api_url}: check [sources.youtube] channel_id")
        origin = f"channels.list {channel}"
        try:
            row = snapshot_row(item, api.server_time.replace(microsecond=0))
        except Malformed as exc:
            return [], [Rejected(f"YouTube channel: {exc}", quarantine_text(item), origin)]
        if row["subscribers"] is None:
            # Not an error we can fix, but the subscriber history has no anchor without it: make it visible.
            return [row], [Rejected("YouTube channel hides its subscriber count (hiddenSubscriberCount): "
                                    "youtube.subscribers is not updated", quarantine_text(item), origin)]
        return [row], []

    def _read_days(self, api: YouTubeApi, settings: YoutubeConfig, start: date, end: date,
                   final_until: date | None, saved: date | None, first_records: dict, first_rejected: list
                   ) -> Iterator[Batch]:
        """Ask [start, end] oldest first in chunks; one batch per chunk. With `final_until` (collect), the
        cursor advances to the newest day that is both reported and final; a backfill leaves it alone."""
        final_through = saved
        unconfirmed_from = start         # the first day not yet known to be reported (or zero)
        unreadable: set[date] = set()
        records, rejected = first_records, first_rejected
        windows = chunks(start, end, settings.chunk_days)
        for index, (first, last) in enumerate(windows, 1):
            origin = f"reports.query {api.ids} {first}..{last}"
            body = api.daily_report(first, last)
            fetched_at = api.server_time.replace(microsecond=0)
            try:
                report = parse_report(body, first, last, origin)
            except Malformed as exc:
                # Nothing of this range is known; later chunks must not count its days as zero: stop here.
                rejected.append(Rejected(f"YouTube Analytics answer: {exc}", quarantine_text(body), origin))
                yield Batch(records=records, rejected=rejected, cursor=_cursor(final_through), label=origin)
                return
            rows = [r for day, values in sorted(report.values.items()) for r in observations(day, values, fetched_at)]
            unreadable |= report.unreadable
            if report.last_day:
                # The API has reported a later day, so every day before it without a row had no data.
                for day in _days(unconfirmed_from, report.last_day):
                    if day not in report.values and day not in unreadable:
                        rows += observations(day, dict.fromkeys(REPORT_METRICS, 0), fetched_at)
                unconfirmed_from = report.last_day + timedelta(days=1)
                if final_until:
                    newest_final = min(final_until, report.last_day)
                    final_through = max(final_through or newest_final, newest_final)
            yield Batch(records={**records, "raw_youtube": rows}, rejected=rejected + report.rejected,
                        cursor=_cursor(final_through), progress=(index, len(windows)), label=f"{first}..{last}")
            records, rejected = {}, []
        if not windows and (records or rejected):
            yield Batch(records=records, rejected=rejected, cursor=_cursor(final_through), label="snapshot")


def _cursor(final_through: date | None) -> dict | None:
    return {"final_through": final_through.isoformat()} if final_through else None


SOURCE = Source(
    name="youtube",
    settings=YoutubeConfig,
    collector=YouTube,
    tables=(
        observation_table("youtube"),
        # Channel snapshots (ts = the API's clock; subscribers NULL when the channel hides its count); the
        # daily report rows (views, subscribers gained and lost) are observations: every fetch kept, the latest counts.
        RawTable("raw_youtube_channel", "ts TIMESTAMPTZ, channel_id VARCHAR, subscribers BIGINT, hidden BOOLEAN, "
                 "views BIGINT, videos BIGINT", key=("channel_id", "ts")),
    ),
    metrics=(
        Metric("youtube.views", COUNTER, (), "Views of the channel's videos per day (YouTube Analytics)",
               sql=lambda cfg: observation_sql("raw_youtube", "youtube.views", COUNTER)),
        Metric("youtube.subscribers", GAUGE, (),
               "Channel subscribers: exact when polled, earlier days reconstructed from subscribers gained and lost",
               sql=lambda cfg: youtube_subscribers_sql()),
    ),
    recompute=ALL_HOURS,         # each exact subscriber count re-anchors the reconstructed history
    demo=Demo("youtube", secrets={"DEMO_YOUTUBE_CLIENT_ID": "demo-youtube.apps.googleusercontent.com",
                                  "DEMO_YOUTUBE_CLIENT_SECRET": "demo", "DEMO_YOUTUBE_REFRESH_TOKEN": "demo-refresh-token"}),
)
