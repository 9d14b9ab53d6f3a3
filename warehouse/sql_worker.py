"""The throwaway process that runs one user SELECT for `warehouse.sql` (run as a script, never imported by
the API).

Why a process of its own: DuckDB's memory_limit governs its buffer manager, not every allocation. A scalar
such as `range(100000000)`, `list_resize([1], 1e8)` or `repeat('x', 1e9)` built 1-9 GB outside the limit and
ran for a minute past `interrupt()` when tried in-process. Here the address space is capped (RLIMIT_AS), so
such a query fails at once with an out-of-memory error, and the API's own connections and memory are never
involved. The time limit interrupts the query; work that ignores the interrupt ends with the process 2 s
later.

Protocol: two JSON lines on stdin (see `warehouse.sql._setup` and `_request`): the set-up (limits, extensions,
the ATTACH), on which the worker builds its locked-down connection, then the query (sql, mode, limit, time
limit). A spare worker gets the first line when it starts and the second when a query comes (end of input
instead: nothing to do, exit 0). On success, stdout carries either one JSON answer `{columns, rows, truncated,
elapsed_ms}` (mode "rows") or an Arrow IPC stream (mode "arrow"), and the exit code is 0. Otherwise stderr's
last line is `{"error": "<one sentence>"}` and the exit code 3.
"""
from __future__ import annotations

import datetime
import decimal
import json
import math
import os
import resource
import sys
import threading
import time
import uuid
from pathlib import Path

REFUSED_EXIT = 3
HARD_STOP_AFTER_S = 2.0     # after the time limit, for work that never checks DuckDB's interrupt flag


def main() -> int:
    setup = json.loads(sys.stdin.readline())
    # Before duckdb is imported: every later allocation, DuckDB's own included, counts against the cap.
    cap = int(setup["address_space_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import duckdb
    from warehouse.sql_guard import SqlRefused, check_select, one_line

    timed_out = threading.Event()
    request = setup
    try:
        con = locked_down_connection(setup)
        # The statement check's parser connection costs ~0.25 s to make: make it before the query comes.
        check_select("SELECT 1", setup["tables"], frozenset(setup["functions"]), [])
        line = sys.stdin.readline()         # a spare waits here, locked down, until a query comes
        if not line.strip():
            return 0
        request = {**setup, **json.loads(line)}
        # Never run SQL this process has not checked (the parent passes the callable set it computed once);
        # every table and view this connection can reach that is not queryable is a name no CTE may take.
        reachable = [row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() UNION SELECT view_name FROM duckdb_views() "
            "WHERE schema_name <> 'information_schema'").fetchall()]
        sql = check_select(request["sql"], request["tables"], frozenset(request["functions"]), reachable)
        timeout = float(request["timeout_s"])
        timer = threading.Timer(timeout, lambda: (timed_out.set(), con.interrupt()))
        # Some work never looks at the interrupt flag (one huge scalar value): end the process instead.
        hard_stop = threading.Timer(timeout + HARD_STOP_AFTER_S, lambda: (refuse(ran_too_long(timeout)),
                                                                          os._exit(REFUSED_EXIT)))
        for clock in (timer, hard_stop):
            clock.daemon = True
            clock.start()
        try:
            if request["mode"] == "arrow":
                stream_arrow(con, sql, int(request["batch_rows"]))
            else:
                answer_rows(con, sql, int(request["limit"]), int(request["max_answer_bytes"]))
        finally:
            timer.cancel()
            hard_stop.cancel()
        return 0
    except SqlRefused as exc:
        return refuse(str(exc))
    except (duckdb.InterruptException, KeyboardInterrupt):
        return refuse(ran_too_long(request["timeout_s"]))
    except (duckdb.OutOfMemoryException, MemoryError):
        return refuse(f"the query needed more than {request['memory_limit_mb']} MB of memory")
    except duckdb.Error as exc:
        if timed_out.is_set():
            return refuse(ran_too_long(request["timeout_s"]))
        return refuse(f"the query failed: {one_line(exc)}")
    except BrokenPipeError:
        return REFUSED_EXIT                               # the reader went away: nobody to answer
    except Exception as exc:                              # pyarrow errors around an interrupted stream
        if timed_out.is_set():
            return refuse(ran_too_long(request["timeout_s"]))
        return refuse(f"the query failed: {one_line(exc)}")


def ran_too_long(timeout_s: float) -> str:
    return f"the query ran longer than {float(timeout_s):g} s"


def refuse(message: str) -> int:
    sys.stderr.write(json.dumps({"error": message}) + "\n")
    sys.stderr.flush()
    return REFUSED_EXIT


def locked_down_connection(request: dict):
    """A fresh in-memory DuckDB with the lake attached read-only as the default catalog, then locked."""
    import duckdb
    con = duckdb.connect(config={
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,        # the extension wheels are signed; LOAD checks them
        "allow_persistent_secrets": False,         # no secrets read from ~/.duckdb
        "python_enable_replacements": False,       # no scanning of Python variables by name
        "temp_directory": "",                      # no spilling to disk: over the memory limit is an error
        "memory_limit": f"{int(request['memory_limit_mb'])}MB",
        "threads": int(request["threads"]),
    })
    con.execute("SET TimeZone = 'UTC'")
    for path in request["extensions"]:
        con.execute(f"LOAD {quote(path)}")
    for attempt in range(8):
        try:
            con.execute(request["attach"])
            break
        except duckdb.Error as exc:
            # The writer (or Litestream's checkpoint) may hold the SQLite catalog for a moment.
            text = str(exc).lower()
            if attempt == 7 or not ("locked" in text or "busy" in text):
                raise
            time.sleep(0.05 * 2 ** attempt)
    con.execute("USE lake")
    # The lake's own Parquet files stay readable (DuckLake reads them through DuckDB's file system);
    # nothing else on disk or on the network is, and no setting can change after this.
    con.execute(f"SET allowed_directories = [{quote(request['data_path'])}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def answer_rows(con, sql: str, limit: int, max_bytes: int) -> None:
    started = time.monotonic()
    relation = con.sql(sql)
    columns = [{"name": name, "type": str(kind)} for name, kind in zip(relation.columns, relation.types)]
    rows = relation.limit(limit + 1).fetchall()        # one more than asked tells whether there was more
    elapsed_ms = round((time.monotonic() - started) * 1000)
    answer = json.dumps({"columns": columns, "rows": [[jsonable(v) for v in row] for row in rows[:limit]],
                         "truncated": len(rows) > limit, "elapsed_ms": elapsed_ms},
                        allow_nan=False, ensure_ascii=False)
    if len(answer) > max_bytes:
        from warehouse.sql_guard import SqlRefused
        raise SqlRefused(f"the answer is larger than {max_bytes // 1_000_000} MB: ask for fewer rows or columns")
    sys.stdout.write(answer)
    sys.stdout.flush()


def stream_arrow(con, sql: str, batch_rows: int) -> None:
    import pyarrow as pa
    relation = con.sql(sql)
    types = json.dumps([str(kind) for kind in relation.types])
    reader = relation.to_arrow_reader(batch_rows)
    schema = reader.schema.with_metadata({**(reader.schema.metadata or {}), b"duckdb_types": types.encode()})
    with pa.ipc.new_stream(sys.stdout.buffer, schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    sys.stdout.buffer.flush()


def jsonable(value):
    """A value as JSON carries it: times as ISO 8601 text, decimals as float, BLOBs as hex, INTERVAL as
    seconds, UUIDs as text, NaN and infinities as null (JSON has no such numbers)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, decimal.Decimal):
        return jsonable(float(value))
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: destroying DuckDB with the lake extensions loaded at exit sometimes ends in
    # "terminate called without an active exception" (SIGABRT) after the answer was written.
    os._exit(code)
