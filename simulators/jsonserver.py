"""The plumbing the linkedin, meltwater and seo simulators share: a threaded JSON HTTP server with a clock a
test can set, faults a test can queue (an error status with Retry-After, or a dropped connection), a live
outage window for the demo, and a log of the requests it answered.

A simulator subclasses `JsonApiSimulator` and implements `route(request) -> Reply`.
"""
from __future__ import annotations

import email.utils
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("caskalytics.simulators")
UTC = timezone.utc


@dataclass
class Request:
    method: str
    path: str                       # percent-decoded path
    raw_query: str                  # as sent (Rest.li structures must be parsed from the raw text)
    query: dict[str, str]           # decoded, last value wins
    headers: dict[str, str]         # lower-case names
    body: bytes = b""

    @property
    def target(self) -> str:
        return self.path + ("?" + self.raw_query if self.raw_query else "")


@dataclass
class Reply:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    status: int                     # 0 = close the connection without an answer
    retry_after: float | None = None
    body: object = None             # None = the simulator's own error body for that status
    only: str = ""                  # "" = the next request; else the next one whose path contains this


class JsonApiSimulator:
    """Serve `route` on a thread; use as a context manager in tests."""
    server_name = "simulator"

    def __init__(self, *, now: datetime | None = None, host: str = "127.0.0.1", port: int = 0,
                 outage_until: datetime | None = None):
        self.host, self.port = host, port
        self._frozen_now = now.astimezone(UTC) if now else None
        self.outage_until = outage_until     # until then, `in_outage` requests answer 503 (the demo's outage)
        self.faults: deque[Fault] = deque()
        self.requests: list[str] = []        # every request target, for tests that check what was asked
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self):
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.simulator = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name=f"{self.server_name}-simulator", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- the clock ------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self._frozen_now or datetime.now(UTC).replace(microsecond=0)

    def set_time(self, moment: datetime) -> None:
        """Freeze the clock at `moment`: the API answers as it would then."""
        self._frozen_now = moment.astimezone(UTC)

    def advance(self, **delta) -> None:
        self.set_time(self.now() + timedelta(**delta))

    # -- test hooks -----------------------------------------------------------------------------------------
    def inject_faults(self, count: int, status: int = 500, retry_after: float | None = None,
                      body: object = None, only: str = "") -> None:
        """Answer the next `count` requests (whose path contains `only`) with `status` (0 drops the
        connection), Retry-After and `body` (default: the API's error body; a 200 with a body a test gives
        makes a malformed or empty answer)."""
        with self._lock:
            self.faults.extend(Fault(status, retry_after, body, only) for _ in range(count))

    def take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.only in request.path:
                    self.faults.remove(fault)
                    return fault
            return None

    # -- what a simulator implements ------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> object:
        """The API's error envelope for `status`."""
        return {"message": message}

    def in_outage(self, request: Request) -> bool:
        """Whether the demo's outage window covers this request (default: every request)."""
        return True


def http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    @property
    def sim(self) -> JsonApiSimulator:
        return self.server.simulator

    def version_string(self) -> str:
        return self.sim.server_name

    def date_time_string(self, timestamp=None) -> str:
        return http_date(self.sim.now())     # the API's clock is the simulator's clock

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(method, unquote(parts.path), parts.query,
                          {k: v[-1] for k, v in parse_qs(parts.query).items()},
                          {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length) if length else b"")
        self.sim.requests.append(request.target)
        fault = self.sim.take_fault(request)
        if fault is not None:
            if fault.status == 0:
                self.close_connection = True
                return
            headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
            body = fault.body if fault.body is not None else self.sim.error_body(fault.status, _reason(fault.status))
            return self._send(Reply(fault.status, body, headers))
        outage = self.sim.outage_until
        if outage is not None and datetime.now(UTC) < outage and self.sim.in_outage(request):
            # No Retry-After: like most outages, it says nothing of when it ends (the run fails; a later one
            # catches up).
            return self._send(Reply(503, self.sim.error_body(503, "Service Unavailable")))
        try:
            reply = self.sim.route(request)
        except Exception as exc:       # a simulator bug answers like a server bug, and is logged
            log.exception("simulator failed on %s", request.target)
            reply = Reply(500, self.sim.error_body(500, f"Internal Server Error ({type(exc).__name__})"))
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data)), **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _reason(status: int) -> str:
    return {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout", 401: "Unauthorized", 403: "Forbidden"}.get(
        status, "Error")
