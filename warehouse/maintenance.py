"""Keeping the lake compact: small commits (webhook drains, snapshots) are inlined into the SQLite catalog
and many small Parquet files accumulate; this moves inlined rows to Parquet, merges small files and drops
snapshots (and their files) older than a day, which no reader can still be using."""
from __future__ import annotations

import logging

import duckdb

from warehouse.retry import Retryable, retry
from warehouse.lake import is_commit_conflict

log = logging.getLogger("caskalytics.maintenance")
STEPS = [
    "CALL ducklake_flush_inlined_data('lake')",
    "CALL ducklake_merge_adjacent_files('lake')",
    "CALL ducklake_expire_snapshots('lake', older_than => now() - INTERVAL 1 DAY)",
    "CALL ducklake_cleanup_old_files('lake', older_than => now() - INTERVAL 1 DAY)",
]


def compact(con: duckdb.DuckDBPyConnection) -> None:
    for step in STEPS:
        def run(step=step):
            try:
                con.execute(step).fetchall()
            except duckdb.Error as exc:
                if is_commit_conflict(exc):
                    raise Retryable(str(exc)) from exc
                raise
        retry(run, attempts=5, base_delay=0.2, what=step)
    log.info("lake compacted")
