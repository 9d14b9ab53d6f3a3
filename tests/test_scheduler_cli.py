"""The scheduler CLI as an operator uses it: one-line errors with a non-zero exit, progress, status."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

from conftest import ROOT, make_config
from tests_support import put_logs


def cli(cfg_path, *args, env=None):
    return subprocess.run([sys.executable, "scheduler.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "CASKALYTICS_CONFIG": str(cfg_path), **(env or {})})


def test_collect_backfill_and_status(s3_bucket, s3_config):
    client, bucket = s3_bucket
    put_logs(client, bucket, "logs/2026-01-10-00-05-00-A", [("09/Jan/2026:10:00:00", "R1", "6.9.0", 200)])
    put_logs(client, bucket, "logs/2026-02-10-00-05-00-B", [("09/Feb/2026:10:00:00", "R2", "6.9.0", 200)])
    collected = cli(s3_config.path, "collect", "s3_access_logs")
    assert collected.returncode == 0, collected.stderr
    assert "2 records, 2 new" in collected.stdout
    assert "s3_access_logs collect:" not in collected.stderr        # the summary is printed once, on stdout
    again = cli(s3_config.path, "backfill", "s3_access_logs", "--from", "2026-01-01", "--to", "2026-01-31")
    assert again.returncode == 0, again.stderr
    assert "0 records" in again.stdout      # the ledger knows the January object was read ...
    assert "1 object already read, skipped" in again.stdout   # ... and the backfill says why it read nothing
    status = json.loads(cli(s3_config.path, "status", "--json").stdout)
    s3 = status["sources"]["s3_access_logs"]
    assert s3["last_status"] == "ok" and s3["consecutive_failures"] == 0 and s3["next_retry_at"] is None
    assert s3["cursor"] == {"last_key": "logs/2026-02-10-00-05-00-B"}
    text = cli(s3_config.path, "status")
    assert text.returncode == 0 and "s3_access_logs" in text.stdout
    assert 'cursor {"last_key":"logs/2026-02-10-00-05-00-B"}' in text.stdout


@pytest.mark.slow
def test_backfill_progress_counts_objects_and_log_lines_stay_off_the_bar(s3_bucket, s3_config):
    client, bucket = s3_bucket
    for n in range(3):
        put_logs(client, bucket, f"logs/2026-01-1{n}-00-05-00-A", [(f"1{n}/Jan/2026:10:00:00", f"P{n}", "6.9.0", 200)])
    controller, terminal = pty.openpty()        # stderr a terminal, as for a person at a shell: the bar shows
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))     # 200 columns wide
    process = subprocess.Popen([sys.executable, "scheduler.py", "backfill", "s3_access_logs", "--from", "2026-01-01",
                                "--to", "2026-01-31"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=terminal, text=True,
                               env={**os.environ, "CASKALYTICS_CONFIG": str(s3_config.path)})
    os.close(terminal)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:          # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        stdout = process.communicate(timeout=120)[0]
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
    screen = shown.decode(errors="replace")
    assert process.returncode == 0, screen
    assert re.search(r"3/3 \[.*objects/s", screen), screen                 # the bar counts objects
    committed = [line for line in screen.splitlines() if "batch 1 committed" in line]
    assert committed, screen
    for line in committed:   # what the terminal shows after the last carriage return starts with the log time
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line.split("\r")[-1]), repr(line)
    assert stdout.count("s3_access_logs backfill: 1 batches, 3 records") == 1 and "3 records, 3 new, 0 already" not in screen


def test_failures_are_one_line_with_non_zero_exit(tmp_path, s3_config):
    unknown = cli(s3_config.path, "collect", "myspace")
    assert unknown.returncode != 0
    assert unknown.stderr.strip().count("\n") == 0 and "unknown source 'myspace'" in unknown.stderr
    backwards = cli(s3_config.path, "backfill", "s3_access_logs", "--from", "2026-02-01", "--to", "2026-01-01")
    assert backwards.returncode != 0 and "before" in backwards.stderr
    bad_date = cli(s3_config.path, "backfill", "s3_access_logs", "--from", "last tuesday")
    assert bad_date.returncode != 0 and "YYYY-MM-DD" in bad_date.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[warehouse]\ntimezone = 'Mars/Olympus'\n")
    config_error = cli(broken, "status")
    assert config_error.returncode != 0
    assert config_error.stderr.strip().count("\n") == 0
    assert "broken.toml" in config_error.stderr and "warehouse.timezone" in config_error.stderr
    missing = cli(tmp_path / "nope.toml", "status")
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_a_source_that_cannot_be_reached_fails_the_run_and_is_counted(tmp_path):
    cfg = make_config(tmp_path, s3_access_logs={"bucket": "b", "endpoint_url": "http://127.0.0.1:9",
                                                "access_key_id_env": "X_KEY", "secret_access_key_env": "X_SECRET"})
    failed = cli(cfg.path, "collect", "s3_access_logs", env={"X_KEY": "AKIDEXAMPLEKEY", "X_SECRET": "sekrit-value-123"})
    assert failed.returncode != 0
    assert "cannot reach S3" in failed.stderr and failed.stderr.strip().splitlines()[-1].startswith("error:")
    status = json.loads(cli(cfg.path, "status", "--json").stdout)["sources"]["s3_access_logs"]
    assert status["last_status"] == "failed" and status["consecutive_failures"] == 1
    for secret in ("AKIDEXAMPLEKEY", "sekrit-value-123"):   # credentials never reach logs or the run log
        assert secret not in failed.stderr and secret not in json.dumps(status)
