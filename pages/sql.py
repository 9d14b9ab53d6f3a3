"""SQL: the read-only SQL of `warehouse.sql` (one SELECT, in a locked-down process of its own) with an editor,
the queryable tables and their columns beside it, the result as a table and a chart, this session's query
history, and CSV/Excel downloads. A refused or failed statement shows the sandbox's one sentence.

The statement that ran is in the URL (`?q=SELECT ...`), so a link reruns it.
"""
from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data, page, widgets
from warehouse.export import ExportError, export
from warehouse.sql import MAX_LIMIT, SqlRefused

EXAMPLE = """SELECT metric, grain, count(*) AS buckets, sum(value) AS total
FROM rollups
WHERE grain = 'month'
GROUP BY ALL
ORDER BY metric"""
HISTORY = 20
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "FLOAT", "DOUBLE", "DECIMAL")


def table_list(path: str) -> None:
    """The tables user SQL may read, by kind, each with its columns."""
    st.markdown("**Tables**")
    try:
        tables = data.sql_tables(path)
    except SqlRefused as exc:
        st.info(str(exc))
        return
    if not tables:
        st.info("No tables yet: the scheduler creates them on its first run.")
    for table in tables:
        with st.expander(f"`{table['name']}` · {table['kind']}"):
            st.markdown("\n".join(f"- `{c['name']}` {c['type'].lower()}" for c in table["columns"]))


def run(path: str, text: str, limit: int) -> None:
    """Run the statement and keep the answer (or the refusal) in the session, newest first in the history."""
    entry = {"sql": text, "at": datetime.now().strftime("%H:%M:%S"), "rows": None, "error": None}
    try:
        with st.spinner("Running the query..."):
            result = data.run_sql(path, text, limit)
    except SqlRefused as exc:
        entry["error"] = str(exc)
        st.session_state["sql_result"] = None
    else:
        entry["rows"] = len(result.rows)
        st.session_state["sql_result"] = result
        st.query_params["q"] = text
    st.session_state["sql_error"] = entry["error"]
    history = st.session_state.setdefault("sql_history", [])
    history.insert(0, entry)
    del history[HISTORY:]


def load(text: str) -> None:
    st.session_state["sql_text"] = text


def result_frame(result) -> pd.DataFrame:
    frame = pd.DataFrame(result.rows, columns=[c["name"] for c in result.columns])
    for column in result.columns:     # JSON answers carry times as text; chart and sort them as times
        if column["type"].startswith(("TIMESTAMP", "DATE")):
            frame[column["name"]] = pd.to_datetime(frame[column["name"]], errors="coerce", utc=column["type"].endswith("WITH TIME ZONE"))
    return frame


def chart(result, frame: pd.DataFrame) -> None:
    """A simple chart of the result: one x column, one or more numeric y columns, as lines or bars."""
    numeric = [c["name"] for c in result.columns if c["type"].split("(")[0] in NUMERIC]
    if not numeric or frame.empty:
        st.caption("No numeric column to chart.")
        return
    names = list(frame.columns)
    x_col, y_col, kind_col = st.columns([1, 2, 1])
    x = x_col.selectbox("x", names, index=0 if names[0] not in numeric or len(names) == 1 else 0, key="sql_x")
    ys = y_col.multiselect("y", numeric, default=[c for c in numeric if c != x][:1] or numeric[:1], key="sql_y")
    kind = kind_col.segmented_control("Chart", ["Bar", "Line"], default="Bar", key="sql_kind") or "Bar"
    fig = go.Figure()
    for y in ys:
        color = widgets.series_color(y)
        if kind == "Bar":
            fig.add_bar(x=frame[x], y=frame[y], name=y, marker_color=color)
        else:
            fig.add_scatter(x=frame[x], y=frame[y], name=y, mode="lines+markers", line=dict(color=color))
    fig.update_layout(title=f"{', '.join(ys)} by {x}", hovermode="x unified", margin=dict(l=10, r=10, t=50, b=10),
                      height=380, showlegend=True, xaxis_title=x)
    fig.update_yaxes(tickformat="~s")
    st.plotly_chart(fig, key="sql_chart", config=widgets.CHART_CONFIG)


def downloads(frame: pd.DataFrame) -> None:
    row = st.container(horizontal=True)
    for fmt, label in (("csv", "CSV"), ("xlsx", "Excel")):
        try:
            made = export(frame, fmt, title="query")
        except ExportError as exc:
            row.caption(str(exc))
            continue
        row.download_button(f"Download {label}", b"".join(made.chunks), file_name=made.filename,
                               mime=made.media_type, on_click="ignore", key=f"sql_download_{fmt}",
                               icon=":material/download:")


path, _ = page.start("SQL")

st.session_state.setdefault("sql_text", st.query_params.get("q", EXAMPLE))
editor, tables = st.columns([3, 1])
with tables:
    table_list(path)
with editor:
    with st.form("sql_form", border=False):
        text = st.text_area("One SELECT (DuckDB SQL); Ctrl+Enter runs it", key="sql_text", height=200)
        left, right = st.columns([1, 3], vertical_alignment="bottom")
        limit = left.number_input("Row limit", min_value=1, max_value=MAX_LIMIT, value=1000, step=100, key="sql_limit")
        submitted = right.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if submitted or ("q" in st.query_params and "sql_history" not in st.session_state):
        run(path, text, int(limit))

    result, error = st.session_state.get("sql_result"), st.session_state.get("sql_error")
    if error:
        st.error(error)
    elif result is not None:
        frame = result_frame(result)
        more = " (more rows exist: raise the limit or narrow the query)" if result.truncated else ""
        st.caption(f"{len(frame):,} rows in {result.elapsed_ms:,} ms{more}")
        if frame.empty:
            st.info("The query answered no rows.")
        else:
            st.dataframe(frame, hide_index=True, width="stretch", height=min(400, 38 + 35 * len(frame)))
            chart(result, frame)
            downloads(frame)
    else:
        st.info("Write a SELECT over the tables listed on the right and press Run.")

    history = st.session_state.get("sql_history", [])
    if history:
        with st.expander(f"History ({len(history)})"):
            for i, entry in enumerate(history):
                line, button = st.columns([6, 1], vertical_alignment="center")
                outcome = f"refused: {entry['error']}" if entry["error"] else f"{entry['rows']:,} rows"
                line.markdown(f"`{entry['at']}` {outcome}")
                line.code(entry["sql"], language="sql")
                button.button("Load", key=f"sql_history_{i}", on_click=load, args=(entry["sql"],))
