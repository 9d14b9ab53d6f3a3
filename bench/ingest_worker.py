"""One Caskalytics ingest in a fresh process, so that its peak memory is its own (the parent reads it with
wait4). Prints one JSON object on stdout: seconds, records, where the time went.

    python bench/ingest_worker.py s3 --warehouse DIR --endpoint URL --bucket NAME [--variant V ...]
    python bench/ingest_worker.py local --warehouse DIR --objects DIR [--variant V ...]

`s3` is the real path: `scheduler.run_source(Writer(cfg), "s3_access_logs")` lists the bucket, downloads the
log objects, parses, dedupes, stores in DuckLake and updates the cube. `local` runs the same collector and
commit code with S3 taken out: the listing comes from a local folder and the parser reads the local files
where they are (parse + store only). `--variant` applies an experiment from `bench/variants.py`.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import config  # noqa: E402
import collectors
import scheduler  # noqa: E402
from warehouse.writer import Writer  # noqa: E402
from collectors import s3_access_logs, s3_logparse  # noqa: E402
from warehouse import cube, ingest  # noqa: E402

import variants  # noqa: E402

KEY_ENV, SECRET_ENV = "BENCH_AWS_ACCESS_KEY_ID", "BENCH_AWS_SECRET_ACCESS_KEY"
TIMEZONE = "America/New_York"      # as in the demo config; the cube's bucketing does time-zone math


class Phases:
    """Wall and CPU seconds spent inside chosen functions (wrapped in place; nested phases are reported
    as they are), and the peak RSS seen while each phase was the innermost one running."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.peak_mb: dict[str, float] = defaultdict(float)
        self.running: list[str] = ["start-up"]
        self._stop = threading.Event()
        threading.Thread(target=self._sample_rss, daemon=True).start()

    def _sample_rss(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        with open("/proc/self/statm") as statm:
            while not self._stop.wait(0.01):
                statm.seek(0)
                rss = int(statm.read().split()[1]) * page_mb
                phase = self.running[-1]
                self.peak_mb[phase] = max(self.peak_mb[phase], rss)

    def stop(self) -> None:
        self._stop.set()

    def measure(self, phase: str, call):
        start, cpu = time.perf_counter(), time.process_time()
        self.running.append(phase)
        try:
            return call()
        finally:
            self.running.remove(phase)
            self.seconds[phase] += time.perf_counter() - start
            self.cpu[phase] += time.process_time() - cpu

    def wrap(self, owner, name: str, phase: str, *, materialize: bool = False) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            # A generator runs inside the timer only if it is consumed there.
            return self.measure(phase, lambda: list(original(*args, **kwargs)) if materialize
                               else original(*args, **kwargs))
        setattr(owner, name, timed)

    def wrap_by_table(self, owner, name: str, prefix: str) -> None:
        """Like wrap, with the phase named after the function's table-name argument (`_insert_new`)."""
        original = getattr(owner, name)

        def timed(con, table_name, *args, **kwargs):
            return self.measure(f"{prefix} {table_name}", lambda: original(con, table_name, *args, **kwargs))
        setattr(owner, name, timed)

    def wrap_concurrent(self, owner, name: str, phase: str) -> None:
        """For calls that overlap in threads: the time during which at least one call was running."""
        original, lock = getattr(owner, name), threading.Lock()
        state = {"active": 0, "since": 0.0, "cpu": 0.0}

        def timed(*args, **kwargs):
            with lock:
                if state["active"] == 0:
                    state["since"], state["cpu"] = time.perf_counter(), time.process_time()
                    self.running.append(phase)
                state["active"] += 1
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    state["active"] -= 1
                    if state["active"] == 0:
                        self.running.remove(phase)
                        self.seconds[phase] += time.perf_counter() - state["since"]
                        self.cpu[phase] += time.process_time() - state["cpu"]
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


def make_config(args) -> config.Config:
    source = {"bucket": args.bucket, "prefix": "logs/", "access_key_id_env": KEY_ENV,
              "secret_access_key_env": SECRET_ENV, "endpoint_url": args.endpoint or ""}
    return collectors.config_from_dict({"warehouse": {"dir": str(args.warehouse), "timezone": TIMEZONE},
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

    if args.mode == "local":
        use_local_objects(args.objects)
    after_open = [f for f in map(variants.apply, args.variant) if f]     # before the timers wrap what they swap
    phases = Phases()
    phases.wrap(s3_access_logs, "_list", "list", materialize=True)
    phases.wrap_concurrent(s3_access_logs, "_download", "download")
    phases.wrap(s3_logparse.LogParser, "parse", "parse")
    phases.wrap_by_table(ingest, "_insert_new", "insert")
    phases.wrap(ingest, "commit", "commit (total)")
    phases.wrap(cube, "update", "cube")

    cfg = make_config(args)
    start, cpu = time.perf_counter(), time.process_time()
    writer = phases.measure("open writer", lambda: Writer(cfg))
    for change in after_open:
        change(writer)
    phases.running[0] = "collector, other"
    summary = scheduler.run_source(writer, "s3_access_logs")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    phases.stop()

    con = writer.con
    stored = con.execute("SELECT count(*) FROM lake.raw_s3_access_logs").fetchone()[0]
    downloads = con.execute("SELECT coalesce(sum(value), 0) FROM lake.rollups WHERE grain = 'year' "
                            "AND metric = 'downloads'").fetchone()[0]
    files = con.execute("SELECT count(*) FROM ducklake_list_files('lake', 'raw_s3_access_logs')").fetchone()[0]
    # Fingerprints of what was stored, so that an experiment can be checked to change nothing.
    raw_hash = con.execute("SELECT sum(hash(ts, bucket, request_id, operation, key, http_status, bytes_sent, "
                           "user_agent, host_id, log_object))::VARCHAR FROM lake.raw_s3_access_logs").fetchone()[0]
    cube_hash = con.execute("SELECT sum(hash(grain, bucket, metric, dims, value))::VARCHAR "
                            "FROM lake.rollups").fetchone()[0]
    writer.close()
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "records": summary.records, "inserted": summary.inserted,
                      "quarantined": summary.quarantined, "batches": summary.batches, "stored": stored,
                      "downloads": downloads, "data_files": files, "variants": args.variant,
                      "raw_hash": raw_hash, "cube_hash": cube_hash,
                      "phases": dict(phases.seconds), "phases_cpu": dict(phases.cpu),
                      "phases_peak_mb": dict(phases.peak_mb)}))


if __name__ == "__main__":
    main()
