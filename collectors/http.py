"""Shared HTTP plumbing for REST sources (GitHub today; Salesforce, LinkedIn, ... later).

One `requests.Session` per run with a default timeout, and GETs that go through the one retry helper
(`retry.retry`) for the failures worth another attempt: 429, 5xx, connection errors and timeouts. A server's
`Retry-After` (or an `X-RateLimit-Reset` once `X-RateLimit-Remaining` is 0) decides the wait. 401 and 403
become a one-line `SourceError` naming the config key of the credential, since only the operator can fix
them.
"""
from __future__ import annotations

import email.utils
import time
from datetime import datetime, timezone
from typing import Any

import requests

from collectors.base import SourceError
from warehouse.retry import Retryable, parse_retry_after, retry

DEFAULT_TIMEOUT = 30.0     # seconds for connect and for each read; a hung server must not hang the scheduler
ATTEMPTS = 5
MAX_SERVER_WAIT = 60.0     # a longer wait (an hourly quota reset) fails the run with the reason instead


def http_date(value: str | None) -> datetime | None:
    """An HTTP `Date` header as an aware UTC time; None when absent, unreadable or without a zone."""
    try:
        moment = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return moment.astimezone(timezone.utc) if moment and moment.tzinfo else None


class Unavailable(Exception):
    """The server kept failing (5xx, throttling, network) through every attempt."""


class BadResponse(Exception):
    """A 2xx answer whose body is not the JSON that was asked for."""


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        # Per request, because requests lets $REQUESTS_CA_BUNDLE override a session's own `verify`.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, **kwargs)


def new_session(headers: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
                ca_bundle: str = "") -> requests.Session:
    """A session whose every request has `timeout` unless the call gives its own, and trusts the CAs in the
    PEM file `ca_bundle` (a private or test CA) instead of the system's when one is given."""
    session = _TimeoutSession(timeout)
    session.headers.update(headers or {})
    if ca_bundle:
        session.verify = ca_bundle
    return session


def _server_wait(response: requests.Response) -> float | None:
    """Seconds the server asked us to wait, from Retry-After or an exhausted X-RateLimit quota."""
    wait = parse_retry_after(response.headers.get("Retry-After"))
    if wait is None and response.headers.get("X-RateLimit-Remaining") == "0":
        reset = response.headers.get("X-RateLimit-Reset", "")
        if reset.isdigit():
            wait = max(0.0, int(reset) - time.time())
    return wait


def get(session: requests.Session, url: str, params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None, *, what: str, credential_hint: str,
        attempts: int = ATTEMPTS) -> requests.Response:
    """GET `url` with retries; the response of the first 2xx. `what` names the call in messages and logs;
    `credential_hint` tells the operator which config key holds the credential (e.g.
    "[sources.github] token_env ($GITHUB_TOKEN)"). Other 4xx answers raise `requests.HTTPError`."""

    def attempt() -> requests.Response:
        try:
            response = session.get(url, params=params, headers=headers)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Retryable(f"{what}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        wait = _server_wait(response)
        # GitHub answers an exhausted rate limit with 403 (not only 429) plus the rate-limit headers.
        throttled = status == 429 or (status == 403 and wait is not None)
        if throttled and wait is not None and wait > MAX_SERVER_WAIT:
            until = datetime.fromtimestamp(time.time() + wait, timezone.utc).strftime("%H:%M UTC")
            raise SourceError(f"{what}: rate limit used up until {until}; a credential raises the limit: "
                              f"check {credential_hint}")
        if throttled or status >= 500:
            raise Retryable(f"{what}: HTTP {status}", retry_after=wait)
        if status in (401, 403):
            raise SourceError(f"{what} was refused (HTTP {status} {_message(response)}): check {credential_hint}")
        response.raise_for_status()
        return response

    try:
        return retry(attempt, attempts=attempts, what=what)
    except Retryable as exc:
        raise Unavailable(f"{exc} (gave up after {attempts} attempts)") from exc


def get_json(session: requests.Session, url: str, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, *, what: str, credential_hint: str) -> Any:
    """`get` and decode the JSON body; `BadResponse` when a 2xx body is not JSON."""
    return decode_json(get(session, url, params, headers, what=what, credential_hint=credential_hint), what)


def decode_json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise BadResponse(f"{what}: the answer is not JSON: {response.text[:200]!r}") from None


def _message(response: requests.Response) -> str:
    """The API's own one-line reason when it gives one (GitHub and most REST APIs: {"message": ...})."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or ""
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:200] if message else (response.reason or "")
