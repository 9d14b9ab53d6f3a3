"""A small extra source, defined outside the product as a new source would be: one module declaring
everything about it (settings, raw table, metrics with their SQL, collector). tests/test_architecture.py
registers it through `collectors.register` and sees it everywhere a source appears."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

from pydantic import Field

from collectors.base import Batch, Context, Source
from config import SourceConfig
from warehouse.catalog import COUNTER, GAUGE, Metric, RawTable
from warehouse.metrics import AFFECTED


class NewsletterConfig(SourceConfig):
    list_name: str
    first_day: date
    days: int = Field(default=10, ge=1)


class Newsletter:
    """Reads one row a day: the list's subscriber count and the day's opens (made up, deterministic)."""

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        settings: NewsletterConfig = ctx.settings
        start = date.fromisoformat(cursor["next_day"]) if cursor else settings.first_day
        end = settings.first_day + timedelta(days=settings.days)
        days = [start + timedelta(days=n) for n in range((end - start).days)]
        rows = [{"ts": datetime(d.year, d.month, d.day, 12, tzinfo=timezone.utc), "list_name": settings.list_name,
                 "subscribers": 1000 + 10 * n, "opens": 50 + n} for n, d in enumerate(days, (start - settings.first_day).days)]
        yield Batch(records={"raw_newsletter": rows}, cursor={"next_day": end.isoformat()}, label=f"{len(rows)} days")

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        return iter(())


SOURCE = Source(
    name="newsletter",
    settings=NewsletterConfig,
    collector=Newsletter,
    tables=(RawTable("raw_newsletter", "ts TIMESTAMPTZ, list_name VARCHAR, subscribers BIGINT, opens BIGINT",
                     key=("list_name", "ts")),),
    metrics=(
        Metric("newsletter.subscribers", GAUGE, ("list",), "Subscribers of the list",
               sql=lambda cfg: f"""SELECT fact_hour(ts) AS ts, json_object('list', list_name)::VARCHAR AS dims,
                                          arg_max(subscribers, ts) AS value
                                   FROM lake.raw_newsletter WHERE {AFFECTED} GROUP BY ALL"""),
        Metric("newsletter.opens", COUNTER, (), "Newsletter opens",
               sql=lambda cfg: f"""SELECT fact_hour(ts) AS ts, '{{}}' AS dims, sum(opens) AS value
                                   FROM lake.raw_newsletter WHERE {AFFECTED} GROUP BY ALL"""),
    ),
)
