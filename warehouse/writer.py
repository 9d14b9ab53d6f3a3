"""The write path: the process's one lake writer. Each batch, its quarantine rows and its advanced cursor
commit in one lake transaction (`warehouse.ingest.commit`); the run log in the state database counts them.

Only the scheduler process (and the CLI commands it offers) writes the lake; the API and the dashboard
attach it read-only.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from config import Config
from warehouse import ingest, lake, schema
from warehouse.batch import Batch
from warehouse.ingest import BatchResult, Lookup
from warehouse.state import State

log = logging.getLogger("caskalytics.writer")


@dataclass
class RunSummary:
    source: str
    kind: str
    batches: int = 0
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped: int = 0             # items the collector found already read and did not read again
    unit: str = "items"          # what `skipped` counts (the source's progress unit)

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.records += result.records
        self.inserted += result.inserted
        self.duplicates += result.duplicates
        self.quarantined += result.quarantined

    def merge(self, other: RunSummary) -> None:
        for name in ("batches", "records", "inserted", "duplicates", "quarantined", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        return (f"{self.source} {self.kind}: {self.batches} batches, {self.records} records, {self.inserted} new, "
                f"{self.duplicates} already stored, {self.quarantined} quarantined"
                + (f"; {self.skipped} {self.unit.removesuffix('s') if self.skipped == 1 else self.unit} already read, "
                   "skipped" if self.skipped else ""))


class Writer:
    """The process's one lake writer connection plus the state database."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.con = lake.connect(cfg, read_only=False)
        self.con.execute("SET memory_limit = '384MB'")   # with chunked input, this bounds ingestion memory
        # Two threads: reading and typing the CSV, writing Parquet and the cube's aggregates run ~1.6x faster
        # on the 2-vCPU target than with one (bench/RESULTS.md); peak memory stays bounded by the chunking.
        self.con.execute("SET threads = 2")
        schema.ensure(self.con, cfg.catalog.tables)
        self.state = State(cfg)
        self.lookup = Lookup(self.con, cfg.catalog.tables)

    def cursor(self, source: str) -> dict | None:
        return ingest.load_cursor(self.con, source)

    def commit(self, source: str, batch: Batch, cursor_source: str | None = None) -> BatchResult:
        return ingest.commit(self.con, self.cfg.catalog.tables, source, batch, cursor_source=cursor_source)

    def close(self) -> None:
        self.con.close()


def saved_cursors(cfg: Config) -> dict[str, Any]:
    """Every saved cursor by name (sources, and `<kind>.inbox` for the inbox drains), read through a read-only
    connection; {} while there is no lake yet."""
    try:
        con = lake.connect(cfg, read_only=True)
        try:
            rows = con.execute("SELECT source, cursor FROM lake.cursors ORDER BY batch").fetchall()
        finally:
            con.close()
    except lake.WarehouseError:
        return {}
    return {source: json.loads(cursor) for source, cursor in rows}
