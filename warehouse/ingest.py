"""The write path: a collector's batch, its quarantine rows and its advanced cursor in one lake transaction.

Dedupe is by each table's natural key, against the batch itself and against what is already stored, so
re-ingesting never double counts. Only the scheduler process calls this (one writer).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.batch import Batch, Records, StagedTable
from warehouse.catalog import RawTable
from warehouse.lake import write_transaction


@dataclass
class BatchResult:
    batch: int
    records: int
    inserted: int
    duplicates: int
    quarantined: int


def load_cursor(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, Any] | None:
    row = con.execute("SELECT cursor FROM lake.cursors WHERE source = ? ORDER BY batch DESC LIMIT 1",
                      [source]).fetchone()
    return json.loads(row[0]) if row else None


def _as_arrow(table: RawTable, rows: Records) -> pa.Table | StagedTable:
    if isinstance(rows, (pa.Table, StagedTable)):
        return rows
    columns = table.column_names
    return pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows]) if rows else pa.table(
        {c: pa.array([], pa.string()) for c in columns})


def _row_count(con, rows: pa.Table | StagedTable) -> int:
    if isinstance(rows, StagedTable):
        return con.execute(f"SELECT count(*) FROM {rows.name}").fetchone()[0]
    return rows.num_rows


def _insert_new(con: duckdb.DuckDBPyConnection, table: RawTable, rows: pa.Table | StagedTable, batch: int) -> int:
    if isinstance(rows, pa.Table) and rows.num_rows == 0:
        return 0     # (an empty batch's columns are untyped: the time-window dedupe below could not compare them)
    if isinstance(rows, StagedTable):
        con.execute(f"CREATE OR REPLACE TEMP VIEW incoming AS SELECT * FROM {rows.name}")
    else:
        con.register("incoming", rows)
    columns = table.column_names
    try:
        key = ", ".join(table.key)
        match = " AND ".join(f"stored.{k} IS NOT DISTINCT FROM fresh.{k}" for k in table.key)
        window, params = "", []
        if table.same_key_same_ts:
            # The same record always carries the same time, so only the batch's time range can hold it. The
            # bounds go in as constants, so that DuckLake skips every data file whose ts range is outside.
            low, high = con.execute("SELECT min(ts), max(ts) FROM incoming").fetchone()
            if low is not None:
                window, params = " AND stored.ts BETWEEN ? AND ?", [low, high]
        select_columns = ", ".join(f"CAST({c} AS {table.column_type(c)}) AS {c}" for c in columns)
        # DISTINCT ON hashes whole rows; batches rarely repeat a key, which a count over the key alone shows.
        repeated = con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM incoming").fetchone()[0]
        distinct = f"DISTINCT ON ({key}) " if repeated else ""
        inserted = con.execute(f"""
            INSERT INTO lake.{table.name} ({", ".join(columns)}, _batch)
            SELECT {", ".join(columns)}, {batch}
            FROM (SELECT {distinct}{select_columns} FROM incoming) AS fresh
            WHERE NOT EXISTS (SELECT 1 FROM lake.{table.name} AS stored WHERE {match}{window})
        """, params).fetchone()[0]
    finally:
        if isinstance(rows, StagedTable):
            con.execute("DROP VIEW incoming")
        else:
            con.unregister("incoming")
    return int(inserted)


def commit(con: duckdb.DuckDBPyConnection, declared: dict[str, RawTable], source: str, batch: Batch,
           cursor_source: str | None = None) -> BatchResult:
    """Store the batch's new records, its rejects and its cursor atomically. The cursor is saved under
    `cursor_source` (default: the source), for sources with more than one feed (REST poll, webhook inbox).
    `declared` is every declared raw table by name (`cfg.catalog.tables`)."""
    unknown = sorted(set(batch.records) - set(declared))
    if unknown:
        raise KeyError(f"{source} batch writes undeclared tables: {', '.join(unknown)}")
    tables = {name: _as_arrow(declared[name], rows) for name, rows in batch.records.items()}
    records = sum(_row_count(con, t) for name, t in tables.items() if name.startswith("raw_"))

    def work(con: duckdb.DuckDBPyConnection) -> BatchResult:
        batch_id = con.execute("SELECT coalesce(max(batch), 0) + 1 FROM lake.batches").fetchone()[0]
        now = datetime.now(timezone.utc)
        inserted = 0
        for name, rows in tables.items():
            added = _insert_new(con, declared[name], rows, batch_id)
            if name.startswith("raw_"):
                inserted += added
        if batch.rejected:
            con.executemany(
                "INSERT INTO lake.quarantine VALUES (?, ?, ?, ?, ?, ?)",
                [[now, source, r.reason, r.record[:100_000], r.origin, batch_id] for r in batch.rejected])
        if batch.cursor is not None:
            con.execute("DELETE FROM lake.cursors WHERE source = ?", [cursor_source or source])
            con.execute("INSERT INTO lake.cursors VALUES (?, ?, ?, ?)",
                        [cursor_source or source, json.dumps(batch.cursor, default=str), batch_id, now])
        con.execute("INSERT INTO lake.batches VALUES (?, ?, ?, ?, ?, ?)",
                    [batch_id, source, now, records, inserted, len(batch.rejected)])
        return BatchResult(batch_id, records, inserted, records - inserted, len(batch.rejected))

    try:
        return write_transaction(con, work, what=f"{source} batch commit")
    finally:
        for rows in tables.values():
            if isinstance(rows, StagedTable):
                con.execute(f"DROP TABLE IF EXISTS {rows.name}")


class Lookup:
    """Read questions a collector may ask the lake while collecting (through the writer's connection)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, declared: dict[str, RawTable]):
        self.con = con
        self.declared = declared

    def s3_keys_read(self, bucket: str, after: str) -> set[str]:
        """Log object keys already ingested from `bucket` that sort after `after`."""
        return {row[0] for row in self.con.execute(
            "SELECT key FROM lake.s3_objects_read WHERE bucket = ? AND key > ?", [bucket, after]).fetchall()}

    def latest_ts(self, table_name: str, **equals: Any) -> datetime | None:
        table = self.declared[table_name]
        where = " AND ".join(f"{k} = ?" for k in equals if k in table.column_names) or "TRUE"
        row = self.con.execute(f"SELECT max(ts) FROM lake.{table.name} WHERE {where}", list(equals.values())).fetchone()
        return row[0] if row else None

    def count(self, table_name: str, **equals: Any) -> int:
        table = self.declared[table_name]
        where = " AND ".join(f"{k} = ?" for k in equals if k in table.column_names) or "TRUE"
        return int(self.con.execute(f"SELECT count(*) FROM lake.{table.name} WHERE {where}",
                                    list(equals.values())).fetchone()[0])
