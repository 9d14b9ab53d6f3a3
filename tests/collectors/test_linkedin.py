"""The LinkedIn collector against the LinkedIn simulator over real HTTP, into a real warehouse: the exact
follower count and the daily gains are stored, `linkedin.followers` is today's exact count with the history
reconstructed backwards from it, the first run stops at LinkedIn's 12 months, a 30-day outage is caught up
in chunks to the same warehouse a never-stopped run builds, throttling and server errors are retried, an
expired token or a retired API version fails the run naming the config key, and malformed or unusable
answers are quarantined without losing days."""
from __future__ import annotations

import re
import time as clock
from datetime import date, datetime, timedelta, timezone

import pytest

from collectors.base import SourceError
from conftest import make_config
from warehouse.writer import Writer
from scheduler import run_source
from simulators.linkedin import LinkedInSimulator
from warehouse import ingest, queries
from warehouse.lake import Reader
from warehouse.state import State

UTC = timezone.utc
ORG = "2414183"
URN = f"urn:li:organization:{ORG}"
NOW = datetime(2026, 5, 20, 9, 30, tzinfo=UTC)      # statistics of May 18 are out, May 19's not yet (10:00)
TOKEN_ENV = "CASKALYTICS_TEST_LINKEDIN_TOKEN"
TOKEN = "AQV-test-token"


@pytest.fixture
def sim():
    with LinkedInSimulator([ORG], now=NOW, token=TOKEN) as simulator:
        yield simulator


def linkedin_config(path, sim, **overrides):
    return make_config(path, linkedin={"organization_id": ORG, "api_url": sim.url, "access_token_env": TOKEN_ENV,
                                       "linkedin_version": "202604", "history_days": 30, "chunk_days": 10,
                                       **overrides})


@pytest.fixture
def writer(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    writer = Writer(linkedin_config(tmp_path, sim))
    yield writer
    writer.close()


def gains(writer) -> dict[date, tuple[int, int]]:
    """The effective (latest fetched) gains per day."""
    return {ts.date(): (organic, paid) for ts, organic, paid in writer.con.execute("""
        SELECT ts, arg_max(organic_gain, fetched_at), arg_max(paid_gain, fetched_at)
        FROM lake.raw_linkedin_follower_gains GROUP BY ts""").fetchall()}


def followers(cfg, start: date, end: date, grain: str = "day") -> dict[str, float]:
    reader = Reader(cfg)
    try:
        series = queries.metric_series(reader.cursor(), cfg, queries.SeriesRequest("linkedin.followers", grain,
                                                                                   start, end))
    finally:
        reader.close()
    return {p["start"]: p["value"] for p in series["points"]}


def statistics_starts(requests: list[str]) -> list[date]:
    return [datetime.fromtimestamp(int(m.group(1)) / 1000, UTC).date()
            for path in requests if (m := re.search(r"timeRange:\(start:(\d+),", path))]


def test_the_exact_count_and_daily_gains_give_the_follower_history(writer, sim):
    summary = run_source(writer, "linkedin")
    history = sim.histories[ORG]
    assert summary.quarantined == 0
    newest = NOW.date() - timedelta(days=2)                  # yesterday's statistics are not out yet
    first = NOW.date() - timedelta(days=30)
    expected = {first + timedelta(days=n): (history.day(first + timedelta(days=n)).organic,
                                            history.day(first + timedelta(days=n)).paid)
                for n in range((newest - first).days + 1)}
    assert gains(writer) == expected
    exact = history.followers_at(NOW)
    assert writer.con.execute("SELECT ts, organization, followers FROM lake.raw_linkedin_followers").fetchall() == [
        (NOW, URN, exact)]
    # Rest.li 2.0: the URN encoded, the structure not; one request per 10-day chunk, oldest first.
    stats = [path for path in sim.requests if "FollowerStatistics" in path]
    assert all("organizationalEntity=urn%3Ali%3Aorganization%3A2414183&timeIntervals=(timeRange:(start:" in path
               for path in stats)
    assert statistics_starts(stats) == [first + timedelta(days=10 * n) for n in range(3)]

    series = followers(writer.cfg, first - timedelta(days=1), NOW.date())
    # Today is exact; each earlier day is the count minus the gains of the days after it.
    assert series[NOW.date().isoformat()] == exact
    for day in expected:
        later = sum(sum(g) for d, g in expected.items() if d > day)
        assert series[day.isoformat()] == exact - later
    assert series[(first - timedelta(days=1)).isoformat()] is None                    # before the history: unknown
    assert followers(writer.cfg, NOW.date(), NOW.date(), "year") == {"2026-01-01": exact}

    asked = len(sim.requests)
    sim.advance(hours=3)                                     # May 19's statistics come out at 10:00
    run_source(writer, "linkedin")
    # Never pull twice: one count, and one statistics request for the late days and the new one.
    assert statistics_starts(sim.requests[asked:]) == [newest - timedelta(days=1)]
    assert max(gains(writer)) == NOW.date() - timedelta(days=1)
    assert followers(writer.cfg, NOW.date(), NOW.date()) == {NOW.date().isoformat(): history.followers_at(sim.now())}


def test_the_first_run_stops_at_linkedins_twelve_months_and_follows_pages(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    writer = Writer(linkedin_config(tmp_path, sim, history_days=400, chunk_days=122))   # 400 > 12 months
    try:
        summary = run_source(writer, "linkedin")
        assert summary.quarantined == 0 and summary.batches == 3
        stored = gains(writer)
        assert min(stored) == NOW.date() - timedelta(days=364)
        assert len(stored) == 363                            # every complete day of the 12 months
        # Ten elements a page, each next page asked by the answer's link: 122, 122 and 119 days out.
        pages = [path for path in sim.requests if "FollowerStatistics" in path]
        assert len(pages) == 13 + 13 + 12 and sum("&start=" in path for path in pages) == len(pages) - 3
    finally:
        writer.close()


def test_a_30_day_outage_is_caught_up_in_chunks_to_what_a_never_stopped_run_stored(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def warehouse(name: str, run_days: list[int]) -> Writer:
        (tmp_path / name).mkdir()
        writer = Writer(linkedin_config(tmp_path / name, sim, history_days=10))
        for day in run_days:
            sim.set_time(NOW + timedelta(days=day))
            run_source(writer, "linkedin")
        return writer

    steady = warehouse("steady", [0, 7, 14, 21, 28, 31])             # a run every week, never stopped
    asked = len(sim.requests)
    stopped = warehouse("stopped", [0, 31])
    try:
        restart = statistics_starts(sim.requests[asked:])[1:]          # the first run asked one chunk
        assert restart == sorted(restart) and len(restart) == 4       # 34 days, 10 a chunk, oldest first
        assert gains(stopped) == gains(steady)
        latest = "SELECT ts, followers FROM lake.raw_linkedin_followers ORDER BY ts DESC LIMIT 1"
        assert stopped.con.execute(latest).fetchall() == steady.con.execute(latest).fetchall()
        span = (NOW.date() - timedelta(days=31), (NOW + timedelta(days=31)).date())
        assert followers(stopped.cfg, *span) == followers(steady.cfg, *span)
        assert stopped.cursor("linkedin") == steady.cursor("linkedin")
    finally:
        steady.close()
        stopped.close()


def test_throttling_server_errors_and_dropped_connections_are_retried(writer, sim):
    sim.inject_faults(1, status=429, retry_after=1)
    sim.inject_faults(1, status=0)
    sim.inject_faults(1, status=503)
    started = clock.monotonic()
    summary = run_source(writer, "linkedin")
    assert clock.monotonic() - started >= 1.0                        # Retry-After was honoured
    assert not sim.faults and summary.quarantined == 0 and summary.batches == 3
    assert State(writer.cfg).recent_runs("linkedin")[0]["status"] == "ok"


def test_an_expired_token_fails_the_run_naming_the_config_key(writer, sim):
    sim.token_expired = True
    with pytest.raises(SourceError, match=f"access_token_env.*{TOKEN_ENV}.*60 days"):
        run_source(writer, "linkedin")
    failed = State(writer.cfg).recent_runs("linkedin")[0]
    assert failed["status"] == "failed" and "The token used in the request has expired" in failed["error"]
    assert TOKEN not in failed["error"]


def test_a_retired_api_version_and_a_missing_token_name_their_config_keys(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    writer = Writer(linkedin_config(tmp_path, sim, linkedin_version="202301"))
    try:
        with pytest.raises(SourceError, match=r"NONEXISTENT_VERSION.*\[sources.linkedin\] linkedin_version"):
            run_source(writer, "linkedin")
        monkeypatch.delenv(TOKEN_ENV)
        with pytest.raises(SourceError, match=f"set \\${TOKEN_ENV}.*access_token_env"):
            run_source(writer, "linkedin")
    finally:
        writer.close()


def test_malformed_elements_are_quarantined_and_the_rest_stored(writer, sim):
    sim.injected = [
        {"timeRange": {"start": 1779000000000, "end": 1779086400000}, "followerGains": {"organicFollowerGain": 1,
                                                                                        "paidFollowerGain": 0}},
        {"timeRange": {"start": 1778976000000, "end": 1779062400000}, "followerGains": {"organicFollowerGains": 4}},
        {"timeRange": {"start": 1778976000000, "end": 1779062400000},
         "followerGains": {"organicFollowerGain": -2, "paidFollowerGain": 0}},
        "not an element",
    ]
    summary = run_source(writer, "linkedin")
    reasons = [r[0] for r in writer.con.execute("SELECT reason FROM lake.quarantine ORDER BY reason").fetchall()]
    assert summary.quarantined == len(reasons) == 4 * 3              # the four, in each of the three answers
    for expected in ("is not one UTC day", "followerGains.organicFollowerGain is missing",
                     "followerGains.organicFollowerGain is not a count", "not a JSON object"):
        assert sum(expected in reason for reason in reasons) == 3
    assert len(gains(writer)) == 29


def test_an_unusable_or_empty_answer_loses_no_day(writer, sim):
    run_source(writer, "linkedin")
    cursor = writer.cursor("linkedin")
    sim.advance(days=1)
    sim.inject_faults(1, status=200, body=b"<html>LinkedIn is briefly unavailable</html>", only="FollowerStatistics")
    summary = run_source(writer, "linkedin")
    assert summary.quarantined == 1 and writer.cursor("linkedin") == cursor     # asked again
    reason, origin = writer.con.execute("SELECT reason, origin FROM lake.quarantine").fetchone()
    assert "not JSON" in reason and "timeIntervals=(timeRange:" in origin

    sim.advance(days=1)
    sim.inject_faults(1, status=200, body={"paging": {"start": 0, "count": 10, "links": []}, "elements": []},
                      only="FollowerStatistics")
    run_source(writer, "linkedin")                       # an empty answer: nothing stored, the cursor moves on
    sim.advance(days=1)
    run_source(writer, "linkedin")                       # ... and the late days are asked again
    history, first = sim.histories[ORG], NOW.date() - timedelta(days=30)
    newest = sim.now().date() - timedelta(days=2)
    assert gains(writer) == {first + timedelta(days=n): (history.day(first + timedelta(days=n)).organic,
                                                         history.day(first + timedelta(days=n)).paid)
                             for n in range((newest - first).days + 1)}


def test_backfill_reads_the_range_linkedin_still_serves_and_leaves_the_cursor(writer, sim):
    summary = run_source(writer, "linkedin", start=date(2025, 3, 1), end=date(2025, 6, 30))
    assert writer.cursor("linkedin") is None
    stored = gains(writer)
    assert min(stored) == NOW.date() - timedelta(days=364) and max(stored) == date(2025, 6, 30)
    assert summary.batches == len(range(0, len(stored), 10))
    assert writer.con.execute("SELECT count(*) FROM lake.raw_linkedin_followers").fetchone()[0] == 0
