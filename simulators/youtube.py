"""A local YouTube for the demo and the tests: Google's OAuth token endpoint, the YouTube Analytics API v2
`reports.query` and the YouTube Data API v3 `channels.list`, on one server, in Google's wire format, over
a deterministic generated channel history.

Endpoints (paths as google-api-python-client builds them from its discovery documents):

    POST /token                    OAuth 2.0 refresh-token grant (form-encoded) -> {"access_token", "expires_in", ...}
    GET  /youtube/v3/channels      part=snippet,statistics & mine=true | id=UC...   (counts are strings)
    GET  /v2/reports               ids=channel==MINE|channel==UC... & startDate & endDate & metrics & dimensions=day
    POST /_sim/faults              test hook: {"count": 2, "status": 429, "retry_after": 1, "path": "/v2/reports"}

Test hooks in process: `inject_faults` (429 / 403 quotaExceeded / 5xx with Retry-After, a dropped
connection, a stall, or any body), `raw_rows` (a day's row served as given), `revoke()` and
`expire_access_tokens()`, `hidden_subscribers`.

Errors use Google's envelope ({"error": {"code", "message", "errors": [{"reason", "domain", ...}], "status"}}):
401 authError for a missing or expired access token, 403 quotaExceeded / forbidden, 429 rateLimitExceeded,
400 for a bad query, and the token endpoint's {"error": "invalid_grant"} for a revoked refresh token.

History: a channel launched on `start` (no rows before it, as the API omits days without data), with
views that grow, dip at weekends, spike after each upload and during promotion campaigns, and
subscribers gained and lost in proportion; three days when the channel was private have no activity
(and so no rows). Each day is drawn from a generator seeded by (seed, day), so every run agrees.
Days are Pacific-time days, as in YouTube Analytics.

Late data, as on YouTube: a day is reported from two days after it (rows for today and yesterday are
absent), and the two most recent reported days are provisional (lower, revised upward) before they become
final four days after the day. The clock is the real time, or one a test sets (`set_time`); the `Date`
header follows it. `reporting_delay(days, until)` holds reports back further until a time (the demo's
outage: at start-up the last nine days are missing for a few minutes, and the collector catches up).

The subscriber count grows through each day in proportion to the time elapsed, so a snapshot taken
mid-day holds part of that day's net gain. The real API abbreviates subscriberCount to three significant
figures; this one answers the exact count.

Run: python -m simulators.youtube --port 8093 [--client-id-env ... --client-secret-env ... --refresh-token-env ...]
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
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

log = logging.getLogger("caskalytics.simulators.youtube")
UTC = timezone.utc
PACIFIC = ZoneInfo("America/Los_Angeles")
DEFAULT_START = date(2025, 1, 1)
CHANNEL_ID = "UCxqx59koIGfGRRGeEm5qzjQ"
REPORTED_AFTER_DAYS = 2          # the newest row is for the day before yesterday
FINAL_AFTER_DAYS = 4             # rows newer than this are provisional
PROVISIONAL_SHARE = {2: 0.8, 3: 0.95}      # days ago -> share of the final value reported so far
WEEKDAY_FACTOR = (1.1, 1.15, 1.15, 1.1, 1.0, 0.75, 0.7)     # Monday..Sunday: a B2B channel
METRICS = ("views", "subscribersGained", "subscribersLost", "likes", "comments", "estimatedMinutesWatched")
ACCESS_TOKEN_SECONDS = 3599


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


# -- generated history ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Day:
    views: int = 0
    subscribers_gained: int = 0
    subscribers_lost: int = 0
    likes: int = 0
    comments: int = 0
    minutes_watched: int = 0
    uploads: int = 0

    @property
    def net(self) -> int:
        return self.subscribers_gained - self.subscribers_lost

    def metric(self, name: str) -> int:
        return {"views": self.views, "subscribersGained": self.subscribers_gained,
                "subscribersLost": self.subscribers_lost, "likes": self.likes, "comments": self.comments,
                "estimatedMinutesWatched": self.minutes_watched}[name]


class ChannelHistory:
    """Every day of the channel from `start`, generated in order up to `generated_through`."""

    def __init__(self, seed: int = 1, start: date = DEFAULT_START):
        self.seed, self.start = seed, start
        self.days: list[Day] = []
        self.subscribers_through: list[int] = []     # count at the end of each day
        self.views_through: list[int] = []
        self.videos_through: list[int] = []
        self.private_days = {start + timedelta(days=n) for n in (200, 201, 202)}
        self._next_upload = self._last_upload = start
        self._campaign_until = start - timedelta(days=1)

    @property
    def generated_through(self) -> date:
        return self.start + timedelta(days=len(self.days) - 1)

    def extend_to(self, last: date) -> None:
        while self.generated_through < last:
            day = self.generated_through + timedelta(days=1)
            self.days.append(self._generate(day))
            new = self.days[-1]
            self.subscribers_through.append((self.subscribers_through[-1] if self.subscribers_through else 0) + new.net)
            self.views_through.append((self.views_through[-1] if self.views_through else 0) + new.views)
            self.videos_through.append((self.videos_through[-1] if self.videos_through else 0) + new.uploads)

    def _generate(self, day: date) -> Day:
        rng = random.Random(f"{self.seed}/youtube/{day.isoformat()}")
        if day in self.private_days:
            return Day()
        uploads = 0
        if day >= self._next_upload:             # a new video every two to three weeks
            uploads = 1
            self._last_upload = day
            self._next_upload = day + timedelta(days=rng.randrange(14, 25))
        if day > self._campaign_until and rng.random() < 0.012:    # a paid promotion, a few times a year
            self._campaign_until = day + timedelta(days=rng.randrange(7, 15))
        since_upload = (day - self._last_upload).days
        trend = 1 + 0.8 * (day - self.start).days / 365.25
        spike = 1 + 3.5 * math.exp(-since_upload / 2.5)
        campaign = 2.0 if day <= self._campaign_until else 1.0
        views = max(0, round(220 * trend * WEEKDAY_FACTOR[day.weekday()] * spike * campaign * rng.gauss(1, 0.08)))
        gained = _poisson(rng, views * 0.011 * (1.5 if since_upload < 3 else 1.0))
        lost = _poisson(rng, gained * 0.18 + views * 0.0005)
        return Day(views, gained, lost, likes=_poisson(rng, views * 0.04), comments=_poisson(rng, views * 0.004),
                   minutes_watched=round(views * rng.uniform(2.5, 4.5)), uploads=uploads)

    def day(self, day: date) -> Day:
        if day < self.start:
            return Day()
        self.extend_to(day)
        return self.days[(day - self.start).days]

    def _through(self, series: list[int], day: date) -> int:
        if day < self.start:
            return 0
        self.extend_to(day)
        return series[(day - self.start).days]

    def subscribers_through_day(self, day: date) -> int:
        return self._through(self.subscribers_through, day)

    def counts_at(self, moment: datetime) -> tuple[int, int, int]:
        """(subscribers, views, videos) at `moment`: through yesterday, plus today's share so far."""
        local = moment.astimezone(PACIFIC)
        today = local.date()
        midnight = datetime.combine(today, datetime.min.time(), PACIFIC).astimezone(UTC)
        next_midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), PACIFIC).astimezone(UTC)
        elapsed = (moment.astimezone(UTC) - midnight) / (next_midnight - midnight)   # DST days: 23 or 25 hours
        yesterday = today - timedelta(days=1)
        now = self.day(today)
        return (self._through(self.subscribers_through, yesterday) + round(now.net * elapsed),
                self._through(self.views_through, yesterday) + round(now.views * elapsed),
                self._through(self.videos_through, yesterday) + now.uploads)


# -- Google's JSON shapes ----------------------------------------------------------------------------------
GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


def google_error(code: int, message: str, reason: str, domain: str = "global", **extra) -> dict:
    return {"error": {"code": code, "message": message,
                      "errors": [{"message": message, "domain": domain, "reason": reason, **extra}],
                      "status": GOOGLE_STATUS.get(code, "UNKNOWN")}}


QUOTA_MESSAGE = ('The request cannot be completed because you have exceeded your '
                 '<a href="/youtube/v3/getting-started#quota">quota</a>.')
FAULT_BODIES = {
    429: lambda: google_error(429, "Resource has been exhausted (e.g. check quota).", "rateLimitExceeded"),
    403: lambda: google_error(403, QUOTA_MESSAGE, "quotaExceeded", domain="youtube.quota"),
    500: lambda: google_error(500, "Internal error encountered.", "backendError"),
    503: lambda: google_error(503, "The service is currently unavailable.", "backendError"),
}


def etag(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:27]


@dataclass(frozen=True)
class Fault:
    status: int                  # 0 = drop the connection; -1 = hang for `seconds`, then drop it
    retry_after: float | None = None
    path: str = ""               # only requests whose path starts with this ("" = any)
    seconds: float = 0.0
    body: dict | None = None     # a Google error body instead of the usual one for `status`


class YouTubeSimulator:
    """The simulated Google endpoints. `start()` serves them on a thread; use as a context manager in tests."""

    def __init__(self, *, seed: int = 1, start: date = DEFAULT_START, now: datetime | None = None,
                 host: str = "127.0.0.1", port: int = 0, channel_id: str = CHANNEL_ID,
                 client_id: str | None = None, client_secret: str | None = None, refresh_token: str | None = None):
        self.history = ChannelHistory(seed, start)
        self.channel_id = channel_id
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.hidden_subscribers = False
        self.host, self.port = host, port
        self._frozen_now = now
        self._delay: tuple[int, datetime] | None = None
        self.access_tokens: dict[str, datetime] = {}       # token -> expiry (simulated clock)
        self.faults: deque[Fault] = deque()
        self.raw_rows: dict[date, object] = {}     # day -> a row served as is (tests: malformed rows)
        self.requests: list[str] = []     # every request path with its query, for tests that check what was asked
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> YouTubeSimulator:
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.simulator = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="youtube-simulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> YouTubeSimulator:
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- the clock and the truth --------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._frozen_now or datetime.now(UTC).replace(microsecond=0)

    def set_time(self, moment: datetime) -> None:
        self._frozen_now = moment.astimezone(UTC)

    def today(self) -> date:
        """The current day in YouTube Analytics terms (Pacific time)."""
        return self.now().astimezone(PACIFIC).date()

    def reporting_delay(self, days: int, until: datetime) -> None:
        """Until `until`, the newest reported day is `days` days ago instead of two."""
        self._delay = (days, until)

    def last_reported_day(self) -> date:
        lag = REPORTED_AFTER_DAYS
        if self._delay and self.now() < self._delay[1]:
            lag = max(lag, self._delay[0])
        return self.today() - timedelta(days=lag)

    def reported(self, day: date) -> Day | None:
        """What the API reports for `day` now: None before it is reported or when it had no activity."""
        if day > self.last_reported_day():
            return None
        with self._lock:
            final = self.history.day(day)
        if final == Day():
            return None
        share = PROVISIONAL_SHARE.get((self.today() - day).days, 1.0)
        if share == 1.0:
            return final
        return Day(*(math.floor(getattr(final, f) * share) for f in
                     ("views", "subscribers_gained", "subscribers_lost", "likes", "comments", "minutes_watched")))

    def counts(self) -> tuple[int, int, int]:
        with self._lock:
            return self.history.counts_at(self.now())

    # -- credentials --------------------------------------------------------------------------------------
    def issue_token(self) -> str:
        token = "ya29.sim-" + hashlib.sha256(f"{time.time_ns()}/{len(self.access_tokens)}".encode()).hexdigest()[:32]
        with self._lock:
            self.access_tokens[token] = self.now() + timedelta(seconds=ACCESS_TOKEN_SECONDS)
        return token

    def token_valid(self, token: str) -> bool:
        expiry = self.access_tokens.get(token)
        return expiry is not None and self.now() < expiry

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def revoke(self) -> None:
        """The user revoked the grant: the refresh token no longer works (Google answers invalid_grant)."""
        self.refresh_token = "revoked:" + (self.refresh_token or "")
        self.expire_access_tokens()

    # -- test hooks ---------------------------------------------------------------------------------------
    def inject_faults(self, count: int, status: int = 500, retry_after: float | None = None, path: str = "",
                      seconds: float = 0.0, body: dict | None = None) -> None:
        with self._lock:
            self.faults.extend(Fault(status, retry_after, path, seconds, body) for _ in range(count))

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if path.startswith(fault.path):
                    self.faults.remove(fault)
                    return fault
        return None

    def report_requests(self) -> list[tuple[date, date]]:
        """(startDate, endDate) of every reports.query asked so far."""
        asked = []
        for path in self.requests:
            parts = urlsplit(path)
            if parts.path == "/v2/reports":
                query = parse_qs(parts.query)
                asked.append((date.fromisoformat(query["startDate"][0]), date.fromisoformat(query["endDate"][0])))
        return asked


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    @property
    def sim(self) -> YouTubeSimulator:
        return self.server.simulator

    def version_string(self) -> str:
        return "ESF"

    def date_time_string(self, timestamp=None) -> str:
        """The Date header follows the simulated clock: clients may take the server's time from it."""
        return email.utils.format_datetime(self.sim.now().astimezone(UTC), usegmt=True)

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, indent=1).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json; charset=UTF-8", "Content-Length": str(len(data)),
                            "Vary": "Origin, X-Origin, Referer", **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, path: str) -> bool:
        """Apply the next injected fault for `path`; True when it answered (or dropped) the request."""
        fault = self.sim.take_fault(path)
        if fault is None:
            return False
        if fault.status == -1:            # a server that hangs, then gives up without an answer
            time.sleep(fault.seconds)
            self.close_connection = True
            return True
        if fault.status == 0:
            self.close_connection = True
            return True
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
        body = fault.body or FAULT_BODIES.get(fault.status, lambda: google_error(fault.status, "Error", "unknown"))()
        self._send(fault.status, body, headers)
        return True

    # -- OAuth --------------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        self.sim.requests.append(path)
        if path == "/_sim/faults":
            try:
                spec = json.loads(raw or b"{}")
                self.sim.inject_faults(int(spec.get("count", 1)), int(spec.get("status", 500)),
                                       spec.get("retry_after"), spec.get("path", ""))
            except (ValueError, TypeError, AttributeError) as exc:
                return self._send(400, {"error": f"expected {{count, status, retry_after, path}}: {exc}"})
            return self._send(200, {"queued": len(self.sim.faults)})
        if self._fault(path):
            return
        if path != "/token":
            return self._send(404, google_error(404, "Not Found", "notFound"))
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        sim = self.sim
        if form.get("grant_type") != "refresh_token":
            return self._send(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "
                                    + form.get("grant_type", "")})
        if (sim.client_id is not None and form.get("client_id") != sim.client_id) or \
                (sim.client_secret is not None and form.get("client_secret") != sim.client_secret):
            return self._send(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if not form.get("refresh_token") or (sim.refresh_token is not None
                                             and form.get("refresh_token") != sim.refresh_token):
            return self._send(400, {"error": "invalid_grant",
                                    "error_description": "Token has been expired or revoked."})
        self._send(200, {"access_token": sim.issue_token(), "expires_in": ACCESS_TOKEN_SECONDS,
                         "scope": "https://www.googleapis.com/auth/yt-analytics.readonly "
                                  "https://www.googleapis.com/auth/youtube.readonly",
                         "token_type": "Bearer"}, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"})

    # -- the APIs -----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.sim.requests.append(self.path)
        parts = urlsplit(self.path)
        if self._fault(parts.path):
            return
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.sim.token_valid(token):
            return self._send(401, google_error(
                401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                     "or other valid authentication credential. See "
                     "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "authError", location="Authorization", locationType="header"),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/youtube/v3/channels":
            return self._channels(query)
        if parts.path == "/v2/reports":
            return self._report(query)
        self._send(404, google_error(404, "Not Found", "notFound"))

    def _required(self, query: dict, *names: str) -> bool:
        for name in names:
            if not query.get(name):
                self._send(400, google_error(400, f"Required parameter: {name}", "required",
                                             location=name, locationType="parameter"))
                return False
        return True

    def _channels(self, query: dict) -> None:
        if not self._required(query, "part"):
            return
        parts = query["part"].split(",")
        unknown = [p for p in parts if p not in ("id", "snippet", "statistics", "contentDetails", "status",
                                                 "brandingSettings", "topicDetails", "localizations")]
        if unknown:
            return self._send(400, google_error(400, f"'{unknown[0]}'", "unknownPart", domain="youtube.part",
                                                location="part", locationType="parameter"))
        sim = self.sim
        mine = query.get("mine") == "true"
        ids = [i for i in query.get("id", "").split(",") if i]
        if not mine and not ids:
            return self._send(400, google_error(
                400, "No filter selected. Expected one of: forUsername, managedByMe, categoryId, mySubscribers, "
                     "id, mine, forHandle", "missingRequiredParameter", domain="youtube.parameter"))
        listing = {"kind": "youtube#channelListResponse", "etag": etag(self.path + str(sim.now().date()))}
        if mine or sim.channel_id in ids:
            listing["pageInfo"] = {"totalResults": 1, "resultsPerPage": 5}
            listing["items"] = [self._channel_json(parts)]
        else:
            listing["pageInfo"] = {"totalResults": 0, "resultsPerPage": 5}     # no "items" key, as on YouTube
        self._send(200, listing)

    def _channel_json(self, parts: list[str]) -> dict:
        sim = self.sim
        subscribers, views, videos = sim.counts()
        item = {"kind": "youtube#channel", "etag": etag(f"{sim.channel_id}/{subscribers}/{views}"),
                "id": sim.channel_id}
        if "snippet" in parts:
            published = datetime.combine(sim.history.start, datetime.min.time(), PACIFIC).astimezone(UTC)
            about = "Data pipelines and analytics on Hadoop and the cloud."
            item["snippet"] = {
                "title": "Cask Data", "description": about,
                "customUrl": "@caskdata", "publishedAt": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "thumbnails": {"default": {"url": "https://yt3.ggpht.com/sim=s88-c-k-c0x00ffffff-no-rj",
                                           "width": 88, "height": 88}},
                "localized": {"title": "Cask Data", "description": about},
                "country": "US"}
        if "statistics" in parts:
            item["statistics"] = {"viewCount": str(views), "subscriberCount": str(subscribers),
                                  "hiddenSubscriberCount": sim.hidden_subscribers, "videoCount": str(videos)}
            if sim.hidden_subscribers:
                # A channel that hides its count: YouTube leaves subscriberCount out.
                del item["statistics"]["subscriberCount"]
        return item

    def _report(self, query: dict) -> None:
        if not self._required(query, "ids", "startDate", "endDate", "metrics"):
            return
        sim = self.sim
        if query["ids"] not in ("channel==MINE", f"channel=={sim.channel_id}"):
            return self._send(403, google_error(403, "Forbidden", "forbidden"))
        try:
            first, last = date.fromisoformat(query["startDate"]), date.fromisoformat(query["endDate"])
        except ValueError:
            return self._send(400, google_error(400, "Invalid value at 'start_date' (TYPE_STRING), "
                                                     f"\"{query['startDate']}\"", "invalid"))
        if first > last:
            return self._send(400, google_error(400, "The query is not supported. The start date must be on or "
                                                     "before the end date.", "badRequest"))
        metrics = query["metrics"].split(",")
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            return self._send(400, google_error(400, f"Unknown identifier ({unknown[0]}) given in field "
                                                     "parameters.metrics.", "badRequest"))
        dimensions = [d for d in query.get("dimensions", "").split(",") if d]
        if dimensions not in ([], ["day"]):
            return self._send(400, google_error(400, "The query is not supported. Check the documentation at "
                                                     "https://developers.google.com/youtube/analytics/v2/"
                                                     "available_reports for a list of supported queries.",
                                                "badRequest"))
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        reported = [(d, r) for d in days if (r := sim.reported(d)) is not None]
        headers = ([{"name": "day", "columnType": "DIMENSION", "dataType": "STRING"}] if dimensions else []) + \
                  [{"name": m, "columnType": "METRIC", "dataType": "INTEGER"} for m in metrics]
        if dimensions:
            rows = [[d.isoformat(), *(r.metric(m) for m in metrics)] for d, r in reported]
            rows = [sim.raw_rows.get(date.fromisoformat(row[0]), row) for row in rows]
            if query.get("sort") == "-day":
                rows.reverse()
        else:
            rows = [[sum(r.metric(m) for _, r in reported) for m in metrics]] if reported else []
        body = {"kind": "youtubeAnalytics#resultTable", "columnHeaders": headers}
        if rows:
            body["rows"] = rows      # "If no data is available for the given query, the rows element will be omitted"
        self._send(200, body)


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    youtube = cfg.sources.youtube
    port = urlsplit(youtube.analytics_url).port or 80
    return ["--port", str(port), "--client-id-env", youtube.client_id_env,
            "--client-secret-env", youtube.client_secret_env, "--refresh-token-env", youtube.refresh_token_env,
            "--delay-days", "9", "--delay-minutes", "3"], port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.youtube", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--since", type=date.fromisoformat, default=DEFAULT_START, help="the channel's first day")
    parser.add_argument("--client-id-env", help="variable holding the OAuth client id to accept (unset: any)")
    parser.add_argument("--client-secret-env", help="variable holding the OAuth client secret to accept")
    parser.add_argument("--refresh-token-env", help="variable holding the refresh token to accept")
    parser.add_argument("--delay-days", type=int, default=0,
                        help="an outage at start-up: reports stop this many days back ...")
    parser.add_argument("--delay-minutes", type=float, default=0, help="... for this many minutes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def secret(name: str | None) -> str | None:
        return os.environ.get(name) or None if name else None

    sim = YouTubeSimulator(seed=args.seed, start=args.since, host=args.host, port=args.port,
                           client_id=secret(args.client_id_env), client_secret=secret(args.client_secret_env),
                           refresh_token=secret(args.refresh_token_env))
    if args.delay_days and args.delay_minutes:
        sim.reporting_delay(args.delay_days, sim.now() + timedelta(minutes=args.delay_minutes))
    sim.history.extend_to(sim.today())       # generate before serving, so the first query is not slow
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("YouTube simulator on %s (channel %s since %s)", sim.url, sim.channel_id, args.since)
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
