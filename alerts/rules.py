"""Threshold and change rules, evaluated on complete buckets only.

A rule (`config.AlertRule`, from `[[alerts.rules]]` or stored through the API) watches one metric at one
grain, optionally filtered by dimension (`where`). Each complete bucket is judged once, in order:
- `breach`: `above`/`below` is crossed by the value, or `change_below_pct`/`change_above_pct` by the change
  against `compare` (the frame's `delta_pct`: "down 30% week over week" is `change_below_pct = -30`);
- `inside`: every condition is back inside by its hysteresis band (`hysteresis_pct` of the mark, default 5%):
  a rule firing above 100 recovers at 95 or less, so a value hovering at 100 does not flap;
- `band`: neither (between the mark and the band's edge): a firing rule stays firing, a quiet one stays quiet;
- `skip`: no value (a gauge before its first observation) or less volume than `min_volume` (the value, or
  for change rules the larger of value and compared value): the bucket neither counts nor resets.
A rule fires after `for` breaching buckets in a row, once, and recovers once, at the first `inside` bucket.

Nothing is judged while the metric's source is failing, stale or catching up (`alerts.health`): the rule is
held where it was, and when the source is stale its recipients get one "source stale" notice per stale spell.

Exactly once: messages are queued under keys naming the occasion (`rule:<name>:fire:<bucket>:<channel>:
<address>`) BEFORE the rule's state is saved; a crash in between makes the next cycle judge the same buckets
again and queue the same keys, which the outbox ignores.

Speed: one `series_frame` per (metric, grain, where, compare) for all rules sharing it; rules without a
comparison ride along with a comparing group of the same series.
"""
from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from pydantic import ValidationError

from alerts.health import SourceHealth
from alerts.notices import esc, number, page, percent, queue, recipients
from alerts.outbox import notify_state
from config import AlertRule, Config
from warehouse import queries, rollup_snapshot
from warehouse.alert_store import AlertStore
from warehouse.queries import COMPARE_SHIFT, QueryError, SeriesRequest
from warehouse.state import State

log = logging.getLogger("caskalytics.alerts.rules")
UTC = timezone.utc
GRAIN_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 31, "quarter": 92, "year": 366}
FIRST_LOOK_SLACK = 3     # buckets a source may lag: the first evaluation looks back `for` + this many
MAX_CATCH_UP = {"hour": 336, "day": 400, "week": 104, "month": 36, "quarter": 12, "year": 5}   # buckets
COMPARE_REACH = {None: timedelta(0), "wow": timedelta(days=7), "mom": timedelta(days=31),
                 "yoy": timedelta(days=367)}      # how far before a range its comparison reads
COMPARE_NAMES = {"wow": "week over week", "mom": "month over month", "yoy": "year over year"}


class RuleError(ValueError):
    """A rule that cannot be evaluated as written, in one sentence."""


# -- which rules --------------------------------------------------------------------------------------------
def where_of(rule: AlertRule) -> dict[str, list[str]]:
    return {dim: sorted([values] if isinstance(values, str) else values) for dim, values in sorted(rule.where.items())}


def check_rule(cfg: Config, rule: AlertRule) -> AlertRule:
    """The rule, if the catalog can answer it: a known metric, its dimensions, a comparison its grain allows."""
    if not conditions(rule):
        raise RuleError(f"rule {rule.name!r} has no condition: give above, below, change_below_pct or "
                        f"change_above_pct")
    metric = cfg.catalog.metrics.get(rule.metric)
    if metric is None:
        raise RuleError(f"rule {rule.name!r}: unknown metric {rule.metric!r}")
    for dim, values in where_of(rule).items():
        if dim not in metric.dims:
            raise RuleError(f"rule {rule.name!r}: {rule.metric} has no dimension {dim!r} "
                            f"(its dimensions: {', '.join(metric.dims) or 'none'})")
        if not values:
            raise RuleError(f"rule {rule.name!r}: where {dim} needs a value")
    if rule.compare and rule.grain not in COMPARE_SHIFT[rule.compare][1]:
        raise RuleError(f"rule {rule.name!r}: compare = {rule.compare} needs a grain shorter than the comparison "
                        f"period, not {rule.grain}")
    if not metric.additive_dims:
        for dim in metric.dims:
            if len(where_of(rule).get(dim, [])) != 1:
                raise RuleError(f"rule {rule.name!r}: {rule.metric} cannot be added up over its {dim} values: "
                                f"pick one with where = {{{dim} = \"...\"}}")
    return rule


def stored_rule(definition: dict[str, Any]) -> AlertRule:
    try:
        return AlertRule.model_validate(definition)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RuleError(f"{where + ': ' if where else ''}{first['msg'].removeprefix('Value error, ')}") from None


def all_rules(cfg: Config, store: AlertStore) -> list[AlertRule]:
    """Config rules, then stored ones (a stored rule may not reuse a config rule's name)."""
    rules = list(cfg.alerts.rules)
    names = {r.name for r in rules}
    for row in store.rules():
        try:
            rule = stored_rule(row["definition"])
        except RuleError as exc:
            log.error("stored rule %r cannot be read: %s", row["name"], exc)
            continue
        if rule.name not in names:
            names.add(rule.name)
            rules.append(rule)
    return rules


# -- judging one bucket -------------------------------------------------------------------------------------
def conditions(rule: AlertRule) -> list[tuple[str, str, float]]:
    """(measure, direction, mark): measure "value" or "change" (percent against `compare`)."""
    found = []
    for measure, direction, mark in (("value", "above", rule.above), ("value", "below", rule.below),
                                     ("change", "above", rule.change_above_pct),
                                     ("change", "below", rule.change_below_pct)):
        if mark is not None:
            found.append((measure, direction, mark))
    return found


def judge(rule: AlertRule, value: float, previous: float, change: float) -> str:
    """"breach", "inside", "band" or "skip" for one bucket (see the module notes)."""
    if value is None or math.isnan(value):
        return "skip"
    volume = value if rule.compare is None else max(value, 0.0 if math.isnan(previous) else previous)
    if volume < rule.min_volume:
        return "skip"
    breached, clear = False, True
    for measure, direction, mark in conditions(rule):
        x = value if measure == "value" else change
        if x is None or math.isnan(x):      # no change from nothing: this condition says nothing
            continue
        band = abs(mark) * rule.hysteresis_pct / 100
        if direction == "above":
            breached, clear = breached or x > mark, clear and x <= mark - band
        else:
            breached, clear = breached or x < mark, clear and x >= mark + band
    return "breach" if breached else "inside" if clear else "band"


def step(rule: AlertRule, firing: bool, consecutive: int, verdict: str) -> tuple[bool, int, str | None]:
    """The rule's next (firing, breaching buckets in a row, transition or None) after one verdict."""
    if verdict == "skip":
        return firing, consecutive, None
    if firing:
        return (False, 0, "recovered") if verdict == "inside" else (True, consecutive, None)
    if verdict == "breach":
        consecutive += 1
        return (True, consecutive, "fired") if consecutive >= rule.for_ else (False, consecutive, None)
    return False, 0, None


# -- messages -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    label: str
    period: str
    value: float
    previous: float
    change: float


def describe(rule: AlertRule, unit: str) -> str:
    parts = []
    for measure, direction, mark in conditions(rule):
        if measure == "value":
            parts.append(f"{direction} {number(mark, unit)}")
        else:
            parts.append(f"change {direction} {mark:+g}% {COMPARE_NAMES[rule.compare]}")
    where = "".join(f", {dim} = {'/'.join(values)}" for dim, values in where_of(rule).items())
    return f"{rule.metric} ({rule.grain}{where}) {' or '.join(parts)}, for {rule.for_} {rule.grain}(s)"


def message(cfg: Config, rule: AlertRule, kind: str, bucket: Bucket) -> tuple[str, str, str, str]:
    """(subject, text, html, sms) for a firing or a recovery."""
    unit = cfg.catalog.metrics[rule.metric].unit
    shown = number(bucket.value, unit)
    change = f" ({percent(bucket.change)} {COMPARE_NAMES[rule.compare]})" if rule.compare else ""
    if kind == "fired":
        subject = f"Alert: {rule.name}: {rule.metric} {shown}{change} in {bucket.period}"
        lead = f"The rule \"{rule.name}\" fires: {rule.metric} was {shown}{change} in {bucket.period}."
    else:
        subject = f"Recovered: {rule.name}: {rule.metric} {shown}{change} in {bucket.period}"
        lead = f"The rule \"{rule.name}\" recovered: {rule.metric} is back inside at {shown}{change} in {bucket.period}."
    rule_text = f"Rule: {describe(rule, unit)}."
    link = cfg.notify.dashboard_url
    text = f"{lead}\n\n{rule_text}\nValue: {shown}\n" + (
        f"Previous: {number(bucket.previous, unit)}\nChange: {percent(bucket.change)}\n" if rule.compare else "") + \
        f"\nDashboard: {link}\n"
    html_body = page(subject, f"<p>{esc(lead)}</p><p style=\"color:#555\">{esc(rule_text)}</p>"
                              f"<p><a href=\"{esc(link)}\">Open the dashboard</a></p>")
    sms = f"{'ALERT' if kind == 'fired' else 'OK'} {rule.name}: {rule.metric} {shown}{change} {bucket.period}"
    return subject, text, html_body, sms


def held_message(cfg: Config, rule: AlertRule, health: SourceHealth) -> tuple[str, str, str, str]:
    since = health.last_success_at.strftime("%Y-%m-%d %H:%M UTC") if health.last_success_at else "never"
    subject = f"Alert held: {rule.name}: source {health.source} is stale"
    lead = (f"The rule \"{rule.name}\" is not evaluated while {health.source} is {health.status}: its last "
            f"successful collection was {since}, so recent {rule.metric} numbers may be incomplete. It resumes by "
            f"itself when the source is current again; this notice is sent once.")
    text = f"{lead}\n\nDashboard: {cfg.notify.dashboard_url}\n"
    html_body = page(subject, f"<p>{esc(lead)}</p><p><a href=\"{esc(cfg.notify.dashboard_url)}\">Open the "
                              f"dashboard</a></p>")
    return subject, text, html_body, f"HELD {rule.name}: {health.source} stale since {since}"


# -- the evaluator ------------------------------------------------------------------------------------------
@dataclass
class RuleState:
    firing: bool = False
    consecutive: int = 0
    last_bucket: str | None = None


def _lookback(today: date, grain: str, buckets: int) -> date:
    return max(today - timedelta(days=math.ceil(buckets * GRAIN_DAYS[grain])), queries.FIRST_DAY)


class RuleEvaluator:
    def __init__(self, cfg: Config, state: State, store: AlertStore | None = None):
        self.cfg, self.state = cfg, state
        self.notify = notify_state(state)
        self.store = store or AlertStore(state)
        self._reported: set[str] = set()        # bad rules already logged by this process

    def evaluate(self, cur, health: dict[str, SourceHealth], now: datetime | None = None) -> Counter:
        """Judge every rule's new complete buckets; counts of fired, recovered, held, queued... messages."""
        now = now or datetime.now(UTC)
        today = now.astimezone(ZoneInfo(self.cfg.warehouse.timezone)).date()
        states = {row["rule"]: row for row in self.store.alert_states()}
        counts: Counter = Counter()
        groups: dict[tuple, list[tuple[AlertRule, date]]] = defaultdict(list)
        for rule in all_rules(self.cfg, self.store):
            try:
                check_rule(self.cfg, rule)
            except RuleError as exc:
                self._report(rule.name, str(exc))
                counts["invalid"] += 1
                continue
            source = self.cfg.catalog.metrics[rule.metric].source
            if (h := health.get(source)) is not None and h.holds_rules:
                counts["held"] += 1
                counts.update(self._hold(rule, h, states.get(f"held:{rule.name}"), states.get(rule.name), now))
                continue
            last = states.get(rule.name, {}).get("last_bucket")
            if last is None:
                start = _lookback(today, rule.grain, rule.for_ + FIRST_LOOK_SLACK)
            else:
                start = max(date.fromisoformat(last[:10]), _lookback(today, rule.grain, MAX_CATCH_UP[rule.grain]))
            where = tuple((dim, tuple(values)) for dim, values in where_of(rule).items())
            groups[(rule.metric, rule.grain, where, rule.compare)].append((rule, start))
        merged = _merge_uncompared(groups)
        newest = _newest_by_source(self.cfg, rollup_snapshot.newest_data(cur, self.cfg))
        now_local = now.astimezone(ZoneInfo(self.cfg.warehouse.timezone)).replace(tzinfo=None)
        work = {}
        for key, members in merged.items():
            metric, grain, _, compare = key
            latest = newest.get(self.cfg.catalog.metrics[metric].source)
            newest_label = newest_complete(grain, min(now_local, latest)) if latest is not None else None
            if newest_label is None or all(((states.get(rule.name) or {}).get("last_bucket") or "") >= newest_label
                                           for rule, _ in members):
                counts["current"] += len(members)       # no bucket completed since they were last judged
                continue
            work[key] = members
        if not work:
            return counts
        # One read of the lake for all of them, then every series from memory (see warehouse.rollup_snapshot).
        floors: dict[tuple[str, str], datetime] = {}
        for (metric, grain, _, compare), members in work.items():
            floor = datetime.combine(min(start for _, start in members), datetime.min.time()) - COMPARE_REACH[compare]
            floors[(grain, metric)] = min(floor, floors.get((grain, metric), floor))
        memory = rollup_snapshot.copy(cur, [(grain, metric, floor) for (grain, metric), floor in floors.items()])
        try:
            frames = self._series(memory, work, today)
            for key, members in work.items():
                frame = frames[key]
                if isinstance(frame, QueryError):
                    for rule, _ in members:
                        self._report(rule.name, f"rule {rule.name!r}: {frame}")
                    counts["invalid"] += len(members)
                    continue
                buckets = _complete_buckets(frame)
                for rule, _ in members:
                    counts.update(self._judge(rule, buckets, states.get(rule.name), now))
        finally:
            memory.close()
        return counts

    def _series(self, memory, work: dict[tuple, list], today: date) -> dict[tuple, pd.DataFrame | QueryError]:
        """Each group's frame. Groups filtering one dimension to one value each (downloads of 3.5.0, of 3.6.0,
        ...) are asked together, split by that dimension (`by`), and cut apart: the rows of a value are the
        rows its own filtered question would answer. A value without rows there (a counter without data in
        the range: its own question answers zeros) is asked on its own."""
        frames: dict[tuple, pd.DataFrame | QueryError] = {}
        batches: dict[tuple, list[tuple]] = defaultdict(list)
        for key in work:
            metric, grain, where, compare = key
            if len(where) == 1 and len(where[0][1]) == 1:
                batches[(metric, grain, compare, where[0][0])].append(key)
        starts = {key: min(start for _, start in members) for key, members in work.items()}
        for (metric, grain, compare, dim), keys in batches.items():
            if len(keys) < 2:
                continue
            values = sorted(key[2][0][1][0] for key in keys)
            request = SeriesRequest(metric, grain, min(starts[k] for k in keys), today, where={dim: values}, by=[dim],
                                    compare=compare)
            try:
                frame = queries.series_frame(memory, self.cfg, request).frame
            except QueryError:
                continue                        # each is asked on its own below, and says what is wrong
            for key in keys:
                part = frame[frame[dim] == key[2][0][1][0]]
                if not part.empty:
                    frames[key] = part.drop(columns=[dim]).reset_index(drop=True)
        for key in work:
            if key in frames:
                continue
            metric, grain, where, compare = key
            request = SeriesRequest(metric, grain, starts[key], today, where={d: list(v) for d, v in where} or None,
                                    compare=compare)
            try:
                frames[key] = queries.series_frame(memory, self.cfg, request).frame
            except QueryError as exc:
                frames[key] = exc
        return frames

    def _judge(self, rule: AlertRule, buckets: list[Bucket], saved: dict | None, now: datetime) -> Counter:
        counts: Counter = Counter()
        state = RuleState(bool(saved["firing"]), saved["consecutive"], saved["last_bucket"]) if saved else RuleState()
        if state.last_bucket is None:
            todo = buckets[-rule.for_:]
        else:
            todo = [b for b in buckets if b.label > state.last_bucket]
        if not todo:
            return counts
        for bucket in todo:
            firing, consecutive, transition = step(rule, state.firing, state.consecutive,
                                                   judge(rule, bucket.value, bucket.previous, bucket.change))
            state = RuleState(firing, consecutive, bucket.label)
            if transition is None:
                continue
            subject, text, html_body, sms = message(self.cfg, rule, transition, bucket)
            verb = "fire" if transition == "fired" else "recover"
            counts.update(queue(self.state, f"rule:{rule.name}:{verb}:{bucket.label}",
                                recipients(self.state, rule.recipients, f"rule:{rule.name}"), f"rule:{rule.name}",
                                subject, text, html_body, sms_text=sms, link=self.cfg.notify.dashboard_url, now=now))
            self.notify.save_alert_state(rule.name, firing=firing, consecutive=consecutive, last_bucket=bucket.label,
                                         now=now, event=(transition, bucket.label, _finite(bucket.value), subject))
            counts[transition] += 1
            log.info("rule %r %s at %s (%s = %s)", rule.name, transition, bucket.label, rule.metric, bucket.value)
        self.notify.save_alert_state(rule.name, firing=state.firing, consecutive=state.consecutive,
                                     last_bucket=state.last_bucket, now=now)
        counts["judged"] += len(todo)
        return counts

    def _hold(self, rule: AlertRule, health: SourceHealth, held: dict | None, saved: dict | None,
              now: datetime) -> Counter:
        """A held rule: unchanged; on a stale source, one notice per stale spell (named by its last success)."""
        if health.status != "stale":
            return Counter()
        spell = health.last_success_at.isoformat() if health.last_success_at else "never"
        if held and held["last_bucket"] == spell:
            return Counter()
        subject, text, html_body, sms = held_message(self.cfg, rule, health)
        counts = queue(self.state, f"rule:{rule.name}:stale:{health.source}:{spell}",
                       recipients(self.state, rule.recipients, f"rule:{rule.name}"), f"rule:{rule.name}", subject,
                       text, html_body, sms_text=sms, link=self.cfg.notify.dashboard_url, now=now)
        current = RuleState(bool(saved["firing"]), saved["consecutive"], saved["last_bucket"]) if saved else RuleState()
        self.notify.save_alert_state(rule.name, firing=current.firing, consecutive=current.consecutive,
                                     last_bucket=current.last_bucket, now=now, event=("held", None, None, subject))
        self.notify.save_alert_state(f"held:{rule.name}", firing=True, consecutive=0, last_bucket=spell, now=now)
        counts["stale_notices"] += 1
        return counts

    def _report(self, name: str, error: str) -> None:
        if name not in self._reported:
            self._reported.add(name)
            log.error("%s; the rule is skipped", error)


def _merge_uncompared(groups: dict[tuple, list]) -> dict[tuple, list]:
    """Rules without a comparison join a comparing group of the same series (its values are the same), so
    that series is read once."""
    merged = {key: list(members) for key, members in groups.items() if key[3] is not None}
    for (metric, grain, where, compare), members in groups.items():
        if compare is not None:
            continue
        partner = next((key for key in merged if key[:3] == (metric, grain, where)), None)
        merged.setdefault(partner or (metric, grain, where, None), []).extend(members)
    return merged


def _newest_by_source(cfg: Config, newest: dict[str, datetime]) -> dict[str, datetime]:
    by_source: dict[str, datetime] = {}
    for metric, moment in newest.items():
        declared = cfg.catalog.metrics.get(metric)
        if declared is not None and moment is not None:
            by_source[declared.source] = max(moment, by_source.get(declared.source, moment))
    return by_source


def newest_complete(grain: str, cutoff: datetime) -> str:
    """The label of the newest `grain` bucket ending at or before `cutoff` (local wall clock): the one before
    the bucket holding `cutoff`. (Across a DST change an hour label may be off by one: that costs a query,
    or delays a judgement to the next hour; it never skips a bucket.)"""
    day = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "hour":
        return (cutoff.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)).isoformat(timespec="minutes")
    if grain == "day":
        return (day - timedelta(days=1)).date().isoformat()
    if grain == "week":
        return (day - timedelta(days=day.weekday() + 7)).date().isoformat()
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    index = cutoff.year * 12 + cutoff.month - 1
    start = index - index % months if grain != "year" else index - (cutoff.month - 1)
    previous = start - months
    return date(previous // 12, previous % 12 + 1, 1).isoformat()


def _complete_buckets(frame: pd.DataFrame) -> list[Bucket]:
    done = frame[frame["complete"]]
    return [Bucket(*row) for row in zip(done["label"], done["period"], done["value"].astype(float),
                                        done["previous"].astype(float), done["delta_pct"].astype(float))]


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)
