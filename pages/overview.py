"""Overview: every source's headline numbers for one week, month, quarter or year, each against the period
before, with a sparkline of the last periods and a freshness badge per source, so a source that stopped
collecting is not read as a drop.

Numbers come from `warehouse.queries.kpi` and `series_frame` through `dashboard.data`; the view (grain and
period) is in the URL: `?grain=month&at=2026-11-01`.
"""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import streamlit as st

from dashboard import data, page, widgets
from warehouse.queries import kpi_of, today

GROUPS = [   # (section, [(metric, tile label), ...]); seo.share_of_voice gets a tile per brand
    ("Pipeline", [("salesforce.raw_leads", "Raw leads"), ("salesforce.inquiries", "Inquiries"),
                  ("salesforce.mqls", "MQLs"), ("salesforce.opportunities", "Opportunities")]),
    ("Web", [("web.sessions", "Sessions"), ("web.new_visitors", "New visitors"),
             ("web.returning_visitors", "Returning visitors"), ("web.blog_views", "Blog views")]),
    ("Social", [("youtube.subscribers", "YouTube subscribers"), ("youtube.views", "YouTube views"),
                ("linkedin.followers", "LinkedIn followers"), ("twitter.followers", "X followers")]),
    ("Mentions, search", [("meltwater.mentions", "Meltwater mentions"), ("seo.share_of_voice", "Share of voice")]),
    ("Adoption", [("downloads", "Downloads"), ("github.stars", "GitHub stars")]),
]
GRAINS = ("week", "month", "quarter", "year")
COMPARE = {"week": "wow", "month": "mom", "quarter": "yoy", "year": "yoy"}
AGAINST = {"week": "the week before", "month": "the month before", "quarter": "the same quarter a year before",
           "year": "the year before"}
SPARK_PERIODS = 12
HOW_TO_FILL = ("Start the pipeline with `make run` (it loads demo data when no credentials are set), or collect "
               "once with `python scheduler.py collect SOURCE`; then reload this page.")


def period_start(grain: str, day: date) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def next_start(grain: str, start: date) -> date:
    if grain == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


def previous_start(grain: str, start: date) -> date:
    return period_start(grain, start - timedelta(days=1))


def period_name(grain: str, start: date) -> str:
    if grain == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d} (from {start:%b %d})"
    return {"month": f"{start:%B %Y}", "quarter": f"{start.year} Q{(start.month - 1) // 3 + 1}",
            "year": str(start.year)}[grain]


def pick_period(now: date) -> tuple[str, date, date, bool]:
    """Grain and period pickers (in the URL); the default is the last complete month. Returns grain, the
    period's first day, its last day shown (today for the current period) and whether it is complete."""
    wanted = st.query_params.get("grain", "month")
    grain_col, period_col, _ = st.columns([1, 2, 2])
    grain = grain_col.selectbox("Period", GRAINS, index=GRAINS.index(wanted) if wanted in GRAINS else 1,
                                format_func=str.capitalize, key="overview_grain")
    current = period_start(grain, now)
    starts = [current]
    while len(starts) < 16:
        starts.append(previous_start(grain, starts[-1]))
    try:
        at = period_start(grain, date.fromisoformat(st.query_params.get("at", "")))
    except ValueError:
        at = starts[1]
    if at not in starts:
        starts.append(at)
        starts.sort(reverse=True)
    start = period_col.selectbox("Which", starts, index=starts.index(at), key=f"overview_at_{grain}",
                                 format_func=lambda s: period_name(grain, s) + (" (to date)" if s == current else ""))
    st.query_params.from_dict({"grain": grain, "at": start.isoformat()})
    last = next_start(grain, start) - timedelta(days=1)
    return grain, start, min(last, now), last < now


def tiles_of(path: str, grain: str, start: date, end: date) -> list[tuple[str, str, str, str | None]]:
    """(section, metric, label, brand) for every tile shown: declared metrics only, a share-of-voice tile per
    brand (shares of different brands are never added up)."""
    catalog = data.metric_catalog(path)
    found = []
    for title, tiles in GROUPS:
        for metric, label in tiles:
            if metric not in catalog:
                continue
            if metric == "seo.share_of_voice":
                brands = data.dimension_values(path, metric, "brand", start, end)
                found += [(title, metric, f"Share of voice: {b}", b) for b in brands] or [(title, metric, label, "")]
            else:
                found.append((title, metric, label, None))
    return found


def questions(path: str, tiles, grain: str, start: date, end: date, complete: bool):
    """The kpi and sparkline questions of every tile, asked together (`data.kpis_and_frames`). A complete
    period's number is the sparkline's last bucket, so then only the sparklines are asked, with the comparison
    (`numbers`); a period to date compares the same days, so it asks its own KPI at the day grain."""
    catalog = data.metric_catalog(path)
    compare = COMPARE[grain]
    spark_from = start
    for _ in range(SPARK_PERIODS - 1):
        spark_from = previous_start(grain, spark_from)
    kpis, frames = [], []
    for _, metric, _, brand in tiles:
        where = (("brand", (brand,)),) if brand else ()
        if not complete:
            # the same days of the compared period, not the whole of it (distinct counts need one bucket)
            kpi_grain = grain if catalog[metric]["kind"] == "distinct" else "day"
            kpis.append((metric, kpi_grain, start, end, compare, where))
        frames.append((metric, grain, spark_from, end, (), compare if complete else None, where))
    return tuple(kpis), tuple(frames)


def numbers(path: str, tiles, grain: str, start: date, end: date, complete: bool) -> tuple[list, list]:
    """Each tile's KPI (`queries.kpi`'s answer) and sparkline frame, or the QueryError that stands in."""
    kpis, frames = data.kpis_and_frames(path, *questions(path, tiles, grain, start, end, complete))
    if complete:
        metrics = data.settings(path).catalog.metrics
        kpis = [spark if isinstance(spark, Exception) else
                kpi_of(dataclasses.replace(spark, frame=spark.frame.tail(1)), metrics[metric])
                for (_, metric, _, _), spark in zip(tiles, frames)]
    return kpis, frames


def compared_name(grain: str, start: date) -> str:
    """The period a tile is compared with: the one before, or the same quarter a year before."""
    if grain == "quarter":
        return period_name(grain, start.replace(year=start.year - 1))
    return period_name(grain, previous_start(grain, start)).split(" (")[0]


def tile(column, info: dict, label: str, kpi, spark, grain: str, start: date, complete: bool) -> None:
    """One KPI tile: the period's value (a counter's total, a gauge's value at its end), the change against
    the compared period, and a sparkline of the metric over the last periods."""
    if isinstance(kpi, Exception) or isinstance(spark, Exception):
        column.metric(label, "–", help=str(kpi if isinstance(kpi, Exception) else spark), border=True)
        return
    values = spark.frame["value"].dropna().tolist()
    partial_distinct = not complete and info["kind"] == "distinct"    # a partial period against a whole one
    delta = None if kpi.delta is None or partial_distinct else widgets.change_text(kpi.delta, kpi.delta_pct, info["unit"])
    note = "" if kpi.complete else " The period is still in progress (or its source is behind), so it is partial."
    kind = {"gauge": "Value at the end of the period", "counter": "Total over the period",
            "distinct": "Counted over the whole period"}[info["kind"]]
    # The compared period is named once above the tiles (and in the help): beside the change it was cut off
    # in four tiles a row at 1400 px.
    against = f"{compared_name(grain, start)}{'' if complete else ', same days'}"
    missing = "" if kpi.value is not None else " No value for this period: its source has no data for it."
    column.metric(label, widgets.human(kpi.value, info["unit"]), delta, border=True, height="stretch",
                  delta_color="gray" if kpi.delta == 0 else "normal", delta_arrow="off" if kpi.delta == 0 else "auto",
                  help=f"{info['description']}. {kind}; {against}: {widgets.human(kpi.previous, info['unit'])}."
                       f"{note}{missing}",
                  chart_data=values if len(values) > 1 else None,
                  chart_type="line" if info["kind"] == "gauge" else "bar")


def sections(path: str, grain: str, start: date, end: date, complete: bool) -> None:
    catalog = data.metric_catalog(path)
    fresh = data.freshness(path)
    tiles = tiles_of(path, grain, start, end)
    kpis, frames = numbers(path, tiles, grain, start, end, complete)
    for title, _ in GROUPS:
        mine = [(i, t) for i, t in enumerate(tiles) if t[0] == title]
        if not mine:
            continue
        head, badges = st.columns([3, 8], vertical_alignment="center")
        head.subheader(title)
        with badges.container(horizontal=True):
            for source in dict.fromkeys(catalog[t[1]]["source"] for _, t in mine):
                widgets.freshness_badge(fresh[source])
        for n, (i, (_, metric, label, brand)) in enumerate(mine):
            if n % 4 == 0:
                columns = st.columns(4)     # a row at a time, so tiles of a row are as tall as each other
            if brand == "":
                columns[n % 4].metric(label, "–", help="No share of voice measured yet.", border=True)
            else:
                tile(columns[n % 4], catalog[metric], label, kpis[i], frames[i], grain, start, complete)


path, cfg = page.start("Overview")
with_data = page.needs_data(lambda: data.sources_with_data(path), f"The warehouse at `{cfg.warehouse_dir}` has no data yet.")

grain, start, end, complete = pick_period(today(cfg))
attention = [f for f in data.freshness(path).values() if f.state in ("stale", "failing")]
if attention:
    st.warning("Numbers of these sources may be low because collection is behind, not because of a real "
               "drop: " + "; ".join(f"**{f.source}** {widgets.freshness_text(f)}" for f in attention) +
               ". The Sources page has details.", icon=":material/warning:")
st.caption(f"Each tile: {period_name(grain, start)}{' to date' if not complete else ''}, the change against "
           f"{compared_name(grain, start)}{', same days' if not complete else ''}, and the last {SPARK_PERIODS} "
           f"{grain}s.")
with st.spinner("Reading the numbers..."):
    sections(path, grain, start, end, complete)
st.caption(f"{period_name(grain, start)}{'' if complete else ' to date'}, against {AGAINST[grain]}. Times in "
           f"{cfg.warehouse.timezone}; answers refresh every {data.TTL} seconds.")
