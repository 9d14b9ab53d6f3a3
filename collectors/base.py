"""The one small interface every source implements.

A collector is a generator of `Batch`es. Each batch carries the records it read and the cursor *after*
those records; the runner commits both in one lake transaction, so a crash leaves both or neither.
`collect` asks only for what is new since the cursor; `backfill` reads an explicit date range and leaves
the live cursor alone (natural keys make any overlap harmless).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import pyarrow as pa

from config import Config, SourceConfig


@dataclass
class Rejected:
    """Input we could not use: stored in the quarantine table with the reason, counted in the run log."""
    reason: str
    record: str
    origin: str = ""      # where it came from: a log object key, a delivery id, a URL


def quarantine_text(item: Any) -> str:
    """A payload item as the `record` text of a quarantine row (JSON when it can be, at most 100,000 characters)."""
    try:
        return json.dumps(item, ensure_ascii=False, default=str)[:100_000]
    except (TypeError, ValueError):
        return repr(item)[:100_000]


@dataclass(frozen=True)
class StagedTable:
    """Rows already in a temp table of the writer's DuckDB connection (large inputs skip Python)."""
    name: str


Records = pa.Table | list[dict[str, Any]] | StagedTable


@dataclass
class Batch:
    records: dict[str, Records]                            # lake table name -> rows
    cursor: dict[str, Any] | None = None                   # None: leave the saved cursor as it is
    rejected: list[Rejected] = field(default_factory=list)
    progress: tuple[int, int] | None = None                # (done, total) in the collector's own unit
    label: str = ""                                        # what this chunk covered, for the progress line


@dataclass
class Context:
    """What a collector may use: its settings, secrets by env-var name, read-only lake lookups, and a
    DuckDB connection for staging temp tables (the writer's; collectors never write the lake)."""
    config: Config
    settings: SourceConfig
    lookup: Any            # warehouse.ingest.Lookup: questions a collector may ask the lake
    staging: Any = None    # duckdb.DuckDBPyConnection

    def secret(self, env_name: str) -> str | None:
        return self.config.secret(env_name)


class Collector(Protocol):
    name: str

    def collect(self, ctx: Context, cursor: dict[str, Any] | None) -> Iterator[Batch]: ...

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]: ...


class SourceError(Exception):
    """A source failed in a way the operator must act on (credentials, configuration); one line."""
