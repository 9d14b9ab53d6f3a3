"""Read queries shared by the API, the dashboard, exports and alerts.

`metric_series` is the one metric-series query: any metric, any grain, a date range in the reporting time
zone, dimension filters, a split by dimension, and period-over-period comparison. Buckets, labels and
periods come from `warehouse.timegrid`; a series keys its buckets by their start instant (`bucket_utc`), so
the hour a DST end repeats is two points (same `start`, different `offset`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from config import Config
from warehouse import timegrid
from warehouse.metrics import CATALOG, GAUGE, Metric
from warehouse.timegrid import COMPARE_SHIFT, DEFAULT_SPAN, GRAINS, Bucket  # noqa: F401  (re-exported)

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


def catalog() -> list[dict]:
    return [{"name": m.name, "kind": m.kind, "source": m.source, "dims": list(m.dims), "description": m.description}
            for m in CATALOG.values()]


def today(cfg: Config) -> date:
    return timegrid.today(cfg.warehouse.timezone)


def _validate(req: SeriesRequest, cfg: Config) -> Metric:
    metric = CATALOG.get(req.metric)
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


def buckets(cur, grain: str, start: date, end: date, tz: str) -> list[Bucket]:
    """Every bucket overlapping the local days [start, end], in order (`timegrid.buckets`; `cur` is unused)."""
    return timegrid.buckets(grain, start, end, tz)


def _filters(req: SeriesRequest) -> tuple[str, list]:
    clauses, args = [], []
    for dim, values in (req.where or {}).items():
        clauses.append(f"json_extract_string(dims, '$.{dim}') IN ({', '.join('?' * len(values))})")
        args.extend(values)
    return "".join(f" AND {c}" for c in clauses), args


def _values(cur, metric: Metric, grain: str, bucket_list: list[Bucket], req: SeriesRequest) -> pd.DataFrame:
    """One row per (bucket, group) with the metric value; every bucket present for every group seen. The
    `bucket` column holds `Bucket.key` (the start instant in microseconds, `epoch_us(bucket_utc)`)."""
    by = req.by or []
    group_cols = "".join(f", json_extract_string(dims, '$.{d}') AS \"{d}\"" for d in by)
    where, args = _filters(req)
    first, last = bucket_list[0], bucket_list[-1]
    starts = [b.key for b in bucket_list]
    frame = cur.execute(f"""
        SELECT epoch_us(bucket_utc) AS bucket, dims{group_cols}, value FROM lake.rollups
        WHERE grain = ? AND metric = ? AND bucket_utc BETWEEN ? AND ?{where}""",
        [grain, metric.name, first.utc, last.utc, *args]).df()
    if metric.kind == GAUGE:
        # Carry each series' last value into the range, then forward through empty buckets.
        before = cur.execute(f"""
            SELECT ?::BIGINT AS bucket, dims{group_cols}, arg_max(value, bucket_utc) AS value FROM lake.rollups
            WHERE grain = ? AND metric = ? AND bucket_utc < ?{where} GROUP BY ALL""",
            [first.key, grain, metric.name, first.utc, *args]).df()
        frame = pd.concat([before[~before.dims.isin(frame[frame.bucket == first.key].dims)], frame]) if len(before) else frame
        if len(frame):
            wide = frame.pivot_table(index="bucket", columns="dims", values="value", aggfunc="last")
            wide = wide.reindex(pd.Index(starts)).ffill().fillna(0.0)
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
        full = combos.merge(pd.DataFrame({"bucket": starts}), how="cross")
    else:
        full = pd.DataFrame({"bucket": starts})
    full["bucket"] = full["bucket"].astype("int64")
    summed["bucket"] = summed["bucket"].astype("int64")
    return full.merge(summed, on=keys, how="left").fillna({"value": 0.0})


def _label(bucket: datetime, grain: str) -> str:
    return timegrid.start_label(grain, bucket)


def _period_name(bucket: datetime, grain: str) -> str:
    return timegrid.period_name(grain, bucket)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 6)


def metric_series(cur: duckdb.DuckDBPyConnection, cfg: Config, req: SeriesRequest) -> dict:
    metric = _validate(req, cfg)
    tz = cfg.warehouse.timezone
    end = req.end or today(cfg)
    start = req.start or (end - DEFAULT_SPAN[req.grain])
    bucket_list = buckets(cur, req.grain, start, end, tz)
    by_key = {b.key: b for b in bucket_list}
    current = _values(cur, metric, req.grain, bucket_list, req)
    if req.compare:
        # Each bucket's previous one starts at the shifted wall clock (a repeated hour: its first
        # occurrence; a wall clock that a DST change skipped has no bucket and compares with 0).
        shifted = {b.key: timegrid.previous_start(req.grain, b.start, req.compare) for b in bucket_list}
        prev_buckets = buckets(cur, req.grain, min(shifted.values()).date(), max(shifted.values()).date(), tz)
        first_at: dict[datetime, int] = {}
        for b in prev_buckets:
            first_at.setdefault(b.start, b.key)
        previous_of = {key: first_at.get(start) for key, start in shifted.items()}
        previous = _values(cur, metric, req.grain, prev_buckets, req) if prev_buckets else current.iloc[0:0]
        keys = ["bucket", *(req.by or [])]
        lookup = {tuple(row[k] for k in keys): row["value"] for _, row in previous.iterrows()}

    def points(frame: pd.DataFrame, group: tuple = ()) -> list[dict]:
        out = []
        for _, row in frame.sort_values("bucket").iterrows():
            key = int(row["bucket"])
            point = {**by_key[key].fields(), "value": _number(row["value"])}
            if req.compare:
                point["previous"] = _number(lookup.get((previous_of[key], *group), 0.0))
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
    """Local start of the `grain` period holding the local time `at`, and the next period's start
    (`timegrid.period_bounds`; `cur` is unused)."""
    if grain not in GRAINS:
        raise QueryError(f"period must be one of {', '.join(GRAINS)}, got {grain!r}")
    return timegrid.period_bounds(grain, at)


def period_summary(cur, cfg: Config, grain: str, at: datetime | None, fields: dict[str, str]) -> dict:
    """`{start, end, <field>: value, ...}` for the period holding `at` (default: now), one value per metric
    in `fields` (answer field -> metric): a counter's total in the period, a gauge's value at its end.
    `end` is the period's last day (for hours: its start hour)."""
    tz = cfg.warehouse.timezone
    at = at or timegrid.now_local(tz)
    start, following = period_bounds(cur, grain, at)
    # the bucket itself: an hour `at` names twice is its first occurrence, a skipped one the hour after
    period = timegrid.period_of(grain, at, tz)
    last_day = (following - timedelta(days=1)).date() if grain != "hour" else period.start.date()
    label = period.label
    answer: dict = {"start": label, "end": label if grain == "hour" else last_day.isoformat()}
    for field, metric in fields.items():
        series = metric_series(cur, cfg, SeriesRequest(metric, grain, period.start.date(), last_day))
        answer[field] = next((p["value"] for p in series["points"]
                              if p["start"] == label and p.get("offset") == period.fields().get("offset")), 0)
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
