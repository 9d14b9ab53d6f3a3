"""What the warehouse knows of the sources: their raw tables and their metrics, read from declarations.

Each collector module declares its source once (`collectors.base.Source`: settings, tables, metrics with their
hourly SQL, inbox, demo); the registry in `collectors/__init__.py` lists them, and `collectors.load_config`
attaches a `Catalog` of them to the config (`cfg.catalog`). The warehouse only reads that catalog, through
the attributes named in `SourceDeclaration`, and imports nothing from `collectors/`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

COUNTER, GAUGE, DISTINCT = "counter", "gauge", "distinct"
KINDS = (COUNTER, GAUGE, DISTINCT)

# When a batch arrives, which fact hours of its source are recomputed:
TOUCHED_HOURS = "touched"          # the hours its records fall in (most sources)
FROM_EARLIEST = "from_earliest"    # every hour from the earliest touched on (cumulative gauges, sessions)
ALL_HOURS = "all"                  # every hour (gauges anchored on the latest exact value)


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: str                 # "name TYPE, ..." without the bookkeeping column _batch
    key: tuple[str, ...]         # natural record key: re-ingesting a key never adds a row
    same_key_same_ts: bool = False   # lets dedupe look only at the batch's time range (large tables)
    time_partitioned: bool = True
    # Other time columns whose hours a new row changes in the cube (e.g. a Salesforce lead's CreatedDate
    # when a later version of the record arrives).
    also_affects: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [part.strip().split()[0] for part in self.columns.split(",")]

    def column_type(self, column: str) -> str:
        for part in self.columns.split(","):
            name, kind = part.strip().split(maxsplit=1)
            if name == column:
                return kind
        raise KeyError(column)


def observation_table(source: str) -> RawTable:
    """The raw table of a source that reports ready-made numbers (report APIs, follower counts).

    Every fetch is kept (append-only); `fetched_at` is part of the key, and the cube uses the latest fetch
    of each (metric, dims, ts), so a re-fetched day that the API finalised late replaces the earlier value
    instead of adding to it. Daily values are stamped 12:00 UTC of their date, so they fall on that date in
    any reporting time zone from UTC-11 to UTC+11."""
    return RawTable(f"raw_{source}", "ts TIMESTAMPTZ, metric VARCHAR, dims VARCHAR, value DOUBLE, fetched_at TIMESTAMPTZ",
                    key=("metric", "dims", "ts", "fetched_at"))


@dataclass(frozen=True)
class Metric:
    """One metric: its measure kind, dimensions, description, and `sql(cfg)`: SQL selecting `(ts, dims,
    value)` per fact hour for the hours in the temp table `affected_hours(h)` (see `warehouse.metrics`).
    Distinct metrics have no hourly SQL: each bucket is counted from raw rows (`warehouse.metrics.distinct_sql`)."""
    name: str
    kind: str
    dims: tuple[str, ...]
    description: str
    sql: Callable[[Any], str] | None = None
    unit: str = ""
    additive_dims: bool = True     # False: values of different dims must not be added (shares, ranks)
    source: str = ""               # filled in by the Catalog from the declaring source

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind must be one of {', '.join(KINDS)}")
        if (self.sql is None) != (self.kind == DISTINCT):
            raise ValueError(f"metric {self.name}: a {self.kind} metric {'needs' if self.sql is None else 'has no'} hourly SQL")


class SourceDeclaration(Protocol):
    """The part of a source's declaration the warehouse reads."""
    name: str
    tables: tuple[RawTable, ...]
    metrics: tuple[Metric, ...]
    recompute: str
    first_seen_sql: str | None       # distinct metrics: (site, visitor_id, first_h) of every visitor


class Catalog:
    """Every declared source, raw table and metric, by name."""

    def __init__(self, sources: Iterable[SourceDeclaration]):
        self.sources: dict[str, SourceDeclaration] = {}
        self.tables: dict[str, RawTable] = {}
        self.metrics: dict[str, Metric] = {}
        for source in sources:
            if source.name in self.sources:
                raise ValueError(f"source {source.name} is declared twice")
            if source.recompute not in (TOUCHED_HOURS, FROM_EARLIEST, ALL_HOURS):
                raise ValueError(f"source {source.name}: recompute must be touched, from_earliest or all")
            self.sources[source.name] = source
            for table in source.tables:
                if table.name in self.tables:
                    raise ValueError(f"table {table.name} is declared by two sources")
                self.tables[table.name] = table
            for metric in source.metrics:
                if metric.name in self.metrics:
                    raise ValueError(f"metric {metric.name} is declared twice")
                self.metrics[metric.name] = replace(metric, source=source.name)

    def metrics_of(self, source: str) -> list[Metric]:
        return [m for m in self.metrics.values() if m.source == source]

    def raw_tables_of(self, source: str) -> list[str]:
        """The tables of `source` whose new rows change its metrics (every `raw_*` table it declares)."""
        return [t.name for t in self.sources[source].tables if t.name.startswith("raw_")]
