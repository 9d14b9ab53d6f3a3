"""Subscriptions and signed one-click unsubscribe links: what `api/notify.py` calls.

A link carries a token `<payload>.<signature>`: the payload is base64url JSON of the address, channel,
topic and expiry (Unix seconds); the signature is HMAC-SHA256 over the payload's bytes, with the key the
variable `[notify] unsubscribe_secret_env` names, or else a random key made once and kept in state.sqlite.
A token whose signature does not match (compared in constant time), that is malformed, or whose expiry
has passed is refused with `TokenError`; nothing in it is trusted before the signature checks out.

Topics: `digest:daily`, `digest:weekly`, `failures`, `rule:<rule name>`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from alerts.channels import AddressError, normalise
from config import Config
from warehouse.notify_state import NotifyState

UTC = timezone.utc
TOPIC_PATTERN = re.compile(r"digest:(daily|weekly)|failures|rule:[^\x00-\x1f\x7f]{1,100}")
KEY_NAME = "unsubscribe"


class SubscriptionError(ValueError):
    """A request about a subscription that cannot be done, in one sentence."""


class TokenError(SubscriptionError):
    """An unsubscribe token that is forged, damaged or expired."""


@dataclass(frozen=True)
class Subscription:
    address: str
    channel: str
    topic: str


def check_topic(topic: Any) -> str:
    if not isinstance(topic, str) or not TOPIC_PATTERN.fullmatch(topic):
        raise SubscriptionError(f"topic must be digest:daily, digest:weekly, failures or rule:<name>, got {topic!r:.80}")
    return topic


def subscription(address: Any, channel: Any, topic: Any) -> Subscription:
    """A validated subscription (address normalised for its channel), or `SubscriptionError`."""
    try:
        address = normalise(channel, address)
    except AddressError as exc:
        raise SubscriptionError(str(exc)) from None
    return Subscription(address, channel, check_topic(topic))


# -- tokens -------------------------------------------------------------------------------------------------
def signing_key(cfg: Config, notify: NotifyState) -> bytes:
    secret = cfg.secret(cfg.notify.unsubscribe_secret_env)
    return secret.encode() if secret else notify.key(KEY_NAME)


def make_token(key: bytes, sub: Subscription, expires_at: datetime) -> str:
    payload = json.dumps({"a": sub.address, "c": sub.channel, "t": sub.topic, "e": int(expires_at.timestamp())},
                         separators=(",", ":"), ensure_ascii=False).encode()
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(key: bytes, token: Any, now: datetime | None = None) -> Subscription:
    """The subscription a genuine, unexpired token names; `TokenError` otherwise."""
    if not isinstance(token, str) or not token or len(token) > 2000:
        raise TokenError("the unsubscribe link has no valid token")
    payload_text, _, signature_text = token.partition(".")
    try:
        payload, signature = _unb64(payload_text), _unb64(signature_text)
    except (binascii.Error, ValueError):
        raise TokenError("the unsubscribe link's token is damaged") from None
    if not hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).digest(), signature):
        raise TokenError("the unsubscribe link's signature is not valid")
    try:
        fields = json.loads(payload)
        sub, expires = Subscription(fields["a"], fields["c"], fields["t"]), int(fields["e"])
    except (ValueError, KeyError, TypeError):
        raise TokenError("the unsubscribe link's token is damaged") from None
    if (now or datetime.now(UTC)).timestamp() > expires:
        raise TokenError("the unsubscribe link has expired; unsubscribe from a newer message")
    return sub


def unsubscribe_url(cfg: Config, notify: NotifyState, sub: Subscription, now: datetime | None = None) -> str:
    expires = (now or datetime.now(UTC)) + timedelta(days=cfg.notify.unsubscribe_link_days)
    token = make_token(signing_key(cfg, notify), sub, expires)
    return f"{cfg.notify.public_url}/unsubscribe?token={quote(token, safe='.')}"


# -- what the API calls -------------------------------------------------------------------------------------
def subscribe(notify: NotifyState, address: Any, channel: Any, topic: Any, now: datetime | None = None) -> Subscription:
    sub = subscription(address, channel, topic)
    notify.subscribe(sub.address, sub.channel, sub.topic, now or datetime.now(UTC))
    return sub


def unsubscribe(notify: NotifyState, address: Any, channel: Any, topic: Any,
                now: datetime | None = None) -> tuple[Subscription, bool]:
    """Opt out; (the subscription, whether this changed anything)."""
    sub = subscription(address, channel, topic)
    return sub, notify.unsubscribe(sub.address, sub.channel, sub.topic, now or datetime.now(UTC))


def token_subscription(cfg: Config, notify: NotifyState, token: Any, now: datetime | None = None) -> Subscription:
    """What a link would unsubscribe (its confirmation page), without doing it."""
    return read_token(signing_key(cfg, notify), token, now)


def unsubscribe_with_token(cfg: Config, notify: NotifyState, token: Any,
                           now: datetime | None = None) -> tuple[Subscription, bool]:
    sub = token_subscription(cfg, notify, token, now)
    return sub, notify.unsubscribe(sub.address, sub.channel, sub.topic, now or datetime.now(UTC))


def list_subscriptions(notify: NotifyState, topic: str | None = None, address: str | None = None,
                       include_unsubscribed: bool = False) -> list[dict[str, Any]]:
    if topic is not None:
        check_topic(topic)
    if address is not None:
        address = address.strip().lower() if "@" in address else address.strip()
    return notify.subscriptions(topic, address, include_unsubscribed)


def subscribers(notify: NotifyState, topic: str) -> list[Subscription]:
    """Who currently gets `topic` (digest senders read this)."""
    return [Subscription(r["address"], r["channel"], r["topic"]) for r in notify.subscriptions(check_topic(topic))]


def as_dict(sub: Subscription) -> dict[str, str]:
    return asdict(sub)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
