"""`scheduler.py run` adds the ready-made dashboards to the state database when it starts, so they are there
for the API's reports and alert digests before anyone has opened the dashboard."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, make_config
from warehouse.dashboards_state import Dashboards
from warehouse.state import State


@pytest.mark.slow
def test_the_scheduler_seeds_the_demo_dashboards_at_start(tmp_path):
    cfg = make_config(tmp_path)
    scheduler = subprocess.Popen([sys.executable, "scheduler.py", "--config", str(cfg.path), "run"], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        names: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not names:
            assert scheduler.poll() is None, scheduler.stderr.read()
            if (cfg.warehouse_dir / "state.sqlite").exists():
                names = [name for _, name in Dashboards(State(cfg)).names()]
            time.sleep(0.5)
        assert sorted(names) == ["Awareness", "Marketing funnel"]
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=30)
