"""API failure alerts: a source whose last `[alerts.failures] after` runs failed is down.

For each spell of failures (named by the source's last success before it, so the next spell is a new one):
- one alert to `[alerts.failures] recipients` and the `failures` topic's subscribers, with the source, its
  error, the config key to fix where the error names one (collectors phrase it as "[sources.x] key"), and the
  last success;
- at most one reminder a day while it stays down: reminder n goes out n days after the alert (the key names n,
  so a scheduler that was off for three days sends one reminder, not three);
- one recovery notice once its last run succeeded.
The spell lives in `alert_state` under `failures:<source>` (firing, the spell as `last_bucket`, the alert time
as `last_fired_at`), its alert and recovery in `alert_events`. Messages are queued before the state is saved.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

from alerts.health import SourceHealth, parse_time
from alerts.notices import esc, page, queue, recipients
from alerts.outbox import notify_state
from config import Config
from warehouse.state import State

log = logging.getLogger("caskalytics.alerts.failures")
UTC = timezone.utc
TOPIC = "failures"
REMIND_EVERY = timedelta(days=1)
CONFIG_KEY = re.compile(r"\[(sources\.[a-z0-9_]+)\]\s+([a-z0-9_]+)|\b(sources)\.([a-z0-9_]+)\.([a-z0-9_]+)\b")


def config_key(error: str | None) -> str | None:
    """The config key an error names ("[sources.github] token_env" or "sources.github.token_env"), as
    "[sources.github] token_env"; None when it names none."""
    match = CONFIG_KEY.search(error or "")
    if match is None:
        return None
    if match.group(1):
        return f"[{match.group(1)}] {match.group(2)}"
    return f"[sources.{match.group(4)}] {match.group(5)}"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def down_message(cfg: Config, h: SourceHealth, reminder: int) -> tuple[str, str, str, str]:
    key = config_key(h.last_error)
    again = f" (reminder {reminder}: still down)" if reminder else ""
    subject = f"Source failing: {h.source}{again}"
    lines = [f"The source {h.source} failed {h.consecutive_failures} runs in a row.",
             f"Error: {h.last_error or 'unknown'}",
             f"Config key to check: {key}" if key else "Config key to check: none named by the error",
             f"Last success: {_when(h.last_success_at)}"]
    text = "\n".join(lines) + f"\n\nRun `python scheduler.py status` for details. Dashboard: {cfg.notify.dashboard_url}\n"
    html_body = page(subject, "".join(f"<p>{esc(line)}</p>" for line in lines))
    sms = f"DOWN {h.source}: {h.consecutive_failures} failed runs" + (f", check {key}" if key else "")
    return subject, text, html_body, sms


def up_message(cfg: Config, h: SourceHealth, down_since: str) -> tuple[str, str, str, str]:
    subject = f"Source recovered: {h.source}"
    line = f"The source {h.source} works again: its last run succeeded at {_when(h.last_success_at)}."
    return subject, f"{line}\n\nDashboard: {cfg.notify.dashboard_url}\n", page(subject, f"<p>{esc(line)}</p>"), \
        f"OK {h.source} works again"


class FailureAlerts:
    def __init__(self, cfg: Config, state: State):
        self.cfg, self.state = cfg, state
        self.notify = notify_state(state)

    def evaluate(self, health: dict[str, SourceHealth], now: datetime | None = None) -> Counter:
        now = now or datetime.now(UTC)
        counts: Counter = Counter()
        after = self.cfg.alerts.failures.after
        for name, h in health.items():
            key = f"failures:{name}"
            saved = self.notify.alert_state(key)
            down = saved is not None and bool(saved["firing"])
            if h.consecutive_failures >= after:
                counts.update(self._down(h, saved if down else None, now))
            elif down and h.consecutive_failures == 0 and h.last_success_at is not None:
                counts.update(self._up(h, saved["last_bucket"], now))
        return counts

    def _to(self):
        return recipients(self.state, self.cfg.alerts.failures.recipients, TOPIC)

    def _down(self, h: SourceHealth, saved: dict | None, now: datetime) -> Counter:
        spell = h.last_success_at.isoformat() if h.last_success_at else "never"
        if saved is not None and saved["last_bucket"] == spell:      # alerted; remind once a day
            alerted = parse_time(saved["last_fired_at"])
            reminder = int((now - alerted) / REMIND_EVERY)
            if reminder < 1:
                return Counter()
            subject, text, html_body, sms = down_message(self.cfg, h, reminder)
            counts = queue(self.state, f"failures:{h.source}:{spell}:remind:{reminder}", self._to(), TOPIC, subject,
                           text, html_body, sms_text=sms, link=self.cfg.notify.dashboard_url, now=now)
            counts["reminders"] += counts["queued"] > 0
            return counts
        subject, text, html_body, sms = down_message(self.cfg, h, 0)
        counts = queue(self.state, f"failures:{h.source}:{spell}:down", self._to(), TOPIC, subject, text, html_body,
                       sms_text=sms, link=self.cfg.notify.dashboard_url, now=now)
        self.notify.save_alert_state(f"failures:{h.source}", firing=True, consecutive=h.consecutive_failures,
                                     last_bucket=spell, now=now, event=("fired", None, None, subject))
        log.warning("source %s is down after %d failed runs: alert queued", h.source, h.consecutive_failures)
        counts["down"] += 1
        return counts

    def _up(self, h: SourceHealth, spell: str, now: datetime) -> Counter:
        subject, text, html_body, sms = up_message(self.cfg, h, spell)
        counts = queue(self.state, f"failures:{h.source}:{spell}:recovered", self._to(), TOPIC, subject, text,
                       html_body, sms_text=sms, link=self.cfg.notify.dashboard_url, now=now)
        self.notify.save_alert_state(f"failures:{h.source}", firing=False, consecutive=0, last_bucket=spell, now=now,
                                     event=("recovered", None, None, subject))
        log.info("source %s works again: recovery notice queued", h.source)
        counts["up"] += 1
        return counts
