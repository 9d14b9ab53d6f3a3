"""The SEO collector with both providers, into a real warehouse: the JSON API provider against the rank
tracker simulator over real HTTP, and the CSV provider on files dropped into a folder. Rankings are stored
for every domain, `seo.share_of_voice` is each configured brand's share of estimated clicks (summing to 100
per day, 0 for a brand without rankings), a CSV file is imported once (a corrected copy again), bad rows
and pages are quarantined, a 30-day outage is caught up to what a never-stopped run stored, throttling and
server errors are retried, and a refused key or unknown project names the config key."""
from __future__ import annotations

import time as clock
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from collectors.base import SourceError
from conftest import make_config
from warehouse.writer import Writer
from scheduler import run_source
from simulators.seo import SeoSimulator, write_csv
from warehouse import ingest, queries
from warehouse.awareness_sql import CTR_BY_POSITION
from warehouse.lake import Reader
from warehouse.state import State

UTC = timezone.utc
NOW = datetime(2026, 4, 20, 9, 30, tzinfo=UTC)       # the tracker has checked April 20 (at 08:00)
KEY_ENV = "CASKALYTICS_TEST_SEO_KEY"
KEY = "seo-test-key"
BRANDS = {"cask": ["cask.co", "cdap.io"], "informatica": ["informatica.com"], "talend": ["talend.com"],
          "fivetran": ["fivetran.com"], "nobody": ["example.org"]}


@pytest.fixture
def sim():
    with SeoSimulator("cask-competitors", now=NOW, api_key=KEY) as simulator:
        yield simulator


def seo_config(path, sim, **overrides):
    settings = {"brands": BRANDS, "api_url": sim.url, "api_key_env": KEY_ENV, "project": "cask-competitors",
                "history_days": 20, "chunk_days": 10, **overrides}
    return make_config(path, seo=settings)


@pytest.fixture
def writer(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    writer = Writer(seo_config(tmp_path, sim))
    yield writer
    writer.close()


def stored(writer) -> set[tuple]:
    return set(writer.con.execute("SELECT date, keyword, domain, position, search_volume FROM lake.raw_seo").fetchall())


def expected_rows(sim, first: date, last: date) -> set[tuple]:
    return {(r.day, r.keyword, r.domain.removeprefix("www."), r.position, r.search_volume)
            for n in range((last - first).days + 1) for r in sim.history.rankings(first + timedelta(days=n))}


def expected_shares(rows) -> dict[str, float]:
    clicks = dict.fromkeys(BRANDS, 0.0)
    for _, _, domain, position, volume in rows:
        for brand, domains in BRANDS.items():
            if any(domain == d or domain.endswith("." + d) for d in domains):
                clicks[brand] += volume * CTR_BY_POSITION.get(position, 0)
    return {brand: 100 * c / sum(clicks.values()) for brand, c in clicks.items()}


def shares(cfg, start: date, end: date, grain: str = "day") -> dict[str, dict[str, float]]:
    reader = Reader(cfg)
    try:
        series = queries.metric_series(reader.cursor(), cfg, queries.SeriesRequest("seo.share_of_voice", grain, start,
                                                                                   end, by=["brand"]))
    finally:
        reader.close()
    out: dict[str, dict[str, float]] = {}
    for s in series["series"]:
        for p in s["points"]:
            out.setdefault(p["start"], {})[s["dims"]["brand"]] = p["value"]
    return out


def rankings_asked(requests: list[str]) -> list[tuple[str, str]]:
    return [(q["from"][0], q["to"][0]) for path in requests if path.split("?")[0].endswith("/rankings")
            and "page_token" not in path and (q := parse_qs(urlsplit(path).query))]


def test_rankings_of_every_domain_are_stored_and_shares_of_voice_sum_to_100(writer, sim):
    summary = run_source(writer, "seo")
    first, today = NOW.date() - timedelta(days=19), NOW.date()
    assert summary.quarantined == 0 and summary.batches == 2
    rows = stored(writer)
    assert rows == expected_rows(sim, first, today)
    assert ("g2.com" in {r[2] for r in rows}) and not any(r[2].startswith("www.") for r in rows)
    # 125 rankings a day, 1000 a page: each 10-day chunk takes two pages.
    assert rankings_asked(sim.requests) == [(str(first), str(first + timedelta(days=9))),
                                           (str(first + timedelta(days=10)), str(today))]
    assert sum("page_token" in path for path in sim.requests) == 2

    by_day = shares(writer.cfg, first, today)
    for day in (first, date(2026, 4, 14), today):
        expected = expected_shares({r for r in rows if r[0] == day})
        assert by_day[day.isoformat()] == pytest.approx(expected)
        assert sum(by_day[day.isoformat()].values()) == pytest.approx(100)
        assert by_day[day.isoformat()]["nobody"] == 0
    weekly = shares(writer.cfg, today, today, "week")                # a gauge: the week's last day
    assert weekly["2026-04-20"] == by_day["2026-04-20"]

    before = len(sim.requests)
    sim.advance(days=2)
    summary = run_source(writer, "seo")
    # Never pull twice: the last day asked (late_days = 1) and the two new ones.
    assert rankings_asked(sim.requests[before:]) == [(str(today), str(today + timedelta(days=2)))]
    assert summary.inserted == 2 * 125 and summary.duplicates == 125


def test_csv_files_are_imported_once_and_bad_rows_quarantined(tmp_path, sim, monkeypatch):
    inbox = tmp_path / "rankings"
    inbox.mkdir()
    write_csv(sim.history, inbox / "2026-04-01.csv", date(2026, 3, 25), date(2026, 4, 1))
    good = (inbox / "2026-04-01.csv").read_text()
    (inbox / "2026-04-02.csv").write_text(
        "Date;Keyword;Domain;Position;Search_Volume;Url\n"                    # semicolons, other case, extra column
        "2026-04-02;ETL  Tools;https://www.Cask.co/blog/etl;2;14800;https://cask.co/blog/etl\n"
        "2026-04-02;etl tools;informatica.com;;14800;\n"                      # not ranking: kept, no clicks
        "02/04/2026;etl tools;talend.com;3;14800;\n"                          # bad date
        "2026-04-02;etl tools;talend.com;zero;14800;\n"                       # bad position
        "2026-04-02;etl tools;not a domain!;4;14800;\n"                       # bad domain
        "2026-04-02;etl tools;fivetran.com;1;\n"                              # too few fields
        "2026-04-02;etl tools;fivetran.com;1;-5;\n")                          # negative volume
    (inbox / "broken.csv").write_bytes(b"date,keyword,domain,position,search_volume\n2026-04-02,caf\xe9,x.com,1,5\n")
    (inbox / "wrong-header.csv").write_text("day,keyword,domain,rank,volume\n2026-04-02,etl,x.com,1,5\n")
    (inbox / "notes.txt").write_text("not a CSV file, not read")
    cfg = make_config(tmp_path, seo={"provider": "csv", "import_dir": "rankings", "brands": BRANDS})
    writer = Writer(cfg)
    try:
        summary = run_source(writer, "seo")
        assert summary.batches == 4
        quarantined = writer.con.execute("SELECT reason, origin FROM lake.quarantine ORDER BY origin").fetchall()
        assert [origin for _, origin in quarantined] == ["2026-04-02.csv:4", "2026-04-02.csv:5", "2026-04-02.csv:6",
                                                        "2026-04-02.csv:7", "2026-04-02.csv:8", "broken.csv",
                                                        "wrong-header.csv"]
        reasons = " | ".join(reason for reason, _ in quarantined)
        for expected in ("date is not YYYY-MM-DD", "position is not a whole number", "domain is not a host name",
                         "5 fields where the header has 6", "search_volume is not a whole number", "not UTF-8",
                         "CSV header lacks date, position, search_volume"):
            assert expected in reasons
        rows = stored(writer)
        assert rows >= expected_rows(sim, date(2026, 3, 25), date(2026, 4, 1))
        assert {r for r in rows if r[0] == date(2026, 4, 2)} == {
            (date(2026, 4, 2), "etl tools", "cask.co", 2, 14800), (date(2026, 4, 2), "etl tools", "informatica.com",
                                                                   None, 14800)}
        assert shares(cfg, date(2026, 4, 2), date(2026, 4, 2))["2026-04-02"]["cask"] == 100
        march_31 = shares(cfg, date(2026, 3, 31), date(2026, 3, 31))["2026-03-31"]
        assert march_31 == pytest.approx(expected_shares({r for r in rows if r[0] == date(2026, 3, 31)}))

        assert run_source(writer, "seo").batches == 0                  # each file once
        # A corrected export under the same name: imported again; the rows already stored are not added twice.
        (inbox / "2026-04-01.csv").write_text(good + "2026-04-01,cdap,cask.co,1,720\n")
        again = run_source(writer, "seo")
        assert again.batches == 1 and again.inserted == 0 and again.duplicates == len(good.splitlines())
        ledger = writer.con.execute("SELECT name, rows FROM lake.seo_files_read ORDER BY name, rows").fetchall()
        assert ledger[:2] == [("2026-04-01.csv", 8 * 125), ("2026-04-01.csv", 8 * 125 + 1)]
    finally:
        writer.close()


def test_a_30_day_outage_is_caught_up_in_chunks_to_what_a_never_stopped_run_stored(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)

    def warehouse(name: str, run_days: list[int]) -> Writer:
        (tmp_path / name).mkdir()
        writer = Writer(seo_config(tmp_path / name, sim, history_days=10))
        for day in run_days:
            sim.set_time(NOW + timedelta(days=day))
            run_source(writer, "seo")
        return writer

    steady = warehouse("steady", [0, 7, 14, 21, 28, 31])             # a run every week, never stopped
    before = len(sim.requests)
    stopped = warehouse("stopped", [0, 31])
    try:
        restart = rankings_asked(sim.requests[before:])[1:]
        assert restart == sorted(restart) and len(restart) == 4          # 32 days in chunks of 10, oldest first
        assert stored(stopped) == stored(steady)
        span = (NOW.date() - timedelta(days=10), (NOW + timedelta(days=31)).date())
        assert shares(stopped.cfg, *span) == shares(steady.cfg, *span)
    finally:
        steady.close()
        stopped.close()


def test_throttling_server_errors_and_dropped_connections_are_retried(writer, sim):
    sim.inject_faults(1, status=429, retry_after=1, only="/rankings")
    sim.inject_faults(1, status=502)
    sim.inject_faults(1, status=0, only="/rankings")
    started = clock.monotonic()
    summary = run_source(writer, "seo")
    assert clock.monotonic() - started >= 1.0 and not sim.faults
    assert summary.quarantined == 0 and len(stored(writer)) == 20 * 125
    assert State(writer.cfg).recent_runs("seo")[0]["status"] == "ok"


def test_a_refused_key_and_an_unknown_project_name_their_config_keys(tmp_path, sim, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "wrong")
    writer = Writer(seo_config(tmp_path, sim, project="no-such-project"))
    try:
        with pytest.raises(SourceError, match=f"HTTP 401.*api_key_env.*{KEY_ENV}"):
            run_source(writer, "seo")
        monkeypatch.setenv(KEY_ENV, KEY)
        with pytest.raises(SourceError, match=r"HTTP 404.*check \[sources.seo\] project"):
            run_source(writer, "seo")
        assert State(writer.cfg).recent_runs("seo")[0]["status"] == "failed"
    finally:
        writer.close()


def test_malformed_rankings_and_unusable_pages_are_quarantined_without_losing_days(writer, sim):
    sim.injected[NOW.date()] = [{"date": "2026-04-20", "keyword": "etl tools", "domain": "cask.co", "position": 0,
                                 "search_volume": 100},
                                {"date": "2026-04-20", "keyword": "", "domain": "cask.co", "position": 1,
                                 "search_volume": 100},
                                {"date": "2099-01-01", "keyword": "etl tools", "domain": "cask.co", "position": 1,
                                 "search_volume": 100},
                                ["not", "an", "object"]]
    summary = run_source(writer, "seo")
    reasons = " | ".join(r[0] for r in writer.con.execute("SELECT reason FROM lake.quarantine").fetchall())
    assert summary.quarantined == 4
    for expected in ("position is not a whole number from 1 to 1000", "keyword is empty", "is not plausible",
                     "not an object"):
        assert expected in reasons
    assert len(stored(writer)) == 20 * 125

    cursor = writer.cursor("seo")
    sim.injected.clear()
    sim.advance(days=1)
    sim.inject_faults(1, status=200, only="/rankings", body=b"<html>maintenance</html>")
    assert run_source(writer, "seo").quarantined == 1 and writer.cursor("seo") == cursor
    run_source(writer, "seo")
    assert len(stored(writer)) == 21 * 125


def test_days_the_tracker_missed_carry_the_previous_share_and_backfill_leaves_the_cursor(writer, sim):
    summary = run_source(writer, "seo", start=date(2025, 8, 10), end=date(2025, 8, 15))
    assert summary.batches == 1 and writer.cursor("seo") is None
    assert {r[0] for r in stored(writer)} == {date(2025, 8, d) for d in (10, 11, 14, 15)}   # 12 and 13 missed
    by_day = shares(writer.cfg, date(2025, 8, 10), date(2025, 8, 15))
    assert by_day["2025-08-12"] == by_day["2025-08-13"] == by_day["2025-08-11"]
    assert by_day["2025-08-14"] != by_day["2025-08-11"]
