"""The web beacon's HTTP edge: `POST /api/event` (the JavaScript snippet), `GET /b.gif` (the pixel for
`<noscript>` and e-mail opens), and `GET /js/caskalytics.js` (the snippet itself).

A hit passes these steps in order; each passes it on or drops it with a typed reason (docs/beacon.md):

    parse      the request becomes an `Incoming` value: sizes capped, url required, names checked    -> invalid (400)
    enabled    [sources.beacon] is configured and enabled                                          -> disabled (404)
    site       its site is one of [sources.beacon] sites                                           -> unknown_site (403)
    bots       its User-Agent is empty or matches a line of api/beacon_bots.txt                    -> bot (2xx, not stored)
    visitor    the snippet's random visitor id, or else a keyed hash of IP, User-Agent and site
               with today's salt (the IP address itself is never stored)
    store      a `Hit` with an id made here goes to the SQLite inbox; the answer waits for its commit -> store_failed (503)

Dropped hits are counted per UTC day and reason in state.sqlite (`GET /beacon/dropped`). Stored hits reach
the lake when the scheduler drains the inbox (collectors/beacon.py).

Durability with group commit: `GroupCommit` collects the hits of all concurrent requests and writes them in
one SQLite transaction; each request awaits the commit that holds its hit, so a 2xx always means "in
state.sqlite" (WAL, synchronous=NORMAL: survives a crash of the process; an OS crash may lose the last
moments, as for every SQLite write here).
"""
from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.deps import require_token, services
from api.params import Day
from api.schemas import ERRORS, Dropped
from collectors.beacon import BeaconConfig, Hit, encode
from config import Config
from warehouse.beacon_state import BeaconState, Busy
from warehouse.state import State

log = logging.getLogger("caskalytics.api.beacon")
BOTS_FILE = Path(__file__).resolve().parent / "beacon_bots.txt"
SNIPPET_FILE = Path(__file__).resolve().parent / "static" / "caskalytics.js"
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,"
       b"\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")      # 1x1 transparent, 43 bytes
MAX_BODY = 8 * 1024
MAX_URL = 2000
MAX_UTM = 200
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
EVENT_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
NO_STORE = "no-store, no-cache, must-revalidate, private"
CORS = {"Access-Control-Allow-Origin": "*"}


# -- dropping, with a typed reason ---------------------------------------------------------------------------
class Drop(Exception):
    """The hit is not counted: `reason` is what the counters record, `status` what the client gets."""

    def __init__(self, reason: str, status: int, message: str):
        super().__init__(message)
        self.reason, self.status = reason, status


def invalid(message: str) -> Drop:
    return Drop("invalid", 400, message)


# -- step: parse ---------------------------------------------------------------------------------------------
@dataclass
class Incoming:
    """A hit as the request states it, validated: what the steps after `parse` work on."""
    site: str
    name: str
    path: str
    referrer: str | None
    visitor: str | None
    utm: dict[str, str]


def _text(values: dict[str, Any], key: str, limit: int) -> str | None:
    value = values.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string")
    if len(value) > limit:
        raise invalid(f"{key} is longer than {limit} characters")
    return value


def site_name(host: str) -> str:
    """How sites are compared: lower case, without a leading "www."."""
    return host.strip().lower().removeprefix("www.")


def parse(values: dict[str, Any]) -> Incoming:
    """The documented fields (docs/beacon.md): url (required), site, name, referrer, visitor, utm_*."""
    url = _text(values, "url", MAX_URL)
    if url is None:
        raise invalid("url is required")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise invalid("url is not a URL") from None
    if parts.scheme in ("http", "https") and host:
        pass
    elif not parts.scheme and not parts.netloc and url.startswith("/"):
        host = None
    else:
        raise invalid("url must be an http(s) URL or a path starting with /")
    site = _text(values, "site", 253) or host
    if site is None:
        raise invalid("site is required when url is a path")
    name = _text(values, "name", 64) or "pageview"
    if not EVENT_NAME.fullmatch(name):
        raise invalid("name may hold only letters, digits and _ . : - (at most 64)")
    visitor = _text(values, "visitor", 64)
    if visitor is not None and not VISITOR_ID.fullmatch(visitor):
        raise invalid("visitor must be 8 to 64 letters, digits, _ or -")
    referrer = _text(values, "referrer", MAX_URL)
    if referrer is not None:
        referrer = referrer.split("#", 1)[0].split("?", 1)[0] or None
    utm = {}
    if parts.query and "utm_" in parts.query:
        for key, value in parse_qsl(parts.query):
            if key in UTM_FIELDS and value and key not in utm:
                utm[key] = value[:MAX_UTM]
    for key in UTM_FIELDS:           # given as fields of their own, they win over the url's
        if (value := values.get(key)) and isinstance(value, str):
            utm[key] = value[:MAX_UTM]
    return Incoming(site_name(site), name, parts.path or "/", referrer, visitor, utm)


# -- step: bots ---------------------------------------------------------------------------------------------
def bot_patterns(path: Path = BOTS_FILE) -> tuple[tuple[str, ...], re.Pattern]:
    """The list's plain words (matched as lower-case substrings: one big regex alternation is ~20x slower in
    Python) and one regex of the lines that use regex syntax."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    special = re.compile(r"[\\^$.|?*+()\[\]{}]")
    literals = tuple(p.lower() for p in patterns if not special.search(p))
    regexes = [p for p in patterns if special.search(p)] or ["(?!)"]
    return literals, re.compile("|".join(f"(?:{p})" for p in regexes), re.IGNORECASE)


BOTS = bot_patterns()


@functools.lru_cache(maxsize=8192)        # a site sees a few thousand distinct user agents a day
def is_bot(user_agent: str) -> bool:
    if not user_agent.strip():
        return True
    lowered = user_agent.lower()
    return any(literal in lowered for literal in BOTS[0]) or BOTS[1].search(user_agent) is not None


# -- step: store (group commit) ------------------------------------------------------------------------------
class GroupCommit:
    """One SQLite transaction for the hits of all the requests that arrive together.

    `write` queues a hit and waits for the commit that holds it. The first hit queued schedules a flush for
    the next turn of the event loop, so every request read in this turn joins the same transaction: one hit
    per commit when traffic is light, dozens under load, and no timer to wait for. The flush commits on the
    event loop itself: one INSERT for the whole group (`BeaconState.store_hits`), on a connection that never
    waits for a lock and never checkpoints. In WAL mode with synchronous=NORMAL that is a few writes to the
    OS, well under a millisecond; committing here measured ~10% more hits/s than handing each group to a
    writer thread (the GIL changes hands twice per group). When another connection holds the write lock,
    the group goes to a writer thread that retries every millisecond, and the event loop carries on; later
    groups queue behind it, so hits are committed in order. Housekeeping about once a second, in another
    thread: a passive WAL checkpoint (it syncs to disk) and the dropped-hit counters."""

    def __init__(self, beacon_state: BeaconState):
        self.beacon_state = beacon_state
        self._queue: list[tuple[bytes, asyncio.Future]] = []
        self._flush_scheduled: asyncio.Handle | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="beacon-writer")   # for groups that must wait
        self._waiting: asyncio.Future | None = None          # a group in the writer thread
        self._dropped: Counter = Counter()
        self._housekeeping: asyncio.TimerHandle | None = None
        self._chores: asyncio.Future | None = None
        self._closed = False
        self.commits = self.rows = self.waited = 0           # for the logs and the benchmark

    async def write(self, body: bytes) -> None:
        if self._closed:
            raise RuntimeError("the beacon is shutting down")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((body, future))
        if self._flush_scheduled is None and self._waiting is None:
            self._flush_scheduled = loop.call_soon(self._flush)
            if self._housekeeping is None:
                self._housekeeping = loop.call_later(1.0, self._chore_time)
        await future

    def count_dropped(self, reason: str) -> None:
        self._dropped[(utc_stamp(time.time())[1], reason)] += 1
        if self._housekeeping is None and not self._closed:
            self._housekeeping = asyncio.get_running_loop().call_later(1.0, self._chore_time)

    def _flush(self) -> None:
        self._flush_scheduled = None
        if self._waiting is not None or not self._queue:
            return                         # a group waits for the lock: this one follows it
        batch, self._queue = self._queue, []
        bodies = [body for body, _ in batch]
        try:
            self.beacon_state.store_hits(bodies)
        except Busy:
            self._commit_waiting(batch, bodies)
            return
        except Exception as exc:
            log.exception("beacon: storing %d hits failed", len(batch))
            _settle([future for _, future in batch], exc)
            return
        self.commits, self.rows = self.commits + 1, self.rows + len(batch)
        _settle([future for _, future in batch], None)

    def _commit_waiting(self, batch: list[tuple[bytes, asyncio.Future]], bodies: list[bytes]) -> None:
        self._waiting = asyncio.get_running_loop().run_in_executor(
            self._writer, self.beacon_state.store_hits_waiting, bodies)

        def committed(result: asyncio.Future) -> None:
            self._waiting = None
            error = result.exception()
            if error is None:
                self.commits, self.rows, self.waited = self.commits + 1, self.rows + len(batch), self.waited + 1
            else:
                log.error("beacon: storing %d hits failed: %s", len(batch), error)
            _settle([future for _, future in batch], error)
            self._flush()                  # what queued up meanwhile
        self._waiting.add_done_callback(committed)

    def _chore_time(self) -> None:
        """A second after traffic: checkpoint and flush the counters in a thread (the next hit re-arms it)."""
        self._housekeeping = None
        if self._chores is not None and not self._chores.done():
            self._housekeeping = asyncio.get_running_loop().call_later(1.0, self._chore_time)
            return
        self._chores = asyncio.get_running_loop().run_in_executor(None, self._chores_now, self._take_dropped())

    def _take_dropped(self) -> Counter:
        counts, self._dropped = self._dropped, Counter()
        return counts

    def _chores_now(self, dropped: Counter) -> None:
        try:
            self.beacon_state.add_dropped(dropped)
        except Exception:
            log.exception("beacon: cannot record dropped-hit counts %s", dict(dropped))
        try:
            self.beacon_state.checkpoint()
        except Exception:
            log.exception("beacon: WAL checkpoint failed")

    async def flush_dropped(self) -> None:
        """Record the counters now, after a flush already under way, so that a reader sees every drop."""
        if self._chores is not None:
            await asyncio.wait([self._chores])
        await run_in_threadpool(self.beacon_state.add_dropped, self._take_dropped())

    async def close(self) -> None:
        """Commit what is queued, record the counters, stop."""
        self._closed = True
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        while self._waiting is not None or self._queue:
            if self._waiting is None:
                self._flush()
            if self._waiting is not None:
                await asyncio.wait([self._waiting], timeout=30)
        if self._chores is not None:
            await asyncio.wait([self._chores], timeout=30)
        self._chores_now(self._take_dropped())
        self._writer.shutdown(wait=False)
        log.info("beacon: stored %d hits in %d commits (%d waited for the lock)", self.rows, self.commits, self.waited)


def _settle(futures: list[asyncio.Future], error: BaseException | None) -> None:
    for future in futures:
        if not future.done():            # a request whose client went away was cancelled
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


# -- time stamps -----------------------------------------------------------------------------------------
_stamp_second: tuple[int, str] = (-1, "")


def utc_stamp(now: float) -> tuple[str, str]:
    """(`now` as ISO 8601 UTC with microseconds, which datetime.fromisoformat reads; its UTC day). The date
    and time of day are formatted once a second: a datetime per hit costs several times more."""
    global _stamp_second
    second = int(now)
    if _stamp_second[0] != second:
        _stamp_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    text = _stamp_second[1]
    return f"{text}.{int((now - second) * 1_000_000):06d}+00:00", text[:10]


# -- the edge: the steps after parse -----------------------------------------------------------------------
class Edge:
    """The beacon of one API process: its settings, state and group commit."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        beacon = cfg.sources.beacon
        self.settings: BeaconConfig | None = beacon if beacon is not None and beacon.enabled else None
        self.sites = frozenset(self.settings.sites) if self.settings else frozenset()
        self.state = State(cfg)
        self.beacon_state = BeaconState(self.state)
        self.commits = GroupCommit(self.beacon_state)
        self._salt: tuple[str, bytes] | None = None
        self._snippet: bytes | None = None

    async def salt(self, day: str) -> bytes:
        salt = self._salt
        if salt is None or salt[0] != day:
            salt = self._salt = (day, await run_in_threadpool(self.beacon_state.salt, day))
        return salt[1]

    async def accept(self, incoming: Incoming, user_agent: str, client_ip: str, via: str) -> str:
        """Run the steps after `parse`; the stored hit's id, or `Drop`."""
        if self.settings is None:
            raise Drop("disabled", 404, "the web beacon is not enabled: add [sources.beacon] to the config")
        if incoming.site not in self.sites:
            raise Drop("unknown_site", 403, f"site {incoming.site!r:.80} is not one of [sources.beacon] sites")
        if is_bot(user_agent):
            raise Drop("bot", 202, "not counted: the User-Agent is a bot's")
        now = time.time()
        ts, day = utc_stamp(now)
        visitor = incoming.visitor
        if visitor is None:
            key = await self.salt(day)
            visitor = "h:" + hashlib.blake2b(f"{client_ip}\n{user_agent}\n{incoming.site}".encode(), key=key,
                                             digest_size=16).hexdigest()
        hit_id = f"{int(now * 1_000_000):014x}{os.urandom(5).hex()}"     # time-ordered, unique
        hit = Hit(hit_id=hit_id, ts=ts, site=incoming.site, name=incoming.name, path=incoming.path,
                  visitor_id=visitor, via=via, referrer=incoming.referrer, **incoming.utm)
        try:
            body = encode(hit)
        except UnicodeEncodeError:            # a JSON body can smuggle in a lone surrogate ("\ud800")
            raise invalid("the hit's text is not valid Unicode") from None
        try:
            await self.commits.write(body)
        except Exception as exc:
            raise Drop("store_failed", 503, f"the hit could not be stored ({type(exc).__name__}); try again") from None
        return hit_id

    def snippet(self) -> bytes:
        if self._snippet is None:
            settings = self.settings or BeaconConfig(sites=["example.com"])
            self._snippet = (SNIPPET_FILE.read_text()
                             .replace("__VISITOR_DAYS__", str(settings.visitor_days))
                             .replace("__VISITOR_STORAGE__", settings.visitor_storage)).encode()
        return self._snippet

    async def close(self) -> None:
        await self.commits.close()


_edge: Edge | None = None
_edge_lock = threading.Lock()


def edge() -> Edge:
    global _edge
    if _edge is not None:
        return _edge
    with _edge_lock:
        if _edge is None:
            _edge = Edge(services().cfg)
        return _edge


async def close_edge() -> None:
    if _edge is not None:
        await _edge.close()


# -- routes ------------------------------------------------------------------------------------------------
def _query(query_string: bytes) -> dict[str, str]:
    """The first value of each query parameter, read as `parse_qsl(..., keep_blank_values=True)` reads them
    (a test holds the two together); unquoting only the parts that need it halves a pixel hit's parsing."""
    values: dict[str, str] = {}
    for part in query_string.decode("latin-1").split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in part or "+" in part:
            key, value = unquote_plus(key), unquote_plus(value)
        values.setdefault(key, value)
    return values


async def _read_body(receive) -> bytes:
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise invalid(f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _answer(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


GIF_HEADERS = [(b"content-type", b"image/gif"), (b"cache-control", NO_STORE.encode())]
JSON_HEADERS = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*")]
PREFLIGHT_HEADERS = [(b"access-control-allow-origin", b"*"), (b"access-control-allow-methods", b"POST, GET"),
                     (b"access-control-allow-headers", b"Content-Type"), (b"access-control-max-age", b"86400")]


class HitEndpoint:
    """`/b.gif` and `/api/event` as plain ASGI endpoints: the hot path skips FastAPI's middleware, routing,
    dependency injection and the Request/Response objects (its answers are fixed)."""

    def __init__(self, via: str, methods: set[str]):
        self.via = via            # "pixel" or "event"
        self.methods = methods
        self.not_allowed = [(b"allow", ", ".join(sorted(methods)).encode()), (b"content-type", b"application/json")]

    async def __call__(self, scope, receive, send) -> None:
        if scope["method"] not in self.methods:
            return await _answer(send, 405, b'{"detail":"Method Not Allowed"}', self.not_allowed)
        beacon = edge()
        if scope["method"] == "OPTIONS":          # CORS preflight (the snippet's text/plain needs none)
            return await _answer(send, 204, b"", PREFLIGHT_HEADERS)
        if scope["method"] == "HEAD":             # link checkers: no page was viewed, nothing counted
            return await _answer(send, 200, GIF, GIF_HEADERS)
        user_agent = referer = ""
        too_large = False
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"referer":
                referer = value.decode("latin-1")
            elif name == b"content-length":
                too_large = not value.isdigit() or int(value) > MAX_BODY
        client_ip = scope["client"][0] if scope.get("client") else ""
        try:
            if too_large:            # refused before reading the body
                raise invalid(f"the body is larger than {MAX_BODY} bytes")
            values = await self.values(scope, receive, referer)
            hit_id = await beacon.accept(parse(values), user_agent, client_ip, self.via)
        except Drop as drop:
            beacon.commits.count_dropped(drop.reason)
            if self.via == "pixel":
                status = 200 if drop.status < 400 else drop.status
                return await _answer(send, status, GIF, [*GIF_HEADERS, (b"x-caskalytics-dropped", drop.reason.encode())])
            answer = {"stored": False, "dropped": drop.reason}
            if drop.status >= 400:
                answer["error"] = str(drop)
            return await _answer(send, drop.status, json.dumps(answer).encode(), JSON_HEADERS)
        if self.via == "pixel":
            return await _answer(send, 200, GIF, [*GIF_HEADERS, (b"x-caskalytics-hit", hit_id.encode())])
        return await _answer(send, 202, b'{"stored":true,"hit":"%s"}' % hit_id.encode(), JSON_HEADERS)

    async def values(self, scope, receive, referer: str) -> dict[str, Any]:
        """The hit's fields: /api/event POST = a JSON object body; otherwise the query parameters (and for
        the pixel without `url`, the Referer header names the page)."""
        if self.via == "event" and scope["method"] == "POST":
            try:
                values = json.loads(await _read_body(receive))
            except (UnicodeDecodeError, ValueError):
                raise invalid("the body must be a JSON object") from None
            if not isinstance(values, dict):
                raise invalid("the body must be a JSON object")
            return values
        values = _query(scope["query_string"])
        if self.via == "pixel" and not values.get("url") and referer:
            values["url"] = referer
        return values


def freeze_startup_objects() -> None:
    """Move everything imported at start-up out of the garbage collector's sight: the API imports DuckDB,
    pandas and pydantic, and each full collection walked those ~100,000 objects, pausing every request for
    ~80 ms every few seconds under beacon load (it set the p99)."""
    gc.collect()
    gc.freeze()


# The hit paths are answered before FastAPI's middleware and routing (`api.main.CaskalyticsApi`), which cost
# a hit more CPU than all of the beacon's own steps and its durable write (bench/RESULTS.md, "Web beacon").
HIT_ENDPOINTS = {"/b.gif": HitEndpoint("pixel", {"GET", "HEAD", "POST"}),
                 "/api/event": HitEndpoint("event", {"GET", "HEAD", "POST", "OPTIONS"})}


def hit_endpoint(scope) -> HitEndpoint | None:
    """The hit endpoint of an HTTP request, if its path is one: as the router read paths, without the app's
    root path (`uvicorn --root-path` puts it in front) and with a trailing slash (which it redirected)."""
    path = scope["path"]
    if (endpoint := HIT_ENDPOINTS.get(path)) is not None:
        return endpoint
    root_path = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        path = path[len(root_path):]
    return HIT_ENDPOINTS.get(path.removesuffix("/"))


@asynccontextmanager
async def lifespan(_app) -> AsyncIterator[None]:
    """The beacon's start and stop; FastAPI runs it inside the app's own lifespan when it includes the router."""
    freeze_startup_objects()
    yield
    await close_edge()


router = APIRouter(lifespan=lifespan)


@router.get("/js/caskalytics.js", tags=["web beacon"], response_class=Response,
            responses={200: {"content": {"application/javascript": {"schema": {"type": "string"}}},
                             "description": "The beacon snippet"}})
async def snippet() -> Response:
    """The snippet to embed (docs/beacon.md)."""
    return Response(edge().snippet(), media_type="application/javascript",
                    headers={"Cache-Control": "public, max-age=3600", **CORS})


@router.get("/beacon/dropped", tags=["web beacon"], response_model=Dropped, responses=ERRORS)
async def dropped(request: Request, since: Day | None = Query(None, description="First UTC day, YYYY-MM-DD")) -> dict:
    """Hits not counted, per UTC day and reason (docs/beacon.md)."""
    require_token(request)
    beacon = edge()
    await beacon.commits.flush_dropped()
    day = since.isoformat() if since else None
    return {"dropped": await run_in_threadpool(beacon.beacon_state.dropped, day)}
