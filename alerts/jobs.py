"""What the scheduler runs every minute: `AlertJobs.evaluate` (rules, failure alerts, digests) and
`AlertJobs.deliver` (the outbox). The lake is read through a read-only `Reader`, like the API reads it, so
evaluation never touches the scheduler's write connection."""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timezone

from alerts.digests import Digests
from alerts.failures import FailureAlerts
from alerts.health import source_health
from alerts.outbox import deliver_due
from alerts.rules import RuleEvaluator
from config import Config
from warehouse.alert_store import AlertStore
from warehouse.lake import Reader, WarehouseError
from warehouse.state import State

log = logging.getLogger("caskalytics.alerts.jobs")
UTC = timezone.utc


class AlertJobs:
    def __init__(self, cfg: Config, state: State | None = None, reader: Reader | None = None):
        self.cfg = cfg
        self.state = state or State(cfg)
        self.reader = reader or Reader(cfg)
        self.store = AlertStore(self.state)
        self.rules = RuleEvaluator(cfg, self.state, self.store)
        self.failures = FailureAlerts(cfg, self.state)
        self.digests = Digests(cfg, self.state)

    def evaluate(self, now: datetime | None = None) -> dict[str, int]:
        """One cycle: failure alerts, then rules, then digests; one part failing does not stop the others
        (the error is logged and the part runs again next cycle)."""
        now = now or datetime.now(UTC)
        health = source_health(self.cfg, self.state, now, self.store)
        counts: Counter = Counter()
        for part, work in (("failure alerts", lambda: self.failures.evaluate(health, now)),
                           ("alert rules", lambda: self.rules.evaluate(self.reader.cursor(), health, now)),
                           ("digests", lambda: self.digests.send_due(self.reader.cursor(), health, now))):
            try:
                counts.update(work())
            except WarehouseError as exc:          # no lake yet: nothing to evaluate
                log.info("%s skipped: %s", part, exc)
            except Exception:                      # noqa: BLE001 - see the docstring
                log.exception("%s failed", part)
                counts["errors"] += 1
        return dict(counts)

    def deliver(self, now: datetime | None = None) -> dict[str, int]:
        return deliver_due(self.state, self.cfg, now)

    def close(self) -> None:
        self.reader.close()
