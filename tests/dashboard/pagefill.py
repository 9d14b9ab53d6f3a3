"""A small warehouse of several sources for the Overview, Explore, SQL and Sources page tests, written
through the real write path (`Writer.commit` -> `cube.update`) and the real run log (`State`).

Data, all in UTC, 2024-01-01 .. 2024-03-31 (91 days):
- downloads: 4 a day of 6.9.0 in January, 6 a day of 6.10.0 from February on (one a day at 10:00 + i hours);
- github: a release of caskdata/cdap on 2024-02-05 and one on 2024-03-11; a stargazer a day from 2024-01-01;
- twitter.followers: a poll at noon each day, 1000 + 5 * day number;
- meltwater.mentions: 10 a day for brand cask, 3 a day for brand talend;
- a quarantined twitter record, and in the run log: a twitter outage (two failed runs, then a catch-up) and
  meltwater failing now (a success, then a failure).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import collectors
from collectors.base import Batch, Rejected
from warehouse import cube
from warehouse.state import State
from warehouse.writer import Writer

import lakefill

FIRST = datetime(2024, 1, 1, tzinfo=timezone.utc)
DAYS = 91


def write_config(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.toml"
    path.write_text("""[warehouse]
dir = "var"
timezone = "UTC"

[sources.s3_access_logs]
bucket = "downloads-logs"

[sources.github]
repos = ["caskdata/cdap"]

[sources.twitter]
accounts = ["caskdata"]
schedule = "every 5 minutes"

[sources.meltwater]
brands = {cask = "1", talend = "2"}
""")
    return collectors.load_config(path)


def _observation(metric: str, ts: datetime, value: float, dims: dict | None = None) -> dict:
    return {"ts": ts, "metric": metric, "dims": json.dumps(dims or {}, separators=(",", ":")), "value": value,
            "fetched_at": ts}


def fill(directory: Path):
    cfg = write_config(directory)
    days = [FIRST + timedelta(days=d) for d in range(DAYS)]
    downloads = []
    for day in days:
        version, count = ("6.9.0", 4) if day.month == 1 else ("6.10.0", 6)
        downloads += [lakefill.download(day + timedelta(hours=10 + i), version) for i in range(count)]
    writer = Writer(cfg)
    try:
        writer.commit("s3_access_logs", Batch({"raw_s3_access_logs": downloads}))
        writer.commit("github", Batch({
            "raw_github_releases": [{"ts": datetime(2024, 2, 5, 15, tzinfo=timezone.utc), "repo": "caskdata/cdap",
                                     "release_id": 1, "tag": "v6.10.0"},
                                    {"ts": datetime(2024, 3, 11, 15, tzinfo=timezone.utc), "repo": "caskdata/cdap",
                                     "release_id": 2, "tag": "v6.10.1"}],
            "raw_github_stargazers": [{"ts": day + timedelta(hours=8), "repo": "caskdata/cdap", "login": f"fan{d}"}
                                      for d, day in enumerate(days)]}))
        writer.commit("twitter", Batch(
            {"raw_twitter": [_observation("twitter.followers", day + timedelta(hours=12), 1000 + 5 * d)
                             for d, day in enumerate(days)]},
            rejected=[Rejected("followers_count is not a number", '{"followers_count": "many"}', "GET /2/users/by")]))
        writer.commit("meltwater", Batch({"raw_meltwater": [
            _observation("meltwater.mentions", day + timedelta(hours=12), n, {"brand": brand})
            for day in days for brand, n in (("cask", 10), ("talend", 3))]}))
        cube.update(writer.con, cfg)
    finally:
        writer.close()
    state = State(cfg)
    for source in ("s3_access_logs", "github", "meltwater"):
        state.finish_run(state.start_run(source, "collect"))
    state.finish_run(state.start_run("meltwater", "collect"), error="Unavailable: Meltwater GET /v3/analytics/1: HTTP 503")
    for _ in range(2):
        state.finish_run(state.start_run("twitter", "collect"), error="Unavailable: X GET /2/users/by: HTTP 503")
    caught_up = state.start_run("twitter", "collect")
    state.add_to_run(caught_up, 91, 91, 0, 1)
    state.finish_run(caught_up)
    return cfg
