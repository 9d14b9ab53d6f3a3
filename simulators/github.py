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

Test hooks in process: `inject_faults` (any status with Retry-After, or a dropped connection),
`inject_items` (raw JSON items in a listing), `set_time`; the generated history is in
`simulators/github_repos.py`. The server shows what had happened by its clock: the real time by default, or a
time a test sets (`set_time`), so tests can make history "happen" and the `WebhookSender` can deliver
exactly the events of a time window.

Run: python -m simulators.github --port 8091 --repos caskdata/cdap,caskdata/coopr \
         [--webhook-url http://127.0.0.1:8000/webhooks/github --secret-env GITHUB_WEBHOOK_SECRET]
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode, urlsplit

import requests

from simulators.github_repos import DEFAULT_START, Fork, Pull, Release, RepoHistory, Star
from simulators.jsonserver import JsonApiSimulator, Reply, Request, argument_parser, serve_until_stopped
from simulators.randomness import stable_number

log = logging.getLogger("caskalytics.simulators.github")
UTC = timezone.utc
LOOKAHEAD_DAYS = 3              # drafts exist before their publish day, so generate a little ahead of the clock
STAR_MEDIA_TYPE = "application/vnd.github.star+json"
DOCS_URL = "https://docs.github.com/rest"


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


# -- GitHub's JSON shapes -----------------------------------------------------------------------------------
def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def user_json(login: str, api: str, kind: str = "User") -> dict:
    user_id = stable_number("user/" + login, 1_000_000, 99_999_999)
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


class GitHubSimulator(JsonApiSimulator):
    """The simulated GitHub. `start()` serves it on a thread; use as a context manager in tests."""
    server_name = "GitHub.com"
    content_type = "application/json; charset=utf-8"
    json_indent = 2
    date_follows_clock = False
    fault_hook_fields = ("retry_after",)

    def __init__(self, repos: list[str], *, seed: int = 1, start: date = DEFAULT_START, token: str | None = None,
                 **server):
        super().__init__(**server)
        self.histories = {name.lower(): RepoHistory(name, seed, start) for name in repos}
        self.token = token               # when set, requests must carry it (to test bad credentials)
        self.injected: dict[tuple[str, str], list] = {}
        self.served = 0

    def history(self, repo: str) -> RepoHistory:
        """The repository's generated history, extended to cover the clock."""
        h = self.histories[repo.lower()]
        with self._lock:
            h.extend_to(self.now().date() + timedelta(days=LOOKAHEAD_DAYS))
        return h

    def repos(self) -> list[str]:
        return [h.full_name for h in self.histories.values()]

    def inject_items(self, repo: str, listing: str, items: list) -> None:
        """Add raw JSON items to a listing ("stargazers", "pulls", "releases"): where newest items go."""
        with self._lock:
            self.injected.setdefault((repo.lower(), listing), []).extend(Raw(item) for item in items)

    # -- GitHub's envelope and headers --------------------------------------------------------------------
    def error_body(self, status: int, message: str) -> dict:
        return {"message": message, "documentation_url": DOCS_URL, "status": str(status)}

    def fault_body(self, status: int) -> dict:
        if status in (403, 429):
            return self.error_body(status, "You have exceeded a secondary rate limit. Please wait a few minutes "
                                           "before you try again.")
        return self.error_body(status, "Server Error")

    def common_headers(self) -> dict[str, str]:
        self.served += 1
        used = self.served % 5000          # plausible rate-limit headers; the quota never runs out here
        reset = (int(time.time()) // 3600 + 1) * 3600
        return {"X-GitHub-Api-Version-Selected": "2022-11-28", "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
                "X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": str(5000 - used),
                "X-RateLimit-Reset": str(reset), "X-RateLimit-Used": str(used), "X-RateLimit-Resource": "core"}

    def _authenticated(self, request: Request) -> bool | None:
        """True/False for a caller with/without credentials; None for wrong credentials."""
        given = request.headers.get("authorization", "")
        if not given:
            return False
        if self.token is None:
            return True
        scheme, _, token = given.partition(" ")
        return True if scheme.lower() in ("bearer", "token") and token == self.token else None

    # -- requests -----------------------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        auth = self._authenticated(request)
        if auth is None:
            return Reply(401, self.error_body(401, "Bad credentials"))
        h, rest = self._repository([s for s in request.path.split("/") if s])
        if h is None:
            return Reply(404, self.error_body(404, "Not Found"))
        api = f"http://{request.headers.get('host') or f'{self.host}:{self.port}'}"
        moment = self.now()
        if not rest:
            return Reply(200, repo_json(h, moment, api, full=True))
        injected = self.injected.get((h.full_name.lower(), rest[0]), [])
        if rest == ["stargazers"]:
            with_time = STAR_MEDIA_TYPE in request.headers.get("accept", "")
            media = "github.v3; param=star; format=json" if with_time else "github.v3; format=json"
            return self._page(h, api, "stargazers", h.stargazers_at(moment) + injected,
                              lambda s: stargazer_json(s, api, with_time), request.query,
                              {"X-GitHub-Media-Type": media})
        if rest == ["pulls"]:
            return self._page(h, api, "pulls", injected + self._pulls(h, moment, request.query),
                              lambda p: pull_json(h, p, moment, api), request.query)
        if rest == ["releases"]:
            releases = sorted(h.releases_at(moment, include_drafts=auth), key=lambda r: (r.created_at, r.id),
                              reverse=True)
            return self._page(h, api, "releases", injected + releases, lambda r: release_json(h, r, moment, api),
                              request.query)
        return Reply(404, self.error_body(404, "Not Found"))

    def _repository(self, segments: list[str]) -> tuple[RepoHistory | None, list[str]]:
        if len(segments) >= 3 and segments[0] == "repos":
            name, rest = f"{segments[1]}/{segments[2]}".lower(), segments[3:]
        elif len(segments) >= 2 and segments[0] == "repositories" and segments[1].isdigit():
            ids = {h.repo_id: key for key, h in self.histories.items()}
            name, rest = ids.get(int(segments[1]), ""), segments[2:]
        else:
            return None, []
        return (self.history(name), rest) if name in self.histories else (None, [])

    @staticmethod
    def _pulls(h: RepoHistory, moment: datetime, query: dict[str, str]) -> list[Pull]:
        state = query.get("state", "open")
        pulls = [p for p in h.pulls_at(moment)
                 if state == "all" or (state == "closed") == p.closed_by(moment)]
        if query.get("sort", "created") == "updated":
            pulls.sort(key=lambda p: (p.closed_at if p.closed_by(moment) else p.created_at, p.number))
        else:
            pulls.sort(key=lambda p: (p.created_at, p.number))
        if query.get("direction", "desc") == "desc":
            pulls.reverse()
        return pulls

    @staticmethod
    def _page(h: RepoHistory, api: str, listing: str, items: list, to_json, query: dict[str, str],
              headers: dict[str, str] | None = None) -> Reply:
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
        return Reply(200, [item.value if isinstance(item, Raw) else to_json(item) for item in chosen],
                     {**(headers or {}), **({"Link": ", ".join(links)} if links else {})})


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
    parser = argument_parser("simulators.github", __doc__, port=8091, since=DEFAULT_START)
    parser.add_argument("--repos", required=True, help="comma-separated owner/name list")
    parser.add_argument("--webhook-url", help="where to POST webhook deliveries as events happen")
    parser.add_argument("--secret-env", default="GITHUB_WEBHOOK_SECRET", help="variable holding the webhook secret")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between webhook delivery rounds")
    args = parser.parse_args(argv)
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
    workers = ()
    if args.webhook_url:
        sender = WebhookSender(sim, args.webhook_url, secret)
        workers = (lambda stop: sender.run_live(args.interval, stop),)
    return serve_until_stopped(sim, f"GitHub simulator on {{url}} for {', '.join(repos)}"
                               + (f"; webhooks to {args.webhook_url}" if args.webhook_url else ""), workers)


if __name__ == "__main__":
    sys.exit(main())
