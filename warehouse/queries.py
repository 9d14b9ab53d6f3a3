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

import duckdb
import numpy as np
import pandas as pd

from config import Config
from warehouse import timegrid
from warehouse.catalog import COUNTER, DISTINCT, GAUGE, Metric
from warehouse.timegrid import COMPARE_SHIFT, DEFAULT_SPAN, GRAINS, Bucket  # noqa: F401  (re-exported)

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
    `label` ("YYYY-MM-DD[THH:MM]"), `offset` (the UTC offset, only on the two hours a DST end repeats),
    `period` ("2025-W01", "2025-Q1", ...), one column per `by` dimension,
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
    return timegrid.today(cfg.warehouse.timezone)


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




def _filters(req: SeriesRequest) -> tuple[str, list]:
    clauses, args = [], []
    for dim, values in (req.where or {}).items():
        clauses.append(f"json_extract_string(dims, '$.{dim}') IN ({', '.join('?' * len(values))})")
        args.extend(values)
    return "".join(f" AND {c}" for c in clauses), args


class Rows:
    """Where `series_frame` reads rollup rows: a SQL statement per question (`series_batch.Prefetched` answers
    many questions from one read instead). Both give the same frames."""

    def __init__(self, cur, cfg: Config):
        self.cur, self.cfg = cur, cfg

    def sparse(self, metric: Metric, grain: str, first: Bucket, last: Bucket, req: SeriesRequest) -> pd.DataFrame:
        """The rollup rows of the buckets [first, last] matching `req.where`: a counter's `bucket, <by dims>...,
        value` summed per bucket and group; a gauge's `bucket, dims, <by dims>..., value` per dims series, plus
        each series' last row before `first`."""
        by = req.by or []
        group_cols = "".join(f", json_extract_string(dims, '$.{d}') AS \"{d}\"" for d in by)
        where, args = _filters(req)
        if metric.kind != GAUGE:
            return self.cur.execute(f"""
                SELECT epoch_us(bucket_utc) AS bucket{group_cols}, sum(value) AS value FROM lake.rollups
                WHERE grain = ? AND metric = ? AND bucket_utc BETWEEN ? AND ?{where} GROUP BY ALL""",
                [grain, metric.name, first.utc, last.utc, *args]).df()
        return self.cur.execute(f"""
            SELECT epoch_us(bucket_utc) AS bucket, dims{group_cols}, value FROM lake.rollups
            WHERE grain = ? AND metric = ? AND bucket_utc BETWEEN ? AND ?{where}
            UNION ALL
            SELECT epoch_us(max(bucket_utc)), dims{group_cols}, arg_max(value, bucket_utc) FROM lake.rollups
            WHERE grain = ? AND metric = ? AND bucket_utc < ?{where} GROUP BY ALL""",
            [grain, metric.name, first.utc, last.utc, *args, grain, metric.name, first.utc, *args]).df()

    def latest(self, metric: Metric) -> datetime | None:
        """The start of the newest fact hour of the metric's source (any of its metrics), aware, or None."""
        names = [m.name for m in self.cfg.catalog.metrics_of(metric.source)]
        return self.cur.execute(f"SELECT max(last_ts) FROM lake.rollups WHERE grain = 'year' "
                                f"AND metric IN ({', '.join('?' * len(names))})", names).fetchone()[0]


def _values(rows: Rows, metric: Metric, grain: str, bucket_list: list[Bucket], req: SeriesRequest) -> pd.DataFrame:
    """`bucket, <by dims>..., value`: every bucket of `bucket_list` for every group seen (a counter's groups:
    those with data in the range; a gauge's: those observed up to its end). `bucket` is `Bucket.key`, the
    start instant in microseconds (`epoch_us(bucket_utc)`): the hour a DST end repeats is two buckets."""
    by = req.by or []
    index = pd.Index([b.key for b in bucket_list], dtype="int64")
    sparse = rows.sparse(metric, grain, bucket_list[0], bucket_list[-1], req)
    if metric.kind != GAUGE:
        grid = pd.DataFrame({"bucket": index})
        if by:
            groups = sparse[by].drop_duplicates()
            _check_points(len(index), len(groups))
            grid = groups.merge(grid, how="cross")
        dense = grid.merge(sparse, on=["bucket", *by], how="left")
        return dense.fillna({"value": 0.0})
    # A gauge: each dims series' observations in the range and its last one before it, carried forward.
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






def _end_utc(bucket: Bucket, tz: str) -> datetime:
    if bucket.grain == "hour":
        return bucket.utc + timedelta(hours=1)
    return timegrid.first_instant(timegrid.next_start(bucket.grain, bucket.start), tz)


def _grid(bucket_list: list[Bucket], tz: str, compare: str | None) -> pd.DataFrame:
    """`bucket` (`Bucket.key`), `start` (local), `end` (the next bucket's local start), `end_utc`, `label`,
    `offset` (only for an hour DST's end repeats), `period`, and with `compare` `previous_start` (the compared
    bucket's local start: a repeated hour compares with its first occurrence)."""
    grain = bucket_list[0].grain
    grid = pd.DataFrame({
        "bucket": pd.Series([b.key for b in bucket_list], dtype="int64"),
        "start": [b.start for b in bucket_list],
        "end": [timegrid.next_start(grain, b.start) for b in bucket_list],
        "end_utc": [_end_utc(b, tz) for b in bucket_list],
        "label": [b.label for b in bucket_list],
        "offset": [b.fields().get("offset") for b in bucket_list],
        "period": [b.period for b in bucket_list],
    })
    if compare:
        grid["previous_start"] = [timegrid.previous_start(grain, b.start, compare) for b in bucket_list]
    return grid


def series_frame(cur: duckdb.DuckDBPyConnection, cfg: Config, req: SeriesRequest, *,
                 rows: Rows | None = None) -> SeriesFrame:
    """Answer a series question as a frame (see the module notes for its rules and `SeriesFrame` for its
    columns). Raises QueryError for a question that cannot be answered as asked. `rows`: where the rollup
    rows come from (default: a SQL statement each, on `cur`)."""
    metric = _validate(req, cfg)
    rows = rows or Rows(cur, cfg)
    tz, by = cfg.warehouse.timezone, list(req.by or [])
    end = req.end or today(cfg)
    start = req.start or max(end - DEFAULT_SPAN[req.grain], FIRST_DAY)
    _check_points(_most_buckets(req.grain, start, end), 1)    # before any bucket is built
    bucket_list = timegrid.buckets(req.grain, start, end, tz)
    grid = _grid(bucket_list, tz, req.compare)
    frame = _values(rows, metric, req.grain, bucket_list, req).merge(grid, on="bucket")
    if req.compare:
        earlier = timegrid.buckets(req.grain, grid["previous_start"].min().date(),
                                   grid["previous_start"].max().date(), tz)
        first_at: dict[datetime, int] = {}
        for b in earlier:
            first_at.setdefault(b.start, b.key)     # a repeated hour: its first occurrence
        frame["previous_bucket"] = frame["previous_start"].map(first_at).astype("Int64")
        previous = _values(rows, metric, req.grain, earlier, req).astype({"bucket": "Int64"})
        frame = frame.merge(previous.rename(columns={"bucket": "previous_bucket", "value": "previous"}),
                            on=["previous_bucket", *by], how="left")
        if metric.kind != GAUGE:   # nothing counted then (or a DST-skipped hour): 0; a gauge unobserved: NaN
            frame["previous"] = frame["previous"].fillna(0.0)
    else:
        frame["previous"] = np.nan
    frame["delta"] = frame["value"] - frame["previous"]
    frame["delta_pct"] = (frame["delta"] / frame["previous"].where(frame["previous"] != 0) * 100)
    latest = rows.latest(metric)
    if latest is None:
        frame["complete"] = False
    else:
        ends = pd.to_datetime(frame["end_utc"], utc=True)
        frame["complete"] = (ends <= pd.Timestamp.now(tz="UTC")) & (ends <= pd.Timestamp(latest))
    frame = frame.sort_values([*by, "bucket"], kind="stable")
    columns = ["start", "end", "label", "offset", "period", *by, "value", "previous", "delta", "delta_pct",
               "complete"]
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
    points = pd.DataFrame({"start": frame["label"], "offset": frame["offset"], "period": frame["period"],
                           **{k: pd.Series(json_numbers(v, series.unit), index=frame.index, dtype=object)
                              for k, v in numbers.items()}})
    points["complete"] = frame["complete"].astype(bool)
    records = points.to_dict("records")      # (object columns keep None)
    for record in records:
        if not isinstance(record["offset"], str):     # only the hour a DST end repeats says its offset (else NaN)
            del record["offset"]
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


def data_extents(cur, metrics: list[str]) -> dict[str, tuple[date, date]]:
    """`data_extent` of each of `metrics` that has data, in one statement."""
    if not metrics:
        return {}
    rows = cur.execute(f"SELECT metric, min(bucket), max(bucket) FROM lake.rollups WHERE grain = 'day' AND metric IN "
                       f"({', '.join('?' * len(metrics))}) GROUP BY metric", list(metrics)).fetchall()
    return {metric: (first.date(), last.date()) for metric, first, last in rows if first}


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
    check_day(at.date(), "at")
    start, following = period_bounds(cur, grain, at)
    # the bucket itself: an hour `at` names twice is its first occurrence, a skipped one the hour after
    period = timegrid.period_of(grain, at, tz)
    last_day = (following - timedelta(days=1)).date() if grain != "hour" else period.start.date()
    label = period.label
    answer: dict = {"start": label, "end": label if grain == "hour" else last_day.isoformat()}
    for name, metric in fields.items():
        series = series_frame(cur, cfg, SeriesRequest(metric, grain, period.start.date(), last_day))
        frame = series.frame
        mine = (frame["start"] == period.start) & (frame["offset"].isna() if "offset" not in period.fields()
                                                   else frame["offset"] == period.fields()["offset"])
        value = json_numbers(frame.loc[mine, "value"], series.unit)
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
        where: dict[str, list[str]] | None = None, *, rows: Rows | None = None) -> Kpi:
    """A headline number for [start, end] at `grain`: a counter's total over the buckets, a gauge's (or
    distinct count's) value in the last bucket; with `compare`, the same for the compared buckets, and the
    change. `complete` says whether the last bucket is complete."""
    series = series_frame(cur, cfg, SeriesRequest(metric, grain, start, end, where=where, compare=compare), rows=rows)
    return kpi_of(series, cfg.catalog.metrics[metric])


def kpi_of(series: SeriesFrame, declared: Metric) -> Kpi:
    """`kpi` of the buckets of `series`, a frame of `declared` (e.g. the last row of a longer frame)."""
    frame, metric, grain = series.frame, declared.name, series.grain
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
