"""Read-only SQL for users (`warehouse.sql`) against a small real lake: a SELECT answers with the right
columns, types and JSON-safe values; every hostile statement is refused or stopped with one sentence and
leaves the lake, its files and the state DB exactly as they were; a normal query works right after.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path

import duckdb
import pytest

from conftest import make_config
from warehouse import lake, schema, sql, sql_worker
from warehouse.sql import SqlRefused
from warehouse.state import State

BEACON_ROWS = 1500 + 3      # 1500 go to a Parquet file (over the inlining limit), 3 stay inlined


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sqlsandbox")
    cfg = make_config(tmp)
    con = lake.connect(cfg, read_only=False)
    try:
        schema.ensure(con, cfg.catalog.tables)
        con.execute("INSERT INTO lake.raw_beacon (ts, hit_id, site, name, path, visitor_id) SELECT "
                    "TIMESTAMPTZ '2024-02-01 00:00:00+00' + i * INTERVAL 1 MINUTE, 'x' || i, 'docs', 'pageview', "
                    "'/p' || (i % 7), 'v' || (i % 50) FROM range(1500) t(i)")
        con.execute("INSERT INTO lake.raw_beacon (ts, hit_id, site, name, path, visitor_id) VALUES "
                    "('2024-01-01 10:00:00+00', 'h1', 'www', 'pageview', '/', 'v1'), "
                    "('2024-01-01 11:00:00+00', 'h2', 'www', 'pageview', '/a', 'v2'), "
                    "('2024-01-02 09:30:00+00', 'h3', 'blog', 'pageview', '/b', 'v1')")
        con.execute("INSERT INTO lake.rollups (grain, bucket, metric, dims, value, last_ts) VALUES "
                    "('day', '2024-01-01', 'beacon.pageviews', '{}', 2, '2024-01-01 11:00:00+00'), "
                    "('day', '2024-01-02', 'beacon.pageviews', '{}', 1, '2024-01-02 09:30:00+00')")
        con.execute("INSERT INTO lake.metric_points VALUES ('2024-01-01 10:00:00+00', 'beacon', "
                    "'beacon.pageviews', '{}', 1)")
    finally:
        con.close()
    state = State(cfg)
    with state.run("beacon", "collect"):
        pass
    with state.connection() as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    assert list((cfg.warehouse_dir / "lake").rglob("*.parquet")), "the fixture must put a Parquet file in the lake"
    return cfg


def snapshot(cfg) -> dict:
    """Everything a hostile query could change: row counts and the latest DuckLake snapshot, every file under
    the test folder (size, mtime; SQLite's -shm/-wal side files aside), the state DB's bytes."""
    con = lake.connect(cfg, read_only=True)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM lake.{t}").fetchone()[0] for t in sql.table_kinds(cfg)}
        counts["snapshot"] = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('lake')").fetchone()[0]
    finally:
        con.close()
    root = cfg.path.parent
    files = {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
             if p.is_file() and not p.name.endswith(("-shm", "-wal"))}
    state = hashlib.sha256((cfg.warehouse_dir / "state.sqlite").read_bytes()).hexdigest()
    return {"counts": counts, "files": files, "state": state}


def assert_one_sentence(message: str) -> None:
    assert message and "\n" not in message and len(message) <= 320, message
    assert "Traceback" not in message and not re.search(r"[.!?]\s+[A-Z]", message), message


def refusal(cfg, statement: str, **kw) -> str:
    with pytest.raises(SqlRefused) as caught:
        sql.run_readonly(cfg, statement, **kw)
    assert isinstance(caught.value, ValueError)
    assert_one_sentence(str(caught.value))
    return str(caught.value)


def child_pids() -> set[str]:
    """This process's children but the spare worker (`warehouse.sql._Spare`), which is kept on purpose."""
    spare = sql._spares.pid()
    return {pid for f in Path("/proc/self/task").glob("*/children") for pid in f.read_text().split()} - {str(spare)}


def test_a_group_by_answers_with_its_columns_types_and_rows(cfg):
    result = sql.run_readonly(cfg, "SELECT site, count(*) AS hits, min(ts) AS first_hit, "
                                   "count(DISTINCT visitor_id) AS visitors FROM raw_beacon GROUP BY site ORDER BY site")
    assert result.columns == [{"name": "site", "type": "VARCHAR"}, {"name": "hits", "type": "BIGINT"},
                              {"name": "first_hit", "type": "TIMESTAMP WITH TIME ZONE"},
                              {"name": "visitors", "type": "BIGINT"}]
    assert result.rows == [["blog", 1, "2024-01-02T09:30:00+00:00", 1],
                           ["docs", 1500, "2024-02-01T00:00:00+00:00", 50],
                           ["www", 2, "2024-01-01T10:00:00+00:00", 2]]
    assert result.truncated is False and isinstance(result.elapsed_ms, int) and result.elapsed_ms >= 0
    json.dumps(result.as_dict(), allow_nan=False)


def test_values_come_back_json_safe(cfg):
    result = sql.run_readonly(cfg, "SELECT bucket, value, 1.25::DECIMAL(10, 2) AS amount, DATE '2024-03-01' AS day, "
                                   "'\\x0A\\xFF'::BLOB AS raw, 'nan'::DOUBLE AS nothing, INTERVAL 90 MINUTE AS span, "
                                   "{'k': [1, 2]} AS nested, MAP {1: 'one'} AS names "
                                   "FROM lake.main.rollups ORDER BY bucket LIMIT 1")
    assert result.rows == [["2024-01-01T00:00:00", 2.0, 1.25, "2024-03-01", "0aff", None, 5400.0,
                            {"k": [1, 2]}, {"1": "one"}]]
    assert [c["type"] for c in result.columns][:3] == ["TIMESTAMP", "DOUBLE", "DECIMAL(10,2)"]
    json.dumps(result.as_dict(), allow_nan=False)


def test_the_row_limit_caps_the_answer_and_says_so(cfg):
    capped = sql.run_readonly(cfg, "SELECT hit_id FROM raw_beacon ORDER BY ts", limit=3)
    assert capped.rows == [["h1"], ["h2"], ["h3"]] and capped.truncated is True
    whole = sql.run_readonly(cfg, "SELECT value FROM rollups ORDER BY bucket", limit=2)
    assert whole.rows == [[2.0], [1.0]] and whole.truncated is False
    assert "row limit" in refusal(cfg, "SELECT 1", limit=-1)


def test_every_spelling_of_a_lake_table_and_ctes_work(cfg):
    result = sql.run_readonly(cfg, """
        WITH tables AS (SELECT bucket, value FROM lake.rollups),
             points AS (SELECT count(*) AS n FROM main.metric_points)
        SELECT (SELECT count(*) FROM tables), (SELECT n FROM points), (SELECT count(*) FROM lake.main.raw_beacon),
               (SELECT count(*) FROM quarantine), (SELECT sum(x) FROM range(4) t(x)),
               (SELECT count(*) FROM unnest([1, 2, 3]))""")
    assert result.rows == [[2, 1, BEACON_ROWS, 0, 6, 3]]


def test_queryable_tables_lists_raw_tables_facts_rollups_and_quarantine_only(cfg):
    tables = sql.queryable_tables(cfg)
    names = [t["name"] for t in tables]
    kinds = {t["name"]: t["kind"] for t in tables}
    assert kinds["raw_beacon"] == "raw" and kinds["metric_points"] == "facts" and kinds["rollups"] == "rollups"
    assert kinds["quarantine"] == "quarantine"
    assert all(kinds[n] == "raw" for n in names if n.startswith("raw_")) and len(names) == len(set(names))
    assert {"cursors", "batches", "cube_state", "s3_objects_read", "seo_files_read"}.isdisjoint(names)
    rollups = next(t for t in tables if t["name"] == "rollups")
    assert rollups["columns"][:2] == [{"name": "grain", "type": "VARCHAR"}, {"name": "bucket", "type": "TIMESTAMP"}]
    # Every listed table really answers through the sandbox.
    for table in names:
        assert table in sql.table_kinds(cfg)


def hostile_statements(cfg) -> list[str]:
    tmp = cfg.path.parent
    data = lake.data_path(cfg)
    catalog = lake.catalog_path(cfg)
    state = cfg.warehouse_dir / "state.sqlite"
    return [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/passwd')",
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM read_json('/etc/passwd')",
        "SELECT * FROM read_duckdb('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM 'https://example.com/data.csv'",
        "SELECT * FROM read_csv('https://example.com/data.csv')",
        "SELECT * FROM 's3://bucket/key.parquet'",
        f"SELECT * FROM read_parquet('{data}**/*.parquet')",
        "SELECT * FROM read_parquet('/etc/*.parquet')",
        f"SELECT * FROM parquet_metadata('{data}**/*.parquet')",
        "SELECT * FROM glob('*')",
        f"SELECT * FROM glob('{data}**')",
        f"COPY rollups TO '{tmp}/out.csv'",
        f"COPY (SELECT 1) TO '{data}pwned.parquet'",
        f"EXPORT DATABASE '{tmp}/export'",
        f"ATTACH '{catalog}' AS cat (TYPE sqlite)",
        f"ATTACH 'ducklake:sqlite:{catalog}' AS lake2 (DATA_PATH '{data}')",
        "DETACH lake",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "RESET memory_limit",
        "SET VARIABLE x = 1",
        "PRAGMA version",
        "PRAGMA database_list",
        "INSTALL httpfs",
        "LOAD httpfs",
        "CALL ducklake_merge_adjacent_files('lake')",
        "CALL ducklake_expire_snapshots('lake', older_than => now())",
        "SELECT * FROM ducklake_rewrite_data_files('lake')",
        "SELECT * FROM ducklake_flush_inlined_data('lake')",
        "SELECT * FROM ducklake_snapshots('lake')",
        f"SELECT * FROM sqlite_scan('{state}', 'runs')",
        f"SELECT * FROM sqlite_query('{catalog}', 'SELECT * FROM ducklake_metadata')",
        "SELECT * FROM __ducklake_metadata_lake.ducklake_data_file",
        "SELECT getenv('HOME')",
        "SELECT current_setting('allowed_directories')",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM duckdb_secrets()",
        "SELECT * FROM which_secret('s3://bucket/key', 's3')",
        "SELECT * FROM pragma_table_info('rollups')",
        "SELECT system.main.read_csv('/etc/passwd')",
        "SELECT 1; DROP TABLE rollups",
        "SELECT 1; -- a comment hides nothing\nDELETE FROM rollups",
        "SELECT '1'; DELETE FROM rollups; --'",
        "/* SELECT */ DELETE FROM rollups",
        "CREATE MACRO m() AS 1",
        "CREATE TABLE t AS SELECT 1",
        "CREATE TEMP TABLE t AS SELECT 1",
        "INSERT INTO rollups VALUES ('day', '2024-01-03', 'x', '{}', 1, now())",
        "UPDATE rollups SET value = 0",
        "DELETE FROM raw_beacon",
        "DROP TABLE rollups",
        "ALTER TABLE rollups ADD COLUMN x INTEGER",
        "SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')",
        "SELECT * FROM query_table('rollups')",
        "VACUUM",
        "CHECKPOINT",
        "BEGIN TRANSACTION",
        "USE memory",
        "SUMMARIZE rollups",
        "DESCRIBE rollups",
        "SHOW TABLES",
        "EXPLAIN ANALYZE SELECT 1",
        "SELECT * FROM cursors",
        "SELECT * FROM memory.main.rollups",
        "SELECT nextval('seq')",
        "SELECT sleep_ms(60000)",
        'WITH "x.csv" AS (SELECT 1) SELECT * FROM "x.csv"',
        # A CTE named like a table that is not queryable, used where the CTE is out of scope, reads the table.
        "SELECT * FROM (WITH cursors AS (SELECT 1) SELECT 1), cursors",
        "WITH a AS (SELECT * FROM batches), batches AS (SELECT 1 AS x) SELECT * FROM a",
        "SELECT * FROM (WITH pg_settings AS (SELECT 1) SELECT 1), pg_settings",
        "SELECT " + "1 + " * 5000 + "1",
        "SELECT * FROM " + "(SELECT * FROM " * 3000 + "range(1)" + ") t" * 3000,
        "SELECT 1 " + "-" * 200_000,
        "",
        "-- only a comment",
    ]


# Queries that pass the statement check but would take the machine: the time limit or the memory cap ends
# them, fast. (Which one comes first depends on how busy the machine is.)
STOPPED = [
    "SELECT count(*) FROM range(100000000) a, range(1000000) b",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) FROM r",
    "SELECT len(range(1000000000))",                    # 8 GB, untracked by memory_limit: in-process it ran a minute
    "SELECT length(repeat('x', 3000000000))",
    "SELECT max(length(s)) FROM (SELECT string_agg(repeat('x', 1000), '') AS s FROM range(10000000))",
]
STOP_MESSAGE = re.compile(r"^the query (ran longer than 1 s|needed more than \d+ MB of memory)$")


def test_hostile_sql_is_refused_or_stopped_and_changes_nothing(cfg):
    statements = hostile_statements(cfg)
    assert len(statements) >= 45
    before = snapshot(cfg)
    children_before, threads_before = child_pids(), threading.active_count()
    stopped: dict[str, tuple[str, float]] = {}

    def run_stoppers(share):
        for statement in share:
            began = time.monotonic()
            try:
                sql.run_readonly(cfg, statement, timeout_s=1)
                message = "answered"
            except SqlRefused as exc:
                message = str(exc)
            stopped[statement] = (message, time.monotonic() - began)
    # The long ones run beside the refusals, two at a time (the sandbox's concurrency limit).
    runners = [threading.Thread(target=run_stoppers, args=(STOPPED[i::2],)) for i in range(2)]
    for runner in runners:
        runner.start()
    not_refused = []
    for statement in statements:
        try:
            sql.run_readonly(cfg, statement, timeout_s=1)
            not_refused.append(statement)
        except SqlRefused as exc:
            assert_one_sentence(str(exc))
            # Refused for what it is, not because the long queries beside it hold both places.
            assert not str(exc).startswith("too many"), statement
    for runner in runners:
        runner.join(60)
    assert not not_refused, not_refused
    for statement in STOPPED:
        message, seconds = stopped[statement]
        assert STOP_MESSAGE.match(message), (statement, message)
        # The 1 s limit plus a worker's start-up on a busy machine; in-process some ran for a minute.
        assert seconds < 12, (statement, seconds)
    assert snapshot(cfg) == before
    assert not (cfg.path.parent / "out.csv").exists() and not (cfg.path.parent / "export").exists()
    # No worker process or timer thread outlives its query.
    assert child_pids() <= children_before
    deadline = time.monotonic() + 2
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before
    # And the next ordinary query is answered as usual.
    assert sql.run_readonly(cfg, "SELECT count(*) FROM raw_beacon").rows == [[BEACON_ROWS]]


def test_a_string_or_comment_that_looks_like_a_second_statement_is_just_text(cfg):
    before = snapshot(cfg)
    result = sql.run_readonly(cfg, "SELECT 'x; DROP TABLE rollups' AS s /* ; DELETE FROM raw_beacon */")
    assert result.rows == [["x; DROP TABLE rollups"]]
    assert snapshot(cfg) == before


def test_errors_are_one_sentence(cfg):
    assert "nope" in refusal(cfg, "SELECT nope FROM raw_beacon")
    assert "does not parse" in refusal(cfg, "SELECT * FROM raw_beacon WHERE")
    assert "not a queryable table" in refusal(cfg, "SELECT * FROM no_such_table")
    assert "boom" in refusal(cfg, "SELECT error('boom')")
    assert "time limit" in refusal(cfg, "SELECT 1", timeout_s=0)
    assert "parameters" in refusal(cfg, "SELECT * FROM rollups WHERE value > $1")


def test_the_locked_connection_holds_even_without_the_statement_check(cfg, tmp_path):
    """Layer two on its own: what the settings stop when a statement were ever to slip past the check."""
    request = sql._request(cfg, "SELECT 1", 5, mode="rows")
    con = sql_worker.locked_down_connection(request)
    try:
        assert con.execute("SELECT count(*) FROM raw_beacon").fetchone()[0] == BEACON_ROWS
        target = tmp_path / "out.csv"
        for statement in [
            f"COPY (SELECT 1) TO '{target}'",
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM glob('/etc/*')",
            "SET enable_external_access = true",
            "SET lock_configuration = false",
            "SET memory_limit = '8GB'",
            "INSTALL httpfs",
            "INSERT INTO rollups VALUES ('day', '2024-01-03', 'x', '{}', 1, now())",
            f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
        ]:
            with pytest.raises(duckdb.Error):
                con.execute(statement).fetchall()
        assert not target.exists() and not (tmp_path / "other.duckdb").exists()
        assert con.execute("SELECT current_setting('lock_configuration')").fetchone()[0] is True
    finally:
        con.close()


def test_a_stream_gives_every_row_in_batches_and_ends_its_worker(cfg):
    children_before = child_pids()
    with sql.readonly_batches(cfg, "SELECT hit_id, ts FROM raw_beacon ORDER BY ts", batch_rows=400) as stream:
        assert stream.columns == [{"name": "hit_id", "type": "VARCHAR"},
                                  {"name": "ts", "type": "TIMESTAMP WITH TIME ZONE"}]
        sizes = [batch.num_rows for batch in stream]
    assert sum(sizes) == BEACON_ROWS and max(sizes) <= 400 and len(sizes) >= 4
    # As a reader, for pyarrow writers or a plain DuckDB that writes the export file.
    with sql.readonly_batches(cfg, "SELECT grain, value FROM rollups ORDER BY bucket") as stream:
        assert stream.reader().read_all().to_pylist() == [{"grain": "day", "value": 2.0}, {"grain": "day", "value": 1.0}]
    # Leaving the block early ends the worker too.
    with sql.readonly_batches(cfg, "SELECT * FROM range(100000000)") as stream:
        next(iter(stream))
    assert child_pids() <= children_before


def test_a_stream_past_its_time_limit_is_refused_not_cut_short(cfg):
    rows = 0
    with pytest.raises(SqlRefused) as caught:
        with sql.readonly_batches(cfg, "SELECT * FROM range(10000000000)", timeout_s=1, batch_rows=10_000) as stream:
            for batch in stream:
                rows += batch.num_rows
                time.sleep(0.01)
    assert str(caught.value) == "the query ran longer than 1 s"
    assert 0 < rows < 10_000_000_000


def test_only_two_queries_run_at_once(cfg):
    with sql.readonly_batches(cfg, "SELECT * FROM range(1000)"), sql.readonly_batches(cfg, "SELECT 1"):
        assert "too many SQL queries" in refusal(cfg, "SELECT 1", timeout_s=0.5)
    assert sql.run_readonly(cfg, "SELECT 2").rows == [[2]]


def test_the_spare_worker_serves_one_query_sees_new_commits_and_keeps_the_limits(cfg):
    """The worker started ahead (warehouse.sql, SPARE_WORKER) is used once, sees rows committed after it
    attached the lake, and is as locked down as a fresh one."""
    sql.run_readonly(cfg, "SELECT 1")                 # leaves a spare ready
    spare = sql._spares.pid()
    assert spare is not None
    time.sleep(3)                                     # let it attach the lake before the new commit
    con = lake.connect(cfg, read_only=False)
    try:
        con.execute("INSERT INTO lake.quarantine (received_at, source, reason) VALUES (now(), 'beacon', 'spare test')")
        before = snapshot(cfg)
        assert sql.run_readonly(cfg, "SELECT count(*) FROM quarantine WHERE reason = 'spare test'").rows == [[1]]
        assert sql._spares.pid() not in (None, spare)    # used once, replaced by a new one
        assert "read_csv" in refusal(cfg, "SELECT * FROM read_csv('/etc/passwd')")
        assert "longer than 1 s" in refusal(cfg, "SELECT count(*) FROM range(10000000000)", timeout_s=1)
        assert snapshot(cfg) == before
    finally:
        con.execute("DELETE FROM lake.quarantine WHERE reason = 'spare test'")
        con.close()
