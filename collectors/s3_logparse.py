"""Parsing S3 server access log files, fast and exactly.

Fast path: DuckDB's CSV reader with space as the delimiter and `"` as the quote reads every documented
layout (18 to 27+ fields; `[time]` splits into two columns, always at the same place), vectorised and in
parallel. Lines the reader rejects, such as a stray quote that swallows the next line, go to the slow
path: each physical line is tokenised on its own in Python; what still fails is quarantined with a reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from collectors.base import Rejected, StagedTable

MAX_COLUMNS = 40          # 28 today (27 fields, time in two halves); AWS appends fields over time
MIN_FIELDS = 18           # the oldest layout ends after version_id
TOKEN = re.compile(r'\[[^\]]*\]|"[^"]*"|\S+')
COLUMNS = [f"c{i:02d}" for i in range(MAX_COLUMNS)]


def _text(column: str) -> str:
    return f"nullif({column}, '-')"


def _number(column: str, kind: str = "BIGINT") -> str:
    return f"TRY_CAST(nullif({column}, '-') AS {kind})"


# (output column, SQL over the c00.. columns); c02/c03 are the two halves of "[06/Feb/2019:00:00:38 +0000]".
FIELDS = [(name, _number(col, kind) if kind else _text(col)) for name, col, kind in [
    ("bucket", "c01", None), ("request_id", "c06", None), ("operation", "c07", None), ("key", "c08", None),
    ("remote_ip", "c04", None), ("requester", "c05", None), ("request_uri", "c09", None),
    ("http_status", "c10", "INTEGER"), ("error_code", "c11", None), ("bytes_sent", "c12", "BIGINT"),
    ("object_size", "c13", "BIGINT"), ("total_time_ms", "c14", "BIGINT"), ("turn_around_time_ms", "c15", "BIGINT"),
    ("referer", "c16", None), ("user_agent", "c17", None), ("version_id", "c18", None), ("host_id", "c19", None),
    ("signature_version", "c20", None), ("cipher_suite", "c21", None), ("authentication_type", "c22", None),
    ("host_header", "c23", None), ("tls_version", "c24", None), ("access_point_arn", "c25", None),
    ("acl_required", "c26", None), ("source_region", "c27", None),
]]


@dataclass
class ParsedLogs:
    staged: StagedTable          # typed records, in a temp table of the connection the parser was given
    rejected: list[Rejected]
    lines_by_file: dict[str, int]    # log object key -> lines read (good and bad)


def tokenize(line: str) -> list[str | None]:
    """Split one log line into its fields as the documented format says: `[..]` and `".."` are single
    fields, `-` means absent. The time field keeps its brackets off."""
    fields: list[str | None] = []
    for token in TOKEN.findall(line):
        if token[0] == "[" and token[-1] == "]" or token[0] == '"' and token[-1] == '"' and len(token) > 1:
            token = token[1:-1]
        fields.append(None if token == "-" else token)
    return fields


def _as_columns(fields: list[str | None]) -> dict[str, str | None]:
    """Lay tokenizer fields out like the CSV fast path does (time in two halves, quoted '-' kept)."""
    time_parts = (fields[2] or "").split(" ", 1) if len(fields) > 2 else []
    laid = fields[:2] + ["[" + time_parts[0], (time_parts[1] if len(time_parts) > 1 else "") + "]"] + fields[3:]
    laid = ["-" if v is None else v for v in laid]
    return {c: (laid[i] if i < len(laid) else None) for i, c in enumerate(COLUMNS)}


class LogParser:
    """Parses into a temp table of the given DuckDB connection (the writer's, so the typed records reach
    the lake without a round trip through Python). It creates temp tables only, never touches the lake."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self.con.execute("SET preserve_insertion_order = false")
        self._serial = 0

    def parse(self, files: dict[Path, str]) -> ParsedLogs:
        """Parse local copies of log objects; `files` maps each path to its log object key."""
        con = self.con
        self._serial += 1
        staged = f"s3_parsed_{self._serial}"
        paths = [str(p) for p in files]
        con.register("log_objects", pa.table({"origin": paths, "object_key": list(files.values())}))
        columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in COLUMNS) + "}"
        field_count = " + ".join(f"({c} IS NOT NULL)::INT" for c in COLUMNS) + " - 1"
        fields = ", ".join(f"{sql} AS {name}" for name, sql in FIELDS)
        # One pass: columns become typed fields; the line text is rebuilt only for rows that fail a check.
        # The object key joins in here, so that `checked` itself becomes the staged table (no second copy).
        transform = f"""SELECT ts, {', '.join(name for name, _ in FIELDS)}, object_key AS log_object, n_fields,
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
                # A stray quote joined two physical lines: the parallel reader refuses; the serial one
                # rejects the joined text, which the slow path splits again.
                if parallel == "false" or "quoted new lines" not in str(exc):
                    raise
        rejected_text = con.execute("""SELECT s.file_path, e.csv_line, e.error_message
            FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)""").fetchall()
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        rejected: list[Rejected] = []
        salvaged = []
        for path, text, error in rejected_text:
            for physical in (text or "").split("\n"):
                if not physical.strip():
                    continue
                fields_found = tokenize(physical)
                if len(fields_found) < MIN_FIELDS:
                    rejected.append(Rejected(
                        f"unreadable S3 log line ({len(fields_found)} fields; {error.splitlines()[0]})",
                        physical, files[Path(path)]))
                else:
                    salvaged.append({**_as_columns(fields_found), "origin": path})
        if salvaged:
            con.register("salvaged", pa.Table.from_pylist(salvaged))
            con.execute("INSERT INTO checked " + transform.replace("(SOURCE)", "salvaged"))
            con.unregister("salvaged")
        con.unregister("log_objects")

        problems = con.execute(f"""SELECT log_object, bad_line, CASE
                WHEN n_fields < {MIN_FIELDS} THEN 'only ' || n_fields || ' fields; S3 access log records have at least {MIN_FIELDS}'
                WHEN ts IS NULL THEN 'unreadable request time'
                ELSE 'no request ID, so the record cannot be deduplicated' END
            FROM checked WHERE bad_line IS NOT NULL""").fetchall()
        rejected.extend(Rejected(reason, line, key) for key, line, reason in problems)
        # Lines per log object (an object downloaded in several pieces counts all of them).
        lines_by_file = {key: 0 for key in files.values()}
        lines_by_file.update(con.execute("SELECT log_object, count(*) FROM checked GROUP BY log_object").fetchall())
        # The good rows stay where they are: `checked` is renamed to the staged table. Its extra columns
        # (n_fields, bad_line) are not stored: the insert names the columns it takes.
        if problems:
            con.execute("DELETE FROM checked WHERE bad_line IS NOT NULL")
        con.execute(f"DROP TABLE IF EXISTS {staged}; ALTER TABLE checked RENAME TO {staged}")
        return ParsedLogs(StagedTable(staged), rejected, lines_by_file)

