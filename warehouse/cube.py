"""Incremental cube maintenance: hourly `metric_points` and `rollups` at six grains, from new batches only.

For each source with batches newer than its watermark, the UTC hours those batches touched are recomputed
from raw (so dedupe rules such as "206s in one hour count once" stay exact), then every rollup bucket that
contains such an hour is recomputed from the hourly points. All in one transaction with the watermark.

`bucket_start` is the one time-bucketing rule: the local wall-clock start of the grain in the reporting
time zone (`date_trunc` on the local timestamp: ISO weeks start on Monday; DST-correct because the UTC hour
is converted before truncation).
"""
from __future__ import annotations

import logging

import duckdb

from config import Config
from warehouse.lake import write_transaction
from warehouse.metrics import CATALOG, COUNTER, RECOMPUTE_FROM_EARLIEST, hourly_sql, metrics_of, sql_literal
from warehouse.schema import INGEST_TABLES

log = logging.getLogger("caskalytics.cube")
GRAINS = ("hour", "day", "week", "month", "quarter", "year")
SOURCE_TABLES = {
    "s3_access_logs": ["raw_s3_access_logs"],
    "github": [name for name in INGEST_TABLES if name.startswith("raw_github_")],
    "salesforce": [name for name in INGEST_TABLES if name.startswith("raw_salesforce_")],
}


def bucket_start(grain: str, ts_sql: str, tz: str) -> str:
    """SQL for the local start of the `grain` bucket holding the TIMESTAMPTZ expression `ts_sql`."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
    return f"date_trunc('{grain}', timezone({sql_literal(tz)}, {ts_sql}))"


def _watermark(con, source: str) -> tuple[int, str | None]:
    row = con.execute("SELECT batch, timezone FROM lake.cube_state WHERE source = ?", [source]).fetchone()
    return (row[0], row[1]) if row else (0, None)


def update(con: duckdb.DuckDBPyConnection, cfg: Config) -> dict[str, int]:
    """Bring the cube up to date with every committed batch; returns hours recomputed per source."""
    tz = cfg.warehouse.timezone
    done = {}
    for source, tables in SOURCE_TABLES.items():
        latest = con.execute("SELECT coalesce(max(batch), 0) FROM lake.batches WHERE source = ?", [source]).fetchone()[0]
        watermark, cube_tz = _watermark(con, source)
        if cube_tz is not None and cube_tz != tz:
            watermark = 0          # the reporting time zone changed: every bucket moves
        if latest <= watermark:
            continue
        done[source] = write_transaction(con, lambda c: _recompute(c, cfg, source, tables, watermark, latest, tz),
                                         what=f"cube update for {source}")
    return done


def _recompute(con, cfg: Config, source: str, tables: list[str], watermark: int, latest: int, tz: str) -> int:
    new_hours = " UNION ".join(
        f"SELECT DISTINCT date_trunc('hour', {column}) AS h FROM lake.{t} "
        f"WHERE _batch > {watermark} AND _batch <= {latest} AND {column} IS NOT NULL"
        for t in tables for column in ("ts", *INGEST_TABLES[t].also_affects))
    con.execute(f"CREATE OR REPLACE TEMP TABLE affected_hours AS {new_hours}")
    if source in RECOMPUTE_FROM_EARLIEST or watermark == 0:
        every_hour = " UNION ".join(f"SELECT DISTINCT date_trunc('hour', {column}) AS h FROM lake.{t}"
                                    for t in tables for column in ("ts", *INGEST_TABLES[t].also_affects))
        con.execute(f"""CREATE OR REPLACE TEMP TABLE affected_hours AS
            SELECT h FROM ({every_hour}) WHERE h >= (SELECT min(h) FROM affected_hours)""")
    hours = con.execute("SELECT count(*) FROM affected_hours").fetchone()[0]
    metrics = metrics_of(source)
    names = ", ".join(sql_literal(m.name) for m in metrics)
    if watermark == 0:
        # A full rebuild (first run, or a new reporting time zone): the old zone's buckets must not survive.
        con.execute(f"DELETE FROM lake.rollups WHERE metric IN ({names})")
    if hours:
        con.execute(f"DELETE FROM lake.metric_points WHERE metric IN ({names}) "
                    f"AND ts IN (SELECT h FROM affected_hours)")
        for metric in metrics:
            con.execute(f"INSERT INTO lake.metric_points SELECT ts, '{source}', '{metric.name}', dims, value "
                        f"FROM ({hourly_sql(cfg, metric)})")
        for grain in GRAINS:
            _rollup(con, grain, tz, metrics)
    con.execute("DELETE FROM lake.cube_state WHERE source = ?", [source])
    con.execute("INSERT INTO lake.cube_state VALUES (?, ?, ?)", [source, latest, tz])
    log.info("cube: %s recomputed %d hours (batches %d..%d)", source, hours, watermark + 1, latest)
    return hours


def _rollup(con, grain: str, tz: str, metrics) -> None:
    names = ", ".join(sql_literal(m.name) for m in metrics)
    bucket = bucket_start(grain, "ts", tz)
    con.execute(f"CREATE OR REPLACE TEMP TABLE affected_buckets AS "
                f"SELECT DISTINCT {bucket_start(grain, 'h', tz)} AS bucket FROM affected_hours")
    con.execute(f"DELETE FROM lake.rollups WHERE grain = '{grain}' AND metric IN ({names}) "
                f"AND bucket IN (SELECT bucket FROM affected_buckets)")
    counters = ", ".join(sql_literal(m.name) for m in metrics if CATALOG[m.name].kind == COUNTER) or "NULL"
    con.execute(f"""
        INSERT INTO lake.rollups
        SELECT '{grain}', {bucket} AS b, metric, dims,
               CASE WHEN metric IN ({counters}) THEN sum(value) ELSE arg_max(value, ts) END,
               max(ts)
        FROM lake.metric_points
        WHERE metric IN ({names}) AND {bucket} IN (SELECT bucket FROM affected_buckets)
        GROUP BY b, metric, dims""")
