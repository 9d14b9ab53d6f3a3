"""Dashboards page: named dashboards of saved widgets (line, bar, pie, scatter, KPI number, table), stored in
the state database and shared by everyone who opens the app. Widgets can be added, edited, moved, duplicated
and deleted; the dashboard shown is in the URL (`?dashboard=<id>`), so a link opens it.

Every number comes from `warehouse.queries` through `reports.model.evaluate_widget` (cached in
`dashboard.widget_kinds.answers`, one read for all widgets), the same functions the REST API and the reports use.
"""
from __future__ import annotations

import streamlit as st

from dashboard import data, page, widget_editor, widget_kinds
from warehouse.dashboards_state import DashboardError, Dashboards, WidgetSpec
from warehouse.state import State

COLUMNS = 2
NEW_WIDGET = WidgetSpec("line", "downloads", grain="day", last=30, unit="days")


@st.cache_resource(show_spinner=False)
def store(path: str) -> Dashboards:
    """The saved dashboards of this config's state database; the ready-made ones are added once per process
    (seeding is idempotent, so every process and restart may do it)."""
    dashboards = Dashboards(State(data.settings(path)))
    dashboards.seed_demo()
    return dashboards


def chosen(dashboards: Dashboards) -> int | None:
    """The dashboard to show: the URL's, else the first by name; None when there is none."""
    names = dashboards.names()
    if not names:
        return None
    ids = [i for i, _ in names]
    wanted = st.query_params.get("dashboard")
    current = int(wanted) if wanted and wanted.isdigit() and int(wanted) in ids else ids[0]
    picked = st.selectbox("Dashboard", ids, index=ids.index(current), format_func=dict(names).get,
                          key=f"dashboard_pick_{current}")
    st.query_params["dashboard"] = str(picked)
    return picked


def run(action, *args, message: str | None = None) -> None:
    """A change to the saved dashboards, then a fresh run showing it; one sentence if it cannot be made."""
    try:
        action(*args)
    except DashboardError as exc:
        st.session_state["dashboard_error"] = str(exc)
    else:
        if message:
            st.session_state["dashboard_done"] = message
    st.rerun()


def manage(dashboards: Dashboards, current: int | None) -> None:
    """Create, rename and delete dashboards."""
    with st.expander("Manage dashboards", icon=":material/settings:"):
        new_col, rename_col, delete_col = st.columns(3)
        name = new_col.text_input("New dashboard", key="new_dashboard_name", placeholder="Name")
        if new_col.button("Create dashboard", key="create_dashboard", disabled=not name.strip()):
            try:
                created = dashboards.create(name)
            except DashboardError as exc:
                st.session_state["dashboard_error"] = str(exc)
            else:
                st.query_params["dashboard"] = str(created)
            st.rerun()
        if current is None:
            return
        shown = dashboards.get(current)
        rename = rename_col.text_input("Rename to", value=shown.name, key=f"rename_{current}")
        if rename_col.button("Rename", key="rename_dashboard", disabled=rename.strip() == shown.name):
            run(dashboards.rename, current, rename)
        sure = delete_col.checkbox(f"Delete “{shown.name}” and its widgets", key=f"delete_sure_{current}")
        if delete_col.button("Delete dashboard", key="delete_dashboard", disabled=not sure, type="primary"):
            del st.query_params["dashboard"]
            run(dashboards.delete, current, message=f"Deleted “{shown.name}”.")


def values_of(path: str):
    """The filter input's choices: a dimension's values seen in the widget's range."""
    return lambda metric, dim, start, end: data.dimension_values(path, metric, dim, start, end)


def add_widget(dashboards: Dashboards, path: str, cfg, current: int) -> None:
    with st.expander("Add a widget", icon=":material/add_chart:"):
        spec = widget_editor.edit(cfg, "new", NEW_WIDGET, values_of(path))
        if st.button("Add widget", key="add_widget", disabled=spec is None, type="primary"):
            run(dashboards.add_widget, current, spec)


def widget_card(dashboards: Dashboards, path: str, cfg, widget, result, first: bool, last: bool) -> None:
    """One widget: its title and buttons, its answer drawn (`result`: a WidgetData, or the NoData to show)."""
    key = f"w{widget.id}"
    with st.container(border=True):
        title_col, *buttons = st.columns([6, 1, 1, 1, 1, 1], vertical_alignment="center")
        title_col.markdown(f"**{widget.spec.label()}**")
        if buttons[0].button("", key=f"{key}_up", icon=":material/arrow_upward:", help="Move earlier", disabled=first):
            run(dashboards.move_widget, widget.id, -1)
        if buttons[1].button("", key=f"{key}_down", icon=":material/arrow_downward:", help="Move later",
                             disabled=last):
            run(dashboards.move_widget, widget.id, 1)
        if buttons[2].button("", key=f"{key}_copy", icon=":material/content_copy:", help="Duplicate"):
            run(dashboards.duplicate_widget, widget.id)
        if buttons[3].button("", key=f"{key}_delete", icon=":material/delete:", help="Delete"):
            run(dashboards.delete_widget, widget.id, message=f"Deleted the widget “{widget.spec.label()}”.")
        # The editor is drawn only while open: a dozen inputs per widget made every view of the page slow.
        if buttons[4].button("", key=f"{key}_edit", icon=":material/edit:", help="Edit (press again to close)"):
            st.session_state[f"{key}_editing"] = not st.session_state.get(f"{key}_editing", False)
        editing = st.session_state.get(f"{key}_editing", False)
        if isinstance(result, data.NoData):
            st.info(f"{result} {page.HOW_TO_FILL}", icon=":material/hourglass_empty:")
        else:
            widget_kinds.show(path, result, key)
            st.caption(f"{widget.spec.grain.capitalize()} buckets, {result.start} to {result.end} "
                       f"({cfg.warehouse.timezone})")
        if editing:
            spec = widget_editor.edit(cfg, key, widget.spec, values_of(path))
            if st.button("Save", key=f"{key}_save", disabled=spec is None or spec == widget.spec, type="primary"):
                run(dashboards.update_widget, widget.id, spec)



path, cfg = page.start("Dashboards")
dashboards = store(path)

for flag, show in (("dashboard_error", st.error), ("dashboard_done", st.success)):
    if flag in st.session_state:
        show(st.session_state.pop(flag))

current = chosen(dashboards)
manage(dashboards, current)
if current is None:
    st.info("There are no dashboards yet: create one under “Manage dashboards”.")
    st.stop()
try:
    board = dashboards.get(current)
except DashboardError as exc:       # deleted in another session since this one loaded
    st.info(f"{str(exc)[0].upper()}{str(exc)[1:]}: pick another dashboard.")
    st.stop()
add_widget(dashboards, path, cfg, current)
if not board.widgets:
    st.info("This dashboard has no widgets yet: add one under “Add a widget”.")
try:
    with st.spinner("Loading the widgets…"):
        results = widget_kinds.answers(path, tuple(w.spec.to_json() for w in board.widgets))
except data.NoData as exc:
    results = [exc] * len(board.widgets)
columns = st.columns(COLUMNS)
for i, (widget, result) in enumerate(zip(board.widgets, results)):
    with columns[i % COLUMNS]:
        widget_card(dashboards, path, cfg, widget, result, first=i == 0, last=i == len(board.widgets) - 1)
st.caption(f"Times in {cfg.warehouse.timezone}. Dotted or faded: the current bucket, not complete yet. Answers "
           f"refresh every {data.TTL} seconds; dashboards are shared by everyone who opens this app.")
