"""The Meltwater collector against the Meltwater simulator over real HTTP, into a real warehouse: daily
mentions per brand in the reporting time zone, late-settling days asked again until their count is final, a
30-day outage caught up in chunks to what a never-stopped run stored, throttling and server errors retried,
a wrong key or an unknown saved search failing the run naming the config key, and malformed answers
quarantined without losing days."""
from __future__ import annotations

import re
import time as clock
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from collectors.base import SourceError
from conftest import make_config
from warehouse.writer import Writer
from scheduler import run_source
from simulators.meltwater import MeltwaterSimulator
from warehouse import ingest, queries
from warehouse.lake import Reader
from warehouse.state import State

UTC = timezone.utc
ZONE = "America/New_York"
SEARCHES = {27558: "cask", 27559: "informatica"}
BRANDS = {"cask": "27558", "informatica": "27559"}
NOW = datetime(2026, 4, 20, 15, 30, tzinfo=UTC)     # 11:30 in New York, a week after Cask's launch
KEY_ENV = "CASKALYTICS_TEST_MELTWATER_KEY"
KEY = "mw-test-key"


@pytest.fixture
def sim():
    with MeltwaterSimulator(SEARCHES, now=NOW, api_key=KEY) as simulator:
        yield simulator


def meltwater_config(path, sim, **overrides):
    return make_config(path, timezone=ZONE, meltwater={"brands": BRANDS, "api_url": sim.url, "api_key_env": KEY_ENV,
                                                       "history_days": 30, "chunk_days": 10, **overrides})


@pytest.fixture
def writer(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    writer = Writer(meltwater_config(tmp_path, sim))
    yield writer
    writer.close()


def mentions(writer) -> dict[tuple[str, date], float]:
    """The effective (latest fetched) mentions per brand and day."""
    rows = writer.con.execute("""
        SELECT dims, ts, arg_max(value, fetched_at) FROM lake.raw_meltwater
        WHERE metric = 'meltwater.mentions' GROUP BY dims, ts""").fetchall()
    return {(re.search(r'"brand":"(\w+)"', dims).group(1), ts.date()): value for dims, ts, value in rows}


def daily(cfg, start: date, end: date, grain: str = "day") -> dict[tuple[str, str], float]:
    reader = Reader(cfg)
    try:
        series = queries.metric_series(reader.cursor(), cfg, queries.SeriesRequest("meltwater.mentions", grain, start,
                                                                                   end, by=["brand"]))
    finally:
        reader.close()
    return {(s["dims"]["brand"], p["start"]): p["value"] for s in series["series"] for p in s["points"]}


def asked(requests: list[str]) -> list[tuple[str, str, str]]:
    """(search id, start, end) of each analytics request."""
    out = []
    for path in requests:
        if path.startswith("/v3/analytics/"):
            query = parse_qs(urlsplit(path).query)
            out.append((urlsplit(path).path.rsplit("/", 1)[1], query["start"][0], query["end"][0]))
    return out


def test_daily_mentions_per_brand_settle_and_only_the_late_days_are_asked_again(writer, sim):
    summary = run_source(writer, "meltwater")
    assert summary.quarantined == 0
    zone = ZoneInfo(ZONE)
    today = NOW.astimezone(zone).date()
    days = [today - timedelta(days=n) for n in range(29, -1, -1)]
    requests = asked(sim.requests)
    assert requests[0] == ("27558", f"{days[0]}T00:00:00", f"{days[10]}T00:00:00") and len(requests) == 6
    assert all(parse_qs(urlsplit(p).query).get("tz") == [ZONE] for p in sim.requests if "/analytics/" in p)
    stored = mentions(writer)
    assert set(stored) == {(brand, day) for brand in BRANDS for day in days}
    for brand, search_id in BRANDS.items():
        for day in days[:-3]:                                   # settled: 48 hours after the day ended
            assert stored[brand, day] == sim.final_count(int(search_id), day, zone)
    assert stored["cask", today] < sim.final_count(27558, today, zone)          # today so far
    assert stored["cask", date(2026, 4, 14)] > 5 * stored["cask", date(2026, 4, 7)]   # the launch's press
    assert daily(writer.cfg, days[0], today) == {(b, d.isoformat()): v for (b, d), v in stored.items()}

    before = len(sim.requests)
    sim.advance(days=3)
    run_source(writer, "meltwater")
    # Never pull twice: per brand one request, from three days before the last day asked to the new today.
    new_today = sim.now().astimezone(zone).date()
    assert asked(sim.requests[before:]) == [(sid, f"{today - timedelta(days=2)}T00:00:00",
                                             f"{new_today + timedelta(days=1)}T00:00:00") for sid in BRANDS.values()]
    stored = mentions(writer)
    for brand, search_id in BRANDS.items():                      # the re-asked days now carry their final count
        assert stored[brand, today] == sim.final_count(int(search_id), today, zone)
    assert daily(writer.cfg, today, today) == {(b, today.isoformat()): stored[b, today] for b in BRANDS}
    weekly = daily(writer.cfg, today, today, "week")
    monday = today - timedelta(days=today.weekday())
    assert weekly == {(b, monday.isoformat()): sum(v for (b2, d), v in stored.items() if b2 == b and d >= monday
                                                   and d < monday + timedelta(days=7)) for b in BRANDS}


def test_a_30_day_outage_is_caught_up_in_chunks_to_what_a_never_stopped_run_stored(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)

    def warehouse(name: str, run_days: list[int]) -> Writer:
        (tmp_path / name).mkdir()
        writer = Writer(meltwater_config(tmp_path / name, sim, history_days=10))
        for day in run_days:
            sim.set_time(NOW + timedelta(days=day))
            run_source(writer, "meltwater")
        return writer

    steady = warehouse("steady", [0, 7, 14, 21, 28, 31])             # a run every week, never stopped
    before = len(sim.requests)
    stopped = warehouse("stopped", [0, 31])
    try:
        restart = [(sid, start) for sid, start, _ in asked(sim.requests[before:])][2:]    # after the first run's 2
        for sid in BRANDS.values():
            starts = [start for s, start in restart if s == sid]
            assert starts == sorted(starts) and len(starts) == 4          # 34 days in chunks of 10, oldest first
        assert mentions(stopped) == mentions(steady)
        span = (NOW.date() - timedelta(days=10), (NOW + timedelta(days=31)).date())
        assert daily(stopped.cfg, *span) == daily(steady.cfg, *span)
        assert stopped.cursor("meltwater") == steady.cursor("meltwater")
    finally:
        steady.close()
        stopped.close()


def test_throttling_server_errors_and_dropped_connections_are_retried(writer, sim):
    sim.inject_faults(1, status=429, retry_after=1, only="/v3/analytics/")
    sim.inject_faults(1, status=503)
    sim.inject_faults(1, status=0, only="/v3/analytics/")
    started = clock.monotonic()
    summary = run_source(writer, "meltwater")
    assert clock.monotonic() - started >= 1.0 and not sim.faults
    assert summary.quarantined == 0 and len(mentions(writer)) == 2 * 30
    assert State(writer.cfg).recent_runs("meltwater")[0]["status"] == "ok"


def test_a_refused_key_and_an_unknown_saved_search_name_their_config_keys(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a-revoked-key")
    writer = Writer(meltwater_config(tmp_path, sim, brands={**BRANDS, "ghost": "99999"}))
    try:
        with pytest.raises(SourceError, match=f"HTTP 403 Unauthorized.*api_key_env.*{KEY_ENV}"):
            run_source(writer, "meltwater")
        assert "a-revoked-key" not in State(writer.cfg).recent_runs("meltwater")[0]["error"]
        monkeypatch.setenv(KEY_ENV, KEY)
        with pytest.raises(SourceError, match=r"no saved search ghost \(99999\).*\[sources.meltwater\] brands"):
            run_source(writer, "meltwater")
        assert {brand for brand, _ in mentions(writer)} == {"cask", "informatica"}      # the others were read
    finally:
        writer.close()


def test_malformed_days_and_unusable_answers_are_quarantined_without_losing_days(writer, sim):
    sim.inject_faults(1, status=200, only="/v3/analytics/27558", body={"volume": {"document_count": 9}, "time_series": [
        {"date": "2026-03-22", "document_count": 9, "hours": []}, {"date": "yesterday", "document_count": 1},
        {"date": "2026-03-23"}, {"date": "2026-03-24", "document_count": "7"}, "not a day"]})
    summary = run_source(writer, "meltwater")
    reasons = sorted(r[0] for r in writer.con.execute("SELECT reason FROM lake.quarantine").fetchall())
    assert summary.quarantined == 4 and all(r.startswith("analytics time_series day") for r in reasons)
    assert any("date is not YYYY-MM-DD" in r for r in reasons) and any("document_count is not a count" in r
                                                                      for r in reasons)
    assert mentions(writer)["cask", date(2026, 3, 22)] == 9

    cursor = writer.cursor("meltwater")
    sim.advance(days=1)
    sim.inject_faults(1, status=200, only="/v3/analytics/27558", body={"volume": {"document_count": 0}})   # partial
    sim.inject_faults(1, status=200, only="/v3/analytics/27559", body=b"<html>502 Bad Gateway</html>")
    summary = run_source(writer, "meltwater")
    assert summary.quarantined == 2 and writer.cursor("meltwater") == cursor   # asked again
    run_source(writer, "meltwater")
    zone = ZoneInfo(ZONE)
    today = sim.now().astimezone(zone).date()
    stored = mentions(writer)
    assert {d for b, d in stored if b == "informatica"} == {today - timedelta(days=n) for n in range(31)}


def test_backfill_reads_the_range_and_leaves_the_cursor(writer, sim):
    summary = run_source(writer, "meltwater", start=date(2025, 12, 1), end=date(2025, 12, 20))
    assert summary.batches == 4 and writer.cursor("meltwater") is None
    zone = ZoneInfo(ZONE)
    assert mentions(writer) == {(brand, date(2025, 12, d)): sim.final_count(int(sid), date(2025, 12, d), zone)
                                for brand, sid in BRANDS.items() for d in range(1, 21)}
