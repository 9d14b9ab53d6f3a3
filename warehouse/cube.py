"""Incremental cube maintenance: hourly `metric_points` and `rollups` at six grains, from new batches only.

For each source with batches newer than its watermark, the hourly facts those batches touched are recomputed
from raw (so dedupe rules such as "206s in one hour count once" stay exact), then every rollup bucket that
contains such an hour is recomputed from the hourly points (distinct metrics, which cannot be summed, from
the raw rows of the bucket's hours: `metrics.distinct_sql`). All in one transaction with the watermark.

Facts are zone hours and buckets are the reporting zone's periods, both defined in `warehouse.timegrid`
(`fact_hour_macros`, `bucket_sql`). A rollup row keeps the bucket's local wall-clock start (`bucket`) and the
instant it starts (`bucket_utc`): with `grain`, `bucket_utc` identifies the bucket, so the hour that DST's
end repeats is two rows. Each grain's affected buckets are worked out once, as a small calendar of their
zone hours (`bucket_hours`), which the rollups join on: no per-row time-zone arithmetic over the facts.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import duckdb

from config import Config
from warehouse import timegrid
from warehouse.catalog import ALL_HOURS, COUNTER, DISTINCT, FROM_EARLIEST, Metric
from warehouse.lake import write_transaction
from warehouse.metrics import distinct_sql, sql_literal
from warehouse.timegrid import GRAIN_LENGTH, GRAINS, bucket_sql, fact_hour_macros, fact_hours_sql

log = logging.getLogger("caskalytics.cube")




def _watermark(con, source: str) -> tuple[int, str | None]:
    row = con.execute("SELECT batch, definition FROM lake.cube_state WHERE source = ?", [source]).fetchone()
    return (row[0], row[1]) if row else (0, None)


def hourly_sql(cfg: Config, metric: Metric) -> str:
    """The metric's hourly facts: its declared SQL, or for a distinct metric each fact hour counted as its
    own bucket."""
    if metric.kind == DISTINCT:
        return distinct_sql([metric.name], "SELECT h, h AS bucket FROM affected_hours")
    return metric.sql(cfg)


def _definition(cfg: Config, source: str) -> str:
    """A fingerprint of what the source's numbers mean: the reporting time zone and every metric's SQL
    (which carries settings such as the version pattern or Salesforce's MQL statuses)."""
    text = cfg.warehouse.timezone + timegrid.REPRESENTATION + "".join(
        hourly_sql(cfg, m) for m in cfg.catalog.metrics_of(source) if m.kind != DISTINCT)
    return cfg.warehouse.timezone + " " + hashlib.sha256(text.encode()).hexdigest()[:16]


def update(con: duckdb.DuckDBPyConnection, cfg: Config) -> dict[str, int]:
    """Bring the cube up to date with every committed batch; returns hours recomputed per source."""
    done = {}
    con.execute(fact_hour_macros(cfg.warehouse.timezone))     # zone hours and local times (timegrid.fact_hour_macros)
    for source in cfg.catalog.sources:
        tables = cfg.catalog.raw_tables_of(source)
        latest = con.execute("SELECT coalesce(max(batch), 0) FROM lake.batches WHERE source = ?", [source]).fetchone()[0]
        section = cfg.sources.get(source)
        if latest == 0 or section is None or not section.enabled:
            continue               # nothing collected, or no settings to interpret the data with
        watermark, built_with = _watermark(con, source)
        definition = _definition(cfg, source)
        if built_with != definition:
            watermark = 0          # the time zone or a metric's definition changed: rebuild every bucket
        if latest <= watermark:
            continue
        done[source] = write_transaction(con, lambda c: _recompute(c, cfg, source, tables, watermark, latest, definition),
                                         what=f"cube update for {source}")
    return done


def _touched(cfg: Config, tables: list[str], where: Callable[[str], str]) -> str:
    """SQL for `h`: the fact hours overlapping the UTC hours of the rows matching `where` (each distinct UTC
    hour's facts worked out once, not each row's)."""
    hours = " UNION ".join(f"SELECT DISTINCT date_trunc('hour', {column}) AS u FROM lake.{t} WHERE {where(column)}"
                           for t in tables for column in ("ts", *cfg.catalog.tables[t].also_affects))
    return f"SELECT DISTINCT unnest(touched_fact_hours(u)) AS h FROM ({hours})"


def _recompute(con, cfg: Config, source: str, tables: list[str], watermark: int, latest: int, definition: str) -> int:
    declared = cfg.catalog.sources[source]
    con.execute(f"CREATE OR REPLACE TEMP TABLE affected_hours AS "
                f"{_touched(cfg, tables, lambda c: f'_batch > {watermark} AND _batch <= {latest} AND {c} IS NOT NULL')}")
    if declared.recompute in (FROM_EARLIEST, ALL_HOURS) or watermark == 0:
        # From the earliest affected hour on: rows up to an hour before it can touch it (their UTC hour can
        # overlap a fact hour that starts later in it); filtering first skips the older rows' files.
        earliest = "" if declared.recompute == ALL_HOURS else "(SELECT min(h) FROM affected_hours)"
        every_hour = _touched(cfg, tables, lambda c: f"{c} >= {earliest} - INTERVAL 1 HOUR" if earliest else f"{c} IS NOT NULL")
        since = f" WHERE h >= {earliest}" if earliest else ""
        con.execute(f"""CREATE OR REPLACE TEMP TABLE affected_hours AS
            SELECT h FROM ({every_hour}){since}""")
    hours = con.execute("SELECT count(*) FROM affected_hours").fetchone()[0]
    metrics = cfg.catalog.metrics_of(source)
    names = ", ".join(sql_literal(m.name) for m in metrics)
    if watermark == 0:
        # A full rebuild (first run, new time zone or definition): no old bucket or fact may survive (with
        # another zone the old facts can start at other minutes than any affected hour).
        con.execute(f"DELETE FROM lake.rollups WHERE metric IN ({names})")
        con.execute(f"DELETE FROM lake.metric_points WHERE metric IN ({names})")
    if hours:
        if any(m.kind == DISTINCT for m in metrics):
            con.execute(f"CREATE OR REPLACE TEMP TABLE first_hours AS {declared.first_seen_sql}")
        con.execute(f"DELETE FROM lake.metric_points WHERE metric IN ({names}) "
                    f"AND ts IN (SELECT h FROM affected_hours)")
        for metric in metrics:
            con.execute(f"INSERT INTO lake.metric_points SELECT ts, '{source}', '{metric.name}', dims, value "
                        f"FROM ({hourly_sql(cfg, metric)})")
        for grain in GRAINS:
            _rollup(con, grain, metrics)
    con.execute("DELETE FROM lake.cube_state WHERE source = ?", [source])
    con.execute("INSERT INTO lake.cube_state (source, batch, definition) VALUES (?, ?, ?)",
                [source, latest, definition])
    log.info("cube: %s recomputed %d hours (batches %d..%d)", source, hours, watermark + 1, latest)
    return hours


def _rollup(con, grain: str, metrics: list[Metric]) -> None:
    names = ", ".join(sql_literal(m.name) for m in metrics)
    con.execute(f"CREATE OR REPLACE TEMP TABLE affected_buckets AS "
                f"SELECT DISTINCT {bucket_sql(grain, 'h')} AS bucket FROM affected_hours")
    con.execute(f"CREATE OR REPLACE TEMP TABLE bucket_hours AS {_bucket_hours(grain)}")
    con.execute(f"DELETE FROM lake.rollups WHERE grain = '{grain}' AND metric IN ({names}) "
                f"AND bucket_utc IN (SELECT bucket_utc FROM bucket_hours)")
    counters = ", ".join(sql_literal(m.name) for m in metrics if m.kind == COUNTER) or "NULL"
    rolled = ", ".join(sql_literal(m.name) for m in metrics if m.kind != DISTINCT) or "NULL"
    con.execute(f"""
        INSERT INTO lake.rollups (grain, bucket, bucket_utc, metric, dims, value, last_ts)
        SELECT '{grain}', c.bucket, c.bucket_utc, p.metric, p.dims,
               CASE WHEN p.metric IN ({counters}) THEN sum(p.value) ELSE arg_max(p.value, p.ts) END,
               max(p.ts)
        FROM lake.metric_points AS p JOIN bucket_hours AS c ON p.ts = c.h
        WHERE p.metric IN ({rolled})
        GROUP BY c.bucket, c.bucket_utc, p.metric, p.dims""")
    # Distinct counts (unique visitors) cannot be summed from hours: each bucket is counted from raw rows.
    distinct = [m.name for m in metrics if m.kind == DISTINCT]
    if distinct:
        counted = distinct_sql(distinct, "SELECT h, bucket_utc AS bucket FROM bucket_hours")
        con.execute(f"""
            INSERT INTO lake.rollups (grain, bucket, bucket_utc, metric, dims, value, last_ts)
            SELECT '{grain}', c.bucket, c.bucket_utc, d.metric, d.dims, d.value, d.last_ts
            FROM ({counted}) AS d JOIN (SELECT DISTINCT bucket, bucket_utc FROM bucket_hours) AS c
              ON d.ts = c.bucket_utc""")


def _bucket_hours(grain: str) -> str:
    """SQL for (h, bucket, bucket_utc): every fact hour of the affected `grain` buckets, with its bucket's
    local start and first instant. An hour bucket is its fact hour. Longer buckets take the fact hours from a
    day before their local bounds to a day after (a margin for any zone offset) and keep those that
    `bucket_sql` puts in an affected bucket, so the rule is the one every bucket uses."""
    if grain == "hour":
        return f"SELECT h, {bucket_sql('hour', 'h')} AS bucket, h AS bucket_utc FROM affected_hours"
    facts = fact_hours_sql("(SELECT min(bucket) FROM affected_buckets) - INTERVAL 1 DAY",
                           f"(SELECT max(bucket) FROM affected_buckets) + {GRAIN_LENGTH[grain]} + INTERVAL 1 DAY")
    return f"""
        SELECT h, bucket, min(h) OVER (PARTITION BY bucket) AS bucket_utc
        FROM (SELECT h, {bucket_sql(grain, 'h')} AS bucket FROM ({facts}))
        WHERE bucket IN (SELECT bucket FROM affected_buckets)"""
