"""The shapes of the API's JSON answers, for the OpenAPI document (`/openapi.json`, `/docs`) and for FastAPI to
check every answer against: a route that drifts from its declared shape fails its tests (and the schemathesis
run) instead of surprising a client.

Models describe answers only; requests are validated where they are read (`api/data.py: SqlQuery`). Extra
keys are allowed where an answer may grow (a new source in `/health`), never where the contract fixes them.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

Number = int | float


class Error(BaseModel):
    """Every error answer (400, 401, 404, 413, 503): one sentence."""
    error: str = Field(examples=["from must be a date as YYYY-MM-DD, got 'yesterday'"])


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Bad input, or a query refused: one sentence saying why"},
    401: {"model": Error, "description": "Missing or wrong bearer token"},
    404: {"model": Error, "description": "No such path, metric or table"},
    503: {"model": Error, "description": "The warehouse cannot be read right now"},
}


# -- health and catalog ---------------------------------------------------------------------------------------
class SourceHealth(BaseModel):
    last_success_at: str | None
    consecutive_failures: int
    next_retry_at: str | None = None       # a failed source is tried again then (with backoff)


class Health(BaseModel):
    status: Literal["ok"]
    timezone: str
    failing_sources: list[str]
    sources: dict[str, SourceHealth]


class MetricInfo(BaseModel):
    name: str
    kind: Literal["counter", "gauge", "distinct"]
    source: str
    dims: list[str]
    description: str


class MetricCatalog(BaseModel):
    metrics: list[MetricInfo]


# -- series -----------------------------------------------------------------------------------------------------
class Point(BaseModel):
    start: str = Field(description="The bucket's local start, YYYY-MM-DD or YYYY-MM-DDTHH:MM for hours")
    offset: str | None = Field(None, description="Only on the two hours a DST end repeats: their UTC offset")
    period: str
    value: Number | None = Field(description="null for a gauge before its first observation")
    previous: Number | None = Field(None, description="With compare=: the compared bucket's value")
    complete: bool


class DimSeries(BaseModel):
    dims: dict[str, str | None]
    points: list[Point]


class MetricSeries(BaseModel):
    """`points` for one series, or `series` with `by=` (one entry per combination of the dimensions)."""
    metric: str
    grain: str
    kind: str
    timezone: str
    from_: str = Field(alias="from")
    to: str
    compare: str | None = None
    points: list[Point] | None = None
    series: list[DimSeries] | None = None
    model_config = ConfigDict(populate_by_name=True)


# -- the fixed summaries of the contract ------------------------------------------------------------------------
class Pipeline(BaseModel):
    start: str
    end: str
    rawleads: Number | None
    mql: Number | None
    inquiries: Number | None
    opp: Number | None


class WebTraffic(BaseModel):
    start: str
    end: str
    sessions: Number | None
    newVisitors: Number | None
    returningVisitors: Number | None
    blogViewers: Number | None


class YouTube(BaseModel):
    views: Number | None
    subscribers: Number | None


class SocialSubscribers(BaseModel):
    youtube: YouTube
    linkedin: Number | None
    twitter: Number | None


class ShareOfVoice(RootModel[dict[str, Number | None]]):
    """Share of voice in percent by brand, e.g. `{"cask": 25.0, "informatica": 25.0}`."""


class VersionDownloads(BaseModel):
    version: str | None
    dl: int | None


class Downloads(BaseModel):
    downloads: list[VersionDownloads]


class DroppedHits(BaseModel):
    day: str
    reason: str
    hits: int


class Dropped(BaseModel):
    dropped: list[DroppedHits]


class WebhookAccepted(BaseModel):
    ok: bool
    duplicate: bool | None = None
    pong: bool | None = None


# -- notifications (api/notify.py) --------------------------------------------------------------------------
class Subscription(BaseModel):
    address: str
    channel: str
    topic: str
    model_config = ConfigDict(extra="allow")     # created_at, unsubscribed_at in listings


class Subscriptions(BaseModel):
    subscriptions: list[Subscription]


class SubscriptionAdded(BaseModel):
    subscription: Subscription


class SubscriptionRemoved(BaseModel):
    unsubscribed: Subscription
    already: bool


class OutboxMessage(BaseModel):
    id: int
    channel: str
    recipient: str
    topic: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    created_at: str | None
    sent_at: str | None
    provider_message_id: str | None


class Outbox(BaseModel):
    messages: list[OutboxMessage]


class UnsubscribeLink(BaseModel):
    address: str
    channel: str
    topic: str
    unsubscribe: str


class Unsubscribed(BaseModel):
    unsubscribed: bool
    already: bool
    address: str
    channel: str
    topic: str


# -- read-only SQL (api/data.py) ----------------------------------------------------------------------------
class Column(BaseModel):
    name: str
    type: str = Field(description="DuckDB's type name, e.g. BIGINT, VARCHAR, TIMESTAMP WITH TIME ZONE")


class SqlAnswer(BaseModel):
    columns: list[Column]
    rows: list[list[Any]] = Field(description="Times as ISO 8601 text, decimals as numbers, BLOBs as hex")
    truncated: bool = Field(description="More rows than `limit` existed")
    elapsed_ms: int


class QueryableTable(BaseModel):
    name: str
    kind: Literal["raw", "facts", "rollups", "quarantine"]
    time_column: str = Field(description="What ?from=&to= of /export/tables filters on")
    columns: list[Column]


class QueryableTables(BaseModel):
    tables: list[QueryableTable]


def media(*types: str, description: str) -> dict[str, Any]:
    """An OpenAPI 200 entry for a download in one of several media types."""
    return {"description": description,
            "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in types}}


# -- alert rules ----------------------------------------------------------------------------------------------
class AlertRule(BaseModel):
    """A rule as configured ([[alerts.rules]] keys) with where it comes from and its state."""
    model_config = ConfigDict(extra="allow")
    name: str
    metric: str
    grain: str
    origin: Literal["config", "api"] | None = None
    firing: bool | None = None
    last_bucket: str | None = None


class AlertRules(BaseModel):
    rules: list[AlertRule]


class AlertRuleStored(BaseModel):
    rule: dict[str, Any]


class AlertRuleDeleted(BaseModel):
    deleted: str


class AlertEvents(BaseModel):
    events: list[dict[str, Any]]
