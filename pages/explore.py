"""Explore: any metric at any of the six grains over any range, filtered and split by a dimension, with a
week/month/year-over-year overlay and the events that explain a bend (GitHub releases, collector outages and
their catch-ups).

The view lives in the URL (`?metric=downloads&grain=week&from=2026-01-01&to=2026-06-30&by=version&
compare=yoy&where=artifact:cdap`), so a copied link opens the same chart. Numbers come from
`warehouse.queries.series_frame` (the REST `/metrics/{metric}` answer) through `dashboard.data`.
"""
from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import data, page, widgets
from warehouse.cube import GRAINS
from warehouse.export import ChartSpec, export
from warehouse.queries import COMPARE_SHIFT, DEFAULT_SPAN, QueryError, today

HOW_TO_FILL = ("Start the pipeline with `make run` (it loads demo data when no credentials are set), or collect "
               "once with `python scheduler.py collect SOURCE`; then reload this page.")
NOBODY = "Nothing"


def _url_date(name: str) -> date | None:
    try:
        return date.fromisoformat(st.query_params.get(name, ""))
    except ValueError:
        return None


def _index(options: list, wanted, default: int = 0) -> int:
    return options.index(wanted) if wanted in options else default


def controls(path: str, catalog: dict, extents: dict) -> dict | None:
    """The question, from the widgets (first filled from the URL), written back to the URL."""
    names = sorted(catalog, key=lambda m: (catalog[m]["source"], m))
    with_data = [m for m in names if m in extents]
    row = st.columns([2.2, 1, 2, 1.4])
    metric = row[0].selectbox("Metric", names, key="explore_metric",
                              index=_index(names, st.query_params.get("metric"),
                                           names.index("downloads") if "downloads" in with_data else
                                           names.index(with_data[0]) if with_data else 0),
                              format_func=lambda m: f"{m} ({catalog[m]['kind']})" + ("" if m in extents else " – no data"))
    info = catalog[metric]
    grain = row[1].selectbox("Grain", GRAINS, index=_index(list(GRAINS), st.query_params.get("grain"), 1),
                             format_func=str.capitalize, key="explore_grain")
    first, last = extents.get(metric, (today(data.settings(path)),) * 2)
    start = _url_date("from") or max(first, last - DEFAULT_SPAN[grain])
    end = _url_date("to") or last
    picked = row[2].date_input(f"Dates ({data.settings(path).warehouse.timezone})", value=(start, end),
                               key="explore_range")
    choices = [None] + [c for c, (_, grains) in COMPARE_SHIFT.items() if grain in grains]
    compare = row[3].selectbox("Compare with", choices, index=_index(choices, st.query_params.get("compare")),
                               format_func=lambda c: widgets.COMPARE_LABELS.get(c, NOBODY), key=f"explore_compare_{grain}",
                               help="Draws the same metric one period earlier, dashed; the hover shows Δ and Δ%")
    dims = info["dims"]
    by, where = (), ()
    if dims:
        row = st.columns([1.2, 1.2, 2.6, 1.4])
        default_by = None if info["additive_dims"] else dims[0]     # shares of different brands never add up
        by_options = [None, *dims]
        split = row[0].selectbox("Split by", by_options, index=_index(by_options, st.query_params.get("by", default_by)),
                                 format_func=lambda d: d or NOBODY, key=f"explore_by_{metric}")
        wanted_filter = st.query_params.get("where", ":").split(":", 1)
        filter_options = [None, *dims]
        dim = row[1].selectbox("Filter on", filter_options, index=_index(filter_options, wanted_filter[0]),
                               format_func=lambda d: d or NOBODY, key=f"explore_where_dim_{metric}")
        if dim and isinstance(picked, (tuple, list)) and len(picked) == 2:
            values = data.dimension_values(path, metric, dim, picked[0], picked[1])
            wanted = [v for v in st.query_params.get_all("where") if v.startswith(f"{dim}:")]
            chosen = row[2].multiselect(f"{dim} is", values, default=[w.split(":", 1)[1] for w in wanted
                                                                        if w.split(":", 1)[1] in values],
                                        key=f"explore_where_{metric}_{dim}")
            where = ((dim, tuple(chosen)),) if chosen else ()
        by = (split,) if split else ()
    events = st.toggle("Show releases and outages", value=st.query_params.get("events", "1") == "1",
                       key="explore_events")
    if not isinstance(picked, (tuple, list)) or len(picked) != 2:
        st.info("Pick the last day of the range.")
        return None
    view = {"metric": metric, "grain": grain, "from": picked[0].isoformat(), "to": picked[1].isoformat(),
            **({"compare": compare} if compare else {}), **({"by": by[0]} if by else {}),
            **({"events": "0"} if not events else {})}
    st.query_params.from_dict(view)
    if where:
        st.query_params["where"] = [f"{where[0][0]}:{v}" for v in where[0][1]]
    return {"metric": metric, "grain": grain, "start": picked[0], "end": picked[1], "compare": compare,
            "by": by, "where": where, "events": events, "info": info}


def summary(path: str, q: dict, series) -> None:
    """Headline numbers of the range: a counter's total, a gauge's (or distinct count's) last value."""
    info, frame = q["info"], series.frame
    unit = info["unit"]
    cols = st.columns(4)
    if q["by"]:
        cols[0].metric("Series", f"{frame[list(q['by'])].drop_duplicates().shape[0]:,}", border=True)
        return
    if frame.empty:
        return
    if info["kind"] == "counter":
        value, previous = frame["value"].sum(), frame["previous"].sum(min_count=1)
        label = "Total"
    else:
        value, previous = frame["value"].iloc[-1], frame["previous"].iloc[-1]
        label = f"Last {q['grain']}" if info["kind"] == "distinct" else "At the end of the range"
    delta = None
    if q["compare"] and previous == previous:       # not NaN
        pct = (value - previous) / previous * 100 if previous else None
        delta = widgets.change_text(value - previous, pct, unit)
    cols[0].metric(label, widgets.human(value, unit), delta, border=True,
                   delta_description=f"vs {widgets.PREVIOUS_LABELS[q['compare']]}" if delta else None)
    done = frame[frame["complete"]]
    if len(done):
        best = done.loc[done["value"].idxmax()]
        cols[1].metric(f"Highest complete {q['grain']}", widgets.human(best["value"], unit), best["period"],
                       delta_color="off", delta_arrow="off", border=True)
    cols[2].metric("Buckets", f"{len(frame):,}", f"{(~frame['complete']).sum()} incomplete" if (~frame["complete"]).any()
                   else None, delta_color="off", delta_arrow="off", border=True)


def downloads(series, title: str) -> None:
    """The frame behind the chart as CSV or Excel (with a native chart), from `warehouse.export`."""
    table = series.frame.drop(columns=["end"])
    row = st.container(horizontal=True)
    for fmt, label in (("csv", "CSV"), ("xlsx", "Excel")):
        chart = ChartSpec(x="label", previous="previous" if series.compare else None) if not series.by else None
        made = export(table, fmt, title=title, chart=chart)
        row.download_button(f"Download {label}", b"".join(made.chunks), file_name=made.filename,
                               mime=made.media_type, on_click="ignore", key=f"explore_download_{fmt}",
                               icon=":material/download:")


path, cfg = page.start("Explore")
catalog = data.metric_catalog(path)
extents = page.needs_data(lambda: data.extents(path, tuple(catalog)),
                          f"The warehouse at `{cfg.warehouse_dir}` has no data yet.")

question = controls(path, catalog, extents)
if question is None:
    st.stop()
if question["metric"] not in extents:
    st.info(f"`{question['metric']}` has no data yet: its source ({question['info']['source']}) has not collected "
            f"anything. The Sources page shows its status.", icon=":material/hourglass_empty:")
    st.stop()
try:
    with st.spinner("Reading the series..."):
        series = data.frame(path, question["metric"], question["grain"], question["start"], question["end"],
                            question["by"], question["compare"], question["where"])
        events = data.annotations(path, question["info"]["source"], question["start"], question["end"]) \
            if question["events"] else []
except QueryError as exc:
    st.error(f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    st.stop()

info = question["info"]
title = f"{widgets.ADVERB[question['grain']]} {question['metric']}" + (
    f" by {', '.join(question['by'])}" if question["by"] else "") + (
    " (value at the end of each bucket)" if info["kind"] == "gauge" else "")
summary(path, question, series)
st.plotly_chart(widgets.series_chart(series, title, widgets.SOURCE_COLORS.get(info["source"]), events),
                key="explore_chart", config=widgets.CHART_CONFIG)
st.caption(f"{info['description']}. Dotted or faded: a bucket that is not complete yet. Times in "
           f"{cfg.warehouse.timezone}.")
with st.expander("Table and downloads"):
    shown = series.frame.drop(columns=["start", "end"])
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "delta_pct": st.column_config.NumberColumn("Δ%", format="%.1f%%"),
        "delta": st.column_config.NumberColumn("Δ"), "value": st.column_config.NumberColumn(format="localized"),
        "previous": st.column_config.NumberColumn(format="localized")})
    downloads(series, title)
