"""Incremental cube maintenance: hourly `metric_points` and `rollups` at six grains, from new batches only.

For each source with batches newer than its watermark, the hourly facts those batches touched are recomputed
from raw (so dedupe rules such as "206s in one hour count once" stay exact), then every rollup bucket that
contains such an hour is recomputed from the hourly points (distinct metrics, which cannot be summed, from
the raw rows of the bucket's hours: `metrics.distinct_sql`). All in one transaction with the watermark.

Facts are zone hours (`metrics.fact_hour_macros`): whole UTC hours, or hours starting at :30 or :45 UTC in
zones offset by half or three quarters of an hour. `bucket_start` is the one time-bucketing rule: the local
wall-clock start of the grain in the reporting time zone (`date_trunc` on the local timestamp: ISO weeks
start on Monday; DST-correct because the fact's instant is converted before truncation).
"""
from __future__ import annotations

import hashlib
import logging

import duckdb

from config import Config
from warehouse.catalog import ALL_HOURS, COUNTER, DISTINCT, FROM_EARLIEST, Metric
from warehouse.lake import write_transaction
from warehouse.metrics import distinct_sql, fact_hour_macros, sql_literal

log = logging.getLogger("caskalytics.cube")
GRAINS = ("hour", "day", "week", "month", "quarter", "year")
GRAIN_LENGTH = {"hour": "INTERVAL 1 HOUR", "day": "INTERVAL 1 DAY", "week": "INTERVAL 7 DAY",
                "month": "INTERVAL 1 MONTH", "quarter": "INTERVAL 3 MONTH", "year": "INTERVAL 1 YEAR"}


def bucket_start(grain: str, ts_sql: str, tz: str) -> str:
    """SQL for the local start of the `grain` bucket holding the TIMESTAMPTZ expression `ts_sql`."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}")
    return f"date_trunc('{grain}', timezone({sql_literal(tz)}, {ts_sql}))"


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
    text = cfg.warehouse.timezone + "".join(hourly_sql(cfg, m) for m in cfg.catalog.metrics_of(source)
                                            if m.kind != DISTINCT)
    return cfg.warehouse.timezone + " " + hashlib.sha256(text.encode()).hexdigest()[:16]


def update(con: duckdb.DuckDBPyConnection, cfg: Config) -> dict[str, int]:
    """Bring the cube up to date with every committed batch; returns hours recomputed per source."""
    done = {}
    con.execute(fact_hour_macros(cfg.warehouse.timezone))     # the hourly facts' hours (metrics.fact_hour_macros)
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


def _recompute(con, cfg: Config, source: str, tables: list[str], watermark: int, latest: int, definition: str) -> int:
    tz = cfg.warehouse.timezone
    declared = cfg.catalog.sources[source]
    affects = {t: ("ts", *cfg.catalog.tables[t].also_affects) for t in tables}
    new_hours = " UNION ".join(
        f"SELECT DISTINCT unnest(touched_fact_hours({column})) AS h FROM lake.{t} "
        f"WHERE _batch > {watermark} AND _batch <= {latest} AND {column} IS NOT NULL"
        for t in tables for column in affects[t])
    con.execute(f"CREATE OR REPLACE TEMP TABLE affected_hours AS {new_hours}")
    if declared.recompute in (FROM_EARLIEST, ALL_HOURS) or watermark == 0:
        # From the earliest affected hour on: rows an hour before it can touch it (a fact hour starts up to
        # 45 minutes before its UTC hour); filtering before the unnest skips the older rows' files.
        earliest = "" if declared.recompute == ALL_HOURS else "(SELECT min(h) FROM affected_hours)"
        every_hour = " UNION ".join(
            f"SELECT DISTINCT unnest(touched_fact_hours({column})) AS h FROM lake.{t}"
            + (f" WHERE {column} >= {earliest} - INTERVAL 1 HOUR" if earliest else "")
            for t in tables for column in affects[t])
        since = f" WHERE h >= {earliest}" if earliest else ""
        con.execute(f"""CREATE OR REPLACE TEMP TABLE affected_hours AS
            SELECT h FROM ({every_hour}){since}""")
    hours = con.execute("SELECT count(*) FROM affected_hours").fetchone()[0]
    metrics = cfg.catalog.metrics_of(source)
    names = ", ".join(sql_literal(m.name) for m in metrics)
    if watermark == 0:
        # A full rebuild (first run, new time zone or definition): no old bucket may survive.
        con.execute(f"DELETE FROM lake.rollups WHERE metric IN ({names})")
    if hours:
        if any(m.kind == DISTINCT for m in metrics):
            con.execute(f"CREATE OR REPLACE TEMP TABLE first_hours AS {declared.first_seen_sql}")
        con.execute(f"DELETE FROM lake.metric_points WHERE metric IN ({names}) "
                    f"AND ts IN (SELECT h FROM affected_hours)")
        for metric in metrics:
            con.execute(f"INSERT INTO lake.metric_points SELECT ts, '{source}', '{metric.name}', dims, value "
                        f"FROM ({hourly_sql(cfg, metric)})")
        for grain in GRAINS:
            _rollup(con, grain, tz, metrics)
    con.execute("DELETE FROM lake.cube_state WHERE source = ?", [source])
    con.execute("INSERT INTO lake.cube_state (source, batch, definition) VALUES (?, ?, ?)",
                [source, latest, definition])
    log.info("cube: %s recomputed %d hours (batches %d..%d)", source, hours, watermark + 1, latest)
    return hours


def _rollup(con, grain: str, tz: str, metrics: list[Metric]) -> None:
    names = ", ".join(sql_literal(m.name) for m in metrics)
    bucket = bucket_start(grain, "ts", tz)
    con.execute(f"CREATE OR REPLACE TEMP TABLE affected_buckets AS "
                f"SELECT DISTINCT {bucket_start(grain, 'h', tz)} AS bucket FROM affected_hours")
    con.execute(f"DELETE FROM lake.rollups WHERE grain = '{grain}' AND metric IN ({names}) "
                f"AND bucket IN (SELECT bucket FROM affected_buckets)")
    counters = ", ".join(sql_literal(m.name) for m in metrics if m.kind == COUNTER) or "NULL"
    rolled = ", ".join(sql_literal(m.name) for m in metrics if m.kind != DISTINCT) or "NULL"
    con.execute(f"""
        INSERT INTO lake.rollups
        SELECT '{grain}', {bucket} AS b, metric, dims,
               CASE WHEN metric IN ({counters}) THEN sum(value) ELSE arg_max(value, ts) END,
               max(ts)
        FROM lake.metric_points
        WHERE metric IN ({rolled}) AND {bucket} IN (SELECT bucket FROM affected_buckets)
        GROUP BY b, metric, dims""")
    # Distinct counts (unique visitors) cannot be summed from hours: each bucket is counted from raw rows.
    distinct = [m.name for m in metrics if m.kind == DISTINCT]
    if distinct:
        counted = distinct_sql(distinct, _bucket_hours(grain, tz))
        con.execute(f"INSERT INTO lake.rollups SELECT '{grain}', ts, metric, dims, value, last_ts FROM ({counted})")


def _bucket_hours(grain: str, tz: str) -> str:
    """SQL for (h, bucket): every fact hour of the affected `grain` buckets, with its bucket. The hours are
    generated a day beyond the buckets' local bounds either way (a margin for DST and zone offsets) and kept
    where `bucket_start` puts them in an affected bucket, so the rule is the one every other metric uses."""
    zone = sql_literal(tz)
    return f"""
        SELECT h, bucket FROM (
            SELECT h, {bucket_start(grain, "h", tz)} AS bucket
            FROM (SELECT DISTINCT fact_hour(utc_hour) AS h FROM range(
                      (SELECT timezone({zone}, min(bucket)) - INTERVAL 1 DAY FROM affected_buckets),
                      (SELECT timezone({zone}, max(bucket) + {GRAIN_LENGTH[grain]}) + INTERVAL 1 DAY FROM affected_buckets),
                      INTERVAL 1 HOUR) AS hours(utc_hour)))
        WHERE bucket IN (SELECT bucket FROM affected_buckets)"""
