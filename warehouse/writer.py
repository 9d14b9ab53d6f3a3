"""The write path: the process's one lake writer. Each batch, its quarantine rows and its advanced cursor
commit in one lake transaction (`warehouse.ingest.commit`); the run log in the state database counts them.

Only the scheduler process (and the CLI commands it offers) writes the lake; the API and the dashboard
attach it read-only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from config import Config, ConfigError
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

    def add(self, result: BatchResult) -> None:
        self.batches += 1
        self.records += result.records
        self.inserted += result.inserted
        self.duplicates += result.duplicates
        self.quarantined += result.quarantined

    def merge(self, other: RunSummary) -> None:
        for name in ("batches", "records", "inserted", "duplicates", "quarantined"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self) -> str:
        return (f"{self.source} {self.kind}: {self.batches} batches, {self.records} records, {self.inserted} new, "
                f"{self.duplicates} already stored, {self.quarantined} quarantined")


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


def one_line(exc: BaseException) -> str:
    """An exception as the one line the run log, `status` and the CLI show."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}" if not isinstance(exc, ConfigError) else text[0]
