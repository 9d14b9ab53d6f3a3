"""The shape of the code: dependencies point one way (no import cycles, `warehouse/` imports none of the
parts above it), the root holds only entry points and config, docs/module-graph.md matches the code, and a
new source is one module plus one registry line: a source defined in the test folder, registered through the
public interface only, is collected, rolled up at every grain, listed by /metrics and shown by `status`."""
from __future__ import annotations

import importlib.util
import json
from datetime import date

import pytest
from fastapi.testclient import TestClient

import collectors
from conftest import ROOT, make_config
from extra import newsletter

spec = importlib.util.spec_from_file_location("module_graph", ROOT / "docs" / "module_graph.py")
module_graph = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module_graph)
GRAPH = module_graph.module_graph()


def test_no_import_cycles_between_modules_or_parts():
    assert module_graph.cycles(GRAPH) == []
    assert module_graph.cycles(module_graph.part_graph(GRAPH)) == []


def test_every_import_points_down_the_layers():
    assert module_graph.wrong_way(GRAPH) == []
    warehouse_imports = {target for module, targets in GRAPH.items() if module.startswith("warehouse")
                         for target in targets}
    assert {module_graph.part(t) for t in warehouse_imports} <= {"warehouse", "config"}


def test_the_checker_sees_a_wrong_way_import_and_a_cycle():
    # The guard itself can fail: a warehouse module importing a collector is both wrong-way and a cycle.
    broken = {name: set(targets) for name, targets in GRAPH.items()}
    broken["warehouse.cube"].add("collectors.github")
    assert "warehouse.cube -> collectors.github" in module_graph.wrong_way(broken)
    assert module_graph.cycles(module_graph.part_graph(broken)) == [["collectors", "warehouse"]]


def test_the_root_holds_only_entry_points_and_config():
    assert sorted(p.name for p in ROOT.glob("*.py")) == ["app.py", "config.py", "run.py", "scheduler.py"]


def test_the_module_graph_picture_is_current():
    assert (ROOT / "docs" / "module-graph.md").read_text() == module_graph.picture(GRAPH), \
        "run `python docs/module_graph.py` and commit docs/module-graph.md"


@pytest.fixture
def extra_source(monkeypatch):
    monkeypatch.setattr(collectors, "SOURCES", dict(collectors.SOURCES))
    collectors.register(newsletter.SOURCE)
    return newsletter.SOURCE


def test_a_new_source_registered_from_outside_is_collected_rolled_up_listed_and_shown(tmp_path, extra_source, capsys):
    from api import deps, main
    from scheduler import main as scheduler_main, run_source
    from warehouse.writer import Writer

    cfg = make_config(tmp_path, newsletter={"list_name": "weekly", "first_day": "2026-03-01", "days": 10})
    writer = Writer(cfg)
    summary = run_source(writer, "newsletter")
    assert (summary.records, summary.inserted) == (10, 10)
    rollups = dict(writer.con.execute("SELECT grain, count(*) FROM lake.rollups WHERE metric = 'newsletter.opens' "
                                      "GROUP BY grain").fetchall())
    assert set(rollups) == {"hour", "day", "week", "month", "quarter", "year"} and rollups["day"] == 10
    total = writer.con.execute("SELECT sum(value) FROM lake.rollups WHERE grain = 'year' AND metric = 'newsletter.opens'")
    assert total.fetchone()[0] == sum(50 + n for n in range(10))
    writer.close()

    deps._services = deps.Services(cfg)       # the API as it starts with this config
    try:
        client = TestClient(main.app)
        listed = {m["name"]: m for m in client.get("/metrics").json()["metrics"]}
        assert listed["newsletter.subscribers"]["kind"] == "gauge" and listed["newsletter.opens"]["source"] == "newsletter"
        series = client.get("/metrics/newsletter.subscribers", params={"grain": "week", "from": "2026-03-02",
                                                                       "to": "2026-03-08"}).json()
        assert [p["value"] for p in series["points"]] == [1000 + 10 * 7]      # the value on Sunday 8 March, day 7
    finally:
        deps._services = None

    assert scheduler_main(["--config", str(cfg.path), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)["sources"]["newsletter"]
    assert status["last_status"] == "ok" and status["cursor"] == {"next_day": date(2026, 3, 11).isoformat()}
