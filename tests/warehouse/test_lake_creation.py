"""A new lake appears whole: readers attaching while the first writer creates it are told it does not exist
yet, never that a half-made catalog is a broken DuckLake; a writer killed while creating leaves no catalog;
two writers creating at once both end with the same working lake."""
from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from conftest import make_config
from tests_support import start_spawned
from warehouse import lake
from warehouse.lake import WarehouseError
from warehouse.writer import Writer


def _create(config_path: str, pause: float = 0.0) -> None:
    import collectors
    from warehouse import lake as lake_module
    if pause:
        real = lake_module.attach_statement

        def slow(*args, **kwargs):      # the moment DuckLake writes its tables into the new catalog
            time.sleep(pause)
            return real(*args, **kwargs)
        lake_module.attach_statement = slow
    Writer(collectors.load_config(config_path)).close()


def _attach_until_ready(cfg, process, seconds: float = 60) -> list[str]:
    """Attach read-only in a loop while `process` creates the lake; every failure message seen."""
    refused, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            con = lake.connect(cfg, read_only=True)
        except WarehouseError as exc:
            refused.append(str(exc))
            if not process.is_alive() and lake.catalog_path(cfg).exists():
                continue
            time.sleep(0.005)
            continue
        con.close()
        if not process.is_alive():
            return refused
    raise AssertionError("the lake never became readable")


@pytest.mark.slow
def test_readers_attaching_during_creation_see_no_lake_or_a_whole_one(tmp_path):
    cfg = make_config(tmp_path, s3_access_logs={"bucket": "b"})
    spawn = multiprocessing.get_context("spawn")
    process = start_spawned(spawn, _create, str(cfg.path), 1.0)
    refused = _attach_until_ready(cfg, process)
    process.join(30)
    assert process.exitcode == 0
    assert refused, "no attach was tried while the lake was being created"
    assert all("does not exist yet" in message for message in refused), set(refused)
    con = lake.connect(cfg, read_only=True)
    assert con.execute("SELECT count(*) FROM lake.batches").fetchone()[0] == 0
    con.close()


@pytest.mark.slow
def test_a_writer_killed_while_creating_leaves_no_catalog_and_the_next_one_creates_it(tmp_path):
    cfg = make_config(tmp_path, s3_access_logs={"bucket": "b"})
    spawn = multiprocessing.get_context("spawn")
    process = start_spawned(spawn, _create, str(cfg.path), 30.0)
    deadline = time.monotonic() + 30
    while not list(lake.catalog_path(cfg).parent.glob(".lake.sqlite.making-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    assert not lake.catalog_path(cfg).exists()
    with pytest.raises(WarehouseError, match="does not exist yet"):
        lake.connect(cfg, read_only=True)
    Writer(cfg).close()
    lake.connect(cfg, read_only=True).close()


def test_two_writers_creating_at_once_share_one_lake(tmp_path):
    cfg = make_config(tmp_path, s3_access_logs={"bucket": "b"})
    spawn = multiprocessing.get_context("spawn")
    processes = [start_spawned(spawn, _create, str(cfg.path)) for _ in range(2)]
    for process in processes:
        process.join(60)
    assert [p.exitcode for p in processes] == [0, 0]
    con = lake.connect(cfg, read_only=True)
    assert con.execute("SELECT count(*) FROM lake.cursors").fetchone()[0] == 0
    con.close()
    assert not list(lake.catalog_path(cfg).parent.glob(".lake.sqlite.making-*"))
