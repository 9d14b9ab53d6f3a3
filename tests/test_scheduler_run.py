"""`scheduler.py run` as an operator lives with it: it stops promptly when asked, even mid catch-up, without
calling that a failure; runs a dead process left behind are closed as interrupted; a failed source is tried
again soon, and `status` and `/health` say when."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

import scheduler
from conftest import ROOT, make_config, start_api
from tests_support import log_line
from warehouse import stopping
from warehouse.state import State
from warehouse.writer import Writer

FILLER = "x" * 700_000 + "\n"     # not a log record (quarantined): makes each object over half a 1 MB chunk


def start_scheduler(cfg_path, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "scheduler.py", "run"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CASKALYTICS_CONFIG": str(cfg_path), **(env or {})})


def wait_for_line(process: subprocess.Popen, text: str, seconds: float = 60) -> list[str]:
    lines, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        assert line, "the scheduler exited early:\n" + "".join(lines)
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} within {seconds}s:\n" + "".join(lines))


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_mid_catch_up_ends_within_two_seconds_and_is_logged_as_interrupted(s3_bucket, s3_config,
                                                                                  stop_signal):
    client, bucket = s3_bucket
    objects = 12
    for n in range(objects):           # one object per committed batch: a catch-up of 12 batches
        body = "".join(log_line(f"{n + 1:02d}/Mar/2026:11:00:00", f"S{n}-{i}") for i in range(3)) + FILLER
        client.put_object(Bucket=bucket, Key=f"logs/2026-03-{n + 1:02d}-12-00-00-OBJ{n}", Body=body.encode())
    s3_config.path.write_text(s3_config.path.read_text().replace("[sources.s3_access_logs]\n",
                                                                 "[sources.s3_access_logs]\nbatch_megabytes = 1\n"))
    process = start_scheduler(s3_config.path)
    try:
        seen = wait_for_line(process, "batch 1 committed")
        asked = time.monotonic()
        process.send_signal(stop_signal)
        process.wait(10)
        took = time.monotonic() - asked
        rest = process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(seen) + rest
    assert took < 2, f"the scheduler took {took:.1f}s to stop"
    run = State(s3_config).recent_runs("s3_access_logs")[0]
    assert run["status"] == "interrupted" and run["finished_at"]
    assert 0 < run["records"] < objects * 4, "the stop came after the whole catch-up"
    assert "failed" not in rest and "ERROR" not in rest
    status = State(s3_config).source_status()["s3_access_logs"]
    assert status["consecutive_failures"] == 0 and status["last_run"]["status"] == "interrupted"


def test_runs_left_running_by_a_dead_process_are_closed_as_interrupted(tmp_path):
    cfg = make_config(tmp_path, github={"repos": ["caskdata/cdap"]})
    state = State(cfg)
    killed = subprocess.run(
        [sys.executable, "-c", "import os, collectors; from warehouse.state import State\n"
         f"state = State(collectors.load_config({str(cfg.path)!r}))\n"
         "with state.run('github', 'collect'):\n    os.kill(os.getpid(), 9)"], cwd=ROOT)
    assert killed.returncode == -9
    with state.run("youtube", "collect"):            # this process's own run is alive: left alone
        assert state.interrupt_leftover_runs() == 1
        assert [r["status"] for r in state.recent_runs()] == ["running", "interrupted"]
    assert [r["status"] for r in state.recent_runs()] == ["ok", "interrupted"]


def test_a_failure_while_stopping_is_an_interruption_not_a_source_failure(tmp_path, monkeypatch):
    state = State(make_config(tmp_path, github={"repos": ["caskdata/cdap"]}))
    with pytest.raises(ConnectionRefusedError), state.run("github", "collect"):
        raise ConnectionRefusedError("the simulator is not running")
    monkeypatch.setattr(stopping, "_requested", True)      # `make run` stops the simulators and us at once
    with pytest.raises(ConnectionRefusedError), state.run("github", "collect"):
        raise ConnectionRefusedError("the simulator stopped")
    assert [r["status"] for r in state.recent_runs("github")] == ["interrupted", "failed"]
    assert state.source_status()["github"]["consecutive_failures"] == 1


@pytest.mark.slow
def test_a_failed_source_is_retried_with_back_off_and_status_and_health_say_when(s3_bucket, s3_config,
                                                                                  monkeypatch):
    assert [scheduler.retry_delay(n, 600) for n in (1, 2, 3, 4, 5, 6)] == [30, 60, 120, 240, 480, 600]
    client, bucket = s3_bucket
    client.delete_bucket(Bucket=bucket)         # the source fails until the bucket is back
    writer = Writer(s3_config)
    job = scheduler.SourceJob(writer, "s3_access_logs", interval=600)
    job.run()
    report = scheduler.status(s3_config)["sources"]["s3_access_logs"]
    assert report["last_status"] == "failed"
    retry_at = datetime.fromisoformat(report["next_retry_at"])
    assert timedelta(seconds=25) < retry_at - datetime.now(timezone.utc) <= timedelta(seconds=30)
    assert f"retrying at {retry_at.astimezone():%H:%M:%S}" in "\n".join(scheduler.status_lines(scheduler.status(s3_config)))
    api = start_api(s3_config)
    try:
        health = requests.get(f"{api.base_url}/health", timeout=10).json()
    finally:
        api.process.terminate()
        api.process.wait(10)
    assert health["sources"]["s3_access_logs"]["next_retry_at"] == report["next_retry_at"]

    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="logs/2026-03-01-12-00-00-A",
                      Body=log_line("01/Mar/2026:11:00:00", "R1").encode())
    job.retry_if_due()                          # not yet due: nothing happens
    assert writer.state.recent_runs("s3_access_logs")[0]["status"] == "failed"
    later = time.monotonic() + 31
    monkeypatch.setattr(scheduler.time, "monotonic", lambda: later)
    job.retry_if_due()
    assert writer.state.recent_runs("s3_access_logs")[0]["status"] == "ok"
    assert writer.lookup.count("raw_s3_access_logs") == 1
    report = scheduler.status(s3_config)["sources"]["s3_access_logs"]
    assert report["next_retry_at"] is None and report["consecutive_failures"] == 0
    writer.close()


def test_status_shows_each_cursor_compact_and_cut_short():
    report = {"sources": {"github": {
        "enabled": True, "schedule": "every 1 hour", "last_status": "ok", "last_run_at": "2026-03-01T10:00:00+00:00",
        "consecutive_failures": 0, "next_retry_at": None, "last_error": None,
        "cursor": {"repos": {"caskdata/cdap": {"stargazers": 120, "pulls_since": "2026-02-28T09:00:00+00:00"}}}}}}
    line, cursor = scheduler.status_lines(report)
    assert line.startswith("github") and "last: ok 2026-03-01T10:00:00+00:00" in line
    assert cursor.strip().startswith('cursor {"repos":{"caskdata/cdap":{"stargazers":120,')
    assert len(cursor.strip()) == len("cursor ") + scheduler.CURSOR_WIDTH and cursor.endswith("…")
