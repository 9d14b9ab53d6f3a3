"""FastAPI's validation errors (a list of dicts, answered as 422 by default) as the API's one error shape: a
400 with one sentence that names the parameter and what was expected."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXPECTED = {   # pydantic's error type -> what the parameter must be
    "date_from_datetime_parsing": "a date as YYYY-MM-DD", "date_parsing": "a date as YYYY-MM-DD",
    "date_type": "a date as YYYY-MM-DD", "date_from_datetime_inexact": "a date as YYYY-MM-DD",
    "datetime_parsing": "a date and time as YYYY-MM-DDTHH:MM", "datetime_from_date_parsing": "a date and time as YYYY-MM-DDTHH:MM",
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "text",
}


def _where(loc: Sequence[Any]) -> str:
    place, *rest = list(loc) or ["request"]
    name = ".".join(str(part) for part in rest if not isinstance(part, int)) or None
    if place == "body":
        return f"{name} in the body" if name else "the body"
    if place in ("query", "path", "header", "cookie"):
        kind = {"query": "query parameter", "path": "path segment", "header": "header", "cookie": "cookie"}[place]
        return f"the {kind} {name}" if name else f"the {kind}"
    return str(place)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validation_sentence(errors: Sequence[dict[str, Any]]) -> str:
    """One sentence for the first error (the rest usually follow from it, and one fix at a time is clearer)."""
    if not errors:
        return "the request is not valid"
    error = errors[0]
    kind, loc, ctx = error.get("type", ""), error.get("loc", ()), error.get("ctx") or {}
    where = _where(loc)
    if kind == "json_invalid":
        return f"the body must be JSON ({ctx.get('error', 'it does not parse')})"
    if kind == "missing":
        if where == "the body":
            return "the body is required: a JSON object"
        return f"{where} is required"
    if kind in ("model_attributes_type", "dict_type", "model_type") and where == "the body":
        return "the body must be a JSON object"
    bounds = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
              "greater_than": ("above", "gt"), "less_than": ("below", "lt")}
    if kind in bounds and bounds[kind][1] in ctx:
        words, key = bounds[kind]
        return f"{where} must be {words} {ctx[key]}, got {_shown(error.get('input'))}"
    if kind == "string_too_short":
        return f"{where} must not be empty"
    if kind == "string_too_long" and "max_length" in ctx:
        return f"{where} must be at most {ctx['max_length']:,} characters long"
    if kind == "extra_forbidden":
        return f"{where} is not a known field"
    if kind == "literal_error" and "expected" in ctx:
        return f"{where} must be one of {ctx['expected']}, got {_shown(error.get('input'))}"
    if kind in EXPECTED:
        return f"{where} must be {EXPECTED[kind]}, got {_shown(error.get('input'))}"
    message = str(error.get("msg", "is not valid")).rstrip(".")
    message = message[0].lower() + message[1:] if message else "is not valid"
    return f"{where}: {message}" + (f", got {_shown(error['input'])}" if "input" in error and kind != "model_attributes_type" else "")
