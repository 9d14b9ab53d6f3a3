"""`seo`: keyword rankings of the configured brands' domains and their competitors, from a rank tracker.

A provider (collectors/seo_providers.py: the JSON API or CSV files) yields ranking items; this module checks
each one and stores it in `raw_seo` as (date, keyword, domain, position, search_volume), ts = 12:00 UTC of
the date, keyed by (ts, keyword, domain, provider): a ranking is kept as first reported. Every domain the
tracker reports is kept, not just the brands', so a competitor added to [sources.seo] brands later has its
history already.

`seo.share_of_voice` is computed from these rows by the cube (warehouse/awareness_sql.py): a brand's share
of the configured brands' estimated clicks, clicks = search volume x click-through rate of the position.
Computing it from stored ranks, rather than storing shares, means a ranking that arrives late (another CSV
for the same day) recomputes the day from all its rankings, and every domain's ranks stay at hand for a
later change of brands.

Item checks: date YYYY-MM-DD (not in the future); keyword non-empty (stored lower-case, spaces collapsed);
domain a host name (a URL is reduced to its host; "www." dropped; lower-case); position a whole number
1..1000 or empty for "not ranking"; search_volume a whole number >= 0. Anything else is quarantined with
the reason and its origin (API page or "file.csv:line").
"""
from __future__ import annotations
from typing import Literal

import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from collectors.base import Batch, Context, Demo, Malformed, Rejected, Source, quarantine_text
from collectors.daily_reports import stamp
from collectors.seo_providers import Chunk, provider_for
from config import SourceConfig
from warehouse.awareness_sql import seo_share_of_voice_sql
from warehouse.catalog import GAUGE, Metric, RawTable
from warehouse.metrics import AFFECTED

UTC = timezone.utc
HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")
MAX_POSITION = 1000


class SeoConfig(SourceConfig):
    """Keyword rankings from a rank tracker through one provider: "api" (the JSON API described in
    collectors/seo_providers.py) or "csv" (files dropped into `import_dir`, each imported once)."""
    provider: Literal["api", "csv"] = "api"
    brands: dict[str, list[str]]                # brand -> its domains, e.g. cask = ["cask.co", "cdap.io"]
    api_url: str = Field(default="", validate_default=True)
    api_key_env: str = "SEO_API_KEY"
    project: str = Field(default="", validate_default=True)
    import_dir: str = Field(default="", validate_default=True)    # relative paths: to the config file
    schedule: str = "every 6 hours"
    chunk_days: int = Field(default=14, ge=1)
    late_days: int = Field(default=1, ge=0)     # the last day a tracker reported may still be growing

    @field_validator("brands")
    @classmethod
    def brand_domains(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("at least one brand and its domains")
        cleaned = {}
        for brand, domains in value.items():
            cleaned[brand] = [d.strip().lower().removeprefix("www.") for d in domains]
            if not re.fullmatch(r"[\w.-]+", brand) or not domains or not all(
                    re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", d) for d in cleaned[brand]):
                raise ValueError(f"brand = [\"domain.com\", ...], got {brand} = {domains!r}")
        return cleaned

    @field_validator("api_url", "project")
    @classmethod
    def needed_by_the_api_provider(cls, value: str, info) -> str:
        if info.data.get("provider") == "api" and not value.strip():
            raise ValueError(f"a value when provider = \"api\" ({info.field_name} of your rank tracker's API)")
        return value.strip()

    @field_validator("import_dir")
    @classmethod
    def needed_by_the_csv_provider(cls, value: str, info) -> str:
        if info.data.get("provider") == "csv" and not value.strip():
            raise ValueError("the folder CSV files are dropped into, when provider = \"csv\"")
        return value.strip()


def _whole_number(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, str):
        text = value.strip()
        value = int(text) if re.fullmatch(r"\d+", text) else text
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Malformed(f"{name} is not a whole number from {low} to {high}: {value!r:.80}")
    return value


def normalize_domain(value: object) -> str:
    """"https://www.Cask.co/blog" -> "cask.co"; `Malformed` when no host name is left."""
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"domain is missing: {value!r:.80}")
    text = value.strip().lower()
    if not HOST.fullmatch(text):          # a URL or host:port rather than a bare host name
        text = urlsplit(text if "//" in text else "//" + text).hostname or ""
    host = text.removeprefix("www.").rstrip(".")
    if not HOST.fullmatch(host):
        raise Malformed(f"domain is not a host name: {value!r:.80}")
    return host


def rank_row(item: object, provider: str, origin: str, latest_allowed: date) -> dict:
    """The raw_seo row for one ranking item; `Malformed` naming what is wrong."""
    if not isinstance(item, dict):
        raise Malformed("not an object with date, keyword, domain, position, search_volume")
    if item.get("_problem"):
        raise Malformed(item["_problem"])
    try:
        day = date.fromisoformat(str(item.get("date") or "").strip())
    except ValueError:
        raise Malformed(f"date is not YYYY-MM-DD: {item.get('date')!r:.80}") from None
    if not date(2000, 1, 1) <= day <= latest_allowed:
        raise Malformed(f"date {day} is not plausible (after {latest_allowed} or before 2000)")
    keyword = " ".join(str(item.get("keyword") or "").split()).lower()
    if not keyword or len(keyword) > 500:
        raise Malformed(f"keyword is empty or longer than 500 characters: {item.get('keyword')!r:.80}")
    position = item.get("position")
    position = None if position is None or (isinstance(position, str) and not position.strip()) else \
        _whole_number(position, "position", 1, MAX_POSITION)
    volume = item.get("search_volume")
    if volume is None or (isinstance(volume, str) and not volume.strip()):
        raise Malformed("search_volume is missing")
    return {"ts": stamp(day), "date": day, "keyword": keyword, "domain": normalize_domain(item.get("domain")),
            "position": position, "search_volume": _whole_number(volume, "search_volume", 0, 10**12),
            "provider": provider, "origin": origin}


def _batch(chunk: Chunk, provider: str) -> Batch:
    latest_allowed = datetime.now(UTC).date() + timedelta(days=1)
    rows, rejected = [], list(chunk.rejected)
    for item, origin in chunk.items:
        try:
            rows.append(rank_row(item, provider, origin, latest_allowed))
        except Malformed as exc:
            rejected.append(Rejected(f"ranking: {exc}", quarantine_text(item), origin))
    records = {"raw_seo": rows}
    if chunk.files:
        records["seo_files_read"] = chunk.files
    return Batch(records, cursor=chunk.cursor, rejected=rejected, progress=chunk.progress, label=chunk.label)


class Seo:

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        provider = provider_for(ctx)
        try:
            for chunk in provider.read(ctx, cursor):
                yield _batch(chunk, provider.name)
        finally:
            provider.close()

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        provider = provider_for(ctx)
        try:
            for chunk in provider.read_range(ctx, start, end):
                yield _batch(chunk, provider.name)
        finally:
            provider.close()


SOURCE = Source(
    name="seo",
    settings=SeoConfig,
    collector=Seo,
    tables=(
        # Keyword rankings (ts = 12:00 UTC of `date`); a (day, keyword, domain) is kept as first reported.
        RawTable("raw_seo", "ts TIMESTAMPTZ, date DATE, keyword VARCHAR, domain VARCHAR, position INTEGER, "
                 "search_volume BIGINT, provider VARCHAR, origin VARCHAR", key=("ts", "keyword", "domain", "provider"),
                 same_key_same_ts=True),
        # CSV files already imported (by name and content): each file once, a corrected copy again.
        RawTable("seo_files_read", "name VARCHAR, sha256 VARCHAR, rows BIGINT, rejected BIGINT", key=("name", "sha256"),
                 time_partitioned=False),
    ),
    metrics=(
        Metric("seo.share_of_voice", GAUGE, ("brand",),
               "Percent of the configured brands' estimated organic clicks (search volume x CTR of the position)",
               sql=lambda cfg: seo_share_of_voice_sql(cfg, AFFECTED), unit="percent", additive_dims=False),
    ),
    demo=Demo("seo", secrets={"DEMO_SEO_API_KEY": "demo-seo-key"}),
)
