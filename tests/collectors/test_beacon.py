"""Beacon hits from the SQLite inbox into the lake and the web.* metrics, with real SQLite and DuckLake:
the documented counting rules hold exactly at every grain (sessions end after 30 minutes without a hit,
new versus returning visitors by their first hit ever, blog views by path prefix, distinct counts never
summed), a late hit recomputes what it changes, one drain moves every inbox kind through its own
collector, and the demo seeding is repeatable."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from collectors.beacon import Hit, deliveries_batch, encode
from conftest import FIXTURES, make_config
from scheduler import drain_inbox, run_source
from warehouse.writer import Writer
from simulators import beacon as simulator
from warehouse import queries
from warehouse.state import State

UTC = timezone.utc
HOOKS = FIXTURES / "github_webhooks"
WEB = {"sessions": "web.sessions", "new": "web.new_visitors", "returning": "web.returning_visitors",
       "blog": "web.blog_views", "visitors": "web.visitors", "pageviews": "web.pageviews"}


def hit(hit_id: str, when: str, visitor: str, path: str = "/", name: str = "pageview", site: str = "cask.co") -> Hit:
    return Hit(hit_id=hit_id, ts=datetime.fromisoformat(when).replace(tzinfo=UTC).isoformat(), site=site, name=name,
               path=path, visitor_id=visitor, via="event")


def put(cfg, *hits: Hit) -> None:
    State(cfg).receive_many("beacon", [(h.hit_id, {}, encode(h)) for h in hits])


def summary(writer, cfg, grain: str, at: str) -> dict:
    answer = queries.period_summary(writer.con.cursor(), cfg, grain, datetime.fromisoformat(at), WEB)
    return {key: answer[key] for key in WEB}


# Visitor A (a snippet id) first came on Friday 27 February; on Monday 2 March they read two blog posts and
# the pricing page and signed up later. B has no id (pixel: a daily hash) and comes back on Tuesday. C uses
# the same id as A, but on another site: another visitor.
SCENARIO = [
    hit("a1", "2026-02-27T10:00:00", "visitor-aaaa", "/"),
    hit("a2", "2026-03-02T09:00:00", "visitor-aaaa", "/blog/post-1"),
    hit("a3", "2026-03-02T09:29:59", "visitor-aaaa", "/pricing"),        # 29:59 later: same session
    hit("a4", "2026-03-02T09:59:59", "visitor-aaaa", "/blog/post-2"),    # exactly 30:00 later: a new session
    hit("a5", "2026-03-02T11:00:00", "visitor-aaaa", "/pricing", name="signup"),   # an event, not a page view
    hit("b1", "2026-03-02T09:10:00", "h:bbbb", "/blog"),                 # "/blog" is not under "/blog/"
    hit("b2", "2026-03-03T09:10:00", "h:bbbb", "/blog/post-1"),
    hit("c1", "2026-03-02T09:05:00", "visitor-aaaa", "/", site="docs.cask.co"),
]


@pytest.fixture
def scenario(tmp_path):
    cfg = make_config(tmp_path, beacon={"sites": ["cask.co", "docs.cask.co"]})
    put(cfg, *SCENARIO)
    writer = Writer(cfg)
    summary_ = drain_inbox(writer)
    assert (summary_.records, summary_.inserted, summary_.quarantined) == (8, 8, 0)
    run_source(writer, "beacon")              # the scheduled beacon job brings the cube up to date
    yield cfg, writer
    writer.close()


def test_every_grain_counts_as_documented(scenario):
    cfg, writer = scenario
    monday = {"sessions": 5, "new": 2, "returning": 1, "blog": 2, "visitors": 3, "pageviews": 5}
    assert summary(writer, cfg, "day", "2026-03-02") == monday
    assert summary(writer, cfg, "day", "2026-03-03") == {"sessions": 1, "new": 0, "returning": 1, "blog": 1,
                                                         "visitors": 1, "pageviews": 1}
    assert summary(writer, cfg, "day", "2026-02-27") == {"sessions": 1, "new": 1, "returning": 0, "blog": 0,
                                                         "visitors": 1, "pageviews": 1}
    assert summary(writer, cfg, "hour", "2026-03-02T09:00") == {**monday, "sessions": 4}     # not the signup at 11
    assert summary(writer, cfg, "hour", "2026-03-02T11:00") == {"sessions": 1, "new": 0, "returning": 1, "blog": 0,
                                                                "visitors": 1, "pageviews": 0}
    # Distinct visitors are counted per bucket, never summed: B visits on two days but is one visitor.
    assert summary(writer, cfg, "week", "2026-03-04") == {"sessions": 6, "new": 2, "returning": 1, "blog": 3,
                                                          "visitors": 3, "pageviews": 6}
    assert summary(writer, cfg, "week", "2026-02-27") == {"sessions": 1, "new": 1, "returning": 0, "blog": 0,
                                                          "visitors": 1, "pageviews": 1}
    assert summary(writer, cfg, "month", "2026-03-15") == {"sessions": 6, "new": 2, "returning": 1, "blog": 3,
                                                           "visitors": 3, "pageviews": 6}
    whole = {"sessions": 7, "new": 3, "returning": 0, "blog": 3, "visitors": 3, "pageviews": 7}
    assert summary(writer, cfg, "quarter", "2026-02-01") == whole
    assert summary(writer, cfg, "year", "2026-07-01") == whole


def test_series_answer_distinct_metrics_with_empty_buckets_and_pageviews_by_path(scenario):
    cfg, writer = scenario
    cur = writer.con.cursor()
    visitors = queries.metric_series(cur, cfg, queries.SeriesRequest("web.visitors", "day", date(2026, 2, 27),
                                                                     date(2026, 3, 4)))
    assert visitors["kind"] == "distinct"
    assert [p["value"] for p in visitors["points"]] == [1, 0, 0, 3, 1, 0]      # 27 Feb .. 4 Mar
    by_path = queries.metric_series(cur, cfg, queries.SeriesRequest("web.pageviews", "week", date(2026, 3, 2),
                                                                     date(2026, 3, 8), by=["path"]))
    assert {s["dims"]["path"]: s["points"][0]["value"] for s in by_path["series"]} == {
        "/": 1, "/blog": 1, "/blog/post-1": 2, "/blog/post-2": 1, "/pricing": 1}
    assert {m["name"]: m["kind"] for m in queries.catalog(cfg) if m["name"].startswith("web.")} == {
        "web.pageviews": "counter", "web.sessions": "counter", "web.visitors": "distinct",
        "web.new_visitors": "distinct", "web.returning_visitors": "distinct", "web.blog_views": "counter"}


def test_a_late_hit_recounts_the_sessions_and_first_visits_it_changes(scenario):
    cfg, writer = scenario
    put(cfg, hit("b0", "2026-02-20T10:00:00", "h:bbbb", "/"),             # B was here before: returning on Monday
        hit("a3b", "2026-03-02T09:45:00", "visitor-aaaa", "/docs/"))      # A's 09:59:59 no longer starts a session
    assert drain_inbox(writer).inserted == 2
    run_source(writer, "beacon")
    assert summary(writer, cfg, "day", "2026-03-02") == {"sessions": 4, "new": 1, "returning": 2, "blog": 2,
                                                         "visitors": 3, "pageviews": 6}
    assert summary(writer, cfg, "week", "2026-03-04")["new"] == 1
    assert summary(writer, cfg, "day", "2026-02-20") == {"sessions": 1, "new": 1, "returning": 0, "blog": 0,
                                                         "visitors": 1, "pageviews": 1}


def test_a_visitor_first_seen_last_year_is_returning_in_this_years_minute_updates(scenario):
    cfg, writer = scenario            # the cube already holds 2026 up to 3 March; now, on 10 March:
    put(cfg, hit("r1", "2026-03-10T14:00:00", "visitor-aaaa", "/blog/post-3"),    # A, first seen in February
        hit("r2", "2026-03-10T14:20:00", "visitor-eeee", "/"))                    # E, new
    drain_inbox(writer)
    run_source(writer, "beacon")      # an update of the hours from 10 March on, not a rebuild
    for grain, at in (("hour", "2026-03-10T14:00"), ("day", "2026-03-10"), ("week", "2026-03-10")):
        assert {k: summary(writer, cfg, grain, at)[k] for k in ("visitors", "new", "returning")} == {
            "visitors": 2, "new": 1, "returning": 1}, grain
    assert {k: summary(writer, cfg, "month", "2026-03-10")[k] for k in ("visitors", "new", "returning")} == {
        "visitors": 4, "new": 3, "returning": 1}          # A came in February; B, C (docs) and E are new
    assert {k: summary(writer, cfg, "year", "2026-03-10")[k] for k in ("visitors", "new", "returning")} == {
        "visitors": 4, "new": 4, "returning": 0}


def test_a_visitor_from_a_year_before_is_returning_in_the_next_years_updates(tmp_path):
    cfg = make_config(tmp_path, beacon={"sites": ["cask.co"]})
    put(cfg, hit("y1", "2025-12-20T10:00:00", "visitor-yyyy"))
    writer = Writer(cfg)
    try:
        drain_inbox(writer)
        run_source(writer, "beacon")
        put(cfg, hit("y2", "2026-03-02T10:00:00", "visitor-yyyy"), hit("z1", "2026-03-02T10:30:00", "visitor-zzzz"))
        drain_inbox(writer)
        run_source(writer, "beacon")  # counts 2026 from the raw rows of 2026, first visits from all of them
        for grain in ("hour", "day", "week", "month", "quarter", "year"):
            at = "2026-03-02T10:00" if grain == "hour" else "2026-03-02"
            assert {k: summary(writer, cfg, grain, at)[k] for k in ("visitors", "new", "returning")} == {
                "visitors": 2, "new": 1, "returning": 1}, grain
        assert summary(writer, cfg, "year", "2025-12-20")["new"] == 1
    finally:
        writer.close()


def test_buckets_are_local_periods_of_the_reporting_time_zone(tmp_path):
    cfg = make_config(tmp_path, timezone="America/New_York", beacon={"sites": ["cask.co"]})
    # 22:00 on New Year's Eve in New York is already 2026 in UTC.
    put(cfg, hit("d1", "2025-12-31T15:00:00", "visitor-dddd"), hit("d2", "2026-01-01T03:00:00", "visitor-dddd"))
    writer = Writer(cfg)
    try:
        drain_inbox(writer)
        run_source(writer, "beacon")
        assert summary(writer, cfg, "year", "2025-06-01") == {"sessions": 2, "new": 1, "returning": 0, "blog": 0,
                                                              "visitors": 1, "pageviews": 2}
        assert summary(writer, cfg, "year", "2026-06-01")["visitors"] == 0
    finally:
        writer.close()


def test_an_iso_week_across_new_year_keeps_last_years_days_in_minute_updates(tmp_path):
    cfg = make_config(tmp_path, beacon={"sites": ["cask.co"]})
    put(cfg, hit("w1", "2025-12-30T10:00:00", "visitor-wwww"))          # Tuesday of ISO week 2026-W01
    writer = Writer(cfg)
    try:
        drain_inbox(writer)
        run_source(writer, "beacon")
        put(cfg, hit("w2", "2026-01-02T10:00:00", "visitor-xxxx"))      # Friday of the same week
        drain_inbox(writer)
        run_source(writer, "beacon")  # an update of 2026's hours only
        assert {k: summary(writer, cfg, "week", "2026-01-02")[k] for k in ("visitors", "new", "returning")} == {
            "visitors": 2, "new": 2, "returning": 0}
    finally:
        writer.close()


def test_visitors_are_counted_in_local_periods_of_a_half_hour_zone(tmp_path):
    cfg = make_config(tmp_path, timezone="Asia/Kolkata", beacon={"sites": ["cask.co"]})     # UTC+05:30
    put(cfg, hit("k1", "2025-12-31T18:20:00", "visitor-kkkk"),        # 23:50 on 31 December in India
        hit("k2", "2025-12-31T18:40:00", "visitor-kkkk"),             # 00:10 on 1 January: the same session
        hit("k3", "2025-12-31T18:50:00", "visitor-llll"))             # 00:20 on 1 January
    writer = Writer(cfg)
    try:
        drain_inbox(writer)
        run_source(writer, "beacon")
        counted = ("visitors", "new", "returning", "sessions")
        assert {k: summary(writer, cfg, "year", "2025-06-01")[k] for k in counted} == {
            "visitors": 1, "new": 1, "returning": 0, "sessions": 1}
        for grain, at in (("year", "2026-06-01"), ("day", "2026-01-01"), ("hour", "2026-01-01T00:00")):
            assert {k: summary(writer, cfg, grain, at)[k] for k in counted} == {
                "visitors": 2, "new": 1, "returning": 1, "sessions": 1}, grain
    finally:
        writer.close()


def test_one_drain_moves_every_inbox_kind_through_its_collector(tmp_path):
    cfg = make_config(tmp_path, beacon={"sites": ["cask.co"]})
    state = State(cfg)
    state.receive("github", "delivery-1", {"x-github-event": "fork", "x-github-delivery": "delivery-1"},
                  (HOOKS / "fork.json").read_bytes())
    put(cfg, hit("h1", "2026-03-02T09:00:00", "visitor-1111"), hit("h2", "2026-03-02T09:01:00", "visitor-1111"))
    broken = {**vars(hit("broken", "2026-03-02T09:02:00", "visitor-1111")), "ts": "yesterday"}
    state.receive("beacon", "broken", {}, json.dumps(broken).encode())
    writer = Writer(cfg)
    try:
        drained = drain_inbox(writer)
        assert (drained.records, drained.inserted, drained.quarantined) == (3, 3, 1)
        assert writer.con.execute("SELECT count(*) FROM lake.raw_github_events").fetchone()[0] == 1
        assert sorted(r[0] for r in writer.con.execute("SELECT hit_id FROM lake.raw_beacon").fetchall()) == ["h1", "h2"]
        assert "beacon hit: ts" in writer.con.execute("SELECT reason FROM lake.quarantine").fetchone()[0]
        cursors = dict(writer.con.execute("SELECT source, cursor FROM lake.cursors").fetchall())
        assert set(cursors) == {"github.inbox", "beacon.inbox"}
        # Drained hits leave the inbox at once, but the newest row stays: SQLite would otherwise hand its id
        # out again, below the cursors, and the next hit would never be drained.
        with state.connection() as con:
            left = con.execute("SELECT kind, dedupe_key FROM inbox ORDER BY id").fetchall()
        assert [tuple(r) for r in left] == [("github", "delivery-1"), ("beacon", "broken")]
        put(cfg, hit("h3", "2026-03-02T10:00:00", "visitor-1111"))
        assert drain_inbox(writer).inserted == 1
        assert drain_inbox(writer).records == 0
    finally:
        writer.close()


def test_inbox_rows_that_are_not_hits_are_quarantined_with_the_reason():
    good = encode(hit("ok", "2026-03-02T09:00:00", "visitor-1111"))
    rows = [{"id": 1, "dedupe_key": "ok", "body": good},
            {"id": 2, "dedupe_key": "x", "body": b"\xff\xfe"},
            {"id": 3, "dedupe_key": "y", "body": json.dumps({"hit_id": "y", "ts": "2026-03-02T09:00:00"}).encode()},
            {"id": 4, "dedupe_key": "other", "body": good}]
    batch = deliveries_batch(rows)
    assert [r["hit_id"] for r in batch.records["raw_beacon"]] == ["ok"]
    assert batch.records["raw_beacon"][0]["ts"] == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert [(r.origin, r.reason) for r in batch.rejected] == [
        ("x", "beacon hit: the body is not UTF-8 JSON"),
        ("y", "beacon hit: site is missing or not a non-empty string"),
        ("other", "beacon hit: hit_id 'ok' differs from the inbox key 'other'")]
    assert batch.cursor == {"last_id": 4}


def test_the_inbox_body_is_the_json_of_the_hit_whatever_its_text_holds():
    tricky = 'quote " backslash \\ newline \n tab \t nul \x00 e-acute \u00e9 line-sep \u2028 emoji \U0001f600'
    hit_ = Hit(hit_id="0661483c436ff20191b1babd", ts="2026-03-02T09:00:00.000001+00:00", site="cask.co",
               name="pageview", path="/" + tricky, visitor_id="visitor-1111", via="pixel", referrer=tricky,
               utm_campaign="")
    body = encode(hit_)
    assert json.loads(body) == vars(hit_)
    assert body == json.dumps(vars(hit_), separators=(",", ":"), ensure_ascii=False).encode()
    [record] = deliveries_batch([{"id": 1, "dedupe_key": hit_.hit_id, "body": body}]).records["raw_beacon"]
    assert (record["path"], record["referrer"], record["utm_source"]) == ("/" + tricky, tricky, None)


def test_demo_seeding_is_repeatable_and_marked_as_demo(tmp_path):
    cfg = make_config(tmp_path, beacon={"sites": ["cask.co"], "history_days": 3})
    until = datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert simulator.history_hits(date(2026, 3, 2), "cask.co") == simulator.history_hits(date(2026, 3, 2), "cask.co")
    written = simulator.seed_history(cfg, until)
    assert 300 < written < 5000                    # three days of a small product site
    assert simulator.seed_history(cfg, until) == 0            # the marker: nothing twice
    assert simulator.seed_history(cfg, until + timedelta(hours=1)) > 0     # an hour later: only that hour
    writer = Writer(cfg)
    try:
        drained = drain_inbox(writer)
        assert drained.inserted == drained.records > written
        via, first, last = writer.con.execute("SELECT list(DISTINCT via), min(ts), max(ts) FROM lake.raw_beacon").fetchone()
        assert via == ["demo"] and first >= until - timedelta(days=3) and last < until + timedelta(hours=1)
    finally:
        writer.close()
