"""One Caskalytics ingest in a fresh process, so that its peak memory is its own (the parent reads it with
wait4). Prints one JSON object on stdout: seconds, records, where the time went.

    python bench/ingest_worker.py s3 --warehouse DIR --endpoint URL --bucket NAME [--variant V ...]
    python bench/ingest_worker.py local --warehouse DIR --objects DIR [--variant V ...]

`s3` is the real path: `pipeline.run_source(Writer(cfg), "s3_access_logs")` lists the bucket, downloads the
log objects, parses, dedupes, stores in DuckLake and updates the cube. `local` runs the same collector and
commit code with S3 taken out: the listing comes from a local folder and the parser reads the local files
where they are (parse + store only). `--variant` applies an experiment from `bench/variants.py`.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import config  # noqa: E402
import pipeline  # noqa: E402
from collectors import s3_access_logs, s3_logparse  # noqa: E402
from warehouse import cube, ingest  # noqa: E402

import variants  # noqa: E402

KEY_ENV, SECRET_ENV = "BENCH_AWS_ACCESS_KEY_ID", "BENCH_AWS_SECRET_ACCESS_KEY"
TIMEZONE = "America/New_York"      # as in the demo config; the cube's bucketing does time-zone math


class Phases:
    """Wall seconds spent inside chosen functions (wrapped in place; nested phases are reported as-is)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner, name: str, phase: str, *, materialize: bool = False) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                result = original(*args, **kwargs)
                return list(result) if materialize else result      # generators run inside the timer
            finally:
                self.seconds[phase] += time.perf_counter() - start
        setattr(owner, name, timed)

    def wrap_by_table(self, owner, name: str, prefix: str) -> None:
        """Like wrap, with the phase named after the function's table-name argument (`_insert_new`)."""
        original = getattr(owner, name)

        def timed(con, table_name, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(con, table_name, *args, **kwargs)
            finally:
                self.seconds[f"{prefix} {table_name}"] += time.perf_counter() - start
        setattr(owner, name, timed)

    def wrap_concurrent(self, owner, name: str, phase: str) -> None:
        """For calls that overlap in threads: the wall time during which at least one call was running."""
        original, lock = getattr(owner, name), threading.Lock()
        state = {"active": 0, "since": 0.0}

        def timed(*args, **kwargs):
            with lock:
                if state["active"] == 0:
                    state["since"] = time.perf_counter()
                state["active"] += 1
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    state["active"] -= 1
                    if state["active"] == 0:
                        self.seconds[phase] += time.perf_counter() - state["since"]
        setattr(owner, name, timed)


class LocalBucket:
    """Stands in for the boto3 client in `local` mode: lists the log objects under a local folder."""

    def __init__(self, root: Path):
        self.root = root

    def get_paginator(self, _operation: str):
        return self

    def paginate(self, Bucket: str, Prefix: str, StartAfter: str = ""):  # noqa: N803 (boto3's names)
        files = sorted(p for p in (self.root / Prefix).rglob("*") if p.is_file())
        keys = [(str(p.relative_to(self.root)), p.stat().st_size) for p in files]
        yield {"Contents": [{"Key": k, "Size": size, "ETag": ""} for k, size in keys if k > StartAfter]}


def use_local_objects(root: Path) -> None:
    s3_access_logs.make_client = lambda ctx: LocalBucket(root)
    s3_access_logs._download = lambda client, bucket, key, folder, index: [root / key]


def use_s3_collector_only() -> None:
    """`collectors/__init__.py` imports every collector; the bench needs only this one."""
    try:
        import collectors.github  # noqa: F401
    except ModuleNotFoundError:
        pipeline.registry = lambda: {"s3_access_logs": s3_access_logs.S3AccessLogs()}


def make_config(args) -> config.Config:
    source = {"bucket": args.bucket, "prefix": "logs/", "access_key_id_env": KEY_ENV,
              "secret_access_key_env": SECRET_ENV, "endpoint_url": args.endpoint or ""}
    return config.from_dict({"warehouse": {"dir": str(args.warehouse), "timezone": TIMEZONE},
                             "sources": {"s3_access_logs": source}}, args.warehouse / "config.toml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["s3", "local"])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--endpoint", default="")
    parser.add_argument("--bucket", default="bench-logs")
    parser.add_argument("--objects", type=Path, help="local mode: folder holding logs/...")
    parser.add_argument("--variant", action="append", default=[], help="an experiment from bench/variants.py")
    args = parser.parse_args()

    use_s3_collector_only()
    if args.mode == "local":
        use_local_objects(args.objects)
    phases = Phases()
    phases.wrap(s3_access_logs, "_list", "list", materialize=True)
    phases.wrap_concurrent(s3_access_logs, "_download", "download")
    phases.wrap(s3_logparse.LogParser, "parse", "parse")
    phases.wrap_by_table(ingest, "_insert_new", "insert")
    phases.wrap(ingest, "commit", "commit (total)")
    phases.wrap(cube, "update", "cube")

    cfg = make_config(args)
    start = time.perf_counter()
    writer = pipeline.Writer(cfg)
    opened = time.perf_counter()
    for name in args.variant:
        variants.apply(name, writer)
    summary = pipeline.run_source(writer, "s3_access_logs")
    seconds = time.perf_counter() - start
    phases.seconds["open writer"] = opened - start

    con = writer.con
    stored = con.execute("SELECT count(*) FROM lake.raw_s3_access_logs").fetchone()[0]
    downloads = con.execute("SELECT coalesce(sum(value), 0) FROM lake.rollups WHERE grain = 'year' "
                            "AND metric = 'downloads'").fetchone()[0]
    files = con.execute("SELECT count(*) FROM ducklake_list_files('lake', 'raw_s3_access_logs')").fetchone()[0]
    writer.close()
    print(json.dumps({"seconds": seconds, "records": summary.records, "inserted": summary.inserted,
                      "quarantined": summary.quarantined, "batches": summary.batches, "stored": stored,
                      "downloads": downloads, "data_files": files, "variants": args.variant,
                      "phases": dict(phases.seconds)}))


if __name__ == "__main__":
    main()
