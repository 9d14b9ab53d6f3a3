"""Experiments for `ingest_worker.py --variant NAME[=VALUE]`: each changes one thing in the running process
(a DuckDB setting, or a function swapped in place), never the files under collectors/ or warehouse/.
`bench/s3_profile.py` runs them side by side; a change that pays off is proposed from there, not made here.

A variant is applied before the writer opens; it may return a function to run on the opened writer.
"""
from __future__ import annotations

import atexit
import ctypes
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from collectors import s3_access_logs, s3_logparse
from warehouse import ingest

AfterOpen = Callable[[object], None] | None


def apply(spec: str) -> AfterOpen:
    name, _, value = spec.partition("=")
    if name not in VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; known: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[name](value)


# --- settings -------------------------------------------------------------------------------------------

def memory_limit(value: str) -> AfterOpen:
    return lambda writer: writer.con.execute(f"SET memory_limit = '{value}'")


def threads(value: str) -> AfterOpen:
    return lambda writer: writer.con.execute(f"SET threads = {int(value)}")


def batch_mb(value: str) -> AfterOpen:
    def after(writer):
        writer.cfg.sources.s3_access_logs.batch_megabytes = int(value)
    return after


def download_workers(value: str) -> AfterOpen:
    s3_access_logs.ThreadPoolExecutor = lambda max_workers: ThreadPoolExecutor(max_workers=int(value))
    return None


def no_partition(_value: str) -> AfterOpen:
    """The raw table without `PARTITIONED BY (year(ts), month(ts))`."""
    return lambda writer: writer.con.execute("ALTER TABLE lake.raw_s3_access_logs RESET PARTITIONED BY")


def malloc_trim(_value: str) -> AfterOpen:
    """Hand freed heap back to the OS after each parse and commit (glibc keeps it otherwise)."""
    libc = ctypes.CDLL("libc.so.6")
    for owner, name in ((s3_logparse.LogParser, "parse"), (ingest, "commit")):
        original = getattr(owner, name)

        def trimmed(*args, _original=original, **kwargs):
            try:
                return _original(*args, **kwargs)
            finally:
                libc.malloc_trim(0)
        setattr(owner, name, trimmed)
    return None


def mmap_threshold(value: str) -> AfterOpen:
    """glibc raises its mmap threshold (up to 32 MB) each time a large block is freed, after which DuckDB's
    256 KB buffers come from the heap and freed ones stay resident. A fixed threshold keeps them mmapped, so
    a freed buffer goes back to the OS. (Same as MALLOC_MMAP_THRESHOLD_=VALUE in the environment.)"""
    ctypes.CDLL("libc.so.6").mallopt(-3, int(value or 131072))     # -3: M_MMAP_THRESHOLD
    return None


# --- code changes, as they would be proposed --------------------------------------------------------------

def dedupe_only_if_needed(_value: str) -> AfterOpen:
    """warehouse/ingest.py `_insert_new`: `DISTINCT ON (key)` hashes whole rows; most batches have no
    repeated key, which a key-only count finds cheaply. Keep DISTINCT ON for batches that need it."""
    original = ingest._insert_new

    def insert_new(con, table_name, rows, batch):
        table = ingest.INGEST_TABLES[table_name]
        if isinstance(rows, ingest.StagedTable):
            key = ", ".join(table.key)
            repeated = con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM {rows.name}").fetchone()[0]
            if not repeated:
                return _insert_distinct(con, table, rows, batch)
        return original(con, table_name, rows, batch)
    ingest._insert_new = insert_new
    return None


def _insert_distinct(con, table, rows, batch: int) -> int:
    """`_insert_new` without the DISTINCT ON: the staged rows are known to have distinct keys."""
    columns = table.column_names
    match = " AND ".join(f"stored.{k} IS NOT DISTINCT FROM fresh.{k}" for k in table.key)
    window = ""
    if table.same_key_same_ts:
        window = f" AND stored.ts BETWEEN (SELECT min(ts) FROM {rows.name}) AND (SELECT max(ts) FROM {rows.name})"
    select_columns = ", ".join(f"CAST({c} AS {ingest._column_type(table, c)}) AS {c}" for c in columns)
    return int(con.execute(f"""
        INSERT INTO lake.{table.name} ({", ".join(columns)}, _batch)
        SELECT {", ".join(columns)}, {batch}
        FROM (SELECT {select_columns} FROM {rows.name}) AS fresh
        WHERE NOT EXISTS (SELECT 1 FROM lake.{table.name} AS stored WHERE {match}{window})
    """).fetchone()[0])


def stage_in_place(_value: str) -> AfterOpen:
    """collectors/s3_logparse.py `LogParser.parse`: the typed rows are written once. The object key joins in
    while `checked` is built, rejected rows are deleted from it, and it is renamed to the staged name, instead
    of copying every good row into a second temp table. (The insert names its columns, so the extra
    bookkeeping columns origin, n_fields and bad_line are not stored.)"""
    s3_logparse.LogParser.parse = _parse_in_place
    return None


def _parse_in_place(self, files):
    """A copy of LogParser.parse with the change described in `stage_in_place`; the rest is unchanged."""
    from pathlib import Path

    import duckdb
    import pyarrow as pa
    from collectors.base import Rejected, StagedTable
    from collectors.s3_logparse import COLUMNS, FIELDS, MIN_FIELDS, _as_columns, tokenize

    con = self.con
    self._serial += 1
    staged = f"s3_parsed_{self._serial}"
    paths = [str(p) for p in files]
    con.register("log_objects", pa.table({"origin": paths, "object_key": list(files.values())}))
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS) + "}"
    field_count = " + ".join(f"({c} IS NOT NULL)::INT" for c in COLUMNS) + " - 1"
    fields = ", ".join(f"{sql} AS {name}" for name, sql in FIELDS)
    transform = f"""SELECT ts, {', '.join(name for name, _ in FIELDS)}, object_key AS log_object, origin, n_fields,
            CASE WHEN n_fields < {MIN_FIELDS} OR ts IS NULL OR request_id IS NULL
                 THEN concat_ws(' ', {', '.join(COLUMNS)}) END AS bad_line
        FROM (SELECT try_strptime(c02 || ' ' || c03, '[%d/%b/%Y:%H:%M:%S %z]') AS ts, {fields},
                     {field_count} AS n_fields, *
              FROM (SOURCE)) JOIN log_objects USING (origin)"""
    for parallel in ("true", "false"):
        try:
            con.execute("CREATE OR REPLACE TEMP TABLE checked AS " + transform.replace("(SOURCE)", f"""(
                SELECT * EXCLUDE (filename), filename AS origin FROM read_csv(?, delim = ' ', quote = '"',
                    escape = '', header = false, auto_detect = false, columns = {columns}, null_padding = true,
                    ignore_errors = true, store_rejects = true, filename = true, parallel = {parallel}))"""),
                        [paths])
            break
        except duckdb.Error as exc:
            if parallel == "false" or "quoted new lines" not in str(exc):
                raise
    rejected_text = con.execute("""SELECT s.file_path, e.csv_line, e.error_message
        FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)""").fetchall()
    con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    rejected, salvaged = [], []
    for path, text, error in rejected_text:
        for physical in (text or "").split("\n"):
            if not physical.strip():
                continue
            fields_found = tokenize(physical)
            if len(fields_found) < MIN_FIELDS:
                rejected.append(Rejected(f"unreadable S3 log line ({len(fields_found)} fields; "
                                         f"{error.splitlines()[0]})", physical, files[Path(path)]))
            else:
                salvaged.append({**_as_columns(fields_found), "origin": path})
    if salvaged:
        con.register("salvaged", pa.Table.from_pylist(salvaged))
        con.execute("INSERT INTO checked " + transform.replace("(SOURCE)", "salvaged"))
        con.unregister("salvaged")
    con.unregister("log_objects")
    problems = con.execute(f"""SELECT origin, bad_line, CASE
            WHEN n_fields < {MIN_FIELDS} THEN 'only ' || n_fields || ' fields; S3 access log records have at least {MIN_FIELDS}'
            WHEN ts IS NULL THEN 'unreadable request time'
            ELSE 'no request ID, so the record cannot be deduplicated' END
        FROM checked WHERE bad_line IS NOT NULL""").fetchall()
    rejected.extend(Rejected(reason, line, files[Path(origin)]) for origin, line, reason in problems)
    lines_by_file = {str(p): 0 for p in files}
    lines_by_file.update(con.execute("SELECT origin, count(*) FROM checked GROUP BY origin").fetchall())
    if problems:
        con.execute("DELETE FROM checked WHERE bad_line IS NOT NULL")
    con.execute(f"DROP TABLE IF EXISTS {staged}; ALTER TABLE checked RENAME TO {staged}")
    return s3_logparse.ParsedLogs(StagedTable(staged), rejected,
                                  {files[Path(k)]: v for k, v in lines_by_file.items()})


def cube_regexp_per_key(_value: str) -> AfterOpen:
    """warehouse/metrics.py `downloads_sql`: count per (hour, key) first, then run the version regexp once per
    key and hour instead of twice per log line. The 206 group key drops `k := key`: the key is already a
    grouping column, so the distinct (ip, ua, key) groups of an hour and artifact version are unchanged."""
    from warehouse import metrics

    def downloads_sql(cfg) -> str:
        pattern = metrics.sql_literal(cfg.sources.s3_access_logs.version_pattern)
        groups = metrics.version_groups(cfg)
        dims = [g for g in ("artifact", "version") if g in groups]
        dims_json = "json_object(" + ", ".join(f"'{d}', m.{d}" for d in dims) + ")::VARCHAR"
        operations = ", ".join(metrics.sql_literal(op) for op in metrics.DOWNLOAD_OPERATIONS)
        return f"""
            SELECT h AS ts, {dims_json} AS dims, sum(n) AS value
            FROM (SELECT h, regexp_extract(key, {pattern}, {groups!r}) AS m, n
                  FROM (SELECT date_trunc('hour', ts) AS h, key,
                               count(*) FILTER (WHERE http_status = 200)
                             + count(DISTINCT CASE WHEN http_status = 206
                                                   THEN struct_pack(ip := remote_ip, ua := user_agent) END) AS n
                        FROM lake.raw_s3_access_logs
                        WHERE {metrics.AFFECTED} AND operation IN ({operations}) AND http_status IN (200, 206)
                        GROUP BY ALL)
                  WHERE regexp_matches(key, {pattern}))
            GROUP BY ALL"""
    metrics.downloads_sql = downloads_sql
    return None


# --- tracing ----------------------------------------------------------------------------------------------

def trace_sql(value: str) -> AfterOpen:
    """Time every statement on the writer connection; print the costliest kinds to stderr at exit."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    limit = int(value or 25)

    class Traced:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *args):
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return self._con.execute(sql, *args)
            finally:
                kind = re.sub(r"\s+", " ", re.sub(r"\d+", "N", sql)).strip()[:100]
                entry = totals[kind]
                entry[0] += 1
                entry[1] += time.perf_counter() - start
                entry[2] += time.process_time() - cpu

        def __getattr__(self, name):
            return getattr(self._con, name)

    def report():
        print(f"{'calls':>6}{'wall s':>8}{'CPU s':>8}  statement", file=sys.stderr)
        for kind, (calls, wall, cpu) in sorted(totals.items(), key=lambda item: -item[1][2])[:limit]:
            print(f"{calls:>6}{wall:8.2f}{cpu:8.2f}  {kind}", file=sys.stderr)

    def after(writer):
        writer.con = Traced(writer.con)
        writer.lookup.con = writer.con
        atexit.register(report)
    return after


VARIANTS: dict[str, Callable[[str], AfterOpen]] = {
    "memory_limit": memory_limit,
    "threads": threads,
    "batch_mb": batch_mb,
    "download_workers": download_workers,
    "no_partition": no_partition,
    "malloc_trim": malloc_trim,
    "mmap_threshold": mmap_threshold,
    "dedupe_only_if_needed": dedupe_only_if_needed,
    "stage_in_place": stage_in_place,
    "cube_regexp_per_key": cube_regexp_per_key,
    "trace_sql": trace_sql,
}
