"""Deterministic raw records for the cube tests, and an independent plain-Python recomputation of what
`warehouse.queries.metric_series` must answer (zoneinfo for the time zones, no DuckDB).

The recomputation follows the contract words, not the SQL:
- a download is a REST/WEBSITE GET of a key matching `version_pattern` with status 200; the 206 records of
  one (remote IP, user agent, key) in one UTC hour count once; everything else is not a download;
- records are deduplicated by their natural key (bucket, request ID, operation, key);
- buckets are local periods in the reporting zone (week = ISO Monday); an hour bucket is a local hour at
  one UTC offset, so the hour a DST end repeats is two buckets (same `start`, each with its `offset`),
  keyed here by the UTC instant they start;
- a counter is the sum in the bucket (0 when empty); a gauge is the last observation at or before the
  bucket's end (carried through empty buckets, None before the first one), summed over the series of a group
  that have one;
- previous values: wow = 7 days back, mom = 1 calendar month back, yoy = 364 days back for hour/day/week
  and 1 calendar year back for month/quarter/year, truncated to the grain, on the wall clock; a previous
  hour that a DST change skipped does not exist: 0 for a counter, None for a gauge; a repeated one is its
  first occurrence;
- a bucket is complete once it has ended (always, for this old data) and its source has a fact hour starting
  at or after its end (the bucket after it starts at its end: an hour later in real time, a day, ...).
"""
from __future__ import annotations

import calendar
import random
import re
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

UTC = timezone.utc
PATTERN = re.compile(r"(?P<artifact>[^/]+)/(?P<version>\d+(?:\.\d+)+)/")   # the config default
DOWNLOAD_OPERATIONS = {"REST.GET.OBJECT", "WEBSITE.GET.OBJECT"}
ARTIFACTS = ["cask", "cdap"]
VERSIONS = ["1.2.0", "3.5.0", "10.0.1"]
NON_MATCHING_KEYS = ["index.html", "releases/cask/latest/cask.tar.gz", "cask/1/cask.zip",
                     "cask/v1.2.0/cask.zip", "docs/3.5.0"]
IPS = [f"203.0.113.{i}" for i in range(1, 9)]
AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "aws-cli/2.15", None]
REPOS = ["o/r", "o/s"]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Dense data around every calendar edge the grains have, plus the same weeks a year (364 days) earlier.
WINDOWS = [
    (utc(2023, 12, 27), utc(2024, 1, 9)),     # a year before the year boundary (yoy)
    (utc(2024, 2, 28), utc(2024, 3, 14)),     # 364 days before the New York DST start (yoy)
    (utc(2024, 12, 26), utc(2025, 1, 9)),     # year boundary; ISO 2025-W01 starts Monday 2024-12-30
    (utc(2025, 2, 27), utc(2025, 3, 13)),     # New York DST start 2025-03-09, and the week before (wow)
    (utc(2025, 3, 28), utc(2025, 4, 2)),      # Berlin DST start 2025-03-30; Q1 -> Q2
    (utc(2025, 10, 24), utc(2025, 10, 28)),   # Berlin DST end 2025-10-26
    (utc(2025, 10, 31), utc(2025, 11, 4)),    # New York DST end 2025-11-02
]
SPARSE = (utc(2024, 1, 1), utc(2025, 12, 31))  # a thin spread for month/quarter/year
EDGES = [  # instants on either side of a local midnight, week start, quarter start or DST change
    utc(2025, 1, 1, 4, 59, 59), utc(2025, 1, 1, 5), utc(2024, 12, 31, 22, 59, 59), utc(2024, 12, 31, 23),
    utc(2024, 12, 30, 4, 59, 59), utc(2024, 12, 30, 5), utc(2024, 12, 29, 22, 59, 59), utc(2024, 12, 29, 23),
    utc(2025, 3, 9, 6, 59, 59), utc(2025, 3, 9, 7), utc(2025, 3, 9, 7, 30),
    utc(2025, 11, 2, 4, 59), utc(2025, 11, 2, 5, 10), utc(2025, 11, 2, 6, 10), utc(2025, 11, 2, 7),
    utc(2025, 3, 30, 0, 59, 59), utc(2025, 3, 30, 1), utc(2025, 10, 26, 0, 10), utc(2025, 10, 26, 1, 10),
    utc(2025, 4, 1, 3, 59, 59), utc(2025, 4, 1, 4), utc(2025, 3, 31, 21, 59, 59), utc(2025, 3, 31, 22),
]


@dataclass
class Dataset:
    s3: list[dict] = field(default_factory=list)          # raw_s3_access_logs rows (with exact duplicates)
    snapshots: list[dict] = field(default_factory=list)   # raw_github_snapshots rows

    def s3_rows(self) -> int:
        return len({natural_key(r) for r in self.s3})


def natural_key(row: dict) -> tuple:
    return row["bucket"], row["request_id"], row["operation"], row["key"]


def generate(seed: int = 20250309) -> Dataset:
    rng = random.Random(seed)
    data = Dataset()
    counter = iter(range(10**9))

    def key(matching: bool = True) -> str:
        if not matching:
            return rng.choice(NON_MATCHING_KEYS)
        a, v = rng.choice(ARTIFACTS), rng.choice(VERSIONS)
        return rng.choice([f"releases/{a}/{v}/{a}-{v}.tar.gz", f"{a}/{v}/{a}.zip"])

    def record(ts, *, operation="REST.GET.OBJECT", k=None, status=200, ip=None, ua="", request_id=None):
        row = {"ts": ts, "bucket": "b", "request_id": request_id or f"REQ{next(counter):09d}",
               "operation": operation, "key": k if k is not None else key(), "remote_ip": ip or rng.choice(IPS),
               "user_agent": rng.choice(AGENTS) if ua == "" else ua, "http_status": status,
               "bytes_sent": rng.randint(0, 10**7), "log_object": f"logs/{ts:%Y-%m-%d-%H}-X"}
        data.s3.append(row)
        return row

    def in_hour(hour: datetime) -> datetime:
        return hour + timedelta(seconds=rng.randrange(3600))

    def event(ts: datetime) -> None:
        kind = rng.choices(["get200", "website200", "range206", "mixed", "other_status", "head", "put", "copy",
                            "non_matching", "duplicate", "lone206"],
                           weights=[45, 5, 12, 3, 12, 6, 4, 2, 10, 4, 3])[0]
        if kind == "get200":
            record(ts)
        elif kind == "website200":
            record(ts, operation="WEBSITE.GET.OBJECT")
        elif kind in ("range206", "mixed"):
            k, ip, ua = key(), rng.choice(IPS), rng.choice(AGENTS)
            hour = ts.replace(minute=0, second=0)
            for _ in range(rng.randint(1, 4)):
                record(in_hour(hour), k=k, ip=ip, ua=ua, status=206)
            if kind == "mixed":
                record(in_hour(hour), k=k, ip=ip, ua=ua, status=200)
            if rng.random() < 0.25:   # the same client again in the next UTC hour: a second download
                record(in_hour(hour + timedelta(hours=1)), k=k, ip=ip, ua=ua, status=206)
            if rng.random() < 0.25:   # another client for the same key in the same hour: another download
                record(in_hour(hour), k=k, ip=rng.choice([i for i in IPS if i != ip]), ua=ua, status=206)
        elif kind == "lone206":
            record(ts, status=206)
        elif kind == "other_status":
            record(ts, status=rng.choice([304, 403, 404, 500, 503]))
        elif kind == "head":
            record(ts, operation="REST.HEAD.OBJECT")
        elif kind == "put":
            record(ts, operation="REST.PUT.OBJECT")
        elif kind == "copy":
            record(ts, operation="REST.COPY.OBJECT")
        elif kind == "non_matching":
            record(ts, k=key(matching=False))
        elif kind == "duplicate" and data.s3:
            data.s3.append(dict(rng.choice(data.s3)))     # S3 delivered the same log line twice

    def random_instant(start: datetime, end: datetime) -> datetime:
        return start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))

    for start, end in WINDOWS:
        for _ in range(int((end - start).total_seconds() // 3600 * 1.1)):
            event(random_instant(start, end))
    for _ in range(400):
        event(random_instant(*SPARSE))
    for ts in EDGES:
        record(ts)
        record(ts, status=206)

    # Stars, forks and watchers snapshots: a random walk per repo in time order, unique (repo, ts).
    for repo, base in zip(REPOS, (100, 40)):
        times = set(EDGES if repo == "o/r" else [])
        for start, end in WINDOWS:
            times.update(random_instant(start, end) for _ in range(int((end - start).days * 6)))
        times.update(random_instant(*SPARSE) for _ in range(80))
        stars, forks = base, base // 4
        for ts in sorted(times):
            stars = max(0, stars + rng.randint(-2, 5))
            forks = max(0, forks + rng.randint(-1, 2))
            data.snapshots.append({"ts": ts, "repo": repo, "stars": stars, "forks": forks,
                                   "watchers": stars // 3, "open_issues": rng.randint(0, 30)})
    rng.shuffle(data.snapshots)
    return data


# --- the independent recomputation ---------------------------------------------------------------------

def downloads(data: Dataset) -> list[tuple[datetime, dict]]:
    """(UTC time, dims) once per download, by the contract's downloads rule."""
    seen, groups, out = set(), set(), []
    for row in data.s3:
        if natural_key(row) in seen:
            continue
        seen.add(natural_key(row))
        if row["operation"] not in DOWNLOAD_OPERATIONS:
            continue
        match = PATTERN.search(row["key"])
        if not match:
            continue
        dims = {"artifact": match["artifact"], "version": match["version"]}
        if row["http_status"] == 200:
            out.append((row["ts"], dims))
        elif row["http_status"] == 206:
            hour = row["ts"].replace(minute=0, second=0, microsecond=0)
            group = (hour, row["remote_ip"], row["user_agent"], row["key"])
            if group not in groups:
                groups.add(group)
                out.append((hour, dims))
    return out


def observations(data: Dataset, field_name: str) -> list[tuple[datetime, dict, int]]:
    return [(row["ts"], {"repo": row["repo"]}, row[field_name]) for row in data.snapshots]


def local(ts: datetime, tz: str) -> datetime:
    return ts.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def trunc(grain: str, t: datetime) -> datetime:
    # A deliberate twin of warehouse.timegrid.trunc: the oracle recomputes everything without the code it checks.
    if grain == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    d = datetime(t.year, t.month, t.day)
    return {"day": d, "week": d - timedelta(days=d.weekday()), "month": d.replace(day=1),
            "quarter": d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1),
            "year": d.replace(month=1, day=1)}[grain]


def hour_key(ts: datetime, tz: str) -> datetime:
    """The UTC instant the local hour holding `ts` starts (at `ts`'s own offset: zones with whole-hour
    offset changes, such as New York and Berlin)."""
    return ts.astimezone(ZoneInfo(tz)).replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def bucket_key(grain: str, ts: datetime, tz: str) -> datetime:
    return hour_key(ts, tz) if grain == "hour" else trunc(grain, local(ts, tz))


def bucket_list(grain: str, start: date, end: date, tz: str) -> list[datetime]:
    """Bucket keys overlapping [start, end] (local dates), in order: for hours, the UTC start of every
    local hour walking real time (both hours a DST end repeats); otherwise local period starts."""
    if grain == "hour":
        zone = ZoneInfo(tz)
        t = datetime.combine(start, time(), zone).astimezone(UTC)
        stop = datetime.combine(end + timedelta(days=1), time(), zone).astimezone(UTC)
        out: list[datetime] = []
        while t < stop:
            out.append(hour_key(t, tz))
            t += timedelta(hours=1)
        return out
    return sorted({trunc(grain, datetime.combine(start + timedelta(days=i), time()))
                   for i in range((end - start).days + 1)})


def exists(naive: datetime, tz: str) -> bool:
    """False for a wall-clock time skipped by a DST change."""
    return local(naive.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC), tz) == naive


def add_months(t: datetime, months: int) -> datetime:
    month0 = t.month - 1 + months
    year, month = t.year + month0 // 12, month0 % 12 + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def previous_bucket(grain: str, b: datetime, compare: str) -> datetime:
    if compare == "wow":
        shifted = b - timedelta(days=7)
    elif compare == "mom":
        shifted = add_months(b, -1)
    elif grain in ("hour", "day", "week"):
        shifted = b - timedelta(days=364)
    else:
        shifted = add_months(b, -12)
    return trunc(grain, shifted)


def wall_clock(grain: str, b: datetime, tz: str) -> datetime:
    return local(b, tz) if grain == "hour" else b


def repeated(naive: datetime, tz: str) -> bool:
    """A wall-clock time that occurs twice (the hour a DST end repeats)."""
    zone, naive = ZoneInfo(tz), naive.replace(fold=0)
    return exists(naive, tz) and naive.replace(tzinfo=zone).utcoffset() != naive.replace(tzinfo=zone, fold=1).utcoffset()


def offset_label(b: datetime, tz: str) -> str:
    minutes = int(b.astimezone(ZoneInfo(tz)).utcoffset().total_seconds()) // 60
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def time_fields(grain: str, b: datetime, tz: str) -> dict:
    """start, period; on the two hours a DST end repeats also the UTC offset, in `offset` and in `period`."""
    wall = wall_clock(grain, b, tz)
    if grain != "hour":
        return {"start": wall.strftime("%Y-%m-%d"), "period": period_label(grain, wall)}
    if not repeated(wall, tz):
        return {"start": wall.strftime("%Y-%m-%dT%H:%M"), "period": period_label(grain, wall)}
    return {"start": wall.strftime("%Y-%m-%dT%H:%M"), "offset": offset_label(b, tz),
            "period": f"{period_label(grain, wall)} (UTC{offset_label(b, tz)})"}


def period_label(grain: str, b: datetime) -> str:
    if grain == "week":
        year, week, _ = b.isocalendar()
        return f"{year}-W{week:02d}"
    if grain == "quarter":
        return f"{b.year}-Q{(b.month - 1) // 3 + 1}"
    return b.strftime({"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[grain])


def bucket_end(grain: str, b: datetime) -> datetime:
    if grain in ("hour", "day", "week"):
        return b + {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}[grain]
    return add_months(b, {"month": 1, "quarter": 3, "year": 12}[grain])


def _frozen(d: dict | None) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in (d or {}).items()))


class Reference:
    def __init__(self, data: Dataset):
        self.data = data
        events = {"downloads": [(ts, dims, 1) for ts, dims in downloads(data)],
                  "github.stars": observations(data, "stars"),
                  "github.forks": observations(data, "forks"),
                  "github.watchers": observations(data, "watchers")}
        self.events = {metric: sorted(rows, key=lambda e: e[0]) for metric, rows in events.items()}
        self.kinds = {"downloads": "counter", "github.stars": "gauge", "github.forks": "gauge",
                      "github.watchers": "gauge"}
        # Each source's newest fact hour (whole UTC hours: the test zones have whole-hour offsets).
        self.latest = {"downloads": max(ts for ts, _, _ in self.events["downloads"]).replace(minute=0, second=0),
                       "github": max(row["ts"] for row in data.snapshots).replace(minute=0, second=0)}

    @lru_cache(maxsize=None)
    def _table(self, metric: str, grain: str, tz: str, where: tuple, by: tuple):
        """counter: {(bucket, group): sum}; gauge: {group: {series dims: ([bucket keys], [values])}}."""
        wanted = dict(where)
        rows = [(bucket_key(grain, ts, tz), dims, value) for ts, dims, value in self.events[metric]
                if all(dims.get(k) in vs for k, vs in wanted.items())]
        if self.kinds[metric] == "counter":
            sums: dict = defaultdict(int)
            for b, dims, value in rows:
                sums[(b, tuple(dims[d] for d in by))] += value
            return dict(sums)
        series: dict = defaultdict(lambda: defaultdict(lambda: ([], [])))
        for b, dims, value in rows:   # events are in time order, so bucket keys are non-decreasing
            keys, values = series[tuple(dims[d] for d in by)][tuple(sorted(dims.items()))]
            keys.append(b)
            values.append(value)
        return {group: dict(per_series) for group, per_series in series.items()}

    def value(self, metric: str, grain: str, tz: str, where: tuple, by: tuple, group: tuple, b: datetime):
        table = self._table(metric, grain, tz, where, by)
        if self.kinds[metric] == "counter":
            return table.get((b, group), 0)
        seen = [values[i] for keys, values in table.get(group, {}).values() if (i := bisect_right(keys, b) - 1) >= 0]
        return sum(seen) if seen else None

    def groups(self, metric: str, grain: str, tz: str, where: tuple, by: tuple, buckets: list[datetime]) -> list:
        table = self._table(metric, grain, tz, where, by)
        if self.kinds[metric] == "counter":
            inside = set(buckets)
            return sorted({g for (b, g) in table if b in inside})
        return sorted(g for g, per_series in table.items()
                      if any(keys and keys[0] <= buckets[-1] for keys, _ in per_series.values()))

    def series(self, metric: str, grain: str, start: date, end: date, tz: str, *, where: dict | None = None,
               by: list[str] | None = None, compare: str | None = None) -> dict:
        """What `metric_series` must answer: the contract's keys, plus each point's `period` label."""
        where_key, by_key = _frozen(where), tuple(by or [])
        buckets = bucket_list(grain, start, end, tz)
        latest_utc = self.latest["downloads" if metric == "downloads" else "github"]
        latest = local(latest_utc, tz)

        def points(group: tuple) -> list[dict]:
            out = []
            for b in buckets:
                point = {**time_fields(grain, b, tz),
                         "value": self.value(metric, grain, tz, where_key, by_key, group, b)}
                if compare:
                    p = previous_bucket(grain, wall_clock(grain, b, tz), compare)
                    if grain != "hour":
                        point["previous"] = self.value(metric, grain, tz, where_key, by_key, group, p)
                    elif exists(p, tz):   # a repeated wall clock: its first occurrence (fold 0)
                        p = p.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
                        point["previous"] = self.value(metric, grain, tz, where_key, by_key, group, p)
                    else:                 # a wall clock that a DST change skipped has no bucket
                        point["previous"] = 0 if self.kinds[metric] == "counter" else None
                # hour buckets are UTC instants, longer ones local wall-clock starts
                point["complete"] = bucket_end(grain, b) <= (latest_utc if grain == "hour" else latest)
                out.append(point)
            return out

        answer = {"metric": metric, "grain": grain, "kind": self.kinds[metric]}
        if by:
            answer["series"] = [{"dims": dict(zip(by, g)), "points": points(g)}
                                for g in self.groups(metric, grain, tz, where_key, by_key, buckets)]
        else:
            answer["points"] = points(())
        return answer
