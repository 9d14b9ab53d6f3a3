"""Time in the reporting zone (`[warehouse] timezone`): the one place that turns instants into zone hours,
buckets, labels, local days and periods, in Python and in SQL.

Everything is derived from one table per zone: its UTC offset changes from 1970 to 2100, read from Python's
zoneinfo (`zone_table`). Python answers from that table directly; SQL gets the same table as DuckDB
variables of fixed-width cells (`fact_hour_macros`), so the cube and the series query can never disagree
with each other or with `today()` about a zone's offsets, and no query calls ICU's `timezone()`.

- A **zone hour** (the cube's fact, `fact_hour(t)`) is a stretch of time with one local wall-clock hour
  and one UTC offset: normally a local hour, but shorter where an offset change falls inside a local hour
  (Pacific/Chatham changes at 02:45 local, so one fact is 03:45-04:00; Australia/Lord_Howe moves by 30
  minutes, so one fact is 02:30-03:00). Every bucket of every grain is therefore a union of whole facts,
  whatever the zone's offsets are at each instant.
- A **bucket** has a local wall-clock start (`Bucket.start`, a naive datetime) and the instant it starts
  (`Bucket.utc`). Day, week (ISO, Monday), month, quarter and year buckets are local calendar periods, so
  days have 23, 24 or 25 hours (23.5 or 24.5 on Lord Howe). Hour buckets are zone hours: when DST ends the
  wall-clock hour that repeats (America/New_York 2026-11-01 01:00 at -04:00, then at -05:00) is two
  buckets, and a zone hour that starts mid-hour is labelled with its real start (03:45).
- In the lake a rollup row keeps both: `bucket` (local wall clock, readable) and `bucket_utc` (the start
  instant, which with `grain` identifies the bucket; the two repeated hours share `bucket`).
- **Labels.** The REST contract gives each point `"start": "YYYY-MM-DD[THH:MM]"`, and that shape stays on
  every point, the repeated hour included, so no consumer meets a new format. The two repeated hours are
  told apart by a field added to those two points only: `"offset": "-04:00"` / `"-05:00"`, the UTC offset at
  the bucket's start (`start` + `offset` is then an exact ISO 8601 instant), and their human label `period`
  gets it too ("2026-11-01 01:00 (UTC-04:00)"). Every other point keeps exactly the keys and values it
  had: an offset on all 8,760 hours of a year would change every hourly answer to fix two of them, while
  a consumer that keys hours by `start` has to look at `offset` only where `start` repeats.

Exact for instants from 1970 to 2100 (outside, the first or last offset of that span holds) and for every
zone whose offset changes are at least a day apart (all of tzdata).
"""
from __future__ import annotations

import calendar
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

UTC = timezone.utc
GRAINS = ("hour", "day", "week", "month", "quarter", "year")
GRAIN_LENGTH = {"hour": "INTERVAL 1 HOUR", "day": "INTERVAL 1 DAY", "week": "INTERVAL 7 DAY",
                "month": "INTERVAL 1 MONTH", "quarter": "INTERVAL 3 MONTH", "year": "INTERVAL 1 YEAR"}
# Period-over-period: what each comparison shifts by, and the grains it is meaningful for.
COMPARE_SHIFT = {
    "wow": ("7 days", {"hour", "day", "week"}),
    "mom": ("1 calendar month", {"hour", "day", "week", "month"}),
    "yoy": ("364 days for hours, days and weeks (same weekday); 1 calendar year otherwise", set(GRAINS)),
}
DEFAULT_SPAN = {"hour": timedelta(days=2), "day": timedelta(days=90), "week": timedelta(weeks=26),
                "month": timedelta(days=730), "quarter": timedelta(days=1095), "year": timedelta(days=1826)}

ERA = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NAIVE_EPOCH = datetime(1970, 1, 1)
HOUR_US = 3_600_000_000
DAY_S = 86_400
FAR_PAST, FAR_FUTURE = -(2 ** 62), 2 ** 63 - 1      # microseconds; "no change before / after"
CELLS_VARIABLE = "timegrid_cells"
# Part of the cube's definition fingerprint: a cube built with another fact-hour or bucket rule is rebuilt.
REPRESENTATION = "zone-hours/bucket_utc v2"


def _us(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(microseconds=1)


def _naive_us(local: datetime) -> int:
    return (local - NAIVE_EPOCH) // timedelta(microseconds=1)


def _instant(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def _naive(us: int) -> datetime:
    return NAIVE_EPOCH + timedelta(microseconds=us)


def check_grain(grain: str) -> str:
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}, got {grain!r}")
    return grain


@dataclass(frozen=True)
class ZoneTable:
    """A zone's UTC offsets as periods: from `starts[i]` (µs since the epoch; starts[0] is FAR_PAST) until
    the next start, the offset is `offsets[i]` µs."""
    name: str
    starts: tuple[int, ...]
    offsets: tuple[int, ...]

    def period(self, us: int) -> int:
        return bisect_right(self.starts, us) - 1

    def offset_us(self, us: int) -> int:
        return self.offsets[self.period(us)]

    def fact_start(self, us: int) -> int:
        """Start of the zone hour holding `us`: its local hour's start, or the offset change inside it."""
        i = self.period(us)
        return max(us - (us + self.offsets[i]) % HOUR_US, self.starts[i])

    def fact_end(self, us: int) -> int:
        i = self.period(us)
        next_hour = us - (us + self.offsets[i]) % HOUR_US + HOUR_US
        return min(next_hour, self.starts[i + 1]) if i + 1 < len(self.starts) else next_hour

    def instants(self, local_us: int) -> list[int]:
        """Every instant whose local wall clock is `local_us`: none (skipped), one, or two (repeated)."""
        i = max(self.period(local_us - 2 * DAY_S * 10**6), 0)
        found = []
        for j in range(i, len(self.starts)):
            if self.starts[j] > local_us + 2 * DAY_S * 10**6:
                break
            candidate = local_us - self.offsets[j]
            if self.starts[j] <= candidate and (j + 1 == len(self.starts) or candidate < self.starts[j + 1]):
                found.append(candidate)
        return found

    def first_instant(self, local_us: int) -> int:
        """The first instant whose local wall clock is at or after `local_us` (the transition itself when
        that wall-clock time was skipped)."""
        i = max(self.period(local_us - 2 * DAY_S * 10**6), 0)
        for j in range(i, len(self.starts)):
            end = self.starts[j + 1] if j + 1 < len(self.starts) else FAR_FUTURE
            if end == FAR_FUTURE or end + self.offsets[j] > local_us:
                return max(self.starts[j], local_us - self.offsets[j])
        raise AssertionError("unreachable: the last period never ends")


def _offset_of(zone: ZoneInfo, seconds: int) -> int:
    return int(datetime.fromtimestamp(seconds, zone).utcoffset().total_seconds())


@lru_cache(maxsize=None)
def zone_table(tz: str) -> ZoneTable:
    """The zone's offset changes in ERA, found by stepping a day at a time and bisecting to the second."""
    zone = ZoneInfo(tz)
    first, end = int(ERA[0].timestamp()), int(ERA[1].timestamp())
    starts, offsets = [FAR_PAST], [_offset_of(zone, first) * 10**6]
    t, offset = first, _offset_of(zone, first)
    while t < end:
        step = min(t + DAY_S, end)
        changed = _offset_of(zone, step)
        if changed != offset:
            low, high = t, step
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset_of(zone, middle) == offset else (low, middle)
            starts.append(high * 10**6)
            offsets.append(changed * 10**6)
        t, offset = step, changed
    return ZoneTable(tz, tuple(starts), tuple(offsets))


# --- Python answers -----------------------------------------------------------------------------------

def utc_offset(instant: datetime, tz: str) -> timedelta:
    return timedelta(microseconds=zone_table(tz).offset_us(_us(instant)))


def local_time(instant: datetime, tz: str) -> datetime:
    """The naive local wall-clock time of an aware instant."""
    us = _us(instant)
    return _naive(us + zone_table(tz).offset_us(us))


def now_local(tz: str, now: datetime | None = None) -> datetime:
    return local_time(now or datetime.now(UTC), tz)


def today(tz: str, now: datetime | None = None) -> date:
    """The local date in the reporting zone now (or at the aware instant `now`)."""
    return now_local(tz, now).date()


def first_instant(local: datetime, tz: str) -> datetime:
    """The instant a local wall-clock time first occurs (for a skipped time: the change that skipped it)."""
    return _instant(zone_table(tz).first_instant(_naive_us(local)))


def local_day_bounds(first: date, last: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants where local day `first` starts and local day `last` ends (half-open)."""
    return (first_instant(datetime.combine(first, time()), tz),
            first_instant(datetime.combine(last + timedelta(days=1), time()), tz))


def trunc(grain: str, local: datetime) -> datetime:
    """Calendar start of the `grain` period holding a naive local time (ISO weeks start on Monday)."""
    check_grain(grain)
    if grain == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = datetime(local.year, local.month, local.day)
    return {"day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1),
            "quarter": day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1),
            "year": day.replace(month=1, day=1)}[grain]


def add_months(local: datetime, months: int) -> datetime:
    """`months` calendar months later (earlier if negative); the day is clamped to the month's length."""
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    return local.replace(year=year, month=month, day=min(local.day, calendar.monthrange(year, month)[1]))


def next_start(grain: str, start: datetime) -> datetime:
    """The wall-clock start of the period after the one starting at `start` (a `trunc` result)."""
    check_grain(grain)
    if grain in ("hour", "day", "week"):
        return start + {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}[grain]
    return add_months(start, {"month": 1, "quarter": 3, "year": 12}[grain])


def period_bounds(grain: str, at: datetime) -> tuple[datetime, datetime]:
    """Local wall-clock start of the `grain` period holding the naive local time `at`, and the next one's."""
    start = trunc(grain, at)
    return start, next_start(grain, start)


def previous_start(grain: str, start: datetime, compare: str) -> datetime:
    """The wall-clock start of the bucket that `compare` (wow, mom, yoy) sets beside the one at `start`:
    yoy is 364 days back (same weekday) for hours, days and weeks and one calendar year otherwise."""
    if compare == "wow":
        shifted = start - timedelta(days=7)
    elif compare == "mom":
        shifted = add_months(start, -1)
    elif compare == "yoy":
        shifted = start - timedelta(days=364) if grain in ("hour", "day", "week") else add_months(start, -12)
    else:
        raise ValueError(f"compare must be one of {', '.join(COMPARE_SHIFT)}, got {compare!r}")
    return trunc(grain, shifted)


def start_label(grain: str, start: datetime) -> str:
    """The REST `start` of a bucket: YYYY-MM-DDTHH:MM for hours, YYYY-MM-DD otherwise."""
    return start.strftime("%Y-%m-%dT%H:%M") if grain == "hour" else start.strftime("%Y-%m-%d")


def period_name(grain: str, start: datetime) -> str:
    """A bucket's human name: 2025-W01 for ISO weeks (by ISO year), 2025-Q2, 2025-03, 2025-03-09 14:00."""
    if grain == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return {"hour": start.strftime("%Y-%m-%d %H:%M"), "day": start.strftime("%Y-%m-%d"),
            "month": start.strftime("%Y-%m"), "quarter": f"{start.year}-Q{(start.month - 1) // 3 + 1}",
            "year": str(start.year)}[check_grain(grain)]


def offset_text(offset: timedelta) -> str:
    """+HH:MM (with :SS only for the odd historical offset that has seconds)."""
    seconds = int(offset.total_seconds())
    sign, seconds = ("-" if seconds < 0 else "+"), abs(seconds)
    text = f"{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
    return text + (f":{seconds % 60:02d}" if seconds % 60 else "")


@dataclass(frozen=True)
class Bucket:
    grain: str
    start: datetime          # local wall-clock start, naive
    utc: datetime            # the instant it starts, aware UTC
    offset: timedelta        # the UTC offset at that instant
    repeated: bool = False   # hour grain: its wall-clock start occurs twice (the hour DST's end repeats)

    @property
    def key(self) -> int:
        """Microseconds since the epoch of `utc`: what `epoch_us(bucket_utc)` gives for its rollup rows."""
        return _us(self.utc)

    @property
    def label(self) -> str:
        return start_label(self.grain, self.start)

    @property
    def period(self) -> str:
        name = period_name(self.grain, self.start)
        return f"{name} (UTC{offset_text(self.offset)})" if self.repeated else name

    def fields(self) -> dict:
        """The time fields of a series point: start, offset (only for a repeated hour), and period."""
        out = {"start": self.label}
        if self.repeated:
            out["offset"] = offset_text(self.offset)
        out["period"] = self.period
        return out


def _hour_bucket(table: ZoneTable, fact_us: int) -> Bucket:
    offset = table.offset_us(fact_us)
    local = fact_us + offset
    return Bucket("hour", _naive(local), _instant(fact_us), timedelta(microseconds=offset),
                  repeated=len(table.instants(local)) > 1)


def _calendar_bucket(table: ZoneTable, grain: str, start: datetime) -> Bucket:
    utc_us = table.first_instant(_naive_us(start))
    return Bucket(grain, start, _instant(utc_us), timedelta(microseconds=table.offset_us(utc_us)))


def bucket_at(grain: str, instant: datetime, tz: str) -> Bucket:
    """The `grain` bucket holding an aware instant."""
    table = zone_table(tz)
    fact = table.fact_start(_us(instant))
    if check_grain(grain) == "hour":
        return _hour_bucket(table, fact)
    return _calendar_bucket(table, grain, trunc(grain, _naive(fact + table.offset_us(fact))))


def period_of(grain: str, at: datetime, tz: str) -> Bucket:
    """The `grain` bucket holding the naive local time `at` (a repeated time: its first occurrence; a
    skipped one: the time just after the change)."""
    return bucket_at(grain, first_instant(at, tz), tz)


def buckets(grain: str, first: date, last: date, tz: str) -> list[Bucket]:
    """Every bucket overlapping the local days [first, last], in time order. Hours are zone hours (both
    repeated hours of a DST end; none for a skipped hour); a calendar period no instant falls in (a day a
    zone skipped across the date line) has no bucket."""
    table = zone_table(tz)
    begin = table.first_instant(_naive_us(datetime.combine(first, time())))
    end = table.first_instant(_naive_us(datetime.combine(last + timedelta(days=1), time())))
    out: list[Bucket] = []
    if check_grain(grain) == "hour":
        t = begin
        while t < end:
            out.append(_hour_bucket(table, t))
            t = table.fact_end(t)
        return out
    start = trunc(grain, datetime.combine(first, time()))
    while start <= datetime.combine(last, time()):
        following = next_start(grain, start)
        if table.first_instant(_naive_us(start)) < table.first_instant(_naive_us(following)):
            out.append(_calendar_bucket(table, grain, start))
        start = following
    return out


# --- SQL ------------------------------------------------------------------------------------------------

def _cell_width_us(table: ZoneTable) -> int:
    """Cells hold at most one offset change: the largest power-of-two seconds below the smallest gap."""
    gaps = [b - a for a, b in zip(table.starts[1:], table.starts[2:])]
    width = 2 ** 24
    while gaps and width * 10**6 > min(gaps):
        width //= 2
    return width * 10**6


def _hour_phase(table: ZoneTable) -> int | None:
    """The seconds past the UTC hour where every zone hour starts, when there is one such phase: every
    offset has the same minutes and every change falls on a local hour. None otherwise (Lord Howe moves by
    30 minutes; Chatham changes at 02:45; St John's changed at 00:01 until 2011)."""
    phases = {(-o // 10**6) % 3600 for o in table.offsets}
    if len(phases) == 1 and all((s + table.offset_us(s)) % HOUR_US == 0 for s in table.starts[1:]):
        return phases.pop()
    return None


def fact_hour_macros(tz: str) -> str:
    """SQL that sets the zone's offset cells (variables `timegrid_cells_*`, from `zone_table`) and defines the macros
    the cube and every hourly SQL use:

    - `fact_hour(t)`: the start (TIMESTAMPTZ) of the zone hour holding the TIMESTAMPTZ `t`: the local
      hour's start at the offset in force at `t`, or the offset change if that came later in the hour;
    - `touched_fact_hours(t)`: every zone hour overlapping the UTC hour of `t`, which a new record can
      change (the downloads rule groups 206 records by UTC hour);
    - `local_time(t)`: the local wall clock (TIMESTAMP) at `t`;
    - `timegrid_utc(ts)`: a naive TIMESTAMP read as UTC, as TIMESTAMPTZ.

    Where every zone hour starts at one phase of the UTC hour (`_hour_phase`: New York, Berlin, India,
    Nepal, ...) `fact_hour` is plain arithmetic. Elsewhere, and for `local_time`, each row looks up its cell:
    a cell is a fixed slice of time holding the offset at its start, the change inside it if any (at most
    one) and the last change before it. Microsecond arithmetic and list lookups: no ICU, no join, no
    per-row lambda. (The cells are four flat BIGINT lists rather than one list of structs: DuckDB copies
    a constant each time it plans an expression, and flat lists copy several times faster.)"""
    table = zone_table(tz)
    width = _cell_width_us(table)
    first, end = _us(ERA[0]), _us(ERA[1])
    count = -(-(end - first) // width)
    changes = ", ".join(f"({s}::BIGINT, {o}::BIGINT)" for s, o in zip(table.starts, table.offsets))
    index = f"(least(greatest((us - {first}) // {width}, 0), {count - 1})::INTEGER + 1)"
    field = {name: f"getvariable('{CELLS_VARIABLE}_{name}')[{index}]" for name in ("change", "before", "after", "since")}
    into_hour = (f"CASE WHEN us < {field['change']} "
                 f"THEN least(((us + {field['before']}) % {HOUR_US} + {HOUR_US}) % {HOUR_US}, us - {field['since']}) "
                 f"ELSE least(((us + {field['after']}) % {HOUR_US} + {HOUR_US}) % {HOUR_US}, us - {field['change']}) END")
    phase = _hour_phase(table)
    fact_hour = (f"date_trunc('hour', t + INTERVAL {phase} SECOND) - INTERVAL {phase} SECOND" if phase
                 else "date_trunc('hour', t)" if phase == 0
                 else "t - to_microseconds(timegrid_into_hour_us(epoch_us(t)))")
    # Every second within a UTC hour where a zone hour can start: where a local hour starts at each of the
    # zone's offsets, and where each change happened. Usually just :00, or :30 in India.
    seconds = sorted({(-o // 10**6) % 3600 for o in table.offsets}
                     | {(s // 10**6) % 3600 for s in table.starts[1:]} | {0})
    touched = ", ".join(f"fact_hour(date_trunc('hour', t) + INTERVAL {s} SECOND)" for s in seconds)
    touched = f"[{touched}]" if len(seconds) == 1 else f"list_distinct([{touched}])"
    lists = "; ".join(f"SET VARIABLE {CELLS_VARIABLE}_{name} = (SELECT list({name} ORDER BY i) FROM timegrid_cells)"
                      for name in field)
    return f"""
        CREATE OR REPLACE TEMP TABLE timegrid_cells AS
            WITH changes(since, utc_offset) AS (VALUES {changes}),
            cells AS (SELECT i, {first} + i * {width} AS low FROM range({count}) AS r(i))
            SELECT i, coalesce(inside.since, {FAR_FUTURE}) AS change, earlier.utc_offset AS before,
                   coalesce(inside.utc_offset, earlier.utc_offset) AS after, earlier.since AS since
            FROM cells ASOF JOIN changes AS earlier ON cells.low >= earlier.since
            LEFT JOIN changes AS inside ON inside.since > cells.low AND inside.since < cells.low + {width};
        {lists};
        CREATE OR REPLACE TEMP MACRO timegrid_offset_us(us) AS
            CASE WHEN us < {field['change']} THEN {field['before']} ELSE {field['after']} END;
        CREATE OR REPLACE TEMP MACRO timegrid_into_hour_us(us) AS {into_hour};
        CREATE OR REPLACE TEMP MACRO fact_hour(t) AS {fact_hour};
        CREATE OR REPLACE TEMP MACRO touched_fact_hours(t) AS {touched};
        CREATE OR REPLACE TEMP MACRO local_time(t) AS make_timestamp(epoch_us(t) + timegrid_offset_us(epoch_us(t)));
        CREATE OR REPLACE TEMP MACRO timegrid_utc(ts) AS TIMESTAMPTZ '1970-01-01 00:00:00+00' + to_microseconds(epoch_us(ts));
    """


def bucket_sql(grain: str, fact_sql: str) -> str:
    """SQL for the local wall-clock start (TIMESTAMP) of the `grain` bucket holding the zone hour that starts
    at the TIMESTAMPTZ `fact_sql` (a `fact_hour`): for hours the zone hour's own start, otherwise the
    calendar period's start (date_trunc: ISO weeks start on Monday). Needs `fact_hour_macros`."""
    if check_grain(grain) == "hour":
        return f"local_time({fact_sql})"
    return f"date_trunc('{grain}', local_time({fact_sql}))"


def fact_hours_sql(first_local_sql: str, end_local_sql: str) -> str:
    """SQL for `h`: every zone hour overlapping [first, end), two naive TIMESTAMP expressions read as UTC
    (so give a day of margin either side for local bounds). Needs `fact_hour_macros`."""
    return (f"SELECT DISTINCT unnest(touched_fact_hours(timegrid_utc(u))) AS h "
            f"FROM range(date_trunc('hour', {first_local_sql}), {end_local_sql}, INTERVAL 1 HOUR) AS r(u)")
