"""Controls and charts shared by the dashboard pages. Charts take `metric_series` answers as they are."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

from config import Config
from warehouse.cube import GRAINS
from warehouse.queries import COMPARE_SHIFT, DEFAULT_SPAN, Kpi, today

COMPARE_LABELS = {"wow": "Week over week", "mom": "Month over month", "yoy": "Year over year"}
PREVIOUS_LABELS = {"wow": "a week earlier", "mom": "a month earlier", "yoy": "a year earlier"}
PALETTE = qualitative.Plotly + qualitative.D3
ADVERB = {"hour": "Hourly", "day": "Daily", "week": "Weekly", "month": "Monthly", "quarter": "Quarterly",
          "year": "Yearly"}
CHART_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


@dataclass(frozen=True)
class Period:
    grain: str
    start: date
    end: date
    compare: str | None


def period_controls(cfg: Config, first: date, last: date) -> Period | None:
    """Grain, date range and comparison pickers; None while the user is still picking the range.

    The choice is mirrored in the URL (`?grain=week&compare=yoy`) so a view can be bookmarked and shared.
    The range defaults to the grain's usual span ending on the last day with data, and each grain keeps
    its own range."""
    wanted = st.query_params.get("grain", "day")
    grain_col, range_col, compare_col = st.columns([1, 2, 1.4])
    grain = grain_col.selectbox("Grain", GRAINS, index=GRAINS.index(wanted) if wanted in GRAINS else 1,
                                format_func=str.capitalize, key="grain")
    start = max(first, last - DEFAULT_SPAN[grain])
    picked = range_col.date_input(f"Dates ({cfg.warehouse.timezone})", value=(start, last), min_value=min(first, start),
                                  max_value=max(last, today(cfg)), key=f"range_{grain}")
    choices = [None] + [c for c, (_, grains) in COMPARE_SHIFT.items() if grain in grains]
    wanted = st.query_params.get("compare")
    compare = compare_col.selectbox("Compare with", choices, index=choices.index(wanted) if wanted in choices else 0,
                                    format_func=lambda c: COMPARE_LABELS.get(c, "Nothing"), key=f"compare_{grain}",
                                    help="Draws the same metric one period earlier as a dashed line")
    st.query_params.from_dict({"grain": grain, **({"compare": compare} if compare else {})})
    if not isinstance(picked, (tuple, list)) or len(picked) != 2:
        st.info("Pick the last day of the range.")
        return None
    return Period(grain, picked[0], picked[1], compare)


def change(kpi: Kpi, compare: str | None) -> str | None:
    """A KPI's delta line, e.g. "+56 vs a week earlier"; None without a comparison or a number to compare."""
    if not compare or kpi.delta is None:
        return None
    return f"{kpi.delta:+,} vs {PREVIOUS_LABELS[compare]}"


def colors(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _layout(fig: go.Figure, title: str, legend_title: str = "") -> go.Figure:
    fig.update_layout(title=title, legend_title_text=legend_title, hovermode="x unified",
                      margin=dict(l=10, r=10, t=50, b=10), height=380)
    return fig


def totals_bars(totals: list[dict], name_key: str, value_key: str, palette: dict[str, str], title: str) -> go.Figure:
    """One bar per item (e.g. per version: `downloads_by_version` totals), labelled with its value."""
    names = [str(t[name_key]) for t in totals]
    fig = go.Figure(go.Bar(x=names, y=[t[value_key] for t in totals], marker_color=[palette[n] for n in names],
                           texttemplate="%{y:,}", textposition="outside", cliponaxis=False,
                           hovertemplate="%{x}: %{y:,}<extra></extra>"))
    fig.update_xaxes(type="category")
    _layout(fig, title).update_layout(hovermode="closest", showlegend=False)
    return fig


def trend(answer: dict, dim: str, palette: dict[str, str], title: str, from_zero: bool = True) -> go.Figure:
    """A line per series of a `metric_series(..., by=[dim])` answer, in palette order; with `compare`, the
    previous period's values as a dashed line of the same colour. `from_zero=False` lets the y axis start
    near the values (gauges such as stars, whose growth would look flat from zero)."""
    compare = answer.get("compare")
    order = {name: i for i, name in enumerate(palette)}
    series = sorted(answer["series"], key=lambda s: order.get(s["dims"][dim], len(order)))
    fig = go.Figure()
    for s in series:
        name = str(s["dims"][dim])
        points = s["points"]
        x = [p["start"] for p in points]
        color = palette.get(name, "#888888")
        mode = "lines+markers" if len(points) <= 40 else "lines"
        fig.add_scatter(x=x, y=[p["value"] for p in points], name=name, legendgroup=name, mode=mode,
                        line=dict(color=color, width=2), customdata=[p["period"] for p in points],
                        hovertemplate=f"{name}: %{{y:,}} (%{{customdata}})<extra></extra>")
        if compare:
            fig.add_scatter(x=x, y=[p["previous"] for p in points], name=f"{name}, {PREVIOUS_LABELS[compare]}",
                            legendgroup=name, mode="lines", line=dict(color=color, width=1.5, dash="dash"),
                            opacity=0.6, hovertemplate=f"{name} {PREVIOUS_LABELS[compare]}: %{{y:,}}<extra></extra>")
    fig.update_yaxes(rangemode="tozero" if from_zero else "normal")
    fig.update_layout(showlegend=True)      # name the series even when there is only one
    return _layout(fig, title, dim.capitalize())
