"""The Overview, Explore, SQL and Sources pages in Streamlit's AppTest against a small real warehouse
(tests/dashboard/pagefill.py): no exception, the expected elements, and numbers equal to the API's answer
(`queries.series_json`) for the same question."""
from __future__ import annotations

import base64
import json
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import headless
import pagefill
import scheduler
from dashboard import widgets
from warehouse import lake, queries, sql
from warehouse.requests_state import BackfillRequests
from warehouse.state import State

APP = str(headless.ROOT / "app.py")
pytestmark = pytest.mark.slow     # a warehouse of four sources and an AppTest session per test: ~5-10 s each


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return pagefill.fill(tmp_path_factory.mktemp("pages"))


def open_page(cfg, monkeypatch, page: str, **query) -> AppTest:
    monkeypatch.setenv("CASKALYTICS_CONFIG", str(cfg.path))
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params.update(query)          # as a link opens the app: the view is in the URL from the start
    at.run()                               # the default page first: AppTest switches pages only after a run
    at.query_params.clear()                # which wrote its own view to the URL
    at.query_params.update(query)
    at.switch_page(f"pages/{page}")
    return at.run()


def api(cfg, metric: str, grain: str, start: date, end: date, **kw) -> dict:
    """What `GET /metrics/{metric}` answers for the same question."""
    con = lake.connect(cfg, read_only=True)
    try:
        return queries.series_json(queries.series_frame(con, cfg, queries.SeriesRequest(metric, grain, start, end, **kw)))
    finally:
        con.close()


def values(array) -> list:
    """A Plotly trace array as a list (Plotly 6 sends numeric arrays base64-encoded)."""
    if isinstance(array, dict) and "bdata" in array:
        decoded = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
        return [None if isinstance(v, float) and np.isnan(v) else v for v in decoded]
    return list(array)


def figure(at: AppTest) -> dict:
    [chart] = at.get("plotly_chart")
    return json.loads(chart.proto.spec)


def traces(fig: dict) -> dict[str, dict]:
    return {t["name"]: t for t in fig["data"]}


def tiles(at: AppTest) -> dict:
    return {m.label: m for m in at.metric}


# -- Overview ------------------------------------------------------------------------------------------------
def test_overview_tiles_show_the_apis_numbers_with_the_change_and_freshness(cfg, monkeypatch):
    at = open_page(cfg, monkeypatch, "overview.py", grain="month", at="2024-02-01")
    assert not at.exception
    shown = tiles(at)
    for label, metric in (("Downloads", "downloads"), ("X followers", "twitter.followers"),
                          ("Meltwater mentions", "meltwater.mentions"), ("GitHub stars", "github.stars")):
        [point] = api(cfg, metric, "month", date(2024, 2, 1), date(2024, 2, 29), compare="mom")["points"]
        change = point["value"] - point["previous"]
        assert shown[label].value == widgets.human(point["value"]), label
        assert shown[label].delta == widgets.change_text(change, change / point["previous"] * 100), label
    assert (shown["Downloads"].value, shown["Downloads"].delta) == ("174", "+50 (+40.3%)")    # 29 x 6 vs 31 x 4
    assert shown["X followers"].value == "1,295"               # a gauge: its value at the end of February
    assert shown["LinkedIn followers"].value == "–"            # a source that is off has no number
    assert at.query_params["grain"] == "month" and at.query_params["at"] == "2024-02-01"
    text = " ".join(m.value for m in at.markdown)
    assert "twitter: collected" in text and "linkedin: off in the config" in text
    # meltwater's last run failed: said on its badge and above the tiles, so its numbers are not read as a drop
    assert "meltwater: failing (1 run in a row)" in text
    [warning] = at.warning
    assert "**meltwater** failing" in warning.value and "twitter" not in warning.value


def test_overview_every_period_grain_renders(cfg, monkeypatch):
    for grain in ("week", "quarter", "year"):
        at = open_page(cfg, monkeypatch, "overview.py", grain=grain, at="2024-03-01")
        assert not at.exception, grain
        assert tiles(at)["Downloads"].value != "–", grain


# -- Explore -------------------------------------------------------------------------------------------------
def test_explore_draws_the_series_with_incomplete_bucket_overlay_and_releases(cfg, monkeypatch):
    at = open_page(cfg, monkeypatch, "explore.py", metric="downloads", grain="month", **{"from": "2024-01-01"},
                   to="2024-03-31", compare="mom")
    assert not at.exception
    answer = api(cfg, "downloads", "month", date(2024, 1, 1), date(2024, 3, 31), compare="mom")["points"]
    assert [p["complete"] for p in answer] == [True, True, False]   # no data past March's end yet
    drawn = traces(figure(at))
    # complete buckets solid, the incomplete one dotted (joined to the bucket before it)
    assert values(drawn["downloads"]["y"]) == [p["value"] if p["complete"] else None for p in answer]
    dotted = drawn["downloads (incomplete)"]
    assert dotted["line"]["dash"] == "dot" and values(dotted["y"]) == [None, 174, 186]
    previous = drawn["downloads, a month earlier"]
    assert previous["line"]["dash"] == "dash" and values(previous["y"]) == [p["previous"] for p in answer]
    hover = drawn["downloads"]["hovertext"]
    assert "Δ +50 (+40.3%)" in hover[1] and "incomplete" in drawn["downloads (incomplete)"]["hovertext"][2]
    releases = drawn["GitHub release"]
    assert [x[:10] for x in releases["x"]] == ["2024-02-05", "2024-03-11"]
    assert tiles(at)["Total"].value == "484"
    assert dict(at.query_params) | {} == {"metric": "downloads", "grain": "month", "from": "2024-01-01",
                                          "to": "2024-03-31", "compare": "mom"}


def test_explore_splits_filters_and_draws_bars_for_few_years(cfg, monkeypatch):
    at = open_page(cfg, monkeypatch, "explore.py", metric="meltwater.mentions", grain="month", by="brand",
                   **{"from": "2024-01-01"}, to="2024-03-31")
    assert not at.exception
    answer = api(cfg, "meltwater.mentions", "month", date(2024, 1, 1), date(2024, 3, 31), by=["brand"])
    drawn = traces(figure(at))
    for series in answer["series"]:
        brand = series["dims"]["brand"]
        complete = [p["value"] for p in series["points"] if p["complete"]]
        assert values(drawn[brand]["y"])[:len(complete)] == complete
        assert drawn[brand]["line"]["color"] == widgets.series_color(brand)     # the same colour on every page
    at = open_page(cfg, monkeypatch, "explore.py", metric="meltwater.mentions", grain="year", where="brand:talend",
                   **{"from": "2024-01-01"}, to="2024-03-31")
    assert not at.exception
    [bar] = [t for t in figure(at)["data"] if t["type"] == "bar"]
    [point] = api(cfg, "meltwater.mentions", "year", date(2024, 1, 1), date(2024, 3, 31),
                  where={"brand": ["talend"]})["points"]
    assert values(bar["y"]) == [point["value"]] == [273]
    assert at.query_params["where"] in (["brand:talend"], "brand:talend")


def test_explore_marks_a_collector_outage_and_its_catch_up(cfg, monkeypatch):
    today = datetime.now(timezone.utc).date()
    at = open_page(cfg, monkeypatch, "explore.py", metric="twitter.followers", grain="month",
                   **{"from": "2024-01-01"}, to=today.isoformat())
    assert not at.exception
    fig = figure(at)
    [outage] = traces(fig)["Collector outage"]["hovertext"]
    assert "2 failed runs" in outage and "caught up" in outage and "91 records" in outage
    assert any(shape.get("fillcolor") == "#d62728" for shape in fig["layout"].get("shapes", []))


def test_explore_without_data_for_the_metric_says_why(cfg, monkeypatch):
    at = open_page(cfg, monkeypatch, "explore.py", metric="linkedin.followers")
    assert not at.exception
    assert "has no data yet" in at.info[0].value and not at.get("plotly_chart")


# -- SQL -----------------------------------------------------------------------------------------------------
QUERY = "SELECT metric, sum(value) AS total FROM rollups WHERE grain = 'year' GROUP BY ALL ORDER BY metric"


def test_sql_page_runs_a_linked_query_and_refuses_a_write_in_one_sentence(cfg, monkeypatch):
    at = open_page(cfg, monkeypatch, "sql.py", q=QUERY)
    assert not at.exception
    expected = sql.run_readonly(cfg, QUERY)
    [table] = at.dataframe
    assert table.value.values.tolist() == expected.rows
    assert len(at.get("plotly_chart")) == 1 and len(at.get("download_button")) == 2
    assert any(e.label.startswith("`rollups`") for e in at.expander)

    at.text_area(key="sql_text").set_value("DELETE FROM rollups")
    at.button[0].click().run()
    assert not at.exception
    with pytest.raises(sql.SqlRefused) as refused:
        sql.run_readonly(cfg, "DELETE FROM rollups")
    assert [e.value for e in at.error] == [str(refused.value)]
    assert any(e.label == "History (2)" for e in at.expander)


# -- Sources -------------------------------------------------------------------------------------------------
def test_sources_page_shows_status_rows_and_quarantine(cfg, monkeypatch):
    at = open_page(cfg, monkeypatch, "sources.py", source="twitter")
    assert not at.exception
    overview = at.dataframe[0].value.set_index("source")
    assert overview.loc["twitter", "rows"] == 91 and overview.loc["twitter", "quarantined"] == 1
    assert overview.loc["meltwater", "status"] == "failing" and overview.loc["linkedin", "status"] == "off"
    quarantined = [d.value for d in at.dataframe if "record" in d.value.columns]
    assert quarantined and quarantined[0]["reason"].tolist() == ["followers_count is not a number"]


def test_a_backfill_queued_on_the_page_is_run_by_the_scheduler_and_shows_its_outcome(cfg, monkeypatch):
    at = open_page(cfg, monkeypatch, "sources.py", source="twitter")
    form_source = [s for s in at.selectbox if s.label == "Source" and "twitter" in s.options][-1]
    form_source.set_value("twitter")
    at.date_input[0].set_value((date(2024, 3, 1), date(2024, 3, 2)))
    [queue] = [b for b in at.button if b.label == "Queue"]
    queue.click().run()
    assert not at.exception
    assert "is queued" in at.success[0].value
    requests = BackfillRequests(State(cfg))
    [request] = [r for r in requests.recent() if r["source"] == "twitter"]
    assert (request["status"], request["start_day"], request["end_day"]) == ("queued", "2024-03-01", "2024-03-02")

    # The scheduler's poll runs it (X keeps no follower history: a backfill reads nothing and is done), once.
    writer = scheduler.Writer(cfg)
    try:
        scheduler.run_backfill_requests(writer, requests)
        scheduler.run_backfill_requests(writer, requests)      # nothing queued any more: nothing happens
    finally:
        writer.close()
    [done] = [r for r in requests.recent() if r["id"] == request["id"]]
    assert done["status"] == "done" and done["error"] is None and done["finished_at"]
    at = open_page(cfg, monkeypatch, "sources.py", source="twitter")
    queue_table = [d.value for d in at.dataframe if "start_day" in d.value.columns][0]
    row = queue_table[queue_table["id"] == request["id"]]
    assert row["status"].tolist() == ["done"] and row["progress"].tolist() == [1.0]
