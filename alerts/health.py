"""Each source's health, read from the run log: what holds alert rules and what digests report.

A source is
- `failing` when its last finished run failed,
- `stale` when its last success is older than 3 x its schedule interval (or it never succeeded but has run),
- `catching up` when its newest run is a backfill still going, or a collect going on for longer than its
  schedule interval (a normal collect takes seconds; a long one is fetching a backlog),
- `never run` when the run log has nothing of it (its data, if any, came some other way), else `ok`.
Rules on a failing, stale or catching-up source are held: their numbers may be incomplete.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from config import SCHEDULE_PATTERN, Config
from warehouse.alert_store import AlertStore
from warehouse.state import State

UTC = timezone.utc
STALE_AFTER_INTERVALS = 3
HOLDING = ("failing", "stale", "catching up")


@dataclass(frozen=True)
class SourceHealth:
    source: str
    status: str                         # ok | failing | stale | catching up | never run
    schedule: str
    last_success_at: datetime | None
    consecutive_failures: int
    last_error: str | None

    @property
    def holds_rules(self) -> bool:
        return self.status in HOLDING


def schedule_interval(spec: str) -> timedelta:
    """How often a schedule ("every 15 minutes", "every 2 hours", "daily at 06:00") runs."""
    match = SCHEDULE_PATTERN.match(spec)
    if match is None:
        raise ValueError(f"not a schedule: {spec!r}")
    if match.group(1):
        n = int(match.group(1))
        return timedelta(minutes=n) if match.group(2).startswith("minute") else timedelta(hours=n)
    return timedelta(days=1)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def source_health(cfg: Config, state: State, now: datetime | None = None,
                  store: AlertStore | None = None) -> dict[str, SourceHealth]:
    """Health of every enabled source, by name."""
    now = now or datetime.now(UTC)
    runs = state.source_status()
    newest = (store or AlertStore(state)).newest_runs()
    health = {}
    for name, settings in cfg.enabled_sources().items():
        info: dict[str, Any] = runs.get(name, {})
        last_success = parse_time(info.get("last_success_at"))
        failures = info.get("consecutive_failures", 0)
        last_run = info.get("last_run") or {}
        interval = schedule_interval(settings.schedule)
        running = newest.get(name)
        if not info and running is None:
            status = "never run"
        elif failures:
            status = "failing"
        elif running and running["status"] == "running" and (
                running["kind"] == "backfill" or now - parse_time(running["started_at"]) > interval):
            status = "catching up"
        elif last_success is None or now - last_success > STALE_AFTER_INTERVALS * interval:
            status = "stale"
        else:
            status = "ok"
        health[name] = SourceHealth(name, status, settings.schedule, last_success, failures,
                                    last_run.get("error") if failures else None)
    return health
