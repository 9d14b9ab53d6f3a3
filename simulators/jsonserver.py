"""The plumbing every API simulator shares: a threaded HTTP(S) server with a clock a test can set, faults a
test can queue (an error status with Retry-After, a dropped connection, a stall), a live outage window for
the demo, a log of the requests it answered, and the command line that runs one as a process.

A simulator subclasses `JsonApiSimulator`, implements `route(request) -> Reply` and overrides the hooks
below where its API differs (error envelope, headers, fault answers). Its `main()` builds its arguments on
`argument_parser` and ends with `serve_until_stopped`.
"""
from __future__ import annotations

import argparse
import email.utils
import json
import logging
import signal
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger("caskalytics.simulators")
UTC = timezone.utc
FAULTS_PATH = "/_sim/faults"        # the test hook a simulator in another process is driven by
TLS_TIMEOUT = 60                    # seconds: a client that stops talking mid-handshake or mid-request is dropped


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
    body: object = None             # bytes are sent as they are; anything else as JSON
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fault:
    status: int                     # 0 = close the connection without an answer; -1 = stall `seconds`, then close
    retry_after: float | None = None
    body: object = None             # None = the simulator's own error body for that status
    only: str = ""                  # "" = the next request; else the next one whose path contains this
    seconds: float = 0.0


class JsonApiSimulator:
    """Serve `route` on a thread; use as a context manager in tests."""
    server_name: str | None = "simulator"   # the Server header; None: Python's own
    content_type = "application/json"
    json_indent: int | None = None
    date_follows_clock = True               # False: the Date header is the real time even when the clock is set
    methods: tuple[str, ...] = ("GET",)     # what `route` serves; another method's request is a 404
    fault_hook_fields: tuple[str, ...] = ()     # set: POST /_sim/faults queues faults with these `inject_faults`
                                                # arguments besides count and status

    def __init__(self, *, now: datetime | None = None, host: str = "127.0.0.1", port: int = 0,
                 outage_until: datetime | None = None, tls_ca=None):
        self.host, self.port = host, port
        self._frozen_now = now.astimezone(UTC) if now else None
        self.outage_until = outage_until     # until then, `in_outage` requests answer 503 (the demo's outage)
        self.tls_ca = tls_ca                 # a trustme.CA: serve HTTPS with a certificate it issues
        self.faults: deque[Fault] = deque()
        self.requests: list[str] = []        # every request target, for tests that check what was asked
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    def start(self):
        accepts_post = "POST" in self.methods or bool(self.fault_hook_fields)
        self._server = ThreadingHTTPServer((self.host, self.port), _PostHandler if accepts_post else _Handler)
        if self.tls_ca is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls_ca.issue_cert(self.host, "localhost").configure_cert(context)
            # The TLS handshake happens in the handler thread, so a stuck client cannot block accept().
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                      do_handshake_on_connect=False)
        self._server.daemon_threads = True
        self._server.block_on_close = False     # idle keep-alive connections must not hold up stop()
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
        return f"{'https' if self.tls_ca is not None else 'http'}://{self.host}:{self.port}"

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
                      body: object = None, only: str = "", seconds: float = 0.0) -> None:
        """Answer the next `count` requests (whose path contains `only`) with `status` (0 drops the
        connection, -1 stalls `seconds` first), Retry-After and `body` (default: the API's error body; a 200
        with a body a test gives makes a malformed or empty answer)."""
        self.queue_faults(count, Fault(status, retry_after, body, only, seconds))

    def queue_faults(self, count: int, fault: Fault) -> None:
        with self._lock:
            self.faults.extend(fault for _ in range(count))

    def take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.only in request.path:
                    self.faults.remove(fault)
                    return fault
            return None

    # -- answering a request --------------------------------------------------------------------------------
    def answer(self, request: Request) -> Reply | None:
        """The reply to `request`, or None to close the connection without one."""
        if self.fault_hook_fields and request.method == "POST" and request.path == FAULTS_PATH:
            return self._queue_faults_from(request)
        if request.method not in self.methods:
            return Reply(404, self.error_body(404, "Not Found"))
        self.requests.append(request.target)
        fault = self.take_fault(request)
        if fault is not None:
            return self.fault_reply(fault, request)
        if self.outage_until is not None and datetime.now(UTC) < self.outage_until and self.in_outage(request):
            # No Retry-After: like most outages, it says nothing of when it ends (the run fails; a later one
            # catches up).
            return Reply(503, self.error_body(503, "Service Unavailable"))
        try:
            return self.route(request)
        except Exception as exc:       # a simulator bug answers like a server bug, and is logged
            log.exception("simulator failed on %s", request.target)
            return Reply(500, self.error_body(500, f"Internal Server Error ({type(exc).__name__})"))

    def _queue_faults_from(self, request: Request) -> Reply:
        """POST /_sim/faults {"count": 2, "status": 429, ...}: `inject_faults` over HTTP."""
        try:
            spec = json.loads(request.body or b"{}")
            self.inject_faults(int(spec.get("count", 1)), int(spec.get("status", 500)),
                               **{name: spec[name] for name in self.fault_hook_fields if name in spec})
        except (ValueError, TypeError, AttributeError) as exc:
            return self.fault_hook_refused(f"expected {{{', '.join(('count', 'status') + self.fault_hook_fields)}}}"
                                           f": {exc}")
        return Reply(200, {"queued": len(self.faults)})

    def fault_reply(self, fault: Fault, request: Request) -> Reply | None:
        if fault.status == -1:            # a server that hangs, then gives up without an answer
            time.sleep(fault.seconds)
        if fault.status <= 0:
            return None
        headers = {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}
        return Reply(fault.status, fault.body if fault.body is not None else self.fault_body(fault.status), headers)

    # -- what a simulator implements ------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> object:
        """The API's error envelope for `status`."""
        return {"message": message}

    def fault_body(self, status: int) -> object:
        """What the API answers when an injected fault of `status` strikes."""
        return self.error_body(status, _reason(status))

    def fault_hook_refused(self, message: str) -> Reply:
        """The answer to a POST /_sim/faults this simulator cannot read."""
        return Reply(400, self.error_body(400, message))

    def in_outage(self, request: Request) -> bool:
        """Whether the demo's outage window covers this request (default: every request)."""
        return True

    def headers_for(self, reply: Reply, length: int) -> dict[str, str]:
        """Every header of `reply` but Server and Date, in the order they are sent."""
        return {"Content-Type": self.content_type, "Content-Length": str(length), **self.common_headers(),
                **reply.headers}

    def common_headers(self) -> dict[str, str]:
        """Headers the API sends with every answer."""
        return {}


def http_date(moment: datetime) -> str:
    return email.utils.format_datetime(moment.astimezone(UTC), usegmt=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"      # keep-alive, like the real APIs
    disable_nagle_algorithm = True     # headers and body go out in separate writes: don't wait for an ACK

    @property
    def sim(self) -> JsonApiSimulator:
        return self.server.simulator

    def setup(self) -> None:
        self.handshake_failed = False
        if self.sim.tls_ca is not None:
            self.request.settimeout(TLS_TIMEOUT)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):   # e.g. a client that does not trust the test CA
                self.handshake_failed = True
        super().setup()

    def handle(self) -> None:
        if not self.handshake_failed:
            super().handle()

    def version_string(self) -> str:
        return self.sim.server_name or super().version_string()

    def date_time_string(self, timestamp=None) -> str:
        if not self.sim.date_follows_clock:
            return super().date_time_string(timestamp)
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
        reply = self.sim.answer(request)
        if reply is None:              # the server closes the socket after this handler: no answer at all
            self.close_connection = True
            return
        body = reply.body
        data = body if isinstance(body, bytes) else json.dumps(body, indent=self.sim.json_indent).encode()
        self.send_response(reply.status)
        for name, value in self.sim.headers_for(reply, len(data)).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _PostHandler(_Handler):
    """For simulators that take POSTs; the others answer them as http.server does (501)."""

    def do_POST(self) -> None:
        self._handle("POST")


def _reason(status: int) -> str:
    return {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout", 401: "Unauthorized", 403: "Forbidden"}.get(
        status, "Error")


# -- the command line ---------------------------------------------------------------------------------------
def argument_parser(module: str, doc: str, port: int, since: date | None = None,
                    since_help: str = "first day of history") -> argparse.ArgumentParser:
    """The arguments every simulator takes: where to listen, and the seed and first day of its history."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--since", type=date.fromisoformat, default=since, help=since_help)
    return parser


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve_until_stopped(sim: JsonApiSimulator, announce: str,
                        workers: tuple[Callable[[threading.Event], None], ...] = ()) -> int:
    """Serve `sim` until SIGTERM or Ctrl-C, each of `workers(stop)` on a thread beside it; the exit status.
    `announce` is logged once listening, with `{url}` replaced by the server's URL."""
    configure_logging()
    try:
        sim.start()
    except OSError as exc:
        print(f"error: cannot listen on {sim.host}:{sim.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for worker in workers:
        threading.Thread(target=worker, args=(stop,), daemon=True).start()
    log.info(announce.replace("{url}", sim.url))
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    sim.stop()
    return 0
