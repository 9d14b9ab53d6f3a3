"""`linkedin`: the follower count of one organization page and its daily follower gains.

Two reads of LinkedIn's Marketing API (Rest.li 2.0: `LinkedIn-Version` and `X-Restli-Protocol-Version`
headers, structured query parameters sent unencoded):

- the exact count now, `GET /rest/networkSizes/{urn}?edgeType=COMPANY_FOLLOWED_BY_MEMBER`
  -> `raw_linkedin_followers` (ts = the API's clock);
- daily gains, `GET /rest/organizationalEntityFollowerStatistics?q=organizationalEntity&...&timeIntervals=
  (timeRange:(start:MS,end:MS),timeGranularityType:DAY)` -> `raw_linkedin_follower_gains` (ts = 12:00 UTC
  of the UTC day; every fetch is kept and the latest one counts, so re-asked late days replace earlier ones).

`linkedin.followers` (warehouse/awareness_sql.py) is the latest exact count, and for each earlier day that
count minus the gains of the days after it. The count is stored in the run's last batch, after the gains it
anchors: while a catch-up is under way, the history stays anchored on the previous count.

Cursor: {"last_day": "YYYY-MM-DD"}, the last UTC day asked for (see collectors/daily_reports.py); LinkedIn
serves complete days only, so the newest day asked is yesterday. LinkedIn keeps daily statistics for the
last 12 months only: a first run and a backfill start no earlier than that, whatever `history_days` says.
"""
from __future__ import annotations

import re
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from urllib.parse import quote, urljoin, urlsplit

import requests

from pydantic import Field, field_validator
from collectors import http
from collectors.base import Batch, Context, Demo, Malformed, Rejected, Source, SourceError, quarantine_text
from collectors.daily_reports import chunks, days_to_ask, parse_day, server_now, stamp
from collectors.fields import count, field
from config import SourceConfig
from warehouse.awareness_sql import linkedin_followers_sql
from warehouse.catalog import ALL_HOURS, GAUGE, Metric, RawTable
from warehouse.metrics import AFFECTED

log = logging.getLogger("caskalytics.collectors.linkedin")
UTC = timezone.utc
DAY_MS = 86_400_000
RETENTION_DAYS = 364          # LinkedIn answers time-bound statistics for the last 12 months; keep a day's margin


class LinkedinConfig(SourceConfig):
    """An organization page's follower count (networkSizes) and its daily follower gains
    (organizationalEntityFollowerStatistics), read with the access token of a page ADMINISTRATOR (scope
    rw_organization_admin). LinkedIn serves daily statistics for the last 12 months only."""
    organization_id: str                        # the number in urn:li:organization:<id>
    api_url: str = "https://api.linkedin.com"
    linkedin_version: str = "202610"            # the LinkedIn-Version header (YYYYMM); LinkedIn sunsets old ones
    access_token_env: str = "LINKEDIN_ACCESS_TOKEN"
    schedule: str = "every 6 hours"
    chunk_days: int = Field(default=30, ge=1)
    late_days: int = Field(default=3, ge=0)     # recent days LinkedIn may still fill in: re-asked every run

    @field_validator("organization_id")
    @classmethod
    def numeric_id(cls, value: str) -> str:
        value = value.removeprefix("urn:li:organization:")
        if not value.isdigit():
            raise ValueError(f"the organization's numeric id (from urn:li:organization:<id>), got {value!r}")
        return value

    @field_validator("linkedin_version")
    @classmethod
    def year_month(cls, value: str) -> str:
        if not re.fullmatch(r"20\d\d(0[1-9]|1[0-2])", value):
            raise ValueError(f"a LinkedIn API version as YYYYMM such as '202511', got {value!r}")
        return value


class LinkedInApi:
    """The two reads, over one session carrying the headers LinkedIn requires."""

    def __init__(self, ctx: Context):
        settings: LinkedinConfig = ctx.settings
        self.settings = settings
        self.urn = f"urn:li:organization:{settings.organization_id}"
        self.base = settings.api_url.rstrip("/")
        self.credential_hint = (f"[sources.linkedin] access_token_env (${settings.access_token_env}): LinkedIn "
                                f"access tokens last 60 days; it must be a current token of an ADMINISTRATOR of "
                                f"organization {settings.organization_id} with scope rw_organization_admin")
        token = ctx.secret(settings.access_token_env)
        if not token:
            raise SourceError(f"no LinkedIn access token: set ${settings.access_token_env}, the variable named by "
                              f"[sources.linkedin] access_token_env")
        self.session = http.new_session({"Authorization": f"Bearer {token}",
                                         "LinkedIn-Version": settings.linkedin_version,
                                         "X-Restli-Protocol-Version": "2.0.0"})

    def __enter__(self) -> LinkedInApi:
        return self

    def __exit__(self, *_) -> None:
        self.session.close()

    def _get(self, url: str, what: str) -> tuple[requests.Response, object]:
        try:
            response = http.get(self.session, url, what=what, credential_hint=self.credential_hint)
        except requests.HTTPError as exc:
            raise self._operator_error(exc.response, what) from None
        return response, http.decode_json(response, what)

    def _operator_error(self, response: requests.Response, what: str) -> SourceError:
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        detail = " ".join(str(body[k]) for k in ("code", "message") if body.get(k))
        message = f"{what}: HTTP {response.status_code} {detail}".strip()
        if response.status_code == 426 or body.get("code") == "VERSION_MISSING":
            return SourceError(f"{message}: set [sources.linkedin] linkedin_version to a version LinkedIn still "
                               f"serves (YYYYMM; each is served for about a year)")
        if response.status_code == 404:
            return SourceError(f"{message}: check [sources.linkedin] organization_id")
        return SourceError(message)

    def follower_count(self) -> dict:
        """The exact count now, as a raw_linkedin_followers row stamped with the API's clock."""
        url = f"{self.base}/rest/networkSizes/{quote(self.urn, safe='')}?edgeType=COMPANY_FOLLOWED_BY_MEMBER"
        response, body = self._get(url, "LinkedIn GET networkSizes")
        try:
            followers = count(body, "firstDegreeSize")
        except Malformed as exc:
            # Without the count there is nothing to anchor on; a changed answer is for the operator to see.
            raise SourceError(f"LinkedIn networkSizes answered {quarantine_text(body)[:200]}: {exc}") from None
        return {"ts": server_now(response), "organization": self.urn, "followers": followers}

    def daily_gains(self, first: date, last: date, fetched_at: datetime) -> tuple[list[dict], list[Rejected]]:
        """Gains of the UTC days [first, last]; elements that are not one of those days are rejected."""
        start_ms = int(datetime.combine(first, datetime.min.time(), UTC).timestamp() * 1000)
        end_ms = int(datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC).timestamp() * 1000)
        # Rest.li 2.0 wants the structure's parentheses, colons and commas unencoded, and the URN encoded.
        url: str | None = (f"{self.base}/rest/organizationalEntityFollowerStatistics?q=organizationalEntity"
                           f"&organizationalEntity={quote(self.urn, safe='')}"
                           f"&timeIntervals=(timeRange:(start:{start_ms},end:{end_ms}),timeGranularityType:DAY)")
        rows, rejected, visited = [], [], set()
        while url and url not in visited:          # a paging loop must not page forever
            visited.add(url)
            try:
                _, body = self._get(url, "LinkedIn GET organizationalEntityFollowerStatistics")
                elements, next_href = field(body, "elements"), _next_link(body)
                if not isinstance(elements, list):
                    raise Malformed("elements is not a list")
            except (http.BadResponse, Malformed) as exc:
                rejected.append(Rejected(f"follower statistics page: {exc}", "", url))
                raise PageUnusable(rows, rejected) from None
            for element in elements:
                try:
                    row = gain_row(element, self.urn, fetched_at)
                    if not first <= row["ts"].date() <= last:
                        raise Malformed(f"timeRange {row['ts'].date()} is outside the asked {first}..{last}")
                    rows.append(row)
                except Malformed as exc:
                    rejected.append(Rejected(f"follower statistics element: {exc}", quarantine_text(element), url))
            url = urljoin(self.base + "/", next_href) if next_href else None
            if url and urlsplit(url)[:2] != urlsplit(self.base)[:2]:
                rejected.append(Rejected("follower statistics page: the next-page link leaves the API host", url, url))
                url = None                          # following it would send the token elsewhere
        return rows, rejected


class PageUnusable(Exception):
    """A statistics page was not the JSON LinkedIn documents: what was read before it, and the reject."""

    def __init__(self, rows: list[dict], rejected: list[Rejected]):
        super().__init__(rejected[-1].reason)
        self.rows, self.rejected = rows, rejected


def _next_link(body: dict) -> str | None:
    """The href of Rest.li's paging link rel="next", if the answer has one."""
    paging = body.get("paging")
    links = paging.get("links") if isinstance(paging, dict) else None
    return next((link["href"] for link in (links if isinstance(links, list) else [])
                 if isinstance(link, dict) and link.get("rel") == "next" and isinstance(link.get("href"), str)), None)


def gain_row(element: object, urn: str, fetched_at: datetime) -> dict:
    """The raw_linkedin_follower_gains row of one time-bound element; `Malformed` when it is unusable."""
    start, end = count(element, "timeRange", "start"), count(element, "timeRange", "end")
    if start % DAY_MS or end - start != DAY_MS:
        raise Malformed(f"timeRange {start}..{end} is not one UTC day")
    entity = element.get("organizationalEntity")
    if entity is not None and entity != urn:
        raise Malformed(f"organizationalEntity is {entity!r:.80}, not {urn}")
    day = datetime.fromtimestamp(start / 1000, UTC).date()
    return {"ts": stamp(day), "organization": urn,
            "organic_gain": count(element, "followerGains", "organicFollowerGain"),
            "paid_gain": count(element, "followerGains", "paidFollowerGain"), "fetched_at": fetched_at}


def oldest_served(today: date) -> date:
    return today - timedelta(days=RETENTION_DAYS)


class LinkedIn:

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        settings: LinkedinConfig = ctx.settings
        last_asked = parse_day((cursor or {}).get("last_day"))
        with LinkedInApi(ctx) as api:
            follower_count = api.follower_count()
            today = follower_count["ts"].date()
            plan = days_to_ask(last_asked, today - timedelta(days=1), history_days=settings.history_days,
                               late_days=settings.late_days, chunk_days=settings.chunk_days,
                               earliest=oldest_served(today))
            if not plan:          # the API's clock is behind the cursor: store the count, ask nothing
                yield Batch({"raw_linkedin_followers": [follower_count]}, cursor=None, label="follower count")
                return
            for index, (first, last) in enumerate(plan, 1):
                try:
                    gains, rejected = api.daily_gains(first, last, datetime.now(UTC))
                except PageUnusable as unusable:
                    # Keep what was read, leave the cursor, and let the next run ask again from here.
                    yield Batch({"raw_linkedin_follower_gains": unusable.rows}, cursor=None,
                                rejected=unusable.rejected, label=f"{first}..{last} (stopped: unusable page)")
                    return
                last_asked = max(last_asked or last, last)
                records = {"raw_linkedin_follower_gains": gains}
                if index == len(plan):
                    records["raw_linkedin_followers"] = [follower_count]
                yield Batch(records, cursor={"last_day": last_asked.isoformat()}, rejected=rejected,
                            progress=(index, len(plan)), label=f"{first}..{last}")

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        """Gains of [start, end] (UTC days) as far as LinkedIn still serves them; the cursor stays."""
        settings: LinkedinConfig = ctx.settings
        with LinkedInApi(ctx) as api:
            today = api.follower_count()["ts"].date()
            first, last = max(start, oldest_served(today)), min(end, today - timedelta(days=1))
            if first > start:
                log.warning("LinkedIn serves daily statistics from %s only; %s..%s cannot be backfilled",
                            first, start, first - timedelta(days=1))
            plan = chunks(first, last, settings.chunk_days)
            for index, (chunk_first, chunk_last) in enumerate(plan, 1):
                try:
                    gains, rejected = api.daily_gains(chunk_first, chunk_last, datetime.now(UTC))
                except PageUnusable as unusable:
                    gains, rejected = unusable.rows, unusable.rejected
                yield Batch({"raw_linkedin_follower_gains": gains}, cursor=None, rejected=rejected,
                            progress=(index, len(plan)), label=f"{chunk_first}..{chunk_last}")


SOURCE = Source(
    name="linkedin",
    settings=LinkedinConfig,
    collector=LinkedIn,
    tables=(
        # Exact follower counts (ts = the API's clock) and daily gains (ts = 12:00 UTC of the day; every fetch
        # kept, the latest counts).
        RawTable("raw_linkedin_followers", "ts TIMESTAMPTZ, organization VARCHAR, followers BIGINT",
                 key=("organization", "ts")),
        RawTable("raw_linkedin_follower_gains", "ts TIMESTAMPTZ, organization VARCHAR, organic_gain BIGINT, "
                 "paid_gain BIGINT, fetched_at TIMESTAMPTZ", key=("organization", "ts", "fetched_at")),
    ),
    metrics=(
        Metric("linkedin.followers", GAUGE, (),
               "Followers of the LinkedIn page: exact when polled, earlier days reconstructed from daily gains",
               sql=lambda cfg: linkedin_followers_sql(cfg, AFFECTED)),
    ),
    recompute=ALL_HOURS,         # each exact count re-anchors the reconstructed history
    demo=Demo("linkedin", secrets={"DEMO_LINKEDIN_ACCESS_TOKEN": "demo-linkedin-token"}),
)
