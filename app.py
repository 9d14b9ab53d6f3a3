"""Caskalytics dashboard, first page: product downloads by version and GitHub stars over time.

Run from the repo root with `streamlit run app.py`; the config comes from $CASKALYTICS_CONFIG or ./config.toml.
Every number comes from `warehouse.queries` (through the cached calls in `dashboard.data`), the same
functions the REST API answers from.
"""
from __future__ import annotations

import streamlit as st

from config import ConfigError
from dashboard import data, widgets

METRICS = ("downloads", "github.stars")
HOW_TO_FILL = ("Start the pipeline with `make run` (it loads demo data when no credentials are set), or collect "
               "once with `python scheduler.py collect s3_access_logs` and `python scheduler.py collect github`; "
               "then reload this page.")

st.set_page_config(page_title="Caskalytics", page_icon=":material/insights:", layout="wide")
st.title("Caskalytics")

path = data.config_path()
try:
    cfg = data.settings(path)
    extents = data.extents(path, METRICS)
except ConfigError as exc:
    st.error(f"The configuration cannot be read: {exc}")
    st.stop()
except data.NoData as exc:
    st.info(f"{exc} {HOW_TO_FILL}", icon=":material/hourglass_empty:")
    st.stop()
if not extents:
    st.info(f"The warehouse at `{cfg.warehouse_dir}` has no downloads or GitHub stars yet. {HOW_TO_FILL}",
            icon=":material/hourglass_empty:")
    st.stop()

first = min(e[0] for e in extents.values())
last = max(e[1] for e in extents.values())
period = widgets.period_controls(cfg, first, last)
if period is None:
    st.stop()
grain, start, end, compare = period.grain, period.start, period.end, period.compare
about = data.descriptions()
kpi_downloads, kpi_version, kpi_stars = st.columns(3)

# Downloads: totals per version over the range, and the trend per version at the chosen grain.
st.subheader("Downloads", help=about["downloads"])
totals = data.downloads_by_version(path, start, end) if "downloads" in extents else []
if not totals:
    st.info(f"No downloads between {start} and {end}.")
else:
    versions = [t["version"] for t in totals]                 # newest first
    palette = widgets.colors(versions)
    overall = data.series(path, "downloads", "day", start, end, compare=compare)["points"]
    total = sum(p["value"] for p in overall)
    delta = (f"{total - sum(p['previous'] for p in overall):+,} vs {widgets.PREVIOUS_LABELS[compare]}"
             if compare else None)
    kpi_downloads.metric("Downloads", f"{total:,}", delta, border=True)
    top = max(totals, key=lambda t: t["dl"])
    kpi_version.metric("Most downloaded version", top["version"], f"{top['dl']:,} downloads",
                       delta_color="off", delta_arrow="off", border=True)
    bars_col, lines_col = st.columns([2, 3])
    bars = widgets.totals_bars(totals[::-1], "version", "dl", palette, f"Downloads by version, {start} to {end}")
    bars_col.plotly_chart(bars, key="downloads_by_version")
    shown = lines_col.multiselect("Versions", versions, default=versions[:6],
                                  help="The line chart shows the six newest versions unless you pick others")
    if shown:
        where = () if len(shown) == len(versions) else (("version", tuple(shown)),)
        answer = data.series(path, "downloads", grain, start, end, by=("version",), compare=compare, where=where)
        lines_col.plotly_chart(widgets.trend(answer, "version", palette, f"Downloads per {grain} by version"),
                               key="downloads_over_time")

# GitHub stars: a gauge, so each bucket shows the count at its end.
st.subheader("GitHub stars", help=about["github.stars"])
stars = data.series(path, "github.stars", grain, start, end, by=("repo",), compare=compare) \
    if "github.stars" in extents else {"series": []}
if not stars["series"]:
    st.info(f"No GitHub stars between {start} and {end}.")
else:
    repos = sorted(s["dims"]["repo"] for s in stars["series"])
    latest = sum(s["points"][-1]["value"] for s in stars["series"])
    delta = (f"{latest - sum(s['points'][-1]['previous'] for s in stars['series']):+,} vs "
             f"{widgets.PREVIOUS_LABELS[compare]}" if compare else None)
    kpi_stars.metric("GitHub stars", f"{latest:,}", delta, help=f"Sum over {', '.join(repos)}", border=True)
    st.plotly_chart(widgets.trend(stars, "repo", widgets.colors(repos), f"GitHub stars per {grain} by repository"),
                    key="stars_over_time")

st.caption(f"Times in {cfg.warehouse.timezone}. Data from {first} to {last}; answers refresh every "
           f"{data.TTL} seconds.")
