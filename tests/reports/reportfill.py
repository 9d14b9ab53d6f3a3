"""A small real warehouse for the dashboards and reports tests, filled through the real write path
(`Writer.commit` -> `cube.update`) with several sources' metrics over 2024-01-01..2024-03-31 (UTC):

- downloads: version 1.0 twice a day, version 2.0 once a day from 2024-02-01 (counter, split by version);
- github.stars of o/r: a snapshot each Monday, 100 + 10 per week (gauge);
- youtube.views: 50 + the day of the month, each day (counter);
- twitter.followers: 1000 + 5 per day, polled at noon (gauge);
- meltwater.mentions: 3 a day for brand cask, 1 a day for rival (counter, split by brand).
A successful github run is logged in the run log so reports can say how fresh the data is.
"""
from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import collectors
from conftest import make_config
from warehouse import cube
from warehouse.batch import Batch
from warehouse.writer import Writer

UTC = timezone.utc
FIRST, LAST = date(2024, 1, 1), date(2024, 3, 31)
_ids = itertools.count(1)


def days():
    day = FIRST
    while day <= LAST:
        yield day
        day += timedelta(days=1)


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def download(ts: datetime, version: str) -> dict:
    return {"ts": ts, "bucket": "b", "request_id": f"R{next(_ids)}", "operation": "REST.GET.OBJECT",
            "key": f"cask/{version}/cask.tgz", "remote_ip": "198.51.100.7", "user_agent": "curl/8", "http_status": 200}


def observation(day: date, metric: str, value: float, dims: dict | None = None) -> dict:
    return {"ts": _at(day, 12), "metric": metric, "dims": json.dumps(dims or {}), "value": float(value),
            "fetched_at": _at(day, 23)}


def build(directory: Path, timezone_name: str = "UTC"):
    """Write the config and fill the warehouse; the config (as the app loads it)."""
    cfg = make_config(directory, timezone_name, s3_access_logs={"bucket": "b"}, github={"repos": ["o/r"]},
                      youtube={"channel_id": "MINE"}, twitter={"accounts": ["cask"]}, meltwater={"brands": {"cask": "1", "rival": "2"}})
    downloads = [download(_at(d, h), "1.0") for d in days() for h in (9, 15)]
    downloads += [download(_at(d, 10), "2.0") for d in days() if d >= date(2024, 2, 1)]
    snapshots = [{"ts": _at(d, 8), "repo": "o/r", "stars": 100 + 10 * (d - FIRST).days // 7, "forks": 1,
                  "watchers": 1, "open_issues": 0} for d in days() if d.weekday() == 0]
    youtube = [observation(d, "youtube.views", 50 + d.day) for d in days()]
    twitter = [observation(d, "twitter.followers", 1000 + 5 * (d - FIRST).days) for d in days()]
    mentions = [observation(d, "meltwater.mentions", n, {"brand": brand}) for d in days()
                for brand, n in (("cask", 3), ("rival", 1))]
    writer = Writer(cfg)
    try:
        writer.commit("s3_access_logs", Batch(records={"raw_s3_access_logs": downloads}, cursor={"k": 1}))
        writer.commit("github", Batch(records={"raw_github_snapshots": snapshots}, cursor={"k": 1}))
        writer.commit("youtube", Batch(records={"raw_youtube": youtube}, cursor={"k": 1}))
        writer.commit("twitter", Batch(records={"raw_twitter": twitter}, cursor={"k": 1}))
        writer.commit("meltwater", Batch(records={"raw_meltwater": mentions}, cursor={"k": 1}))
        cube.update(writer.con, cfg)
        run = writer.state.start_run("github", "collect")
        writer.state.finish_run(run)
    finally:
        writer.close()
    return collectors.load_config(cfg.path)
