"""The Dashboards and Reports pages in Streamlit's AppTest, routed through `st.navigation` as app.py routes
them, against a real warehouse: the ready-made dashboards, every widget kind drawn with the numbers
`queries.series_json` gives for the same question, widgets added, edited, duplicated, moved and deleted
through the page's own inputs and kept across an app restart, and the report downloads."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import reportfill
from warehouse import queries
from warehouse.dashboards_state import Dashboards, WidgetSpec
from warehouse.lake import Reader
from warehouse.state import State

pytestmark = pytest.mark.slow        # AppTest runs of a real warehouse: ~2-5 s each on the shared machine
ROOT = Path(__file__).resolve().parents[2]
D = date.fromisoformat
FIXED = dict(last=None, start=D("2024-02-01"), end=D("2024-02-29"))
KINDS = [
    WidgetSpec("line", "downloads", "Weekly downloads", grain="week", by="version", compare="wow", **FIXED),
    WidgetSpec("bar", "youtube.views", "Weekly views", grain="week", **FIXED),
    WidgetSpec("pie", "meltwater.mentions", "Mentions by brand", by="brand", **FIXED),
    WidgetSpec("scatter", "downloads", "Downloads against stars", grain="week", y_metric="github.stars", **FIXED),
    WidgetSpec("kpi", "twitter.followers", "X followers", compare="wow", **FIXED),
    WidgetSpec("table", "meltwater.mentions", "Mentions per week", grain="week", by="brand", **FIXED),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    return reportfill.build(tmp_path_factory.mktemp("pages"))


def page(name: str, cfg, monkeypatch, **query) -> AppTest:
    monkeypatch.setenv("CASKALYTICS_CONFIG", str(cfg.path))
    script = (f"import streamlit as st\nst.navigation([st.Page({str(ROOT / 'pages' / name)!r})]).run()\n")
    at = AppTest.from_string(script, default_timeout=90)
    at.query_params.update(query)
    return at.run()


def figures(at: AppTest) -> dict[str, dict]:
    """Each Plotly chart by its element key (w<id>_chart, w<id>_spark)."""
    return {chart.proto.id.rsplit("-", 1)[-1]: json.loads(chart.proto.spec) for chart in at.get("plotly_chart")}


def series_json(cfg, metric: str, grain: str, by: str | None = None, compare: str | None = None) -> dict:
    reader = Reader(cfg)
    try:
        request = queries.SeriesRequest(metric, grain, FIXED["start"], FIXED["end"], by=[by] if by else None,
                                        compare=compare)
        return queries.series_json(queries.series_frame(reader.cursor(), cfg, request))
    finally:
        reader.close()


def dashboard_picker(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Dashboard")


def test_ready_made_dashboards_open_and_the_choice_is_in_the_url(warehouse, monkeypatch):
    at = page("dashboards.py", warehouse, monkeypatch)
    assert not at.exception
    store = Dashboards(State(warehouse))
    names = dict(store.names())
    assert sorted(names.values()) == ["Awareness", "Marketing funnel"]
    picker = dashboard_picker(at)
    assert picker.options == ["Awareness", "Marketing funnel"]
    awareness = store.by_name("Awareness")
    assert at.query_params["dashboard"] == str(awareness.id)
    assert [m.label.removesuffix(" (so far)") for m in at.metric] == ["Sessions", "LinkedIn followers",
                                                                      "YouTube subscribers", "X followers"]
    funnel = store.by_name("Marketing funnel").id
    picker.set_value(funnel).run()
    assert not at.exception and at.query_params["dashboard"] == str(funnel)
    linked = page("dashboards.py", warehouse, monkeypatch, dashboard=str(funnel))     # a shared link
    assert dashboard_picker(linked).value == funnel and not linked.exception


def test_every_widget_kind_draws_the_numbers_of_the_api(warehouse, monkeypatch):
    store = Dashboards(State(warehouse))
    board = store.create("Every kind", KINDS)
    ids = [w.id for w in store.get(board).widgets]
    at = page("dashboards.py", warehouse, monkeypatch, dashboard=str(board))
    assert not at.exception and not at.warning
    charts = figures(at)
    assert set(charts) == {f"w{ids[i]}_chart" for i in range(4)} | {f"w{ids[4]}_spark"}

    line = {t["name"]: t["y"] for t in charts[f"w{ids[0]}_chart"]["data"]}
    api = series_json(warehouse, "downloads", "week", "version", "wow")
    for series in api["series"]:
        name = series["dims"]["version"]
        assert line[name] == [p["value"] for p in series["points"]]
        assert line[f"{name}, a week earlier"] == [p["previous"] for p in series["points"]]
    bars = charts[f"w{ids[1]}_chart"]["data"][0]
    assert bars["type"] == "bar" and bars["y"] == [p["value"] for p in series_json(warehouse, "youtube.views", "week")["points"]]
    pie = charts[f"w{ids[2]}_chart"]["data"][0]
    assert dict(zip(pie["labels"], pie["values"])) == {"cask": 87, "rival": 29}
    scatter = charts[f"w{ids[3]}_chart"]["data"][0]
    assert scatter["x"] == [p["value"] for p in series_json(warehouse, "downloads", "week")["points"]]
    assert scatter["y"] == [p["value"] for p in series_json(warehouse, "github.stars", "week")["points"]]

    [kpi] = at.metric
    days = series_json(warehouse, "twitter.followers", "day", compare="wow")["points"]
    assert kpi.label == "X followers" and kpi.value == "1.3k"            # a gauge: the last day, not a sum
    assert days[-1]["value"] == 1295 and kpi.delta == "+35 (+2.8 %) vs a week earlier"
    [table] = at.dataframe
    api = series_json(warehouse, "meltwater.mentions", "week", "brand")
    assert table.value["Value"].tolist() == [f"{p['value']:,}" for s in api["series"] for p in s["points"]]
    assert set(table.value["Complete"]) == {"yes"}


def test_widgets_are_added_edited_copied_moved_and_deleted_and_survive_a_restart(warehouse, monkeypatch):
    store = Dashboards(State(warehouse))
    board = store.create("Edited through the page")
    at = page("dashboards.py", warehouse, monkeypatch, dashboard=str(board))
    assert [i.value for i in at.info] == ["This dashboard has no widgets yet: add one under “Add a widget”."]

    at.selectbox(key="new_kind").set_value("bar").run()
    at.selectbox(key="new_metric").set_value("meltwater.mentions").run()
    at.selectbox(key="new_grain").set_value("week").run()
    at.selectbox(key="new_by").set_value("brand").run()
    at.text_input(key="new_title").set_value("Mentions").run()
    at.radio(key="new_mode").set_value("fixed").run()
    at.date_input(key="new_dates").set_value((D("2024-02-05"), D("2024-02-25"))).run()
    at.button(key="add_widget").click().run()
    assert not at.exception
    [added] = store.get(board).widgets
    assert added.spec == WidgetSpec("bar", "meltwater.mentions", "Mentions", grain="week", last=None,
                                    start=D("2024-02-05"), end=D("2024-02-25"), by="brand")
    bars = figures(at)[f"w{added.id}_chart"]["data"]
    assert {t["name"]: t["y"] for t in bars} == {"cask": [21, 21, 21], "rival": [7, 7, 7]}

    key = f"w{added.id}"
    assert f"{key}_kind" not in [s.key for s in at.selectbox]
    at.button(key=f"{key}_edit").click().run()          # the editor is drawn once opened
    at.selectbox(key=f"{key}_kind").set_value("line").run()
    at.selectbox(key=f"{key}_compare").set_value("wow").run()
    at.selectbox(key=f"{key}_where_dim").set_value("brand").run()
    assert at.multiselect(key=f"{key}_where_brand").options == ["cask", "rival"]    # seen in the widget's range
    at.multiselect(key=f"{key}_where_brand").set_value(["cask"]).run()
    at.button(key=f"{key}_save").click().run()
    assert not at.exception
    edited = store.get(board).widgets[0].spec
    assert (edited.kind, edited.compare, edited.by, edited.where) == ("line", "wow", "brand", {"brand": ["cask"]})
    assert {t["name"].split(",")[0] for t in figures(at)[f"{key}_chart"]["data"]} == {"cask"}

    at.button(key=f"{key}_copy").click().run()
    first, copy = store.get(board).widgets
    assert first.id == added.id and copy.spec.title == "Mentions (copy)"
    at.button(key=f"w{copy.id}_up").click().run()
    assert [w.id for w in store.get(board).widgets] == [copy.id, added.id]
    assert at.button(key=f"w{copy.id}_up").disabled and at.button(key=f"w{added.id}_down").disabled
    at.button(key=f"w{copy.id}_delete").click().run()
    assert not at.exception
    assert [w.id for w in store.get(board).widgets] == [added.id]

    restarted = page("dashboards.py", warehouse, monkeypatch, dashboard=str(board))    # a new app session
    assert not restarted.exception
    assert dashboard_picker(restarted).value == board
    assert set(figures(restarted)) == {f"{key}_chart"}
    restarted.button(key=f"{key}_edit").click().run()
    assert restarted.selectbox(key=f"{key}_compare").value == "wow"


def test_dashboards_are_created_renamed_and_deleted_on_the_page(warehouse, monkeypatch):
    at = page("dashboards.py", warehouse, monkeypatch)
    at.text_input(key="new_dashboard_name").set_value("Launch week").run()
    at.button(key="create_dashboard").click().run()
    store = Dashboards(State(warehouse))
    created = store.by_name("Launch week").id
    assert at.query_params["dashboard"] == str(created) and dashboard_picker(at).value == created
    at.text_input(key=f"rename_{created}").set_value("Awareness").run()
    at.button(key="rename_dashboard").click().run()
    assert [e.value for e in at.error] == ["a dashboard named 'Awareness' already exists"]
    at.checkbox(key=f"delete_sure_{created}").check().run()
    at.button(key="delete_dashboard").click().run()
    assert not at.exception and store.by_name("Launch week") is None
    assert [s.value for s in at.success] == ["Deleted “Launch week”."]


def test_reports_page_offers_the_pdf_and_the_workbook_with_the_key_numbers(warehouse, monkeypatch):
    store = Dashboards(State(warehouse))
    board = store.by_name("Every kind") or store.get(store.create("Every kind", KINDS))
    at = page("report_downloads.py", warehouse, monkeypatch, dashboard=str(board.id), **{"from": "2024-02-01", "to": "2024-02-29"})
    assert not at.exception and not at.error
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["PDF report", "Excel workbook"]
    kpis = at.dataframe[0].value.set_index("Metric")
    assert kpis.loc["downloads"].tolist() == ["87", "58", "+29", "+50.0 %"]
    assert kpis.loc["twitter.followers"].tolist() == ["1,295", "1,150", "+145", "+12.6 %"]
    assert at.query_params["dashboard"] == str(board.id) and at.query_params["to"] == "2024-02-29"
    at.date_input(key="report_range").set_value((D("2024-03-01"), D("2024-03-31"))).run()
    assert not at.exception and at.query_params["from"] == "2024-03-01"
