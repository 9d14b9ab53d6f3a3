"""Alert rules over HTTP (include with `app.include_router(router)`); the API's bearer token applies.

    GET    /alerts/rules           every rule (config and stored) with its state: firing, last bucket judged
    POST   /alerts/rules           a rule as JSON, the keys of `[[alerts.rules]]` -> 201; stored in state.sqlite
    DELETE /alerts/rules/{name}    a stored rule (config rules are changed in config.toml) -> 200, or 404
    GET    /alerts/events          recent firings, recoveries and held notices; ?rule= &limit=

Errors answer 400/401/404 JSON {"error": "<one sentence>"}.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from alerts.rules import RuleError, check_rule, stored_rule
from api import schemas
from api.notify import NotifyServices, answers, authorized, error, notify_services
from warehouse.alert_store import AlertStore

router = APIRouter(tags=["alerts"])
MAX_BODY = 8192


def _rules(svc: NotifyServices) -> list[dict]:
    store = AlertStore(svc.notify.state)
    states = {row["rule"]: row for row in store.alert_states()}
    answer = []
    for origin, rules in (("config", [r.model_dump(by_alias=True) for r in svc.cfg.alerts.rules]),
                          ("api", [row["definition"] for row in store.rules()])):
        for rule in rules:
            state = states.get(rule["name"], {})
            answer.append({**rule, "origin": origin, "firing": bool(state.get("firing")),
                           "last_bucket": state.get("last_bucket"), "last_fired_at": state.get("last_fired_at"),
                           "last_recovered_at": state.get("last_recovered_at")})
    return answer


@router.get("/alerts/rules", response_model=None, responses=answers(200, schemas.AlertRules))
async def list_rules(request: Request, svc: NotifyServices = Depends(notify_services)) -> Response | dict:
    if (denied := authorized(request, svc)) is not None:
        return denied
    return {"rules": await run_in_threadpool(_rules, svc)}


def add_rule(svc: NotifyServices, body: bytes) -> dict:
    """Validate and store a rule; RuleError says what is wrong with it."""
    try:
        definition = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RuleError("the body must be a JSON object with the keys of [[alerts.rules]]") from None
    if not isinstance(definition, dict):
        raise RuleError("the body must be a JSON object with the keys of [[alerts.rules]]")
    rule = check_rule(svc.cfg, stored_rule(definition))
    if any(r.name == rule.name for r in svc.cfg.alerts.rules):
        raise RuleError(f"a rule named {rule.name!r} is in the config file; pick another name")
    stored = rule.model_dump(by_alias=True, exclude_defaults=True) | {"name": rule.name, "metric": rule.metric}
    if not AlertStore(svc.notify.state).add_rule(rule.name, stored, datetime.now(timezone.utc)):
        raise RuleError(f"a rule named {rule.name!r} exists already; delete it first to replace it")
    return stored


@router.post("/alerts/rules", response_model=None, status_code=201, responses=answers(201, schemas.AlertRuleStored))
async def create_rule(request: Request, svc: NotifyServices = Depends(notify_services)) -> Response:
    if (denied := authorized(request, svc)) is not None:
        return denied
    body = await request.body()
    if len(body) > MAX_BODY:
        return error(400, f"the body must be a small JSON object (at most {MAX_BODY} bytes)")
    try:
        stored = await run_in_threadpool(add_rule, svc, body)
    except RuleError as exc:
        return error(400, str(exc))
    return JSONResponse({"rule": stored}, status_code=201)


@router.delete("/alerts/rules/{name}", response_model=None, responses=answers(200, schemas.AlertRuleDeleted))
async def delete_rule(name: str, request: Request, svc: NotifyServices = Depends(notify_services)) -> Response:
    if (denied := authorized(request, svc)) is not None:
        return denied
    if any(r.name == name for r in svc.cfg.alerts.rules):
        return error(400, f"the rule {name!r} comes from the config file; remove it there")
    if not await run_in_threadpool(AlertStore(svc.notify.state).delete_rule, name):
        return error(404, f"no stored rule named {name!r}")
    return JSONResponse({"deleted": name})


@router.get("/alerts/events", response_model=None, responses=answers(200, schemas.AlertEvents))
async def events(request: Request, rule: str | None = None, limit: str = "50",
                 svc: NotifyServices = Depends(notify_services)) -> Response | dict:
    if (denied := authorized(request, svc)) is not None:
        return denied
    if not limit.isdigit() or not 1 <= int(limit) <= 500:
        return error(400, f"limit must be a whole number from 1 to 500, got {limit!r:.20}")
    return {"events": await run_in_threadpool(svc.notify.alert_events, rule, int(limit))}
