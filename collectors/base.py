"""The one small interface every source implements, and the declaration that makes it a source.

A collector is a generator of `Batch`es. Each batch carries the records it read and the cursor *after*
those records; the writer commits both in one lake transaction, so a crash leaves both or neither.
`collect` asks only for what is new since the cursor; `backfill` reads an explicit date range and leaves
the live cursor alone (natural keys make any overlap harmless).

A `Source` declares everything else about a source in one place: its config section model, raw tables and
natural keys, metrics (kind, dims, description, hourly SQL), inbox handling and demo simulator. Adding a
source is one collector module ending in `SOURCE = Source(...)` plus one line in `collectors/__init__.py`.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from config import Config, SourceConfig
from warehouse.batch import Batch, Rejected, StagedTable, quarantine_text
from warehouse.catalog import TOUCHED_HOURS, Metric, RawTable
from warehouse.ingest import Lookup

# The collectors' vocabulary: the batch types come from the warehouse, which commits them.
__all__ = ["Batch", "Collector", "Context", "Demo", "Inbox", "Malformed", "Rejected", "Source", "SourceError",
           "StagedTable", "quarantine_text", "COLLECT", "ROLLUP"]


@dataclass
class Context:
    """What a collector may use: its settings, secrets by env-var name, read-only lake lookups, and a
    DuckDB connection for staging temp tables (the writer's; collectors never write the lake)."""
    config: Config
    settings: SourceConfig
    lookup: Lookup
    staging: Any = None    # duckdb.DuckDBPyConnection

    def secret(self, env_name: str) -> str | None:
        return self.config.secret(env_name)


class Collector(Protocol):
    def collect(self, ctx: Context, cursor: dict[str, Any] | None) -> Iterator[Batch]: ...

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]: ...


@dataclass(frozen=True)
class Inbox:
    """A source fed through the receive inbox (webhook deliveries, beacon hits): the API stores each delivery
    durably, the scheduler's drain turns rows into batches with `to_batch(rows)` (the batch's cursor is
    {"last_id": the highest row id}), and drained rows older than `keep_days` leave the inbox."""
    to_batch: Callable[[Iterable[sqlite3.Row]], Batch]
    keep_days: int = 30
    cube_after_drain: bool = True     # False: the source's scheduled job brings the cube up to date instead


@dataclass(frozen=True)
class Demo:
    """How `make run` stands the source in on the demo: `simulators.<module>` (its `demo_process(cfg)` says how
    to start it), servers it needs first (e.g. "moto" for S3), and stand-in credentials for the variables the
    demo config names."""
    simulator: str | None = None
    needs: tuple[str, ...] = ()
    secrets: dict[str, str] = field(default_factory=dict)


COLLECT, ROLLUP = "collect", "rollup"


@dataclass(frozen=True)
class Source:
    name: str
    settings: type[SourceConfig]
    collector: Callable[[], Collector] | None          # None: nothing to poll (the inbox brings the data)
    tables: tuple[RawTable, ...] = ()
    metrics: tuple[Metric, ...] = ()
    recompute: str = TOUCHED_HOURS                      # warehouse.catalog: which hours a new batch changes
    first_seen_sql: str | None = None                   # distinct metrics only (warehouse.metrics.distinct_sql)
    inbox: Inbox | None = None
    # What the source's `schedule` runs: a collection, or (a source with nothing to poll) a rollup update.
    scheduled: str = COLLECT
    demo: Demo = Demo()
    progress_unit: str = "windows"      # what a batch's `progress` counts: time windows, "objects", "repos"


class SourceError(Exception):
    """A source failed in a way the operator must act on (credentials, configuration); one line."""


class Malformed(ValueError):
    """A record (API item, webhook delivery, inbox row) that is not what the source documents; the message
    names the field. It goes to quarantine with that reason and never stops a run."""
