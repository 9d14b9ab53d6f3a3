"""`series_batch`: many series and KPI questions answered from one read give exactly what `series_frame` and
`kpi` give one by one (counters, gauges carried from before the range, splits, filters, comparisons, the hour
a DST end repeats, ranges before the first data and in the future, questions that must be refused)."""
from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest

from collectors.base import Batch
from conftest import make_config
from warehouse import cube, queries, series_batch
from warehouse.lake import Reader
from warehouse.queries import QueryError, SeriesRequest
from warehouse.series_batch import KpiRequest
from warehouse.writer import Writer

UTC = timezone.utc
D = date.fromisoformat
_ids = itertools.count()


def download(ts: datetime, version: str) -> dict:
    return {"ts": ts, "bucket": "b", "request_id": f"R{next(_ids)}", "operation": "REST.GET.OBJECT",
            "key": f"cask/{version}/cask.tgz", "remote_ip": "198.51.100.7", "user_agent": "curl/8", "http_status": 200}


def mention(ts: datetime, brand: str, n: int) -> dict:
    return {"ts": ts, "metric": "meltwater.mentions", "dims": json.dumps({"brand": brand}, separators=(",", ":")),
            "value": n, "fetched_at": ts}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """New York time. Downloads of 1.0.0 every 5 hours from 2024-10-01 to 2024-11-20 (across the DST end on
    11-03), of 1.1.0 every 7 hours from 10-20; stars of two repos observed every few days (one from 10-10
    only); mentions of two brands daily."""
    cfg = make_config(tmp_path_factory.mktemp("batch"), timezone="America/New_York",
                      s3_access_logs={"bucket": "b"}, github={"repos": ["o/a", "o/b"]},
                      meltwater={"brands": {"cask": "1", "talend": "2"}})
    first = datetime(2024, 10, 1, tzinfo=UTC)
    hours = 50 * 24
    rows = [download(first + timedelta(hours=h), "1.0.0") for h in range(0, hours, 5)]
    rows += [download(first + timedelta(days=19, hours=h), "1.1.0") for h in range(0, hours - 19 * 24, 7)]
    snapshots = [{"ts": first + timedelta(days=d, hours=13), "repo": repo, "stars": 100 + 3 * d + (repo == "o/b"),
                  "forks": 1, "watchers": 1, "open_issues": 0}
                 for d in range(0, 50, 3) for repo in ("o/a", "o/b") if repo == "o/a" or d >= 9]
    mentions = [mention(first + timedelta(days=d, hours=12), brand, n + d % 4)
                for d in range(50) for brand, n in (("cask", 10), ("talend", 3))]
    writer = Writer(cfg)
    try:
        writer.commit("s3_access_logs", Batch(records={"raw_s3_access_logs": rows}, cursor={"k": 1}))
        writer.commit("github", Batch(records={"raw_github_snapshots": snapshots}, cursor={"k": 1}))
        writer.commit("meltwater", Batch(records={"raw_meltwater": mentions}, cursor={"k": 1}))
        cube.update(writer.con, cfg)
    finally:
        writer.close()
    reader = Reader(cfg)
    yield cfg, reader.cursor()
    reader.close()


QUESTIONS = [
    SeriesRequest("downloads", "day", D("2024-10-25"), D("2024-11-10")),
    SeriesRequest("downloads", "hour", D("2024-11-02"), D("2024-11-04"), by=["version"]),     # the repeated hour
    SeriesRequest("downloads", "week", D("2024-09-01"), D("2024-12-31"), by=["version"], compare="wow"),
    SeriesRequest("downloads", "month", D("2024-10-01"), D("2024-11-30"), where={"version": ["1.1.0"]},
                  compare="mom"),
    SeriesRequest("downloads", "day", D("2024-11-01"), D("2024-11-20"), compare="yoy"),
    SeriesRequest("downloads", "year", D("2020-01-01"), D("2030-12-31")),
    SeriesRequest("github.stars", "day", D("2024-10-05"), D("2024-10-25")),          # carried, NaN before the first
    SeriesRequest("github.stars", "day", D("2024-11-01"), D("2024-11-09"), by=["repo"], compare="wow"),
    SeriesRequest("github.stars", "week", D("2024-10-20"), D("2024-11-30"), where={"repo": ["o/b"]}),
    SeriesRequest("github.stars", "month", D("2024-06-01"), D("2025-02-28"), compare="mom"),
    SeriesRequest("github.stars", "hour", D("2024-11-03"), D("2024-11-03"), by=["repo"]),
    SeriesRequest("meltwater.mentions", "week", D("2024-10-01"), D("2024-11-19"), by=["brand"], compare="wow"),
    SeriesRequest("meltwater.mentions", "quarter", D("2024-01-01"), D("2024-12-31"), where={"brand": ["talend"]}),
    SeriesRequest("meltwater.mentions", "day", D("2024-11-18"), D("2024-11-22"), where={"brand": ["nobody"]}),
    SeriesRequest("downloads", "day"),                                                  # the default range: to today
]
REFUSED = [
    SeriesRequest("no.such.metric", "day", D("2024-11-01"), D("2024-11-02")),
    SeriesRequest("downloads", "fortnight", D("2024-11-01"), D("2024-11-02")),
    SeriesRequest("downloads", "month", D("2024-11-01"), D("2024-11-30"), compare="wow"),
]


def test_batched_frames_equal_series_frame_one_by_one_from_one_read(lake):
    cfg, cur = lake
    rows = series_batch.Prefetched(cur, cfg, series_batch.spans_of(cfg, QUESTIONS + REFUSED))
    answers = series_batch.series_frames(cur, cfg, QUESTIONS + REFUSED)
    for request, answer in zip(QUESTIONS, answers):
        expected = queries.series_frame(cur, cfg, request)
        assert isinstance(answer, queries.SeriesFrame), request
        pd.testing.assert_frame_equal(answer.frame, expected.frame, obj=repr(request))
        assert (answer.metric, answer.kind, answer.start, answer.end, answer.by) == (
            expected.metric, expected.kind, expected.start, expected.end, expected.by)
        assert queries.series_json(answer) == queries.series_json(expected)
        queries.series_frame(cur, cfg, request, rows=rows)
    assert rows.fallbacks == 0       # every row came from the one read
    for request, answer in zip(REFUSED, answers[len(QUESTIONS):]):
        with pytest.raises(QueryError) as refused:
            queries.series_frame(cur, cfg, request)
        assert isinstance(answer, QueryError) and str(answer) == str(refused.value)
    # the frames are not all empty: the comparison above compares numbers
    assert answers[0].frame["value"].sum() > 0 and answers[7].frame["previous"].notna().any()


def test_batched_kpis_equal_kpi_one_by_one(lake):
    cfg, cur = lake
    questions = [KpiRequest("downloads", "month", D("2024-11-01"), D("2024-11-30"), "mom"),
                 KpiRequest("downloads", "day", D("2024-11-01"), D("2024-11-10"), "wow", {"version": ["1.0.0"]}),
                 KpiRequest("github.stars", "month", D("2024-11-01"), D("2024-11-30"), "mom"),
                 KpiRequest("github.stars", "week", D("2024-10-07"), D("2024-10-13"), "wow", {"repo": ["o/b"]}),
                 KpiRequest("meltwater.mentions", "week", D("2024-11-04"), D("2024-11-10"), "yoy"),
                 KpiRequest("github.stars", "year", D("2024-01-01"), D("2024-12-31"), "yoy"),
                 KpiRequest("downloads", "day", D("2024-11-01"), D("2024-11-10"), "yoy", {"nope": ["x"]})]
    sparks = [SeriesRequest("downloads", "month", D("2024-01-01"), D("2024-11-30"))]
    kpis, frames = series_batch.kpis_and_frames(cur, cfg, questions, sparks)
    for question, answer in zip(questions[:-1], kpis):
        assert answer == queries.kpi(cur, cfg, question.metric, question.grain, question.start, question.end,
                                     question.compare, question.where), question
    assert isinstance(kpis[-1], QueryError) and "no dimension 'nope'" in str(kpis[-1])
    assert kpis[0].value > 0 and kpis[2].previous is not None
    pd.testing.assert_frame_equal(frames[0].frame, queries.series_frame(cur, cfg, sparks[0]).frame)
