"""Read queries shared by the API, the dashboard, exports and alerts.

`metric_series` is the one metric-series query: any metric, any grain, a date range in the reporting time
zone, dimension filters, a split by dimension, and period-over-period comparison.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd

from config import Config
from warehouse.cube import GRAINS, bucket_start
from warehouse.catalog import GAUGE, Metric
from warehouse.metrics import sql_literal

COMPARE_SHIFT = {   # SQL interval per comparison, and the grains it is meaningful for
    "wow": ("INTERVAL 7 DAY", {"hour", "day", "week"}),
    "mom": ("INTERVAL 1 MONTH", {"hour", "day", "week", "month"}),
    "yoy": (None, set(GRAINS)),
}
DEFAULT_SPAN = {"hour": timedelta(days=2), "day": timedelta(days=90), "week": timedelta(weeks=26),
                "month": timedelta(days=730), "quarter": timedelta(days=1095), "year": timedelta(days=1826)}
DIM_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


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
    if req.start and req.end and req.start > req.end:
        raise QueryError(f"from ({req.start}) is after to ({req.end})")
    return metric


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


def _values(cur, metric: Metric, grain: str, bucket_list: list[datetime], req: SeriesRequest) -> pd.DataFrame:
    """One row per (bucket, group) with the metric value; every bucket present for every group seen."""
    by = req.by or []
    group_cols = "".join(f", json_extract_string(dims, '$.{d}') AS \"{d}\"" for d in by)
    where, args = _filters(req)
    first, last = bucket_list[0], bucket_list[-1]
    frame = cur.execute(f"""
        SELECT bucket, dims{group_cols}, value FROM lake.rollups
        WHERE grain = ? AND metric = ? AND bucket BETWEEN ? AND ?{where}""",
        [grain, metric.name, first, last, *args]).df()
    if metric.kind == GAUGE:
        # Carry each series' last value into the range, then forward through empty buckets.
        before = cur.execute(f"""
            SELECT ?::TIMESTAMP AS bucket, dims{group_cols}, arg_max(value, bucket) AS value FROM lake.rollups
            WHERE grain = ? AND metric = ? AND bucket < ?{where} GROUP BY ALL""",
            [first, grain, metric.name, first, *args]).df()
        frame = pd.concat([before[~before.dims.isin(frame[frame.bucket == first].dims)], frame]) if len(before) else frame
        if len(frame):
            wide = frame.pivot_table(index="bucket", columns="dims", values="value", aggfunc="last")
            wide = wide.reindex(pd.DatetimeIndex(bucket_list)).ffill().fillna(0.0)
            long = wide.stack().rename("value").reset_index()
            long.columns = ["bucket", "dims", "value"]
            groups = frame.drop_duplicates("dims").set_index("dims")[by] if by else None
            if groups is not None:
                long = long.join(groups, on="dims")
            frame = long
    keys = ["bucket", *by]
    summed = frame.groupby(keys, dropna=False)["value"].sum().reset_index() if len(frame) else frame[keys + ["value"]]
    if by:
        combos = summed[by].drop_duplicates()
        full = combos.merge(pd.DataFrame({"bucket": bucket_list}), how="cross")
    else:
        full = pd.DataFrame({"bucket": bucket_list})
    full["bucket"] = pd.to_datetime(full["bucket"])
    summed["bucket"] = pd.to_datetime(summed["bucket"])
    return full.merge(summed, on=keys, how="left").fillna({"value": 0.0})


def _label(bucket: datetime, grain: str) -> str:
    return bucket.strftime("%Y-%m-%dT%H:%M") if grain == "hour" else bucket.strftime("%Y-%m-%d")


def _period_name(bucket: datetime, grain: str) -> str:
    if grain == "week":
        year, week, _ = bucket.isocalendar()
        return f"{year}-W{week:02d}"
    return {"hour": bucket.strftime("%Y-%m-%d %H:00"), "day": bucket.strftime("%Y-%m-%d"),
            "month": bucket.strftime("%Y-%m"), "quarter": f"{bucket.year}-Q{(bucket.month - 1) // 3 + 1}",
            "year": str(bucket.year)}[grain]


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 6)


def metric_series(cur: duckdb.DuckDBPyConnection, cfg: Config, req: SeriesRequest) -> dict:
    metric = _validate(req, cfg)
    tz = cfg.warehouse.timezone
    end = req.end or today(cfg)
    start = req.start or (end - DEFAULT_SPAN[req.grain])
    bucket_list = buckets(cur, req.grain, start, end, tz)
    current = _values(cur, metric, req.grain, bucket_list, req)
    if req.compare:
        shift = _shift_sql(req.compare, req.grain)
        pairs = cur.execute(f"SELECT b, date_trunc('{req.grain}', b - {shift}) FROM unnest(?::TIMESTAMP[]) AS t(b)",
                            [bucket_list]).fetchall()
        previous_of = {pd.Timestamp(b): pd.Timestamp(p) for b, p in pairs}
        prev_start = min(previous_of.values()).date()
        prev_end = max(previous_of.values()).date()
        prev_buckets = buckets(cur, req.grain, prev_start, prev_end, tz)
        previous = _values(cur, metric, req.grain, prev_buckets, req) if prev_buckets else current.iloc[0:0]
        keys = ["bucket", *(req.by or [])]
        lookup = {tuple(row[k] for k in keys): row["value"] for _, row in previous.iterrows()}

    def points(frame: pd.DataFrame, group: tuple = ()) -> list[dict]:
        out = []
        for _, row in frame.sort_values("bucket").iterrows():
            point = {"start": _label(row["bucket"], req.grain), "period": _period_name(row["bucket"], req.grain),
                     "value": _number(row["value"])}
            if req.compare:
                point["previous"] = _number(lookup.get((previous_of[row["bucket"]], *group), 0.0))
            out.append(point)
        return out

    answer = {"metric": metric.name, "grain": req.grain, "kind": metric.kind, "timezone": tz,
              "from": start.isoformat(), "to": end.isoformat()}
    if req.compare:
        answer["compare"] = req.compare
    if req.by:
        series = []
        for group, frame in current.groupby(req.by, dropna=False, sort=True):
            group = group if isinstance(group, tuple) else (group,)
            series.append({"dims": dict(zip(req.by, [None if pd.isna(g) else g for g in group])),
                           "points": points(frame, group)})
        answer["series"] = series
    else:
        answer["points"] = points(current)
    return answer


def data_extent(cur, metric: str) -> tuple[date, date] | None:
    """First and last day with data for `metric` (day-grain buckets), or None."""
    row = cur.execute("SELECT min(bucket), max(bucket) FROM lake.rollups WHERE grain = 'day' AND metric = ?",
                      [metric]).fetchone()
    return (row[0].date(), row[1].date()) if row and row[0] else None


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.\-]", version or ""))


def downloads_by_version(cur, cfg: Config, start: date | None, end: date | None) -> dict:
    """`/adoption/downloads`: downloads per version over an inclusive date range (default: all data)."""
    extent = data_extent(cur, "downloads")
    if extent is None:
        return {"downloads": []}
    series = metric_series(cur, cfg, SeriesRequest("downloads", "day", start or extent[0], end or extent[1],
                                                   by=["version"]))
    totals = [{"version": s["dims"]["version"], "dl": sum(p["value"] for p in s["points"])} for s in series["series"]]
    totals.sort(key=lambda t: _version_key(t["version"]), reverse=True)
    return {"downloads": totals}


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
    start, following = period_bounds(cur, grain, at)
    last_day = (following - timedelta(days=1)).date() if grain != "hour" else start.date()
    label = _label(start, grain)
    answer: dict = {"start": label, "end": label if grain == "hour" else last_day.isoformat()}
    for field, metric in fields.items():
        series = metric_series(cur, cfg, SeriesRequest(metric, grain, start.date(), last_day))
        answer[field] = next((p["value"] for p in series["points"] if p["start"] == label), 0)
    return answer


def latest_value(cur, cfg: Config, metric: str, by: str | None = None) -> float | int | dict:
    """A gauge's current value (summed over its dimensions, or per value of `by`)."""
    now = today(cfg)
    series = metric_series(cur, cfg, SeriesRequest(metric, "day", now, now, by=[by] if by else None))
    if by:
        return {s["dims"][by]: s["points"][-1]["value"] for s in series["series"]}
    return series["points"][-1]["value"]


def lifetime_total(cur, cfg: Config, metric: str) -> float | int:
    """A counter's total over all stored data."""
    extent = data_extent(cur, metric)
    if extent is None:
        return 0
    series = metric_series(cur, cfg, SeriesRequest(metric, "year", extent[0], extent[1]))
    return _number(sum(p["value"] for p in series["points"]))
