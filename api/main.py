"""The REST API: request -> warehouse query -> JSON. No SQL here; every read is a `warehouse.queries` call.

Run with `uvicorn api.main:app --port 8000`. Reads use a read-only attach of the lake, so any number of
API workers can serve while the scheduler writes.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api import deps, docs, schemas
from api.alerts import router as alerts_router
from api.beacon import hit_endpoint, router as beacon_router
from api.data import router as data_router, where_filters
from api.deps import Services, require_token, services
from api.errors import validation_sentence
from api.params import Compare, Day, Grain
from api.notify import router as notify_router
from warehouse import queries
from warehouse.lake import WarehouseError
from warehouse.queries import QueryError, SeriesRequest

log = logging.getLogger("caskalytics.api")
MAX_WEBHOOK_BYTES = 25 * 1024 * 1024    # GitHub caps payloads at 25 MB


class CaskalyticsApi(FastAPI):
    """The FastAPI app, with the web beacon's hit paths answered first, straight by their ASGI endpoints
    (`api.beacon.hit_endpoint`): a hit needs none of the middleware, routing or dependency injection."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and (endpoint := hit_endpoint(scope)) is not None:
            return await endpoint(scope, receive, send)
        await super().__call__(scope, receive, send)


@asynccontextmanager
async def lifespan(_app) -> AsyncIterator[None]:
    """At shutdown, close the reader (its read-only attach of the lake)."""
    yield
    services().reader.close()


app = CaskalyticsApi(title="Caskalytics", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                     responses={400: schemas.ERRORS[400]},
                     description="Marketing and adoption analytics: metrics, rollups, pipeline health, "
                                 "read-only SQL and exports.")
docs.install(app)                      # /docs and /redoc with their assets served from this machine
app.include_router(beacon_router)      # /js/caskalytics.js, /beacon/dropped, the beacon's start and stop
app.include_router(notify_router)      # /unsubscribe, /subscriptions, /outbox
app.include_router(alerts_router)      # /alerts/rules, /alerts/events
app.include_router(data_router)        # /sql, /sql/tables, /export/...
deps.start()      # the config is read now: a bad one stops the API with one line, before it listens


@app.exception_handler(QueryError)
async def bad_query(_: Request, exc: QueryError):
    return JSONResponse({"error": str(exc)}, status_code=400)


@app.exception_handler(WarehouseError)
async def no_warehouse(_: Request, exc: WarehouseError):
    return JSONResponse({"error": str(exc)}, status_code=503)


@app.exception_handler(RequestValidationError)
async def bad_request(_: Request, exc: RequestValidationError):
    """FastAPI's own checks (a bad date, a missing field, a body that is not JSON) answer like every other
    error: 400 and one sentence naming the parameter, not 422 with a list."""
    return JSONResponse({"error": validation_sentence(exc.errors())}, status_code=400)


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException):
    """404 for unknown paths, 405, and every HTTPException raised by a route: `{"error": ...}` too."""
    message = exc.detail if isinstance(exc.detail, str) else "the request cannot be answered"
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and message == "Not Found":
        message = "no such path; see /docs for the endpoints"
    elif exc.status_code == 405:
        # Starlette's Allow names the methods of the first route on the path; a path served by several
        # routes (GET and POST /subscriptions) answers all of them
        methods = sorted({m for route in app.routes if route.matches(request.scope)[0] != Match.NONE
                          for m in getattr(route, "methods", None) or ()})
        headers["Allow"] = ", ".join(methods)
        message = f"{request.method} is not answered here; this path answers {', '.join(methods)}"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers or None)


@app.get("/health", response_model=schemas.Health)
def health(svc: Services = Depends(services)):
    sources = svc.state.source_status()
    failing = sorted(name for name, info in sources.items() if info["consecutive_failures"])
    return {"status": "ok", "timezone": svc.cfg.warehouse.timezone, "failing_sources": failing,
            "sources": {name: {"last_success_at": info["last_success_at"],
                               "consecutive_failures": info["consecutive_failures"],
                               "next_retry_at": info["next_retry_at"]}
                        for name, info in sources.items()}}


@app.get("/metrics", dependencies=[Depends(require_token)], response_model=schemas.MetricCatalog,
         responses=schemas.ERRORS)
def metric_catalog(svc: Services = Depends(services)):
    return {"metrics": queries.catalog(svc.cfg)}


@app.get("/metrics/{metric}", dependencies=[Depends(require_token)], response_model=schemas.MetricSeries,
         response_model_exclude_unset=True, responses=schemas.ERRORS)
def metric_series(metric: str = Path(examples=["downloads"]), grain: Grain = "day",
                  from_: Day | None = Query(None, alias="from"), to: Day | None = None,
                  compare: Compare | None = None, where: list[str] = Query([]),
                  by: list[str] = Query([]), svc: Services = Depends(services)):
    if metric not in svc.cfg.catalog.metrics:
        raise HTTPException(404, f"unknown metric {metric!r:.80}; see /metrics for the catalog")
    request = SeriesRequest(metric, grain, from_, to, where_filters(where), by or None, compare)
    return queries.series_json(queries.series_frame(svc.reader.cursor(), svc.cfg, request))


def _at(at: str | None) -> datetime | None:
    """`?at=YYYY-MM-DD` (or `YYYY-MM-DDTHH:MM` for hours), local to the reporting time zone."""
    if at is None:
        return None
    try:
        return datetime.fromisoformat(at)
    except ValueError:
        raise QueryError(f"at must be a date as YYYY-MM-DD (or YYYY-MM-DDTHH:MM), got {at!r}") from None


PIPELINE_FIELDS = {"rawleads": "salesforce.raw_leads", "mql": "salesforce.mqls",
                   "inquiries": "salesforce.inquiries", "opp": "salesforce.opportunities"}
WEBTRAFFIC_FIELDS = {"sessions": "web.sessions", "newVisitors": "web.new_visitors",
                     "returningVisitors": "web.returning_visitors", "blogViewers": "web.blog_views"}


@app.get("/pipeline/{period}", dependencies=[Depends(require_token)], response_model=schemas.Pipeline,
         responses=schemas.ERRORS)
def pipeline(period: Grain, at: str | None = None, svc: Services = Depends(services)):
    return queries.period_summary(svc.reader.cursor(), svc.cfg, period, _at(at), PIPELINE_FIELDS)


@app.get("/awareness/webtraffic/{period}", dependencies=[Depends(require_token)], response_model=schemas.WebTraffic,
         responses=schemas.ERRORS)
def webtraffic(period: Grain, at: str | None = None, svc: Services = Depends(services)):
    return queries.period_summary(svc.reader.cursor(), svc.cfg, period, _at(at), WEBTRAFFIC_FIELDS)


@app.get("/awareness/socialmedia/subscribers", dependencies=[Depends(require_token)], response_model=schemas.SocialSubscribers,
         responses=schemas.ERRORS)
def social_subscribers(svc: Services = Depends(services)):
    cur = svc.reader.cursor()
    return {"youtube": {"views": queries.lifetime_total(cur, svc.cfg, "youtube.views"),
                        "subscribers": queries.latest_value(cur, svc.cfg, "youtube.subscribers")},
            "linkedin": queries.latest_value(cur, svc.cfg, "linkedin.followers"),
            "twitter": queries.latest_value(cur, svc.cfg, "twitter.followers")}


@app.get("/awareness/seo", dependencies=[Depends(require_token)], response_model=schemas.ShareOfVoice,
         responses=schemas.ERRORS)
def seo_share_of_voice(svc: Services = Depends(services)):
    return queries.latest_value(svc.reader.cursor(), svc.cfg, "seo.share_of_voice", by="brand")


@app.get("/adoption/downloads", dependencies=[Depends(require_token)], response_model=schemas.Downloads,
         responses=schemas.ERRORS)
def adoption_downloads(from_: Day | None = Query(None, alias="from"), to: Day | None = None,
                       svc: Services = Depends(services)):
    if from_ and to and from_ > to:
        raise QueryError(f"from ({from_}) is after to ({to})")
    return queries.downloads_by_version(svc.reader.cursor(), svc.cfg, from_, to)


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes whether or not Content-Length says so."""
    if int(request.headers.get("content-length") or 0) > limit:
        raise HTTPException(413, f"payload larger than {limit // (1024 * 1024)} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"payload larger than {limit // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


@app.post("/webhooks/github", response_model=schemas.WebhookAccepted, response_model_exclude_unset=True,
          responses={202: {"model": schemas.WebhookAccepted, "description": "A new delivery, stored"},
                                      401: schemas.ERRORS[401], 413: {"model": schemas.Error},
                                      503: {"model": schemas.Error}})
async def github_webhook(request: Request, svc: Services = Depends(services)):
    """Verify, store durably in the inbox, answer. Parsing happens later, in the scheduler's drain."""
    github = svc.cfg.sources.github
    if github is None or not github.enabled:
        raise HTTPException(404, "the github source is switched off in the config: no webhook is accepted")
    secret = svc.cfg.secret(github.webhook_secret_env)
    if secret is None:
        raise HTTPException(503, "webhook secret not configured: set the variable named by "
                                 "[sources.github] webhook_secret_env")
    body = await read_capped(request, MAX_WEBHOOK_BYTES)
    signature = request.headers.get("x-hub-signature-256", "")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise HTTPException(401, "missing or invalid X-Hub-Signature-256")
    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery", "")
    if not event or not delivery:
        raise HTTPException(400, "X-GitHub-Event and X-GitHub-Delivery headers are required")
    if event == "ping":
        return {"ok": True, "pong": True}
    kept = {k: request.headers[k] for k in ("x-github-event", "x-github-delivery", "x-github-hook-id",
                                            "user-agent") if k in request.headers}
    stored = await run_in_threadpool(svc.state.receive, "github", delivery, kept, body)
    return JSONResponse({"ok": True, "duplicate": not stored}, status_code=202 if stored else 200)
