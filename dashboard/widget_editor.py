"""The form that makes or edits a widget spec: kind, title, metric (and the scatter's second metric), grain,
range (the last N days/weeks/months, or fixed dates), split, a filter on one dimension and comparison. Choices only offer what the
metric and grain allow (its dimensions; comparisons shorter than the grain are left out), so a saved widget is
one the warehouse can answer. Every input has a key `<prefix>_<field>` (tests and the URL-free state use them).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import streamlit as st

from config import Config
from warehouse.cube import GRAINS
from warehouse.dashboards_state import KIND_LABELS, KINDS, RANGE_UNITS, DashboardError, WidgetSpec
from warehouse.queries import COMPARE_SHIFT, today

COMPARE_LABELS = {None: "Nothing", "wow": "Week over week", "mom": "Month over month", "yoy": "Year over year"}
RANGE_MODES = ("last", "fixed")


def _index(options: list, value, fallback: int = 0) -> int:
    return options.index(value) if value in options else fallback


ValuesOf = Callable[[str, str, date, date], list[str]]    # (metric, dim, start, end) -> values seen


def edit(cfg: Config, prefix: str, spec: WidgetSpec, values_of: ValuesOf | None = None) -> WidgetSpec | None:
    """Draw the inputs (started from `spec`) and return the spec they describe, or None (with the reason shown)
    while it is not a widget that can be saved. `values_of` lists a dimension's values for the filter input
    (without it, only the values already saved are offered)."""
    metrics = sorted(cfg.catalog.metrics)
    left, middle, right = st.columns(3)
    kind = left.selectbox("Kind", KINDS, index=_index(list(KINDS), spec.kind), format_func=KIND_LABELS.get,
                          key=f"{prefix}_kind")
    title = middle.text_input("Title", value=spec.title, key=f"{prefix}_title",
                              placeholder="Named after the metric when empty", max_chars=120)
    metric = right.selectbox("Metric" if kind != "scatter" else "Horizontal metric", metrics,
                             index=_index(metrics, spec.metric), key=f"{prefix}_metric",
                             help="The metric catalog is the API's /metrics")
    y_metric = None
    if kind == "scatter":
        others = [m for m in metrics if m != metric]
        y_metric = right.selectbox("Vertical metric", others, index=_index(others, spec.y_metric),
                                   key=f"{prefix}_y_metric", help="One point per bucket: this metric against the first")
    grain = left.selectbox("Grain", GRAINS, index=_index(list(GRAINS), spec.grain, 1), format_func=str.capitalize,
                           key=f"{prefix}_grain")
    dims = list(cfg.catalog.metrics[metric].dims) if kind != "scatter" else []
    splits = [None, *dims]
    by = middle.selectbox("Split by", splits, index=_index(splits, spec.by), key=f"{prefix}_by",
                          format_func=lambda d: "Nothing" if d is None else d.capitalize(),
                          disabled=not dims)
    compares = [None] + [c for c, (_, grains) in COMPARE_SHIFT.items() if grain in grains]
    compare = None
    if kind not in ("pie", "scatter"):
        compare = right.selectbox("Compare with", compares, index=_index(compares, spec.compare),
                                  format_func=COMPARE_LABELS.get, key=f"{prefix}_compare",
                                  help="Draws the previous period dashed; KPIs show the change")
    mode = left.radio("Range", RANGE_MODES, index=0 if spec.last is not None else 1, horizontal=True,
                      format_func={"last": "The last…", "fixed": "Fixed dates"}.get, key=f"{prefix}_mode")
    last, unit, start, end = None, spec.unit, None, None
    if mode == "last":
        last = middle.number_input("How many", min_value=1, max_value=3660, value=spec.last or 30, step=1,
                                   key=f"{prefix}_last")
        unit = right.selectbox("Of", RANGE_UNITS, index=_index(list(RANGE_UNITS), spec.unit), key=f"{prefix}_unit",
                               help="Days count back from today; weeks and months start on a Monday / the 1st")
    else:
        now = today(cfg)
        picked = middle.date_input(f"Dates ({cfg.warehouse.timezone})",
                                   value=(spec.start or now - timedelta(days=29), spec.end or now),
                                   key=f"{prefix}_dates")
        if not isinstance(picked, (tuple, list)) or len(picked) != 2:
            st.info("Pick the last day of the range.")
            return None
        start, end = picked
    where = _where(prefix, metric, dims, spec, last, unit, start, end, today(cfg), values_of)
    candidate = WidgetSpec(kind=kind, metric=metric, title=title.strip(), grain=grain, last=last, unit=unit,
                           start=start, end=end, by=by, compare=compare, where=where, y_metric=y_metric)
    try:
        return candidate.checked(cfg.catalog)
    except DashboardError as exc:
        st.warning(str(exc))
        return None


def _where(prefix: str, metric: str, dims: list[str], spec: WidgetSpec, last, unit, start, end, now: date,
           values_of: ValuesOf | None) -> dict[str, list[str]]:
    """The filter: one dimension and the values to keep (nothing picked: no filter)."""
    if not dims:
        return {}
    saved = spec.where if metric == spec.metric else {}
    left, right = st.columns([1, 2])
    filters = [None, *dims]
    dim = left.selectbox("Filter on", filters, index=_index(filters, next(iter(saved), None)), key=f"{prefix}_where_dim",
                         format_func=lambda d: "Nothing" if d is None else d.capitalize(),
                         help="Keep only some values of a dimension, e.g. one brand or one version")
    if dim is None:
        return {}
    first, final = WidgetSpec(spec.kind, metric, last=last, unit=unit, start=start, end=end).dates(now)
    kept = list(saved.get(dim, []))
    try:
        seen = values_of(metric, dim, first, final) if values_of and first and final else []
    except Exception:       # noqa: BLE001 (no warehouse yet: the saved values are still offered)
        seen = []
    options = sorted(set(seen) | set(kept))
    chosen = right.multiselect(f"{dim.capitalize()} is", options, default=kept, key=f"{prefix}_where_{dim}",
                               placeholder="Pick values" if options else "No values seen in this range")
    return {dim: chosen} if chosen else {}
