"""Build a warehouse for dashboard tests and screenshots through the real write path:
`Writer` -> `warehouse.ingest.commit(Batch)` -> `warehouse.cube.update`.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import config
import collectors
from collectors.base import Batch
from warehouse.writer import Writer
from warehouse import cube, ingest

_request_ids = itertools.count(1)


def write_config(directory: Path, timezone: str = "UTC", repos: Iterable[str] = ("caskdata/cdap",)) -> config.Config:
    """A minimal config.toml in `directory` (warehouse under `directory/var`), loaded the way the app loads it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.toml"
    path.write_text(f"""[warehouse]
dir = "var"
timezone = {json.dumps(timezone)}

[sources.s3_access_logs]
bucket = "downloads-logs"

[sources.github]
repos = {json.dumps(list(repos))}
""")
    return collectors.load_config(path)


def download(ts: datetime, version: str, artifact: str = "cdap", *, status: int = 200,
             operation: str = "REST.GET.OBJECT", remote_ip: str = "203.0.113.7",
             bucket: str = "downloads-logs") -> dict:
    """One `raw_s3_access_logs` row: a GET of `<artifact>/<version>/<artifact>-sandbox-<version>.zip`."""
    key = f"{artifact}/{version}/{artifact}-sandbox-{version}.zip"
    return {"ts": ts, "bucket": bucket, "request_id": f"REQ{next(_request_ids):012d}", "operation": operation,
            "key": key, "remote_ip": remote_ip, "requester": "-", "request_uri": f"GET /{bucket}/{key} HTTP/1.1",
            "http_status": status, "error_code": "-", "bytes_sent": 52_428_800, "object_size": 52_428_800,
            "total_time_ms": 900, "turn_around_time_ms": 20, "referer": "-", "user_agent": "curl/8.5.0",
            "log_object": f"logs/{ts:%Y-%m-%d-%H}-00-00-TEST"}


def fill(cfg: config.Config, downloads: list[dict] = (), stargazers: list[dict] = (), snapshots: list[dict] = (),
         chunk: int = 50_000) -> None:
    """Commit the rows as collector batches (downloads in chunks of `chunk`), then bring the cube up to date.

    `stargazers`: `{"ts", "repo", "login"}` rows; `snapshots`: `{"ts", "repo", "stars", "forks", "watchers",
    "open_issues"}` rows (see warehouse/schema.py)."""
    writer = Writer(cfg)
    try:
        for i in range(0, len(downloads), chunk):
            writer.commit("s3_access_logs", Batch({"raw_s3_access_logs": list(downloads[i:i + chunk])}))
        if stargazers or snapshots:
            writer.commit("github", Batch({"raw_github_stargazers": list(stargazers),
                                                       "raw_github_snapshots": list(snapshots)}))
        cube.update(writer.con, cfg)
    finally:
        writer.close()


def create_empty(cfg: config.Config) -> None:
    """A warehouse with its tables but no data (what the scheduler leaves before its first collection)."""
    Writer(cfg).close()
