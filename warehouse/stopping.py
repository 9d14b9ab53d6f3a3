"""A process's request to stop, and the run that ends because of it.

The scheduler's SIGTERM and SIGINT handler calls `request_stop()`; long work checks `check()` between its
steps (batches, inbox drain rounds) and waits with `sleep()` (retry back-off), so a stop takes effect within
one step instead of after the whole catch-up. The run log records a run that ends this way as
`interrupted`, not `failed` (`State.run`).
"""
from __future__ import annotations

import time

# A plain flag, not a threading.Event: the signal handler runs on the main thread between two bytecodes,
# possibly inside Event.wait while it holds the Event's own lock, and Event.set would then deadlock.
_requested = False


class Interrupted(BaseException):
    """The process is stopping. A BaseException, like KeyboardInterrupt, so that the `except Exception` of a
    collector, a retry loop or a per-source guard lets it through to the top."""

    def __init__(self, message: str = "stopped: the scheduler is shutting down"):
        super().__init__(message)


def request_stop() -> None:
    """Safe to call from a signal handler."""
    global _requested
    _requested = True


def requested() -> bool:
    return _requested


def check() -> None:
    """`Interrupted` once a stop was requested; call between steps of long work."""
    if _requested:
        raise Interrupted()


def sleep(seconds: float) -> None:
    """`time.sleep` that ends with `Interrupted` within 0.1 s of a stop request."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        check()
        time.sleep(min(0.1, remaining))
    check()
