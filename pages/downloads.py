"""Dashboard page: product downloads by version and GitHub stars over time.

Every number comes from `warehouse.queries` (through the cached calls in `dashboard.data`), the same
functions the REST API answers from.
"""
from __future__ import annotations

import streamlit as st

from dashboard import data, page, widgets

METRICS = ("downloads", "github.stars")
HOW_TO_FILL = ("Start the pipeline with `make run` (it loads demo data when no credentials are set), or collect "
               "once with `python scheduler.py collect s3_access_logs` and `python scheduler.py collect github`; "
               "then reload this page.")
HOW_TO_FILL = ("Start the pipeline with `make run` (it loads demo data when no credentials are set), or collect "
               "once with `python scheduler.py collect s3_access_logs` and `python scheduler.py collect github`; "
               "then reload this page.")


def downloads_section(path: str, period: widgets.Period, kpis) -> None:
    """KPIs, total downloads per version over the range, and downloads per version at the chosen grain."""
    st.subheader("Downloads", help=data.descriptions(path)["downloads"])
    totals = data.downloads_by_version(path, period.start, period.end)
    if not totals:
        st.info(f"No downloads between {period.start} and {period.end}.")
        return
    versions = [t["version"] for t in totals]                 # newest first
    palette = widgets.colors(versions)
    total = data.kpi(path, "downloads", "day", period.start, period.end, period.compare)
    kpis[0].metric("Downloads", f"{total.value:,}", widgets.change(total, period.compare), border=True,
                   height="stretch")
    top = max(totals, key=lambda t: t["dl"])
    kpis[1].metric("Most downloaded version", top["version"], f"{top['dl']:,} downloads", delta_color="off",
                   delta_arrow="off", border=True, height="stretch")

    bars_col, lines_col = st.columns([2, 3])
    bars = widgets.totals_bars(totals[::-1], "version", "dl", palette, "Downloads by version")
    bars_col.plotly_chart(bars, key="downloads_by_version", config=widgets.CHART_CONFIG)
    shown = lines_col.multiselect("Versions", versions, default=versions[:6],
                                  help="The line chart shows the six newest versions unless you pick others")
    if shown:
        where = () if len(shown) == len(versions) else (("version", tuple(shown)),)
        answer = data.series(path, "downloads", period.grain, period.start, period.end, by=("version",),
                             compare=period.compare, where=where)
        chart = widgets.trend(answer, "version", palette, f"{widgets.ADVERB[period.grain]} downloads by version")
        lines_col.plotly_chart(chart, key="downloads_over_time", config=widgets.CHART_CONFIG)


def stars_section(path: str, period: widgets.Period, kpi) -> None:
    """Stars per repository; a gauge, so each bucket shows the count at its end."""
    st.subheader("GitHub stars", help=data.descriptions(path)["github.stars"])
    answer = data.series(path, "github.stars", period.grain, period.start, period.end, by=("repo",),
                         compare=period.compare)
    if not answer["series"]:
        st.info(f"No GitHub stars between {period.start} and {period.end}.")
        return
    repos = sorted(s["dims"]["repo"] for s in answer["series"])
    latest = data.kpi(path, "github.stars", period.grain, period.start, period.end, period.compare)
    shown = "–" if latest.value is None else f"{latest.value:,}"     # no star counted yet at the range's end
    kpi.metric("GitHub stars", shown, widgets.change(latest, period.compare), help=f"Sum over {', '.join(repos)}",
               border=True, height="stretch")
    chart = widgets.trend(answer, "repo", widgets.colors(repos),
                          f"GitHub stars by repository (at the end of each {period.grain})", from_zero=False)
    st.plotly_chart(chart, key="stars_over_time", config=widgets.CHART_CONFIG)


path, cfg = page.start("Downloads and stars")
extents = page.needs_data(lambda: data.extents(path, METRICS),
                          f"The warehouse at `{cfg.warehouse_dir}` has no downloads or GitHub stars yet.", HOW_TO_FILL)

first = min(e[0] for e in extents.values())
last = max(e[1] for e in extents.values())
period = widgets.period_controls(cfg, first, last)
if period is None:
    st.stop()
kpis = st.columns(3)
downloads_section(path, period, kpis)
stars_section(path, period, kpis[2])
st.caption(f"Times in {cfg.warehouse.timezone}. Data from {first} to {last}; answers refresh every "
           f"{data.TTL} seconds.")
