"""Process bodies for test_concurrency.py (spawned: each runs in a fresh interpreter, as the scheduler, the
API and the dashboard sessions do). Each reports one message on the queue and never raises. A spawned child
starts with the parent's sys.path, so it imports the project (and this module) as pytest set them up."""
from __future__ import annotations

import json
import logging
import time
import traceback
from datetime import datetime, timedelta, timezone
from pathlib import Path

import collectors
import config

BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
CHECK_SQL = """
    SELECT (SELECT count(*) FROM lake.raw_s3_access_logs),
           (SELECT cursor FROM lake.cursors WHERE source = ?),
           (SELECT coalesce(sum(value), 0) FROM lake.rollups WHERE grain = 'day' AND metric = 'downloads'),
           (SELECT coalesce(sum(value), 0) FROM lake.rollups WHERE grain = 'hour' AND metric = 'downloads')"""


def make_config(directory: str, tz: str = "America/New_York") -> config.Config:
    return collectors.config_from_dict({"warehouse": {"dir": directory, "timezone": tz},
                             "sources": {"s3_access_logs": {"bucket": "b"}, "github": {"repos": ["o/r"]}}},
                            Path(directory) / "config.toml")


def rows(tag: str, batch: int, size: int) -> list[dict]:
    """`size` downloads (GET 200 of a versioned key), spread over hours and days."""
    return [{"ts": BASE + timedelta(hours=batch, seconds=j), "bucket": "b", "request_id": f"{tag}-{batch}-{j}",
             "operation": "REST.GET.OBJECT", "key": f"cask/1.{batch % 3}.0/cask.tar.gz", "remote_ip": "198.51.100.7",
             "user_agent": "curl/8", "http_status": 200} for j in range(size)]


def write_batches(directory: str, tag: str, batches: int, size: int, cube_every: int, go, queue,
                  pause: float = 0.0) -> None:
    """A scheduler: commit `batches` batches of `size` rows, each with its cursor; roll up every
    `cube_every` batches and at the end (0: never). Reports the error (or None) and the retries it needed."""
    retries: list[str] = []

    class CountRetries(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            retries.append(record.getMessage())

    logging.getLogger("caskalytics.retry").addHandler(CountRetries(logging.WARNING))
    try:
        from warehouse.writer import Writer
        from collectors.base import Batch
        from warehouse import cube, ingest
        cfg = make_config(directory)
        writer = Writer(cfg)
        queue.put(("ready", tag, None))
        go.wait(120)
        for i in range(batches):
            result = writer.commit("s3_access_logs",
                                   Batch(records={"raw_s3_access_logs": rows(tag, i, size)}, cursor={"batch": i}),
                                   cursor_source=f"s3_access_logs.{tag}")
            assert result.inserted == size, result
            if cube_every and (i + 1) % cube_every == 0:
                cube.update(writer.con, cfg)
            time.sleep(pause)
        if cube_every:
            cube.update(writer.con, cfg)
        writer.close()
        error = None
    except BaseException:
        error = traceback.format_exc()
    queue.put(("done", tag, {"error": error, "retries": len(retries), "retry_messages": retries[-3:]}))


def read_loop(directory: str, name: str, mode: str, size: int, cursor_source: str, go, stop, queue) -> None:
    """A dashboard session or API worker: read until told to stop; every read must succeed and be whole.

    mode "reader": one `lake.Reader` (long-lived read-only attach, a cursor per read);
    mode "connect": short sessions, a fresh `lake.connect(read_only=True)` every fifth read."""
    errors: list[str] = []
    reads, seen_raw, final = 0, set(), None
    try:
        from warehouse import lake, queries
        cfg = make_config(directory)
        reader = lake.Reader(cfg) if mode == "reader" else None
        if reader:
            with reader.cursor() as first:   # attach before the writer starts
                first.execute("SET threads = 1")   # 5 processes share 2 cores
        queue.put(("ready", name, None))
        go.wait(120)

        session = None

        def read():
            nonlocal session
            if reader:
                con = reader.cursor()
            else:
                if session is None or reads % 5 == 0:
                    if session is not None:
                        session.close()
                    session = lake.connect(cfg, read_only=True)
                    session.execute("SET threads = 1")
                con = session.cursor()
            try:
                raw, cursor, day, hour = con.execute(CHECK_SQL, [cursor_source]).fetchone()
                if reads % 10 == 0:   # the real read path too
                    queries.metric_series(con, cfg, queries.SeriesRequest(
                        "downloads", "day", BASE.date() - timedelta(days=1), BASE.date() + timedelta(days=4)))
                return raw, (json.loads(cursor)["batch"] if cursor else None), day, hour
            finally:
                con.close()

        last = (0, 0.0)
        while True:
            stopping = stop.is_set()
            try:
                raw, batch, day, hour = read()
            except Exception as exc:          # a lock error, a missing file, a half-written snapshot ...
                errors.append(f"read failed: {type(exc).__name__}: {exc}")
                if len(errors) > 500:
                    break
                continue
            reads += 1
            seen_raw.add(raw)
            expected_raw = 0 if batch is None else (batch + 1) * size
            if raw != expected_raw:
                errors.append(f"{raw} raw rows but the cursor says batch {batch}: batch and cursor not atomic")
            if raw % size or day % size:
                errors.append(f"partial batch visible: raw={raw} rolled up={day}")
            if day != hour or day > raw:
                errors.append(f"rollups inconsistent: day={day} hour={hour} raw={raw}")
            if raw < last[0] or day < last[1]:
                errors.append(f"went back in time: {last} -> {(raw, day)}")
            last = (raw, day)
            time.sleep(0.2)       # a dashboard is not a busy loop: leave the two cores to the writer
            if stopping:
                final = {"raw": raw, "batch": batch, "rolled": day}
                break
        if reader:
            reader.close()
        if session is not None:
            session.close()
    except BaseException:
        errors.append(traceback.format_exc())
    queue.put(("done", name, {"reads": reads, "errors": errors[:20], "error_count": len(errors),
                              "distinct_counts": len(seen_raw), "final": final}))
