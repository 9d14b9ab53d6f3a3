"""`meltwater`: daily mention counts of one Meltwater saved search per brand.

`GET /v3/searches` first: it checks the key, names the saved searches the account has, and gives the API's
clock. Then per brand, `GET /v3/analytics/{searchId}?start=<day>T00:00:00&end=<day after>T00:00:00&tz=<zone>`
for each chunk of days; the answer's `time_series` holds one entry per local day. Days are those of the
reporting time zone ([warehouse] timezone), so a day's mentions are the ones the dashboard's day shows.

Rows go to `raw_meltwater` (warehouse.schema.observation_table): metric `meltwater.mentions`, dims
{"brand": ...}, ts 12:00 UTC of the day, one row per fetch. Meltwater keeps indexing a day's documents for
a day or two, so every run asks again for the `late_days` days up to the last one asked (today is asked
too, and grows through the day); the cube uses each day's latest fetch.

Cursor: {"brands": {"<brand>": "YYYY-MM-DD"}}, the last day asked per brand, so a brand added to the
config gets its own first-run history. A brand whose saved search the account does not have is reported
(SourceError naming [sources.meltwater] brands) after the others were collected.
"""
from __future__ import annotations

import re
from typing import Any

import json
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote

import requests

from pydantic import Field, field_validator
from collectors import http
from collectors.base import Batch, Context, Demo, Malformed, Rejected, Source, SourceError, quarantine_text
from collectors.daily_reports import chunks, days_to_ask, parse_day, server_now, stamp
from collectors.fields import count, field
from config import SourceConfig
from warehouse.catalog import COUNTER, Metric, observation_table
from warehouse.metrics import observation_sql
from warehouse import timegrid

log = logging.getLogger("caskalytics.collectors.meltwater")
UTC = timezone.utc
METRIC = "meltwater.mentions"


class MeltwaterConfig(SourceConfig):
    """Daily mention counts of one Meltwater saved search per brand (GET /v3/analytics/{searchId})."""
    brands: dict[str, str]     # brand -> saved search id, or a list of {brand = ..., search_id = ...} tables
    api_url: str = "https://api.meltwater.com"
    api_key_env: str = "MELTWATER_API_KEY"
    schedule: str = "every 1 hour"
    chunk_days: int = Field(default=30, ge=1)
    late_days: int = Field(default=3, ge=0)     # Meltwater keeps indexing a day's documents for a while

    @field_validator("brands", mode="before")
    @classmethod
    def mapping_or_tables(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not all(isinstance(t, dict) and set(t) == {"brand", "search_id"} for t in value):
                raise ValueError("a table {cask = \"<search id>\", ...} or a list of {brand, search_id} tables")
            return {str(t["brand"]): str(t["search_id"]) for t in value}
        return value

    @field_validator("brands")
    @classmethod
    def brand_names_and_ids(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one brand and its saved search id")
        for brand, search_id in value.items():
            if not re.fullmatch(r"[\w.-]+", brand) or not search_id.strip().isdigit():
                raise ValueError(f"brand = \"<numeric saved search id>\", got {brand} = {search_id!r}")
        return {brand: search_id.strip() for brand, search_id in value.items()}


class MeltwaterApi:
    def __init__(self, ctx: Context):
        settings: MeltwaterConfig = ctx.settings
        self.base = settings.api_url.rstrip("/")
        self.zone = ctx.config.warehouse.timezone
        self.credential_hint = f"[sources.meltwater] api_key_env (${settings.api_key_env})"
        key = ctx.secret(settings.api_key_env)
        if not key:
            raise SourceError(f"no Meltwater API key: set ${settings.api_key_env}, the variable named by "
                              f"[sources.meltwater] api_key_env")
        self.session = http.new_session({"apikey": key, "Accept": "application/json"})

    def __enter__(self) -> MeltwaterApi:
        return self

    def __exit__(self, *_) -> None:
        self.session.close()

    def saved_searches(self) -> tuple[set[str], datetime]:
        """Ids of the account's saved searches, and the API's clock."""
        what = "Meltwater GET /v3/searches"
        response = http.get(self.session, f"{self.base}/v3/searches", what=what, credential_hint=self.credential_hint)
        body = http.decode_json(response, what)
        try:
            searches = field(body, "searches")
            ids = {str(field(s, "id")) for s in searches}
        except (Malformed, TypeError) as exc:
            raise SourceError(f"{what} answered {quarantine_text(body)[:200]}: {exc}") from None
        return ids, server_now(response)

    def mentions(self, brand: str, search_id: str, first: date, last: date,
                 fetched_at: datetime) -> tuple[list[dict], list[Rejected]]:
        """Mentions of the local days [first, last]; raises `SearchGone` for a 404."""
        url = f"{self.base}/v3/analytics/{quote(search_id, safe='')}"
        params = {"start": f"{first.isoformat()}T00:00:00", "end": f"{(last + timedelta(days=1)).isoformat()}T00:00:00",
                  "tz": self.zone}
        what = f"Meltwater GET /v3/analytics/{search_id}"
        try:
            response = http.get(self.session, url, params, what=what, credential_hint=self.credential_hint)
            body = http.decode_json(response, what)
            days = field(body, "time_series")
            if not isinstance(days, list):
                raise Malformed("time_series is not a list")
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise SearchGone(brand) from None
            raise SourceError(f"{what}: HTTP {exc.response.status_code} {_message(exc.response)}") from None
        except (http.BadResponse, Malformed) as exc:
            raise UnusableAnswer(Rejected(f"analytics summary: {exc}", "", f"{url}?{_query(params)}")) from None
        rows, rejected = [], []
        dims = json.dumps({"brand": brand}, separators=(",", ":"))
        for entry in days:
            try:
                day, mentions = _day(entry), count(entry, "document_count")
            except Malformed as exc:
                rejected.append(Rejected(f"analytics time_series day: {exc}", quarantine_text(entry), url))
                continue
            if first <= day <= last:        # an answer may also hold the day `end` falls on: not asked
                rows.append({"ts": stamp(day), "metric": METRIC, "dims": dims, "value": mentions,
                             "fetched_at": fetched_at})
        return rows, rejected


def _day(entry: object) -> date:
    value = field(entry, "date")
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise Malformed(f"date is not YYYY-MM-DD: {value!r:.80}") from None


class SearchGone(Exception):
    """The account has no saved search with the configured id (any more)."""


class UnusableAnswer(Exception):
    """An analytics answer that is not the documented JSON: quarantined, and the brand's run stops there."""

    def __init__(self, rejected: Rejected):
        super().__init__(rejected.reason)
        self.rejected = rejected


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('message', '')} {json.dumps(body.get('errors') or {})}"[:300]
    except (ValueError, AttributeError):
        return response.reason or ""


def _query(params: dict) -> str:
    return "&".join(f"{k}={v}" for k, v in params.items())


class Meltwater:

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        settings: MeltwaterConfig = ctx.settings
        saved = (cursor or {}).get("brands")
        marks = {brand: day for brand, value in (saved if isinstance(saved, dict) else {}).items()
                 if (day := parse_day(value))}
        with MeltwaterApi(ctx) as api:
            existing, now = api.saved_searches()
            today = timegrid.today(ctx.config.warehouse.timezone, now)
            missing = [brand for brand, search_id in settings.brands.items() if search_id not in existing]
            plans = {brand: days_to_ask(marks.get(brand), today, history_days=settings.history_days,
                                        late_days=settings.late_days, chunk_days=settings.chunk_days)
                     for brand in settings.brands if brand not in missing}
            total, done = sum(len(p) for p in plans.values()), 0
            for brand, plan in plans.items():
                for first, last in plan:
                    done += 1
                    try:
                        rows, rejected = api.mentions(brand, settings.brands[brand], first, last, datetime.now(UTC))
                    except SearchGone:
                        missing.append(brand)
                        break
                    except UnusableAnswer as unusable:      # leave the cursor: the next run asks again
                        yield Batch({}, cursor=None, rejected=[unusable.rejected], label=f"{brand} {first}..{last}")
                        break
                    marks[brand] = max(marks.get(brand, last), last)
                    cursor = {"brands": {b: d.isoformat() for b, d in marks.items()}}
                    yield Batch({"raw_meltwater": rows}, cursor=cursor, rejected=rejected, progress=(done, total),
                                label=f"{brand} {first}..{last}")
        if missing:
            raise SourceError(_missing_message(missing, settings))

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        """Every brand's mentions of [start, end] (reporting time zone); the cursor stays."""
        settings: MeltwaterConfig = ctx.settings
        with MeltwaterApi(ctx) as api:
            existing, now = api.saved_searches()
            today = timegrid.today(ctx.config.warehouse.timezone, now)
            missing = [brand for brand, search_id in settings.brands.items() if search_id not in existing]
            plan = [(brand, first, last) for brand in settings.brands if brand not in missing
                    for first, last in chunks(start, min(end, today), settings.chunk_days)]
            for index, (brand, first, last) in enumerate(plan, 1):
                if brand in missing:
                    continue
                try:
                    rows, rejected = api.mentions(brand, settings.brands[brand], first, last, datetime.now(UTC))
                except SearchGone:
                    missing.append(brand)
                    continue
                except UnusableAnswer as unusable:
                    rows, rejected = [], [unusable.rejected]
                yield Batch({"raw_meltwater": rows}, cursor=None, rejected=rejected, progress=(index, len(plan)),
                            label=f"{brand} {first}..{last}")
        if missing:
            raise SourceError(_missing_message(missing, settings))


def _missing_message(brands: list[str], settings: MeltwaterConfig) -> str:
    named = ", ".join(f"{b} ({settings.brands[b]})" for b in brands)
    return (f"Meltwater has no saved search {named} for this API key: check [sources.meltwater] brands "
            f"(brand = \"<saved search id>\"; GET /v3/searches lists the account's searches)")


SOURCE = Source(
    name="meltwater",
    settings=MeltwaterConfig,
    collector=Meltwater,
    tables=(
        observation_table("meltwater"),
    ),
    metrics=(
        Metric("meltwater.mentions", COUNTER, ("brand",), "Mentions found by the brand's Meltwater search",
               sql=lambda cfg: observation_sql("raw_meltwater", "meltwater.mentions", COUNTER)),
    ),
    demo=Demo("meltwater", secrets={"DEMO_MELTWATER_API_KEY": "demo-meltwater-key"}),
)
