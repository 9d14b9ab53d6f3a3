"""The notification outbox: `enqueue` a message once, `deliver_due` sends what is due, with retries.

Everything that notifies (alert rules, digests, failure alerts) calls `enqueue(...)` with an idempotency
key that names the occasion (e.g. "rule:downloads drop:2026-05-04:growth@example.com"): enqueueing the same
key again is a no-op, so re-running an evaluation never queues a second message. A recipient who opted out
of the message's topic gets nothing (checked at enqueue and again just before sending).

`deliver_due` (the scheduler calls it every minute or so) claims one due row at a time, sends it, and
records the outcome. A failed send is retried with exponential backoff (`retry_base_seconds` doubling up
to `retry_max_seconds`), its error and next attempt time kept on the row, until `max_attempts`; then, or at
once when the provider refused the message for good (a 5xx for the recipient, SendGrid 400), it is dead.

Exactly once, and where it stops
--------------------------------
No channel gives us an atomic "send and remember". SMTP has no idempotency at all: a connection lost after
the final "." of DATA and before the server's 250 leaves the message accepted or not, and we cannot ask
which. SendGrid's v3 API has no idempotency key either, and SNS Publish to a phone number has none. So
between "the provider took the message" and "the row says sent" there is always a window, and a process
killed inside it leaves a row whose fate we do not know. What we do:

1. Before sending, the row is claimed in its own committed transaction: status `sending`, `attempts` + 1,
   and a lease (`lease_seconds`, default 300 s, far above the send timeouts). While the lease runs, no
   other `deliver_due`, in this process or another, touches the row. After a send, only the holder of that
   claim (same `attempts`) may record the outcome.
2. A row found in `sending` after a restart is NOT resent at once: its sender may still be running or may
   have sent it. Only when the lease has run out is it "in doubt", and then `[notify] in_doubt` decides:
   - `resend` (default, at-least-once): send again with the SAME Message-ID, a pure function of the
     idempotency key (and the sender's domain). Mail systems that dedupe on Message-ID (Gmail does in one
     mailbox; mail archives and threading do) show one message; others may show two copies of one mail. SendGrid also gets
     `custom_args.idempotency_key`, so its event webhook shows both sends under one key. An SMS cannot be
     deduplicated: a resend is a second text (short, so the cost is small next to a lost alert).
     The row's `last_error` says it was resent in doubt.
   - `give_up` (at-most-once): mark the row dead with "in doubt, not resent". Nothing is ever sent twice,
     but a message whose sender died just before the provider got it is lost.
   We choose at-least-once by default because a missed alert costs more than a duplicate one.
3. A failure we do see (connection refused, 4xx, timeout) is retried with the same Message-ID too; a
   timeout after DATA is the same window as a crash, handled the same way.

So: never twice because of a retry we could avoid, never twice in a mailbox that dedupes by Message-ID,
and a duplicate is possible only when a sender dies (or a server times out) between handing over a message
and recording it, and only under `in_doubt = "resend"`.
"""
from __future__ import annotations

import json
import logging
import mimetypes
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from alerts import channels
from alerts.channels import DeliveryError, Outgoing, mask
from alerts.unsubscribe import Subscription, check_topic, unsubscribe_url
from config import Config
from warehouse.notify_state import Attachment, Claim, NewMessage, NotifyState
from warehouse.state import State

log = logging.getLogger("caskalytics.alerts.outbox")
UTC = timezone.utc
MAX_ERROR = 500
_notify_states: weakref.WeakKeyDictionary[State, NotifyState] = weakref.WeakKeyDictionary()

AttachmentLike = Attachment | tuple[str, bytes] | tuple[str, bytes, str] | Path | str


def notify_state(state: State | NotifyState) -> NotifyState:
    """The notification tables of `state` (made once per State object)."""
    if isinstance(state, NotifyState):
        return state
    if state not in _notify_states:
        _notify_states[state] = NotifyState(state)
    return _notify_states[state]


def enqueue(state: State | NotifyState, key: str, channel: str, recipient: str, subject: str, text: str,
            html: str | None = None, attachments: Iterable[AttachmentLike] = (), *, topic: str,
            link: str | None = None, now: datetime | None = None) -> Literal["queued", "duplicate", "unsubscribed"]:
    """Queue one message, at most once per `key`.

    `topic` is what the recipient can unsubscribe from ("digest:daily", "rule:<name>", ...). For SMS the text
    is fitted to one message where possible, ending with `link` (e.g. the dashboard view; without one, the
    SMS ends with `[notify] dashboard_url`); for e-mail, `link` is the caller's to put in the bodies. Attachments: `Attachment`s, (name, bytes[, content type]) or file
    paths, read now so that every attempt sends the same bytes. Raises `ValueError` for a bad channel,
    address, topic or key; answers "queued", "duplicate" (key seen before) or "unsubscribed".
    """
    if not isinstance(key, str) or not key.strip() or len(key) > 500:
        raise ValueError("an idempotency key of 1 to 500 characters is required")
    recipient = channels.normalise(channel, recipient)
    check_topic(topic)
    attachments = list(attachments)
    if channel == "sms" and attachments:
        raise ValueError("an SMS cannot carry attachments")
    body_html = html
    if channel == "sms":
        text, body_html = channels.fit_sms(text, link), None
    message = NewMessage(key=key, channel=channel, recipient=recipient, topic=topic, subject=subject,
                         body_text=text, body_html=body_html, headers={},
                         attachments=[_attachment(a) for a in attachments])
    outcome = notify_state(state).enqueue(message, now or datetime.now(UTC))
    if outcome == "unsubscribed":
        log.info("not queued: %s unsubscribed from %s", mask(recipient), topic)
    return outcome


def deliver_due(state: State | NotifyState, cfg: Config, now: datetime | None = None, *, limit: int = 200,
                after_send: Callable[[dict[str, Any]], None] | None = None) -> dict[str, int]:
    """Send what is due at `now`, one claimed row at a time; counts of sent, retrying, dead, unsubscribed
    and in_doubt rows. `after_send(row)` runs between a send and its record (tests put a crash there)."""
    notify = notify_state(state)
    now = now or datetime.now(UTC)
    settings = cfg.notify
    counts: Counter[str] = Counter()
    for _ in range(limit):
        claim = notify.claim_next(now, now + timedelta(seconds=settings.lease_seconds))
        if claim is None:
            break
        row = claim.row
        if claim.in_doubt:
            counts["in_doubt"] += 1
            log.warning("message %d to %s was being sent when its sender stopped; in_doubt = %s", row["id"],
                        mask(row["recipient"]), settings.in_doubt)
            if settings.in_doubt == "give_up":
                notify.mark_failed(claim, "in doubt: its sender stopped while sending it; not resent "
                                          "([notify] in_doubt = \"give_up\")", None)
                counts["dead"] += 1
                continue
        if notify.opted_out(row["recipient"], row["channel"], row["topic"]):
            notify.mark_failed(claim, f"not sent: the recipient unsubscribed from {row['topic']}", None)
            counts["unsubscribed"] += 1
            continue
        counts[_attempt(notify, cfg, claim, now, after_send)] += 1
    return dict(counts)


def _attempt(notify: NotifyState, cfg: Config, claim: Claim, now: datetime,
             after_send: Callable[[dict[str, Any]], None] | None) -> str:
    """Send one claimed row and record the outcome: "sent", "retrying" or "dead"."""
    row = claim.row
    try:
        provider_id = channels.send(cfg, _outgoing(notify, cfg, row, now))
    except Exception as exc:          # noqa: BLE001 - one bad message must not stop the others
        permanent = isinstance(exc, DeliveryError) and exc.permanent
        error = str(exc) if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, DeliveryError):
            log.exception("sending message %d failed unexpectedly", row["id"])
        retry_at = None if permanent or claim.attempt >= cfg.notify.max_attempts else now + backoff(cfg, claim.attempt)
        notify.mark_failed(claim, error[:MAX_ERROR], retry_at)
        log.warning("message %d to %s failed (attempt %d): %s; %s", row["id"], mask(row["recipient"]), claim.attempt,
                    error, f"retry at {retry_at.isoformat()}" if retry_at else "giving up")
        return "retrying" if retry_at else "dead"
    if after_send is not None:
        after_send(row)
    note = "in doubt after an interrupted send: sent again with the same Message-ID" if claim.in_doubt else None
    if not notify.mark_sent(claim, provider_id, datetime.now(UTC), note):
        log.warning("message %d was sent, but its lease ran out first: another sender may send it too", row["id"])
    log.info("sent message %d (%s) to %s", row["id"], row["channel"], mask(row["recipient"]))
    return "sent"


def backoff(cfg: Config, attempt: int) -> timedelta:
    """Wait before the next attempt after `attempt` failed ones: base, 2 x base, 4 x base, ... up to the cap."""
    seconds = cfg.notify.retry_base_seconds * 2 ** min(attempt - 1, 30)
    return timedelta(seconds=min(seconds, cfg.notify.retry_max_seconds))


def _outgoing(notify: NotifyState, cfg: Config, row: dict[str, Any], now: datetime) -> Outgoing:
    headers, link, text = json.loads(row["headers"]), None, row["body_text"]
    if row["channel"] == "sms" and "://" not in text:
        text = channels.fit_sms(text, cfg.notify.dashboard_url)     # every SMS points somewhere to look
    if row["channel"] == "email":
        # The same on every attempt: a pure function of the idempotency key (and the sender's domain).
        headers.setdefault("Message-ID", channels.message_id(row["idempotency_key"], cfg.notify.email.sender))
        link = unsubscribe_url(cfg, notify, Subscription(row["recipient"], row["channel"], row["topic"]), now)
    return Outgoing(channel=row["channel"], recipient=row["recipient"], subject=row["subject"], text=text,
                    html=row["body_html"], headers=headers,
                    attachments=notify.attachments(row["id"]) if row["channel"] == "email" else [],
                    key=row["idempotency_key"], unsubscribe_url=link)


def _attachment(item: AttachmentLike) -> Attachment:
    if isinstance(item, Attachment):
        return item
    if isinstance(item, (str, Path)):
        path = Path(item)
        return Attachment(path.name, _content_type(path.name), path.read_bytes())
    name, data, *content_type = item
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError(f"attachment {name!r}: give its bytes or a file path")
    return Attachment(name, content_type[0] if content_type else _content_type(name), bytes(data))


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"

