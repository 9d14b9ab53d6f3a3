"""`twitter`: follower counts of the configured X accounts, through tweepy's API v2 client.

One question per poll (per 100 accounts): `GET /2/users/by?usernames=a,b&user.fields=public_metrics`.
Each poll stores, at the API server's time, `twitter.followers` (the contract metric: the sum over the
accounts found) and one `twitter.account_followers` row per account (dims {"account": username}) in
`raw_twitter`. X keeps no follower history, so the series starts at the first poll; after an outage
there is nothing to fetch for the missed days, and the gauge carries the last count across the gap.

A 200 answer may carry `errors` next to `data` for accounts X cannot find or has suspended: the accounts
found are stored (the total is theirs), each missing one is quarantined with X's reason, and the run goes
on; only when no account at all is found does the run fail, naming `[sources.twitter] accounts`.

tweepy always calls https://api.twitter.com; when `api_url` names another base URL (a simulator, a
proxy), the client's session routes that host there (`RouteToBaseUrl`). Retries (429 honouring
`Retry-After` or `x-rate-limit-reset`, 5xx, connection errors, timeouts) go through `retry.retry`.
"""
from __future__ import annotations

import re
import json
import logging
from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import Any

import requests
import tweepy
from requests.adapters import HTTPAdapter

from pydantic import Field, field_validator
from collectors import http
from collectors.base import Batch, Context, Demo, Rejected, Source, SourceError
from config import SourceConfig
from warehouse.catalog import GAUGE, Metric, observation_table
from warehouse.metrics import observation_sql
from warehouse.retry import Retryable, parse_retry_after, retry

log = logging.getLogger("caskalytics.collectors.twitter")
UTC = timezone.utc
TWITTER_API = "https://api.twitter.com"
USERS_PER_REQUEST = 100
MAX_COUNT = 2**53


class TwitterConfig(SourceConfig):
    """X/Twitter API v2 follower counts of `accounts` (app-only bearer token). X keeps no follower
    history: the series starts at the first poll."""
    accounts: list[str]                  # usernames, without the @
    api_url: str = "https://api.twitter.com"
    bearer_token_env: str = "TWITTER_BEARER_TOKEN"
    schedule: str = "every 1 hour"
    timeout_seconds: float = Field(default=30, gt=0)

    @field_validator("accounts")
    @classmethod
    def usernames(cls, value: list[str]) -> list[str]:
        value = [name.removeprefix("@") for name in value]
        for name in value:
            if not re.fullmatch(r"\w{1,15}", name, re.ASCII):
                raise ValueError(f"X usernames (1 to 15 letters, digits or _), got {name!r}")
        if not value:
            raise ValueError("at least one username")
        return value


class RouteToBaseUrl(HTTPAdapter):
    """A transport adapter that sends requests for https://api.twitter.com to another base URL."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def send(self, request, **kwargs):
        request.url = self.base_url + request.url[len(TWITTER_API):]
        return super().send(request, **kwargs)


def new_client(settings: TwitterConfig, token: str) -> tweepy.Client:
    client = tweepy.Client(bearer_token=token, return_type=requests.Response)
    client.session = http.new_session(timeout=settings.timeout_seconds)
    if settings.api_url.rstrip("/") != TWITTER_API:
        client.session.mount(TWITTER_API + "/", RouteToBaseUrl(settings.api_url))
    return client


def follower_count(user: Any) -> tuple[str, int]:
    """(username, followers_count) of a user object; ValueError naming what is wrong."""
    if not isinstance(user, dict) or not isinstance(user.get("username"), str) or not user["username"]:
        raise ValueError("no username")
    metrics = user.get("public_metrics")
    followers = metrics.get("followers_count") if isinstance(metrics, dict) else None
    if isinstance(followers, bool) or not isinstance(followers, int) or not 0 <= followers <= MAX_COUNT:
        raise ValueError(f"public_metrics.followers_count is not a count: {followers!r:.80}")
    return user["username"], followers


class Twitter:

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        settings: TwitterConfig = ctx.settings
        token = ctx.secret(settings.bearer_token_env)
        if not token:
            raise SourceError(f"X bearer token missing: set the variable named by [sources.twitter] bearer_token_env "
                              f"(${settings.bearer_token_env})")
        client = new_client(settings, token)
        found: dict[str, int] = {}
        rejected: list[Rejected] = []
        polled_at = None
        for start in range(0, len(settings.accounts), USERS_PER_REQUEST):
            names = settings.accounts[start:start + USERS_PER_REQUEST]
            response = self._lookup(client, names, settings)
            server_time = http.http_date(response.headers.get("date")) or datetime.now(UTC)
            polled_at = polled_at or server_time.replace(microsecond=0)
            origin = f"GET /2/users/by usernames={','.join(names)}"
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                rejected.append(Rejected("X users lookup: the answer is not a JSON object", response.text[:100_000],
                                         origin))
                continue
            for user in body.get("data") or []:
                try:
                    name, followers = follower_count(user)
                except ValueError as exc:
                    rejected.append(Rejected(f"X user: {exc}", json.dumps(user)[:100_000], origin))
                    continue
                found[name] = followers
            for error in body.get("errors") or []:
                detail = error.get("detail") or error.get("title") if isinstance(error, dict) else None
                rejected.append(Rejected(f"X account not collected: {detail or 'unreadable error item'}",
                                         json.dumps(error)[:100_000], origin))
        rows = [{"ts": polled_at, "metric": "twitter.account_followers",
                 "dims": json.dumps({"account": name}, separators=(",", ":")), "value": followers,
                 "fetched_at": polled_at} for name, followers in sorted(found.items())]
        if found:
            rows.append({"ts": polled_at, "metric": "twitter.followers", "dims": "{}",
                         "value": sum(found.values()), "fetched_at": polled_at})
        yield Batch(records={"raw_twitter": rows}, rejected=rejected,
                    cursor={"last_poll": polled_at.isoformat()} if found else None,
                    label=f"{len(found)} of {len(settings.accounts)} accounts")
        if not found:
            raise SourceError(f"X found none of the accounts {', '.join(settings.accounts)} at {settings.api_url}: "
                              "check [sources.twitter] accounts (see the quarantine for X's reasons)")

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        """X has no follower history: a past range has nothing to read (the series starts at the first poll)."""
        log.warning("twitter: X keeps no follower history; nothing to backfill for %s..%s", start, end)
        return iter(())

    def _lookup(self, client: tweepy.Client, names: list[str], settings: TwitterConfig) -> requests.Response:
        what = "X GET /2/users/by"
        hint = f"[sources.twitter] bearer_token_env (${settings.bearer_token_env})"

        def attempt() -> requests.Response:
            try:
                return client.get_users(usernames=names, user_fields=["public_metrics"])
            except tweepy.TooManyRequests as exc:
                wait = _rate_limit_wait(exc.response)
                if wait is not None and wait > http.MAX_SERVER_WAIT:
                    until = datetime.fromtimestamp(int(exc.response.headers["x-rate-limit-reset"]), UTC) \
                        if "x-rate-limit-reset" in exc.response.headers else None
                    until_text = f" until {until:%H:%M} UTC" if until else ""
                    raise SourceError(f"{what}: the app's rate limit is used up{until_text}; polls resume after it"
                                      ) from None
                raise Retryable(f"{what}: HTTP 429", retry_after=wait) from exc
            except tweepy.TwitterServerError as exc:
                raise Retryable(f"{what}: HTTP {exc.response.status_code}",
                                retry_after=parse_retry_after(exc.response.headers.get("retry-after"))) from exc
            except (tweepy.Unauthorized, tweepy.Forbidden) as exc:
                raise SourceError(f"{what} was refused (HTTP {exc.response.status_code} "
                                  f"{_problem(exc.response)}): check {hint}") from None
            except tweepy.HTTPException as exc:
                raise SourceError(f"{what}: HTTP {exc.response.status_code} {_problem(exc.response)} (check "
                                  f"[sources.twitter] accounts and api_url)") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise Retryable(f"{what}: {type(exc).__name__}: {exc}") from exc

        try:
            return retry(attempt, attempts=http.ATTEMPTS, what=what)
        except Retryable as exc:
            raise http.Unavailable(f"{exc} (gave up after {http.ATTEMPTS} attempts)") from exc


def _rate_limit_wait(response: requests.Response) -> float | None:
    """Seconds until X lifts the limit: Retry-After, else x-rate-limit-reset against the server's own clock."""
    wait = parse_retry_after(response.headers.get("retry-after"))
    reset = response.headers.get("x-rate-limit-reset", "")
    if wait is None and reset.isdigit():
        now = http.http_date(response.headers.get("date")) or datetime.now(UTC)
        wait = max(0.0, int(reset) - now.timestamp())
    return wait


def _problem(response: requests.Response) -> str:
    """X's one-line reason from a v2 problem body ({"title", "detail"}) or a v1-style {"errors": [...]}."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    if isinstance(body, dict):
        if body.get("detail") or body.get("title"):
            return str(body.get("detail") or body.get("title"))[:200]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", ""))[:200]
    return response.reason or ""


SOURCE = Source(
    name="twitter",
    settings=TwitterConfig,
    collector=Twitter,
    tables=(
        # Follower counts per poll (ts = fetched_at = the API's clock): the contract total and one row per
        # account (metric twitter.account_followers, dims {"account": username}).
        observation_table("twitter"),
    ),
    metrics=(
        Metric("twitter.followers", GAUGE, (),
               "Followers of the configured X accounts, summed; history starts at the first poll",
               sql=lambda cfg: observation_sql("raw_twitter", "twitter.followers", GAUGE)),
    ),
    demo=Demo("twitter", secrets={"DEMO_TWITTER_BEARER_TOKEN": "demo-bearer-token"}),
)
