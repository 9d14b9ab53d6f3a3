"""A saved widget on screen: its answer (`reports.model.evaluate_widget`, a dashboard's widgets from one read,
cached briefly like every dashboard read)
drawn as a Plotly figure (line, bar, pie, scatter), a KPI tile with a sparkline, or a table.

Reading rules: the current, incomplete bucket is dotted (a line) or faded (a bar) and said so in the hover;
the previous period is dashed in its series' colour; a line at the quarter or year grain with few points is
drawn as bars; numbers are compact on axes (1.2k) and exact in hovers and tables; a series keeps one colour
everywhere (a metric without a split: its source's colour; split values: the palette in name order).
"""
from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from reports import numbers
from reports.charts import PALETTE
from reports.model import PREVIOUS_LABELS, WidgetData, evaluate_widget, sheet_frame
from warehouse import series_batch
from warehouse.dashboards_state import WidgetSpec
from warehouse.lake import WarehouseError
from warehouse.queries import json_numbers

CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}
FEW_POINTS = 8           # quarter/year lines with at most this many buckets are drawn as bars
# The contract's sources, in a fixed order: each has one colour on every page.
SOURCE_COLORS = dict(zip(["salesforce", "beacon", "youtube", "linkedin", "twitter", "meltwater", "seo", "github",
                          "s3_access_logs"], PALETTE[1:] + PALETTE[:1]))
INCOMPLETE = "not complete yet"


@st.cache_data(ttl=data.TTL, show_spinner=False)
def answers(path: str, specs_json: tuple[str, ...]) -> list[WidgetData]:
    """Each widget's answer for its own range, all from one read of the rollups (`series_batch.prefetched`).
    Raises data.NoData before the warehouse exists."""
    cfg = data.settings(path)
    specs = [WidgetSpec.from_json(spec) for spec in specs_json]
    try:
        cur = data._cursor(path)
        return series_batch.prefetched(cur, cfg, lambda rows: [evaluate_widget(cfg, cur, spec, rows=rows)
                                                                for spec in specs])
    except WarehouseError:
        raise data.NoData(f"There is no warehouse at `{cfg.warehouse_dir}` yet.") from None
    except duckdb.CatalogException:
        raise data.NoData(f"The warehouse at `{cfg.warehouse_dir}` has no tables yet.") from None


def base_color(path: str, metric: str) -> str:
    declared = data.settings(path).catalog.metrics.get(metric)
    return SOURCE_COLORS.get(declared.source if declared else "", PALETTE[0])


def series_colors(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(names))}


def _series(result: WidgetData, color: str) -> list[tuple[str, pd.DataFrame, str]]:
    frame, by = result.frame, result.spec.by
    if by and by in frame:
        parts = [(str(n), p) for n, p in frame.groupby(by, sort=True, dropna=False)]
        palette = series_colors([n for n, _ in parts])
        return [(n, p, palette[n]) for n, p in parts]
    return [(result.spec.metric, frame, color)]


def _numbers(values: pd.Series, unit: str) -> list:
    """The API's numbers (`queries.json_numbers`): what `/metrics/{metric}` answers for the same buckets."""
    return json_numbers(values, unit)


def _hover(values, unit: str) -> list[str]:
    return [numbers.full(v, unit) for v in values]


def _layout(fig: go.Figure, result: WidgetData, legend: bool) -> go.Figure:
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), height=300, hovermode="x unified", showlegend=legend,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    fig.update_yaxes(tickformat="~s" if result.unit != "percent" else ".1f",
                     ticksuffix=" %" if result.unit == "percent" else "")
    if result.spec.grain != "hour":
        fig.update_xaxes(type="category")     # buckets as periods; no hours between days
    return fig


def line_or_bar(result: WidgetData, color: str) -> go.Figure:
    spec, fig = result.spec, go.Figure()
    bars = spec.kind == "bar" or (spec.grain in ("quarter", "year") and result.frame["start"].nunique() <= FEW_POINTS)
    parts = _series(result, color)
    for name, part, colour in parts:
        x, complete = part["period"].tolist(), part["complete"].tolist()
        status = ["" if ok else f" ({INCOMPLETE})" for ok in complete]
        text = [h + s for h, s in zip(_hover(part["value"], result.unit), status)]
        if bars:
            fig.add_bar(x=x, y=_numbers(part["value"], result.unit), name=name, marker_color=colour, legendgroup=name,
                        marker_opacity=[1.0 if ok else 0.45 for ok in complete],
                        customdata=text, hovertemplate=f"{name}: %{{customdata}}<extra></extra>")
        else:
            solid = _numbers(part["value"].where(part["complete"]), result.unit)
            fig.add_scatter(x=x, y=solid, name=name, legendgroup=name, mode="lines+markers" if len(x) <= 40 else "lines",
                            line=dict(color=colour, width=2), customdata=text,
                            hovertemplate=f"{name}: %{{customdata}}<extra></extra>")
            if not all(complete):      # the incomplete tail, dotted, from the last complete point on
                first = complete.index(False)
                tail = part["value"].where(pd.Series(range(len(x)), index=part.index) >= max(0, first - 1))
                fig.add_scatter(x=x, y=_numbers(tail, result.unit), name=f"{name} ({INCOMPLETE})", legendgroup=name, showlegend=False,
                                mode="lines+markers", line=dict(color=colour, width=2, dash="dot"),
                                marker=dict(symbol="circle-open"), hoverinfo="skip")
        if result.compare and spec.kind in ("line", "bar"):
            label = f"{name}, {PREVIOUS_LABELS[result.compare]}"
            previous = _hover(part["previous"], result.unit)
            detail = [f"{p} (Δ {numbers.delta(d, result.unit)}, {numbers.percent(pc)})"
                      for p, d, pc in zip(previous, part["delta"], part["delta_pct"])]
            fig.add_scatter(x=x, y=_numbers(part["previous"], result.unit), name=label, legendgroup=name, mode="lines",
                            line=dict(color=colour, width=1.5, dash="dash"), opacity=0.6, customdata=detail,
                            hovertemplate=f"{label}: %{{customdata}}<extra></extra>")
    if bars and len(parts) > 1:
        fig.update_layout(barmode="stack")
    if result.kind == "gauge" and not bars:
        fig.update_yaxes(rangemode="normal")       # a gauge's growth would look flat from zero
    return _layout(fig, result, legend=len(parts) > 1 or bool(result.compare))


def pie(result: WidgetData) -> go.Figure:
    frame = result.frame
    palette = series_colors(frame["name"].tolist())
    fig = go.Figure(go.Pie(labels=frame["name"].tolist(), values=_numbers(frame["value"], result.unit), hole=0.35, sort=False,
                           marker=dict(colors=[palette[n] for n in frame["name"]]),
                           customdata=_hover(frame["value"], result.unit),
                           hovertemplate="%{label}: %{customdata} (%{percent})<extra></extra>"))
    return _layout(fig, result, legend=True).update_layout(hovermode="closest")


def scatter(result: WidgetData, color: str) -> go.Figure:
    frame, spec = result.frame, result.spec
    fig = go.Figure()
    for complete, opacity, suffix in ((True, 1.0, ""), (False, 0.4, f" ({INCOMPLETE})")):
        part = frame[frame["complete"] == complete]
        if part.empty:
            continue
        text = [f"{period}{suffix}<br>{spec.metric}: {numbers.full(x, result.unit)}<br>"
                f"{spec.y_metric}: {numbers.full(y, result.y_unit)}"
                for period, x, y in zip(part["period"], part["x"], part["y"])]
        fig.add_scatter(x=_numbers(part["x"], result.unit), y=_numbers(part["y"], result.y_unit), mode="markers", name="complete" if complete else INCOMPLETE,
                        marker=dict(color=color, size=10, opacity=opacity), customdata=text,
                        hovertemplate="%{customdata}<extra></extra>")
    fig.update_xaxes(title_text=spec.metric, tickformat="~s")
    fig.update_yaxes(title_text=spec.y_metric, tickformat="~s")
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10), height=300, hovermode="closest", showlegend=False)
    return fig


def sparkline(result: WidgetData, color: str) -> go.Figure:
    frame = result.frame
    fig = go.Figure(go.Scatter(x=frame["period"].tolist(), y=_numbers(frame["value"], result.unit), mode="lines", line=dict(color=color, width=2),
                               fill="tozeroy" if result.kind != "gauge" else None,
                               customdata=_hover(frame["value"], result.unit),
                               hovertemplate="%{x}: %{customdata}<extra></extra>"))
    fig.update_xaxes(visible=False, type="category")
    fig.update_yaxes(visible=False)
    fig.update_layout(margin=dict(l=0, r=0, t=0, b=0), height=70, showlegend=False)
    return fig


def table(result: WidgetData) -> pd.DataFrame:
    """The widget's rows with formatted numbers, as shown (and as the workbook has them)."""
    frame = sheet_frame(result)
    shown = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if column == "delta_pct":
            shown["Δ %"] = [numbers.percent(v) for v in values]
        elif column == "delta":
            shown["Δ"] = [numbers.delta(v, result.unit, short=False) for v in values]
        elif column in ("value", "previous"):
            shown[column.capitalize()] = [numbers.full(v, result.unit) for v in values]
        elif column == "complete":
            shown["Complete"] = ["yes" if v else INCOMPLETE for v in values]
        elif column in (result.spec.metric, result.spec.y_metric) and result.spec.kind == "scatter":
            unit = result.y_unit if column == result.spec.y_metric else result.unit
            shown[column] = [numbers.full(v, unit) for v in values]
        else:
            shown[column.capitalize() if column == "period" else column] = values
    if not result.compare:
        shown = shown.drop(columns=[c for c in ("Previous", "Δ", "Δ %") if c in shown])
    return shown


def kpi_tile(result: WidgetData, color: str, key: str) -> None:
    kpi = result.kpi
    change = None
    if result.compare and kpi.delta is not None:
        change = f"{numbers.delta(kpi.delta, result.unit)} ({numbers.percent(kpi.delta_pct)}) vs " \
                 f"{PREVIOUS_LABELS[result.compare]}"
    helps = ([f"Shown: {result.note}."] if result.note else []) + \
        ([] if kpi.complete else [f"The last {result.spec.grain} is {INCOMPLETE}."])
    label = result.title + ("" if kpi.complete else " (so far)")
    # The card's header already names the widget: the tile's own label is kept for screen readers only.
    st.metric(label, numbers.compact(kpi.value, result.unit), change, border=True, label_visibility="collapsed")
    if helps:
        st.caption(" ".join(helps))
    if result.frame is not None and len(result.frame) > 1:
        st.plotly_chart(sparkline(result, color), key=f"{key}_spark", config={"displayModeBar": False})


def show(path: str, result: WidgetData, key: str) -> None:
    """Draw a widget's answer in the current container: its chart, KPI tile or table; one sentence when it
    cannot be answered or has no data."""
    if result.error:
        st.warning(result.error, icon=":material/block:")
        return
    if not result.has_data:
        st.info(f"No data between {result.start} and {result.end}.", icon=":material/hourglass_empty:")
        return
    color = base_color(path, result.spec.metric)
    kind = result.spec.kind
    if kind == "kpi":
        kpi_tile(result, color, key)
    elif kind == "table":
        st.dataframe(table(result), hide_index=True, key=f"{key}_table", height=min(400, 38 + 35 * len(result.frame)))
    else:
        figure = pie(result) if kind == "pie" else scatter(result, color) if kind == "scatter" \
            else line_or_bar(result, color)
        st.plotly_chart(figure, key=f"{key}_chart", config=CHART_CONFIG)
    if result.note and kind != "kpi":
        st.caption(f"Shown: {result.note}.")
