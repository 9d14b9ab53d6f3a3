"""A local X (Twitter) API v2 for the demo and the tests: user lookup with public metrics, in X's wire
format, over deterministic generated follower histories.

Endpoints (app-only auth: `Authorization: Bearer <token>`):

    GET  /2/users/by?usernames=a,b&user.fields=public_metrics      up to 100 users; {"data": [...], "errors": [...]}
    GET  /2/users/by/username/{username}?user.fields=public_metrics  one user; {"data": {...}}
    POST /_sim/faults        test hook: {"count": 1, "status": 429, "reset_in": 2, "retry_after": null}

As on X: unknown and suspended users do not fail the request; they come back as `errors` items next to the
users found (HTTP 200, and no `data` key when none was found). `public_metrics` and other fields are only
present when `user.fields` asks for them. Every answer carries `x-rate-limit-limit`, `-remaining` and
`-reset` (epoch seconds) for a 15-minute window; past the limit, or when a test injects it, the answer is
429 with X's problem body. Errors use the v2 problem format {"title", "detail", "type", "status"}.

History: each account's follower count is a function of time, derived from its name: a base audience,
steady growth, fewer new followers at weekends, a few viral days a year that bring a burst, and some
unfollows, drawn per day from a generator seeded by (seed, account, day) and spread evenly through the
day. The clock is the real time, or a time a test sets (`set_time`); the `Date` header follows it.
`rate_limit_outage(until)` answers 429 until a time (the demo's outage: at start-up the app's quota is
used up for a couple of minutes; the collector fails those runs and resumes).

Run: python -m simulators.twitter --port 8094 --accounts caskdata,cdapio [--token-env TWITTER_BEARER_TOKEN]
"""
from __future__ import annotations

import math
import os
import random
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

from simulators.jsonserver import Fault, JsonApiSimulator, Reply, Request, argument_parser, serve_until_stopped
from simulators.randomness import stable_number

UTC = timezone.utc
DEFAULT_START = date(2025, 1, 1)
WINDOW_SECONDS = 15 * 60
REQUESTS_PER_WINDOW = 300            # GET /2/users/by, app auth
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
WEEKDAY_FACTOR = (1.1, 1.15, 1.15, 1.1, 1.0, 0.7, 0.7)
USER_FIELDS = ("created_at", "description", "entities", "id", "location", "most_recent_tweet_id", "name",
               "pinned_tweet_id", "profile_image_url", "protected", "public_metrics", "url", "username",
               "verified", "verified_type", "withheld")
PROBLEM = "https://api.twitter.com/2/problems/"


class Account:
    """One account's follower count over time: a day-by-day history from `start`, linear within a day."""

    def __init__(self, username: str, seed: int, start: date):
        self.username, self.seed, self.start = username, seed, start
        key = username.lower()
        self.id = str(stable_number(key + "/id", 10**17, 10**18))
        self.base = stable_number(key + "/base", 2_000, 60_000)
        self.per_day = stable_number(key + "/rate", 5, 40)
        self.growth = stable_number(key + "/growth", 10, 60) / 100
        self.created_at = datetime(2009, 1, 1, tzinfo=UTC) + timedelta(days=stable_number(key + "/created", 0, 3000))
        self.followers_at_end: list[int] = []      # count at the end of each day from `start`

    def _day_net(self, day: date) -> int:
        rng = random.Random(f"{self.seed}/{self.username.lower()}/{day.isoformat()}")
        trend = 1 + self.growth * (day - self.start).days / 365.25
        viral = rng.uniform(8, 25) if rng.random() < 0.01 else 1.0
        new = rng.gauss(self.per_day * trend * WEEKDAY_FACTOR[day.weekday()] * viral, math.sqrt(self.per_day))
        return round(new - abs(rng.gauss(self.per_day * 0.3, 2)))      # unfollows

    def end_of(self, day: date) -> int:
        if day < self.start:
            return self.base
        while len(self.followers_at_end) <= (day - self.start).days:
            previous = self.followers_at_end[-1] if self.followers_at_end else self.base
            current = self.start + timedelta(days=len(self.followers_at_end))
            self.followers_at_end.append(max(0, previous + self._day_net(current)))
        return self.followers_at_end[(day - self.start).days]

    def followers_at(self, moment: datetime) -> int:
        moment = moment.astimezone(UTC)
        today = moment.date()
        before, after = self.end_of(today - timedelta(days=1)), self.end_of(today)
        elapsed = (moment - datetime.combine(today, datetime.min.time(), UTC)).total_seconds() / 86400
        return before + round((after - before) * elapsed)

    def json(self, moment: datetime, fields: set[str]) -> dict:
        followers = self.followers_at(moment)
        user = {"id": self.id, "name": self.username.replace("_", " ").title(), "username": self.username}
        extra = {
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "description": f"Official account of {self.username}.", "protected": False, "verified": False,
            "verified_type": "none", "location": "Palo Alto, CA", "url": "",
            "profile_image_url": f"https://pbs.twimg.com/profile_images/{self.id}/sim_normal.jpg",
            "public_metrics": {"followers_count": followers, "following_count": 200 + followers // 400,
                               "tweet_count": 1500 + (moment.date() - self.start).days * 2,
                               "listed_count": followers // 90, "like_count": 900 + followers // 30,
                               "media_count": 300 + (moment.date() - self.start).days // 5}}
        user.update({k: v for k, v in extra.items() if k in fields})
        return user


@dataclass(frozen=True)
class RateLimitFault(Fault):
    reset_in: float | None = None     # x-rate-limit-reset = now + this


def problem(status: int, title: str, **extra) -> dict:
    """X's v2 problem body."""
    return {"title": title, "detail": extra.pop("detail", title), "type": extra.pop("type", "about:blank"),
            "status": status, **extra}


class TwitterSimulator(JsonApiSimulator):
    """The simulated X API. `start()` serves it on a thread; use as a context manager in tests."""
    server_name = "envoy"
    fault_hook_fields = ("retry_after", "reset_in")

    def __init__(self, accounts: list[str], *, seed: int = 1, start: date = DEFAULT_START, token: str | None = None,
                 suspended: tuple[str, ...] = (), **server):
        super().__init__(**server)
        self.accounts = {name.lower(): Account(name, seed, start) for name in accounts}
        self.suspended = {name.lower() for name in suspended}
        self.token = token               # when set, requests must carry it
        self.rate_limited_until: datetime | None = None
        self.injected_users: list = []    # raw user objects added to every lookup's data (tests: malformed items)
        self._window: tuple[int, int] = (0, 0)      # (window start, requests in it)

    def followers(self, username: str, moment: datetime | None = None) -> int:
        with self._lock:
            return self.accounts[username.lower()].followers_at(moment or self.now())

    def rate_limit_outage(self, until: datetime) -> None:
        """Until `until` (by the simulator's clock) every request answers 429, as when the app's quota is used up."""
        self.rate_limited_until = until

    def inject_faults(self, count: int, status: int = 500, retry_after: float | None = None,
                      reset_in: float | None = None, seconds: float = 0.0) -> None:
        """Answer the next `count` requests with `status` (0 drops the connection, -1 stalls `seconds` first),
        Retry-After, and x-rate-limit-reset `reset_in` seconds from now."""
        self.queue_faults(count, RateLimitFault(status, retry_after, seconds=seconds, reset_in=reset_in))

    def count_request(self) -> tuple[int, int, int]:
        """(limit, remaining, reset) of the 15-minute window this request falls in."""
        now = int(self.now().timestamp())
        start = now - now % WINDOW_SECONDS
        with self._lock:
            window, used = self._window
            self._window = (start, used + 1 if window == start else 1)
            used = self._window[1]
        return REQUESTS_PER_WINDOW, max(0, REQUESTS_PER_WINDOW - used), start + WINDOW_SECONDS

    # -- X's envelope and headers -------------------------------------------------------------------------
    def error_body(self, status: int, message: str) -> dict:
        return problem(status, "Not Found Error" if status == 404 else message)

    def fault_hook_refused(self, message: str) -> Reply:
        return Reply(400, problem(400, "Invalid Request", detail=message))

    def headers_for(self, reply: Reply, length: int) -> dict[str, str]:
        return {"content-type": "application/json; charset=utf-8", "content-length": str(length),
                "x-response-time": "12", **reply.headers}

    # -- requests -----------------------------------------------------------------------------------------
    def fault_reply(self, fault: Fault, request: Request) -> Reply | None:
        if fault.status <= 0:
            return super().fault_reply(fault, request)
        return self._answer(request, fault)

    def route(self, request: Request) -> Reply:
        return self._answer(request, None)

    def _answer(self, request: Request, fault: RateLimitFault | None) -> Reply:
        """Every answer counts against the rate limit and says so in its headers, injected errors too."""
        limit, remaining, reset = self.count_request()
        if self.rate_limited_until and self.now() < self.rate_limited_until:
            fault, reset = RateLimitFault(429), int(self.rate_limited_until.timestamp())
        if fault and fault.reset_in is not None:
            reset = int(self.now().timestamp() + fault.reset_in)
        headers = {"x-rate-limit-limit": str(limit),
                   "x-rate-limit-remaining": str(0 if fault and fault.status == 429 else remaining),
                   "x-rate-limit-reset": str(reset)}
        if fault:
            if fault.retry_after is not None:
                headers["retry-after"] = str(int(fault.retry_after))
            titles = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
            return Reply(fault.status, problem(fault.status, titles.get(fault.status, "Error")), headers)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token or (self.token is not None and token != self.token):
            return Reply(401, problem(401, "Unauthorized", detail="Unauthorized"), headers)
        if remaining == 0:
            return Reply(429, problem(429, "Too Many Requests"), headers)
        query = request.query
        fields = set(filter(None, query.get("user.fields", "").split(",")))
        bad_fields = sorted(fields - set(USER_FIELDS))
        if bad_fields:
            return _invalid("user.fields", bad_fields[0], f"[{','.join(USER_FIELDS)}]", headers)
        if request.path == "/2/users/by":
            names = query.get("usernames", "").split(",") if query.get("usernames") else []
            if not names or len(names) > 100:
                return Reply(400, problem(400, "Invalid Request", type=PROBLEM + "invalid-request",
                                          detail="One or more parameters to your request was invalid.",
                                          errors=[{"parameters": {"usernames": [query.get("usernames", "")]},
                                                   "message": "The number of values in the `usernames` query "
                                                              "parameter list [" + str(len(names))
                                                              + "] is not between 1 and 100"}]), headers)
            return self._users(names, fields, headers, single=False)
        match = re.fullmatch(r"/2/users/by/username/([^/]+)", request.path)
        if match:
            return self._users([match.group(1)], fields, headers, single=True)
        return Reply(404, problem(404, "Not Found Error"), headers)

    def _users(self, names: list[str], fields: set[str], headers: dict, single: bool) -> Reply:
        parameter = "username" if single else "usernames"
        for name in names:
            if not USERNAME.match(name):
                return _invalid(parameter, name, "^[A-Za-z0-9_]{1,15}$", headers)
        data, errors = [], []
        moment = self.now()
        for name in names:
            key = name.lower()
            if key in self.suspended:
                errors.append({"value": name, "detail": f"User has been suspended: [{name}].", "title": "Forbidden",
                               "resource_type": "user", "parameter": parameter, "resource_id": name,
                               "type": PROBLEM + "resource-not-found"})
            elif key in self.accounts:
                with self._lock:
                    data.append(self.accounts[key].json(moment, fields))
            else:
                errors.append({"value": name, "detail": f"Could not find user with username: [{name}].",
                               "title": "Not Found Error", "resource_type": "user", "parameter": parameter,
                               "resource_id": name, "type": PROBLEM + "resource-not-found"})
        if not single:
            data += self.injected_users
        body: dict = {}
        if data:
            body["data"] = data[0] if single else data
        if errors:
            body["errors"] = errors
        return Reply(200, body, headers)


def _invalid(parameter: str, value: str, pattern: str, headers: dict) -> Reply:
    return Reply(400, problem(400, "Invalid Request", type=PROBLEM + "invalid-request",
                              detail="One or more parameters to your request was invalid.",
                              errors=[{"parameters": {parameter: [value]},
                                       "message": f"The `{parameter}` query parameter value [{value}] does not "
                                                  f"match {pattern}"}]), headers)


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    twitter = cfg.sources.twitter
    port = urlsplit(twitter.api_url).port or 80
    return ["--port", str(port), "--accounts", ",".join(twitter.accounts), "--token-env", twitter.bearer_token_env,
            "--outage-minutes", "2"], port


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser("simulators.twitter", __doc__, port=8094, since=DEFAULT_START)
    parser.add_argument("--accounts", required=True, help="comma-separated usernames that exist")
    parser.add_argument("--suspended", default="", help="comma-separated usernames that are suspended")
    parser.add_argument("--token-env", help="variable holding the bearer token to accept (unset: any)")
    parser.add_argument("--outage-minutes", type=float, default=0,
                        help="an outage at start-up: the rate limit is used up for this many minutes")
    args = parser.parse_args(argv)
    accounts = [a.strip().removeprefix("@") for a in args.accounts.split(",") if a.strip()]
    if not accounts or not all(USERNAME.match(a) for a in accounts):
        print(f"error: --accounts must be X usernames separated by commas, got {args.accounts!r}", file=sys.stderr)
        return 2
    token = os.environ.get(args.token_env) or None if args.token_env else None
    sim = TwitterSimulator(accounts, seed=args.seed, start=args.since, host=args.host, port=args.port, token=token,
                           suspended=tuple(s for s in args.suspended.split(",") if s))
    if args.outage_minutes:
        sim.rate_limit_outage(sim.now() + timedelta(minutes=args.outage_minutes))
    return serve_until_stopped(sim, f"X API simulator on {{url}} for {', '.join(accounts)}")


if __name__ == "__main__":
    sys.exit(main())
