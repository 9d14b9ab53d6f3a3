"""Saved dashboards in the state database: widgets kept in order through moves, copies and deletes, specs
checked against the catalog, relative ranges, and the ready-made dashboards seeded once (a deleted one stays
deleted), from any number of processes."""
from __future__ import annotations

import multiprocessing
from datetime import date

import pytest

from conftest import make_config
from warehouse.dashboards_state import DEMO_DASHBOARDS, DashboardError, Dashboards, WidgetSpec
from warehouse.state import State

D = date.fromisoformat


@pytest.fixture
def cfg(tmp_path):
    return make_config(tmp_path)


def titles(store: Dashboards, dashboard_id: int) -> list[str]:
    return [w.spec.title for w in store.get(dashboard_id).widgets]


def test_widgets_keep_their_order_through_moves_copies_and_deletes(cfg):
    store = Dashboards(State(cfg))
    board = store.create("Growth")
    ids = [store.add_widget(board, WidgetSpec("line", "downloads", title=t)) for t in "ABC"]
    store.move_widget(ids[2], -1)
    assert titles(store, board) == ["A", "C", "B"]
    store.move_widget(ids[0], 5)                              # past the end: stops at the end
    assert titles(store, board) == ["C", "B", "A"]
    copy = store.duplicate_widget(ids[1])                     # the copy lands right after the original
    assert titles(store, board) == ["C", "B", "B (copy)", "A"]
    store.delete_widget(ids[1])
    widgets = store.get(board).widgets
    assert [w.spec.title for w in widgets] == ["C", "B (copy)", "A"]
    assert [w.position for w in widgets] == [0, 1, 2]         # no gaps left behind
    store.update_widget(copy, WidgetSpec("bar", "youtube.views", title="Views", grain="week", compare="yoy"))
    edited = store.get(board).widgets[1].spec
    assert (edited.kind, edited.metric, edited.grain, edited.compare) == ("bar", "youtube.views", "week", "yoy")
    with pytest.raises(DashboardError, match="no widget"):
        store.move_widget(ids[1], 1)


def test_dashboards_survive_a_new_connection_and_names_are_unique(cfg):
    store = Dashboards(State(cfg))
    board = store.create("  Weekly   review ")
    spec = WidgetSpec("table", "downloads", title="By version", by="version", last=None, start=D("2024-01-01"),
                      end=D("2024-01-31"), where={"artifact": ["cdap"]}, compare="mom", grain="week")
    store.add_widget(board, spec)
    with pytest.raises(DashboardError, match="already exists"):
        store.create("Weekly review")
    with pytest.raises(DashboardError, match="1 to 80 characters"):
        store.create("   ")

    reopened = Dashboards(State(cfg))                        # another process, or the app after a restart
    assert reopened.names() == [(board, "Weekly review")]
    assert reopened.get(board).widgets[0].spec == spec
    reopened.rename(board, "Monthly review")
    reopened.delete(board)
    assert reopened.names() == []
    with pytest.raises(DashboardError, match="no dashboard"):
        reopened.add_widget(board, spec)


def test_specs_are_checked_against_the_catalog(cfg):
    catalog = cfg.catalog
    assert WidgetSpec("scatter", "downloads", y_metric="github.stars").checked(catalog)
    bad = {
        "kind must be one of": WidgetSpec("donut", "downloads"),
        "unknown metric": WidgetSpec("line", "nope"),
        "second metric": WidgetSpec("scatter", "downloads"),
        "no dimension 'brand'": WidgetSpec("line", "downloads", by="brand"),
        "does not fit the month grain": WidgetSpec("line", "downloads", grain="month", compare="wow"),
        "start date on or before": WidgetSpec("line", "downloads", last=None, start=D("2024-02-01"),
                                              end=D("2024-01-01")),
        "last 1 to": WidgetSpec("line", "downloads", last=0),
    }
    for message, spec in bad.items():
        with pytest.raises(DashboardError, match=message):
            spec.checked(catalog)


def test_relative_ranges_count_back_from_today():
    today = D("2024-03-14")        # a Thursday
    assert WidgetSpec("line", "m", last=7, unit="days").dates(today) == (D("2024-03-08"), today)
    assert WidgetSpec("line", "m", last=2, unit="weeks").dates(today) == (D("2024-03-04"), today)
    assert WidgetSpec("line", "m", last=1, unit="weeks").dates(today) == (D("2024-03-11"), today)
    assert WidgetSpec("line", "m", last=3, unit="months").dates(today) == (D("2024-01-01"), today)
    assert WidgetSpec("line", "m", last=14, unit="months").dates(today) == (D("2023-02-01"), today)
    fixed = WidgetSpec("line", "m", last=None, start=D("2023-01-01"), end=D("2023-01-31"))
    assert fixed.dates(today) == (D("2023-01-01"), D("2023-01-31"))


def test_ready_made_dashboards_are_seeded_once_and_stay_deleted(cfg):
    store = Dashboards(State(cfg))
    assert store.seed_demo() == ["Marketing funnel", "Awareness"]
    assert store.seed_demo() == []
    funnel = store.by_name("Marketing funnel")
    assert len(funnel.widgets) == len(DEMO_DASHBOARDS["Marketing funnel"])
    assert {w.spec.kind for w in store.by_name("Awareness").widgets} == {"kpi", "line", "pie", "scatter"}
    assert {w.spec.kind for w in funnel.widgets} == {"kpi", "line", "bar", "scatter", "table"}
    for board in DEMO_DASHBOARDS.values():          # every ready-made widget is one the warehouse can answer
        for spec in board:
            spec.checked(cfg.catalog)
    store.delete(funnel.id)
    assert store.seed_demo() == []
    assert [name for _, name in store.names()] == ["Awareness"]


def _seed(path: str, results) -> None:
    import collectors
    results.put(Dashboards(State(collectors.load_config(path))).seed_demo())


@pytest.mark.slow     # four fresh interpreters: ~15 s
def test_many_processes_seeding_at_once_create_each_dashboard_once(cfg):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_seed, args=(str(cfg.path), results)) for _ in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    created = [name for _ in processes for name in results.get(timeout=5)]
    assert sorted(created) == ["Awareness", "Marketing funnel"]
    assert len(Dashboards(State(cfg)).names()) == 2
