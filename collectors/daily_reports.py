"""What the daily report sources (linkedin, meltwater, seo) share: which days to ask for, the API's clock,
and the time a daily value is stamped with (JSON fields are read with `collectors.fields`).

The cursor of such a source is the last day it has asked for. A run asks again for the `late_days` days up
to that one (report APIs fill recent days in late; the cube keeps the latest fetch), then for every day
after it up to the latest day the API can answer, in chunks of `chunk_days`, oldest first. The first run
starts `history_days` back instead. Each chunk becomes one batch, committed with the cursor it advances.

"Today" is the API's own: the `Date` header of its answer (RFC 9110 makes origin servers send it). So a
source never asks for days its API has not reached, and a simulator's clock drives the collector in
tests without touching the collector's code.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import requests

from collectors.http import http_date

UTC = timezone.utc
NOON = time(12, tzinfo=UTC)


def server_now(response: requests.Response) -> datetime:
    """The server's clock from the `Date` header of `response`; ours when it sends none."""
    return http_date(response.headers.get("Date")) or datetime.now(UTC).replace(microsecond=0)


def stamp(day: date) -> datetime:
    """A daily value's time: 12:00 UTC of its date, which falls on that date from UTC-11 to UTC+11."""
    return datetime.combine(day, NOON)


def chunks(first: date, last: date, chunk_days: int) -> list[tuple[date, date]]:
    """[first, last] as consecutive inclusive ranges of at most `chunk_days` days, oldest first."""
    ranges = []
    while first <= last:
        end = min(last, first + timedelta(days=chunk_days - 1))
        ranges.append((first, end))
        first = end + timedelta(days=1)
    return ranges


def days_to_ask(last_asked: date | None, latest: date, *, history_days: int, late_days: int, chunk_days: int,
                earliest: date | None = None) -> list[tuple[date, date]]:
    """The chunks a collecting run asks for (see the module docstring). `latest` is the newest day the API
    can answer; `earliest` the oldest it serves, if it has such a limit."""
    if last_asked is None:
        first = latest - timedelta(days=history_days - 1)
    else:
        first = last_asked + timedelta(days=1) - timedelta(days=late_days)
    if earliest is not None:
        first = max(first, earliest)
    return chunks(first, latest, chunk_days)


def parse_day(value: object) -> date | None:
    """A cursor's saved day; None for anything unreadable (an older layout, a hand edit)."""
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
