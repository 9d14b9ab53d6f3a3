"""Defensive reading of the JSON that APIs and webhooks send: the value at a path of keys, checked for its
type, or `Malformed` naming the field, so the record goes to quarantine with a reason a person can act on.

    field(body, "repository", "full_name")          any value; missing -> Malformed("repository.full_name is missing")
    text(item, "tag_name")                          a non-empty string
    count(item, "stargazers_count")                 a non-negative JSON integer that fits a BIGINT
    count(item, "subscribers_count", required=False)    None when absent
"""
from __future__ import annotations

from typing import Any

from collectors.base import Malformed

MAX_BIGINT = 2**63 - 1


def field(obj: Any, *path: str, required: bool = True) -> Any:
    """obj[path[0]][path[1]]...; `Malformed` naming the first missing step (None for it when not `required`)."""
    value = obj
    for depth, key in enumerate(path):
        if not isinstance(value, dict):
            raise Malformed(f"{'.'.join(path[:depth])} is not an object" if depth else "not a JSON object")
        value = value.get(key)
        if value is None:
            if required:
                raise Malformed(f"{'.'.join(path[:depth + 1])} is missing")
            return None
    return value


def text(obj: Any, *path: str, required: bool = True) -> str | None:
    """A non-empty string field."""
    value = field(obj, *path, required=required)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise Malformed(f"{'.'.join(path)} is not a non-empty string: {value!r:.80}")
    return value


def count(obj: Any, *path: str, required: bool = True) -> int | None:
    """A non-negative integer field (JSON numbers only: a count sent as text is a format change)."""
    value = field(obj, *path, required=required)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BIGINT):
        raise Malformed(f"{'.'.join(path)} is not a count: {value!r:.80}")
    return value
