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

import hashlib
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from simulators.jsonserver import JsonApiSimulator, Reply, Request, argument_parser, serve_until_stopped
from simulators.randomness import poisson

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
        gained = poisson(rng, views * 0.011 * (1.5 if since_upload < 3 else 1.0))
        lost = poisson(rng, gained * 0.18 + views * 0.0005)
        return Day(views, gained, lost, likes=poisson(rng, views * 0.04), comments=poisson(rng, views * 0.004),
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


NOT_FOUND = Reply(404, google_error(404, "Not Found", "notFound"))


class YouTubeSimulator(JsonApiSimulator):
    """The simulated Google endpoints. `start()` serves them on a thread; use as a context manager in tests."""
    server_name = "ESF"
    content_type = "application/json; charset=UTF-8"
    json_indent = 1
    methods = ("GET", "POST")
    fault_hook_fields = ("retry_after", "path")

    def __init__(self, *, seed: int = 1, start: date = DEFAULT_START, channel_id: str = CHANNEL_ID,
                 client_id: str | None = None, client_secret: str | None = None, refresh_token: str | None = None,
                 **server):
        super().__init__(**server)
        self.history = ChannelHistory(seed, start)
        self.channel_id = channel_id
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.hidden_subscribers = False
        self._delay: tuple[int, datetime] | None = None
        self.access_tokens: dict[str, datetime] = {}       # token -> expiry (simulated clock)
        self.raw_rows: dict[date, object] = {}     # day -> a row served as is (tests: malformed rows)

    # -- the clock and the truth --------------------------------------------------------------------------
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
        """Answer the next `count` requests to `path` ("" = any) with `status` (0 drops the connection, -1
        stalls `seconds` first), Retry-After, and `body` instead of Google's usual error for the status."""
        super().inject_faults(count, status, retry_after, body=body, only=path, seconds=seconds)

    def report_requests(self) -> list[tuple[date, date]]:
        """(startDate, endDate) of every reports.query asked so far."""
        asked = []
        for path in self.requests:
            parts = urlsplit(path)
            if parts.path == "/v2/reports":
                query = parse_qs(parts.query)
                asked.append((date.fromisoformat(query["startDate"][0]), date.fromisoformat(query["endDate"][0])))
        return asked

    # -- Google's envelope and headers --------------------------------------------------------------------
    def error_body(self, status: int, message: str) -> dict:
        return google_error(status, message, "unknown")

    def fault_body(self, status: int) -> dict:
        return FAULT_BODIES.get(status, lambda: google_error(status, "Error", "unknown"))()

    def fault_hook_refused(self, message: str) -> Reply:
        return Reply(400, {"error": message})

    def common_headers(self) -> dict[str, str]:
        return {"Vary": "Origin, X-Origin, Referer"}

    # -- requests -----------------------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        if request.method == "POST":
            return self._token(request) if request.path == "/token" else NOT_FOUND
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.token_valid(token):
            return Reply(401, google_error(
                401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                     "or other valid authentication credential. See "
                     "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                "authError", location="Authorization", locationType="header"),
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
        if request.path == "/youtube/v3/channels":
            return self._channels(request)
        if request.path == "/v2/reports":
            return self._report(request.query)
        return NOT_FOUND

    def _token(self, request: Request) -> Reply:
        """OAuth 2.0's refresh-token grant, as Google's token endpoint answers it."""
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "refresh_token":
            return Reply(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "
                               + form.get("grant_type", "")})
        if (self.client_id is not None and form.get("client_id") != self.client_id) or \
                (self.client_secret is not None and form.get("client_secret") != self.client_secret):
            return Reply(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if not form.get("refresh_token") or (self.refresh_token is not None
                                             and form.get("refresh_token") != self.refresh_token):
            return Reply(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
        return Reply(200, {"access_token": self.issue_token(), "expires_in": ACCESS_TOKEN_SECONDS,
                           "scope": "https://www.googleapis.com/auth/yt-analytics.readonly "
                                    "https://www.googleapis.com/auth/youtube.readonly",
                           "token_type": "Bearer"}, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"})

    @staticmethod
    def _missing(query: dict, *names: str) -> Reply | None:
        for name in names:
            if not query.get(name):
                return Reply(400, google_error(400, f"Required parameter: {name}", "required",
                                               location=name, locationType="parameter"))
        return None

    def _channels(self, request: Request) -> Reply:
        query = request.query
        missing = self._missing(query, "part")
        if missing:
            return missing
        parts = query["part"].split(",")
        unknown = [p for p in parts if p not in ("id", "snippet", "statistics", "contentDetails", "status",
                                                 "brandingSettings", "topicDetails", "localizations")]
        if unknown:
            return Reply(400, google_error(400, f"'{unknown[0]}'", "unknownPart", domain="youtube.part",
                                           location="part", locationType="parameter"))
        mine = query.get("mine") == "true"
        ids = [i for i in query.get("id", "").split(",") if i]
        if not mine and not ids:
            return Reply(400, google_error(
                400, "No filter selected. Expected one of: forUsername, managedByMe, categoryId, mySubscribers, "
                     "id, mine, forHandle", "missingRequiredParameter", domain="youtube.parameter"))
        listing = {"kind": "youtube#channelListResponse", "etag": etag(request.target + str(self.now().date()))}
        if mine or self.channel_id in ids:
            listing["pageInfo"] = {"totalResults": 1, "resultsPerPage": 5}
            listing["items"] = [self._channel_json(parts)]
        else:
            listing["pageInfo"] = {"totalResults": 0, "resultsPerPage": 5}     # no "items" key, as on YouTube
        return Reply(200, listing)

    def _channel_json(self, parts: list[str]) -> dict:
        subscribers, views, videos = self.counts()
        item = {"kind": "youtube#channel", "etag": etag(f"{self.channel_id}/{subscribers}/{views}"),
                "id": self.channel_id}
        if "snippet" in parts:
            published = datetime.combine(self.history.start, datetime.min.time(), PACIFIC).astimezone(UTC)
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
                                  "hiddenSubscriberCount": self.hidden_subscribers, "videoCount": str(videos)}
            if self.hidden_subscribers:
                # A channel that hides its count: YouTube leaves subscriberCount out.
                del item["statistics"]["subscriberCount"]
        return item

    def _report(self, query: dict) -> Reply:
        missing = self._missing(query, "ids", "startDate", "endDate", "metrics")
        if missing:
            return missing
        if query["ids"] not in ("channel==MINE", f"channel=={self.channel_id}"):
            return Reply(403, google_error(403, "Forbidden", "forbidden"))
        try:
            first, last = date.fromisoformat(query["startDate"]), date.fromisoformat(query["endDate"])
        except ValueError:
            return Reply(400, google_error(400, "Invalid value at 'start_date' (TYPE_STRING), "
                                                f"\"{query['startDate']}\"", "invalid"))
        if first > last:
            return Reply(400, google_error(400, "The query is not supported. The start date must be on or "
                                                "before the end date.", "badRequest"))
        metrics = query["metrics"].split(",")
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            return Reply(400, google_error(400, f"Unknown identifier ({unknown[0]}) given in field "
                                                "parameters.metrics.", "badRequest"))
        dimensions = [d for d in query.get("dimensions", "").split(",") if d]
        if dimensions not in ([], ["day"]):
            return Reply(400, google_error(400, "The query is not supported. Check the documentation at "
                                                "https://developers.google.com/youtube/analytics/v2/"
                                                "available_reports for a list of supported queries.", "badRequest"))
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        reported = [(d, r) for d in days if (r := self.reported(d)) is not None]
        headers = ([{"name": "day", "columnType": "DIMENSION", "dataType": "STRING"}] if dimensions else []) + \
                  [{"name": m, "columnType": "METRIC", "dataType": "INTEGER"} for m in metrics]
        if dimensions:
            rows = [[d.isoformat(), *(r.metric(m) for m in metrics)] for d, r in reported]
            rows = [self.raw_rows.get(date.fromisoformat(row[0]), row) for row in rows]
            if query.get("sort") == "-day":
                rows.reverse()
        else:
            rows = [[sum(r.metric(m) for _, r in reported) for m in metrics]] if reported else []
        body = {"kind": "youtubeAnalytics#resultTable", "columnHeaders": headers}
        if rows:
            body["rows"] = rows      # "If no data is available for the given query, the rows element will be omitted"
        return Reply(200, body)


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    youtube = cfg.sources.youtube
    port = urlsplit(youtube.analytics_url).port or 80
    return ["--port", str(port), "--client-id-env", youtube.client_id_env,
            "--client-secret-env", youtube.client_secret_env, "--refresh-token-env", youtube.refresh_token_env,
            "--delay-days", "9", "--delay-minutes", "3"], port


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser("simulators.youtube", __doc__, port=8093, since=DEFAULT_START,
                             since_help="the channel's first day")
    parser.add_argument("--client-id-env", help="variable holding the OAuth client id to accept (unset: any)")
    parser.add_argument("--client-secret-env", help="variable holding the OAuth client secret to accept")
    parser.add_argument("--refresh-token-env", help="variable holding the refresh token to accept")
    parser.add_argument("--delay-days", type=int, default=0,
                        help="an outage at start-up: reports stop this many days back ...")
    parser.add_argument("--delay-minutes", type=float, default=0, help="... for this many minutes")
    args = parser.parse_args(argv)

    def secret(name: str | None) -> str | None:
        return os.environ.get(name) or None if name else None

    sim = YouTubeSimulator(seed=args.seed, start=args.since, host=args.host, port=args.port,
                           client_id=secret(args.client_id_env), client_secret=secret(args.client_secret_env),
                           refresh_token=secret(args.refresh_token_env))
    if args.delay_days and args.delay_minutes:
        sim.reporting_delay(args.delay_days, sim.now() + timedelta(minutes=args.delay_minutes))
    sim.history.extend_to(sim.today())       # generate before serving, so the first query is not slow
    return serve_until_stopped(sim, f"YouTube simulator on {{url}} (channel {sim.channel_id} since {args.since})")


if __name__ == "__main__":
    sys.exit(main())
