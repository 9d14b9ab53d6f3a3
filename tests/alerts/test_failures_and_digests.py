"""Failure alerts from the run log and digests from the warehouse, read back from a real SMTP server."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from alert_support import FIRST_DAY, World, day
from notify_support import smtp_server  # noqa: F401 - fixture
from tests_support import record_run
from alerts.digests import due
from config import AlertRule
from alerts.failures import config_key
from alerts.outbox import notify_state
from warehouse import queries
from warehouse.dashboards_state import Dashboards, WidgetSpec
from warehouse.lake import Reader
from warehouse.queries import SeriesRequest

UTC = timezone.utc
OPS = "ops@example.com"
TOKEN_ERROR = "GitHub answered 401 Bad credentials: check [sources.github] token_env ($GITHUB_TOKEN)"


@pytest.fixture
def world(tmp_path, smtp_server):
    made = []

    def make(**sections) -> World:
        made.append(World(tmp_path, smtp_server, **sections))
        return made[-1]
    yield make
    for w in made:
        w.close()


def run(w: World, source: str, error: str | None = None) -> None:
    record_run(w.state, source, "collect", error=error)


def test_a_source_failing_three_times_alerts_once_reminds_once_a_day_and_recovers_once(world):
    w = world(sources={"github": {"repos": ["o/r"], "schedule": "every 1 hour"}},
              alerts={"failures": {"recipients": [OPS], "after": 3}})
    run(w, "github")
    last_success = w.state.source_status()["github"]["last_success_at"]
    start = datetime.now(UTC)
    run(w, "github", TOKEN_ERROR)
    run(w, "github", TOKEN_ERROR)
    w.cycle(start)
    assert w.subjects() == []                         # two failures are not `after` = 3
    run(w, "github", TOKEN_ERROR)
    for minutes in (1, 2, 60, 23 * 60):
        w.cycle(start + timedelta(minutes=minutes))
    assert w.subjects(OPS) == ["Source failing: github"]
    for hours in (25, 26, 47):                        # the second day: one reminder
        w.cycle(start + timedelta(hours=hours))
    for hours in (49, 70):                            # the third day: one more
        w.cycle(start + timedelta(hours=hours))
    assert w.subjects(OPS) == ["Source failing: github", "Source failing: github (reminder 1: still down)",
                               "Source failing: github (reminder 2: still down)"]
    body = w.smtp.inbox.messages[0].get_body(("plain",)).get_content()
    assert "The source github failed 3 runs in a row." in body and f"Error: {TOKEN_ERROR}" in body
    assert "Config key to check: [sources.github] token_env" in body
    assert f"Last success: {datetime.fromisoformat(last_success):%Y-%m-%d %H:%M} UTC" in body

    run(w, "github")
    for hours in (71, 72, 100):
        w.cycle(start + timedelta(hours=hours))
    assert w.subjects(OPS)[3:] == ["Source recovered: github"]
    events = notify_state(w.state).alert_events("failures:github")
    assert [e["kind"] for e in reversed(events)] == ["fired", "recovered"]


@pytest.mark.parametrize("error, key", [
    (TOKEN_ERROR, "[sources.github] token_env"),
    ("/etc/caskalytics.toml: sources.s3_access_logs.bucket is required but missing", "[sources.s3_access_logs] bucket"),
    ("ConnectionError: connection refused", None)])
def test_the_config_key_to_fix_is_read_from_the_error(error, key):
    assert config_key(error) == key


def test_digests_are_due_at_their_local_time_for_the_period_that_ended(world):
    w = world(warehouse={"timezone": "Europe/Berlin"}, alerts={"digests": {"daily_at": "08:00", "weekly_day": "monday"}})
    monday_0730_utc = datetime(2025, 1, 13, 7, 30, tzinfo=UTC)       # 08:30 in Berlin
    assert due(w.cfg, monday_0730_utc) == [("daily", FIRST_DAY + timedelta(days=11), FIRST_DAY + timedelta(days=11)),
                                           ("weekly", FIRST_DAY + timedelta(days=5), FIRST_DAY + timedelta(days=11))]
    before = datetime(2025, 1, 13, 6, 30, tzinfo=UTC)                 # 07:30 in Berlin: Sunday's still
    assert due(w.cfg, before) == [("daily", FIRST_DAY + timedelta(days=10), FIRST_DAY + timedelta(days=10))]


def test_a_digest_carries_the_apis_numbers_the_periods_alerts_and_every_sources_health(world):
    w = world(sources={"s3_access_logs": {"bucket": "b"}, "github": {"repos": ["o/r"]}})
    w.cfg.alerts.rules = [AlertRule.model_validate({"name": "low", "metric": "downloads", "below": 4})]
    notify_state(w.state).subscribe("growth@example.com", "email", "digest:daily", datetime.now(UTC))
    Dashboards(w.state).create("Marketing funnel", [WidgetSpec("line", "downloads", grain="day")])
    w.arrive(5, 7, 9, 11, 13, 15, 17, 19, 3, 30)          # days 0..9; the digest reports day 8 (3 downloads)
    run(w, "github", TOKEN_ERROR)
    at_nine = datetime.combine(FIRST_DAY + timedelta(days=9), datetime.min.time(), UTC) + timedelta(hours=9)
    w.cycle(at_nine)
    w.cycle(at_nine + timedelta(minutes=1))
    [mail] = [m for m in w.smtp.inbox.to("growth@example.com") if "digest" in m["Subject"]]
    assert mail["Subject"].strip() == f"Caskalytics daily digest for {FIRST_DAY + timedelta(days=8):%A %Y-%m-%d}"
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    reader = Reader(w.cfg)
    try:
        api = queries.series_json(queries.series_frame(reader.cursor(), w.cfg, SeriesRequest(
            "downloads", "day", FIRST_DAY + timedelta(days=8), FIRST_DAY + timedelta(days=8), compare="wow")))
    finally:
        reader.close()
    [point] = api["points"]
    line = re.search(r"^  downloads: (\S+) \(previous (\S+), (\S+)\)$", text, re.M)
    assert line, text
    assert (int(line[1]), int(line[2])) == (point["value"], point["previous"]) == (3, 7)
    assert line[3] == "-57.1%"
    assert f"fired: Alert: low: downloads 3 in {day(8)}" in text        # the period's alert
    assert "github: failing" in text and "Bad credentials" in text and "s3_access_logs: never run" in text
    html_part = mail.get_body(("html",)).get_content()
    assert "<table" in html_part and "<b>3</b>" in html_part
    [report] = list(mail.iter_attachments())                          # the dashboard's PDF for the period
    assert report.get_content_type() == "application/pdf" and report.get_content().startswith(b"%PDF")
    assert report.get_filename() == f"caskalytics-daily-{FIRST_DAY + timedelta(days=8)}.pdf"
    w.cycle(at_nine + timedelta(hours=3))
    assert len([m for m in w.smtp.inbox.messages if "digest" in m["Subject"]]) == 1
