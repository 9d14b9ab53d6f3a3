"""Experiments for `ingest_worker.py --variant NAME[=VALUE]`: each changes one thing in the running process
(a DuckDB setting, or a function swapped in place), never the files under collectors/ or warehouse/.
`bench/s3_profile.py` runs them side by side; a change that pays off is proposed from there, not made here.

A variant is applied before the writer opens; it may return a function to run on the opened writer.
"""
from __future__ import annotations

import atexit
import ctypes
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from collectors import s3_access_logs, s3_logparse
from warehouse import ingest

AfterOpen = Callable[[object], None] | None


def apply(spec: str) -> AfterOpen:
    name, _, value = spec.partition("=")
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[name](value)


# --- settings -------------------------------------------------------------------------------------------

def memory_limit(value: str) -> AfterOpen:
    return lambda writer: writer.con.execute(f"SET memory_limit = '{value}'")


def threads(value: str) -> AfterOpen:
    return lambda writer: writer.con.execute(f"SET threads = {int(value)}")


def batch_mb(value: str) -> AfterOpen:
    def after(writer):
        writer.cfg.sources.s3_access_logs.batch_megabytes = int(value)
    return after


def download_workers(value: str) -> AfterOpen:
    s3_access_logs.ThreadPoolExecutor = lambda max_workers: ThreadPoolExecutor(max_workers=int(value))
    return None


def unpartitioned(_value: str) -> AfterOpen:
    """The raw table without its Hive partitioning by `(year(ts), month(ts))` (files pruned by ts statistics only)."""
    return lambda writer: writer.con.execute("ALTER TABLE lake.raw_s3_access_logs RESET PARTITIONED BY")


def no_prefetch(_value: str) -> AfterOpen:
    """Download each chunk only when it is needed (no overlap of the next chunk's download with parsing and
    committing the current one)."""
    original = s3_access_logs.S3AccessLogs._parse_chunks

    def serial(client, bucket, chunks, parser):
        for chunk in chunks:
            yield from original(client, bucket, [chunk], parser)
    s3_access_logs.S3AccessLogs._parse_chunks = staticmethod(serial)
    return None


def malloc_trim(_value: str) -> AfterOpen:
    """Hand freed heap back to the OS after each parse and commit (glibc keeps it otherwise)."""
    libc = ctypes.CDLL("libc.so.6")
    for owner, name in ((s3_logparse.LogParser, "parse"), (ingest, "commit")):
        original = getattr(owner, name)

        def trimmed(*args, _original=original, **kwargs):
            try:
                return _original(*args, **kwargs)
            finally:
                libc.malloc_trim(0)
        setattr(owner, name, trimmed)
    return None


def mmap_threshold(value: str) -> AfterOpen:
    """glibc raises its mmap threshold (up to 32 MB) each time a large block is freed, after which DuckDB's
    256 KB buffers come from the heap and freed ones stay resident. A fixed threshold keeps them mmapped, so
    a freed buffer goes back to the OS. (Same as MALLOC_MMAP_THRESHOLD_=VALUE in the environment.)"""
    ctypes.CDLL("libc.so.6").mallopt(-3, int(value or 131072))     # -3: M_MMAP_THRESHOLD
    return None


# --- tracing ----------------------------------------------------------------------------------------------

def trace_sql(value: str) -> AfterOpen:
    """Time every statement on the writer connection; print the costliest kinds to stderr at exit."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    limit = int(value or 25)

    class Traced:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args):
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return self._con.execute(sql, *args)
            finally:
                kind = re.sub(r"\s+", " ", re.sub(r"\d+", "N", sql)).strip()[:100]
                entry = totals[kind]
                entry[0] += 1
                entry[1] += time.perf_counter() - start
                entry[2] += time.process_time() - cpu

        def __getattr__(self, name):
            return getattr(self._con, name)

    def report():
        print(f"{'calls':>6}{'wall s':>8}{'CPU s':>8}  statement", file=sys.stderr)
        for kind, (calls, wall, cpu) in sorted(totals.items(), key=lambda item: -item[1][2])[:limit]:
            print(f"{calls:>6}{wall:8.2f}{cpu:8.2f}  {kind}", file=sys.stderr)

    def after(writer):
        writer.con = Traced(writer.con)
        writer.lookup.con = writer.con
        atexit.register(report)
    return after


VARIANTS: dict[str, Callable[[str], AfterOpen]] = {
    "memory_limit": memory_limit,
    "threads": threads,
    "batch_mb": batch_mb,
    "download_workers": download_workers,
    "unpartitioned": unpartitioned,
    "no_prefetch": no_prefetch,
    "malloc_trim": malloc_trim,
    "mmap_threshold": mmap_threshold,
    "trace_sql": trace_sql,
}
