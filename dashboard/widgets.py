"""Controls and charts shared by the dashboard pages. Charts take `metric_series` answers as they are."""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
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


# -- the Overview, Explore, SQL and Sources pages -----------------------------------------------------------
# One colour per source on every page (mid tones: readable on the light and the dark theme); series of a split
# get a colour from their name, so the same version or brand has the same colour wherever it is drawn.
SOURCE_COLORS = {"salesforce": "#1f77b4", "beacon": "#2ca02c", "youtube": "#d62728", "linkedin": "#0a66c2",
                 "twitter": "#7f7f7f", "meltwater": "#9467bd", "seo": "#ff7f0e", "github": "#8c564b",
                 "s3_access_logs": "#17becf"}
SERIES_PALETTE = qualitative.D3 + qualitative.Safe
BAR_GRAINS = {"quarter": 16, "year": 16}      # grains drawn as bars when they have at most this many buckets
INCOMPLETE_NOTE = "incomplete: the period is not over, or its source has no data past its end yet"
FRESHNESS_BADGE = {"fresh": ("green", ":material/check_circle:"), "stale": ("orange", ":material/schedule:"),
                   "failing": ("red", ":material/error:"), "never": ("gray", ":material/hourglass_empty:"),
                   "off": ("gray", ":material/block:")}


def series_color(name: str) -> str:
    """The colour of a named series (a version, a brand, a repository), the same on every page."""
    return SERIES_PALETTE[zlib.crc32(str(name).encode()) % len(SERIES_PALETTE)]


def human(value, unit: str = "") -> str:
    """A number as people read it: 950, 9,950, 12.3k, 4.56M; shares as 25.1%; "–" for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "percent":
        return f"{value:.1f}%"
    size = abs(value)
    if size < 10_000:
        return f"{value:,.0f}" if float(value).is_integer() or size >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}" if size < 100 * limit else f"{value / limit:.0f}{suffix}"
    return f"{value:,.0f}"


def signed(value, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = human(abs(value), unit)
    if unit == "percent":
        text = text.removesuffix("%") + " pts"    # a change of a share is in percentage points
    return ("+" if value > 0 else "-" if value < 0 else "±") + text     # ASCII minus: st.metric colours by it


def change_text(delta, delta_pct, unit: str = "") -> str:
    """"+120 (+8.5%)": a change and its percentage (the percentage only where the previous value was not 0)."""
    pct = "" if delta_pct is None or (isinstance(delta_pct, float) and math.isnan(delta_pct)) else \
        f" ({delta_pct:+.1f}%)"
    return signed(delta, unit) + pct


def freshness_badge(fresh, container=st) -> None:
    """A badge saying whether a source's numbers are current, so a stale source is not read as a drop."""
    color, icon = FRESHNESS_BADGE[fresh.state]
    container.badge(f"{fresh.source}: {freshness_text(fresh)}", icon=icon, color=color,
                    help=fresh.last_error or None)


def _ago(moment) -> str:
    if moment is None:
        return "never"
    seconds = max(0, (datetime.now(timezone.utc) - moment).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return "just now"


def freshness_text(fresh) -> str:
    if fresh.state == "off":
        return "off in the config"
    if fresh.state == "never":
        return "not collected yet"
    if fresh.last_success_at:
        collected = f"collected {_ago(fresh.last_success_at)}"
    else:   # data written by runs that then failed (or by the inbox) is not "never collected"
        collected = "no run finished ok yet" if fresh.last_data_at else "never collected"
    data = f", newest data {_ago(fresh.last_data_at)}" if fresh.last_data_at else ", no data yet"
    if fresh.state == "failing":
        runs = f"{fresh.consecutive_failures} run{'s' * (fresh.consecutive_failures != 1)} in a row"
        return f"failing ({runs}), {'last ' * bool(fresh.last_success_at)}{collected}{data}"
    if fresh.state == "stale":
        return f"stale: {'last ' * bool(fresh.last_success_at)}{collected} ({fresh.schedule}){data}"
    return collected + data


def _group_name(keys, by: list[str]) -> str:
    keys = keys if isinstance(keys, tuple) else (keys,)
    return ", ".join("(none)" if pd.isna(k) else str(k) for k in keys[:len(by)])


def series_chart(series, title: str, color: str | None = None, annotations: list[dict] = (),
                 label: str | None = None) -> go.Figure:
    """A `queries.SeriesFrame` drawn so it reads right at a glance: one trace per series of its split
    (colour by name; `color` for an unsplit series), the incomplete buckets dotted and faded (bars: faded)
    with a note in the hover, the compared period dashed with Δ and Δ% in the hover, bars for year and
    quarter grains with few buckets, and `annotations` (`data.annotations`) as markers and shaded spans."""
    frame, unit = series.frame, series.unit
    bars = series.grain in BAR_GRAINS and frame["start"].nunique() <= BAR_GRAINS[series.grain]
    previous_label = PREVIOUS_LABELS.get(series.compare or "", "")
    groups = frame.groupby(series.by, sort=True, dropna=False) if series.by else [(label or series.metric, frame)]
    fig = go.Figure()
    for keys, part in groups:
        name = _group_name(keys, series.by) if series.by else str(keys)
        tint = series_color(name) if series.by or color is None else color
        hover = [f"<b>{name}</b> {p}: {human(v, unit)}" + (f"<br>{previous_label}: {human(pv, unit)}<br>"
                 f"Δ {change_text(d, dp, unit)}" if series.compare else "") + ("" if c else f"<br><i>{INCOMPLETE_NOTE}</i>")
                 for p, v, pv, d, dp, c in zip(part["period"], part["value"], part["previous"], part["delta"],
                                               part["delta_pct"], part["complete"])]
        x, y, done = part["start"], part["value"], part["complete"].to_numpy()
        if bars:
            fig.add_bar(x=x, y=y, name=name, legendgroup=name, marker=dict(
                color=tint, opacity=[1.0 if c else 0.4 for c in done],
                pattern=dict(shape=["" if c else "/" for c in done])),
                hovertext=hover, hoverinfo="text", xperiod=_PERIOD[series.grain], xperiodalignment="middle")
        else:
            solid = y.where(done)
            # the dotted part also takes the complete bucket before each incomplete one, so the line is unbroken
            incomplete = ~done
            dotted = y.where(incomplete | np.append(incomplete[1:], False)) if incomplete.any() else None
            mode = "lines+markers" if len(part) <= 60 else "lines"
            fig.add_scatter(x=x, y=solid, name=name, legendgroup=name, mode=mode, line=dict(color=tint, width=2),
                            hovertext=hover, hoverinfo="text", connectgaps=False)
            if dotted is not None:
                fig.add_scatter(x=x, y=dotted, name=f"{name} (incomplete)", legendgroup=name, showlegend=False,
                                mode="lines+markers", opacity=0.55, line=dict(color=tint, width=2, dash="dot"),
                                marker=dict(symbol="circle-open"), hovertext=hover, hoverinfo="text")
        if series.compare:
            fig.add_scatter(x=x, y=part["previous"], name=f"{name}, {previous_label}", legendgroup=name,
                            mode="lines", opacity=0.6, line=dict(color=tint, width=1.5, dash="dash"),
                            hoverinfo="skip", xperiod=_PERIOD[series.grain] if bars else None,
                            xperiodalignment="middle" if bars else None)
    _annotate(fig, annotations, frame)
    fig.update_yaxes(rangemode="tozero" if series.kind != "gauge" else "normal",
                     tickformat="~s" if unit != "percent" else None, ticksuffix="%" if unit == "percent" else None)
    fig.update_layout(showlegend=True, barmode="group")
    return _layout(fig, title, ", ".join(series.by).capitalize()).update_layout(hovermode="closest")


_PERIOD = {"hour": 3_600_000, "day": 86_400_000, "week": 604_800_000, "month": "M1", "quarter": "M3", "year": "M12"}


def _annotate(fig: go.Figure, annotations, frame: pd.DataFrame) -> None:
    if not annotations or frame.empty:
        return
    first, last = frame["start"].min(), frame["end"].max()
    top = frame[["value", "previous"]].max().max()
    top = 1 if pd.isna(top) or top <= 0 else top * 1.05
    releases = [a for a in annotations if a["kind"] == "release"]
    if releases:
        fig.add_scatter(x=[a["start"] for a in releases], y=[top] * len(releases), mode="markers",
                        name="GitHub release", marker=dict(symbol="star", size=11, color="#e377c2"),
                        hovertext=[a["text"] for a in releases], hoverinfo="text+x")
    outages = [a for a in annotations if a["kind"] == "outage"]
    for a in outages:
        fig.add_vrect(x0=max(a["start"], first), x1=min(a["end"] or last, last), fillcolor="#d62728",
                      opacity=0.12, line_width=0, layer="below")
    if outages:
        fig.add_scatter(x=[max(a["start"], first) for a in outages], y=[top] * len(outages), mode="markers",
                        name="Collector outage", marker=dict(symbol="x", size=10, color="#d62728"),
                        hovertext=[a["text"] for a in outages], hoverinfo="text")
