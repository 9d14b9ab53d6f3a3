"""A dashboard's widgets and its report answered from one read of the rollups (`series_batch.prefetched`, what
the Dashboards and Reports pages do) are the same answers `reports.model` gives one question at a time, for
every widget kind, and nothing is read twice."""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

import reportfill
from reports.model import evaluate, evaluate_widget
from warehouse import series_batch
from warehouse.dashboards_state import Dashboard, Widget, WidgetSpec
from warehouse.lake import Reader

D = date.fromisoformat
FIXED = dict(last=None, start=D("2024-02-01"), end=D("2024-02-29"))
KINDS = [
    WidgetSpec("line", "downloads", "Weekly downloads", grain="week", by="version", compare="wow", **FIXED),
    WidgetSpec("bar", "youtube.views", "Weekly views", grain="week", **FIXED),
    WidgetSpec("pie", "meltwater.mentions", "Mentions by brand", by="brand", **FIXED),
    WidgetSpec("pie", "github.stars", "Stars by repo", by="repo", **FIXED),
    WidgetSpec("scatter", "downloads", "Downloads against stars", grain="week", y_metric="github.stars", **FIXED),
    WidgetSpec("kpi", "twitter.followers", "X followers", compare="wow", **FIXED),
    WidgetSpec("kpi", "downloads", "Downloads of 2.0", compare="mom", where={"version": ["2.0"]}, **FIXED),
    WidgetSpec("table", "meltwater.mentions", "Mentions per week", grain="week", by="brand", **FIXED),
    WidgetSpec("line", "youtube.views", "Views, last 30 days", grain="day", last=30, unit="days"),
    WidgetSpec("line", "meltwater.mentions", "Not addable", grain="year", by="nope", **FIXED),   # refused
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    cfg = reportfill.build(tmp_path_factory.mktemp("prefetch"))
    reader = Reader(cfg)
    yield cfg, reader.cursor()
    reader.close()


def same(one, other) -> None:
    assert (one.error, one.kpi, one.note, one.start, one.end, one.compare) == (
        other.error, other.kpi, other.note, other.start, other.end, other.compare), one.spec
    if one.frame is None or other.frame is None:
        assert one.frame is None and other.frame is None
    else:
        pd.testing.assert_frame_equal(one.frame, other.frame, obj=one.spec.label())


def test_every_widget_kind_from_one_read_equals_one_at_a_time(lake):
    cfg, cur = lake
    seen = []

    def widgets(rows):
        seen.append(rows)
        return [evaluate_widget(cfg, cur, spec, rows=rows) for spec in KINDS]

    batched = series_batch.prefetched(cur, cfg, widgets)
    for spec, answer in zip(KINDS, batched):
        same(answer, evaluate_widget(cfg, cur, spec))
    assert isinstance(seen[0], series_batch.Recorder) and seen[-1].fallbacks == 0
    assert batched[0].frame["value"].sum() > 0 and batched[-1].error


def test_a_report_from_one_read_equals_the_report_one_question_at_a_time(lake):
    cfg, cur = lake
    board = Dashboard(1, "Every kind", tuple(Widget(i, 1, i, spec) for i, spec in enumerate(KINDS)))
    batched = series_batch.prefetched(cur, cfg, lambda rows: evaluate(cfg, cur, board, D("2024-02-01"),
                                                                      D("2024-02-29"), rows=rows))
    direct = evaluate(cfg, cur, board, D("2024-02-01"), D("2024-02-29"))
    assert batched.kpis == direct.kpis and len(batched.kpis) >= 5
    assert batched.freshness == direct.freshness
    for one, other in zip(batched.widgets, direct.widgets):
        same(one, other)
