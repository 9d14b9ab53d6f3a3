"""A dashboard's widgets answered over a date range: the data a report (PDF, Excel, digest) and the Dashboards
page draw. Every number comes from `warehouse.queries` (`series_frame`, `kpi`), the functions the REST API
answers from, so a report never disagrees with `/metrics/{metric}`.

- `evaluate_widget` answers one widget: its series frame (line, bar, table), the frame summed per split value
  (pie), two metrics side by side per bucket (scatter), or a headline number (KPI).
- `evaluate` answers a whole dashboard for one range and adds the KPI table (each metric's number for the range
  against the period of equal length just before it) and the data freshness of the sources involved.

Gauges are never summed over time: a gauge's number for a range is its value at the end of the range, and a
pie of a gauge shows each split value's last value. Distinct counts (unique visitors) do not add up over
buckets either: their number is that of the last bucket.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd

from config import Config
from warehouse import queries
from warehouse.catalog import COUNTER, DISTINCT
from warehouse.dashboards_state import Dashboard, WidgetSpec
from warehouse.queries import Kpi, QueryError, Rows, SeriesRequest
from warehouse.state import State

# The comparison a report shows for a widget that has none: the period just before, or a year earlier where
# a shorter one does not fit the grain.
DEFAULT_COMPARE = {"hour": "wow", "day": "wow", "week": "wow", "month": "mom", "quarter": "yoy", "year": "yoy"}
PREVIOUS_LABELS = {"wow": "a week earlier", "mom": "a month earlier", "yoy": "a year earlier"}


@dataclass
class WidgetData:
    """One widget's answer. `frame` by kind: line/bar/table: the series frame (`queries.SeriesFrame.frame`);
    pie: `name, value` per slice; scatter: `start, label, period, x, y, complete` per bucket; KPI: the series
    frame behind the number (for a sparkline). `error` is one sentence when the question cannot be answered."""
    spec: WidgetSpec
    start: date
    end: date
    compare: str | None = None
    kind: str = ""                 # the metric's measure kind
    unit: str = ""
    y_kind: str = ""               # scatter: the vertical metric's kind and unit
    y_unit: str = ""
    frame: pd.DataFrame | None = None
    kpi: Kpi | None = None
    note: str = ""                 # e.g. why a KPI shows only the last bucket
    error: str | None = None
    widget_id: int | None = None

    @property
    def title(self) -> str:
        return self.spec.label()

    @property
    def has_data(self) -> bool:
        return self.error is None and (self.kpi is not None or (self.frame is not None and not self.frame.empty))


@dataclass(frozen=True)
class KpiRow:
    """A metric's number for the report's range against the period of the same length just before it."""
    label: str
    metric: str
    unit: str
    kind: str
    value: int | float | None
    previous: int | float | None
    delta: int | float | None
    delta_pct: float | None
    note: str = ""


@dataclass(frozen=True)
class Freshness:
    source: str
    last_data: date | None          # the last day with data of the source's metrics on the dashboard
    last_success_at: str | None     # the last successful collection in the run log (UTC ISO), if any


@dataclass
class ReportModel:
    dashboard: str
    start: date
    end: date
    timezone: str
    generated_at: datetime          # aware, in the reporting time zone
    previous_start: date
    previous_end: date
    kpis: list[KpiRow] = field(default_factory=list)
    widgets: list[WidgetData] = field(default_factory=list)
    freshness: list[Freshness] = field(default_factory=list)


def _request(spec: WidgetSpec, metric: str, start: date, end: date, compare: str | None,
             by: str | None) -> SeriesRequest:
    return SeriesRequest(metric, spec.grain, start, end, where={k: list(v) for k, v in spec.where.items()} or None,
                         by=[by] if by else None, compare=compare)


def evaluate_widget(cfg: Config, cur, spec: WidgetSpec, start: date | None = None, end: date | None = None,
                    with_previous: bool = False, widget_id: int | None = None, rows: Rows | None = None) -> WidgetData:
    """Answer one widget over [start, end] (default: the widget's own range, today in the reporting time zone).
    `with_previous` gives a widget without a comparison the grain's default one (DEFAULT_COMPARE), as reports
    show a previous value for every number. Never raises for a question the warehouse refuses: `error` says why."""
    if start is None or end is None:
        start, end = spec.dates(queries.today(cfg))
    compare = spec.compare or (DEFAULT_COMPARE[spec.grain] if with_previous else None)
    data = WidgetData(spec, start, end, compare, widget_id=widget_id)
    try:
        metric = cfg.catalog.metrics.get(spec.metric)
        if metric is None:
            raise QueryError(f"unknown metric {spec.metric!r}")
        data.kind, data.unit = metric.kind, metric.unit
        if spec.kind == "scatter":
            _scatter(cfg, cur, data, rows)
        elif spec.kind == "kpi":
            _kpi(cfg, cur, data, rows)
        elif spec.kind == "pie":
            _pie(cfg, cur, data, rows)
        else:
            data.frame = queries.series_frame(cur, cfg, _request(spec, spec.metric, start, end, compare, spec.by),
                                              rows=rows).frame
    except QueryError as exc:
        data.error = str(exc)
    return data


def _kpi(cfg: Config, cur, data: WidgetData, rows: Rows | None) -> None:
    spec, start = data.spec, data.start
    if data.kind == DISTINCT:       # unique counts do not add up over buckets: the bucket holding the range's end
        start = data.end
        data.note = f"the {spec.grain} of {data.end.isoformat()}"
    data.kpi = queries.kpi(cur, cfg, spec.metric, spec.grain, start, data.end, data.compare,
                           where={k: list(v) for k, v in spec.where.items()} or None, rows=rows)
    data.frame = queries.series_frame(cur, cfg, _request(spec, spec.metric, data.start, data.end, data.compare,
                                                         None), rows=rows).frame


def _pie(cfg: Config, cur, data: WidgetData, rows: Rows | None) -> None:
    """Slices: each split value's total (a gauge's or distinct count's value in the last bucket); without a
    split, a counter's total per bucket."""
    spec = data.spec
    frame = queries.series_frame(cur, cfg, _request(spec, spec.metric, data.start, data.end, None, spec.by),
                                 rows=rows).frame
    if not spec.by:
        if data.kind != COUNTER:
            raise QueryError(f"a pie of {spec.metric} needs a split: its values do not add up over time")
        data.frame = pd.DataFrame({"name": frame["period"], "value": frame["value"]})
        return
    if data.kind == COUNTER:
        slices = frame.groupby(spec.by, sort=False, dropna=False)["value"].sum()
    else:
        last = frame["start"].max()
        slices = frame[frame["start"] == last].set_index(spec.by)["value"]
        data.note = f"values at the end of {data.end.isoformat()}"
    slices = slices.dropna()
    data.frame = pd.DataFrame({"name": [str(n) for n in slices.index], "value": slices.to_numpy()}) \
        .sort_values("value", ascending=False, kind="stable").reset_index(drop=True)


def _scatter(cfg: Config, cur, data: WidgetData, rows: Rows | None) -> None:
    spec = data.spec
    y_metric = cfg.catalog.metrics.get(spec.y_metric or "")
    if y_metric is None:
        raise QueryError(f"unknown metric {spec.y_metric!r} for the scatter's vertical axis")
    data.y_kind, data.y_unit = y_metric.kind, y_metric.unit
    x = queries.series_frame(cur, cfg, _request(spec, spec.metric, data.start, data.end, None, None), rows=rows).frame
    y_spec = replace(spec, where={})         # the filter names the horizontal metric's dimensions
    y = queries.series_frame(cur, cfg, _request(y_spec, y_metric.name, data.start, data.end, None, None),
                             rows=rows).frame
    both = x[["start", "label", "period", "value", "complete"]].rename(columns={"value": "x"}).merge(
        y[["start", "value", "complete"]].rename(columns={"value": "y", "complete": "y_complete"}), on="start")
    both["complete"] = both["complete"] & both["y_complete"]
    data.frame = both.drop(columns="y_complete")


def _number(cfg: Config, cur, metric: str, where, start: date, end: date, grain: str,
            rows: Rows | None = None) -> tuple[Kpi, str]:
    """A metric's number for [start, end]: a counter's total, a gauge's value at the end; a distinct count's
    value in the `grain` bucket holding `end` (never summed)."""
    kind = cfg.catalog.metrics[metric].kind
    if kind == DISTINCT:
        grain = "day" if grain == "hour" else grain
        return (queries.kpi(cur, cfg, metric, grain, end, end, where=where, rows=rows),
                f"the {grain} of {end.isoformat()}")
    return queries.kpi(cur, cfg, metric, "day", start, end, where=where, rows=rows), ""


def kpi_rows(cfg: Config, cur, widgets: list[WidgetData], start: date, end: date,
             rows: Rows | None = None) -> list[KpiRow]:
    """One row per metric (and filter) on the dashboard, in widget order: the number for [start, end] against
    the same number for the period of equal length just before it."""
    length = end - start + timedelta(days=1)
    found, seen = [], set()
    for data in widgets:
        spec = data.spec
        for name in (spec.metric, *([spec.y_metric] if spec.kind == "scatter" else [])):
            where = {k: list(v) for k, v in spec.where.items()} if name == spec.metric else {}
            key = (name, tuple(sorted((k, tuple(v)) for k, v in where.items())))
            metric = cfg.catalog.metrics.get(name)
            if key in seen or metric is None:
                continue
            seen.add(key)
            try:
                now, note = _number(cfg, cur, name, where or None, start, end, spec.grain, rows)
                before, _ = _number(cfg, cur, name, where or None, start - length, start - timedelta(days=1),
                                    spec.grain, rows)
            except QueryError:       # e.g. shares that do not add up over brands: the widgets show them split
                continue
            delta = None if now.value is None or before.value is None else now.value - before.value
            pct = None if delta is None or not before.value else round(delta / before.value * 100, 2)
            label = name + "".join(f" ({k}: {', '.join(v)})" for k, v in where.items())
            found.append(KpiRow(label, name, metric.unit, metric.kind, now.value, before.value, delta, pct, note))
    return found


def freshness(cfg: Config, cur, metrics: list[str]) -> list[Freshness]:
    """Per source of `metrics`: its last day with data and its last successful collection."""
    runs = State(cfg).source_status()
    found: dict[str, Freshness] = {}
    extents = queries.data_extents(cur, [name for name in metrics if name in cfg.catalog.metrics])
    for name in metrics:
        metric = cfg.catalog.metrics.get(name)
        if metric is None:
            continue
        extent = extents.get(name)
        last = extent[1] if extent else None
        before = found.get(metric.source)
        if before and before.last_data and (last is None or before.last_data >= last):
            continue
        found[metric.source] = Freshness(metric.source, last, runs.get(metric.source, {}).get("last_success_at"))
    return sorted(found.values(), key=lambda f: f.source)


def evaluate(cfg: Config, cur, dashboard: Dashboard, start: date, end: date, rows: Rows | None = None) -> ReportModel:
    """Every widget of `dashboard` answered over [start, end] with a previous value, the KPI table and the
    freshness of the sources involved (see the module notes). `rows`: where `series_frame` reads the rollups
    (`series_batch.prefetched` reads them all at once)."""
    queries.check_day(start, "from")
    queries.check_day(end, "to")
    if start > end:
        raise QueryError(f"from ({start}) is after to ({end})")
    tz = ZoneInfo(cfg.warehouse.timezone)
    length = end - start + timedelta(days=1)
    widgets = [evaluate_widget(cfg, cur, w.spec, start, end, with_previous=True, widget_id=w.id, rows=rows)
               for w in dashboard.widgets]
    metrics = list(dict.fromkeys(m for w in dashboard.widgets
                                 for m in (w.spec.metric, w.spec.y_metric) if m))
    return ReportModel(dashboard.name, start, end, cfg.warehouse.timezone,
                       datetime.now(timezone.utc).astimezone(tz), start - length, start - timedelta(days=1),
                       kpi_rows(cfg, cur, widgets, start, end, rows), widgets, freshness(cfg, cur, metrics))


def sheet_frame(data: WidgetData) -> pd.DataFrame:
    """The widget's rows as a report table shows them: the period, the split value, value, previous, Δ, Δ%
    and whether the bucket is complete (scatter: both metrics; pie: the slices)."""
    if data.frame is None:
        return pd.DataFrame()
    frame = data.frame.copy()
    # The API's numbers (`queries.json_numbers`): whole counts, shares to six places, None before a gauge's start.
    for column, unit in (("value", data.unit), ("previous", data.unit), ("delta", data.unit), ("x", data.unit),
                         ("y", data.y_unit)):
        if column in frame:
            frame[column] = pd.Series(queries.json_numbers(frame[column], unit), index=frame.index, dtype=object)
    if data.spec.kind == "pie":
        return frame.rename(columns={"name": data.spec.by or "period"})
    if data.spec.kind == "scatter":
        return frame[["period", "x", "y", "complete"]].rename(
            columns={"x": data.spec.metric, "y": data.spec.y_metric})
    by = [data.spec.by] if data.spec.by and data.spec.by in frame else []
    return frame[["period", *by, "value", "previous", "delta", "delta_pct", "complete"]]

