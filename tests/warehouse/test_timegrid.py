"""The reporting time zone, in Python and in SQL (`warehouse.timegrid`) and through the cube, against an
independent recomputation: plain zoneinfo, minute by minute, with no code from `warehouse`.

A zone hour is recomputed as a run of minutes with the same local wall-clock hour and the same UTC offset;
its label is the wall clock of its first minute. Zones: Pacific/Chatham (+12:45/+13:45, changes at 02:45
local), Australia/Lord_Howe (+10:30/+11:00: DST moves by 30 minutes), America/New_York and Europe/Berlin
(the hour DST's end repeats), America/St_Johns (changed at 00:01 local until 2011), Asia/Kolkata, UTC.
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pytest

import collectors
import config
from collectors.base import Batch
from warehouse import cube, ingest, queries, timegrid
from warehouse.writer import Writer
from warehouse.lake import Reader
from warehouse.queries import SeriesRequest

UTC = timezone.utc
D = date.fromisoformat
CHATHAM, LORD_HOWE, NEW_YORK, BERLIN = "Pacific/Chatham", "Australia/Lord_Howe", "America/New_York", "Europe/Berlin"
MINUTE = timedelta(minutes=1)


# --- the independent recomputation -----------------------------------------------------------------------

def offset_changes(tz: str, year: int) -> list[datetime]:
    """The instants (UTC, whole minutes) where the zone's offset changes during `year`."""
    zone, found = ZoneInfo(tz), []
    t = datetime(year, 1, 1, tzinfo=UTC)
    while t.year == year:
        step = t + timedelta(hours=1)
        if t.astimezone(zone).utcoffset() != step.astimezone(zone).utcoffset():
            m = t
            while m.astimezone(zone).utcoffset() == t.astimezone(zone).utcoffset():
                m += MINUTE
            found.append(m)
        t = step
    return found


def local_midnight(day: date, tz: str) -> datetime:
    """The first minute (UTC) whose local date is `day`."""
    zone = ZoneInfo(tz)
    t = datetime.combine(day, time(), UTC) - timedelta(hours=15)
    while t.astimezone(zone).date() < day:
        t += MINUTE
    return t


def zone_hours(tz: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime, timedelta]]:
    """(UTC start, local wall-clock start, offset) of every run of minutes in [start, end) that shares its
    local hour and offset."""
    zone, out, key = ZoneInfo(tz), [], None
    t = start
    while t < end:
        local = t.astimezone(zone)
        this = (local.replace(minute=0, tzinfo=None, fold=0), local.utcoffset())
        if this != key:
            out.append((t, local.replace(tzinfo=None, fold=0), local.utcoffset()))
            key = this
        t += MINUTE
    return out


def occurs_twice(wall: datetime, tz: str) -> bool:
    """A wall-clock time that two instants share (set back clocks pass it twice)."""
    zone = ZoneInfo(tz)
    first, second = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    return first.utcoffset() > second.utcoffset()   # in a gap it is the other way round


def offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def days_around(tz: str, years=(2025, 2026)) -> list[tuple[date, date]]:
    """(day before, day after) each offset change, as local dates."""
    zone = ZoneInfo(tz)
    return [((c.astimezone(zone) - timedelta(days=1)).date(), (c.astimezone(zone) + timedelta(days=1)).date())
            for year in years for c in offset_changes(tz, year)]


# --- Python -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tz", [CHATHAM, LORD_HOWE, NEW_YORK, BERLIN])
def test_hour_and_day_buckets_at_every_dst_change_match_zoneinfo(tz):
    assert len(days_around(tz)) == 4
    for first, last in days_around(tz):
        begin, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
        want = zone_hours(tz, begin, end)
        got = [(b.utc, b.start, b.offset) for b in timegrid.buckets("hour", first, last, tz)]
        assert got == want, tz
        days = timegrid.buckets("day", first, last, tz)
        assert [(b.start.date(), b.utc) for b in days] == [
            (first + timedelta(days=i), local_midnight(first + timedelta(days=i), tz)) for i in range(3)]
        middle = days[1]
        length = local_midnight(middle.start.date() + timedelta(days=1), tz) - middle.utc
        assert length != timedelta(hours=24) and abs(length - timedelta(hours=24)) <= timedelta(hours=1)


def test_odd_dst_changes_give_short_zone_hours_labelled_by_their_real_start():
    # Chatham jumps from 02:45 (+12:45) to 03:45 (+13:45): the zone hour 03:45-04:00 has 15 minutes.
    chatham = timegrid.buckets("hour", D("2025-09-28"), D("2025-09-28"), CHATHAM)
    assert len(chatham) == 24            # a 23-hour day: 02:00-02:45, 03:45-04:00, and 22 whole hours
    assert chatham[3].utc - chatham[2].utc == timedelta(minutes=45)
    assert chatham[4].utc - chatham[3].utc == timedelta(minutes=15)
    labels = [b.label[11:] for b in chatham]
    assert labels[:5] == ["00:00", "01:00", "02:00", "03:45", "04:00"]
    # Lord Howe goes back from 02:00 (+11:00) to 01:30 (+10:30): the day has 24.5 hours and 25 zone hours,
    # and the half hour after the change is its own bucket, starting at 01:30.
    howe = timegrid.buckets("hour", D("2026-04-05"), D("2026-04-05"), LORD_HOWE)
    assert [(b.label[11:], timegrid.offset_text(b.offset)) for b in howe[:4]] == [
        ("00:00", "+11:00"), ("01:00", "+11:00"), ("01:30", "+10:30"), ("02:00", "+10:30")]
    assert howe[2].repeated and howe[2].fields()["period"] == "2026-04-05 01:30 (UTC+10:30)"


def test_the_repeated_hour_of_a_dst_end_is_two_buckets_with_their_own_offset():
    hours = timegrid.buckets("hour", D("2026-11-01"), D("2026-11-01"), NEW_YORK)
    assert len(hours) == 25
    one_am = [b.fields() for b in hours if b.label == "2026-11-01T01:00"]
    assert one_am == [{"start": "2026-11-01T01:00", "offset": "-04:00", "period": "2026-11-01 01:00 (UTC-04:00)"},
                      {"start": "2026-11-01T01:00", "offset": "-05:00", "period": "2026-11-01 01:00 (UTC-05:00)"}]
    # every other hour keeps the contract's shape and nothing more
    assert hours[0].fields() == {"start": "2026-11-01T00:00", "period": "2026-11-01 00:00"}
    spring = timegrid.buckets("hour", D("2026-03-08"), D("2026-03-08"), NEW_YORK)
    assert len(spring) == 23 and "2026-03-08T02:00" not in [b.label for b in spring]


def test_local_days_today_periods_and_labels():
    # a 23-hour and a 25-hour day; a day whose midnight Chile skips starts at 01:00, when the clocks change
    assert timegrid.local_day_bounds(D("2026-03-08"), D("2026-03-08"), NEW_YORK) == (
        datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC))
    assert timegrid.local_day_bounds(D("2026-11-01"), D("2026-11-02"), NEW_YORK) == (
        datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 3, 5, tzinfo=UTC))
    santiago = "America/Santiago"
    [skip] = [c for c in offset_changes(santiago, 2025) if c.month == 9]
    assert timegrid.local_day_bounds(D("2025-09-07"), D("2025-09-07"), santiago)[0] == skip == local_midnight(
        D("2025-09-07"), santiago)
    now = datetime(2026, 1, 1, 4, 30, tzinfo=UTC)
    assert (timegrid.today(NEW_YORK, now), timegrid.today("Asia/Kolkata", now), timegrid.today(CHATHAM, now)) == (
        D("2025-12-31"), D("2026-01-01"), D("2026-01-01"))
    # ISO weeks are labelled by ISO year; quarters and years are calendar periods
    week = timegrid.bucket_at("week", datetime(2021, 1, 1, 12, tzinfo=UTC), NEW_YORK)
    assert (week.label, week.period) == ("2020-12-28", "2020-W53")
    assert [(b.label, b.period) for b in timegrid.buckets("quarter", D("2025-03-31"), D("2025-04-01"), BERLIN)] == [
        ("2025-01-01", "2025-Q1"), ("2025-04-01", "2025-Q2")]
    assert timegrid.period_bounds("week", datetime(2025, 1, 1, 9)) == (datetime(2024, 12, 30), datetime(2025, 1, 6))
    assert timegrid.period_bounds("quarter", datetime(2025, 5, 17)) == (datetime(2025, 4, 1), datetime(2025, 7, 1))
    # a local time that occurs twice is its first occurrence; a skipped one is the hour after the change
    assert timegrid.period_of("hour", datetime(2026, 11, 1, 1, 30), NEW_YORK).utc == datetime(2026, 11, 1, 5, tzinfo=UTC)
    assert timegrid.period_of("hour", datetime(2026, 3, 8, 2, 30), NEW_YORK).label == "2026-03-08T03:00"
    assert timegrid.previous_start("day", datetime(2025, 3, 31), "mom") == datetime(2025, 2, 28)
    assert timegrid.previous_start("week", datetime(2025, 3, 31), "yoy") == datetime(2024, 4, 1)


# --- SQL ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tz, years", [(CHATHAM, (2025, 2026)), (LORD_HOWE, (2025, 2026)), (NEW_YORK, (2026,)),
                                       (BERLIN, (2026,)), ("America/St_Johns", (2010, 2025)),
                                       ("Asia/Kolkata", ()), ("UTC", ())])
def test_sql_fact_hours_and_local_times_match_zoneinfo_minute_by_minute(tz, years):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(timegrid.fact_hour_macros(tz))
    spans = [(local_midnight(a, tz), local_midnight(b + timedelta(days=1), tz)) for a, b in days_around(tz, years)]
    spans += [(datetime(2025, 12, 31, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))]
    zone = ZoneInfo(tz)
    for begin, end in spans:
        begin = begin.replace(minute=0)
        hours = zone_hours(tz, begin - timedelta(hours=2), end + timedelta(hours=3))
        starts = [h[0] for h in hours]
        minutes = [begin + i * MINUTE for i in range(int((end - begin) / MINUTE))]
        rows = con.execute("SELECT t, fact_hour(t), local_time(t) FROM unnest(?::TIMESTAMPTZ[]) AS m(t) ORDER BY t",
                           [minutes]).fetchall()
        for t, fact, local in rows:
            want = max(s for s in starts if s <= t)
            assert (fact, local) == (want, t.astimezone(zone).replace(tzinfo=None)), (tz, t)
        utc_hours = sorted({m.replace(minute=0) for m in minutes})
        touched = con.execute("SELECT u, touched_fact_hours(u) FROM unnest(?::TIMESTAMPTZ[]) AS x(u) ORDER BY u",
                              [utc_hours]).fetchall()
        for u, facts in touched:
            want = {s for s, e in zip(starts, starts[1:]) if s < u + timedelta(hours=1) and e > u}
            assert set(facts) == want, (tz, u)


# --- through the cube -------------------------------------------------------------------------------------

def make_config(directory, tz: str) -> config.Config:
    return collectors.config_from_dict({"warehouse": {"dir": str(directory), "timezone": tz},
                             "sources": {"s3_access_logs": {"bucket": "b"}, "github": {"repos": ["o/r"]}}},
                            directory / "config.toml")


def download(n: int, ts: datetime) -> dict:
    return {"ts": ts, "bucket": "b", "request_id": f"r{n}", "operation": "REST.GET.OBJECT",
            "key": "cask/1.2.0/cask.tgz", "remote_ip": "198.51.100.1", "user_agent": "curl/8", "http_status": 200}


def raw_times(tz: str, spans: list[tuple[date, date]]) -> list[datetime]:
    """An uneven spread of instants over the local days of `spans`: every 7 minutes plus one in each minute
    after a change (so the short zone hours are not empty)."""
    times = set()
    for first, last in spans:
        begin, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
        times.update(begin + timedelta(minutes=7 * i + i % 5) for i in range(int((end - begin) / timedelta(minutes=7))))
        for change in offset_changes(tz, first.year):
            if begin <= change < end:
                times.update(change + timedelta(seconds=30 + 60 * k) for k in range(20))
    return sorted(times)


def expected_series(tz: str, grain: str, first: date, last: date, times: list[datetime]) -> list[tuple]:
    """(start, offset or None, value) per bucket, from the raw instants alone."""
    zone = ZoneInfo(tz)
    if grain == "hour":
        begin, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
        hours = zone_hours(tz, begin, end)
        starts = [h[0] for h in hours]
        counts = Counter(max(s for s in starts if s <= t) for t in times if begin <= t < end)
        return [(wall.strftime("%Y-%m-%dT%H:%M"), offset_text(offset) if occurs_twice(wall, tz) else None, counts[s])
                for s, wall, offset in hours]
    day_of = [t.astimezone(zone).date() for t in times]
    if grain == "day":
        keys = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        counts = Counter(day_of)
    else:  # week: ISO weeks, Monday first
        keys = sorted({d - timedelta(days=d.weekday()) for d in
                       (first + timedelta(days=i) for i in range((last - first).days + 1))})
        counts = Counter(d - timedelta(days=d.weekday()) for d in day_of)
    return [(k.isoformat(), None, counts[k]) for k in keys]


def answered(cur, cfg, grain: str, first: date, last: date, metric: str = "downloads") -> list[tuple]:
    series = queries.metric_series(cur, cfg, SeriesRequest(metric, grain, first, last))
    return [(p["start"], p.get("offset"), p["value"]) for p in series["points"]]


@pytest.fixture(scope="module", params=[CHATHAM, LORD_HOWE, NEW_YORK, BERLIN])
def zone_cube(request, tmp_path_factory):
    """A warehouse in `tz` with downloads spread over the days around each of the zone's 2026 DST changes
    (2025's too for the southern zones, whose summer spans the new year), rolled up in two batches."""
    tz = request.param
    spans = days_around(tz, (2026,) if tz in (NEW_YORK, BERLIN) else (2025, 2026))
    times = raw_times(tz, spans)
    cfg = make_config(tmp_path_factory.mktemp("zone"), tz)
    writer = Writer(cfg)
    rows = [download(n, ts) for n, ts in enumerate(times)]
    for part in (rows[::2], rows[1::2]):    # the second batch updates the cube incrementally
        writer.commit("s3_access_logs", Batch(records={"raw_s3_access_logs": part}, cursor={"n": len(part)}))
        cube.update(writer.con, cfg)
    yield tz, cfg, writer, spans, times
    writer.close()


def test_series_at_every_dst_change_match_a_recomputation_from_raw_rows(zone_cube):
    tz, cfg, _, spans, times = zone_cube
    reader = Reader(cfg)
    try:
        cur = reader.cursor()
        for first, last in spans:
            for grain in ("hour", "day", "week"):
                want = expected_series(tz, grain, first, last, times)
                assert answered(cur, cfg, grain, first, last) == want, (tz, grain, first)
        if tz == NEW_YORK:   # the brief's example: the two 01:00 hours of 2026-11-01
            hours = answered(cur, cfg, "hour", D("2026-11-01"), D("2026-11-01"))
            assert [h for h in hours if h[0] == "2026-11-01T01:00"] == [
                ("2026-11-01T01:00", "-04:00", sum(1 for t in times if t.date() == D("2026-11-01") and t.hour == 5)),
                ("2026-11-01T01:00", "-05:00", sum(1 for t in times if t.date() == D("2026-11-01") and t.hour == 6))]
            # a period answer for "01:30" is the first 01:00 hour (-04:00), as ?at= on /pipeline/hour reads it
            summary = queries.period_summary(cur, cfg, "hour", datetime(2026, 11, 1, 1, 30), {"dl": "downloads"})
            assert summary == {"start": "2026-11-01T01:00", "end": "2026-11-01T01:00",
                               "dl": sum(1 for t in times if t.date() == D("2026-11-01") and t.hour == 5)}
    finally:
        reader.close()


def test_rollups_keep_the_wall_clock_and_the_start_instant_of_each_bucket(zone_cube):
    tz, _, writer, _, _ = zone_cube
    rows = writer.con.execute("SELECT grain, bucket, bucket_utc FROM lake.rollups WHERE metric = 'downloads'").fetchall()
    assert len({(g, u) for g, _, u in rows}) == len(rows)
    for grain, bucket, bucket_utc in rows:
        assert bucket == bucket_utc.astimezone(ZoneInfo(tz)).replace(tzinfo=None) or grain != "hour"
        assert timegrid.bucket_at(grain, bucket_utc, tz).start == bucket
    if tz == NEW_YORK:
        repeated = [u for g, b, u in rows if g == "hour" and b == datetime(2026, 11, 1, 1)]
        assert sorted(repeated) == [datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)]


def test_a_gauge_keeps_its_own_value_in_each_repeated_hour(tmp_path):
    cfg = make_config(tmp_path, NEW_YORK)
    writer = Writer(cfg)
    try:
        snapshots = [{"ts": datetime(2026, 11, 1, h, m, tzinfo=UTC), "repo": "o/r", "stars": stars, "forks": 1,
                      "watchers": 1, "open_issues": 0}
                     for h, m, stars in ((4, 30, 10), (5, 40, 11), (6, 20, 12), (6, 50, 13))]
        writer.commit("github", Batch(records={"raw_github_snapshots": snapshots}, cursor={"n": 1}))
        cube.update(writer.con, cfg)
        with Reader(cfg).cursor() as cur:
            hours = answered(cur, cfg, "hour", D("2026-11-01"), D("2026-11-01"), "github.stars")
            assert hours[:5] == [("2026-11-01T00:00", None, 10), ("2026-11-01T01:00", "-04:00", 11),
                                 ("2026-11-01T01:00", "-05:00", 13), ("2026-11-01T02:00", None, 13),
                                 ("2026-11-01T03:00", None, 13)]
            wow = queries.metric_series(cur, cfg, SeriesRequest("github.stars", "hour", D("2026-11-08"),
                                                                D("2026-11-08"), compare="wow"))
            # a week later, 01:00 compares with the first 01:00 of the week before
            assert [p["previous"] for p in wow["points"][:3]] == [10, 11, 13]
    finally:
        writer.close()


def test_a_lake_built_before_bucket_utc_rebuilds_its_rollups_on_the_next_update(tmp_path):
    cfg = make_config(tmp_path, NEW_YORK)
    writer = Writer(cfg)
    try:
        times = [datetime(2026, 11, 1, 5, 10, tzinfo=UTC), datetime(2026, 11, 1, 6, 10, tzinfo=UTC),
                 datetime(2026, 11, 1, 6, 20, tzinfo=UTC)]
        writer.commit("s3_access_logs", Batch(records={"raw_s3_access_logs": [
            download(n, ts) for n, ts in enumerate(times)]}, cursor={"n": 3}))
        cube.update(writer.con, cfg)
        # what an older version left behind: no bucket_utc, the two 01:00 hours in one row, an old fingerprint
        writer.con.execute("ALTER TABLE lake.rollups DROP COLUMN bucket_utc")
        writer.con.execute("DELETE FROM lake.rollups WHERE grain = 'hour'")
        writer.con.execute("INSERT INTO lake.rollups VALUES ('hour', TIMESTAMP '2026-11-01 01:00', 'downloads', "
                           "'{\"artifact\":\"cask\",\"version\":\"1.2.0\"}', 3, NULL)")
        writer.con.execute("UPDATE lake.cube_state SET definition = 'America/New_York 0123456789abcdef'")
        writer.close()
        writer = Writer(cfg)          # the writer adds the column when it opens the lake
        cube.update(writer.con, cfg)
        with Reader(cfg).cursor() as cur:
            hours = answered(cur, cfg, "hour", D("2026-11-01"), D("2026-11-01"))
        assert [h for h in hours if h[2]] == [("2026-11-01T01:00", "-04:00", 1), ("2026-11-01T01:00", "-05:00", 2)]
        assert writer.con.execute("SELECT count(*) FROM lake.rollups WHERE bucket_utc IS NULL").fetchone()[0] == 0
    finally:
        writer.close()
