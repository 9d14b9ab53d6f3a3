"""Read queries shared by the API, the dashboard, exports and alerts.

`series_frame` is the one metric-series query: any metric, any grain, a date range in the reporting time zone,
dimension filters, a split by dimension and period-over-period comparison, answered as a pandas DataFrame
(`SeriesFrame`). `series_json` shapes it into the REST answer; `kpi`, `period_summary`, `latest_value`,
`lifetime_total` and `downloads_by_version` read the same frame.

The frame has one row per (bucket, group of the `by` dimensions):
- a counter (or distinct count) is 0 in a bucket without data; a gauge is its last observation at or before the
  bucket's end, carried through empty buckets and summed over the dimension values of the group, and NaN
  before the first observation of any of them (never 0);
- `complete` is true once the bucket has ended (its end is past, now, in the reporting time zone) and the
  metric's source has data past that end: a fact hour starting at or after it. The source's newest fact hour
  is the largest `last_ts` of its year rollups, a few rows per metric, so this costs one tiny read;
- JSON numbers keep one type per metric: ints for counts (every metric but shares), floats rounded to six
  places for `unit="percent"` metrics (`seo.share_of_voice`), `null` for a gauge before its first observation.

Work is bounded: at most `MAX_POINTS` buckets x series per answer, dates within `FIRST_DAY`..`LAST_DAY`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd

from config import Config
from warehouse.cube import GRAIN_LENGTH, GRAINS, bucket_start
from warehouse.catalog import COUNTER, DISTINCT, GAUGE, Metric
from warehouse.metrics import sql_literal

COMPARE_SHIFT = {   # SQL interval per comparison, and the grains it is meaningful for
    "wow": ("INTERVAL 7 DAY", {"hour", "day", "week"}),
    "mom": ("INTERVAL 1 MONTH", {"hour", "day", "week", "month"}),
    "yoy": (None, set(GRAINS)),
}
DEFAULT_SPAN = {"hour": timedelta(days=2), "day": timedelta(days=90), "week": timedelta(weeks=26),
                "month": timedelta(days=730), "quarter": timedelta(days=1095), "year": timedelta(days=1826)}
DIM_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_POINTS = 50_000                                         # buckets x series in one answer
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)  # the dates a question may name


class QueryError(ValueError):
    """The question cannot be answered as asked (unknown metric, bad grain, bad range); a 4xx."""


@dataclass
class SeriesRequest:
    metric: str
    grain: str = "day"
    start: date | None = None
    end: date | None = None
    where: dict[str, list[str]] | None = None
    by: list[str] | None = None
    compare: str | None = None


@dataclass
class SeriesFrame:
    """A series answer. `frame` columns: `start` and `end` (the bucket's local start and the next bucket's),
    `label` ("YYYY-MM-DD[THH:MM]"), `period` ("2025-W01", "2025-Q1", ...), one column per `by` dimension,
    `value`, `previous`, `delta`, `delta_pct` (NaN without `compare`, or where there is nothing to compare
    with), `complete`; sorted by the `by` columns, then `start`."""
    frame: pd.DataFrame
    metric: str
    kind: str
    grain: str
    timezone: str
    start: date
    end: date
    compare: str | None = None
    by: list[str] = field(default_factory=list)
    unit: str = ""          # the metric's unit: "percent" answers floats, anything else whole numbers


@dataclass(frozen=True)
class Kpi:
    """A headline number and its comparison, as JSON-ready numbers (None where there is none)."""
    value: int | float | None
    previous: int | float | None
    delta: int | float | None
    delta_pct: float | None
    complete: bool


def catalog(cfg: Config) -> list[dict]:
    return [{"name": m.name, "kind": m.kind, "source": m.source, "dims": list(m.dims), "description": m.description}
            for m in cfg.catalog.metrics.values()]


def today(cfg: Config) -> date:
    return datetime.now(ZoneInfo(cfg.warehouse.timezone)).date()


def _validate(req: SeriesRequest, cfg: Config) -> Metric:
    metric = cfg.catalog.metrics.get(req.metric)
    if metric is None:
        raise QueryError(f"unknown metric {req.metric!r}; see /metrics for the catalog")
    if req.grain not in GRAINS:
        raise QueryError(f"grain must be one of {', '.join(GRAINS)}, got {req.grain!r}")
    for dim in [*(req.where or {}), *(req.by or [])]:
        if dim not in metric.dims:
            raise QueryError(f"{metric.name} has no dimension {dim!r}; its dimensions: {', '.join(metric.dims) or 'none'}")
    if req.compare is not None:
        if req.compare not in COMPARE_SHIFT:
            raise QueryError(f"compare must be one of wow, mom, yoy, got {req.compare!r}")
        if req.grain not in COMPARE_SHIFT[req.compare][1]:
            raise QueryError(f"compare={req.compare} needs a grain shorter than the comparison period, not {req.grain}")
    for day, what in ((req.start, "from"), (req.end, "to")):
        if day is not None:
            check_day(day, what)
    if req.start and req.end and req.start > req.end:
        raise QueryError(f"from ({req.start}) is after to ({req.end})")
    if not metric.additive_dims:
        for dim in metric.dims:
            if dim not in (req.by or []) and len(set((req.where or {}).get(dim, []))) != 1:
                raise QueryError(f"{metric.name} cannot be added up over its {dim} values: split it by the dimension "
                                 f"(by={dim}) or pick one value (where={dim}:...)")
    return metric


def check_day(day: date, what: str) -> None:
    """Dates beyond these bounds name no data and would overflow the calendar arithmetic."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise QueryError(f"{what} must be a date from {FIRST_DAY} to {LAST_DAY}, got {day.isoformat()}")


def _check_points(buckets_count: int, series_count: int) -> None:
    if buckets_count * series_count > MAX_POINTS:
        raise QueryError(f"this question needs up to {buckets_count * series_count:,} points ({buckets_count:,} "
                         f"buckets x {series_count:,} series) but one answer holds at most {MAX_POINTS:,}: narrow "
                         f"the range, take a longer grain or filter with where=")


def _most_buckets(grain: str, start: date, end: date) -> int:
    """An upper bound of the `grain` buckets overlapping [start, end], known before any is built."""
    days = (end - start).days + 1
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    return {"hour": days * 24 + 1, "day": days, "week": days // 7 + 2, "month": months,
            "quarter": months // 3 + 2, "year": end.year - start.year + 1}[grain]


def _shift_sql(compare: str, grain: str) -> str:
    interval, _ = COMPARE_SHIFT[compare]
    if compare == "yoy":   # align day of week for short grains, calendar periods otherwise
        return "INTERVAL 364 DAY" if grain in ("hour", "day", "week") else "INTERVAL 1 YEAR"
    return interval


def buckets(cur, grain: str, start: date, end: date, tz: str) -> list[datetime]:
    """Every bucket start (local wall clock) overlapping [start, end], in order; DST gaps have no bucket."""
    rows = cur.execute(f"""
        SELECT DISTINCT {bucket_start(grain, 'h', tz)} AS b
        FROM generate_series(timezone({sql_literal(tz)}, ?::TIMESTAMP),
                             timezone({sql_literal(tz)}, ?::TIMESTAMP) - INTERVAL 1 HOUR, INTERVAL 1 HOUR) AS t(h)
        ORDER BY b""", [start, end + timedelta(days=1)]).fetchall()
    return [r[0] for r in rows]


def _filters(req: SeriesRequest) -> tuple[str, list]:
    clauses, args = [], []
    for dim, values in (req.where or {}).items():
        clauses.append(f"json_extract_string(dims, '$.{dim}') IN ({', '.join('?' * len(values))})")
        args.extend(values)
    return "".join(f" AND {c}" for c in clauses), args


def _values(cur, metric: Metric, grain: str, index: pd.DatetimeIndex, req: SeriesRequest) -> pd.DataFrame:
    """`bucket, <by dims>..., value`: every bucket of `index` for every group seen (a counter's groups: those
    with data in the range; a gauge's: those observed up to its end)."""
    by = req.by or []
    group_cols = "".join(f", json_extract_string(dims, '$.{d}') AS \"{d}\"" for d in by)
    where, args = _filters(req)
    first, last = index[0].to_pydatetime(), index[-1].to_pydatetime()
    if metric.kind != GAUGE:
        sparse = cur.execute(f"""
            SELECT bucket{group_cols}, sum(value) AS value FROM lake.rollups
            WHERE grain = ? AND metric = ? AND bucket BETWEEN ? AND ?{where} GROUP BY ALL""",
            [grain, metric.name, first, last, *args]).df()
        grid = pd.DataFrame({"bucket": index})
        if by:
            groups = sparse[by].drop_duplicates()
            _check_points(len(index), len(groups))
            grid = groups.merge(grid, how="cross")
        dense = grid.merge(sparse, on=["bucket", *by], how="left")
        return dense.fillna({"value": 0.0})
    # A gauge: each dims series' observations in the range and its last one before it, carried forward.
    sparse = cur.execute(f"""
        SELECT bucket, dims{group_cols}, value FROM lake.rollups
        WHERE grain = ? AND metric = ? AND bucket BETWEEN ? AND ?{where}
        UNION ALL
        SELECT max(bucket), dims{group_cols}, arg_max(value, bucket) FROM lake.rollups
        WHERE grain = ? AND metric = ? AND bucket < ?{where} GROUP BY ALL""",
        [grain, metric.name, first, last, *args, grain, metric.name, first, *args]).df()
    series_groups = sparse.drop_duplicates("dims").set_index("dims")[by]
    _check_points(len(index), len(series_groups))
    wide = sparse.drop_duplicates(["bucket", "dims"], keep="last").pivot(index="bucket", columns="dims",
                                                                         values="value")
    wide = wide.reindex(wide.index.union(index)).ffill().reindex(index)   # NaN before a series' first value
    if not by:
        return pd.DataFrame({"bucket": index, "value": wide.sum(axis=1, min_count=1).to_numpy()})
    wide.index.name, wide.columns.name = "bucket", "dims"
    long = wide.stack().rename("value").reset_index().join(series_groups, on="dims")
    return long.groupby(["bucket", *by], dropna=False, sort=False)["value"].sum(min_count=1).reset_index()


def _label(bucket: datetime, grain: str) -> str:
    # isoformat, not strftime("%Y"): the year is always four digits
    return bucket.isoformat(timespec="minutes")[:16] if grain == "hour" else bucket.date().isoformat()


def _period_name(bucket: datetime, grain: str) -> str:
    if grain == "week":
        year, week, _ = bucket.isocalendar()
        return f"{year:04d}-W{week:02d}"
    day = bucket.date().isoformat()
    return {"hour": f"{day} {bucket.hour:02d}:00", "day": day, "month": day[:7],
            "quarter": f"{day[:4]}-Q{(bucket.month - 1) // 3 + 1}", "year": day[:4]}[grain]


def _grid(cur, grain: str, start: date, end: date, tz: str, compare: str | None) -> pd.DataFrame:
    """`bucket` (local start), `end` (the next bucket's start), `label`, `period` and, with `compare`,
    `previous_bucket` (the compared bucket's start) for every bucket overlapping [start, end]."""
    previous = f"date_trunc('{grain}', b - {_shift_sql(compare, grain)})" if compare else "NULL::TIMESTAMP"
    grid = cur.execute(f"""
        SELECT b AS bucket, b + {GRAIN_LENGTH[grain]} AS "end", {previous} AS previous_bucket
        FROM unnest(?::TIMESTAMP[]) AS t(b) ORDER BY b""", [buckets(cur, grain, start, end, tz)]).df()
    starts = grid["bucket"].dt.to_pydatetime()
    grid["label"] = [_label(b, grain) for b in starts]
    grid["period"] = [_period_name(b, grain) for b in starts]
    return grid


def _latest_data(cur, cfg: Config, metric: Metric) -> datetime | None:
    """Local start of the newest fact hour of the metric's source (any of its metrics), or None."""
    tz = cfg.warehouse.timezone
    names = [m.name for m in cfg.catalog.metrics_of(metric.source)]
    return cur.execute(f"SELECT timezone(?, max(last_ts)) FROM lake.rollups WHERE grain = 'year' "
                       f"AND metric IN ({', '.join('?' * len(names))})", [tz, *names]).fetchone()[0]


def series_frame(cur: duckdb.DuckDBPyConnection, cfg: Config, req: SeriesRequest) -> SeriesFrame:
    """Answer a series question as a frame (see the module notes for its rules and `SeriesFrame` for its
    columns). Raises QueryError for a question that cannot be answered as asked."""
    metric = _validate(req, cfg)
    tz, by = cfg.warehouse.timezone, list(req.by or [])
    end = req.end or today(cfg)
    start = req.start or max(end - DEFAULT_SPAN[req.grain], FIRST_DAY)
    _check_points(_most_buckets(req.grain, start, end), 1)    # before any bucket is built
    grid = _grid(cur, req.grain, start, end, tz, req.compare)
    frame = _values(cur, metric, req.grain, pd.DatetimeIndex(grid["bucket"]), req).merge(grid, on="bucket")
    if req.compare:
        earlier = _grid(cur, req.grain, grid["previous_bucket"].min().date(), grid["previous_bucket"].max().date(),
                        tz, None)
        previous = _values(cur, metric, req.grain, pd.DatetimeIndex(earlier["bucket"]), req)
        frame = frame.merge(previous.rename(columns={"bucket": "previous_bucket", "value": "previous"}),
                            on=["previous_bucket", *by], how="left")
        if metric.kind != GAUGE:   # nothing counted then (or a DST-skipped hour): 0; a gauge unobserved: NaN
            frame["previous"] = frame["previous"].fillna(0.0)
    else:
        frame["previous"] = np.nan
    frame["delta"] = frame["value"] - frame["previous"]
    frame["delta_pct"] = (frame["delta"] / frame["previous"].where(frame["previous"] != 0) * 100)
    now = datetime.now(ZoneInfo(tz)).replace(tzinfo=None)
    latest = _latest_data(cur, cfg, metric)
    frame["complete"] = (frame["end"] <= now) & (frame["end"] <= latest) if latest is not None else False
    frame = frame.rename(columns={"bucket": "start"}).sort_values([*by, "start"], kind="stable")
    columns = ["start", "end", "label", "period", *by, "value", "previous", "delta", "delta_pct", "complete"]
    return SeriesFrame(frame[columns].reset_index(drop=True), metric.name, metric.kind, req.grain, tz, start, end,
                       req.compare, by, metric.unit)


def json_numbers(values: pd.Series, unit: str) -> list:
    """The values as JSON numbers of the metric's one type (module notes); None for NaN."""
    missing = values.isna().to_numpy()
    filled = values.fillna(0.0).to_numpy(dtype=float)
    numbers = (filled.round(6) if unit == "percent" else filled.round().astype(np.int64)).astype(object)
    numbers[missing] = None
    return numbers.tolist()


def series_json(series: SeriesFrame) -> dict:
    """The REST answer of `/metrics/{metric}`: `points` (or `series` of `{dims, points}` with `by`), each point
    `{start, period, value, complete}` plus `previous` with `compare`."""
    frame = series.frame
    numbers = {"value": frame["value"], **({"previous": frame["previous"]} if series.compare else {})}
    points = pd.DataFrame({"start": frame["label"], "period": frame["period"],   # object columns keep None
                           **{k: pd.Series(json_numbers(v, series.unit), index=frame.index, dtype=object)
                              for k, v in numbers.items()}})
    points["complete"] = frame["complete"].astype(bool)
    records = points.to_dict("records")
    answer = {"metric": series.metric, "grain": series.grain, "kind": series.kind, "timezone": series.timezone,
              "from": series.start.isoformat(), "to": series.end.isoformat()}
    if series.compare:
        answer["compare"] = series.compare
    if not series.by:
        answer["points"] = records
        return answer
    answer["series"] = []
    for group, part in frame.groupby(series.by, dropna=False, sort=True):    # one turn per series
        answer["series"].append({"dims": dict(zip(series.by, [None if pd.isna(g) else g for g in group])),
                                 "points": [records[i] for i in part.index]})
    return answer


def metric_series(cur: duckdb.DuckDBPyConnection, cfg: Config, req: SeriesRequest) -> dict:
    """`series_json(series_frame(...))`: the `/metrics/{metric}` answer."""
    return series_json(series_frame(cur, cfg, req))


def data_extent(cur, metric: str) -> tuple[date, date] | None:
    """First and last day with data for `metric` (day-grain buckets), or None."""
    row = cur.execute("SELECT min(bucket), max(bucket) FROM lake.rollups WHERE grain = 'day' AND metric = ?",
                      [metric]).fetchone()
    return (row[0].date(), row[1].date()) if row and row[0] else None


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.\-]", version or ""))


def downloads_by_version(cur, cfg: Config, start: date | None, end: date | None) -> dict:
    """`/adoption/downloads`: downloads per version over an inclusive date range (default: all data)."""
    for day, what in ((start, "from"), (end, "to")):
        if day is not None:
            check_day(day, what)
    extent = data_extent(cur, "downloads")
    if extent is None:
        return {"downloads": []}
    frame = series_frame(cur, cfg, SeriesRequest("downloads", "day", start or extent[0], end or extent[1],
                                                  by=["version"])).frame
    totals = frame.groupby("version", sort=False)["value"].sum()
    dl = json_numbers(totals, cfg.catalog.metrics["downloads"].unit)
    answer = [{"version": version, "dl": n} for version, n in zip(totals.index, dl)]
    answer.sort(key=lambda t: _version_key(t["version"]), reverse=True)
    return {"downloads": answer}


def period_bounds(cur, grain: str, at: datetime) -> tuple[datetime, datetime]:
    """Local start of the `grain` period holding the local time `at`, and the next period's start."""
    if grain not in GRAINS:
        raise QueryError(f"period must be one of {', '.join(GRAINS)}, got {grain!r}")
    start, following = cur.execute(f"SELECT date_trunc('{grain}', ?::TIMESTAMP), "
                                   f"date_trunc('{grain}', ?::TIMESTAMP) + INTERVAL 1 {grain}", [at, at]).fetchone()
    return start, following


def period_summary(cur, cfg: Config, grain: str, at: datetime | None, fields: dict[str, str]) -> dict:
    """`{start, end, <field>: value, ...}` for the period holding `at` (default: now), one value per metric
    in `fields` (answer field -> metric): a counter's total in the period, a gauge's value at its end.
    `end` is the period's last day (for hours: its start hour)."""
    at = at or datetime.now(ZoneInfo(cfg.warehouse.timezone)).replace(tzinfo=None)
    check_day(at.date(), "at")
    start, following = period_bounds(cur, grain, at)
    last_day = (following - timedelta(days=1)).date() if grain != "hour" else start.date()
    label = _label(start, grain)
    answer: dict = {"start": label, "end": label if grain == "hour" else last_day.isoformat()}
    for name, metric in fields.items():
        frame = series_frame(cur, cfg, SeriesRequest(metric, grain, start.date(), last_day)).frame
        value = json_numbers(frame.loc[frame["start"] == start, "value"], cfg.catalog.metrics[metric].unit)
        answer[name] = value[0] if value else 0
    return answer


def latest_value(cur, cfg: Config, metric: str, by: str | None = None) -> float | int | dict | None:
    """A gauge's current value (summed over its dimensions, or per value of `by`); None (or an empty dict)
    before its first observation, e.g. for a source never collected."""
    now = today(cfg)
    series = series_frame(cur, cfg, SeriesRequest(metric, "day", now, now, by=[by] if by else None))
    values = json_numbers(series.frame["value"], cfg.catalog.metrics[metric].unit)
    if by:
        return dict(zip(series.frame[by], values))
    return values[-1]


def lifetime_total(cur, cfg: Config, metric: str) -> float | int | None:
    """A counter's total over all stored data; None when nothing of it was ever stored (a source never
    collected)."""
    extent = data_extent(cur, metric)
    if extent is None:
        return None
    frame = series_frame(cur, cfg, SeriesRequest(metric, "year", extent[0], extent[1])).frame
    return json_numbers(pd.Series([frame["value"].sum()]), cfg.catalog.metrics[metric].unit)[0]


def kpi(cur, cfg: Config, metric: str, grain: str, start: date, end: date, compare: str | None = None,
        where: dict[str, list[str]] | None = None) -> Kpi:
    """A headline number for [start, end] at `grain`: a counter's total over the buckets, a gauge's (or
    distinct count's) value in the last bucket; with `compare`, the same for the compared buckets, and the
    change. `complete` says whether the last bucket is complete."""
    series = series_frame(cur, cfg, SeriesRequest(metric, grain, start, end, where=where, compare=compare))
    frame, declared = series.frame, cfg.catalog.metrics[metric]
    if declared.kind == COUNTER:
        value, previous = frame["value"].sum(), frame["previous"].sum(min_count=1)
    else:
        if declared.kind == DISTINCT and len(frame) > 1:
            raise QueryError(f"{metric} counts distinct values, which do not add up over {grain}s: ask for "
                             f"one {grain}, or a longer grain")
        value, previous = frame["value"].iloc[-1], frame["previous"].iloc[-1]
    delta = value - previous
    value, previous, delta = json_numbers(pd.Series([value, previous, delta], dtype=float), declared.unit)
    pct = None if delta is None or not previous else round(delta / previous * 100, 2)
    return Kpi(value, previous, delta, pct, bool(frame["complete"].iloc[-1]))
