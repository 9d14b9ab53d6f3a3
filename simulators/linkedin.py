"""A local LinkedIn Marketing API for the demo and the tests: the two endpoints Caskalytics reads, in
LinkedIn's Rest.li 2.0 wire format, over deterministic generated follower history.

    GET /rest/networkSizes/urn:li:organization:{id}?edgeType=COMPANY_FOLLOWED_BY_MEMBER
        -> {"firstDegreeSize": N}                    (the path's URN may be percent-encoded)
    GET /rest/organizationalEntityFollowerStatistics?q=organizationalEntity
            &organizationalEntity=urn%3Ali%3Aorganization%3A{id}
            &timeIntervals=(timeRange:(start:MS,end:MS),timeGranularityType:DAY)[&start=S&count=C]
        -> {"paging": {"start", "count", "links": [{"rel": "next", "href", "type"}]},
            "elements": [{"timeRange": {"start", "end"}, "followerGains": {"organicFollowerGain",
                          "paidFollowerGain"}, "organizationalEntity"}]}
        without timeIntervals: the lifetime answer, follower counts by facet (a sketch of it).

Headers as LinkedIn requires them: `Authorization: Bearer <token>` (401 INVALID_ACCESS_TOKEN /
EXPIRED_ACCESS_TOKEN with a serviceErrorCode otherwise), `LinkedIn-Version: YYYYMM` (400 VERSION_MISSING,
426 NONEXISTENT_VERSION for a version before 202401 or after the clock's month) and
`X-Restli-Protocol-Version: 2.0.0`. Errors are LinkedIn's envelope {"status", "serviceErrorCode", "code",
"message"}. Time-bound statistics cover UTC days, only complete ones (a day appears `STATS_DELAY` after it
ends) and only the last 12 months (400 for an older start), ten elements a page by default.

History: from `start`, each day drawn from a generator seeded by (seed, organization, day): organic follows
grow through the year, dip at weekends and jump after a product launch; paid follows come in campaigns;
a few members unfollow (the statistics count gains only, as LinkedIn's do). The follower count at a moment
adds today's follows pro rata, so it moves through the day.

    python -m simulators.linkedin --port 8095 --organization 2414183 [--token-env DEMO_LINKEDIN_ACCESS_TOKEN]
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

from simulators.jsonserver import JsonApiSimulator, Reply, Request, argument_parser, serve_until_stopped
from simulators.randomness import poisson

UTC = timezone.utc
DEFAULT_START = date(2025, 1, 1)
DAY_MS = 86_400_000
STATS_DELAY = timedelta(hours=10)           # a day's statistics appear this long after it ends
RETENTION = timedelta(days=365)             # time-bound statistics: the last 12 months only
PAGE_SIZE = 10
WEEKDAY_FACTOR = (1.15, 1.2, 1.2, 1.1, 1.0, 0.55, 0.5)
LAUNCHES = (date(2025, 6, 17), date(2026, 4, 14))                       # product launches: organic spikes
CAMPAIGNS = ((date(2025, 3, 3), 21), (date(2025, 10, 6), 14), (date(2026, 2, 2), 21),
             (date(2026, 9, 7), 14))                                    # paid campaigns (start, days)
OLDEST_VERSION = "202401"
SIMULATED_OUTAGE = timedelta(minutes=3)     # the demo: statistics of the last month unavailable at first
OUTAGE_DAYS = 30


@dataclass(frozen=True)
class DayStats:
    organic: int
    paid: int
    unfollows: int

    @property
    def net(self) -> int:
        return self.organic + self.paid - self.unfollows


class FollowerHistory:
    """Every day's follows of one organization from `start`, generated on demand and cached."""

    def __init__(self, organization: str, seed: int = 1, start: date = DEFAULT_START, base: int = 8_200):
        self.organization, self.seed, self.start, self.base = organization, seed, start, base
        self._days: list[DayStats] = []
        self._net_before: list[int] = [0]    # _net_before[i] = net follows of the days before start + i

    def day(self, day: date) -> DayStats | None:
        index = (day - self.start).days
        if index < 0:
            return None
        while len(self._days) <= index:
            stats = self._generate(self.start + timedelta(days=len(self._days)))
            self._days.append(stats)
            self._net_before.append(self._net_before[-1] + stats.net)
        return self._days[index]

    def _generate(self, day: date) -> DayStats:
        rng = random.Random(f"{self.seed}/{self.organization}/{day.isoformat()}")
        trend = 1 + 0.6 * (day - self.start).days / 365.25
        launch = max((4.0 * math.exp(-(day - d).days / 4) for d in LAUNCHES if day >= d), default=0.0)
        organic = poisson(rng, 9 * trend * WEEKDAY_FACTOR[day.weekday()] * (1 + launch))
        paid = sum(poisson(rng, 22 * WEEKDAY_FACTOR[day.weekday()]) for first, days in CAMPAIGNS
                   if first <= day < first + timedelta(days=days))
        unfollows = poisson(rng, 0.04 * (organic + paid) + 0.3)
        return DayStats(organic, paid, unfollows)

    def followers_at(self, moment: datetime) -> int:
        """The page's follower count at `moment`: full days before it, and today's follows pro rata."""
        today = moment.astimezone(UTC).date()
        if today < self.start:
            return self.base
        stats = self.day(today)
        elapsed = (moment - datetime.combine(today, time.min, UTC)).total_seconds() / 86_400
        return self.base + self._net_before[(today - self.start).days] + math.floor(stats.net * elapsed)


def _error(status: int, code: str, message: str, service_code: int | None = None) -> Reply:
    body = {"status": status, "code": code, "message": message}
    if service_code is not None:
        body["serviceErrorCode"] = service_code
    return Reply(status, body)


class LinkedInSimulator(JsonApiSimulator):
    server_name = "LinkedIn"

    def __init__(self, organizations: list[str], *, seed: int = 1, start: date = DEFAULT_START,
                 token: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.histories = {org: FollowerHistory(org, seed, start) for org in organizations}
        self.token = token                  # None: any bearer token is accepted
        self.token_expired = False          # a test flips it: every call answers 401 EXPIRED_ACCESS_TOKEN
        self.page_size = PAGE_SIZE
        self.injected: list[object] = []    # raw elements a test appends to every statistics answer

    def error_body(self, status: int, message: str) -> object:
        codes = {429: ("TOO_MANY_REQUESTS", 101), 500: ("INTERNAL_SERVER_ERROR", None),
                 503: ("SERVICE_UNAVAILABLE", None), 504: ("GATEWAY_TIMEOUT", None)}
        code, service_code = codes.get(status, ("ERROR", None))
        if status == 429:
            message = "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."
        return _error(status, code, message, service_code).body

    def in_outage(self, request: Request) -> bool:
        """The demo's outage: time-bound statistics reaching into the last OUTAGE_DAYS days fail for a while."""
        window = _time_range(request.raw_query)
        return window is not None and window[1] > (self.now() - timedelta(days=OUTAGE_DAYS)).timestamp() * 1000

    # -- requests -------------------------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        refused = self._check_headers(request)
        if refused:
            return refused
        if request.path.startswith("/rest/networkSizes/"):
            return self._network_size(request)
        if request.path == "/rest/organizationalEntityFollowerStatistics":
            return self._follower_statistics(request)
        return _error(404, "NOT_FOUND", f"No virtual resource found for {request.path}")

    def _check_headers(self, request: Request) -> Reply | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token or (self.token is not None and token != self.token):
            return _error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600)
        if self.token_expired:
            return _error(401, "EXPIRED_ACCESS_TOKEN", "The token used in the request has expired", 65601)
        version = request.headers.get("linkedin-version", "")
        if not version:
            return _error(400, "VERSION_MISSING", "A version must be present. Please specify a version by adding "
                                                  "the LinkedIn-Version header.")
        newest = self.now().strftime("%Y%m")
        if not re.fullmatch(r"\d{6}(\.\d\d)?", version) or not OLDEST_VERSION <= version[:6] <= newest:
            return _error(426, "NONEXISTENT_VERSION", f"Requested version {version} is not active")
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            return _error(400, "ILLEGAL_ARGUMENT", "Rest.li protocol 2.0.0 is required: send "
                                                   "X-Restli-Protocol-Version: 2.0.0")
        return None

    def _organization(self, urn: str) -> FollowerHistory | None:
        match = re.fullmatch(r"urn:li:organization:(\d+)", urn)
        return self.histories.get(match.group(1)) if match else None

    def _network_size(self, request: Request) -> Reply:
        history = self._organization(request.path.removeprefix("/rest/networkSizes/"))
        if history is None:
            return _error(404, "NOT_FOUND", "Organization not found", 100)
        if request.query.get("edgeType") != "COMPANY_FOLLOWED_BY_MEMBER":
            return _error(400, "ILLEGAL_ARGUMENT", "edgeType must be COMPANY_FOLLOWED_BY_MEMBER for an organization")
        return Reply(200, {"firstDegreeSize": history.followers_at(self.now())})

    def _follower_statistics(self, request: Request) -> Reply:
        if request.query.get("q") != "organizationalEntity":
            return _error(400, "ILLEGAL_ARGUMENT", "q must be organizationalEntity")
        urn = request.query.get("organizationalEntity", "")
        history = self._organization(urn)
        if history is None:
            return _error(403, "ACCESS_DENIED", "Not enough permissions to access: organizationalEntity"
                                                "FollowerStatistics.FINDER-organizationalEntity", 100)
        if "timeIntervals" not in request.query:
            return Reply(200, _lifetime(history, urn, self.now()))
        window = _time_range(request.raw_query)
        if window is None or "timeGranularityType:DAY" not in request.raw_query:
            return _error(400, "ILLEGAL_ARGUMENT", "timeIntervals must be (timeRange:(start:<ms>,end:<ms>),"
                                                   "timeGranularityType:DAY)")
        start_ms, end_ms = window
        now = self.now()
        oldest = datetime.combine((now - RETENTION).date(), time.min, UTC)
        if start_ms < oldest.timestamp() * 1000 or start_ms >= end_ms:
            return _error(400, "ILLEGAL_ARGUMENT", "timeRange.start must be before timeRange.end and within the "
                                                   "last 12 months", 100)
        elements = []
        day_start = start_ms - start_ms % DAY_MS
        while day_start + DAY_MS <= end_ms:
            day = datetime.fromtimestamp(day_start / 1000, UTC)
            stats = history.day(day.date())
            if stats is not None and day + timedelta(days=1) + STATS_DELAY <= now:
                elements.append({"timeRange": {"start": day_start, "end": day_start + DAY_MS},
                                 "followerGains": {"organicFollowerGain": stats.organic,
                                                   "paidFollowerGain": stats.paid},
                                 "organizationalEntity": urn})
            day_start += DAY_MS
        return Reply(200, self._page(request, elements + self.injected))

    def _page(self, request: Request, elements: list[dict]) -> dict:
        first = int(request.query.get("start", "0") or 0)
        count = int(request.query.get("count", "0") or 0) or self.page_size
        links = []
        if first + count < len(elements):
            query = re.sub(r"&?(start|count)=\d+", "", request.raw_query)
            links.append({"rel": "next", "type": "application/json",
                          "href": f"{request.path}?{query}&start={first + count}&count={count}"})
        return {"paging": {"start": first, "count": count, "links": links}, "elements": elements[first:first + count]}


def _time_range(raw_query: str) -> tuple[int, int] | None:
    """(start, end) in epoch ms from a Rest.li 2.0 `timeIntervals=(timeRange:(start:..,end:..),...)`."""
    match = re.search(r"timeRange:\(start:(\d+),end:(\d+)\)", raw_query.replace("%3A", ":").replace("%28", "(")
                      .replace("%29", ")").replace("%2C", ","))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _lifetime(history: FollowerHistory, urn: str, now: datetime) -> dict:
    total = history.followers_at(now)

    def share(part: float) -> dict:
        return {"organicFollowerCount": round(total * part), "paidFollowerCount": round(total * part / 40)}

    return {"paging": {"count": 10, "start": 0, "links": []}, "elements": [{
        "organizationalEntity": urn,
        "followerCountsByAssociationType": [{"associationType": "EMPLOYEE", "followerCounts": share(0.03)},
                                            {"followerCounts": share(0.97)}],
        "followerCountsBySeniority": [{"seniority": "urn:li:seniority:3", "followerCounts": share(0.25)}],
        "followerCountsByIndustry": [{"industry": "urn:li:industry:4", "followerCounts": share(0.4)}],
        "followerCountsByFunction": [{"function": "urn:li:function:8", "followerCounts": share(0.3)}],
        "followerCountsByStaffCountRange": [{"staffCountRange": "SIZE_1001_TO_5000", "followerCounts": share(0.1)}],
        "followerCountsByGeoCountry": [{"geo": "urn:li:geo:103644278", "followerCounts": share(0.55)}]}]}


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    linkedin = cfg.sources.linkedin
    port = urlsplit(linkedin.api_url).port or 80
    return ["--port", str(port), "--organization", linkedin.organization_id,
            "--token-env", linkedin.access_token_env, "--outage"], port


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser("simulators.linkedin", __doc__, port=8095, since=DEFAULT_START)
    parser.add_argument("--organization", required=True, help="numeric organization id(s), comma-separated")
    parser.add_argument("--token-env", help="variable holding the only access token accepted (default: any)")
    parser.add_argument("--outage", action="store_true",
                        help=f"for the first {SIMULATED_OUTAGE} answer 503 to statistics of the last "
                             f"{OUTAGE_DAYS} days")
    args = parser.parse_args(argv)
    organizations = [o.strip() for o in args.organization.split(",") if o.strip()]
    if not organizations or not all(o.isdigit() for o in organizations):
        print(f"error: --organization must be numeric ids, got {args.organization!r}", file=sys.stderr)
        return 2
    token = os.environ.get(args.token_env) if args.token_env else None
    outage_until = datetime.now(UTC) + SIMULATED_OUTAGE if args.outage else None
    sim = LinkedInSimulator(organizations, seed=args.seed, start=args.since, token=token, host=args.host,
                            port=args.port, outage_until=outage_until)
    return serve_until_stopped(sim, f"LinkedIn simulator on {{url}} for organization {', '.join(organizations)}")


if __name__ == "__main__":
    sys.exit(main())
