"""Daily and weekly digests to the subscribers of `digest:daily` and `digest:weekly`.

When: `[alerts.digests] daily_at` local time ([warehouse] timezone) every day, and on `weekly_day` at the same
time. A digest goes out from its scheduled moment for up to a day (a scheduler down at 08:00 sends it when it
is back), once per subscriber: the key `digest:<kind>:<first day>:<channel>:<address>` makes it exactly once.

What: the period that ended last (yesterday; the last whole ISO week, Monday to Sunday), with
- every KPI of the enabled sources: `queries.kpi` at day (week) grain compared week over week, the same
  numbers `/metrics/{metric}?grain=day&from=D&to=D&compare=wow` answers (a share per dimension value);
- the alert events of the period (firings, recoveries, held rules, source failures);
- every enabled source's health;
- the PDF report of the `[alerts.digests] dashboard` saved dashboard (`report_attachment`).
HTML with a plain-text part; SMS subscribers get a one-line summary with the dashboard link.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from alerts.health import SourceHealth
from alerts.notices import esc, number, page, percent, queue, recipients
from alerts.outbox import notify_state
from config import WEEKDAYS, Config
from reports.pdf import dashboard_pdf
from warehouse import queries
from warehouse.alert_store import AlertStore
from warehouse.catalog import Metric
from warehouse.dashboards_state import Dashboards
from warehouse.notify_state import Attachment
from warehouse.state import State

log = logging.getLogger("caskalytics.alerts.digests")
UTC = timezone.utc
KINDS = ("daily", "weekly")
SEND_WITHIN = timedelta(days=1)
COMPARE = "wow"


@dataclass(frozen=True)
class KpiLine:
    metric: str
    label: str                      # the metric, or "metric (dim = value)"
    unit: str
    kpi: queries.Kpi


@dataclass
class Digest:
    kind: str                       # daily | weekly
    start: date
    end: date                       # inclusive
    grain: str
    kpis: list[KpiLine] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    health: list[SourceHealth] = field(default_factory=list)

    @property
    def title(self) -> str:
        if self.kind == "daily":
            return f"Caskalytics daily digest for {self.start:%A %Y-%m-%d}"
        return f"Caskalytics weekly digest for {self.start.isocalendar()[0]}-W{self.start.isocalendar()[1]:02d} " \
               f"({self.start} to {self.end})"


# -- when ---------------------------------------------------------------------------------------------------
def due(cfg: Config, now: datetime) -> list[tuple[str, date, date]]:
    """(kind, first day, last day) of each digest whose latest scheduled moment is at most a day old."""
    tz = ZoneInfo(cfg.warehouse.timezone)
    local = now.astimezone(tz)
    at = time.fromisoformat(cfg.alerts.digests.daily_at)
    moment = datetime.combine(local.date(), at, tz)
    if moment > local:
        moment -= timedelta(days=1)
    found = [("daily", moment.date() - timedelta(days=1), moment.date() - timedelta(days=1))]
    weekday = WEEKDAYS.index(cfg.alerts.digests.weekly_day)
    weekly = moment - timedelta(days=(moment.weekday() - weekday) % 7)
    if local - weekly <= SEND_WITHIN:
        monday = weekly.date() - timedelta(days=weekly.weekday() + 7)
        found.append(("weekly", monday, monday + timedelta(days=6)))
    return found


def digest_key(kind: str, start: date, channel: str, address: str) -> str:
    return f"digest:{kind}:{start.isoformat()}:{channel}:{address}"


# -- what ---------------------------------------------------------------------------------------------------
def _kpi_lines(cur, cfg: Config, metric: Metric, grain: str, start: date, end: date) -> list[KpiLine]:
    if metric.additive_dims or not metric.dims:
        return [KpiLine(metric.name, metric.name, metric.unit,
                        queries.kpi(cur, cfg, metric.name, grain, start, end, COMPARE))]
    dim = metric.dims[0]       # a share: one line per value (shares of different brands do not add up)
    frame = queries.series_frame(cur, cfg, queries.SeriesRequest(metric.name, grain, start, end, by=[dim])).frame
    return [KpiLine(metric.name, f"{metric.name} ({dim} = {value})", metric.unit,
                    queries.kpi(cur, cfg, metric.name, grain, start, end, COMPARE, where={dim: [value]}))
            for value in sorted(frame[dim].dropna().unique())]


def build(cur, cfg: Config, state: State, health: dict[str, SourceHealth], kind: str, start: date,
          end: date) -> Digest:
    grain = "day" if kind == "daily" else "week"
    digest = Digest(kind, start, end, grain, health=[health[name] for name in sorted(health)])
    for source in sorted(cfg.enabled_sources()):
        for metric in cfg.catalog.metrics_of(source):
            if queries.data_extent(cur, metric.name) is None:
                continue                                   # never collected: nothing to report
            digest.kpis.extend(_kpi_lines(cur, cfg, metric, grain, start, end))
    tz = ZoneInfo(cfg.warehouse.timezone)
    window = (datetime.combine(start, time(), tz), datetime.combine(end + timedelta(days=1), time(), tz))
    digest.events = AlertStore(state).events_between(*window)
    return digest


def render(cfg: Config, digest: Digest) -> tuple[str, str, str, str]:
    """(subject, text, html, sms)."""
    compared = "the same day a week earlier" if digest.kind == "daily" else "the week before"
    rows = [(line.label, number(line.kpi.value, line.unit), number(line.kpi.previous, line.unit),
             percent(line.kpi.delta_pct)) for line in digest.kpis]
    events = [f"{e['at'][:16].replace('T', ' ')} UTC  {e['kind']}: {e['message'] or e['rule']}" for e in digest.events]
    health = [f"{h.source}: {h.status}" + (f" (last success {h.last_success_at:%Y-%m-%d %H:%M} UTC)"
                                           if h.last_success_at else "") +
              (f"; {h.consecutive_failures} failed run{'s' if h.consecutive_failures > 1 else ''}: {h.last_error}"
               if h.consecutive_failures else "")
              for h in digest.health]
    text = [digest.title, "", f"Key numbers (change against {compared}):"]
    text += [f"  {label}: {value} (previous {previous}, {change})" for label, value, previous, change in rows] or \
            ["  no data yet"]
    text += ["", "Alerts:"] + ([f"  {e}" for e in events] or ["  none"])
    text += ["", "Sources:"] + ([f"  {h}" for h in health] or ["  none enabled"])
    text += ["", f"Dashboard: {cfg.notify.dashboard_url}", ""]
    cell = "style=\"padding:2px 10px;border-bottom:1px solid #eee\""
    table = "".join(f"<tr><td {cell}>{esc(a)}</td><td {cell} align=\"right\"><b>{esc(b)}</b></td>"
                    f"<td {cell} align=\"right\">{esc(c)}</td><td {cell} align=\"right\">{esc(d)}</td></tr>"
                    for a, b, c, d in rows)
    body = (f"<h3>Key numbers</h3><p style=\"color:#555\">Change against {compared}.</p>"
            f"<table style=\"border-collapse:collapse\"><tr><th align=\"left\">Metric</th><th>Value</th>"
            f"<th>Previous</th><th>Change</th></tr>{table}</table>"
            f"<h3>Alerts</h3><ul>{''.join(f'<li>{esc(e)}</li>' for e in events) or '<li>none</li>'}</ul>"
            f"<h3>Sources</h3><ul>{''.join(f'<li>{esc(h)}</li>' for h in health) or '<li>none enabled</li>'}</ul>"
            f"<p><a href=\"{esc(cfg.notify.dashboard_url)}\">Open the dashboard</a></p>")
    failing = [h.source for h in digest.health if h.status in ("failing", "stale")]
    sms = (f"Caskalytics {digest.kind} {digest.start}: {len(digest.events)} alert events"
           + (f", sources down: {', '.join(failing)}" if failing else ", all sources ok"))
    return digest.title, "\n".join(text), page(digest.title, body), sms


def report_attachment(cfg: Config, cur, state: State, digest: Digest) -> Attachment | None:
    """The PDF report of the `[alerts.digests] dashboard` saved dashboard over the digest's period; None when
    no dashboard has that name. A report that fails to build is left out: a digest without its PDF is better
    than no digest."""
    board = Dashboards(state).by_name(cfg.alerts.digests.dashboard)
    if board is None:
        log.warning("no saved dashboard named %r ([alerts.digests] dashboard): the %s digest goes without a PDF",
                    cfg.alerts.digests.dashboard, digest.kind)
        return None
    try:
        data = dashboard_pdf(cfg, cur, board, digest.start, digest.end)
    except Exception:                                 # noqa: BLE001 - see the docstring
        log.exception("the %s digest's PDF report could not be built; sending it without", digest.kind)
        return None
    return Attachment(f"caskalytics-{digest.kind}-{digest.start.isoformat()}.pdf", "application/pdf", bytes(data))


# -- sending ------------------------------------------------------------------------------------------------
class Digests:
    def __init__(self, cfg: Config, state: State):
        self.cfg, self.state = cfg, state
        self.notify = notify_state(state)

    def send_due(self, cur, health: dict[str, SourceHealth], now: datetime | None = None) -> Counter:
        """Queue every due digest for every subscriber who has not got it; the digest is built only when
        someone still needs it (a cycle after sending costs one outbox lookup per subscriber)."""
        now = now or datetime.now(UTC)
        counts: Counter = Counter()
        for kind, start, end in due(self.cfg, now):
            to = [(channel, address) for channel, address in recipients(self.state, (), f"digest:{kind}")
                  if self.notify.message_by_key(digest_key(kind, start, channel, address)) is None]
            if not to:
                continue
            digest = build(cur, self.cfg, self.state, health, kind, start, end)
            subject, text, html_body, sms = render(self.cfg, digest)
            attachment = report_attachment(self.cfg, cur, self.state, digest)
            counts.update(queue(self.state, f"digest:{kind}:{start.isoformat()}", to, f"digest:{kind}", subject, text,
                                html_body, sms_text=sms, link=self.cfg.notify.dashboard_url,
                                attachments=[attachment] if attachment else (), now=now))
            counts[f"digest:{kind}"] += 1
        return counts
