"""`github`: stars, forks, watchers, pull requests and releases of the configured repositories.

Two feeds fill the raw tables, and `warehouse.metrics` combines them:

- **Webhook deliveries** (`deliveries_batch`): the API verifies each delivery and stores it in the SQLite
  inbox; the scheduler's drain turns inbox rows into `raw_github_events` rows keyed by X-GitHub-Delivery.
  The event time is the payload's own (starred_at, forkee.created_at, pull_request.created_at,
  release.published_at), else the time we received it (an unstar, a watch). A delivery we cannot use
  (not UTF-8, not JSON, a needed field missing or of the wrong type) goes to quarantine with the reason
  and never blocks the deliveries behind it. Events other than star, watch, fork, pull_request and release
  are stored too (time = received): the metrics select only the events they need, and the raw record
  stays available for later metrics.
- **The REST poller** (`GitHub.collect`): per repository a snapshot of the counters, the stargazer list
  with starred_at, and new pull requests and releases, one batch per repository. It is the safety net
  for webhooks: GitHub does not redeliver failed deliveries, so the stargazer history recovers stars that
  happened while no webhook arrived.

Poller cursor: {"repos": {"owner/name": {"stargazers": N, "pulls_since": ISO, "releases_since": ISO}}}.
GitHub lists stargazers oldest first, so new stars are at the end: a run starts one page before the page
that held the last star seen (unstars move later stars to earlier positions; natural keys make the
overlap harmless). Pulls and releases are listed newest first, so paging stops at the first item older
than the newest one seen. On the first run, pulls and releases go back `history_days`; the stargazer
list is always read whole, because the star count is reconstructed from it.
"""
from __future__ import annotations

import re
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import requests

from pydantic import field_validator
from collectors import fields, http
from collectors.base import Batch, Context, Demo, Inbox, Malformed, Rejected, Source, SourceError, quarantine_text
from config import SourceConfig
from warehouse.catalog import COUNTER, FROM_EARLIEST, GAUGE, Metric, RawTable
from warehouse.metrics import github_sql
from warehouse import timegrid

log = logging.getLogger("caskalytics.collectors.github")
UTC = timezone.utc
PER_PAGE = 100
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
               "User-Agent": "caskalytics"}
STAR_HEADERS = {"Accept": "application/vnd.github.star+json"}     # the media type that adds starred_at
# GitHub lists releases by creation, not publication: a release drafted long ago and published now can
# sit below newer ones, so each run re-reads this much before the newest publication seen.
RELEASE_RELIST = timedelta(days=30)
EARLIEST = datetime(2007, 10, 1, tzinfo=UTC)     # before GitHub existed: the time is corrupt
FUTURE_SLACK = timedelta(days=1)
KNOWN_EVENTS = ("star", "watch", "fork", "pull_request", "release")


class GithubConfig(SourceConfig):
    repos: list[str]
    api_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    webhook_secret_env: str = "GITHUB_WEBHOOK_SECRET"
    schedule: str = "every 1 hour"

    @field_validator("repos")
    @classmethod
    def owner_slash_name(cls, value: list[str]) -> list[str]:
        for repo in value:
            if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
                raise ValueError(f"repositories as 'owner/name', got {repo!r}")
        return value


def _time(obj: Any, *path: str, required: bool = True) -> datetime | None:
    value = fields.field(obj, *path, required=required)
    return None if value is None else parse_time(value, ".".join(path))


def parse_time(value: Any, name: str) -> datetime:
    """A GitHub timestamp ("2019-05-15T15:20:40Z") as an aware UTC datetime; a bare time is taken as UTC."""
    if not isinstance(value, str):
        raise Malformed(f"{name} is not a time string: {value!r:.80}")
    try:
        moment = datetime.fromisoformat(value)
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise Malformed(f"{name} is not an ISO 8601 time: {value!r:.80}") from None
    if not EARLIEST <= moment <= datetime.now(UTC) + FUTURE_SLACK:
        raise Malformed(f"{name} is not a plausible time: {value!r:.80}")
    return moment


# -- webhook deliveries: inbox rows -> raw_github_events ----------------------------------------------------
def deliveries_batch(rows: Iterable[sqlite3.Row]) -> Batch:
    """One batch for inbox rows (id, kind, dedupe_key, received_at, headers, body): the events we can use,
    the rest quarantined, and the cursor {"last_id": the highest row id} (None for no rows)."""
    rows = list(rows)
    events, rejected = [], []
    for row in rows:
        origin = row["dedupe_key"] or f"inbox row {row['id']}"
        try:
            events.append(delivery_record(row))
        except Malformed as exc:
            rejected.append(Rejected(f"webhook delivery: {exc}", _body_text(row["body"]), origin))
        except Exception as exc:     # a parser bug must not block every delivery queued behind this one
            log.exception("cannot parse webhook delivery %s", origin)
            rejected.append(Rejected(f"webhook delivery could not be parsed ({type(exc).__name__}: {exc})",
                                     _body_text(row["body"]), origin))
    last_id = max((row["id"] for row in rows), default=None)
    return Batch(records={"raw_github_events": events},
                 cursor={"last_id": last_id} if last_id is not None else None, rejected=rejected,
                 label=f"inbox rows {rows[0]['id']}..{last_id}" if rows else "")


def delivery_record(row: sqlite3.Row) -> dict[str, Any]:
    """The raw_github_events row for one inbox row; `Malformed` when the delivery is unusable."""
    try:
        headers = json.loads(row["headers"])
    except (TypeError, ValueError):
        raise Malformed("the stored headers are not JSON") from None
    if not isinstance(headers, dict):
        raise Malformed("the stored headers are not an object")
    event = fields.text(headers, "x-github-event")
    delivery_id = row["dedupe_key"] or fields.text(headers, "x-github-delivery")
    try:
        received_at = datetime.fromisoformat(row["received_at"]).astimezone(UTC)
    except (TypeError, ValueError):
        raise Malformed(f"received_at is not a time: {row['received_at']!r:.80}") from None
    body = _body_bytes(row["body"])
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    payload = parse_json(text)
    if not isinstance(payload, dict):
        raise Malformed("the payload is not a JSON object")
    return {"delivery_id": delivery_id, "event": event, "sender": fields.text(payload, "sender", "login", required=False),
            "watchers": None,     # GitHub's watchers_count equals the star count; real watchers come from polling
            "payload": text, **_event_fields(event, payload, received_at)}


def _event_fields(event: str, payload: dict, received_at: datetime) -> dict[str, Any]:
    known = event in KNOWN_EVENTS
    action = fields.text(payload, "action", required=known and event != "fork")     # fork deliveries have no action
    row = {"ts": received_at, "action": action, "item_id": None,
           "repo": fields.text(payload, "repository", "full_name", required=known),
           "stars": fields.count(payload, "repository", "stargazers_count", required=event in ("star", "watch")),
           "forks": fields.count(payload, "repository", "forks_count", required=event == "fork")}
    if event == "star" and action == "created":
        row["ts"] = _time(payload, "starred_at")
    elif event == "fork":
        row["ts"] = _time(payload, "forkee", "created_at")
    elif event == "pull_request":
        row["item_id"] = fields.count(payload, "pull_request", "number")
        row["ts"] = _time(payload, "pull_request", "created_at")
    elif event == "release":
        row["item_id"] = fields.count(payload, "release", "id")
        # Drafts (action "created") have no publication time yet.
        row["ts"] = _time(payload, "release", "published_at", required=action == "published") or received_at
    return row


def parse_json(text: str) -> Any:
    def no_constants(name: str):
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(text, parse_constant=no_constants)
    except ValueError as exc:
        raise Malformed(f"not valid JSON: {exc}") from None
    except RecursionError:
        raise Malformed("JSON nested too deeply") from None
    # The lake stores payloads as DuckDB JSON, which refuses the unpaired UTF-16 surrogate escapes
    # ("\ud800") that Python accepts; one such payload would fail the whole batch's commit.
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Malformed("the JSON holds an unpaired UTF-16 surrogate escape") from None
    return value


def _body_bytes(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return bytes(body) if body is not None else b""


def _body_text(body: Any) -> str:
    return _body_bytes(body).decode("utf-8", "replace")


# -- REST items -> raw rows ---------------------------------------------------------------------------------
def snapshot_row(repo_object: Any, taken_at: datetime) -> dict[str, Any]:
    return {"ts": taken_at, "repo": fields.text(repo_object, "full_name"),
            "stars": fields.count(repo_object, "stargazers_count"), "forks": fields.count(repo_object, "forks_count"),
            # subscribers_count is the real watcher count (watchers_count is the star count, for history).
            "watchers": fields.count(repo_object, "subscribers_count", required=False),
            "open_issues": fields.count(repo_object, "open_issues_count", required=False)}


def stargazer_row(item: Any, repo: str) -> dict[str, Any]:
    if isinstance(item, dict) and "starred_at" not in item and "login" in item:
        raise Malformed("no starred_at: the answer ignored the application/vnd.github.star+json media type")
    return {"ts": _time(item, "starred_at"), "repo": repo, "login": fields.text(item, "user", "login")}


def pull_row(item: Any, repo: str) -> dict[str, Any]:
    return {"ts": _time(item, "created_at"), "repo": repo, "number": fields.count(item, "number")}


def release_row(item: Any, repo: str) -> dict[str, Any] | None:
    """None for a draft: it has no publication yet, and counts when it is published."""
    draft = fields.field(item, "draft", required=False)
    if draft is not None and not isinstance(draft, bool):
        raise Malformed(f"draft is not true/false: {draft!r:.80}")
    if draft:
        return None
    return {"ts": _time(item, "published_at"), "repo": repo, "release_id": fields.count(item, "id"),
            "tag": fields.text(item, "tag_name")}


# -- the REST poller ----------------------------------------------------------------------------------------
class RepoNotFound(Exception):
    pass


@dataclass
class RepoMark:
    """The cursor of one repository (see the module docstring)."""
    stargazers: int = 0
    pulls_since: datetime | None = None
    releases_since: datetime | None = None

    @classmethod
    def load(cls, saved: Any) -> RepoMark:
        """A saved mark; anything unreadable (an older layout, a hand edit) counts as never read."""
        mark = cls()
        if not isinstance(saved, dict):
            return mark
        if isinstance(saved.get("stargazers"), int) and saved["stargazers"] >= 0:
            mark.stargazers = saved["stargazers"]
        for name in ("pulls_since", "releases_since"):
            try:
                setattr(mark, name, parse_time(saved.get(name), name))
            except Malformed:
                pass
        return mark

    def dump(self) -> dict[str, Any]:
        return {"stargazers": self.stargazers, "pulls_since": _iso(self.pulls_since),
                "releases_since": _iso(self.releases_since)}


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def resume_page(seen: int, current: int | None) -> int:
    """The stargazer page to start from: one page before the page that held the last star seen. The
    current total (from the snapshot) bounds how far unstars can have moved the list back."""
    base = min(seen, current) if current is not None else seen
    return max(1, (base - 1) // PER_PAGE)


@dataclass
class RepoRead:
    """What one pass over one repository found."""
    repo: str
    snapshot: list[dict] = field(default_factory=list)
    stargazers: list[dict] = field(default_factory=list)
    stargazers_listed: int | None = None      # position of the last stargazer read; None if not listed
    pulls: list[dict] = field(default_factory=list)
    releases: list[dict] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def records(self, keep: Callable[[datetime], bool] = lambda ts: True) -> dict[str, list[dict]]:
        return {"raw_github_snapshots": [r for r in self.snapshot if keep(r["ts"])],
                "raw_github_stargazers": [r for r in self.stargazers if keep(r["ts"])],
                "raw_github_pulls": [r for r in self.pulls if keep(r["ts"])],
                "raw_github_releases": [r for r in self.releases if keep(r["ts"])]}


class RepoReader:
    """The REST reads for one repository, sharing one session; bad items become `Rejected`."""

    def __init__(self, session: requests.Session, api_url: str, repo: str, credential_hint: str):
        self.session, self.api, self.credential_hint = session, api_url.rstrip("/"), credential_hint
        self.read = RepoRead(repo)

    def run(self, *, stargazers_from: int, stargazers_until: datetime | None, pulls_since: datetime | None,
            releases_since: datetime | None) -> RepoRead:
        current = self._snapshot()
        self._stargazers(resume_page(stargazers_from, current), stargazers_until)
        self._pulls(pulls_since)
        self._releases(releases_since)
        return self.read

    def _get_json(self, url: str, params: dict | None = None, headers: dict | None = None):
        what = f"GitHub GET {urlsplit(url).path}"
        response = http.get(self.session, url, params, headers, what=what, credential_hint=self.credential_hint)
        return response, http.decode_json(response, what)

    def _reject(self, what: str, exc: Exception, item: Any, origin: str) -> None:
        self.read.rejected.append(Rejected(f"{what}: {exc}", quarantine_text(item), origin))

    def _snapshot(self) -> int | None:
        """Store the counters; the current star count, to place the stargazer re-read."""
        url = f"{self.api}/repos/{self.read.repo}"
        try:
            _, body = self._get_json(url)
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code == 404:
                raise RepoNotFound(self.read.repo) from None
            raise
        except http.BadResponse as exc:
            self._reject("repository", exc, None, url)
            return None
        try:
            row = snapshot_row(body, datetime.now(UTC).replace(microsecond=0))
        except Malformed as exc:
            self._reject("repository", exc, body, url)
            return None
        # GitHub's spelling of the name (case, renames) is what webhook deliveries carry: use it everywhere.
        self.read.repo = row["repo"]
        self.read.snapshot.append(row)
        return row["stars"]

    def _pages(self, path: str, params: dict, headers: dict | None = None) -> Iterator[tuple[str, list]]:
        """Each page of a list endpoint as (url, items), following Link rel="next" on the API host only."""
        url: str | None = self.api + path
        visited = set()
        while url and url not in visited:          # a Link loop must not page forever
            visited.add(url)
            try:
                response, items = self._get_json(url, params, headers)
            except http.BadResponse as exc:
                self._reject("list page", exc, None, url)
                return
            if not isinstance(items, list):
                self._reject("list page", Malformed("not a JSON array"), items, response.url)
                return
            yield response.url, items
            url, params = response.links.get("next", {}).get("url"), None
            if url and urlsplit(url)[:2] != urlsplit(self.api)[:2]:
                # Following it would send our token to another host.
                self._reject("list page", Malformed("the next-page link leaves the API host"), url, response.url)
                return

    def _parsed(self, parse, item: Any, what: str, origin: str) -> dict | None:
        try:
            return parse(item, self.read.repo)
        except Malformed as exc:
            self._reject(what, exc, item, origin)
            return None

    def _stargazers(self, start_page: int, until: datetime | None) -> None:
        page = start_page
        for url, items in self._pages(f"/repos/{self.read.repo}/stargazers", {"per_page": PER_PAGE, "page": page},
                                      STAR_HEADERS):
            if not items and page > 1 and page == start_page:
                # The list shrank below where we stopped last time: read it from the start instead.
                self._stargazers(1, until)
                return
            rows = [row for item in items if (row := self._parsed(stargazer_row, item, "stargazer", url))]
            self.read.stargazers += rows
            self.read.stargazers_listed = (page - 1) * PER_PAGE + len(items)
            if until and rows and rows[-1]["ts"] >= until:    # oldest first: the rest is later still
                return
            page += 1

    def _newest_first(self, path: str, params: dict, parse, what: str, since: datetime | None) -> list[dict]:
        """Rows from a newest-first listing, paging until an item is older than `since`."""
        found = []
        for url, items in self._pages(path, {**params, "per_page": PER_PAGE}):
            reached_older = False
            for item in items:
                row = self._parsed(parse, item, what, url)
                if row is None:
                    continue
                if since and row["ts"] < since:
                    reached_older = True
                    continue
                found.append(row)
            if reached_older:
                break
        return found

    def _pulls(self, since: datetime | None) -> None:
        self.read.pulls = self._newest_first(f"/repos/{self.read.repo}/pulls",
                                             {"state": "all", "sort": "created", "direction": "desc"},
                                             pull_row, "pull request", since)

    def _releases(self, since: datetime | None) -> None:
        self.read.releases = self._newest_first(f"/repos/{self.read.repo}/releases", {}, release_row, "release",
                                                since)


def _newest(rows: list[dict], previous: datetime | None) -> datetime | None:
    return max([r["ts"] for r in rows] + ([previous] if previous else []), default=None)


class GitHub:

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        settings: GithubConfig = ctx.settings
        saved = (cursor or {}).get("repos")
        marks = {repo: RepoMark.load(mark) for repo, mark in (saved if isinstance(saved, dict) else {}).items()}
        first_run_since = datetime.now(UTC) - timedelta(days=settings.history_days)

        def plan(repo: str) -> dict:
            mark = marks.get(repo, RepoMark())
            return {"stargazers_from": mark.stargazers, "stargazers_until": None,
                    "pulls_since": mark.pulls_since or first_run_since,
                    "releases_since": mark.releases_since - RELEASE_RELIST if mark.releases_since else first_run_since}

        for index, repo, read in self._read_repos(ctx, plan):
            mark = marks.setdefault(repo, RepoMark())
            if read.stargazers_listed is not None:
                mark.stargazers = read.stargazers_listed
            mark.pulls_since = _newest(read.pulls, mark.pulls_since)
            mark.releases_since = _newest(read.releases, mark.releases_since)
            yield Batch(records=read.records(), cursor={"repos": {name: m.dump() for name, m in marks.items()}},
                        rejected=read.rejected, progress=(index, len(settings.repos)), label=repo)

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        """The same reads, keeping rows whose time falls on [start, end] in the reporting time zone."""
        first, after_last = timegrid.local_day_bounds(start, end, ctx.config.warehouse.timezone)

        def plan(repo: str) -> dict:
            return {"stargazers_from": 0, "stargazers_until": after_last, "pulls_since": first,
                    "releases_since": first - RELEASE_RELIST}

        settings: GithubConfig = ctx.settings
        for index, repo, read in self._read_repos(ctx, plan):
            yield Batch(records=read.records(lambda ts: first <= ts < after_last), cursor=None,
                        rejected=read.rejected, progress=(index, len(settings.repos)), label=f"{repo} {start}..{end}")

    def _read_repos(self, ctx: Context, plan: Callable[[str], dict]) -> Iterator[tuple[int, str, RepoRead]]:
        """Read each configured repository; a missing one is reported after the others were read."""
        settings: GithubConfig = ctx.settings
        token = ctx.secret(settings.token_env)
        headers = dict(API_HEADERS, **({"Authorization": f"Bearer {token}"} if token else {}))
        hint = f"[sources.github] token_env (${settings.token_env})"
        missing = []
        with http.new_session(headers) as session:
            for index, repo in enumerate(settings.repos, 1):
                try:
                    read = RepoReader(session, settings.api_url, repo, hint).run(**plan(repo))
                except RepoNotFound:
                    missing.append(repo)
                    continue
                yield index, repo, read
        if missing:
            raise SourceError(f"GitHub has no repository {', '.join(missing)} at {settings.api_url} (404): check "
                              f"[sources.github] repos, and for a private repository {hint}")


SOURCE = Source(
    name="github",
    settings=GithubConfig,
    collector=GitHub,
    tables=(
        RawTable(
            "raw_github_events",
            "ts TIMESTAMPTZ, delivery_id VARCHAR, event VARCHAR, action VARCHAR, repo VARCHAR, sender VARCHAR, "
            "stars BIGINT, forks BIGINT, watchers BIGINT, item_id BIGINT, payload JSON",
            key=("delivery_id",),
        ),
        RawTable(
            "raw_github_snapshots",
            "ts TIMESTAMPTZ, repo VARCHAR, stars BIGINT, forks BIGINT, watchers BIGINT, open_issues BIGINT",
            key=("repo", "ts"),
        ),
        RawTable("raw_github_stargazers", "ts TIMESTAMPTZ, repo VARCHAR, login VARCHAR", key=("repo", "login", "ts")),
        RawTable("raw_github_pulls", "ts TIMESTAMPTZ, repo VARCHAR, number BIGINT", key=("repo", "number")),
        RawTable("raw_github_releases", "ts TIMESTAMPTZ, repo VARCHAR, release_id BIGINT, tag VARCHAR",
                 key=("repo", "release_id")),
    ),
    metrics=(
        Metric("github.stars", GAUGE, ("repo",), "Stargazers of the repository",
               sql=lambda cfg: github_sql("github.stars")),
        Metric("github.forks", GAUGE, ("repo",), "Forks of the repository",
               sql=lambda cfg: github_sql("github.forks")),
        Metric("github.watchers", GAUGE, ("repo",), "Watchers (subscribers) of the repository",
               sql=lambda cfg: github_sql("github.watchers")),
        Metric("github.pull_requests_opened", COUNTER, ("repo",), "Pull requests opened",
               sql=lambda cfg: github_sql("github.pull_requests_opened")),
        Metric("github.releases", COUNTER, ("repo",), "Releases published",
               sql=lambda cfg: github_sql("github.releases")),
    ),
    recompute=FROM_EARLIEST,     # stars between webhooks are reconstructed from the cumulative stargazer history
    inbox=Inbox(deliveries_batch, keep_days=30),      # kept a month to dedupe GitHub's redeliveries
    progress_unit="repos",
    demo=Demo("github", secrets={"GITHUB_WEBHOOK_SECRET": "demo-webhook-secret"}),
)
