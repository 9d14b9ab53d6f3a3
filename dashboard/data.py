"""The dashboard's only way to the warehouse: cached calls of `warehouse.queries` functions.

The config and the read-only lake connection are cached per config file for the life of the server process;
query answers are cached briefly (30 s) so many sessions share them and new data still shows up soon.
Every cached function takes the config path first, so two configs never share answers.
"""
from __future__ import annotations

from datetime import date

import duckdb
import streamlit as st

import collectors
import config
from warehouse import queries
from warehouse.lake import Reader, WarehouseError

TTL = 30


class NoData(Exception):
    """The page cannot show anything yet; the message says what to run."""


@st.cache_resource(show_spinner=False)
def _warehouse(path: str) -> tuple[config.Config, Reader]:
    cfg = collectors.load_config(path)
    return cfg, Reader(cfg)


def config_path() -> str:
    return str(config.default_path().resolve())


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
        found = {m: queries.data_extent(cur, m) for m in metrics}
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
