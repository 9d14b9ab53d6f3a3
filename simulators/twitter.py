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

import argparse
import email.utils
import hashlib
import json
import logging
import math
import os
import random
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("caskalytics.simulators.twitter")
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


def _number_from(text: str, low: int, high: int) -> int:
    """A stable number in [low, high] from `text` (Python's hash() changes between processes)."""
    return low + int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (high - low + 1)


class Account:
    """One account's follower count over time: a day-by-day history from `start`, linear within a day."""

    def __init__(self, username: str, seed: int, start: date):
        self.username, self.seed, self.start = username, seed, start
        key = username.lower()
        self.id = str(_number_from(key + "/id", 10**17, 10**18))
        self.base = _number_from(key + "/base", 2_000, 60_000)
        self.per_day = _number_from(key + "/rate", 5, 40)
        self.growth = _number_from(key + "/growth", 10, 60) / 100
        self.created_at = datetime(2009, 1, 1, tzinfo=UTC) + timedelta(days=_number_from(key + "/created", 0, 3000))
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
class Fault:
    status: int                       # 0 = drop the connection; -1 = hang for `seconds`, then drop it
    retry_after: float | None = None
    reset_in: float | None = None     # x-rate-limit-reset = now + this
    seconds: float = 0.0


class TwitterSimulator:
    """The simulated X API. `start()` serves it on a thread; use as a context manager in tests."""

    def __init__(self, accounts: list[str], *, seed: int = 1, start: date = DEFAULT_START,
                 now: datetime | None = None, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 suspended: tuple[str, ...] = ()):
        self.accounts = {name.lower(): Account(name, seed, start) for name in accounts}
        self.suspended = {name.lower() for name in suspended}
        self.token = token               # when set, requests must carry it
        self.host, self.port = host, port
        self._frozen_now = now
        self._outage_until: datetime | None = None
        self.faults: deque[Fault] = deque()
        self.injected_users: list = []    # raw user objects added to every lookup's data (tests: malformed items)
        self.requests: list[str] = []
        self._window: tuple[int, int] = (0, 0)      # (window start, requests in it)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> TwitterSimulator:
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.simulator = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="twitter-simulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TwitterSimulator:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def now(self) -> datetime:
        return self._frozen_now or datetime.now(UTC).replace(microsecond=0)

    def set_time(self, moment: datetime) -> None:
        self._frozen_now = moment.astimezone(UTC)

    def followers(self, username: str, moment: datetime | None = None) -> int:
        with self._lock:
            return self.accounts[username.lower()].followers_at(moment or self.now())

    def rate_limit_outage(self, until: datetime) -> None:
        self._outage_until = until

    def inject_faults(self, count: int, status: int = 500, retry_after: float | None = None,
                      reset_in: float | None = None, seconds: float = 0.0) -> None:
        with self._lock:
            self.faults.extend(Fault(status, retry_after, reset_in, seconds) for _ in range(count))

    def take_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def count_request(self) -> tuple[int, int, int]:
        """(limit, remaining, reset) of the 15-minute window this request falls in."""
        now = int(self.now().timestamp())
        start = now - now % WINDOW_SECONDS
        with self._lock:
            window, used = self._window
            self._window = (start, used + 1 if window == start else 1)
            used = self._window[1]
        return REQUESTS_PER_WINDOW, max(0, REQUESTS_PER_WINDOW - used), start + WINDOW_SECONDS


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    @property
    def sim(self) -> TwitterSimulator:
        return self.server.simulator

    def version_string(self) -> str:
        return "envoy"

    def date_time_string(self, timestamp=None) -> str:
        return email.utils.format_datetime(self.sim.now().astimezone(UTC), usegmt=True)

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"content-type": "application/json; charset=utf-8", "content-length": str(len(data)),
                            "x-response-time": "12", **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _problem(self, status: int, title: str, headers: dict[str, str] | None = None, **extra) -> None:
        self._send(status, {"title": title, "detail": extra.pop("detail", title),
                            "type": extra.pop("type", "about:blank"), "status": status, **extra}, headers)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if urlsplit(self.path).path != "/_sim/faults":
            return self._problem(404, "Not Found Error")
        try:
            spec = json.loads(raw)
            self.sim.inject_faults(int(spec.get("count", 1)), int(spec.get("status", 500)), spec.get("retry_after"),
                                   spec.get("reset_in"))
        except (ValueError, TypeError, AttributeError) as exc:
            return self._problem(400, "Invalid Request",
                                 detail=f"expected {{count, status, retry_after, reset_in}}: {exc}")
        self._send(200, {"queued": len(self.sim.faults)})

    def do_GET(self) -> None:
        sim = self.sim
        sim.requests.append(self.path)
        fault = sim.take_fault()
        if fault and fault.status == -1:         # a server that hangs, then gives up without an answer
            time.sleep(fault.seconds)
        if fault and fault.status in (0, -1):
            self.close_connection = True
            return
        limit, remaining, reset = sim.count_request()
        if sim._outage_until and sim.now() < sim._outage_until:
            fault, reset = Fault(429), int(sim._outage_until.timestamp())
        if fault and fault.reset_in is not None:
            reset = int(sim.now().timestamp() + fault.reset_in)
        headers = {"x-rate-limit-limit": str(limit), "x-rate-limit-remaining": str(0 if fault and fault.status == 429
                                                                                     else remaining),
                   "x-rate-limit-reset": str(reset)}
        if fault:
            if fault.retry_after is not None:
                headers["retry-after"] = str(int(fault.retry_after))
            titles = {429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
            return self._problem(fault.status, titles.get(fault.status, "Error"), headers)
        given = self.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme != "Bearer" or not token or (sim.token is not None and token != sim.token):
            return self._problem(401, "Unauthorized", headers, detail="Unauthorized")
        if remaining == 0:
            return self._problem(429, "Too Many Requests", headers)
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        fields = set(filter(None, query.get("user.fields", "").split(",")))
        bad_fields = sorted(fields - set(USER_FIELDS))
        if bad_fields:
            return self._invalid("user.fields", bad_fields[0], f"[{','.join(USER_FIELDS)}]", headers)
        if parts.path == "/2/users/by":
            names = query.get("usernames", "").split(",") if query.get("usernames") else []
            if not names or len(names) > 100:
                return self._problem(400, "Invalid Request", headers, type=PROBLEM + "invalid-request",
                                     detail="One or more parameters to your request was invalid.",
                                     errors=[{"parameters": {"usernames": [query.get("usernames", "")]},
                                              "message": "The number of values in the `usernames` query parameter "
                                                         "list [" + str(len(names)) + "] is not between 1 and 100"}])
            return self._users(names, fields, headers, single=False)
        match = re.fullmatch(r"/2/users/by/username/([^/]+)", parts.path)
        if match:
            return self._users([unquote(match.group(1))], fields, headers, single=True)
        self._problem(404, "Not Found Error", headers)

    def _invalid(self, parameter: str, value: str, pattern: str, headers: dict) -> None:
        self._problem(400, "Invalid Request", headers, type=PROBLEM + "invalid-request",
                      detail="One or more parameters to your request was invalid.",
                      errors=[{"parameters": {parameter: [value]},
                               "message": f"The `{parameter}` query parameter value [{value}] does not match "
                                          f"{pattern}"}])

    def _users(self, names: list[str], fields: set[str], headers: dict, single: bool) -> None:
        sim = self.sim
        for name in names:
            if not USERNAME.match(name):
                return self._invalid("username" if single else "usernames", name, "^[A-Za-z0-9_]{1,15}$", headers)
        data, errors = [], []
        moment = sim.now()
        for name in names:
            key = name.lower()
            if key in sim.suspended:
                errors.append({"value": name, "detail": f"User has been suspended: [{name}].", "title": "Forbidden",
                               "resource_type": "user", "parameter": "username" if single else "usernames",
                               "resource_id": name, "type": PROBLEM + "resource-not-found"})
            elif key in sim.accounts:
                with sim._lock:
                    data.append(sim.accounts[key].json(moment, fields))
            else:
                errors.append({"value": name, "detail": f"Could not find user with username: [{name}].",
                               "title": "Not Found Error", "resource_type": "user",
                               "parameter": "username" if single else "usernames", "resource_id": name,
                               "type": PROBLEM + "resource-not-found"})
        if not single:
            data += sim.injected_users
        body: dict = {}
        if data:
            body["data"] = data[0] if single else data
        if errors:
            body["errors"] = errors
        self._send(200, body, headers)


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    twitter = cfg.sources.twitter
    port = urlsplit(twitter.api_url).port or 80
    return ["--port", str(port), "--accounts", ",".join(twitter.accounts), "--token-env", twitter.bearer_token_env,
            "--outage-minutes", "2"], port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.twitter", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8094)
    parser.add_argument("--accounts", required=True, help="comma-separated usernames that exist")
    parser.add_argument("--suspended", default="", help="comma-separated usernames that are suspended")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--since", type=date.fromisoformat, default=DEFAULT_START, help="first day of history")
    parser.add_argument("--token-env", help="variable holding the bearer token to accept (unset: any)")
    parser.add_argument("--outage-minutes", type=float, default=0,
                        help="an outage at start-up: the rate limit is used up for this many minutes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    accounts = [a.strip().removeprefix("@") for a in args.accounts.split(",") if a.strip()]
    if not accounts or not all(USERNAME.match(a) for a in accounts):
        print(f"error: --accounts must be X usernames separated by commas, got {args.accounts!r}", file=sys.stderr)
        return 2
    token = os.environ.get(args.token_env) or None if args.token_env else None
    sim = TwitterSimulator(accounts, seed=args.seed, start=args.since, host=args.host, port=args.port, token=token,
                           suspended=tuple(s for s in args.suspended.split(",") if s))
    if args.outage_minutes:
        sim.rate_limit_outage(sim.now() + timedelta(minutes=args.outage_minutes))
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("X API simulator on %s for %s", sim.url, ", ".join(accounts))
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
