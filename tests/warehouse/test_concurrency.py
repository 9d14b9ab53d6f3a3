"""The scheduler writes while the API and several dashboard sessions read, with no lock errors: a writer
process and 4 reader processes run at once; every read succeeds and sees whole batches only (rows, cursor
and rollups of one snapshot agree), counts never go back, and the final counts are exact.

Processes are spawned (fresh interpreters), like the real scheduler, API and Streamlit processes.
"""
from __future__ import annotations

import json
import multiprocessing
import queue as queue_module

from warehouse.writer import Writer
from warehouse import cube, lake

import lake_workers
from tests_support import start_spawned

SIZE = 7            # rows per batch: any partial batch shows as a count that is not a multiple of 7
BATCHES = 60
CUBE_EVERY = 10
TIMEOUT = 240


def gather(q, names: set[str], kind: str) -> dict:
    out = {}
    while names - out.keys():
        try:
            got_kind, name, payload = q.get(timeout=TIMEOUT)
        except queue_module.Empty:
            raise AssertionError(f"no {kind!r} from {sorted(names - out.keys())} within {TIMEOUT}s") from None
        assert got_kind == kind, (got_kind, name, payload)
        out[name] = payload
    return out


def stop_all(processes) -> None:
    for process in processes:
        process.join(30)
        if process.is_alive():
            process.terminate()
            process.join(5)


def fresh_lake(tmp_path) -> str:
    directory = str(tmp_path / "var")
    Writer(lake_workers.make_config(directory)).close()    # the catalog and tables exist
    return directory


def test_one_writer_and_four_readers_at_once_never_error_and_see_whole_batches(tmp_path):
    directory = fresh_lake(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    q, go, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    readers = {f"reader{i}": mode for i, mode in enumerate(["reader", "reader", "connect", "connect"])}
    processes = [start_spawned(ctx, lake_workers.read_loop, directory, name, mode, SIZE, "s3_access_logs.w", go, stop, q)
                 for name, mode in readers.items()]
    processes.append(start_spawned(ctx, lake_workers.write_batches, directory, "w", BATCHES, SIZE, CUBE_EVERY, go, q))
    try:
        gather(q, {*readers, "w"}, "ready")
        go.set()
        writer = gather(q, {"w"}, "done")
        stop.set()
        results = gather(q, set(readers), "done")
    finally:
        stop.set()
        stop_all(processes)

    assert writer["w"]["error"] is None, writer["w"]["error"]
    total = BATCHES * SIZE
    for name, result in results.items():
        assert result["error_count"] == 0, (name, result["errors"])
        assert result["reads"] >= 5, (name, result)
        assert result["final"] == {"raw": total, "batch": BATCHES - 1, "rolled": total}, (name, result)
    # the reads really overlapped the writes: the readers saw intermediate states
    assert max(r["distinct_counts"] for r in results.values()) > 3, results


def test_two_writers_committing_at_once_both_succeed_and_lose_no_batch(tmp_path):
    """One writer is the design; a second (a manual `backfill` while the scheduler runs) must still not
    lose a batch: a transaction that overlaps another's commit fails with "database is locked" (SQLite
    will not upgrade a stale read snapshot) and `lake.write_transaction` retries it whole."""
    directory = fresh_lake(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    q, go = ctx.Queue(), ctx.Event()
    batches = 20
    processes = [start_spawned(ctx, lake_workers.write_batches, directory, tag, batches, SIZE, 0, go, q, 0.02)
                 for tag in "ab"]
    try:
        gather(q, {"a", "b"}, "ready")
        go.set()
        results = gather(q, {"a", "b"}, "done")
    finally:
        stop_all(processes)
    assert [results[tag]["error"] for tag in "ab"] == [None, None], results
    # the race really happened, and the retry in lake.write_transaction absorbed it
    assert results["a"]["retries"] + results["b"]["retries"] > 0, results

    cfg = lake_workers.make_config(directory)
    writer = Writer(cfg)
    try:
        con = writer.con
        total = 2 * batches * SIZE
        assert con.execute("SELECT count(*) FROM lake.raw_s3_access_logs").fetchone()[0] == total
        per_writer = dict(con.execute("SELECT split_part(request_id, '-', 1), count(*) FROM lake.raw_s3_access_logs "
                                      "GROUP BY 1").fetchall())
        assert per_writer == {"a": batches * SIZE, "b": batches * SIZE}
        ids = [row[0] for row in con.execute("SELECT batch FROM lake.batches ORDER BY batch").fetchall()]
        assert len(ids) == 2 * batches and len(set(ids)) == len(ids), f"batch ids not unique: {ids}"
        for tag in "ab":
            assert json.loads(con.execute(
                "SELECT cursor FROM lake.cursors WHERE source = ?", [f"s3_access_logs.{tag}"]).fetchone()[0]) \
                == {"batch": batches - 1}
        # every committed batch reaches the rollups (the cube watermark skips none)
        cube.update(con, cfg)
        rolled = con.execute("SELECT sum(value) FROM lake.rollups WHERE grain = 'day' AND metric = 'downloads'"
                             ).fetchone()[0]
        assert rolled == total
    finally:
        writer.close()


def test_a_reader_cannot_attach_before_the_lake_exists(tmp_path):
    cfg = lake_workers.make_config(str(tmp_path / "var"))
    try:
        lake.connect(cfg, read_only=True)
    except lake.WarehouseError as exc:
        assert "does not exist yet" in str(exc)
    else:
        raise AssertionError("a read-only connect created or opened a missing lake")
    assert not lake.catalog_path(cfg).exists()
