"""Many series and KPI questions answered from one read of the rollups (a page of KPI tiles and sparklines).

Each statement on the lake costs a fixed ~15-25 ms (DuckLake reads its catalog snapshot) however few rows it
returns, and `series_frame` asks two or three (values, compared values, the source's newest data). The Overview
asks ~40 questions, so reading per question cost seconds. `Prefetched` reads every row those questions can need
in two statements — the rows of each (grain, metric) over the union of their ranges, with each gauge series'
last row before that union, and every metric's newest fact hour — and then hands `series_frame` the same rows
its own SQL would have selected, filtered and summed in pandas. What to read comes from the questions
(`spans_of`), or, for a computation that asks its own questions (a dashboard's widgets, a report), from a first
run against a `Recorder` (`prefetched`). A question outside what was read falls back to SQL, so an answer is
never wrong, only slower.

    frames = series_frames(cur, cfg, [SeriesRequest(...), ...])    # SeriesFrame or QueryError per request
    kpis, frames = kpis_and_frames(cur, cfg, [KpiRequest(...), ...], [SeriesRequest(...), ...])
    model = prefetched(cur, cfg, lambda rows: evaluate(cfg, cur, dashboard, start, end, rows=rows))
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TypeVar

import pandas as pd

from config import Config
from warehouse import timegrid
from warehouse.catalog import GAUGE, Metric
from warehouse.queries import (DEFAULT_SPAN, FIRST_DAY, Kpi, QueryError, Rows, SeriesFrame, SeriesRequest, _validate,
                               kpi, series_frame, today)
from warehouse.timegrid import Bucket

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
T = TypeVar("T")


@dataclass(frozen=True)
class KpiRequest:
    """The arguments of `queries.kpi`."""
    metric: str
    grain: str
    start: date
    end: date
    compare: str | None = None
    where: dict[str, list[str]] | None = None

    def series(self) -> SeriesRequest:
        return SeriesRequest(self.metric, self.grain, self.start, self.end, where=self.where, compare=self.compare)


def _span(cfg: Config, req: SeriesRequest) -> tuple[int, int]:
    """The first and last bucket keys `series_frame` reads for `req`: its buckets, and the compared ones."""
    end = req.end or today(cfg)
    start = req.start or max(end - DEFAULT_SPAN[req.grain], FIRST_DAY)
    tz = cfg.warehouse.timezone
    buckets = timegrid.buckets(req.grain, start, end, tz)
    keys = [buckets[0].key, buckets[-1].key]
    if req.compare:
        previous = [timegrid.previous_start(req.grain, b.start, req.compare) for b in buckets]
        earlier = timegrid.buckets(req.grain, min(previous).date(), max(previous).date(), tz)
        keys += [earlier[0].key, earlier[-1].key]
    return min(keys), max(keys)


def _instant(key: int) -> datetime:
    return EPOCH + timedelta(microseconds=key)


def _dim_text(value) -> str | None:
    """What `json_extract_string` gives for a JSON value: strings as they are, other values as JSON text."""
    return value if value is None or isinstance(value, str) else json.dumps(value)


Spans = dict[tuple[str, str], tuple[int, int]]     # (grain, metric) -> first and last bucket key to read


def spans_of(cfg: Config, requests: list[SeriesRequest]) -> Spans:
    """What `series_frame` will read for `requests`; a request it would refuse is left out (it says why)."""
    spans: Spans = {}
    for req in requests:
        try:
            _validate(req, cfg)
            first, last = _span(cfg, req)
        except (QueryError, ValueError, OverflowError, IndexError):
            continue
        _widen(spans, (req.grain, req.metric), first, last)
    return spans


def _widen(spans: Spans, key: tuple[str, str], first: int, last: int) -> None:
    known = spans.get(key)
    spans[key] = (min(first, known[0]), max(last, known[1])) if known else (first, last)


class Recorder(Rows):
    """Notes what a computation reads (`Spans`) and answers it as if the warehouse were empty."""

    def __init__(self, cfg: Config):
        super().__init__(None, cfg)
        self.spans: Spans = {}

    def sparse(self, metric: Metric, grain: str, first: Bucket, last: Bucket, req: SeriesRequest) -> pd.DataFrame:
        _widen(self.spans, (grain, metric.name), first.key, last.key)
        columns = {"bucket": pd.Series(dtype="int64")}
        if metric.kind == GAUGE:
            columns["dims"] = pd.Series(dtype=object)
        columns.update({d: pd.Series(dtype=object) for d in req.by or []})
        return pd.DataFrame({**columns, "value": pd.Series(dtype="float64")})

    def latest(self, metric: Metric) -> datetime | None:
        return None


class Prefetched(Rows):
    """The rollup rows of `spans`, read in two statements (see the module notes)."""

    def __init__(self, cur, cfg: Config, spans: Spans):
        super().__init__(cur, cfg)
        self.spans = spans
        self.fallbacks = 0      # questions answered by SQL after all (outside what was read)
        self.rows = self._read(spans)
        self._dims: dict[str, dict] = {}
        self._latest = self._read_latest() if spans else {}

    def _read(self, spans: dict[tuple[str, str], tuple[int, int]]) -> dict[tuple[str, str], pd.DataFrame]:
        if not spans:
            return {}
        gauges = [(g, m) for g, m in spans if self.cfg.catalog.metrics[m].kind == GAUGE]
        inside = " OR ".join("(grain = ? AND metric = ? AND bucket_utc BETWEEN ? AND ?)" for _ in spans)
        before = " OR ".join("(grain = ? AND metric = ? AND bucket_utc < ?)" for _ in gauges)
        args = [a for (grain, metric), (first, last) in spans.items()
                for a in (grain, metric, _instant(first), _instant(last))]
        sql = f"""SELECT grain, metric, epoch_us(bucket_utc) AS bucket, dims, value FROM lake.rollups
                  WHERE {inside}"""
        if gauges:
            sql += f"""
                UNION ALL
                SELECT grain, metric, epoch_us(max(bucket_utc)), dims, arg_max(value, bucket_utc) FROM lake.rollups
                WHERE {before} GROUP BY grain, metric, dims"""
            args += [a for grain, metric in gauges for a in (grain, metric, _instant(spans[(grain, metric)][0]))]
        found = self.cur.execute(sql, args).df()
        return {key: part.drop(columns=["grain", "metric"]).sort_values("bucket", kind="stable")
                for key, part in found.groupby(["grain", "metric"], sort=False)}

    def _read_latest(self) -> dict[str, datetime | None]:
        """Each source's newest fact hour (what `Rows.latest` asks per question), all sources at once."""
        newest = dict(self.cur.execute("SELECT metric, max(last_ts) FROM lake.rollups WHERE grain = 'year' "
                                       "GROUP BY metric").fetchall())
        found: dict[str, datetime | None] = {}
        for metric in self.cfg.catalog.metrics.values():
            if newest.get(metric.name) is not None:
                found[metric.source] = max(newest[metric.name], found.get(metric.source) or newest[metric.name])
        return found

    def latest(self, metric: Metric) -> datetime | None:
        return self._latest.get(metric.source)

    def _dim(self, dims: pd.Series, name: str) -> pd.Series:
        parsed = [self._dims.get(d) or self._dims.setdefault(d, json.loads(d) if d else {}) for d in dims]
        return pd.Series([_dim_text(p.get(name)) for p in parsed], index=dims.index, dtype=object)

    def sparse(self, metric: Metric, grain: str, first: Bucket, last: Bucket, req: SeriesRequest) -> pd.DataFrame:
        span = self.spans.get((grain, metric.name))
        if span is None or not span[0] <= first.key <= last.key <= span[1]:
            self.fallbacks += 1
            return super().sparse(metric, grain, first, last, req)
        by = req.by or []
        rows = self.rows.get((grain, metric.name))
        if rows is None:
            rows = pd.DataFrame({"bucket": pd.Series(dtype="int64"), "dims": pd.Series(dtype=object),
                                 "value": pd.Series(dtype="float64")})
        for dim, values in (req.where or {}).items():
            rows = rows[self._dim(rows["dims"], dim).isin(values)]
        if metric.kind != GAUGE:
            rows = rows[(rows["bucket"] >= first.key) & (rows["bucket"] <= last.key)]
            rows = rows.assign(**{d: self._dim(rows["dims"], d) for d in by})
            summed = rows.groupby(["bucket", *by], sort=False, dropna=False)["value"].sum().reset_index()
            return summed[["bucket", *by, "value"]]
        # Rows are sorted by bucket: each series' last row before `first` is its last one there.
        earlier = rows[rows["bucket"] < first.key].drop_duplicates("dims", keep="last")
        inside = rows[(rows["bucket"] >= first.key) & (rows["bucket"] <= last.key)]
        picked = pd.concat([inside, earlier], ignore_index=True)
        picked = picked.assign(**{d: self._dim(picked["dims"], d) for d in by})
        return picked[["bucket", "dims", *by, "value"]]


def prefetched(cur, cfg: Config, work: Callable[[Rows], T]) -> T:
    """`work(rows)`, a computation that passes `rows` to every `series_frame` and `kpi` it asks (a dashboard's
    widgets, a report), answered from one read: a first run against a `Recorder` learns what it reads (its
    answers are dropped, and so is any error it meets on empty data), then those rows are read at once and
    `work` runs again on them."""
    recorder = Recorder(cfg)
    try:
        work(recorder)
    except Exception:       # noqa: BLE001 (only the reads matter here; the real run raises what it raises)
        pass
    return work(Prefetched(cur, cfg, recorder.spans))


def series_frames(cur, cfg: Config, requests: list[SeriesRequest]) -> list[SeriesFrame | QueryError]:
    """`series_frame` of each request, from one read; a question that cannot be answered gives its QueryError
    in its place."""
    rows = Prefetched(cur, cfg, spans_of(cfg, requests))
    return [_or_error(lambda req=req: series_frame(cur, cfg, req, rows=rows)) for req in requests]


def kpis_and_frames(cur, cfg: Config, kpi_requests: list[KpiRequest], frame_requests: list[SeriesRequest]
                    ) -> tuple[list[Kpi | QueryError], list[SeriesFrame | QueryError]]:
    """`kpi` of each KpiRequest and `series_frame` of each SeriesRequest (a page of tiles with sparklines),
    all from one read; a question that cannot be answered gives its QueryError in its place."""
    rows = Prefetched(cur, cfg, spans_of(cfg, [k.series() for k in kpi_requests] + list(frame_requests)))
    kpis = [_or_error(lambda k=k: kpi(cur, cfg, k.metric, k.grain, k.start, k.end, k.compare, k.where, rows=rows))
            for k in kpi_requests]
    return kpis, [_or_error(lambda req=req: series_frame(cur, cfg, req, rows=rows)) for req in frame_requests]


def _or_error(ask):
    """`ask()`, or the QueryError it raised: one unanswerable question stands in its place, not the page's."""
    try:
        return ask()
    except QueryError as exc:
        return exc
