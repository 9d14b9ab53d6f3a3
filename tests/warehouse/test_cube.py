"""The cube, through the real write path (Writer -> ingest.commit -> cube.update) and the real read path
(Reader -> queries.metric_series), against an independent plain-Python recomputation (`reference.py`).

The data crosses the 2024/2025 year boundary (ISO 2025-W01 starts on Monday 2024-12-30), both DST changes
of America/New_York and Europe/Berlin in 2025, a quarter boundary, and has the same weeks a year earlier.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import config
import collectors
from warehouse.writer import Writer
from collectors.base import Batch
from warehouse import cube, ingest, queries
from warehouse.lake import Reader
from warehouse.queries import QueryError, SeriesRequest

from reference import Reference, generate

NEW_YORK, BERLIN = "America/New_York", "Europe/Berlin"
D = date.fromisoformat

# (from, to) per grain: long ranges for the calendar grains; for hours, the new year and the zone's DST days.
HOUR_RANGES = {
    NEW_YORK: [(D("2024-12-29"), D("2025-01-01")), (D("2025-03-08"), D("2025-03-10")),
               (D("2025-11-01"), D("2025-11-03"))],
    BERLIN: [(D("2024-12-29"), D("2025-01-01")), (D("2025-03-29"), D("2025-03-31")),
             (D("2025-10-25"), D("2025-10-27"))],
}
RANGES = {
    "hour": HOUR_RANGES[NEW_YORK] + HOUR_RANGES[BERLIN][1:],
    "day": [(D("2023-12-20"), D("2025-11-10"))],
    "week": [(D("2023-12-01"), D("2025-12-31")), (D("2024-12-28"), D("2025-01-06"))],
    "month": [(D("2023-11-15"), D("2026-01-10"))],
    "quarter": [(D("2023-11-15"), D("2026-01-10"))],
    "year": [(D("2022-06-01"), D("2026-01-10"))],
}
COMPARE_GRAINS = {"wow": ["hour", "day", "week"], "mom": ["hour", "day", "week", "month"],
                  "yoy": ["hour", "day", "week", "month", "quarter", "year"]}
# Compared ranges: short for the fine grains so the grid stays fast; all hour windows for DST.
COMPARE_RANGES = {"hour": HOUR_RANGES[NEW_YORK], "day": [(D("2024-12-15"), D("2025-04-05"))],
                  "week": [(D("2024-12-01"), D("2025-11-10"))], "month": RANGES["month"],
                  "quarter": RANGES["quarter"], "year": RANGES["year"]}
VARIANTS = [  # (metric, where, by)
    ("downloads", None, None),
    ("downloads", {"artifact": ["cask"], "version": ["1.2.0", "10.0.1"]}, None),
    ("downloads", None, ["version"]),
    ("downloads", {"artifact": ["cdap"]}, ["artifact", "version"]),
    ("github.stars", None, None),
    ("github.stars", {"repo": ["o/s"]}, None),
    ("github.stars", None, ["repo"]),
    ("github.watchers", {"repo": ["o/r"]}, None),
]


def make_config(directory, tz: str) -> config.Config:
    return collectors.config_from_dict({"warehouse": {"dir": str(directory), "timezone": tz},
                             "sources": {"s3_access_logs": {"bucket": "b"}, "github": {"repos": ["o/r", "o/s"]}}},
                            directory / "config.toml")


def commit(writer: Writer, source: str, table: str, rows: list[dict], cursor: dict) -> ingest.BatchResult:
    return writer.commit(source, Batch(records={table: rows}, cursor=cursor))


def comparable(answer: dict) -> dict:
    """The contract part of an answer, with `by` series keyed by their dims (order is not the contract)."""
    out = {k: answer[k] for k in ("metric", "grain", "kind")}
    if "series" in answer:
        out["series"] = {tuple(s["dims"].items()): s["points"] for s in answer["series"]}
    else:
        out["points"] = answer["points"]
    return out


def first_difference(got: dict, want: dict) -> str:
    for key in ("metric", "grain", "kind"):
        if got[key] != want[key]:
            return f"{key}: got {got[key]!r}, want {want[key]!r}"
    got_series = got.get("series", {(): got.get("points")})
    want_series = want.get("series", {(): want.get("points")})
    if got_series.keys() != want_series.keys():
        return f"series: got {sorted(got_series)}, want {sorted(want_series)}"
    for dims, want_points in want_series.items():
        got_points = got_series[dims]
        if len(got_points) != len(want_points):
            return (f"{dims}: {len(got_points)} points, want {len(want_points)}: got "
                    f"{[p['start'] for p in got_points][:50]}, want {[p['start'] for p in want_points][:50]}")
        for g, w in zip(got_points, want_points):
            if g != w:
                return f"{dims}: got {g}, want {w}"
    return "equal"


def check_series(cur, cfg, ref: Reference, metric, grain, start, end, where=None, by=None, compare=None) -> None:
    got = queries.metric_series(cur, cfg, SeriesRequest(metric, grain, start, end, where=where, by=by,
                                                        compare=compare))
    want = ref.series(metric, grain, start, end, cfg.warehouse.timezone, where=where, by=by, compare=compare)
    got, want = comparable(got), comparable(want)
    assert got == want, (f"{metric} {grain} {start}..{end} tz={cfg.warehouse.timezone} where={where} by={by} "
                         f"compare={compare}: {first_difference(got, want)}")


def check_every_grain(cfg, ref: Reference) -> None:
    reader = Reader(cfg)
    try:
        cur = reader.cursor()
        for grain, ranges in RANGES.items():
            for start, end in (HOUR_RANGES[cfg.warehouse.timezone] if grain == "hour" else ranges):
                for metric, where, by in VARIANTS:
                    check_series(cur, cfg, ref, metric, grain, start, end, where, by)
    finally:
        reader.close()


def rollups(con) -> list[tuple]:
    return con.execute("SELECT grain, bucket, metric, dims, value, last_ts FROM lake.rollups ORDER BY ALL").fetchall()


def metric_points(con) -> list[tuple]:
    return con.execute("SELECT ts, source, metric, dims, value FROM lake.metric_points ORDER BY ALL").fetchall()


@pytest.fixture(scope="module")
def data():
    return generate()


@pytest.fixture(scope="module")
def reference(data):
    return Reference(data)


@pytest.fixture(scope="module")
def one_batch(tmp_path_factory, data):
    """Everything loaded in one batch per source, rolled up once, reporting zone New York."""
    cfg = make_config(tmp_path_factory.mktemp("one_batch"), NEW_YORK)
    writer = Writer(cfg)
    commit(writer, "s3_access_logs", "raw_s3_access_logs", data.s3, {"after": "all"})
    commit(writer, "github", "raw_github_snapshots", data.snapshots, {"after": "all"})
    cube.update(writer.con, cfg)
    yield cfg, writer
    writer.close()


def test_the_data_covers_every_downloads_rule_case(data, reference):
    statuses = {r["http_status"] for r in data.s3}
    operations = {r["operation"] for r in data.s3}
    assert {200, 206, 304, 404}.issubset(statuses)
    assert {"REST.GET.OBJECT", "WEBSITE.GET.OBJECT", "REST.HEAD.OBJECT", "REST.PUT.OBJECT"}.issubset(operations)
    assert len(data.s3) > data.s3_rows(), "exact duplicate log records are part of the data"
    assert 0 < len(reference.events["downloads"]) < data.s3_rows()


def test_raw_rows_are_deduplicated_by_natural_key(one_batch, data):
    cfg, writer = one_batch
    stored = writer.con.execute("SELECT count(*) FROM lake.raw_s3_access_logs").fetchone()[0]
    assert stored == data.s3_rows()


def test_every_grain_matches_the_reference_in_new_york(one_batch, reference):
    cfg, _ = one_batch
    check_every_grain(cfg, reference)


@pytest.mark.parametrize("compare", ["wow", "mom", "yoy"])
def test_previous_values_match_the_reference(one_batch, reference, compare):
    cfg, _ = one_batch
    reader = Reader(cfg)
    try:
        cur = reader.cursor()
        for grain in COMPARE_GRAINS[compare]:
            for start, end in COMPARE_RANGES[grain]:
                check_series(cur, cfg, reference, "downloads", grain, start, end, compare=compare)
                check_series(cur, cfg, reference, "github.stars", grain, start, end, compare=compare)
        check_series(cur, cfg, reference, "github.forks", "hour", *COMPARE_RANGES["hour"][-1], compare=compare)
        # filters and splits combine with a comparison
        start, end = COMPARE_RANGES["day"][0]
        check_series(cur, cfg, reference, "downloads", "day", start, end, by=["version"],
                     where={"artifact": ["cask"]}, compare=compare)
        check_series(cur, cfg, reference, "github.stars", "day", start, end, by=["repo"], compare=compare)
    finally:
        reader.close()


@pytest.mark.parametrize("compare, grain", [("wow", "month"), ("wow", "quarter"), ("wow", "year"),
                                            ("mom", "quarter"), ("mom", "year"), ("dod", "day")])
def test_a_comparison_longer_grain_than_its_period_is_a_query_error(one_batch, compare, grain):
    cfg, _ = one_batch
    with Reader(cfg).cursor() as cur, pytest.raises(QueryError):
        queries.metric_series(cur, cfg, SeriesRequest("downloads", grain, D("2025-01-01"), D("2025-03-01"),
                                                      compare=compare))


def test_dst_days_have_23_and_25_local_hours_and_iso_weeks_span_the_new_year(one_batch, reference):
    cfg, _ = one_batch
    with Reader(cfg).cursor() as cur:
        spring = queries.metric_series(cur, cfg, SeriesRequest("downloads", "hour", D("2025-03-09"), D("2025-03-09")))
        starts = [p["start"] for p in spring["points"]]
        assert len(starts) == 23 and "2025-03-09T02:00" not in starts
        fall = queries.metric_series(cur, cfg, SeriesRequest("downloads", "hour", D("2025-11-02"), D("2025-11-02")))
        starts = [p["start"] for p in fall["points"]]
        assert len(starts) == 25
        # the repeated 01:00 is two buckets: 05:00-06:00 UTC at -04:00, then 06:00-07:00 UTC at -05:00
        one_am = [(p["offset"], p["period"], p["value"]) for p in fall["points"] if p["start"] == "2025-11-02T01:00"]
        in_utc_hour = [sum(1 for ts, _, _ in reference.events["downloads"] if ts.date() == D("2025-11-02") and ts.hour == h)
                       for h in (5, 6)]
        assert one_am == [("-04:00", "2025-11-02 01:00 (UTC-04:00)", in_utc_hour[0]),
                          ("-05:00", "2025-11-02 01:00 (UTC-05:00)", in_utc_hour[1])]
        assert all(in_utc_hour)
        weeks = queries.metric_series(cur, cfg, SeriesRequest("downloads", "week", D("2024-12-28"), D("2025-01-06")))
        assert [(p["start"], p["period"]) for p in weeks["points"]] == [
            ("2024-12-23", "2024-W52"), ("2024-12-30", "2025-W01"), ("2025-01-06", "2025-W02")]


def test_empty_counter_buckets_inside_the_range_are_zero_and_gauges_carry(one_batch, reference):
    cfg, _ = one_batch
    with Reader(cfg).cursor() as cur:
        # 2025-06 has sparse data only: many hours without downloads or snapshots
        hours = queries.metric_series(cur, cfg, SeriesRequest("downloads", "hour", D("2025-06-10"), D("2025-06-12")))
        assert len(hours["points"]) == 72
        assert sum(1 for p in hours["points"] if p["value"] == 0) > 48
        stars = queries.metric_series(cur, cfg, SeriesRequest("github.stars", "hour", D("2025-06-10"), D("2025-06-12")))
        values = [p["value"] for p in stars["points"]]
        assert len(values) == 72 and all(v > 0 for v in values)
        assert len(set(values)) < 10, "an hour without a snapshot repeats the last value"


def test_recommitting_the_same_records_changes_nothing(one_batch, data, reference):
    cfg, writer = one_batch
    before_rollups, before_points = rollups(writer.con), metric_points(writer.con)
    s3 = commit(writer, "s3_access_logs", "raw_s3_access_logs", list(reversed(data.s3)), {"after": "again"})
    gh = commit(writer, "github", "raw_github_snapshots", data.snapshots, {"after": "again"})
    assert (s3.inserted, s3.duplicates) == (0, len(data.s3))
    assert (gh.inserted, gh.duplicates) == (0, len(data.snapshots))
    cube.update(writer.con, cfg)
    assert rollups(writer.con) == before_rollups
    assert metric_points(writer.con) == before_points
    assert writer.cursor("s3_access_logs") == {"after": "again"}
    with Reader(cfg).cursor() as cur:
        check_series(cur, cfg, reference, "downloads", "month", *RANGES["month"][0])


@pytest.fixture(scope="module")
def many_batches(tmp_path_factory, data):
    """The same records in shuffled batches (late data included), with a cube update after each."""
    cfg = make_config(tmp_path_factory.mktemp("many_batches"), NEW_YORK)
    writer = Writer(cfg)
    rng = random.Random(7)
    s3, snapshots = list(data.s3), list(data.snapshots)
    rng.shuffle(s3)
    rng.shuffle(snapshots)
    cuts = 5
    for i in range(cuts):
        commit(writer, "s3_access_logs", "raw_s3_access_logs", s3[i::cuts], {"chunk": i})
        commit(writer, "github", "raw_github_snapshots", snapshots[i::cuts], {"chunk": i})
        if i in (1, 3, 4):   # the first update builds from nothing, the next ones are incremental
            cube.update(writer.con, cfg)
    yield cfg, writer
    writer.close()


def test_many_incremental_batches_give_the_same_rollups_as_one(one_batch, many_batches, data):
    # a 206 group split across batches must still count once
    batches = {row[0]: row[1] for row in many_batches[1].con.execute(
        "SELECT request_id, _batch FROM lake.raw_s3_access_logs").fetchall()}
    groups: dict = {}
    for r in data.s3:
        if r["http_status"] == 206:
            groups.setdefault((r["ts"].replace(minute=0, second=0), r["remote_ip"], r["user_agent"], r["key"]),
                              set()).add(batches[r["request_id"]])
    assert any(len(b) > 1 for b in groups.values())
    assert rollups(many_batches[1].con) == rollups(one_batch[1].con)
    assert metric_points(many_batches[1].con) == metric_points(one_batch[1].con)


def test_changing_the_timezone_rebuilds_every_rollup(many_batches, one_batch, reference):
    cfg, writer = many_batches
    berlin = make_config(cfg.warehouse_dir, BERLIN)
    cube.update(writer.con, berlin)
    check_every_grain(berlin, reference)
    # and back: exactly the rollups of a warehouse that was always in New York
    cube.update(writer.con, cfg)
    assert rollups(writer.con) == rollups(one_batch[1].con)


def test_unknown_metric_dimension_or_grain_is_a_query_error(one_batch):
    cfg, _ = one_batch
    with Reader(cfg).cursor() as cur:
        for req in [SeriesRequest("nope"), SeriesRequest("downloads", "minute"),
                    SeriesRequest("downloads", where={"repo": ["o/r"]}), SeriesRequest("github.stars", by=["version"]),
                    SeriesRequest("downloads", "day", D("2025-02-01"), D("2025-01-01"))]:
            with pytest.raises(QueryError):
                queries.metric_series(cur, cfg, req)


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"])
def test_zones_with_half_hour_offsets_bucket_by_local_time(tmp_path, zone):
    """In a zone offset by :30 or :45, 23:50 and 00:10 local time fall on two days and in two local hours."""
    cfg = make_config(tmp_path, zone)
    local = ZoneInfo(zone)
    before_midnight = datetime(2025, 1, 1, 23, 50, tzinfo=local).astimezone(timezone.utc)
    after_midnight = datetime(2025, 1, 2, 0, 10, tzinfo=local).astimezone(timezone.utc)
    writer = Writer(cfg)
    try:
        commit(writer, "s3_access_logs", "raw_s3_access_logs", [
            {"ts": ts, "bucket": "b", "request_id": f"k{n}", "operation": "REST.GET.OBJECT",
             "key": "cask/1.2.0/cask.tgz", "remote_ip": f"198.51.100.{n}", "user_agent": "curl/8", "http_status": 200}
            for n, ts in enumerate([before_midnight, after_midnight, after_midnight + timedelta(minutes=5)])],
            {"after": "k2"})
        cube.update(writer.con, cfg)
        with Reader(cfg).cursor() as cur:
            days = queries.metric_series(cur, cfg, SeriesRequest("downloads", "day", D("2025-01-01"), D("2025-01-02")))
            hours = queries.metric_series(cur, cfg, SeriesRequest("downloads", "hour", D("2025-01-01"), D("2025-01-02")))
        assert [(p["start"], p["value"]) for p in days["points"]] == [("2025-01-01", 1), ("2025-01-02", 2)]
        nonzero = [(p["start"], p["value"]) for p in hours["points"] if p["value"]]
        assert [(start[11:16], value) for start, value in nonzero] == [("23:00", 1), ("00:00", 2)]
    finally:
        writer.close()


def test_partial_downloads_group_by_utc_hour_in_a_half_hour_zone_even_when_records_arrive_late(tmp_path):
    """The downloads rule groups 206 records by UTC hour (ARCHITECTURE.md). In India a UTC hour spans two
    local hours: the group counts once, in the local hour of its first record, also when that record
    arrives in a later batch than the rest of the group."""
    cfg = make_config(tmp_path, "Asia/Kolkata")

    def partial(n: int, hour: int, minute: int) -> dict:
        return {"ts": datetime(2025, 3, 3, hour, minute, tzinfo=timezone.utc), "bucket": "b", "request_id": f"p{n}",
                "operation": "REST.GET.OBJECT", "key": "cask/1.2.0/cask.tgz", "remote_ip": "198.51.100.7",
                "user_agent": "aria2/1.36", "http_status": 206}
    writer = Writer(cfg)
    try:
        with Reader(cfg).cursor() as cur:
            def local_hours() -> list[tuple[str, int]]:
                hours = queries.metric_series(cur, cfg, SeriesRequest("downloads", "hour", D("2025-03-03"), D("2025-03-03")))
                return [(p["start"][11:16], p["value"]) for p in hours["points"] if p["value"]]
            # 10:40 UTC is 16:10 IST; 11:05 UTC (16:35 IST) is the next UTC hour: a second download.
            commit(writer, "s3_access_logs", "raw_s3_access_logs", [partial(1, 10, 40), partial(2, 11, 5)], {"after": "p2"})
            cube.update(writer.con, cfg)
            assert local_hours() == [("16:00", 2)]
            # A late record of the first group, 10:20 UTC = 15:50 IST: the group now starts an hour earlier.
            commit(writer, "s3_access_logs", "raw_s3_access_logs", [partial(3, 10, 20)], {"after": "p3"})
            cube.update(writer.con, cfg)
            assert local_hours() == [("15:00", 1), ("16:00", 1)]
    finally:
        writer.close()
