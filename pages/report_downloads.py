"""Reports page: for a saved dashboard and a date range, a PDF (charts, KPI table against the previous period,
page numbers, time zone and data freshness) and an Excel workbook (a sheet per widget with value, previous,
Δ, Δ % and a native chart). The files come from `reports.pdf.render` and `reports.workbook.render` over one
`reports.model.evaluate`, the functions the alert digests use. Dashboard and range live in the URL
(`?dashboard=<id>&from=YYYY-MM-DD&to=YYYY-MM-DD`).
"""
from __future__ import annotations

import re
from datetime import date, timedelta

import duckdb
import pandas as pd
import streamlit as st

from dashboard import data, page
from reports import numbers, pdf, workbook
from reports.model import ReportModel, evaluate
from warehouse import series_batch
from warehouse.dashboards_state import DashboardError, Dashboards
from warehouse.lake import WarehouseError
from warehouse.queries import QueryError, today
from warehouse.state import State

DEFAULT_DAYS = 30


@st.cache_resource(show_spinner=False)
def store(path: str) -> Dashboards:
    dashboards = Dashboards(State(data.settings(path)))
    dashboards.seed_demo()
    return dashboards


@st.cache_data(ttl=data.TTL, show_spinner=False, max_entries=8)
def build(path: str, dashboard_id: int, fingerprint: str, start: date, end: date) -> tuple[dict, ReportModel]:
    """(summary, model) of a dashboard over [start, end], every widget from one read of the rollups;
    `fingerprint` (the widgets' specs) makes an edited dashboard a new cache entry."""
    cfg = data.settings(path)
    cur, board = data._cursor(path), store(path).get(dashboard_id)
    model = series_batch.prefetched(cur, cfg, lambda rows: evaluate(cfg, cur, board, start, end, rows=rows))
    summary = {"kpis": [{"Metric": k.label + (f" ({k.note})" if k.note else ""),
                         "Value": numbers.full(k.value, k.unit), "Previous": numbers.full(k.previous, k.unit),
                         "Δ": numbers.delta(k.delta, k.unit, short=False), "Δ %": numbers.percent(k.delta_pct)}
                        for k in model.kpis],
               "freshness": [{"Source": f.source, "Last day with data": f.last_data.isoformat() if f.last_data
                              else "no data yet", "Last successful collection (UTC)":
                              (f.last_success_at or "none recorded")[:16].replace("T", " ")} for f in model.freshness],
               "problems": [f"{w.title}: {w.error}" for w in model.widgets if w.error],
               "previous": (model.previous_start, model.previous_end)}
    return summary, model


def _url_date(name: str) -> date | None:
    text = st.query_params.get(name, "")
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def _file_name(name: str, start: date, end: date, suffix: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dashboard"
    return f"{slug}_{start.isoformat()}_{end.isoformat()}.{suffix}"


path, cfg = page.start("Reports")
dashboards = store(path)

names = dashboards.names()
if not names:
    st.info("There are no dashboards yet: make one on the Dashboards page, then come back for its report.")
    st.stop()
ids = [i for i, _ in names]
wanted = st.query_params.get("dashboard", "")
pick_col, range_col = st.columns([1, 2])
dashboard_id = pick_col.selectbox("Dashboard", ids, index=ids.index(int(wanted)) if wanted.isdigit() and
                                  int(wanted) in ids else 0, format_func=dict(names).get, key="report_dashboard")
now = today(cfg)
start, end = _url_date("from") or now - timedelta(days=DEFAULT_DAYS - 1), _url_date("to") or now
picked = range_col.date_input(f"Range ({cfg.warehouse.timezone})", value=(min(start, end), end), key="report_range",
                              help="Every widget is shown over this range; the KPI table compares it with the "
                                   "period of the same length just before")
if not isinstance(picked, (tuple, list)) or len(picked) != 2:
    st.info("Pick the last day of the range.")
    st.stop()
start, end = picked
st.query_params.from_dict({"dashboard": str(dashboard_id), "from": start.isoformat(), "to": end.isoformat()})

try:
    board = dashboards.get(dashboard_id)
except DashboardError as exc:
    st.info(f"{exc}: pick another dashboard.")
    st.stop()
if not board.widgets:
    st.info(f"“{board.name}” has no widgets yet: add some on the Dashboards page.")
    st.stop()
fingerprint = "|".join(w.spec.to_json() for w in board.widgets)
try:
    with st.spinner(f"Building the report of “{board.name}”…"):
        summary, model = build(path, dashboard_id, fingerprint, start, end)
except (WarehouseError, duckdb.CatalogException):
    st.info(f"There is no warehouse data at `{cfg.warehouse_dir}` yet. Start the pipeline with `make run`, then "
            "reload this page.", icon=":material/hourglass_empty:")
    st.stop()
except QueryError as exc:
    st.error(str(exc))
    st.stop()

pdf_col, xlsx_col, _ = st.columns([1, 1, 2])
# The files are made when a button is pressed (on a thread of their own), not on every view of the page.
pdf_col.download_button("PDF report", lambda: pdf.render(model),
                        file_name=_file_name(board.name, start, end, "pdf"), mime="application/pdf",
                        icon=":material/picture_as_pdf:", key="download_pdf", type="primary")
xlsx_col.download_button("Excel workbook", lambda: workbook.render(model),
                         file_name=_file_name(board.name, start, end, "xlsx"),
                         mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         icon=":material/table_view:", key="download_xlsx")
before_start, before_end = summary["previous"]
st.subheader("Key numbers")
st.caption(f"{start} to {end} against {before_start} to {before_end}. Counters are totals over the range; gauges "
           "(followers, stars, shares) are their value at its end, never summed.")
if summary["kpis"]:
    st.dataframe(pd.DataFrame(summary["kpis"]), hide_index=True, key="report_kpis")
else:
    st.info("None of this dashboard's metrics can be totalled over the range.")
for problem in summary["problems"]:
    st.warning(problem)
st.subheader("Data freshness")
st.dataframe(pd.DataFrame(summary["freshness"]), hide_index=True, key="report_freshness")
st.caption(f"The PDF has {len(board.widgets)} widget{'s' if len(board.widgets) > 1 else ''} after the title page "
           f"and the key numbers; the workbook a sheet per widget. Times in {cfg.warehouse.timezone}.")
