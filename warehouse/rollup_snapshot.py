"""A small in-memory copy of the rollups, for answering many series questions in a row (alert evaluation).

Every query on the lake pays DuckLake's catalog reads (SQLite) and file opens: ~150 ms for one
`series_frame` on the demo's warehouse, against ~20 ms for the same question on an in-memory table. So a
caller with a few hundred questions copies the rows they can touch once, with one query, into an in-memory
DuckDB whose `lake.rollups` has the lake's columns, and asks `queries.series_frame` there: the same code, the
same answers (the copy holds every row those questions read).

`newest_data` is the cheap question asked first: per metric, the local start of its source's newest fact
hour, which bounds the buckets that can be complete (a caller skips the copy when nothing new completed).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb

from config import Config
from warehouse import timegrid
from warehouse.metrics import sql_literal


def newest_data(cur: duckdb.DuckDBPyConnection, cfg: Config) -> dict[str, datetime]:
    """Local start of each metric's newest fact hour (what `series_frame` calls the latest data of its
    source is the largest of these over the source's metrics)."""
    rows = cur.execute("SELECT metric, max(last_ts) FROM lake.rollups WHERE grain = 'year' GROUP BY metric").fetchall()
    return {metric: timegrid.local_time(newest, cfg.warehouse.timezone) for metric, newest in rows}


def copy(cur: duckdb.DuckDBPyConnection, needs: Iterable[tuple[str, str, datetime]]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with `lake.rollups` holding, for each (grain, metric, floor) in `needs`, the rows
    at or after `floor` (local bucket start) and each dims series' last row before it (a gauge's carried
    value), plus every year-grain row (what `complete` is computed from)."""
    needs = list(needs)
    mem = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    mem.execute("SET TimeZone = 'UTC'")
    mem.execute("SET threads = 1")      # each question is tiny: worker threads only add hand-offs
    mem.execute("ATTACH ':memory:' AS lake")
    if not needs:
        mem.execute("CREATE TABLE lake.rollups AS SELECT * FROM (SELECT NULL::VARCHAR AS grain, NULL::TIMESTAMP AS "
                    "bucket, NULL::TIMESTAMPTZ AS bucket_utc, NULL::VARCHAR AS metric, NULL::VARCHAR AS dims, "
                    "NULL::DOUBLE AS value, NULL::TIMESTAMPTZ AS last_ts) WHERE false")
        return mem
    values = ", ".join(f"({sql_literal(g)}, {sql_literal(m)}, TIMESTAMP '{floor:%Y-%m-%d %H:%M:%S}')"
                       for g, m, floor in needs)
    rows = cur.execute(f"""
        WITH need(grain, metric, floor) AS (VALUES {values})
        SELECT r.grain, r.bucket, r.bucket_utc, r.metric, r.dims, r.value, r.last_ts
        FROM lake.rollups r JOIN need USING (grain, metric) WHERE r.bucket >= need.floor
        UNION ALL
        SELECT grain, bucket, bucket_utc, metric, dims, value, last_ts FROM (
            SELECT r.*, row_number() OVER (PARTITION BY r.grain, r.metric, r.dims ORDER BY r.bucket_utc DESC) AS newest
            FROM lake.rollups r JOIN need USING (grain, metric) WHERE r.bucket < need.floor) WHERE newest = 1
        UNION ALL
        SELECT grain, bucket, bucket_utc, metric, dims, value, last_ts FROM lake.rollups
        WHERE grain = 'year' AND metric NOT IN (SELECT metric FROM need WHERE grain = 'year')""").arrow()
    mem.register("copied", rows)
    mem.execute("CREATE TABLE lake.rollups AS SELECT * FROM copied")
    mem.unregister("copied")
    return mem
