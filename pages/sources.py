"""Sources: each source's status, schedule, cursor, last runs, rows and quarantined records (with the
reasons), and a backfill form that queues the work for the scheduler (the lake's one writer) and shows its
progress.

The source shown in detail is in the URL (`?source=github`).
"""
from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import streamlit as st

from dashboard import data, page, widgets
from warehouse.queries import today

STATE_LABELS = {"fresh": "fresh", "stale": "stale", "failing": "failing", "never": "not collected yet",
                "off": "off"}


def _local(moment) -> str:
    return "" if moment is None else pd.Timestamp(moment).tz_convert(cfg.warehouse.timezone).strftime("%Y-%m-%d %H:%M")


def overview_table(fresh: dict, tables: dict) -> None:
    rows = []
    quarantined = {}
    for q in tables["quarantine"]:
        quarantined[q["source"]] = quarantined.get(q["source"], 0) + q["records"]
    for name, f in fresh.items():
        rows.append({"source": name, "status": STATE_LABELS[f.state], "schedule": f.schedule or "",
                     "last success": _local(f.last_success_at), "newest data": _local(f.last_data_at),
                     "failures in a row": f.consecutive_failures,
                     "rows": sum(tables["rows"].get(name, {}).values()), "quarantined": quarantined.get(name, 0),
                     "last error": f.last_error or ""})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "rows": st.column_config.NumberColumn(format="localized"),
        "quarantined": st.column_config.NumberColumn(format="localized")})


def details(source: str, fresh, tables: dict) -> None:
    widgets.freshness_badge(fresh)
    cols = st.columns(3)
    cols[0].metric("Schedule", fresh.schedule or "off", border=True)
    rows = tables["rows"].get(source, {})
    cols[1].metric("Rows", widgets.human(sum(rows.values())), border=True,
                   help="\n".join(f"{t}: {n:,}" for t, n in rows.items()) or None)
    quarantine = [q for q in tables["quarantine"] if q["source"] == source]
    cols[2].metric("Quarantined records", f"{sum(q['records'] for q in quarantine):,}", border=True)
    cursor = tables["cursors"].get(source)
    st.markdown("**Cursor** " + (f"(moved {_local(cursor['updated_at'])})" if cursor else ""))
    if cursor:
        st.code(json.dumps(cursor["cursor"], indent=1, default=str)[:2000], language="json")
    else:
        st.caption("No cursor yet: the source has not committed a batch.")
    st.markdown("**Last runs**")
    runs = data.runs(path, source)
    if runs:
        frame = pd.DataFrame(runs)[["id", "kind", "status", "started_at", "finished_at", "records", "inserted",
                                    "duplicates", "quarantined", "error"]]
        st.dataframe(frame, hide_index=True, width="stretch")
    else:
        st.caption("No runs yet.")
    st.markdown("**Quarantined records**")
    if not quarantine:
        st.caption("None: every record of this source was accepted.")
        return
    st.dataframe(pd.DataFrame(quarantine)[["reason", "records", "last_at"]], hide_index=True, width="stretch")
    st.dataframe(pd.DataFrame(data.quarantined(path, source)), hide_index=True, width="stretch",
                 column_config={"record": st.column_config.TextColumn(width="large")})


def backfill_form(choices: list[str], source: str) -> None:
    if not choices:
        st.caption("No enabled source can be backfilled (sources fed by the inbox, like the beacon, cannot).")
        return
    now = today(cfg)
    with st.form("backfill"):
        st.markdown("**Backfill**: read a date range again (natural keys make overlaps harmless). The scheduler "
                    "starts queued work within seconds, oldest first.")
        row = st.columns([2, 2, 1], vertical_alignment="bottom")
        picked_source = row[0].selectbox("Source", choices, index=choices.index(source) if source in choices else 0)
        picked = row[1].date_input("Dates", value=(now - timedelta(days=7), now), max_value=now)
        submitted = row[2].form_submit_button("Queue", type="primary")
    if not submitted:
        return
    if not isinstance(picked, (tuple, list)) or len(picked) != 2:
        st.error("Pick the first and the last day of the range.")
        return
    request = data.request_backfill(path, picked_source, picked[0], picked[1])
    st.success(f"Backfill #{request} of {picked_source} from {picked[0]} to {picked[1]} is queued.")


@st.fragment(run_every=5)
def queue() -> None:
    """Queued, running and finished backfills, refreshed every few seconds."""
    requests = data.backfill_requests(path)
    if not requests:
        st.caption("No backfill requested yet.")
        return
    frame = pd.DataFrame(requests)
    frame["progress"] = [(d / t if t else None) if s == "running" else 1.0 if s == "done" else None
                         for d, t, s in zip(frame["progress_done"], frame["progress_total"], frame["status"])]
    st.dataframe(frame[["id", "source", "start_day", "end_day", "status", "progress", "batches", "records",
                        "inserted", "label", "requested_at", "finished_at", "error"]], hide_index=True,
                 width="stretch", column_config={
                     "progress": st.column_config.ProgressColumn(min_value=0, max_value=1, format="percent"),
                     "records": st.column_config.NumberColumn("rows read", format="localized"),
                     "inserted": st.column_config.NumberColumn("rows new", format="localized")})


path, cfg = page.start("Sources")
fresh = page.needs_data(lambda: data.freshness(path))
tables = page.needs_data(lambda: data.source_tables(path))

overview_table(fresh, tables)
st.caption(f"Times in {cfg.warehouse.timezone}. Stale: no successful run for three scheduled intervals.")
names = list(fresh)
wanted = st.query_params.get("source")
source = st.selectbox("Source", names, index=names.index(wanted) if wanted in names else 0, key="sources_source")
st.query_params["source"] = source
details(source, fresh[source], tables)
st.divider()
backfill_form(data.backfillable_sources(path), source)
queue()
