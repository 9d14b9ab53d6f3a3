"""The one retry helper: capped attempts, exponential backoff with jitter, and the server's Retry-After.

Used for every source API call and for DuckLake commits that lose a race for the catalog.
"""
from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from datetime import timezone
from typing import TypeVar

from warehouse import stopping

log = logging.getLogger("caskalytics.retry")
T = TypeVar("T")


class Retryable(Exception):
    """Raise (or wrap) to ask for another attempt; `retry_after` seconds overrides the backoff."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def retry(action: Callable[[], T], *, attempts: int = 5, base_delay: float = 0.5, max_delay: float = 60.0,
          retry_on: tuple[type[BaseException], ...] = (Retryable,), what: str = "call",
          sleep: Callable[[float], None] = stopping.sleep) -> T:
    """Run `action`, retrying on `retry_on` up to `attempts` times; the last failure is raised. The default
    `sleep` ends the wait early with `stopping.Interrupted` when the process is asked to stop."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except retry_on as exc:
            if attempt == attempts:
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            server_wait = getattr(exc, "retry_after", None)
            if server_wait is not None:
                delay = min(max(server_wait, 0.0), max_delay)
            log.warning("%s failed (attempt %d/%d): %s; retrying in %.1fs", what, attempt, attempts, exc, delay)
            sleep(delay)
    raise AssertionError("unreachable")
