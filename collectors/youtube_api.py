"""The two YouTube APIs through google-api-python-client, pointed at the configured base URLs.

`YouTubeApi(settings, secret)` builds both clients from the discovery documents shipped in the package
(`static_discovery=True`: no discovery request), with OAuth 2.0 user credentials that google-auth refreshes
at `[sources.youtube] token_url` from the refresh token, client id and client secret that the `*_env`
keys name. Nothing but those three URLs is contacted.

Every call goes through the one retry helper (`retry.retry`): 429, 5xx, Google's rate-limit 403s, token
endpoint hiccups, connection errors and timeouts are retried, honouring `Retry-After`. What only the
operator can fix becomes a one-line `SourceError` naming the config key: a refused refresh token or client,
a 401/403 (permissions, another user's channel), the daily quota (it resets at midnight Pacific time), a
query the API rejects.

The server's `Date` of each answer is kept (`server_time`): YouTube's own clock says which days have ended.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from typing import Any, TYPE_CHECKING

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from collectors.base import SourceError
from collectors.http import ATTEMPTS, MAX_SERVER_WAIT, Unavailable, http_date
from warehouse.retry import Retryable, parse_retry_after, retry

if TYPE_CHECKING:     # the settings model lives in the source's own module, which imports this one
    from collectors.youtube import YoutubeConfig

UTC = timezone.utc
REPORT_METRICS = ("views", "subscribersGained", "subscribersLost")
# 403 reasons that mean "slow down" rather than "not allowed".
THROTTLED = {"rateLimitExceeded", "userRateLimitExceeded", "concurrentLimitExceeded"}
QUOTA = {"quotaExceeded", "dailyLimitExceeded"}


class _DatedHttp(google_auth_httplib2.AuthorizedHttp):
    """Authorized HTTP that remembers the server's Date header of the last answer."""
    server_time: datetime | None = None

    def request(self, uri, method="GET", body=None, headers=None, **kwargs):
        response, content = super().request(uri, method, body=body, headers=headers, **kwargs)
        self.server_time = http_date(response.get("date")) or self.server_time
        return response, content


class YouTubeApi:
    def __init__(self, settings: YoutubeConfig, secret):
        self.settings = settings
        names = {"client_id_env": settings.client_id_env, "client_secret_env": settings.client_secret_env,
                 "refresh_token_env": settings.refresh_token_env}
        values = {key: secret(env) for key, env in names.items()}
        missing = [f"{key} (${names[key]})" for key, value in values.items() if not value]
        if missing:
            raise SourceError(f"YouTube credentials missing: set the variables named by [sources.youtube] "
                              f"{', '.join(missing)}")
        self.credential_hint = ("[sources.youtube] refresh_token_env, client_id_env and client_secret_env "
                                f"(${settings.refresh_token_env}, ${settings.client_id_env}, "
                                f"${settings.client_secret_env})")
        credentials = Credentials(None, refresh_token=values["refresh_token_env"], client_id=values["client_id_env"],
                                  client_secret=values["client_secret_env"], token_uri=settings.token_url)
        self.http = _DatedHttp(credentials, http=httplib2.Http(timeout=settings.timeout_seconds))
        self.analytics = build("youtubeAnalytics", "v2", http=self.http, static_discovery=True,
                               cache_discovery=False, client_options={"api_endpoint": settings.analytics_url})
        self.data = build("youtube", "v3", http=self.http, static_discovery=True, cache_discovery=False,
                          client_options={"api_endpoint": settings.data_api_url})

    @property
    def ids(self) -> str:
        return f"channel=={self.settings.channel_id}"

    def channel(self) -> dict | None:
        """The channel's `statistics`, or None when the API lists no such channel."""
        selector = {"mine": True} if self.settings.channel_id == "MINE" else {"id": self.settings.channel_id}
        body = self._execute(self.data.channels().list(part="statistics", **selector),
                             "YouTube Data API channels.list")
        items = body.get("items") if isinstance(body, dict) else None
        return items[0] if isinstance(items, list) and items else None

    def daily_report(self, start: date, end: date) -> Any:
        """The Analytics result table of views, subscribers gained and lost per day of [start, end]."""
        request = self.analytics.reports().query(ids=self.ids, startDate=start.isoformat(), endDate=end.isoformat(),
                                                 metrics=",".join(REPORT_METRICS), dimensions="day", sort="day")
        return self._execute(request, f"YouTube Analytics reports.query {start}..{end}")

    @property
    def server_time(self) -> datetime:
        return self.http.server_time or datetime.now(UTC)

    def _execute(self, request, what: str) -> Any:
        def attempt() -> Any:
            try:
                return request.execute()
            except HttpError as exc:
                raise self._classify(exc, what) from exc
            except RefreshError as exc:
                if exc.retryable:
                    raise Retryable(f"{what}: token refresh failed: {exc.args[0]}") from exc
                raise SourceError(f"{what}: the token endpoint {self.settings.token_url} refused the credentials "
                                  f"({exc.args[0]}): check {self.credential_hint}") from None
            except (TransportError, OSError, httplib2.HttpLib2Error) as exc:     # refused, reset, timed out
                raise Retryable(f"{what}: {type(exc).__name__}: {exc}") from exc

        try:
            return retry(attempt, attempts=ATTEMPTS, what=what)
        except Retryable as exc:
            raise Unavailable(f"{exc} (gave up after {ATTEMPTS} attempts)") from exc

    def _classify(self, exc: HttpError, what: str) -> Exception:
        status = exc.resp.status
        reason, message = _google_error(exc)
        wait = parse_retry_after(exc.resp.get("retry-after"))
        if status == 429 or status >= 500 or (status == 403 and reason in THROTTLED):
            if wait is not None and wait > MAX_SERVER_WAIT:
                return SourceError(f"{what}: rate limited for {wait:.0f} s ({reason or status}); try again later")
            return Retryable(f"{what}: HTTP {status} {reason}".rstrip(), retry_after=wait)
        if reason in QUOTA:
            return SourceError(f"{what}: the API quota is used up ({reason}); it resets at midnight Pacific time. "
                               f"Quotas belong to the Google Cloud project of [sources.youtube] client_id_env "
                               f"(${self.settings.client_id_env})")
        if status in (401, 403):
            return SourceError(f"{what} was refused (HTTP {status} {reason}: {message}): check "
                               f"{self.credential_hint} and [sources.youtube] channel_id "
                               f"({self.settings.channel_id!r}: the grant must own or manage it)")
        return SourceError(f"{what}: HTTP {status} {reason}: {message} (check [sources.youtube] analytics_url, "
                           f"data_api_url and channel_id)")


def _google_error(exc: HttpError) -> tuple[str, str]:
    """(reason, message) from Google's error envelope {"error": {"message", "errors": [{"reason"}]}}."""
    try:
        error = json.loads(exc.content.decode("utf-8", "replace")).get("error", {})
        details = error.get("errors") or [{}]
        return str(details[0].get("reason", ""))[:80], str(error.get("message", ""))[:200]
    except (ValueError, AttributeError, TypeError):
        return "", exc.resp.reason or ""
