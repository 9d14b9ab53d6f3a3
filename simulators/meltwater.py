"""A local Meltwater API for the demo and the tests: saved searches and their analytics summary, in the shapes
of Meltwater's public OpenAPI (v3), over deterministic generated mention history.

    GET /v3/searches                          {"searches": [{"id", "name", "updated"}]}
    GET /v3/analytics/{searchId}?start=YYYY-MM-DDTHH:MM:SS&end=...&tz=Area/City[&source=news]
        SummaryResponse: {"volume": {"document_count", "per_day", "per_hour"}, "unique_authors",
        "sentiment": {...}, "top_countries": [...], "top_languages": [...],
        "time_series": [{"date", "document_count", "hours": [{"timestamp", "document_count"}]}]}

`start` and `end` carry no offset: they are local to `tz` (an IANA name, "UTC" or an offset such as
"+02:00"), and so are the response's dates and hour timestamps; `end` is exclusive. Authentication is the
`apikey` header (403 {"message": "Unauthorized"} without the right one); an unknown search is a 404
{"message": "Not Found", "errors": {":searchId": [...]}}; bad parameters a 400 "Validation Failed"; 429
"Service Overloaded" and 503 "Service Unavailable" as the OpenAPI's examples.

History: per search, mentions per UTC hour from `start`, drawn from a generator seeded by (seed, search,
day): a base level from the brand's name, growth, quiet weekends, working-hours peaks, and press spikes
around dated events (Cask's launch, Informatica's acquisition news, ...). Counts settle late, as Meltwater's
do while it indexes: an hour shows 70 % of its documents once it has passed, and all of them 48 hours later.

    python -m simulators.meltwater --port 8096 --searches 27558=cask,27559=informatica [--key-env VAR]
"""
from __future__ import annotations

import math
import os
import random
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulators.jsonserver import JsonApiSimulator, Reply, Request, argument_parser, serve_until_stopped
from simulators.randomness import poisson, stable_number

UTC = timezone.utc
DEFAULT_START = date(2025, 1, 1)
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 9, 9, 9, 8, 8, 7, 6, 5, 4, 4, 3, 2)   # UTC: EU + US day
WEEKDAY_FACTOR = (1.1, 1.2, 1.2, 1.15, 1.0, 0.45, 0.4)
FIRST_SHOWN = 0.7                         # share of an hour's documents indexed once the hour has passed
SETTLED_AFTER = timedelta(hours=48)       # ... and all of them this long after it
EVENTS = {                                # press: (day, extra mentions at the peak as a multiple of the base)
    "cask": ((date(2025, 6, 17), 4.0), (date(2026, 4, 14), 9.0)),
    "informatica": ((date(2025, 5, 27), 6.0), (date(2025, 11, 18), 2.0)),
    "talend": ((date(2025, 9, 9), 3.0),),
    "fivetran": ((date(2025, 5, 14), 3.0), (date(2026, 3, 3), 2.5)),
}
BASE_LEVEL = {"cask": 45, "informatica": 260, "talend": 120, "fivetran": 170}
SIMULATED_OUTAGE = timedelta(minutes=3)   # the demo: analytics of the last month unavailable at first
OUTAGE_DAYS = 30


@dataclass
class SavedSearch:
    """One brand's saved search and its mentions per UTC hour, generated a day at a time and cached."""
    search_id: int
    name: str
    seed: int = 1
    start: date = DEFAULT_START

    def __post_init__(self):
        self._hours: dict[date, list[int]] = {}
        self.base = BASE_LEVEL.get(self.name.lower(), stable_number(self.name, 20, 200))

    def expected(self, day: date) -> float:
        trend = 1 + 0.35 * (day - self.start).days / 365.25
        press = sum(boost * math.exp(-(day - when).days / 2.5) for when, boost in EVENTS.get(self.name.lower(), ())
                    if day >= when)
        return self.base * trend * WEEKDAY_FACTOR[day.weekday()] * (1 + press)

    def hours_of(self, day: date) -> list[int]:
        """Final mention counts of the 24 UTC hours of `day` (zeros before the history starts)."""
        if day < self.start:
            return [0] * 24
        if day not in self._hours:
            rng = random.Random(f"{self.seed}/{self.search_id}/{day.isoformat()}")
            total = poisson(rng, self.expected(day))
            counts = [0] * 24
            for hour in rng.choices(range(24), weights=HOUR_WEIGHTS, k=total):
                counts[hour] += 1
            self._hours[day] = counts
        return self._hours[day]

    def visible(self, hour_start: datetime, now: datetime) -> int:
        """What the API shows at `now` of the documents of the UTC hour starting at `hour_start`."""
        final = self.hours_of(hour_start.date())[hour_start.hour]
        age = now - (hour_start + timedelta(hours=1))
        if age < timedelta(0):
            passed = max(0.0, (now - hour_start).total_seconds() / 3600)
            return math.floor(final * passed * FIRST_SHOWN)
        if age >= SETTLED_AFTER:
            return final
        return math.floor(final * (FIRST_SHOWN + (1 - FIRST_SHOWN) * age / SETTLED_AFTER))


def zone_of(tz: str):
    if re.fullmatch(r"[+-]\d\d:\d\d", tz):
        sign = 1 if tz[0] == "+" else -1
        return timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6])))
    return ZoneInfo(tz)


class MeltwaterSimulator(JsonApiSimulator):
    server_name = "Meltwater"

    def __init__(self, searches: dict[int, str], *, seed: int = 1, start: date = DEFAULT_START,
                 api_key: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.searches = {sid: SavedSearch(sid, name, seed, start) for sid, name in searches.items()}
        self.api_key = api_key            # None: any apikey is accepted

    def error_body(self, status: int, message: str) -> object:
        return {429: {"message": "Service Overloaded", "errors": {}}, 403: {"message": "Unauthorized"},
                503: {"message": "Service Unavailable", "errors": {}}}.get(status, {"message": message, "errors": {}})

    def in_outage(self, request: Request) -> bool:
        """The demo's outage: summaries reaching into the last OUTAGE_DAYS days fail for a while."""
        return request.path.startswith("/v3/analytics/") and request.query.get("end", "") > (
            self.now() - timedelta(days=OUTAGE_DAYS)).strftime("%Y-%m-%dT%H:%M:%S")

    def route(self, request: Request) -> Reply:
        given = request.headers.get("apikey", "")
        if not given or (self.api_key is not None and given != self.api_key):
            return Reply(403, {"message": "Unauthorized"})
        if request.path == "/v3/searches":
            return Reply(200, {"searches": [{"updated": "2024-11-04T09:12:44Z", "id": s.search_id, "name": s.name}
                                            for s in self.searches.values()]})
        match = re.fullmatch(r"/v3/analytics/([^/]+)", request.path)
        if not match:
            return Reply(404, {"message": "Not Found", "errors": {}})
        search = self.searches.get(int(match.group(1))) if match.group(1).isdigit() else None
        if search is None:
            return Reply(404, {"message": "Not Found",
                               "errors": {":searchId": ["A Saved Search with that ID could not be found"]}})
        return self._summary(search, request.query)

    def _summary(self, search: SavedSearch, query: dict[str, str]) -> Reply:
        problems: dict[str, list[str]] = {}
        bounds = {}
        for name in ("start", "end"):
            value = query.get(name)
            if value is None:
                problems[name] = ["Missing required parameter"]
                continue
            try:
                bounds[name] = datetime.fromisoformat(value)
                if bounds[name].tzinfo is not None or "T" not in value:
                    raise ValueError
            except ValueError:
                problems[name] = [f"'{value}' is not a valid ISO 8601 local timestamp"]
        try:
            zone = zone_of(query.get("tz", ""))
        except (ZoneInfoNotFoundError, ValueError):
            problems["tz"] = [f"'{query.get('tz', '')}' is not a valid timezone"]
        if not problems and bounds["start"] >= bounds["end"]:
            problems["end"] = ["end must be after start"]
        if problems:
            return Reply(400, {"message": "Validation Failed", "errors": problems})
        return Reply(200, self.summary(search, bounds["start"].replace(tzinfo=zone),
                                       bounds["end"].replace(tzinfo=zone), zone))

    def summary(self, search: SavedSearch, start: datetime, end: datetime, zone) -> dict:
        now = self.now()
        days: dict[date, list[dict]] = {}
        moment = start.astimezone(UTC).replace(minute=0, second=0)
        while moment < end and moment <= now:          # hours that have begun: the present one partly
            local = moment.astimezone(zone)
            shown = search.visible(moment, now)
            days.setdefault(local.date(), []).append({"timestamp": local.isoformat(timespec="seconds"),
                                                      "document_count": shown})
            moment += timedelta(hours=1)
        total = sum(h["document_count"] for hours in days.values() for h in hours)
        hours_count = max(1, sum(len(h) for h in days.values()))
        rng = random.Random(f"{search.search_id}/{start.isoformat()}/{end.isoformat()}")
        positive, negative, unknown = round(total * 0.18), round(total * 0.04), round(total * 0.03)
        parts = {"positive": positive, "negative": negative, "neutral": total - positive - negative - unknown,
                 "unknown": unknown}
        pct = lambda n: round(100 * n / total, 2) if total else 0.0     # noqa: E731
        countries = [("US", 0.56 + rng.random() * 0.04), ("GB", 0.12), ("DE", 0.07), ("IN", 0.06), ("ZZ", 0.03)]
        return {
            "volume": {"document_count": total, "per_day": round(total / max(1, len(days))),
                       "per_hour": round(total / hours_count)},
            "unique_authors": round(total * 0.61),
            "sentiment": {k: {"document_count": n, "percentage": pct(n)} for k, n in parts.items()},
            "top_countries": [{"country_code": c, "document_count": round(total * s),
                               "percentage": pct(round(total * s))} for c, s in countries],
            "top_languages": [{"language_code": "en", "document_count": round(total * 0.84),
                               "percentage": pct(round(total * 0.84))},
                              {"language_code": "de", "document_count": round(total * 0.06),
                               "percentage": pct(round(total * 0.06))}],
            "time_series": [{"date": day.isoformat(), "document_count": sum(h["document_count"] for h in hours),
                             "hours": hours} for day, hours in sorted(days.items())],
        }

    def final_count(self, search_id: int, day: date, zone) -> int:
        """The settled mentions of the local `day` in `zone` (what a test expects once they settled)."""
        search = self.searches[search_id]
        first = datetime.combine(day, time.min, zone).astimezone(UTC)
        after = datetime.combine(day + timedelta(days=1), time.min, zone).astimezone(UTC)
        total, moment = 0, first
        while moment < after:
            total += search.hours_of(moment.date())[moment.hour]
            moment += timedelta(hours=1)
        return total


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    meltwater = cfg.sources.meltwater
    port = urlsplit(meltwater.api_url).port or 80
    searches = ",".join(f"{search_id}={brand}" for brand, search_id in meltwater.brands.items())
    return ["--port", str(port), "--searches", searches, "--key-env", meltwater.api_key_env, "--outage"], port


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser("simulators.meltwater", __doc__, port=8096, since=DEFAULT_START)
    parser.add_argument("--searches", required=True, help="comma-separated id=name saved searches")
    parser.add_argument("--key-env", help="variable holding the only apikey accepted (default: any)")
    parser.add_argument("--outage", action="store_true",
                        help=f"for the first {SIMULATED_OUTAGE} answer 503 to summaries of the last {OUTAGE_DAYS} days")
    args = parser.parse_args(argv)
    try:
        searches = {int(sid): name for sid, _, name in (item.partition("=") for item in args.searches.split(","))}
    except ValueError:
        print(f"error: --searches must look like 27558=cask,27559=informatica, got {args.searches!r}", file=sys.stderr)
        return 2
    key = os.environ.get(args.key_env) if args.key_env else None
    outage_until = datetime.now(UTC) + SIMULATED_OUTAGE if args.outage else None
    sim = MeltwaterSimulator(searches, seed=args.seed, start=args.since, api_key=key, host=args.host,
                             port=args.port, outage_until=outage_until)
    return serve_until_stopped(sim, "Meltwater simulator on {url} for "
                                    + ", ".join(f"{n} ({i})" for i, n in searches.items()))


if __name__ == "__main__":
    sys.exit(main())
