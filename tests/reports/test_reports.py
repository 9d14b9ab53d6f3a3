"""Reports of a dashboard over a range, against a real warehouse and the real API process: every widget kind
answers what `/metrics/{metric}` answers for the same question; the KPI table compares with the period just
before and never sums a gauge over time; the PDF (rendered to PNG with pdftoppm, read with pdftotext) has its
title page, key numbers, every widget with a vector chart and "page N of M"; the workbook read back with
openpyxl holds the API's numbers and a native chart per widget sheet."""
from __future__ import annotations

import shutil
import subprocess
from datetime import date

import openpyxl
import pytest
import requests
from PIL import Image

import reportfill
from conftest import start_api
from reports import model as report_model
from reports import pdf, workbook
from warehouse.dashboards_state import Dashboards, WidgetSpec
from warehouse.lake import Reader
from warehouse.state import State

D = date.fromisoformat
START, END = D("2024-02-01"), D("2024-02-29")
FIXED = dict(last=None, start=D("2024-01-15"), end=D("2024-03-31"))
WIDGETS = [
    WidgetSpec("line", "downloads", "Downloads by version", grain="week", by="version", compare="wow", **FIXED),
    WidgetSpec("bar", "youtube.views", "Monthly views", grain="month", compare="mom", **FIXED),
    WidgetSpec("pie", "meltwater.mentions", "Mentions by brand", by="brand", **FIXED),
    WidgetSpec("pie", "github.stars", "Stars by repository", by="repo", **FIXED),
    WidgetSpec("scatter", "downloads", "Downloads against stars", grain="week", y_metric="github.stars", **FIXED),
    WidgetSpec("kpi", "twitter.followers", "X followers", compare="mom", **FIXED),
    WidgetSpec("table", "meltwater.mentions", "Mentions per month", grain="month", by="brand", **FIXED),
    WidgetSpec("line", "seo.share_of_voice", "Share of voice, not split", **FIXED),     # refused: shares
]
pytestmark = pytest.mark.slow        # a warehouse and the API process: ~20 s on the shared machine
needs_poppler = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils is absent (make system-test-deps)")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    cfg = reportfill.build(tmp_path_factory.mktemp("reports"))
    store = Dashboards(State(cfg))
    board = store.get(store.create("Board & numbers", WIDGETS))
    reader = Reader(cfg)
    api = start_api(cfg)
    try:
        yield cfg, reader.cursor(), board, api.base_url
    finally:
        api.process.terminate()
        api.process.wait(10)
        reader.close()


@pytest.fixture(scope="module")
def report(lake):
    cfg, cur, board, _ = lake
    return report_model.evaluate(cfg, cur, board, START, END)


def api_points(base: str, metric: str, grain: str, compare: str | None = None, by: str | None = None,
               start: date = START, end: date = END) -> dict:
    params = {"grain": grain, "from": start.isoformat(), "to": end.isoformat(),
              **({"compare": compare} if compare else {}), **({"by": by} if by else {})}
    answer = requests.get(f"{base}/metrics/{metric}", params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_every_widget_kind_answers_what_the_api_answers(lake, report):
    base = lake[3]
    widgets = {w.title: w for w in report.widgets}
    line = report_model.sheet_frame(widgets["Downloads by version"])
    api = api_points(base, "downloads", "week", "wow", "version")
    for series in api["series"]:
        mine = line[line["version"] == series["dims"]["version"]]
        assert mine["period"].tolist() == [p["period"] for p in series["points"]]
        assert mine["value"].tolist() == [p["value"] for p in series["points"]]
        assert mine["previous"].tolist() == [p["previous"] for p in series["points"]]
        assert mine["complete"].tolist() == [p["complete"] for p in series["points"]]

    # A bar of a widget without a comparison still shows the previous month in a report.
    bar = report_model.sheet_frame(widgets["Monthly views"])
    api = api_points(base, "youtube.views", "month", "mom")["points"]
    assert bar["value"].tolist() == [p["value"] for p in api] == [1885]
    assert bar["previous"].tolist() == [p["previous"] for p in api]

    # Pie of a counter: each brand's total; of a gauge: each repository's value at the end, not a sum of days.
    pie = widgets["Mentions by brand"].frame
    totals = {s["dims"]["brand"]: sum(p["value"] for p in s["points"])
              for s in api_points(base, "meltwater.mentions", "day", by="brand")["series"]}
    assert dict(zip(pie["name"], pie["value"])) == totals == {"cask": 87, "rival": 29}
    stars = widgets["Stars by repository"].frame
    last_day = api_points(base, "github.stars", "day", by="repo")["series"][0]["points"][-1]["value"]
    assert dict(zip(stars["name"], stars["value"])) == {"o/r": last_day} and last_day == 180

    scatter = report_model.sheet_frame(widgets["Downloads against stars"])
    weekly_downloads = api_points(base, "downloads", "week")["points"]
    weekly_stars = api_points(base, "github.stars", "week")["points"]
    assert scatter["downloads"].tolist() == [p["value"] for p in weekly_downloads]
    assert scatter["github.stars"].tolist() == [p["value"] for p in weekly_stars]

    kpi = widgets["X followers"].kpi            # a gauge: its value on the range's last day
    days = api_points(base, "twitter.followers", "day", "mom")["points"]
    assert (kpi.value, kpi.previous) == (days[-1]["value"], days[-1]["previous"]) == (1295, 1140)

    table = report_model.sheet_frame(widgets["Mentions per month"])
    api = api_points(base, "meltwater.mentions", "month", "yoy", "brand")
    assert table["value"].tolist() == [s["points"][0]["value"] for s in api["series"]] == [87, 29]

    refused = widgets["Share of voice, not split"]
    assert refused.error.startswith("seo.share_of_voice cannot be added up over its brand values")


def test_key_numbers_compare_with_the_period_just_before_and_never_sum_gauges(lake, report):
    base = lake[3]
    assert (report.previous_start, report.previous_end) == (D("2024-01-03"), D("2024-01-31"))
    rows = {row.metric: row for row in report.kpis}
    before = dict(start=D("2024-01-03"), end=D("2024-01-31"))
    downloads_now = sum(p["value"] for p in api_points(base, "downloads", "day")["points"])
    downloads_before = sum(p["value"] for p in api_points(base, "downloads", "day", **before)["points"])
    assert (rows["downloads"].value, rows["downloads"].previous) == (downloads_now, downloads_before) == (87, 58)
    assert rows["downloads"].delta == 29 and rows["downloads"].delta_pct == 50.0
    followers = rows["twitter.followers"]        # 1000 + 5 a day: the value on 02-29 against the one on 01-31
    assert (followers.value, followers.previous, followers.delta) == (1295, 1150, 145)
    assert rows["github.stars"].value == 180
    assert "seo.share_of_voice" not in rows      # shares of brands do not add up into one number
    assert [f.source for f in report.freshness] == ["github", "meltwater", "s3_access_logs", "seo", "twitter", "youtube"]
    github = next(f for f in report.freshness if f.source == "github")
    assert github.last_data == D("2024-03-25") and github.last_success_at


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout


@needs_poppler
def test_pdf_has_a_title_page_key_numbers_vector_charts_and_page_numbers(lake, tmp_path):
    cfg, cur, board, _ = lake
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.dashboard_pdf(cfg, cur, board, START, END))
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages >= 5
    text = pdf_text(path)
    for expected in ["Caskalytics report", "Board & numbers", "2024-02-01 to 2024-02-29 (29 days)", "Time zone: UTC",
                     "Compared with: 2024-01-03 to 2024-01-31", "Data freshness", "Key numbers",
                     f"Page 1 of {pages}", f"Page {pages} of {pages}", "times in UTC",
                     *[w.title for w in WIDGETS], "Not shown: seo.share_of_voice cannot be added up"]:
        assert expected in text, expected
    numbers_page = text.split("\f")[1]
    downloads = next(line for line in numbers_page.splitlines() if line.strip().startswith("downloads"))
    assert downloads.split() == ["downloads", "87", "58", "+29", "+50.0", "%"]
    followers = next(line for line in numbers_page.splitlines() if "twitter.followers" in line)
    assert followers.split()[-5:] == ["1,295", "1,150", "+145", "+12.6", "%"]
    # Charts are drawn, not pasted: the document holds no raster image at all.
    images = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True).stdout
    assert len(images.strip().splitlines()) == 2          # the header lines only

    subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(tmp_path / "page")], check=True)
    shots = sorted(tmp_path.glob("page-*.png"))
    assert len(shots) == pages
    chart_page = Image.open(shots[2]).convert("RGB")
    colours = chart_page.getcolors(maxcolors=1 << 16) or []
    assert len(colours) > 20                                # lines and bars in several colours, not a blank page
    assert any(abs(r - 0x63) < 20 and abs(g - 0x6E) < 20 and b > 0xE0 for _, (r, g, b) in colours)  # the palette's blue


def test_workbook_holds_the_api_numbers_and_a_native_chart_per_widget(lake, tmp_path):
    cfg, cur, board, base = lake
    path = tmp_path / "report.xlsx"
    path.write_bytes(workbook.dashboard_xlsx(cfg, cur, board, START, END))
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Summary", *[w.title for w in WIDGETS]]

    summary = list(book["Summary"].iter_rows(values_only=True))
    header = summary.index(("Metric", "Value", "Previous", "Δ", "Δ %", "Note"))
    rows = {r[0]: r[1:5] for r in summary[header + 1:] if r[0]}
    assert rows["downloads"] == (87, 58, 29, 0.5)
    assert rows["twitter.followers (gauge: value at the end)"] == (1295, 1150, 145, pytest.approx(0.1261))

    sheet = book["Downloads by version"]
    cells = list(sheet.iter_rows(min_row=4, values_only=True))
    assert cells[0] == ("Period", "version", "Value", "Previous", "Δ", "Δ %", "Complete")
    api = api_points(base, "downloads", "week", "wow", "version")
    expected = [(p["period"], s["dims"]["version"], p["value"], p["previous"], p["value"] - p["previous"])
                for s in api["series"] for p in s["points"]]
    assert [row[:5] for row in cells[1:]] == expected
    assert all(len(book[name]._charts) == 1 for name in book.sheetnames[1:-1])
    assert book["Downloads by version"]._charts[0].tagname == "lineChart"
    assert book["Mentions by brand"]._charts[0].tagname == "pieChart"
    assert book["Downloads against stars"]._charts[0].tagname == "scatterChart"
    assert book["Monthly views"]._charts[0].tagname == "barChart"

    kpi = {r[7]: r[8] for r in book["X followers"].iter_rows(min_row=4, max_row=7, values_only=True)}
    assert kpi == {"KPI": 1295, "Previous": 1140, "Δ": 155, "Δ %": pytest.approx(0.136)}
    refused = [r[0] for r in book["Share of voice, not split"].iter_rows(values_only=True) if r[0]]
    assert refused[-1].startswith("Not shown: seo.share_of_voice cannot be added up")


def test_a_range_without_data_still_makes_both_files(lake, tmp_path):
    cfg, cur, board, _ = lake
    model = report_model.evaluate(cfg, cur, board, D("2030-01-01"), D("2030-01-07"))
    assert pdf.render(model).startswith(b"%PDF") and workbook.render(model).startswith(b"PK")
    empty = report_model.evaluate(cfg, cur, Dashboards(State(cfg)).get(Dashboards(State(cfg)).create("Empty")),
                                  START, END)
    assert empty.kpis == [] and pdf.render(empty).startswith(b"%PDF")
