"""S3 access logs: the documented formats parse exactly, downloads follow the contract rule, each log
object is read once, and neither duplicates, late deliveries, bad lines nor crashes change the counts."""
from __future__ import annotations

import dataclasses

import json
from datetime import date, datetime, timezone

import duckdb
import pytest

import collectors

from collectors.base import Batch
from collectors.s3_access_logs import S3AccessLogs, key_at, key_time
from collectors.s3_logparse import LogParser
from conftest import FIXTURES
from tests_support import log_line
from warehouse.writer import Writer
from scheduler import run_source
from warehouse import ingest, queries
from warehouse.lake import Reader

S3_FIXTURES = FIXTURES / "s3_access_logs"

def parse_file(path):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    parsed = LogParser(con).parse({path: path.name})
    result = con.execute(f"SELECT * FROM {parsed.staged.name}")
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row)) for row in result.fetchall()], parsed


@pytest.mark.parametrize("name", ["aws_docs_sample.log", "aws_docs_current_format.log", "edge_cases.log"])
def test_every_fixture_line_parses_like_the_golden_output(name):
    expected = json.loads((S3_FIXTURES / "expected_parse.json").read_text())[name]
    rows, parsed = parse_file(S3_FIXTURES / name)
    assert parsed.rejected == []
    fields = ("bucket", "remote_ip", "requester", "operation", "key", "request_uri", "error_code", "referer",
              "user_agent")
    numbers = ("http_status", "bytes_sent", "object_size")

    def golden(want):
        when = datetime.strptime(want["time"], "%d/%b/%Y:%H:%M:%S %z").astimezone(timezone.utc)
        return (when, *(want[f] for f in fields), *(None if want[n] is None else int(want[n]) for n in numbers))

    def ours(row):
        return (row["ts"], *(row[f] for f in fields), *(row[n] for n in numbers))

    assert sorted(map(ours, rows), key=repr) == sorted(map(golden, expected), key=repr)


def test_non_utc_offsets_become_utc():
    rows, _ = parse_file(S3_FIXTURES / "edge_cases.log")
    fake = [r for r in rows if r["operation"] == "REST.OPTIONS.FAKE"][0]
    assert fake["ts"] == datetime(2021, 2, 9, 12, 48, 42, tzinfo=timezone.utc)


def test_a_stray_quote_is_quarantined_without_losing_the_next_line(tmp_path):
    path = tmp_path / "mixed.log"
    path.write_text(log_line("01/Mar/2026:10:00:00", "GOOD1")
                    + 'truncated line with "an open quote\n'
                    + log_line("01/Mar/2026:10:00:01", "GOOD2")
                    + "short line\n"
                    + log_line("99/Xyz/2026:10:00:01", "BADTIME"))
    rows, parsed = parse_file(path)
    assert sorted(r["request_id"] for r in rows) == ["GOOD1", "GOOD2"]
    reasons = sorted(r.reason for r in parsed.rejected)
    assert len(reasons) == 3
    assert any("unterminated quote" in r or "fields" in r for r in reasons)
    assert any("request time" in r for r in reasons)
    assert {r.record for r in parsed.rejected} >= {'truncated line with "an open quote', "short line"}


def test_log_object_keys_carry_their_delivery_time():
    assert key_time("logs/2026-02-06-00-00-38-ABCDEF") == datetime(2026, 2, 6, 0, 0, 38)
    partitioned = "logs/123456789012/us-east-1/b/2026/02/06/2026-02-06-00-00-38-ABCDEF"
    assert key_time(partitioned) == datetime(2026, 2, 6, 0, 0, 38)
    earlier = key_at(partitioned, datetime(2026, 2, 5, 22, 0, 38))
    assert earlier == "logs/123456789012/us-east-1/b/2026/02/05/2026-02-05-22-00-38"
    assert earlier < partitioned


def downloads_by_day(cfg, start: date, end: date, **extra):
    series = queries.metric_series(Reader(cfg).cursor(), cfg,
                                   queries.SeriesRequest("downloads", "day", start, end, **extra))
    return series


def put(client, bucket, key, lines):
    client.put_object(Bucket=bucket, Key=key, Body="".join(lines).encode())


def test_downloads_follow_the_contract_rule(s3_bucket, s3_config):
    client, bucket = s3_bucket
    day = "02/Mar/2026"
    put(client, bucket, "logs/2026-03-02-23-00-00-A", [
        log_line(f"{day}:10:00:00", "R1"),                                            # 200: one
        log_line(f"{day}:10:05:00", "R2", status=206),                                # 206 group: one
        log_line(f"{day}:10:06:00", "R3", status=206),
        log_line(f"{day}:10:59:59", "R4", status=206),
        log_line(f"{day}:11:00:00", "R5", status=206),                                # next UTC hour: one
        log_line(f"{day}:11:00:00", "R6", status=206, ip="198.51.100.8"),             # other IP: one
        log_line(f"{day}:12:00:00", "R7", operation="WEBSITE.GET.OBJECT"),            # website: one
        log_line(f"{day}:12:00:00", "R8", status=304),
        log_line(f"{day}:12:00:00", "R9", status=404),
        log_line(f"{day}:12:00:00", "R10", status=500),
        log_line(f"{day}:12:00:00", "R11", operation="REST.HEAD.OBJECT"),
        log_line(f"{day}:12:00:00", "R12", operation="REST.PUT.OBJECT"),
        log_line(f"{day}:12:00:00", "R13", operation="REST.COPY.OBJECT"),
        log_line(f"{day}:12:00:00", "R14", key="docs/index.html"),                  # no version in key
        log_line(f"{day}:13:00:00", "R15", key="cdap-sdk/6.8.0/cdap-sdk-6.8.0.zip"),
    ])
    writer = Writer(s3_config)
    run_source(writer, "s3_access_logs")
    series = downloads_by_day(s3_config, date(2026, 3, 1), date(2026, 3, 3), by=["version"])
    totals = {s["dims"]["version"]: [p["value"] for p in s["points"]] for s in series["series"]}
    assert totals == {"6.9.0": [0, 5, 0], "6.8.0": [0, 1, 0]}
    answer = queries.downloads_by_version(Reader(s3_config).cursor(), s3_config, None, None)
    assert answer == {"downloads": [{"version": "6.9.0", "dl": 5}, {"version": "6.8.0", "dl": 1}]}


def test_each_log_object_is_read_once_and_late_deliveries_are_caught(s3_bucket, s3_config):
    client, bucket = s3_bucket
    put(client, bucket, "logs/2026-03-01-10-00-00-A", [log_line("01/Mar/2026:09:10:00", "A1")])
    put(client, bucket, "logs/2026-03-01-11-00-00-B", [log_line("01/Mar/2026:10:10:00", "B1")])
    writer = Writer(s3_config)
    first = run_source(writer, "s3_access_logs")
    assert (first.records, first.inserted) == (2, 2)
    again = run_source(writer, "s3_access_logs")
    assert (again.batches, again.records) == (0, 0), "an ingested object was read a second time"
    # Delivered late, under a key that sorts before the cursor but inside the re-list window.
    put(client, bucket, "logs/2026-03-01-10-30-00-LATE", [log_line("01/Mar/2026:09:40:00", "L1")])
    late = run_source(writer, "s3_access_logs")
    assert (late.records, late.inserted) == (1, 1)
    assert writer.cursor("s3_access_logs") == {"last_key": "logs/2026-03-01-11-00-00-B"}
    assert writer.lookup.count("s3_objects_read", bucket=bucket) == 3
    assert downloads_by_day(s3_config, date(2026, 3, 1), date(2026, 3, 1))["points"][0]["value"] == 3


def test_records_delivered_in_two_objects_count_once(s3_bucket, s3_config):
    client, bucket = s3_bucket
    shared = [log_line("03/Mar/2026:08:00:00", "SAME1"), log_line("03/Mar/2026:08:01:00", "SAME2")]
    put(client, bucket, "logs/2026-03-03-09-00-00-A", shared)
    put(client, bucket, "logs/2026-03-03-09-00-05-B", shared + [log_line("03/Mar/2026:08:02:00", "NEW")])
    writer = Writer(s3_config)
    summary = run_source(writer, "s3_access_logs")
    assert (summary.records, summary.inserted, summary.duplicates) == (5, 3, 2)
    assert downloads_by_day(s3_config, date(2026, 3, 3), date(2026, 3, 3))["points"][0]["value"] == 3


class CrashAfterFirstBatch(S3AccessLogs):
    """The process dies right after its first chunk was committed."""

    def collect(self, ctx, cursor):
        for number, batch in enumerate(super().collect(ctx, cursor)):
            if number == 1:
                raise SystemExit("killed mid-run")
            yield batch


def test_a_crash_mid_run_neither_loses_nor_duplicates(s3_bucket, s3_config, monkeypatch):
    client, bucket = s3_bucket
    s3_config.sources.s3_access_logs.batch_megabytes = 1
    filler = "x" * 900_000   # each object over half the chunk size: one object per committed batch
    for n in range(4):
        put(client, bucket, f"logs/2026-03-0{n + 1}-12-00-00-OBJ{n}",
            [log_line(f"0{n + 1}/Mar/2026:11:00:00", f"C{n}-{i}") for i in range(3)] + [filler + "\n"])
    writer = Writer(s3_config)
    declared = collectors.SOURCES["s3_access_logs"]
    monkeypatch.setitem(collectors.SOURCES, "s3_access_logs", dataclasses.replace(declared, collector=CrashAfterFirstBatch))
    with pytest.raises(SystemExit):
        run_source(writer, "s3_access_logs")
    assert writer.lookup.count("raw_s3_access_logs") == 3
    assert writer.state.recent_runs("s3_access_logs")[0]["status"] == "failed"
    monkeypatch.setitem(collectors.SOURCES, "s3_access_logs", declared)
    resumed = run_source(writer, "s3_access_logs")
    assert resumed.batches == 3, "the committed object was read again"
    assert writer.lookup.count("raw_s3_access_logs") == 12
    assert writer.lookup.count("s3_objects_read") == 4
    points = downloads_by_day(s3_config, date(2026, 3, 1), date(2026, 3, 4))["points"]
    assert [p["value"] for p in points] == [3, 3, 3, 3]
    # The filler lines were not log records: counted as quarantined, never silently dropped.
    assert writer.con.execute("SELECT count(*) FROM lake.quarantine").fetchone()[0] == 4


def test_a_failing_commit_leaves_neither_records_nor_cursor(s3_config):
    writer = Writer(s3_config)
    good = {"ts": datetime(2026, 3, 1, tzinfo=timezone.utc), "bucket": "b", "request_id": "X1",
            "operation": "REST.GET.OBJECT", "key": "a/1.0/a.zip", "http_status": 200}
    bad_ledger = [{"bucket": "b", "key": "k", "etag": "e", "size": "not a number", "lines": 1}]
    with pytest.raises(Exception):
        writer.commit("s3_access_logs", Batch(
            records={"raw_s3_access_logs": [good], "s3_objects_read": bad_ledger}, cursor={"last_key": "k"}))
    assert writer.lookup.count("raw_s3_access_logs") == 0
    assert writer.cursor("s3_access_logs") is None


def test_wrong_credentials_fail_with_a_clear_message(s3_bucket, s3_config, monkeypatch):
    s3_config.sources.s3_access_logs.bucket = "no-such-bucket-here"
    writer = Writer(s3_config)
    with pytest.raises(Exception) as failure:
        run_source(writer, "s3_access_logs")
    assert "no-such-bucket-here" in str(failure.value)
    assert writer.state.source_status()["s3_access_logs"]["consecutive_failures"] == 1
