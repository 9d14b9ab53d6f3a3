"""Experiments for `ingest_worker.py --variant NAME[=VALUE]`: each changes one thing in the running process
(a DuckDB setting, or a function swapped in place), never the files under collectors/ or warehouse/.
`bench/s3_profile.py` runs them side by side; a change that pays off is proposed, not made, from here.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def apply(spec: str, writer) -> None:
    name, _, value = spec.partition("=")
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(sorted(VARIANTS))}")
    VARIANTS[name](writer, value)


def memory_limit(writer, value: str) -> None:
    writer.con.execute(f"SET memory_limit = '{value}'")


def threads(writer, value: str) -> None:
    writer.con.execute(f"SET threads = {int(value)}")


def batch_mb(writer, value: str) -> None:
    writer.cfg.sources.s3_access_logs.batch_megabytes = int(value)


def download_workers(writer, value: str) -> None:
    from collectors import s3_access_logs
    s3_access_logs.ThreadPoolExecutor = lambda max_workers: ThreadPoolExecutor(max_workers=int(value))


def no_partition(writer, _value: str) -> None:
    """The raw table without `PARTITIONED BY (year(ts), month(ts))`."""
    writer.con.execute("ALTER TABLE lake.raw_s3_access_logs RESET PARTITIONED BY")


VARIANTS = {
    "memory_limit": memory_limit,
    "threads": threads,
    "batch_mb": batch_mb,
    "download_workers": download_workers,
    "no_partition": no_partition,
}
