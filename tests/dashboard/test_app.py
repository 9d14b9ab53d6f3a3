"""The dashboard's first page (app.py) against a real warehouse filled through the real write path:
in-process with Streamlit's AppTest, and in a real `streamlit run` server rendered by headless Chromium."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import headless
import lakefill

APP = str(headless.ROOT / "app.py")
START = datetime(2024, 3, 1, tzinfo=timezone.utc)    # 20 days of data: 2024-03-01 .. 2024-03-20
DAYS = 20
PER_DAY = {"6.9.0": 3, "6.10.0": 5}
METRIC_VALUES_JS = "[...document.querySelectorAll('[data-testid=\"stMetricValue\"]')].map(e => e.textContent)"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """Downloads: 3 a day of 6.9.0 and 5 a day of 6.10.0, plus requests that are not downloads.
    Stars of caskdata/cdap: a stargazer every 7 hours (30 in all, the last on 2024-03-09), then a snapshot
    saying 100 on 2024-03-16."""
    cfg = lakefill.write_config(tmp_path_factory.mktemp("filled"))
    rows = [lakefill.download(START + timedelta(days=day, hours=hour), version)
            for day in range(DAYS) for version, count in PER_DAY.items() for hour in range(count)]
    rows += [lakefill.download(START + timedelta(hours=9), "6.10.0", status=404),
             lakefill.download(START + timedelta(hours=9), "6.10.0", status=304),
             lakefill.download(START + timedelta(hours=9), "6.10.0", operation="REST.HEAD.OBJECT")]
    stargazers = [{"ts": START + timedelta(hours=7 * i), "repo": "caskdata/cdap", "login": f"user{i}"}
                  for i in range(30)]
    snapshot = {"ts": START + timedelta(days=15), "repo": "caskdata/cdap", "stars": 100, "forks": 40,
                "watchers": 12, "open_issues": 3}
    lakefill.fill(cfg, rows, stargazers, [snapshot])
    return cfg.path


def run_app(config_path: Path, monkeypatch, **query) -> AppTest:
    monkeypatch.setenv("CASKALYTICS_CONFIG", str(config_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()                                  # the Overview (the default page) first, then this page
    at.query_params.clear()
    at.query_params.update(query)
    at.switch_page("pages/downloads.py")
    return at.run()


def charts(at: AppTest) -> dict[str, dict]:
    """Each Plotly chart on the page as its figure JSON, by title."""
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {figure["layout"]["title"]["text"]: figure for figure in figures}


def lines(figure: dict) -> dict[str, list]:
    return {trace["name"]: trace["y"] for trace in figure["data"]}


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_shows_downloads_by_version_and_stars(warehouse, monkeypatch):
    at = run_app(warehouse, monkeypatch)
    assert not at.exception
    # Day grain by default; the range runs from the first to the last day with data (shorter than 90 days).
    assert at.selectbox(key="grain").value == "day"
    assert at.date_input(key="range_day").value == (START.date(), START.date() + timedelta(days=DAYS - 1))
    assert metrics(at) == {"Downloads": "160", "Most downloaded version": "6.10.0", "GitHub stars": "100"}

    figures = charts(at)
    assert set(figures) == {"Downloads by version", "Daily downloads by version",
                            "GitHub stars by repository (at the end of each day)"}
    bars = figures["Downloads by version"]["data"][0]
    assert (bars["x"], bars["y"]) == (["6.9.0", "6.10.0"], [60, 100])     # oldest version first
    daily = figures["Daily downloads by version"]
    assert lines(daily) == {"6.10.0": [5] * DAYS, "6.9.0": [3] * DAYS}
    assert daily["data"][0]["x"][:2] == ["2024-03-01", "2024-03-02"]
    stars = lines(figures["GitHub stars by repository (at the end of each day)"])["caskdata/cdap"]
    # End of 2024-03-01: stargazers at hours 0..21 -> 4; all 30 by 2024-03-09; the snapshot says 100 from 03-16.
    assert stars[:3] == [4, 7, 11] and stars[8:15] == [30] * 7 and stars[15:] == [100] * 5


def test_changing_the_grain_rerenders_at_that_grain(warehouse, monkeypatch):
    at = run_app(warehouse, monkeypatch)
    at.selectbox(key="grain").set_value("week").run()
    assert not at.exception
    figures = charts(at)
    # ISO weeks overlapping 2024-03-01..20: W09 (3 days of data), W10, W11, W12 (3 days).
    weekly = figures["Weekly downloads by version"]
    assert lines(weekly) == {"6.10.0": [15, 35, 35, 15], "6.9.0": [9, 21, 21, 9]}
    assert weekly["data"][0]["x"] == ["2024-02-26", "2024-03-04", "2024-03-11", "2024-03-18"]
    stars = figures["GitHub stars by repository (at the end of each week)"]
    assert lines(stars) == {"caskdata/cdap": [11, 30, 100, 100]}
    assert metrics(at)["Downloads"] == "160"            # the totals cover the date range, not whole weeks
    assert at.query_params["grain"] == "week"          # the view is bookmarkable


def test_range_and_version_pickers_narrow_the_charts(warehouse, monkeypatch):
    at = run_app(warehouse, monkeypatch)
    at.multiselect[0].set_value(["6.9.0"]).run()
    assert not at.exception
    assert lines(charts(at)["Daily downloads by version"]) == {"6.9.0": [3] * DAYS}
    assert charts(at)["Downloads by version"]["data"][0]["y"] == [60, 100]     # the totals still show all

    at.date_input(key="range_day").set_value((date(2024, 3, 19), date(2024, 3, 27))).run()
    assert not at.exception
    assert metrics(at)["Downloads"] == "16"                                     # 03-19 and 03-20 only
    at.date_input(key="range_day").set_value((date(2024, 3, 25), date(2024, 3, 27))).run()
    assert [m.value for m in at.info] == ["No downloads between 2024-03-25 and 2024-03-27."]
    assert lines(charts(at)["GitHub stars by repository (at the end of each day)"]) == {"caskdata/cdap": [100] * 3}


@pytest.mark.parametrize("grain", ["hour", "day", "week", "month", "quarter", "year"])
def test_every_grain_renders_three_charts(warehouse, monkeypatch, grain):
    at = run_app(warehouse, monkeypatch, grain=grain)
    assert not at.exception
    assert at.selectbox(key="grain").value == grain
    assert len(charts(at)) == 3
    assert sum(charts(at)["Downloads by version"]["data"][0]["y"]) > 0


def test_comparison_is_offered_only_where_valid_and_drawn_dashed(warehouse, monkeypatch):
    at = run_app(warehouse, monkeypatch)
    assert at.selectbox(key="compare_day").options == ["Nothing", "Week over week", "Month over month",
                                                       "Year over year"]
    at.selectbox(key="grain").set_value("month").run()
    assert at.selectbox(key="compare_month").options == ["Nothing", "Month over month", "Year over year"]
    at.selectbox(key="grain").set_value("year").run()
    assert at.selectbox(key="compare_year").options == ["Nothing", "Year over year"]

    at.selectbox(key="grain").set_value("day").run()
    at.selectbox(key="compare_day").set_value("wow").run()
    assert not at.exception
    daily = charts(at)["Daily downloads by version"]["data"]
    dashed = {t["name"]: t["y"] for t in daily if t["line"].get("dash") == "dash"}
    # A week earlier than 03-01..03-07 there was no data yet; from 03-08 on, the same daily counts.
    assert dashed == {"6.10.0, a week earlier": [0] * 7 + [5] * 13, "6.9.0, a week earlier": [0] * 7 + [3] * 13}
    solid_colors = {t["name"]: t["line"]["color"] for t in daily if "dash" not in t["line"]}
    assert solid_colors["6.10.0"] == next(t["line"]["color"] for t in daily if t["name"] == "6.10.0, a week earlier")
    # 160 in 03-01..03-20 against 13 days x 8 = 104 in 02-23..03-13.
    downloads = next(m for m in at.metric if m.label == "Downloads")
    assert downloads.value == "160" and downloads.delta == "+56 vs a week earlier"
    assert at.query_params["compare"] == "wow"


def test_no_warehouse_yet_says_what_to_run(tmp_path, monkeypatch):
    cfg = lakefill.write_config(tmp_path)
    at = run_app(cfg.path, monkeypatch)
    assert not at.exception
    [message] = at.info
    assert "There is no warehouse" in message.value and "make run" in message.value
    assert not at.get("plotly_chart") and not at.selectbox


def test_empty_warehouse_says_what_to_run(tmp_path, monkeypatch):
    cfg = lakefill.write_config(tmp_path)
    lakefill.create_empty(cfg)
    at = run_app(cfg.path, monkeypatch)
    assert not at.exception
    [message] = at.info
    assert "has no downloads or GitHub stars yet" in message.value
    assert "python scheduler.py collect s3_access_logs" in message.value
    assert not at.get("plotly_chart")


def test_missing_config_is_reported_in_one_line(tmp_path, monkeypatch):
    at = run_app(tmp_path / "nowhere.toml", monkeypatch)
    assert not at.exception
    [error] = at.error
    assert "config file not found" in error.value


@pytest.mark.skipif(not headless.CHROMIUM.exists(),
                    reason="/usr/bin/chromium is absent (apt-get install -y chromium) so no real-browser check")
def test_real_browser_renders_the_dashboard(warehouse, tmp_path):
    with headless.streamlit_server(warehouse, tmp_path / "streamlit.log") as url, headless.Chromium() as browser:
        browser.open(url + "downloads?grain=week", charts=3)
        text = browser.text()
        kpis = browser.evaluate(METRIC_VALUES_JS)
        errors = browser.evaluate("document.querySelectorAll('[data-testid=\"stException\"]').length")
        shot = browser.screenshot(tmp_path / "dashboard.png")
    assert errors == 0
    assert kpis == ["160", "6.10.0", "100"]
    for expected in ["Downloads by version", "Weekly downloads by version", "6.9.0", "6.10.0", "caskdata/cdap",
                     "GitHub stars by repository (at the end of each week)", "Most downloaded version"]:
        assert expected in text
    image = Image.open(shot)
    assert image.width == 1400 and image.height > 1000
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50   # not a blank page

