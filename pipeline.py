"""Ingestion as named steps, shared by the scheduler loop and the CLI:

    collect(source) / backfill(source, range) -> commit each batch with its cursor -> update the cube
    drain_inbox()   -> deliveries (webhooks, beacon hits) from the SQLite inbox into the lake -> update the cube

Every step is recorded in the run log; a failure is recorded with a one-line reason and re-raised.
"""
from __future__ import annotations

import importlib
import logging
import sys
from dataclasses import dataclass
from datetime import date

from tqdm import tqdm

import collectors
from collectors.base import Context
from config import Config, ConfigError
from warehouse import cube, ingest, lake, schema
from warehouse.state import State

log = logging.getLogger("caskalytics.pipeline")
INBOX_BATCH = 5000         # inbox rows per lake commit when draining


@dataclass
class RunSummary:
    source: str
    kind: str
    batches: int = 0
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0

    def add(self, result: ingest.BatchResult) -> None:
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
        schema.ensure(self.con)
        self.state = State(cfg)
        self.lookup = ingest.Lookup(self.con)

    def close(self) -> None:
        self.con.close()


def _progress(total_hint: int | None, desc: str, show: bool):
    return tqdm(total=total_hint, desc=desc, unit="obj", disable=not show, file=sys.stderr, leave=False)


def run_source(writer: Writer, source: str, *, start: date | None = None, end: date | None = None,
               show_progress: bool = False) -> RunSummary:
    """Collect what is new for `source` (or backfill [start, end]); each batch commits with its cursor."""
    cfg = writer.cfg
    settings = cfg.source(source)
    collector = collectors.get(source)
    if collector is None:
        raise ConfigError(f"source {source!r} has no collector yet")
    kind = "backfill" if start else "collect"
    summary = RunSummary(source, kind)
    run_id = writer.state.start_run(source, kind)
    ctx = Context(config=cfg, settings=settings, lookup=writer.lookup, staging=writer.con)
    try:
        if start:
            batches = collector.backfill(ctx, start, end or start)
        else:
            batches = collector.collect(ctx, ingest.load_cursor(writer.con, source))
        with _progress(None, f"{source} {kind}", show_progress) as bar:
            for batch in batches:
                result = ingest.commit(writer.con, source, batch)
                summary.add(result)
                writer.state.add_to_run(run_id, result.records, result.inserted, result.duplicates,
                                        result.quarantined)
                if batch.progress:
                    bar.total = batch.progress[1]
                    bar.n = batch.progress[0]
                    bar.set_postfix_str(batch.label[-40:], refresh=True)
                log.info("%s: batch %d committed (%s): %d records, %d new, %d quarantined", source,
                         result.batch, batch.label, result.records, result.inserted, result.quarantined)
        cube.update(writer.con, cfg)
    except BaseException as exc:
        writer.state.finish_run(run_id, error=one_line(exc))
        raise
    writer.state.finish_run(run_id)
    log.info(summary.line())
    return summary


def drain_inbox(writer: Writer) -> RunSummary:
    """Move received deliveries (GitHub webhooks, beacon hits) into the lake: each inbox kind through its
    collector's `deliveries_batch(rows)`, with its own cursor `<kind>.inbox` (the last inbox id drained).
    One kind failing does not hold up the others; the first failure is re-raised after all were tried."""
    summary = RunSummary("inbox", "drain")
    failure = None
    for kind in writer.state.inbox_kinds():
        try:
            drained = _drain_kind(writer, kind)
        except Exception as exc:
            log.error("inbox drain of %s failed: %s", kind, one_line(exc))
            failure = failure or exc
            continue
        summary.merge(drained)
    if failure is not None:
        raise failure
    return summary


def _drain_kind(writer: Writer, kind: str) -> RunSummary:
    summary = RunSummary(kind, "drain")
    target = collectors.REGISTRY.get(kind)
    module = importlib.import_module(target.split(":")[0]) if target else None
    deliveries_batch = getattr(module, "deliveries_batch", None)
    if deliveries_batch is None:
        log.warning("inbox rows of kind %r have no collector with deliveries_batch; left in the inbox", kind)
        return summary
    cursor_source = f"{kind}.inbox"
    cursor = ingest.load_cursor(writer.con, cursor_source) or {"last_id": 0}
    rows = writer.state.inbox_after(kind, cursor["last_id"], INBOX_BATCH)
    if not rows:
        return summary
    run_id = writer.state.start_run(kind, "drain")
    try:
        while rows:
            batch = deliveries_batch(rows)
            result = ingest.commit(writer.con, kind, batch, cursor_source=cursor_source)
            summary.add(result)
            writer.state.add_to_run(run_id, result.records, result.inserted, result.duplicates, result.quarantined)
            if len(rows) < INBOX_BATCH:
                break       # caught up: what arrives meanwhile waits for the next drain, in one larger batch
            rows = writer.state.inbox_after(kind, batch.cursor["last_id"], INBOX_BATCH)
        writer.state.prune_inbox(kind, batch.cursor["last_id"], keep_days=getattr(module, "INBOX_KEEP_DAYS", 30))
        if getattr(module, "CUBE_AFTER_DRAIN", True):      # beacon: its scheduled job updates the cube instead
            cube.update(writer.con, writer.cfg)
    except BaseException as exc:
        writer.state.finish_run(run_id, error=one_line(exc))
        raise
    writer.state.finish_run(run_id)
    log.info(summary.line())
    return summary


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}" if not isinstance(exc, ConfigError) else text[0]
