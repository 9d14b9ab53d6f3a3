"""Every table in the lake: the raw tables the sources declare (one or more per source, append-only, with the
natural key used for dedupe; `warehouse.catalog.RawTable`), the ledgers that make ingestion exactly-once, and
the cube."""
from __future__ import annotations

import duckdb

from warehouse.catalog import RawTable
from warehouse.lake import write_transaction


BOOKKEEPING_DDL = [
    # One row per committed batch: the batch id orders all ingestion and drives incremental rollups.
    "CREATE TABLE IF NOT EXISTS lake.batches (batch BIGINT, source VARCHAR, committed_at TIMESTAMPTZ, "
    "records BIGINT, inserted BIGINT, quarantined BIGINT)",
    "CREATE TABLE IF NOT EXISTS lake.cursors (source VARCHAR, cursor JSON, batch BIGINT, updated_at TIMESTAMPTZ)",
    "CREATE TABLE IF NOT EXISTS lake.quarantine (received_at TIMESTAMPTZ, source VARCHAR, reason VARCHAR, "
    "record VARCHAR, origin VARCHAR, _batch BIGINT)",
    # The cube: hourly facts (zone hours, `timegrid.fact_hour_macros`) and rollups at every grain (bucket = local
    # wall-clock start; bucket_utc = the instant it starts, which tells apart the two hours a DST end repeats).
    "CREATE TABLE IF NOT EXISTS lake.metric_points (ts TIMESTAMPTZ, source VARCHAR, metric VARCHAR, "
    "dims VARCHAR, value DOUBLE)",
    "CREATE TABLE IF NOT EXISTS lake.rollups (grain VARCHAR, bucket TIMESTAMP, metric VARCHAR, dims VARCHAR, "
    "value DOUBLE, last_ts TIMESTAMPTZ, bucket_utc TIMESTAMPTZ)",
    # What each source's cube was built from: the last batch, and a fingerprint of time zone + metric SQL.
    "CREATE TABLE IF NOT EXISTS lake.cube_state (source VARCHAR, batch BIGINT, definition VARCHAR)",
]


def ensure(con: duckdb.DuckDBPyConnection, declared: dict[str, RawTable]) -> None:
    """Create every table that is missing (idempotent; the writer calls it on start). `declared`: the raw
    tables of every source (`cfg.catalog.tables`)."""
    # One catalog transaction for all of them: one commit per statement took seconds on a busy machine.
    write_transaction(con, lambda c: _ensure(c, declared), what="create the lake tables")


def _ensure(con: duckdb.DuckDBPyConnection, declared: dict[str, RawTable]) -> None:
    existing = {row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()}
    for statement in BOOKKEEPING_DDL:
        con.execute(statement)
    # Lakes made before the cube kept a definition fingerprint rebuild their cube once.
    con.execute("ALTER TABLE lake.cube_state ADD COLUMN IF NOT EXISTS definition VARCHAR")
    # Lakes made before rollups kept bucket_utc: the cube's definition fingerprint changed too, so it rebuilds.
    con.execute("ALTER TABLE lake.rollups ADD COLUMN IF NOT EXISTS bucket_utc TIMESTAMPTZ")
    for table in declared.values():
        if table.name not in existing:
            con.execute(f"CREATE TABLE lake.{table.name} ({table.columns}, _batch BIGINT)")
            if table.time_partitioned:
                # Time-partitioned files, so Spark/Trino/Athena can prune by the same layout.
                con.execute(f"ALTER TABLE lake.{table.name} SET PARTITIONED BY (year(ts), month(ts))")
