"""The dashboard's only way to the warehouse: cached calls of `warehouse.queries` functions.

The config and the read-only lake connection are cached per config file for the life of the server process;
query answers are cached briefly (30 s) so many sessions share them and new data still shows up soon.
Every cached function takes the config path first, so two configs never share answers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import streamlit as st

import collectors
import collectors.base
import config
from config import SCHEDULE_PATTERN
from dashboard import access
from warehouse import queries, series_batch, sql, status_queries
from warehouse.lake import Reader, WarehouseError
from warehouse.requests_state import BackfillRequests
from warehouse.state import State

TTL = 30


class NoData(Exception):
    """The page cannot show anything yet; the message says what to run."""


@st.cache_resource(show_spinner=False)
def _warehouse(path: str) -> tuple[config.Config, Reader]:
    cfg = collectors.load_config(path)
    return cfg, Reader(cfg)


def config_file() -> str:
    """The config's path, the first argument of every cached call below (app.py, before its sign-in gate)."""
    return str(config.default_path().resolve())


def config_path() -> str:
    """The config's path, for a page: every page asks for it first, so this is where a session that has not
    given the shared password (when one is set, `dashboard.access`) gets the sign-in form and the page stops.
    app.py gates sessions before any page; this holds even when Streamlit runs a page without app.py."""
    path = config_file()
    try:
        cfg = settings(path)
    except config.ConfigError:
        cfg = None
    if not access.signed_in(cfg):
        access.sign_in_page(access.password(cfg))
        st.stop()
    return path


def settings(path: str) -> config.Config:
    return _warehouse(path)[0]


def _cursor(path: str) -> duckdb.DuckDBPyConnection:
    return _warehouse(path)[1].cursor()


@st.cache_data(ttl=TTL, show_spinner=False)
def extents(path: str, metrics: tuple[str, ...]) -> dict[str, tuple[date, date]]:
    """First and last day with data, for each of `metrics` that has any.

    Raises NoData when the warehouse or its tables do not exist yet."""
    cfg = settings(path)
    try:
        cur = _cursor(path)
        found = queries.data_extents(cur, list(metrics))
    except WarehouseError:
        raise NoData(f"There is no warehouse at `{cfg.warehouse_dir}` yet.") from None
    except duckdb.CatalogException:   # the catalog exists but the scheduler has not created the tables
        raise NoData(f"The warehouse at `{cfg.warehouse_dir}` has no tables yet.") from None
    return {m: extent for m, extent in found.items() if extent}


@st.cache_data(ttl=TTL, show_spinner=False)
def series(path: str, metric: str, grain: str, start: date, end: date, by: tuple[str, ...] = (),
           compare: str | None = None, where: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> dict:
    """`queries.metric_series` (the same answer as the REST `/metrics/{metric}` endpoint)."""
    request = queries.SeriesRequest(metric, grain, start, end, where={k: list(v) for k, v in where} or None,
                                    by=list(by) or None, compare=compare)
    return queries.metric_series(_cursor(path), settings(path), request)


@st.cache_data(ttl=TTL, show_spinner=False)
def kpi(path: str, metric: str, grain: str, start: date, end: date, compare: str | None = None) -> queries.Kpi:
    """`queries.kpi`: a counter's total over the range (a gauge's latest value), and its change."""
    return queries.kpi(_cursor(path), settings(path), metric, grain, start, end, compare)


@st.cache_data(ttl=TTL, show_spinner=False)
def downloads_by_version(path: str, start: date, end: date) -> list[dict]:
    """`[{"version": ..., "dl": n}, ...]`, newest version first (the `/adoption/downloads` answer)."""
    return queries.downloads_by_version(_cursor(path), settings(path), start, end)["downloads"]


@st.cache_data(show_spinner=False)
def descriptions(path: str) -> dict[str, str]:
    return {m["name"]: m["description"] for m in queries.catalog(settings(path))}


# -- the Overview, Explore, SQL and Sources pages -----------------------------------------------------------
FRESH_TTL = 10          # source status and queue answers: a backfill's progress should show soon
STALE_AFTER_RUNS = 3    # a source whose last success is older than this many schedule intervals is stale
STALE_GRACE = timedelta(minutes=5)


@st.cache_resource(show_spinner=False)
def _state(path: str) -> State:
    return State(settings(path))


@st.cache_data(ttl=TTL, show_spinner=False)
def frame(path: str, metric: str, grain: str, start: date, end: date, by: tuple[str, ...] = (),
          compare: str | None = None, where: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> queries.SeriesFrame:
    """`queries.series_frame`: the frame behind `series` (value, previous, delta, delta_pct, complete)."""
    request = queries.SeriesRequest(metric, grain, start, end, where={k: list(v) for k, v in where} or None,
                                    by=list(by) or None, compare=compare)
    return queries.series_frame(_cursor(path), settings(path), request)


@st.cache_data(ttl=TTL, show_spinner=False)
def kpi_where(path: str, metric: str, grain: str, start: date, end: date, compare: str | None = None,
              where: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> queries.Kpi:
    """`queries.kpi` with dimension filters (e.g. one SEO brand, whose shares must not be added)."""
    return queries.kpi(_cursor(path), settings(path), metric, grain, start, end, compare,
                       where={k: list(v) for k, v in where} or None)


@st.cache_data(show_spinner=False)
def metric_catalog(path: str) -> dict[str, dict]:
    """Every declared metric by name: kind, source, dims, description, unit, additive_dims."""
    return {m.name: {"kind": m.kind, "source": m.source, "dims": list(m.dims), "description": m.description,
                     "unit": m.unit, "additive_dims": m.additive_dims}
            for m in settings(path).catalog.metrics.values()}


@st.cache_data(ttl=TTL, show_spinner=False)
def dimension_values(path: str, metric: str, dim: str, start: date, end: date) -> list[str]:
    """The values of `dim` seen for `metric` in [start, end] (a gauge: observed up to `end`), sorted."""
    request = queries.SeriesRequest(metric, "year", start, end, by=[dim])
    values = queries.series_frame(_cursor(path), settings(path), request).frame[dim].dropna().unique()
    return sorted(str(v) for v in values)


@dataclass(frozen=True)
class Freshness:
    """How current a source is, from the run log and its newest data; `state` is one of fresh, stale,
    failing, never (no successful run and no data) and off (disabled in the config)."""
    source: str
    state: str
    schedule: str | None
    last_success_at: datetime | None
    last_data_at: datetime | None
    consecutive_failures: int
    last_error: str | None


def _interval(schedule: str | None) -> timedelta:
    match = SCHEDULE_PATTERN.match(schedule or "")
    if match and match.group(1):
        return timedelta(minutes=int(match.group(1)) * (1 if match.group(2).startswith("minute") else 60))
    return timedelta(days=1)


@st.cache_data(ttl=FRESH_TTL, show_spinner=False)
def freshness(path: str) -> dict[str, Freshness]:
    """Every declared source's freshness (see Freshness), in the registry's order."""
    cfg = settings(path)
    runs = _state(path).source_status()
    try:
        newest = status_queries.latest_data(_cursor(path), cfg)
    except (WarehouseError, duckdb.CatalogException):
        newest = {}
    now = datetime.now(timezone.utc)
    found = {}
    for name in cfg.catalog.sources:
        section = cfg.sources.get(name)
        info = runs.get(name, {})
        last = info.get("last_run") or {}
        success = datetime.fromisoformat(info["last_success_at"]) if info.get("last_success_at") else None
        failures = info.get("consecutive_failures", 0)
        if section is None or not section.enabled:
            state = "off"
        elif success is None and name not in newest:
            state = "failing" if failures else "never"
        elif failures:
            state = "failing"
        elif success is None or now - success > STALE_AFTER_RUNS * _interval(section.schedule) + STALE_GRACE:
            state = "stale"
        else:
            state = "fresh"
        found[name] = Freshness(name, state, section.schedule if section else None, success, newest.get(name),
                                failures, last.get("error") if failures else None)
    return found


@st.cache_data(ttl=TTL, show_spinner=False)
def annotations(path: str, source: str, start: date, end: date) -> list[dict]:
    """Events to mark on a chart of [start, end]: GitHub releases (from the `github.releases` buckets, per
    day) and the outages and catch-ups of `source` (from the run log). Each `{kind, start, end, text}` with
    local wall-clock times; `kind` is release or outage."""
    cfg = settings(path)
    tz = ZoneInfo(cfg.warehouse.timezone)
    found = []
    if "github.releases" in cfg.catalog.metrics:
        releases = queries.series_frame(_cursor(path), cfg, queries.SeriesRequest(
            "github.releases", "day", start, end, by=["repo"])).frame
        for row in releases[releases["value"] > 0].itertuples():
            count = int(row.value)
            found.append({"kind": "release", "start": row.start.to_pydatetime(), "end": None,
                          "text": f"{row.repo}: {count} release{'s' * (count > 1)}"})
    first = datetime.combine(start, datetime.min.time(), tz)
    last = datetime.combine(end + timedelta(days=1), datetime.min.time(), tz)
    for outage in status_queries.outages(_state(path), since=first):
        if outage.source != source or outage.start >= last:
            continue
        ended = outage.end.astimezone(tz).replace(tzinfo=None) if outage.end else None
        caught = (f"; caught up {ended:%Y-%m-%d %H:%M}, {outage.caught_up_records:,} records" if ended
                  else "; still failing")
        found.append({"kind": "outage", "start": outage.start.astimezone(tz).replace(tzinfo=None), "end": ended,
                      "text": f"{source} outage: {outage.failed_runs} failed runs ({outage.error}){caught}"})
    return found


@st.cache_data(ttl=300, show_spinner=False)
def sql_tables(path: str) -> list[dict]:
    """`sql.queryable_tables`: the tables user SQL may read, with their columns."""
    return sql.queryable_tables(settings(path), con=_cursor(path))


@st.cache_data(ttl=TTL, show_spinner=False)
def run_sql(path: str, text: str, limit: int) -> sql.SqlResult:
    """`sql.run_readonly`, cached like every answer (a shared link reruns its query; each run costs a worker
    process). Raises sql.SqlRefused with one sentence; refusals are not cached."""
    return sql.run_readonly(settings(path), text, limit)


@st.cache_data(ttl=FRESH_TTL, show_spinner=False)
def source_tables(path: str) -> dict:
    """Raw rows per source and table, cursors, and quarantined records per source and reason. Raises NoData
    before the scheduler has created the warehouse."""
    cfg = settings(path)
    try:
        cur = _cursor(path)
        return {"rows": status_queries.raw_row_counts(cur, cfg), "cursors": status_queries.cursors(cur),
                "quarantine": status_queries.quarantine_summary(cur)}
    except WarehouseError:
        raise NoData(f"There is no warehouse at `{cfg.warehouse_dir}` yet.") from None
    except duckdb.CatalogException:
        raise NoData(f"The warehouse at `{cfg.warehouse_dir}` has no tables yet.") from None


@st.cache_data(ttl=FRESH_TTL, show_spinner=False)
def quarantined(path: str, source: str, limit: int = 50) -> list[dict]:
    return status_queries.quarantine_rows(_cursor(path), source, limit)


@st.cache_data(ttl=FRESH_TTL, show_spinner=False)
def runs(path: str, source: str, limit: int = 10) -> list[dict]:
    """The newest runs of `source` from the run log, newest first."""
    return _state(path).recent_runs(source, limit)


def backfillable_sources(path: str) -> list[str]:
    """Enabled sources that collect (not those fed only through the inbox, like the beacon)."""
    cfg = settings(path)
    return [name for name in cfg.enabled_sources()
            if name in collectors.SOURCES and collectors.SOURCES[name].scheduled == collectors.base.COLLECT]


def request_backfill(path: str, source: str, start: date, end: date) -> int:
    return BackfillRequests(_state(path)).queue(source, start, end)


def backfill_requests(path: str, limit: int = 20) -> list[dict]:
    return BackfillRequests(_state(path)).recent(limit)


@st.cache_data(ttl=TTL, show_spinner=False)
def sources_with_data(path: str) -> dict[str, datetime]:
    """Per source with data, its newest observation (UTC); one small read. Raises NoData like `extents`."""
    cfg = settings(path)
    try:
        return status_queries.latest_data(_cursor(path), cfg)
    except WarehouseError:
        raise NoData(f"There is no warehouse at `{cfg.warehouse_dir}` yet.") from None
    except duckdb.CatalogException:
        raise NoData(f"The warehouse at `{cfg.warehouse_dir}` has no tables yet.") from None


Where = tuple[tuple[str, tuple[str, ...]], ...]
KpiQuestion = tuple[str, str, date, date, "str | None", Where]                  # kpi_where's arguments
FrameQuestion = tuple[str, str, date, date, tuple[str, ...], "str | None", Where]   # frame's arguments


@st.cache_data(ttl=TTL, show_spinner=False)
def kpis_and_frames(path: str, kpis: tuple[KpiQuestion, ...], frames: tuple[FrameQuestion, ...]
                    ) -> tuple[list, list]:
    """Many `kpi_where` and `frame` answers at once (a page of tiles), from one read of the rollups
    (`series_batch.kpis_and_frames`). A question that cannot be answered gives its QueryError in its place."""
    def where_of(where: Where) -> dict | None:
        return {k: list(v) for k, v in where} or None

    kpi_requests = [series_batch.KpiRequest(metric, grain, start, end, compare, where_of(where))
                    for metric, grain, start, end, compare, where in kpis]
    frame_requests = [queries.SeriesRequest(metric, grain, start, end, where=where_of(where), by=list(by) or None,
                                            compare=compare)
                      for metric, grain, start, end, by, compare, where in frames]
    return series_batch.kpis_and_frames(_cursor(path), settings(path), kpi_requests, frame_requests)
