"""What rules, failure alerts and digests share: who gets a topic, queueing one message per recipient under an
idempotency key, number formatting, and a plain HTML shell for the mail bodies."""
from __future__ import annotations

import html
import logging
import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from alerts.channels import AddressError, channel_of, mask, normalise
from alerts.outbox import enqueue, notify_state
from alerts.unsubscribe import subscribers
from warehouse.state import State

log = logging.getLogger("caskalytics.alerts")


def recipients(state: State, configured: Iterable[str], topic: str) -> list[tuple[str, str]]:
    """(channel, address) pairs for `topic`: the addresses the config or rule names (phone numbers by SMS,
    the rest by e-mail) and the topic's subscribers, each once. Opt-outs are the outbox's to enforce."""
    found: dict[tuple[str, str], None] = {}
    for address in configured:
        channel = channel_of(address)
        try:
            found[(channel, normalise(channel, address))] = None
        except AddressError as exc:          # the config validated them; a stored rule may be older
            log.warning("skipping recipient %s: %s", mask(address), exc)
    for sub in subscribers(notify_state(state), topic):
        found[(sub.channel, sub.address)] = None
    return list(found)


def queue(state: State, key: str, to: Iterable[tuple[str, str]], topic: str, subject: str, text: str,
          html_body: str | None, *, sms_text: str | None = None, link: str | None = None,
          attachments: Iterable = (), now: datetime | None = None) -> Counter:
    """Queue one message per recipient under `<key>:<channel>:<address>`: queueing again is a no-op, so a
    crash after this and before the caller records its state only repeats no-ops. Counts the outcomes."""
    counts: Counter = Counter()
    attachments = list(attachments)
    for channel, address in to:
        is_sms = channel == "sms"
        outcome = enqueue(state, f"{key}:{channel}:{address}", channel, address, subject,
                          (sms_text or subject) if is_sms else text, None if is_sms else html_body,
                          () if is_sms else attachments, topic=topic, link=link, now=now)
        counts[outcome] += 1
    return counts


def number(value: float | int | None, unit: str = "") -> str:
    """A value as people read it: 1,234 for counts, 25.5% for percent metrics, – for no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "percent":
        return f"{value:,.2f}".rstrip("0").rstrip(".") + "%"
    return f"{round(value):,}"


def percent(change: float | None) -> str:
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return "–"
    return f"{change:+.1f}%"


def page(title: str, body: str) -> str:
    """A minimal HTML mail body (inline styles only: mail clients drop style sheets)."""
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body style=\"font-family:Arial,sans-serif;color:#222;max-width:40em\">"
            f"<h2 style=\"margin-bottom:0.3em\">{html.escape(title)}</h2>{body}</body></html>")


def esc(value: object) -> str:
    return html.escape(str(value))
