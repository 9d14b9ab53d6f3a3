"""A local GitHub for the demo and the tests: the REST endpoints Caskalytics polls, in GitHub's wire format,
over deterministic generated history, and a webhook sender that signs deliveries exactly like GitHub.

Endpoints (GitHub REST v3 shapes; GitHub's own Link headers point at `/repositories/{id}/...`, so those
aliases answer too):

    GET  /repos/{owner}/{repo}               the repository (stargazers_count, forks_count, subscribers_count, ...)
    GET  /repos/{owner}/{repo}/stargazers    users, oldest star first; {"starred_at", "user"} items when the
                                             Accept header asks for application/vnd.github.star+json
    GET  /repos/{owner}/{repo}/pulls         state=open|closed|all, sort=created|updated, direction=asc|desc
    GET  /repos/{owner}/{repo}/releases      newest first; drafts only for authenticated callers (as on GitHub)
    POST /_sim/faults                        test hook: {"count": 3, "status": 429, "retry_after": 1}

Lists page with `per_page` (at most 100, default 30) and `page`, and answer `Link` headers with rel="next",
"last", "first" and "prev".

History: each repository gets a profile derived from its name (star rate, growth, release cadence) and a
day-by-day history from `start`, each day drawn from a random generator seeded by (seed, repo, day), so the
same arguments always give the same stars, forks, pull requests and releases. Stars grow steadily, dip at
weekends, burst for a few days after each release, and a few users unstar. The server shows what had
happened by its clock: the real time by default, or a time a test sets (`set_time`), so tests can make
history "happen" and the `WebhookSender` can deliver exactly the events of a time window.

Run: python -m simulators.github --port 8091 --repos caskdata/cdap,caskdata/coopr \
         [--webhook-url http://127.0.0.1:8000/webhooks/github --secret-env GITHUB_WEBHOOK_SECRET]
"""
from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import hmac
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
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

log = logging.getLogger("caskalytics.simulators.github")
UTC = timezone.utc
DEFAULT_START = date(2025, 1, 1)
LOOKAHEAD_DAYS = 3              # drafts exist before their publish day, so generate a little ahead of the clock
STAR_MEDIA_TYPE = "application/vnd.github.star+json"
DOCS_URL = "https://docs.github.com/rest"
WEEKDAY_FACTOR = (1.15, 1.2, 1.2, 1.15, 1.0, 0.55, 0.5)     # Monday..Sunday: developers star on workdays
HOUR_WEIGHTS = (3, 2, 2, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 11, 11, 10, 9, 8, 7, 6, 5, 4, 3)   # UTC: EU + US day
UNSTARS_PER_DAY = 0.03          # "a few" a year
FORKS_PER_STAR = 0.22
FIRST_NAMES = ("alex", "sam", "maria", "wei", "priya", "jonas", "fatima", "diego", "yuki", "olga", "noah", "lena",
               "omar", "chen", "ana", "ivan", "sara", "raj", "emma", "kofi", "mei", "lucas", "aisha", "tomas")
NAME_WORDS = ("dev", "data", "codes", "ops", "hacks", "eng", "io", "lab", "py", "js", "ml", "cloud")
PULL_TITLES = ("Fix NPE in {}", "Add metrics for {}", "Upgrade {} dependencies", "Improve {} error messages",
               "Speed up {} startup", "Document {} configuration", "Support Java 17 in {}", "Refactor {} tests")
COMPONENTS = ("app fabric", "pipeline UI", "dataset service", "router", "metrics", "logging", "CLI", "SDK")


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _number_from(text: str, low: int, high: int) -> int:
    """A stable number in [low, high] from `text` (Python's hash() changes between processes)."""
    return low + int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % (high - low + 1)


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
@dataclass
class Star:
    login: str
    starred_at: datetime
    unstarred_at: datetime | None = None


@dataclass
class Fork:
    owner: str
    repo_id: int
    created_at: datetime


@dataclass
class Pull:
    number: int
    id: int
    title: str
    author: str
    created_at: datetime
    closed_at: datetime | None
    merged: bool

    def closed_by(self, moment: datetime) -> bool:
        return self.closed_at is not None and self.closed_at <= moment


@dataclass
class Release:
    id: int
    tag: str
    created_at: datetime       # a draft from here (visible to authenticated callers) ...
    published_at: datetime     # ... published from here
    prerelease: bool


@dataclass(frozen=True)
class Profile:
    """How a repository behaves, derived from its name so every run agrees."""
    stars_per_day: float
    yearly_growth: float
    release_every_days: int
    pulls_per_workday: float

    @classmethod
    def of(cls, full_name: str) -> Profile:
        return cls(stars_per_day=_number_from(full_name + "/stars", 80, 400) / 100,
                   yearly_growth=_number_from(full_name + "/growth", 30, 90) / 100,
                   release_every_days=_number_from(full_name + "/releases", 35, 75),
                   pulls_per_workday=_number_from(full_name + "/pulls", 80, 300) / 100)


@dataclass
class RepoHistory:
    """Everything that ever happens to one repository, generated day by day up to `generated_through`."""
    full_name: str
    seed: int
    start: date
    profile: Profile = field(init=False)
    repo_id: int = field(init=False)
    stars: list[Star] = field(default_factory=list)               # in starred_at order
    star_times: list[datetime] = field(default_factory=list)      # parallel to `stars`, for bisect
    unstar_times: list[datetime] = field(default_factory=list)    # sorted: unstars are generated in time order
    forks: list[Fork] = field(default_factory=list)
    pulls: list[Pull] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    generated_through: date = field(init=False)
    _next_release_day: date = field(init=False)
    _next_number: int = 1
    _version: tuple[int, int, int] = (1, 0, 0)

    def __post_init__(self):
        self.profile = Profile.of(self.full_name)
        self.repo_id = _number_from(self.full_name + "/id", 10_000_000, 99_999_999)
        self.generated_through = self.start - timedelta(days=1)
        self._next_release_day = self.start + timedelta(days=self.profile.release_every_days // 2)

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    @property
    def created_at(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), UTC)

    def extend_to(self, last_day: date) -> None:
        while self.generated_through < last_day:
            self.generated_through += timedelta(days=1)
            self._generate(self.generated_through)

    def _generate(self, day: date) -> None:
        rng = random.Random(f"{self.seed}/{self.full_name}/{day.isoformat()}")
        midnight = datetime.combine(day, datetime.min.time(), UTC)

        def moment() -> datetime:
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            return midnight + timedelta(hours=hour, seconds=rng.randrange(3600))

        trend = 1 + self.profile.yearly_growth * (day - self.start).days / 365.25
        published = [r.published_at.date() for r in self.releases if r.published_at.date() <= day]
        burst = 1 + 5 * math.exp(-(day - published[-1]).days / 2.5) if published else 1.0
        star_rate = self.profile.stars_per_day * trend * WEEKDAY_FACTOR[day.weekday()] * burst

        for when in sorted(moment() for _ in range(_poisson(rng, star_rate))):
            index = len(self.stars) + 1
            login = f"{rng.choice(FIRST_NAMES)}-{rng.choice(NAME_WORDS)}-{index}"
            self.stars.append(Star(login, when))
            self.star_times.append(when)
        if rng.random() < UNSTARS_PER_DAY:
            earlier = [s for s in self.stars if s.starred_at < midnight and s.unstarred_at is None]
            if earlier:
                gone = rng.choice(earlier)
                gone.unstarred_at = moment()
                self.unstar_times.append(gone.unstarred_at)
        for when in sorted(moment() for _ in range(_poisson(rng, star_rate * FORKS_PER_STAR))):
            owner = f"{rng.choice(FIRST_NAMES)}-{rng.choice(NAME_WORDS)}-f{len(self.forks) + 1}"
            self.forks.append(Fork(owner, _number_from(f"{self.full_name}/fork/{owner}", 100_000_000, 999_999_999),
                                   when))
        workday = day.weekday() < 5
        for when in sorted(moment() for _ in range(_poisson(rng, self.profile.pulls_per_workday * trend
                                                                 * (1.0 if workday else 0.25)))):
            number = self._next_number
            self._next_number += rng.choice((1, 1, 1, 2, 3))    # issues share the numbering, so there are gaps
            outcome = rng.random()
            closed_at = when + timedelta(hours=rng.expovariate(1 / 60)) if outcome < 0.92 else None
            self.pulls.append(Pull(number, _number_from(f"{self.full_name}/pull/{number}", 10**8, 10**9),
                                   rng.choice(PULL_TITLES).format(rng.choice(COMPONENTS)),
                                   f"{rng.choice(FIRST_NAMES)}-{rng.choice(NAME_WORDS)}-{rng.randrange(1, 400)}",
                                   when, closed_at, merged=outcome < 0.75))
        if day >= self._next_release_day and day.weekday() in (1, 2, 3):     # releases ship Tuesday..Thursday
            self._release(rng, midnight)

    def _release(self, rng: random.Random, midnight: datetime) -> None:
        major, minor, patch = self._version
        minor_bump = len(self.releases) % 4 == 3
        self._version = (major, minor + 1, 0) if minor_bump else (major, minor, patch + 1)
        published_at = midnight + timedelta(hours=rng.randrange(15, 19), seconds=rng.randrange(3600))
        prerelease = rng.random() < 0.1
        tag = "v{}.{}.{}".format(*self._version) + ("-rc1" if prerelease else "")
        self.releases.append(Release(_number_from(f"{self.full_name}/release/{tag}", 10**7, 10**8), tag,
                                     published_at - timedelta(days=2, hours=rng.randrange(0, 6)), published_at,
                                     prerelease))
        jitter = rng.randrange(-7, 8)
        self._next_release_day = midnight.date() + timedelta(days=self.profile.release_every_days + jitter)

    # -- what had happened at a moment --------------------------------------------------------------------
    def stars_at(self, moment: datetime) -> int:
        return bisect.bisect_right(self.star_times, moment) - bisect.bisect_right(self.unstar_times, moment)

    def stargazers_at(self, moment: datetime) -> list[Star]:
        """Current stargazers at `moment`, oldest star first (GitHub's order)."""
        visible = self.stars[:bisect.bisect_right(self.star_times, moment)]
        return [s for s in visible if s.unstarred_at is None or s.unstarred_at > moment]

    def forks_at(self, moment: datetime) -> int:
        return sum(1 for f in self.forks if f.created_at <= moment)

    def subscribers_at(self, moment: datetime) -> int:
        return 3 + self.stars_at(moment) // 12      # roughly one watcher per dozen stars

    def pulls_at(self, moment: datetime) -> list[Pull]:
        return [p for p in self.pulls if p.created_at <= moment]

    def open_issues_at(self, moment: datetime) -> int:
        """GitHub counts open pull requests as open issues too."""
        open_pulls = sum(1 for p in self.pulls_at(moment) if not p.closed_by(moment))
        return open_pulls + 5 + max(0, (moment.date() - self.start).days) // 30

    def releases_at(self, moment: datetime, include_drafts: bool) -> list[Release]:
        return [r for r in self.releases
                if r.published_at <= moment or (include_drafts and r.created_at <= moment)]


# -- GitHub's JSON shapes -----------------------------------------------------------------------------------
def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def user_json(login: str, api: str, kind: str = "User") -> dict:
    user_id = _number_from("user/" + login, 1_000_000, 99_999_999)
    return {
        "login": login, "id": user_id, "node_id": _node_id(kind, user_id),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4", "gravatar_id": "",
        "url": f"{api}/users/{login}", "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/users/{login}/followers", "repos_url": f"{api}/users/{login}/repos",
        "type": kind, "site_admin": False,
    }


def repo_json(h: RepoHistory, moment: datetime, api: str, full: bool = False) -> dict:
    """The repository as GitHub shows it at `moment`; `full` adds what only GET /repos/{o}/{r} returns."""
    stars, forks = h.stars_at(moment), h.forks_at(moment)
    url = f"{api}/repos/{h.full_name}"
    latest = max([h.created_at] + [p.created_at for p in h.pulls_at(moment)][-1:])
    body = {
        "id": h.repo_id, "node_id": _node_id("Repository", h.repo_id), "name": h.full_name.split("/")[1],
        "full_name": h.full_name, "private": False, "owner": user_json(h.owner, api, "Organization"),
        "html_url": f"https://github.com/{h.full_name}", "description": f"{h.full_name.split('/')[1]} by {h.owner}",
        "fork": False, "url": url, "forks_url": f"{url}/forks", "stargazers_url": f"{url}/stargazers",
        "pulls_url": f"{url}/pulls{{/number}}", "releases_url": f"{url}/releases{{/id}}",
        "created_at": iso(h.created_at), "updated_at": iso(latest), "pushed_at": iso(latest),
        "homepage": None, "size": 40_000 + 3 * len(h.pulls), "stargazers_count": stars, "watchers_count": stars,
        "language": "Java", "has_issues": True, "has_projects": True, "has_downloads": True, "has_wiki": True,
        "has_pages": False, "forks_count": forks, "archived": False, "disabled": False,
        "open_issues_count": h.open_issues_at(moment),
        "license": {"key": "apache-2.0", "name": "Apache License 2.0", "spdx_id": "Apache-2.0"},
        "topics": ["hadoop", "data-pipelines"], "visibility": "public", "forks": forks,
        "open_issues": h.open_issues_at(moment), "watchers": stars, "default_branch": "develop",
    }
    if full:
        body |= {"network_count": forks, "subscribers_count": h.subscribers_at(moment)}
    return body


def pull_json(h: RepoHistory, pull: Pull, moment: datetime, api: str, full: bool = False) -> dict:
    url = f"{api}/repos/{h.full_name}/pulls/{pull.number}"
    closed = pull.closed_by(moment)
    sha = hashlib.sha1(f"{h.full_name}#{pull.number}".encode()).hexdigest()
    body = {
        "url": url, "id": pull.id, "node_id": _node_id("PullRequest", pull.id),
        "html_url": f"https://github.com/{h.full_name}/pull/{pull.number}", "number": pull.number,
        "state": "closed" if closed else "open", "locked": False, "title": pull.title,
        "user": user_json(pull.author, api), "body": f"{pull.title}.", "created_at": iso(pull.created_at),
        "updated_at": iso(pull.closed_at if closed else pull.created_at),
        "closed_at": iso(pull.closed_at) if closed else None,
        "merged_at": iso(pull.closed_at) if closed and pull.merged else None,
        "merge_commit_sha": sha if closed and pull.merged else None, "assignee": None, "assignees": [],
        "requested_reviewers": [], "labels": [], "milestone": None, "draft": False,
        "head": {"label": f"{pull.author}:feature/{pull.number}", "ref": f"feature/{pull.number}", "sha": sha},
        "base": {"label": f"{h.owner}:develop", "ref": "develop", "sha": sha[::-1]},
        "author_association": "CONTRIBUTOR", "auto_merge": None, "active_lock_reason": None,
    }
    if full:       # the single-PR representation, which webhook payloads carry
        body |= {"merged": closed and pull.merged, "mergeable": None, "comments": 0, "review_comments": 0,
                 "commits": 1, "additions": 10, "deletions": 2, "changed_files": 1}
    return body


def release_json(h: RepoHistory, release: Release, moment: datetime, api: str) -> dict:
    url = f"{api}/repos/{h.full_name}/releases/{release.id}"
    draft = release.published_at > moment
    return {
        "url": url, "assets_url": f"{url}/assets",
        "html_url": f"https://github.com/{h.full_name}/releases/tag/{release.tag}",
        "id": release.id, "author": user_json(h.owner + "-bot", api, "Bot"), "node_id": _node_id("Release", release.id),
        "tag_name": release.tag, "target_commitish": "develop", "name": f"{h.full_name.split('/')[1]} {release.tag}",
        "draft": draft, "prerelease": release.prerelease, "created_at": iso(release.created_at),
        "published_at": None if draft else iso(release.published_at), "assets": [],
        "tarball_url": f"{api}/repos/{h.full_name}/tarball/{release.tag}",
        "zipball_url": f"{api}/repos/{h.full_name}/zipball/{release.tag}", "body": f"Release notes for {release.tag}.",
    }


def stargazer_json(star: Star, api: str, with_time: bool) -> dict:
    user = user_json(star.login, api)
    return {"starred_at": iso(star.starred_at), "user": user} if with_time else user


# -- the server ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Raw:
    """JSON a test injected into a listing, served as is (it may be deliberately malformed)."""
    value: object


@dataclass(frozen=True)
class Fault:
    status: int                  # 0 = drop the connection without an answer
    retry_after: float | None = None


class GitHubSimulator:
    """The simulated GitHub. `start()` serves it on a thread; use as a context manager in tests."""

    def __init__(self, repos: list[str], *, seed: int = 1, start: date = DEFAULT_START, now: datetime | None = None,
                 host: str = "127.0.0.1", port: int = 0, token: str | None = None):
        self.histories = {name.lower(): RepoHistory(name, seed, start) for name in repos}
        self._frozen_now = now
        self.host, self.port = host, port
        self.token = token               # when set, requests must carry it (to test bad credentials)
        self.faults: deque[Fault] = deque()
        self.injected: dict[tuple[str, str], list] = {}
        self.requests: list[str] = []    # every API request path, for tests that check what was asked
        self.served = 0
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> GitHubSimulator:
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False     # idle keep-alive connections must not hold up stop()
        self._server.simulator = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="github-simulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> GitHubSimulator:
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
        """Freeze the clock at `moment`: everything up to it has happened, nothing after."""
        self._frozen_now = moment.astimezone(UTC)

    def history(self, repo: str) -> RepoHistory:
        """The repository's generated history, extended to cover the clock."""
        h = self.histories[repo.lower()]
        with self._lock:
            h.extend_to(self.now().date() + timedelta(days=LOOKAHEAD_DAYS))
        return h

    def repos(self) -> list[str]:
        return [h.full_name for h in self.histories.values()]

    # -- test hooks ---------------------------------------------------------------------------------------
    def inject_faults(self, count: int, status: int = 500, retry_after: float | None = None) -> None:
        """Answer the next `count` API requests with `status` (0 drops the connection), with Retry-After."""
        with self._lock:
            self.faults.extend(Fault(status, retry_after) for _ in range(count))

    def inject_items(self, repo: str, listing: str, items: list) -> None:
        """Add raw JSON items to a listing ("stargazers", "pulls", "releases"): where newest items go."""
        with self._lock:
            self.injected.setdefault((repo.lower(), listing), []).extend(Raw(item) for item in items)

    def take_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive, like the real API
    disable_nagle_algorithm = True     # headers and body go out in separate writes: don't wait for an ACK

    @property
    def sim(self) -> GitHubSimulator:
        return self.server.simulator

    def version_string(self) -> str:
        return "GitHub.com"

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    # -- plumbing -----------------------------------------------------------------------------------------
    def _send(self, status: int, body, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.sim.served += 1
        used = self.sim.served % 5000          # plausible rate-limit headers; the quota never runs out here
        reset = (int(time.time()) // 3600 + 1) * 3600
        for name, value in {
            "Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(data)),
            "X-GitHub-Api-Version-Selected": "2022-11-28", "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
            "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(5000 - used), "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core", **(headers or {}),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"message": message, "documentation_url": DOCS_URL, "status": str(status)}, headers)

    def _authenticated(self) -> bool | None:
        """True/False for a caller with/without credentials; None for wrong credentials."""
        given = self.headers.get("Authorization", "")
        if not given:
            return False
        if self.sim.token is None:
            return True
        scheme, _, token = given.partition(" ")
        return True if scheme.lower() in ("bearer", "token") and token == self.sim.token else None

    # -- requests -----------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        if urlsplit(self.path).path != "/_sim/faults":
            return self._error(404, "Not Found")
        try:
            spec = json.loads(raw)
            self.sim.inject_faults(int(spec.get("count", 1)), int(spec.get("status", 500)), spec.get("retry_after"))
        except (ValueError, TypeError, AttributeError) as exc:
            return self._error(400, f"expected {{count, status, retry_after}}: {exc}")
        self._send(200, {"queued": len(self.sim.faults)})

    def do_GET(self) -> None:
        self.sim.requests.append(self.path)
        fault = self.sim.take_fault()
        if fault is not None:
            return self._fail(fault)
        auth = self._authenticated()
        if auth is None:
            return self._error(401, "Bad credentials")
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        segments = [s for s in parts.path.split("/") if s]
        h, rest = self._repository(segments)
        if h is None:
            return self._error(404, "Not Found")
        api = f"http://{self.headers.get('Host') or f'{self.sim.host}:{self.sim.port}'}"
        moment = self.sim.now()
        if not rest:
            return self._send(200, repo_json(h, moment, api, full=True))
        if rest == ["stargazers"]:
            with_time = STAR_MEDIA_TYPE in self.headers.get("Accept", "")
            items = h.stargazers_at(moment) + self.sim.injected.get((h.full_name.lower(), "stargazers"), [])
            media = "github.v3; param=star; format=json" if with_time else "github.v3; format=json"
            return self._page(h, api, "stargazers", items, lambda s: stargazer_json(s, api, with_time), query,
                              {"X-GitHub-Media-Type": media})
        if rest == ["pulls"]:
            return self._page(h, api, "pulls", self._pulls(h, moment, query),
                              lambda p: pull_json(h, p, moment, api), query)
        if rest == ["releases"]:
            releases = sorted(h.releases_at(moment, include_drafts=auth), key=lambda r: (r.created_at, r.id),
                              reverse=True)
            items = self.sim.injected.get((h.full_name.lower(), "releases"), []) + releases
            return self._page(h, api, "releases", items, lambda r: release_json(h, r, moment, api), query)
        self._error(404, "Not Found")

    def _repository(self, segments: list[str]) -> tuple[RepoHistory | None, list[str]]:
        if len(segments) >= 3 and segments[0] == "repos":
            name, rest = f"{segments[1]}/{segments[2]}".lower(), segments[3:]
        elif len(segments) >= 2 and segments[0] == "repositories" and segments[1].isdigit():
            ids = {h.repo_id: key for key, h in self.sim.histories.items()}
            name, rest = ids.get(int(segments[1]), ""), segments[2:]
        else:
            return None, []
        return (self.sim.history(name), rest) if name in self.sim.histories else (None, [])

    def _pulls(self, h: RepoHistory, moment: datetime, query: dict[str, str]) -> list:
        state = query.get("state", "open")
        pulls = [p for p in h.pulls_at(moment)
                 if state == "all" or (state == "closed") == p.closed_by(moment)]
        if query.get("sort", "created") == "updated":
            pulls.sort(key=lambda p: (p.closed_at if p.closed_by(moment) else p.created_at, p.number))
        else:
            pulls.sort(key=lambda p: (p.created_at, p.number))
        if query.get("direction", "desc") == "desc":
            pulls.reverse()
        return self.sim.injected.get((h.full_name.lower(), "pulls"), []) + pulls

    def _page(self, h: RepoHistory, api: str, listing: str, items: list, to_json, query: dict[str, str],
              headers: dict[str, str] | None = None) -> None:
        """One page of `items` (model objects, or raw JSON a test injected) with GitHub's Link header."""
        per_page = min(100, max(1, int(query["per_page"]) if query.get("per_page", "").isdigit() else 30))
        page = max(1, int(query["page"]) if query.get("page", "").isdigit() else 1)
        last = max(1, math.ceil(len(items) / per_page))

        def link(number: int) -> str:
            query_string = urlencode({**query, "per_page": per_page, "page": number})
            return f"{api}/repositories/{h.repo_id}/{listing}?{query_string}"

        links = []
        if page > 1:
            links += [f'<{link(min(page - 1, last))}>; rel="prev"']
        if page < last:
            links += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            links += [f'<{link(1)}>; rel="first"']
        chosen = items[(page - 1) * per_page: page * per_page]
        self._send(200, [item.value if isinstance(item, Raw) else to_json(item) for item in chosen],
                   {**(headers or {}), **({"Link": ", ".join(links)} if links else {})})

    def _fail(self, fault: Fault) -> None:
        if fault.status == 0:          # the server closes the socket after this handler: no answer at all
            self.close_connection = True
            return
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
        if fault.status in (403, 429):
            self._error(fault.status, "You have exceeded a secondary rate limit. Please wait a few minutes "
                                      "before you try again.", headers)
        else:
            self._error(fault.status, "Server Error", headers)


# -- webhooks -----------------------------------------------------------------------------------------------
HOOKSHOT_AGENT = "GitHub-Hookshot/044aadd"
DELIVERY_NAMESPACE = uuid.UUID("6f1c7c1e-4a8b-4f59-9a55-1b2f6c0c9d11")


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 value GitHub sends: HMAC-SHA256 of the raw body, hex, prefixed."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    at: datetime
    event: str
    delivery_id: str
    payload: dict


class WebhookSender:
    """Posts the simulator's events to a webhook URL the way GitHub does (headers, signatures, payloads).

    A delivery's id is derived from the event, so sending the same event again is a redelivery with the
    same X-GitHub-Delivery, as on GitHub. Failed deliveries are not retried (neither does GitHub); the
    REST poller recovers what they carried."""

    def __init__(self, sim: GitHubSimulator, url: str, secret: str, *, hook_id: int = 109948940,
                 timeout: float = 10.0):
        self.sim, self.url, self.secret, self.hook_id, self.timeout = sim, url, secret, hook_id, timeout
        self.session = requests.Session()

    def events_between(self, after: datetime, until: datetime) -> list[Delivery]:
        """Star, fork, pull request and release events with times in (after, until], in time order."""
        api = self.sim.url
        deliveries: list[Delivery] = []

        for name in self.sim.repos():
            h = self.sim.history(name)

            def add(at: datetime, event: str, key: str, payload_for, h=h) -> None:
                if after < at <= until:
                    identity = f"{h.full_name}/{event}/{key}"
                    deliveries.append(Delivery(at, event, str(uuid.uuid5(DELIVERY_NAMESPACE, identity)),
                                               payload_for(at)))

            for star in h.stars:
                add(star.starred_at, "star", f"created/{star.login}", lambda at, s=star: {
                    "action": "created", "starred_at": iso(s.starred_at), "repository": repo_json(h, at, api),
                    "sender": user_json(s.login, api)})
                if star.unstarred_at:
                    add(star.unstarred_at, "star", f"deleted/{star.login}", lambda at, s=star: {
                        "action": "deleted", "starred_at": None, "repository": repo_json(h, at, api),
                        "sender": user_json(s.login, api)})
            for fork in h.forks:
                add(fork.created_at, "fork", fork.owner, lambda at, f=fork: {
                    "forkee": self._forkee(h, f, api), "repository": repo_json(h, at, api),
                    "sender": user_json(f.owner, api)})
            for pull in h.pulls:
                for action, at in (("opened", pull.created_at), ("closed", pull.closed_at)):
                    if at is not None:
                        add(at, "pull_request", f"{action}/{pull.number}", lambda at, p=pull, a=action: {
                            "action": a, "number": p.number, "pull_request": pull_json(h, p, at, api, full=True),
                            "repository": repo_json(h, at, api), "sender": user_json(p.author, api)})
            for release in h.releases:
                add(release.published_at, "release", f"published/{release.id}", lambda at, r=release: {
                    "action": "published", "release": release_json(h, r, at, api),
                    "repository": repo_json(h, at, api), "sender": user_json(h.owner + "-bot", api, "Bot")})
        return sorted(deliveries, key=lambda d: d.at)

    @staticmethod
    def _forkee(h: RepoHistory, fork: Fork, api: str) -> dict:
        name = h.full_name.split("/")[1]
        return {"id": fork.repo_id, "node_id": _node_id("Repository", fork.repo_id), "name": name,
                "full_name": f"{fork.owner}/{name}", "private": False, "owner": user_json(fork.owner, api),
                "html_url": f"https://github.com/{fork.owner}/{name}", "fork": True,
                "url": f"{api}/repos/{fork.owner}/{name}", "created_at": iso(fork.created_at),
                "updated_at": iso(fork.created_at), "pushed_at": iso(fork.created_at), "stargazers_count": 0,
                "watchers_count": 0, "forks_count": 0, "open_issues_count": 0, "default_branch": "develop",
                "public": True}

    def send(self, event: str, payload: dict | bytes, delivery_id: str | None = None) -> requests.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json", "User-Agent": HOOKSHOT_AGENT, "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()), "X-GitHub-Hook-ID": str(self.hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(payload.get("repository", {}).get("id", ""))
            if isinstance(payload, dict) else "",
            "X-Hub-Signature": "sha1=" + hmac.new(self.secret.encode(), body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": sign(body, self.secret),
        }
        return self.session.post(self.url, data=body, headers=headers, timeout=self.timeout)

    def deliver_between(self, after: datetime, until: datetime) -> list[int]:
        """Send every event in (after, until]; the HTTP statuses (0 when the receiver was unreachable)."""
        statuses = []
        for delivery in self.events_between(after, until):
            try:
                statuses.append(self.send(delivery.event, delivery.payload, delivery.delivery_id).status_code)
            except requests.RequestException as exc:
                log.warning("delivery %s (%s) failed: %s", delivery.delivery_id, delivery.event, exc)
                statuses.append(0)
        return statuses

    def run_live(self, interval: float, stop: threading.Event) -> None:
        """Deliver events as the clock passes them (the demo): only what happens after start, like a new hook."""
        last = self.sim.now()
        while not stop.wait(interval):
            now = self.sim.now()
            sent = self.deliver_between(last, now)
            if sent:
                log.info("delivered %d webhook events (statuses %s)", len(sent), sorted(set(sent)))
            last = now


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    github = cfg.sources.github
    port = urlsplit(github.api_url).port or 80
    return ["--port", str(port), "--repos", ",".join(github.repos),
            "--webhook-url", f"http://127.0.0.1:{cfg.api.port}/webhooks/github",
            "--secret-env", github.webhook_secret_env], port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.github", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--repos", required=True, help="comma-separated owner/name list")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--since", type=date.fromisoformat, default=DEFAULT_START, help="first day of history")
    parser.add_argument("--webhook-url", help="where to POST webhook deliveries as events happen")
    parser.add_argument("--secret-env", default="GITHUB_WEBHOOK_SECRET", help="variable holding the webhook secret")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between webhook delivery rounds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    repos = [r.strip() for r in args.repos.split(",") if r.strip()]
    bad = [r for r in repos if not re.fullmatch(r"[\w.-]+/[\w.-]+", r)]
    if not repos or bad:
        print(f"error: --repos must be owner/name[,owner/name...], got {args.repos!r}", file=sys.stderr)
        return 2
    secret = os.environ.get(args.secret_env) if args.webhook_url else None
    if args.webhook_url and not secret:
        print(f"error: --webhook-url needs the secret in ${args.secret_env}", file=sys.stderr)
        return 2
    sim = GitHubSimulator(repos, seed=args.seed, start=args.since, host=args.host, port=args.port)
    for name in repos:
        sim.history(name)       # generate before serving, so the first poll is not slow
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.webhook_url:
        sender = WebhookSender(sim, args.webhook_url, secret)
        threading.Thread(target=sender.run_live, args=(args.interval, stop), daemon=True).start()
    log.info("GitHub simulator on %s for %s%s", sim.url, ", ".join(repos),
             f"; webhooks to {args.webhook_url}" if args.webhook_url else "")
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
