"""The YouTube collector against the YouTube simulator (OAuth token endpoint, Analytics reports.query, Data API
channels.list) over real HTTP through google-api-python-client, into a real warehouse: the first run backfills
history in chunks and counts a missing day as 0 only once YouTube has reported a later one, later runs re-ask
the days YouTube still revises, a 30-day outage is caught up to exactly what a never-stopped run stored, the
subscriber history is rebuilt backwards from the latest exact count, throttling, server errors, timeouts and
expired access tokens are retried, operator errors name the config key, and malformed answers are
quarantined instead of failing the run."""
from __future__ import annotations

import json
import time as clock
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from collectors import http
from collectors.base import SourceError
from conftest import FIXTURES, make_config
from warehouse.writer import Writer
from scheduler import run_source
from simulators.youtube import CHANNEL_ID, YouTubeSimulator
from warehouse import ingest, queries
from warehouse.lake import Reader
from warehouse.state import State

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)           # 09:00 in Pacific time: YouTube's day is 2026-03-02
TODAY = date(2026, 3, 2)
LAUNCH = TODAY - timedelta(days=250)                    # the channel's first day; private on days 200..202
CREDENTIALS = {"YT_TEST_CLIENT_ID": "1234-sim.apps.googleusercontent.com", "YT_TEST_CLIENT_SECRET": "GOCSPX-sim",
               "YT_TEST_REFRESH_TOKEN": "1//0sim-refresh-token"}
METRICS = {"views": "youtube.views", "subscribers_gained": "youtube.subscribers_gained",
           "subscribers_lost": "youtube.subscribers_lost"}


@pytest.fixture
def sim():
    with YouTubeSimulator(start=LAUNCH, now=NOW, client_id=CREDENTIALS["YT_TEST_CLIENT_ID"],
                          client_secret=CREDENTIALS["YT_TEST_CLIENT_SECRET"],
                          refresh_token=CREDENTIALS["YT_TEST_REFRESH_TOKEN"]) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def youtube_config(tmp_path, sim, **settings):
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_config(tmp_path, youtube={
        "analytics_url": sim.url, "data_api_url": sim.url, "token_url": f"{sim.url}/token",
        "client_id_env": "YT_TEST_CLIENT_ID", "client_secret_env": "YT_TEST_CLIENT_SECRET",
        "refresh_token_env": "YT_TEST_REFRESH_TOKEN", **settings})


def effective(writer) -> dict[tuple[str, date], float]:
    """The value the cube uses for each (metric, day): the latest fetch."""
    rows = writer.con.execute("SELECT metric, ts, arg_max(value, fetched_at) FROM lake.raw_youtube GROUP BY ALL")
    return {(metric, ts.date()): value for metric, ts, value in rows.fetchall()}


def reported(sim, first: date, last: date) -> dict[tuple[str, date], float]:
    """What YouTube reports now for [first, last]: each row, and 0 for a day without a row before the newest row."""
    newest = max((d for d in _days(first, last) if sim.reported(d)), default=None)
    expected = {}
    for day in _days(first, min(last, newest) if newest else first - timedelta(days=1)):
        row = sim.reported(day)
        for field, metric in METRICS.items():
            expected[(metric, day)] = getattr(row, field) if row else 0
    return expected


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def series(cfg, metric: str, first: date, last: date, grain: str = "day") -> dict[str, float]:
    reader = Reader(cfg)
    try:
        answer = queries.metric_series(reader.cursor(), cfg, queries.SeriesRequest(metric, grain, first, last))
    finally:
        reader.close()
    return {p["start"]: p["value"] for p in answer["points"]}


def test_first_run_backfills_in_chunks_and_counts_missing_days_only_once_a_later_day_is_reported(tmp_path, sim):
    writer = Writer(youtube_config(tmp_path, sim, history_days=260, chunk_days=60))
    try:
        summary = run_source(writer, "youtube")
        first_day, newest_reported = TODAY - timedelta(days=260), TODAY - timedelta(days=2)
        assert summary.quarantined == 0 and summary.batches == 5

        # Oldest first, consecutive chunks of at most chunk_days, up to yesterday.
        asked = sim.report_requests()
        assert asked[0][0] == first_day and asked[-1][1] == TODAY - timedelta(days=1)
        assert all(b[0] == a[1] + timedelta(days=1) for a, b in zip(asked, asked[1:]))
        assert all((last - first).days < 60 for first, last in asked)

        stored = effective(writer)
        assert stored == reported(sim, first_day, TODAY - timedelta(days=1))
        # Before the launch and while the channel was private YouTube has no rows: stored as explicit zeros.
        assert stored[("youtube.views", LAUNCH - timedelta(days=1))] == 0
        assert stored[("youtube.views", LAUNCH + timedelta(days=201))] == 0
        # Yesterday is not reported yet: nothing stored for it, not even a zero.
        assert ("youtube.views", TODAY - timedelta(days=1)) not in stored
        # The cursor stops where YouTube stops revising days (late_days = 3).
        assert writer.cursor("youtube") == {"final_through": "2026-02-26"}

        views = series(writer.cfg, "youtube.views", first_day, TODAY)
        assert views == {d.isoformat(): stored.get(("youtube.views", d), 0) for d in _days(first_day, TODAY)}

        # Subscribers: the exact count now, and each earlier day rebuilt backwards from it with the net gains.
        now_count = sim.counts()[0]
        net = {d: stored[("youtube.subscribers_gained", d)] - stored[("youtube.subscribers_lost", d)]
               for d in _days(first_day, newest_reported)}
        subscribers = series(writer.cfg, "youtube.subscribers", first_day, TODAY)
        assert subscribers[TODAY.isoformat()] == now_count
        for day in _days(first_day, newest_reported):
            assert subscribers[day.isoformat()] == now_count - sum(v for d, v in net.items() if d > day)
        # The shape is exact; the level is off only by what YouTube has not reported yet (yesterday, today so
        # far, and the provisional shortfall of the two newest rows): a handful of subscribers.
        truth = {d: sim.history.subscribers_through_day(d) for d in _days(first_day, TODAY - timedelta(days=4))}
        offsets = {subscribers[d.isoformat()] - count for d, count in truth.items()}
        assert len(offsets) == 1 and 0 <= offsets.pop() <= 40
    finally:
        writer.close()


def test_later_runs_ask_only_from_the_cursor_and_replace_provisional_days(tmp_path, sim):
    writer = Writer(youtube_config(tmp_path, sim, history_days=30))
    try:
        run_source(writer, "youtube")
        provisional_day = TODAY - timedelta(days=2)
        first_views = effective(writer)[("youtube.views", provisional_day)]

        sim.set_time(NOW + timedelta(days=1))
        asked_before = len(sim.report_requests())
        second = run_source(writer, "youtube")
        assert sim.report_requests()[asked_before:] == [(date(2026, 2, 27), TODAY)]
        assert writer.cursor("youtube") == {"final_through": "2026-02-27"}
        stored = effective(writer)
        assert stored[("youtube.views", provisional_day)] > first_views      # YouTube revised it upward
        assert stored == reported(sim, TODAY - timedelta(days=30), TODAY)
        assert second.inserted == 3 * 3 + 1          # three days re-asked or new, three metrics, one snapshot

        again = run_source(writer, "youtube")          # the same moment again: nothing new to store
        assert again.inserted == 0 and again.duplicates == again.records

        # A backfill re-reads an explicit range, earlier than the history, and leaves the cursor alone.
        older = (TODAY - timedelta(days=45), TODAY - timedelta(days=31))
        run_source(writer, "youtube", start=older[0], end=older[1])
        assert sim.report_requests()[-1] == older
        assert effective(writer) == reported(sim, older[0], TODAY)
        assert writer.cursor("youtube") == {"final_through": "2026-02-27"}
    finally:
        writer.close()


def test_a_30_day_outage_is_caught_up_to_what_a_never_stopped_run_stored(tmp_path, sim):
    """Two warehouses read the same simulated channel: one never stops (it polls every week, which
    leaves no day unread since every run asks from its cursor; polling more often only costs test time),
    the other stops for 30 days after its first run and then catches up in chunks. YouTube keeps every
    day, so the report rows (their latest fetch) and the day series of views and subscribers must be
    identical: no gap, no duplicate. Only the channel snapshots differ (a count cannot be taken in the
    past); the subscriber history hangs off the latest one, which both took at the same moment."""
    settings = {"history_days": 10, "chunk_days": 7}
    steady = Writer(youtube_config(tmp_path / "steady", sim, **settings))
    resumed = Writer(youtube_config(tmp_path / "resumed", sim, **settings))
    try:
        restart = NOW + timedelta(days=31)
        for day in (0, 7, 14, 21, 28, 31):
            sim.set_time(NOW + timedelta(days=day))
            run_source(steady, "youtube")
        for moment in (NOW, restart):
            sim.set_time(moment)
            asked_before = len(sim.report_requests())
            summary = run_source(resumed, "youtube")
        catch_up = sim.report_requests()[asked_before:]
        assert catch_up[0][0] == date(2026, 2, 27) and catch_up[-1][1] == restart.date() - timedelta(days=1)
        assert len(catch_up) == summary.batches == 5 and all((b - a).days < 7 for a, b in catch_up)

        assert effective(resumed) == effective(steady) == reported(sim, NOW.date() - timedelta(days=10), restart.date())
        first, last = NOW.date() - timedelta(days=10), restart.date()
        for metric in ("youtube.views", "youtube.subscribers"):
            assert series(resumed.cfg, metric, first, last) == series(steady.cfg, metric, first, last)
        views = series(resumed.cfg, "youtube.views", first, last)
        assert all(views[d.isoformat()] > 0 for d in _days(NOW.date(), last - timedelta(days=2)))    # no gap
        latest = "SELECT ts, subscribers FROM lake.raw_youtube_channel ORDER BY ts DESC LIMIT 1"
        assert resumed.con.execute(latest).fetchone() == steady.con.execute(latest).fetchone()
    finally:
        steady.close()
        resumed.close()


def test_a_reporting_delay_is_waited_out_not_filled_with_zeros(tmp_path, sim):
    sim.reporting_delay(9, until=NOW + timedelta(hours=1))
    writer = Writer(youtube_config(tmp_path, sim, history_days=30))
    try:
        run_source(writer, "youtube")
        delayed_from = TODAY - timedelta(days=8)
        assert max(day for _, day in effective(writer)) == delayed_from - timedelta(days=1)
        assert writer.cursor("youtube") == {"final_through": "2026-02-21"}

        sim.set_time(NOW + timedelta(hours=2))             # the delayed days arrive
        run_source(writer, "youtube")
        assert effective(writer) == reported(sim, TODAY - timedelta(days=30), TODAY)
        zeros = writer.con.execute(
            "SELECT count(*) FROM lake.raw_youtube WHERE metric = 'youtube.views' AND value = 0 AND ts >= ?",
            [datetime.combine(delayed_from, datetime.min.time(), UTC)]).fetchone()[0]
        assert zeros == 0
        assert writer.cursor("youtube") == {"final_through": "2026-02-26"}
    finally:
        writer.close()


def test_throttling_server_errors_timeouts_and_expired_tokens_are_retried(tmp_path, sim):
    sim.inject_faults(1, status=503, path="/token")                      # google-auth retries this itself
    sim.inject_faults(1, status=0, path="/youtube/v3/channels")          # a dropped connection
    sim.inject_faults(1, status=500, path="/youtube/v3/channels")
    sim.inject_faults(1, status=429, retry_after=1, path="/v2/reports")
    sim.inject_faults(1, status=403, path="/v2/reports", body={"error": {
        "code": 403, "message": "Rate Limit Exceeded", "status": "PERMISSION_DENIED",
        "errors": [{"message": "Rate Limit Exceeded", "domain": "usageLimits", "reason": "rateLimitExceeded"}]}})
    sim.inject_faults(1, status=-1, seconds=2.5, path="/v2/reports")     # longer than timeout_seconds
    sim.inject_faults(1, status=401, path="/v2/reports")                 # the access token expired: refresh
    writer = Writer(youtube_config(tmp_path, sim, history_days=10, timeout_seconds=1))
    try:
        started = clock.monotonic()
        summary = run_source(writer, "youtube")
        assert clock.monotonic() - started >= 1.0                        # Retry-After was honoured
        assert not sim.faults
        assert summary.quarantined == 0
        assert sim.requests.count("/token") >= 3                         # first token, its retry, the refresh
        assert effective(writer) == reported(sim, TODAY - timedelta(days=10), TODAY)
        assert State(writer.cfg).recent_runs("youtube")[0]["status"] == "ok"
    finally:
        writer.close()


def test_operator_errors_fail_the_run_with_the_config_key_and_keep_secrets_out(tmp_path, sim, monkeypatch):
    writer = Writer(youtube_config(tmp_path, sim, history_days=10))
    try:
        monkeypatch.delenv("YT_TEST_CLIENT_SECRET")
        with pytest.raises(SourceError, match=r"client_secret_env \(\$YT_TEST_CLIENT_SECRET\)"):
            run_source(writer, "youtube")
        monkeypatch.setenv("YT_TEST_CLIENT_SECRET", CREDENTIALS["YT_TEST_CLIENT_SECRET"])

        sim.revoke()
        with pytest.raises(SourceError, match="invalid_grant.*refresh_token_env"):
            run_source(writer, "youtube")
        failed = State(writer.cfg).recent_runs("youtube")[0]
        assert failed["status"] == "failed" and "refresh_token_env" in failed["error"]
        assert not any(secret in failed["error"] for secret in CREDENTIALS.values())
        sim.refresh_token = CREDENTIALS["YT_TEST_REFRESH_TOKEN"]

        sim.inject_faults(1, status=403, path="/youtube/v3/channels")    # quotaExceeded: waiting won't help today
        with pytest.raises(SourceError, match="quota is used up.*client_id_env"):
            run_source(writer, "youtube")
        recorded = json.loads((FIXTURES / "api_responses" / "google_api_error_403.json").read_text())
        sim.inject_faults(1, status=403, path="/v2/reports", body=recorded)      # a grant without the scope
        with pytest.raises(SourceError, match="403 insufficientPermissions.*refresh_token_env.*channel_id"):
            run_source(writer, "youtube")

        sim.inject_faults(5, status=503, retry_after=0, path="/v2/reports")
        with pytest.raises(http.Unavailable, match="HTTP 503"):
            run_source(writer, "youtube")
        run_source(writer, "youtube")                                    # the next run recovers everything
        assert effective(writer) == reported(sim, TODAY - timedelta(days=10), TODAY)
    finally:
        writer.close()

    other = Writer(youtube_config(tmp_path / "other", sim, channel_id="UC" + "x" * 22))
    try:
        with pytest.raises(SourceError, match="no channel 'UCx+'.*channel_id"):
            run_source(other, "youtube")
    finally:
        other.close()


def test_malformed_answers_are_quarantined_and_never_counted_as_zero(tmp_path, sim):
    bad_count, short_row = TODAY - timedelta(days=6), TODAY - timedelta(days=5)
    sim.raw_rows[bad_count] = [bad_count.isoformat(), "lots", 3, 1]
    sim.raw_rows[short_row] = [short_row.isoformat(), 120]
    writer = Writer(youtube_config(tmp_path, sim, history_days=10))
    try:
        summary = run_source(writer, "youtube")
        assert summary.quarantined == 2
        reasons = [r[0] for r in writer.con.execute("SELECT reason FROM lake.quarantine ORDER BY reason").fetchall()]
        assert reasons == ["YouTube Analytics row: a row has 2 cells for 4 columns",
                           "YouTube Analytics row: views is not a count: 'lots'"]
        stored = effective(writer)
        assert ("youtube.views", bad_count) not in stored and ("youtube.views", short_row) not in stored
        assert stored[("youtube.views", TODAY - timedelta(days=4))] > 0

        # A table without columnHeaders: nothing of its range is known, the cursor stays, the run goes on.
        sim.raw_rows.clear()
        sim.set_time(NOW + timedelta(days=1))
        sim.inject_faults(1, status=200, path="/v2/reports", body={"kind": "youtubeAnalytics#resultTable",
                                                                   "rows": [["2026-02-28", 1, 2, 3]]})
        cursor = writer.cursor("youtube")
        assert run_source(writer, "youtube").quarantined == 1
        assert writer.cursor("youtube") == cursor
        run_source(writer, "youtube")
        assert writer.cursor("youtube") == {"final_through": "2026-02-27"}

        # A channel that hides its count: quarantined, and the subscriber history keeps its last anchor.
        anchored = series(writer.cfg, "youtube.subscribers", TODAY, TODAY)
        sim.hidden_subscribers = True
        sim.set_time(NOW + timedelta(days=1, hours=1))
        assert run_source(writer, "youtube").quarantined == 1
        assert writer.con.execute("SELECT subscribers, hidden FROM lake.raw_youtube_channel ORDER BY ts DESC "
                                  "LIMIT 1").fetchone() == (None, True)
        assert series(writer.cfg, "youtube.subscribers", TODAY, TODAY) == anchored
    finally:
        writer.close()


def test_the_simulator_answers_in_the_shapes_of_the_recorded_fixtures(sim):
    token = requests.post(f"{sim.url}/token", data={
        "grant_type": "refresh_token", "client_id": CREDENTIALS["YT_TEST_CLIENT_ID"],
        "client_secret": CREDENTIALS["YT_TEST_CLIENT_SECRET"],
        "refresh_token": CREDENTIALS["YT_TEST_REFRESH_TOKEN"]}, timeout=10).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    fixture = json.loads((FIXTURES / "api_responses" / "youtube_data_channels_list_statistics.json").read_text())
    answer = requests.get(f"{sim.url}/youtube/v3/channels", params={"part": "statistics", "id": CHANNEL_ID},
                          headers=auth, timeout=10).json()
    assert answer.keys() == fixture.keys() and answer["items"][0].keys() == fixture["items"][0].keys()
    assert set(answer["items"][0]["statistics"]) == set(fixture["items"][0]["statistics"]) - {"commentCount"}
    assert all(isinstance(answer["items"][0]["statistics"][k], str) for k in ("viewCount", "subscriberCount"))
    empty = json.loads((FIXTURES / "api_responses" / "youtube_data_channels_list_empty.json").read_text())
    assert requests.get(f"{sim.url}/youtube/v3/channels", params={"part": "statistics", "id": "UC" + "y" * 22},
                        headers=auth, timeout=10).json().keys() == empty.keys()
    report = requests.get(f"{sim.url}/v2/reports", headers=auth, timeout=10, params={
        "ids": "channel==MINE", "startDate": "2026-02-20", "endDate": "2026-02-26",
        "metrics": "views,likes,subscribersGained", "dimensions": "day"}).json()
    recorded = json.loads((FIXTURES / "api_responses" / "youtube_analytics_reports_query_subscribers.json").read_text())
    assert report["columnHeaders"] == recorded["columnHeaders"] and len(report["rows"]) == 7
    denied = requests.get(f"{sim.url}/v2/reports", params={"ids": "channel==MINE"}, timeout=10)
    error = json.loads((FIXTURES / "api_responses" / "google_api_error_403.json").read_text())
    assert denied.status_code == 401 and denied.json()["error"].keys() == error["error"].keys()
