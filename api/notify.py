"""Subscriptions, one-click unsubscribe and the outbox over HTTP (include with `app.include_router(router)`).

    GET    /unsubscribe?token=...   public: what the link unsubscribes, as a small page with a button
                                    (browsers) or JSON; it changes nothing (mail scanners follow GET links)
    POST   /unsubscribe?token=...   public: unsubscribes; RFC 8058 one-click (body
                                    "List-Unsubscribe=One-Click") answers 200
    GET    /subscriptions           ?topic= &address= &all=true (include opt-outs)
    POST   /subscriptions           {"address", "channel": "email"|"sms", "topic"} -> 201
    DELETE /subscriptions           the same body (or query parameters) -> 200, an opt-out
    GET    /outbox                  recent messages with status, recipients masked; ?status= &limit=

All but the unsubscribe link need the API's bearer token when `[api] token_env` names a set variable.
Errors answer 400/401/404 JSON {"error": "<one sentence>"}.
"""
from __future__ import annotations

import html
import json
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from alerts.channels import mask
from api import schemas
from api.deps import check_token, services
from alerts.unsubscribe import (SubscriptionError, as_dict, list_subscriptions, subscribe,
                                token_subscription, unsubscribe, unsubscribe_with_token)
from config import Config
from warehouse.notify_state import NotifyState

router = APIRouter(tags=["notifications"])
OUTBOX_STATUSES = ("queued", "sending", "sent", "failed", "dead")
MAX_BODY = 4096
TOPIC_NAMES = {"digest:daily": "the daily digest", "digest:weekly": "the weekly digest",
               "failures": "data source failure alerts"}


@dataclass
class NotifyServices:
    cfg: Config
    notify: NotifyState


_services: NotifyServices | None = None
_lock = threading.Lock()


def notify_services() -> NotifyServices:
    """The config and notification tables of this process (tests override this dependency)."""
    global _services
    with _lock:
        if _services is None:
            api = services()
            _services = NotifyServices(api.cfg, NotifyState(api.state))
        return _services


def answers(status: int, model, html: bool = False) -> dict:
    """The OpenAPI entries of a route that builds its responses itself: its JSON answer (or an HTML page, for
    browsers), and the error shape."""
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
    if html:
        content["text/html"] = {"schema": {"type": "string"}}
    return {status: {"model": model, "content": content}, **schemas.ERRORS}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def authorized(request: Request, svc: NotifyServices) -> JSONResponse | None:
    """None when the request may read and manage subscriptions; else the 401 answer (the API's token rule)."""
    try:
        check_token(request, svc.cfg)
    except HTTPException as exc:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    return None


def describe(topic: str) -> str:
    return TOPIC_NAMES.get(topic) or (f"alerts of the rule \"{topic[5:]}\"" if topic.startswith("rule:") else topic)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


# -- one-click unsubscribe ----------------------------------------------------------------------------------
@router.get("/unsubscribe", response_model=None, responses=answers(200, schemas.UnsubscribeLink, html=True))
async def unsubscribe_page(request: Request, token: str = "",
                           svc: NotifyServices = Depends(notify_services)) -> Response:
    try:
        sub = await run_in_threadpool(token_subscription, svc.cfg, svc.notify, token)
    except SubscriptionError as exc:
        return _refused(request, exc)
    if wants_html(request):
        return HTMLResponse(_page("Unsubscribe?", f"Stop sending {html.escape(describe(sub.topic))} to "
                                  f"{html.escape(mask(sub.address))}?",
                                  f'<form method="post"><input type="hidden" name="token" value="{html.escape(token)}">'
                                  '<button type="submit">Unsubscribe</button></form>'))
    return {"address": mask(sub.address), "channel": sub.channel, "topic": sub.topic,
            "unsubscribe": "POST this URL to unsubscribe"}


@router.post("/unsubscribe", response_model=None, responses=answers(200, schemas.Unsubscribed, html=True))
async def unsubscribe_now(request: Request, token: str = "",
                          svc: NotifyServices = Depends(notify_services)) -> Response:
    """RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click` to the link; our page's button POSTs the
    token as a form field. Either way the token decides; the body is not needed."""
    if not token:
        form = parse_qs((await request.body())[:MAX_BODY].decode(errors="replace"))
        token = form.get("token", [""])[-1]
    try:
        sub, changed = await run_in_threadpool(unsubscribe_with_token, svc.cfg, svc.notify, token)
    except SubscriptionError as exc:
        return _refused(request, exc)
    if wants_html(request):
        return HTMLResponse(_page("Unsubscribed", f"{html.escape(mask(sub.address))} will no longer get "
                                  f"{html.escape(describe(sub.topic))}."))
    return {"unsubscribed": True, "already": not changed, "address": mask(sub.address), "channel": sub.channel,
            "topic": sub.topic}


def _refused(request: Request, exc: SubscriptionError) -> Response:
    if wants_html(request):
        return HTMLResponse(_page("Link not valid", html.escape(str(exc))), status_code=400)
    return error(400, str(exc))


def _page(title: str, text: str, extra: str = "") -> str:
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">"
            f"<title>{title}</title></head><body style=\"font-family:sans-serif;max-width:32em;margin:4em auto\">"
            f"<h1>{title}</h1><p>{text}</p>{extra}</body></html>")


# -- subscriptions ------------------------------------------------------------------------------------------
@router.get("/subscriptions", response_model=None, responses=answers(200, schemas.Subscriptions))
async def subscriptions(request: Request, topic: str | None = None, address: str | None = None,
                        include_unsubscribed: str = Query("false", alias="all"),
                        svc: NotifyServices = Depends(notify_services)) -> Response | dict:
    if (denied := authorized(request, svc)) is not None:
        return denied
    if include_unsubscribed not in ("true", "false"):
        return error(400, f"all must be true or false, got {include_unsubscribed!r:.20}")
    try:
        rows = await run_in_threadpool(list_subscriptions, svc.notify, topic, address, include_unsubscribed == "true")
    except SubscriptionError as exc:
        return error(400, str(exc))
    return {"subscriptions": rows}


@router.post("/subscriptions", response_model=None, status_code=201,
             responses=answers(201, schemas.SubscriptionAdded))
async def add_subscription(request: Request, svc: NotifyServices = Depends(notify_services)) -> Response:
    if (denied := authorized(request, svc)) is not None:
        return denied
    try:
        fields = await _subscription_fields(request)
        sub = await run_in_threadpool(subscribe, svc.notify, fields["address"], fields["channel"], fields["topic"])
    except SubscriptionError as exc:
        return error(400, str(exc))
    return JSONResponse({"subscription": as_dict(sub)}, status_code=201)


@router.delete("/subscriptions", response_model=None, responses=answers(200, schemas.SubscriptionRemoved))
async def remove_subscription(request: Request, svc: NotifyServices = Depends(notify_services)) -> Response:
    if (denied := authorized(request, svc)) is not None:
        return denied
    try:
        fields = await _subscription_fields(request)
        sub, changed = await run_in_threadpool(unsubscribe, svc.notify, fields["address"], fields["channel"],
                                               fields["topic"])
    except SubscriptionError as exc:
        return error(400, str(exc))
    return JSONResponse({"unsubscribed": as_dict(sub), "already": not changed})


async def _subscription_fields(request: Request) -> dict[str, Any]:
    """{"address", "channel", "topic"} from a JSON body, or from the query when there is no body."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise SubscriptionError(f"the body must be a small JSON object (at most {MAX_BODY} bytes)")
    if body.strip():
        try:
            fields = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise SubscriptionError("the body must be JSON: {\"address\", \"channel\", \"topic\"}") from None
    else:
        fields = dict(request.query_params)
    if not isinstance(fields, dict):
        raise SubscriptionError("the body must be a JSON object: {\"address\", \"channel\", \"topic\"}")
    unknown = sorted(set(fields) - {"address", "channel", "topic"})
    missing = [name for name in ("address", "channel", "topic") if name not in fields]
    if unknown or missing:
        raise SubscriptionError(f"expected the fields address, channel and topic"
                                f"{'; unknown: ' + ', '.join(map(str, unknown)) if unknown else ''}"
                                f"{'; missing: ' + ', '.join(missing) if missing else ''}")
    return fields


# -- outbox -------------------------------------------------------------------------------------------------
@router.get("/outbox", response_model=None, responses=answers(200, schemas.Outbox))
async def outbox(request: Request, status: str | None = Query(None, json_schema_extra={"enum": list(OUTBOX_STATUSES)}),
                 limit: str = Query("50", description="1 to 500", json_schema_extra={"pattern": "^[0-9]+$"}),
                 svc: NotifyServices = Depends(notify_services)) -> Response | dict:
    if (denied := authorized(request, svc)) is not None:
        return denied
    if status is not None and status not in OUTBOX_STATUSES:
        return error(400, f"status must be one of {', '.join(OUTBOX_STATUSES)}, got {status!r:.40}")
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        return error(400, f"limit must be a whole number from 1 to 500, got {limit!r:.20}")
    rows = await run_in_threadpool(svc.notify.recent_messages, int(limit), status)
    for row in rows:
        row["recipient"] = mask(row["recipient"])
        del row["idempotency_key"]        # may name the recipient
    return {"messages": rows}

