"""`queries.series_frame`, the one series query, as a frame: its columns, comparisons, the `complete` flag,
honest gauges (null before the first observation), refusing to add up shares, and bounded work; plus the
same rules through the real API process (400 `{"error": ...}`, never a 500)."""
from __future__ import annotations

import itertools
import math
import re
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
import requests

from collectors.base import Batch
from conftest import make_config, start_api
from warehouse import cube, ingest, queries
from warehouse.writer import Writer
from warehouse.lake import Reader
from warehouse.queries import QueryError, SeriesRequest

UTC = timezone.utc
D = date.fromisoformat
MANY_VERSIONS = [f"2.{n}.0" for n in range(30)]
_ids = itertools.count()


def download(ts: datetime, version: str) -> dict:
    return {"ts": ts, "bucket": "b", "request_id": f"R{next(_ids)}", "operation": "REST.GET.OBJECT",
            "key": f"cask/{version}/cask.tgz", "remote_ip": "198.51.100.7", "user_agent": "curl/8", "http_status": 200}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Downloads: 1.0.0 twice a day 2025-01-01..14, 1.1.0 once a day 2025-01-08..14, 30 other versions once on
    2025-01-02, and one download just now. Stars of o/r: 10 from 2025-01-05 12:00, 15 from 2025-01-10 12:00,
    nothing after (a past day without later GitHub data)."""
    cfg = make_config(tmp_path_factory.mktemp("frames"), s3_access_logs={"bucket": "b"}, github={"repos": ["o/r"]})
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [download(datetime(2025, 1, day, hour, tzinfo=UTC), "1.0.0") for day in range(1, 15) for hour in (9, 15)]
    rows += [download(datetime(2025, 1, day, 10, tzinfo=UTC), "1.1.0") for day in range(8, 15)]
    rows += [download(datetime(2025, 1, 2, 11, tzinfo=UTC), v) for v in MANY_VERSIONS]
    rows.append(download(now, "1.1.0"))
    snapshots = [{"ts": datetime(2025, 1, day, 12, tzinfo=UTC), "repo": "o/r", "stars": stars, "forks": 1,
                  "watchers": 1, "open_issues": 0} for day, stars in ((5, 10), (10, 15))]
    writer = Writer(cfg)
    try:
        writer.commit("s3_access_logs", Batch(records={"raw_s3_access_logs": rows}, cursor={"k": 1}))
        writer.commit("github", Batch(records={"raw_github_snapshots": snapshots}, cursor={"k": 1}))
        cube.update(writer.con, cfg)
    finally:
        writer.close()
    reader = Reader(cfg)
    yield cfg, reader.cursor(), now
    reader.close()


def frame_of(lake, *args, **kwargs) -> pd.DataFrame:
    cfg, cur, _ = lake
    return queries.series_frame(cur, cfg, SeriesRequest(*args, **kwargs)).frame


def test_one_row_per_bucket_and_group_with_the_documented_columns(lake):
    answer = queries.series_frame(lake[1], lake[0], SeriesRequest("downloads", "week", D("2025-01-01"),
                                                                  D("2025-01-14"), by=["version"], compare="yoy"))
    assert list(answer.frame.columns) == ["start", "end", "label", "offset", "period", "version", "value", "previous", "delta",
                                          "delta_pct", "complete"]
    assert (answer.metric, answer.kind, answer.grain, answer.timezone, answer.start, answer.end, answer.compare) == (
        "downloads", "counter", "week", "UTC", D("2025-01-01"), D("2025-01-14"), "yoy")
    one = answer.frame[answer.frame["version"] == "1.0.0"]
    assert one["label"].tolist() == ["2024-12-30", "2025-01-06", "2025-01-13"]
    assert one["period"].tolist() == ["2025-W01", "2025-W02", "2025-W03"]
    assert one["start"].tolist() == [pd.Timestamp("2024-12-30"), pd.Timestamp("2025-01-06"), pd.Timestamp("2025-01-13")]
    assert one["value"].tolist() == [10, 14, 4]     # 1.0.0 twice a day from Wednesday 01-01 to Tuesday 01-14
    assert len(answer.frame) == 3 * (2 + len(MANY_VERSIONS))


def test_compare_gives_previous_delta_and_percent(lake):
    frame = frame_of(lake, "downloads", "day", D("2025-01-08"), D("2025-01-14"), by=["version"], compare="wow")
    mine = frame[frame["version"] == "1.0.0"]
    assert (mine["value"].tolist(), mine["previous"].tolist()) == ([2] * 7, [2] * 7)
    assert mine["delta"].tolist() == [0] * 7 and mine["delta_pct"].tolist() == [0.0] * 7
    new = frame[frame["version"] == "1.1.0"]
    assert new["previous"].tolist() == [0] * 7 and new["delta"].tolist() == [1] * 7
    assert new["delta_pct"].isna().all()                    # no percent change from nothing
    # a version downloaded once on 01-02 and not a week later: -100 %
    frame = frame_of(lake, "downloads", "day", D("2025-01-09"), D("2025-01-09"), where={"version": ["2.0.0"]},
                     compare="wow")
    assert frame[["value", "previous", "delta", "delta_pct"]].values.tolist() == [[0, 1, -1, -100.0]]
    days = queries.metric_series(lake[1], lake[0], SeriesRequest("downloads", "day", D("2025-01-08"), D("2025-01-09"),
                                                                 compare="wow"))
    assert [(p["value"], p["previous"]) for p in days["points"]] == [(3, 2), (3, 2 + len(MANY_VERSIONS))]


def test_complete_needs_the_bucket_ended_and_later_data_from_its_source(lake):
    cfg, cur, now = lake
    recent = frame_of(lake, "downloads", "day", now.date() - timedelta(days=1), now.date())
    # the day before the newest download has ended and the source has data past its end; the newest one has not
    assert recent["complete"].tolist() == [True, False]
    stars = frame_of(lake, "github.stars", "day", D("2025-01-08"), D("2025-01-12"))
    # GitHub's newest fact is 2025-01-10 12:00: days that ended long ago but have no later data are not complete
    assert stars["complete"].tolist() == [True, True, False, False, False]
    hours = frame_of(lake, "github.stars", "hour", D("2025-01-10"), D("2025-01-10"))
    assert hours["complete"].tolist() == [True] * 12 + [False] * 12     # the 12:00 hour is the newest fact
    points = queries.metric_series(cur, cfg, SeriesRequest("github.stars", "day", D("2025-01-09"), D("2025-01-10")))
    assert [p["complete"] for p in points["points"]] == [True, False]


def test_a_gauge_is_null_before_its_first_observation_and_carried_after(lake):
    frame = frame_of(lake, "github.stars", "day", D("2025-01-03"), D("2025-01-11"), compare="wow")
    values = frame["value"].tolist()
    assert all(math.isnan(v) for v in values[:2]) and values[2:] == [10] * 5 + [15] * 2
    assert frame["previous"].isna().all()            # a week earlier nothing had been observed yet
    cfg, cur, _ = lake
    answer = queries.metric_series(cur, cfg, SeriesRequest("github.stars", "day", D("2025-01-03"), D("2025-01-06")))
    assert [p["value"] for p in answer["points"]] == [None, None, 10, 10]
    stars = queries.kpi(cur, cfg, "github.stars", "day", D("2025-01-10"), D("2025-01-14"), "wow")
    assert stars == queries.Kpi(value=15, previous=10, delta=5, delta_pct=50.0, complete=False)
    before = queries.kpi(cur, cfg, "github.stars", "day", D("2025-01-02"), D("2025-01-03"), "wow")
    assert (before.value, before.previous, before.delta) == (None, None, None)


def test_kpi_totals_a_counter_over_the_range_and_compares_it(lake):
    cfg, cur, _ = lake
    total = queries.kpi(cur, cfg, "downloads", "day", D("2025-01-08"), D("2025-01-14"), "wow")
    # 3 a day in the week, against 1.0.0's 2 a day plus the 30 other versions on 01-02 a week earlier
    assert total == queries.Kpi(value=21, previous=14 + 30, delta=21 - 44, delta_pct=round(-23 / 44 * 100, 2),
                                complete=True)
    assert queries.kpi(cur, cfg, "downloads", "week", D("2025-01-08"), D("2025-01-14")).previous is None


def test_shares_are_never_added_up_over_brands(lake):
    cfg, cur, _ = lake
    with pytest.raises(QueryError, match=r"split it by the dimension \(by=brand\)"):
        queries.series_frame(cur, cfg, SeriesRequest("seo.share_of_voice", "day"))
    with pytest.raises(QueryError, match="by=brand"):
        queries.series_frame(cur, cfg, SeriesRequest("seo.share_of_voice", "day", where={"brand": ["a", "b"]}))
    # split by brand, or narrowed to one brand, it is answered (no rankings stored here: null, not 0)
    one = queries.series_frame(cur, cfg, SeriesRequest("seo.share_of_voice", "day", where={"brand": ["cask"]}))
    assert one.frame["value"].isna().all()
    assert queries.series_frame(cur, cfg, SeriesRequest("seo.share_of_voice", "day", by=["brand"])).frame.empty
    assert cfg.catalog.metrics["seo.share_of_voice"].additive_dims is False
    assert all(m.additive_dims for name, m in cfg.catalog.metrics.items() if name != "seo.share_of_voice")


def test_an_answer_holds_at_most_50000_buckets_times_series(lake):
    cfg, cur, _ = lake
    five_years = SeriesRequest("downloads", "day", D("2020-01-01"), D("2025-06-30"))     # 2,008 days
    assert len(queries.series_frame(cur, cfg, five_years).frame) == 2008
    five_years.by = ["version"]                                                          # x 32 versions
    with pytest.raises(QueryError, match="at most 50,000"):
        queries.series_frame(cur, cfg, five_years)
    with pytest.raises(QueryError, match="at most 50,000"):      # refused before 52,000 hours are built
        queries.series_frame(cur, cfg, SeriesRequest("downloads", "hour", D("2020-01-01"), D("2025-12-31")))
    assert len(frame_of(lake, "downloads", "day", D("2025-01-01"), D("2025-01-31"), by=["version"])) == 31 * 32


@pytest.fixture(scope="module")
def api(lake):
    server = start_api(lake[0])
    yield server.base_url
    server.process.terminate()
    server.process.wait(10)


@pytest.mark.parametrize("path, words", [
    ("/metrics/downloads?from=0001-01-01&to=9999-12-31", "from must be a date from 1900-01-01 to 2199-12-31"),
    ("/metrics/downloads?to=9999-12-31", "to must be a date"),
    ("/pipeline/day?at=9999-12-31", "at must be a date from 1900-01-01"),
    ("/pipeline/day?at=0001-01-01", "got 0001-01-01"),
    ("/pipeline/year?at=9999-12-31", "at must be a date"),
    ("/awareness/webtraffic/hour?at=9999-12-31T23:00", "at must be a date"),
    ("/adoption/downloads?from=0001-01-01", "from must be a date"),
    ("/metrics/downloads?grain=hour&from=2020-01-01&to=2025-12-31", "at most 50,000"),
    ("/metrics/downloads?from=2020-01-01&to=2025-06-30&by=version", "at most 50,000"),
    ("/metrics/seo.share_of_voice", "by=brand"),
])
def test_the_api_answers_400_with_one_sentence(api, path, words):
    answer = requests.get(api + path, timeout=30)
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"] and answer.json()["error"].count(". ") == 0


def test_the_api_answers_the_edges_of_the_date_range_with_four_digit_years(api):
    years = requests.get(f"{api}/metrics/downloads", params={"grain": "year", "from": "1900-01-01",
                                                             "to": "2199-12-31"}, timeout=60)
    assert years.status_code == 200 and len(years.json()["points"]) == 300
    assert all(re.fullmatch(r"\d{4}-01-01", p["start"]) for p in years.json()["points"])
    last = requests.get(f"{api}/pipeline/year", params={"at": "2199-12-31"}, timeout=30).json()
    assert (last["start"], last["end"]) == ("2199-01-01", "2199-12-31")
    first = requests.get(f"{api}/pipeline/day", params={"at": "1900-01-01"}, timeout=30).json()
    assert first["start"] == first["end"] == "1900-01-01"


def test_the_api_answers_null_for_what_was_never_observed(api):
    assert requests.get(f"{api}/awareness/socialmedia/subscribers", timeout=30).json() == {
        "youtube": {"views": None, "subscribers": None}, "linkedin": None, "twitter": None}
    stars = requests.get(f"{api}/metrics/github.stars", params={"from": "2025-01-04", "to": "2025-01-05",
                                                                "compare": "wow"}, timeout=30).json()
    assert stars["points"] == [
        {"start": "2025-01-04", "period": "2025-01-04", "value": None, "previous": None, "complete": True},
        {"start": "2025-01-05", "period": "2025-01-05", "value": 10, "previous": None, "complete": True}]
