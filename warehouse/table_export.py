"""What exports carry. Whole-table exports (`GET /export/tables/{table}.{fmt}?from=&to=`): the SELECT for one queryable table over
a range of local days, run like any user query through the read-only sandbox (`warehouse.sql.readonly_batches`),
so a year of raw hits streams out batch by batch and never sits in the API's memory.

    table_select(cfg, "raw_s3_access_logs", date(2025, 1, 1), date(2025, 12, 31)) -> "SELECT ... WHERE ..."

Each kind of table has its time column: `ts` (UTC instants) for raw tables and `metric_points`, `bucket` (the
local start of the period) for `rollups`, `received_at` for `quarantine`. `from`/`to` are inclusive days in the
reporting time zone, as everywhere in the API. Rows leave in storage order: sorting a year of raw rows would
need far more memory than the sandbox allows, and every target (Parquet, Hyper, a spreadsheet) sorts itself.

Metric exports (`GET /export/metrics/{metric}.{fmt}`) carry `series_table(series_frame(...))`: the same numbers
as `/metrics/{metric}`, with the comparison columns when asked.
"""
from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from config import Config
from warehouse import timegrid
from warehouse.queries import QueryError, SeriesFrame, check_day
from warehouse.sql import table_kinds

TIME_COLUMNS = {"raw": "ts", "facts": "ts", "rollups": "bucket", "quarantine": "received_at"}
BATCH_COLUMN = {"raw": True, "facts": False, "rollups": False, "quarantine": True}   # bookkeeping `_batch`


def exportable_tables(cfg: Config) -> dict[str, str]:
    """Every table `/export/tables` serves, with its time column."""
    return {name: TIME_COLUMNS[kind] for name, kind in table_kinds(cfg).items()}


def table_select(cfg: Config, table: str, start: date | None = None, end: date | None = None) -> str:
    """The SELECT of `table`'s rows whose time column falls on the local days [start, end] (either open).
    Raises QueryError for a table that is not exportable or a bad range."""
    tables = exportable_tables(cfg)
    if table not in tables:
        raise QueryError(f"unknown table {table!r}; see /sql/tables for the tables you can export")
    for day, what in ((start, "from"), (end, "to")):
        if day is not None:
            check_day(day, what)
    if start and end and start > end:
        raise QueryError(f"from ({start}) is after to ({end})")
    column = tables[table]
    clauses = []
    if column == "bucket":       # a naive local timestamp: compare with local midnights
        if start:
            clauses.append(f"bucket >= TIMESTAMP '{start.isoformat()}'")
        if end:
            clauses.append(f"bucket < TIMESTAMP '{(end + timedelta(days=1)).isoformat()}'")
    else:                        # an instant: compare with the instants local midnight starts and ends
        first, last = timegrid.local_day_bounds(start or end or date.today(), end or start or date.today(),
                                                cfg.warehouse.timezone)
        if start:
            clauses.append(f"{column} >= TIMESTAMPTZ '{first.isoformat()}'")
        if end:
            clauses.append(f"{column} < TIMESTAMPTZ '{last.isoformat()}'")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    star = "* EXCLUDE (_batch)" if BATCH_COLUMN[table_kinds(cfg)[table]] else "*"
    return f"SELECT {star} FROM {table}{where}"


def series_table(series: SeriesFrame) -> pd.DataFrame:
    """A series answer (`queries.series_frame`) as the table its exports carry: `start`, `end` (local
    timestamps), `period`, `offset` (only when DST's end repeats an hour in the range), one column per `by`
    dimension, `value`, with `compare` also `previous`, `delta`, `delta_pct`, and `complete`. Numbers have the
    JSON answer's types: whole numbers (nullable: a gauge before its first observation) except for shares."""
    frame = series.frame
    numbers = ["value", *(("previous", "delta") if series.compare else ())]
    table = pd.DataFrame({"start": frame["start"], "end": frame["end"], "period": frame["period"]})
    if frame["offset"].notna().any():
        table["offset"] = frame["offset"]
    for dim in series.by:
        table[dim] = frame[dim]
    for column in numbers:
        values = frame[column].astype(float)
        table[column] = values.round(6) if series.unit == "percent" else values.round().astype("Int64")
    if series.compare:
        table["delta_pct"] = frame["delta_pct"].astype(float).round(2)
    table["complete"] = frame["complete"].astype(bool)
    return table.reset_index(drop=True)
