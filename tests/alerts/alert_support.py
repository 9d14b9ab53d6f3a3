"""Shared by the alert evaluation tests: a warehouse that receives downloads day by day through the real write
path (`Writer.commit` + `cube.update`), the alert jobs over it, and a real SMTP server to read what they send."""
from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone

from collectors.base import Batch
from config import AlertRule
from notify_support import notify_config
from alerts.jobs import AlertJobs
from warehouse import cube
from warehouse.writer import Writer

UTC = timezone.utc
FIRST_DAY = date(2025, 1, 1)
_ids = itertools.count()


def download(ts: datetime, version: str = "1.0.0") -> dict:
    return {"ts": ts, "bucket": "b", "request_id": f"R{next(_ids)}", "operation": "REST.GET.OBJECT",
            "key": f"cask/{version}/cask.tgz", "remote_ip": f"198.51.100.{next(_ids) % 250}", "user_agent": "curl/8",
            "http_status": 200}


class World:
    """Downloads arriving one day at a time (day n = FIRST_DAY + n), alert jobs reading them, mail on `smtp`."""

    def __init__(self, tmp_path, smtp, rules: list[dict] = (), **sections):
        sections.setdefault("sources", {"s3_access_logs": {"bucket": "b"}})
        self.cfg = notify_config(tmp_path, smtp.port, **sections)
        self.cfg.alerts.rules = [AlertRule.model_validate(rule) for rule in rules]
        self.smtp = smtp
        self.writer = Writer(self.cfg)
        self.state = self.writer.state
        self.jobs = AlertJobs(self.cfg, self.state)
        self.days = 0

    def arrive(self, *counts: int, version: str = "1.0.0") -> None:
        """The next days' downloads (one count per day, at 12:00 UTC) land in the lake; each day makes the
        one before it complete (its source now has data past its end)."""
        for count in counts:
            day = FIRST_DAY + timedelta(days=self.days)
            rows = [download(datetime(day.year, day.month, day.day, 12, tzinfo=UTC) + timedelta(seconds=i), version)
                    for i in range(count)]
            if not rows:      # a day without downloads still needs later data to count as complete
                rows = [dict(download(datetime(day.year, day.month, day.day, 12, tzinfo=UTC)), http_status=404)]
            self.writer.commit("s3_access_logs", Batch(records={"raw_s3_access_logs": rows}, cursor={"day": self.days}))
            self.days += 1
        cube.update(self.writer.con, self.cfg)

    def now(self) -> datetime:
        """The simulated clock: an hour after the newest downloads arrived (13:00 UTC of the newest day)."""
        newest = FIRST_DAY + timedelta(days=max(self.days - 1, 0))
        return datetime(newest.year, newest.month, newest.day, 13, tzinfo=UTC)

    def cycle(self, now: datetime | None = None) -> dict[str, int]:
        """One scheduler minute at `now` (default: the simulated clock): evaluate, then deliver. Delivery
        runs at the real time or later: the outbox's retry clock is not what these tests are about."""
        at = now or self.now()
        counts = self.jobs.evaluate(at)
        self.jobs.deliver(max(at, datetime.now(UTC)))
        return counts

    def subjects(self, to: str | None = None) -> list[str]:
        mails = self.smtp.inbox.to(to) if to else self.smtp.inbox.messages
        return [m["Subject"].strip() for m in mails]     # a folded long Subject reads back with a space

    def close(self) -> None:
        self.jobs.close()
        self.writer.close()


def day(n: int) -> str:
    return (FIRST_DAY + timedelta(days=n)).isoformat()
