"""Notifications' part of the state database (`<dir>/state.sqlite`): the outbox, subscriptions, and the
tables alert evaluation keeps its memory in.

- `outbox`: one row per message to send, unique on its idempotency key. Status moves
  queued -> sending -> sent, or sending -> failed -> sending ... -> dead. `next_attempt_at` is when the row is
  next due: for queued and failed rows the retry time, for a row in `sending` the end of its lease (a row
  still `sending` after its lease is "in doubt": its sender stopped between sending and recording it).
  `attempts` counts claims; a sender may only record the outcome of the claim it holds (same `attempts`).
- `outbox_attachments`: the files of a message (bytes, kept with the message so a retry sends the same).
- `subscriptions`: who gets which topic ("digest:daily", "digest:weekly", "rule:<name>", "failures") on
  which channel. A row with `unsubscribed_at` set is an opt-out; it also stops messages to recipients that
  come from the config (rule recipients), so an unsubscribe always holds.
- `alert_state` and `alert_events`: per rule, whether it fires and how many evaluated buckets in a row
  broke its threshold; the log of firings and recoveries.
- `notify_keys`: random keys made on first use (the unsubscribe-link key when no env variable gives one).

Times are ISO 8601 UTC strings of one format (`iso`), so comparing the text compares the times.
"""
from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from warehouse.state import State

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,               -- email | sms
    recipient TEXT NOT NULL,             -- normalised address or E.164 number
    topic TEXT NOT NULL,                 -- what an unsubscribe refers to
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    headers TEXT NOT NULL DEFAULT '{}',  -- JSON; the Message-ID is fixed here at enqueue time
    status TEXT NOT NULL,                -- queued | sending | sent | failed | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,       -- retry time; for `sending`, the end of the lease
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT,
    provider_message_id TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS outbox_attachments (
    outbox_id INTEGER NOT NULL REFERENCES outbox (id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (outbox_id, position)
);
CREATE TABLE IF NOT EXISTS subscriptions (
    address TEXT NOT NULL,
    channel TEXT NOT NULL,
    topic TEXT NOT NULL,
    created_at TEXT NOT NULL,
    unsubscribed_at TEXT,                -- set = opted out
    PRIMARY KEY (address, channel, topic)
);
CREATE TABLE IF NOT EXISTS alert_state (
    rule TEXT PRIMARY KEY,
    firing INTEGER NOT NULL DEFAULT 0,
    consecutive INTEGER NOT NULL DEFAULT 0,   -- evaluated buckets in a row past the threshold
    last_bucket TEXT,                         -- start of the last evaluated bucket (each counts once)
    last_fired_at TEXT,
    last_recovered_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,                  -- fired | recovered
    bucket_start TEXT,
    value REAL,
    message TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alert_events_by_rule ON alert_events (rule, id);
CREATE TABLE IF NOT EXISTS notify_keys (name TEXT PRIMARY KEY, secret BLOB NOT NULL);
"""

DUE_STATUSES = ("queued", "failed", "sending")   # `sending` only once its lease has run out


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class NewMessage:
    key: str
    channel: str
    recipient: str
    topic: str
    subject: str
    body_text: str
    body_html: str | None
    headers: dict[str, str]
    attachments: Sequence[Attachment] = ()


@dataclass(frozen=True)
class Claim:
    """A row this sender now holds for one attempt; `in_doubt`: its last sender's lease ran out mid-send."""
    row: dict[str, Any]
    in_doubt: bool

    @property
    def attempt(self) -> int:
        return self.row["attempts"]


class NotifyState:
    def __init__(self, state: State):
        self.state = state
        with state.connection() as con:
            con.executescript(SCHEMA)

    # -- outbox ------------------------------------------------------------------------------------------
    def enqueue(self, message: NewMessage, now: datetime) -> Literal["queued", "duplicate", "unsubscribed"]:
        """Add a message unless its key is known or its recipient opted out of its topic, atomically."""
        with self.state.transaction() as con:
            if con.execute("SELECT 1 FROM outbox WHERE idempotency_key = ?", [message.key]).fetchone():
                return "duplicate"
            if self._opted_out(con, message.recipient, message.channel, message.topic):
                return "unsubscribed"
            outbox_id = con.execute(
                "INSERT INTO outbox (idempotency_key, channel, recipient, topic, subject, body_text, body_html,"
                " headers, status, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                [message.key, message.channel, message.recipient, message.topic, message.subject,
                 message.body_text, message.body_html, json.dumps(message.headers), iso(now), iso(now)]).lastrowid
            con.executemany("INSERT INTO outbox_attachments (outbox_id, position, name, content_type, data) "
                            "VALUES (?, ?, ?, ?, ?)",
                            [(outbox_id, i, a.name, a.content_type, a.data) for i, a in enumerate(message.attachments)])
            return "queued"

    def claim_next(self, now: datetime, lease_until: datetime) -> Claim | None:
        """Take the most overdue row for one attempt: `sending`, leased until `lease_until`, attempts + 1."""
        with self.state.transaction() as con:
            row = con.execute(
                "SELECT * FROM outbox WHERE status IN (?, ?, ?) AND next_attempt_at <= ? ORDER BY next_attempt_at, id "
                "LIMIT 1", [*DUE_STATUSES, iso(now)]).fetchone()
            if row is None:
                return None
            con.execute("UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = ? "
                        "WHERE id = ?", [iso(lease_until), row["id"]])
            claimed = {**dict(row), "status": "sending", "attempts": row["attempts"] + 1,
                       "next_attempt_at": iso(lease_until)}
            return Claim(claimed, in_doubt=row["status"] == "sending")

    def attachments(self, outbox_id: int) -> list[Attachment]:
        with self.state.connection() as con:
            return [Attachment(r["name"], r["content_type"], r["data"]) for r in con.execute(
                "SELECT name, content_type, data FROM outbox_attachments WHERE outbox_id = ? ORDER BY position",
                [outbox_id]).fetchall()]

    def mark_sent(self, claim: Claim, provider_message_id: str | None, now: datetime,
                  note: str | None = None) -> bool:
        """Record the send; False when the claim was lost (its lease ran out and another sender took it)."""
        with self.state.connection() as con:
            return con.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, provider_message_id = ?, last_error = ? "
                "WHERE id = ? AND status = 'sending' AND attempts = ?",
                [iso(now), provider_message_id, note, claim.row["id"], claim.attempt]).rowcount == 1

    def mark_failed(self, claim: Claim, error: str, retry_at: datetime | None) -> bool:
        """Record a failed attempt: retried at `retry_at`, or dead when None."""
        with self.state.connection() as con:
            status, due = ("failed", iso(retry_at)) if retry_at is not None else ("dead", claim.row["next_attempt_at"])
            return con.execute(
                "UPDATE outbox SET status = ?, last_error = ?, next_attempt_at = ? "
                "WHERE id = ? AND status = 'sending' AND attempts = ?",
                [status, error, due, claim.row["id"], claim.attempt]).rowcount == 1

    def message(self, outbox_id: int) -> dict[str, Any] | None:
        with self.state.connection() as con:
            row = con.execute("SELECT * FROM outbox WHERE id = ?", [outbox_id]).fetchone()
            return dict(row) if row else None

    def message_by_key(self, key: str) -> dict[str, Any] | None:
        with self.state.connection() as con:
            row = con.execute("SELECT * FROM outbox WHERE idempotency_key = ?", [key]).fetchone()
            return dict(row) if row else None

    def recent_messages(self, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
        """Newest first, without bodies."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        with self.state.connection() as con:
            return [dict(r) for r in con.execute(
                "SELECT id, idempotency_key, channel, recipient, topic, subject, status, attempts, next_attempt_at,"
                f" last_error, created_at, sent_at, provider_message_id FROM outbox {where} ORDER BY id DESC LIMIT ?",
                [*args, limit]).fetchall()]

    # -- subscriptions -----------------------------------------------------------------------------------
    def subscribe(self, address: str, channel: str, topic: str, now: datetime) -> None:
        """Subscribe, or lift an earlier opt-out."""
        with self.state.connection() as con:
            con.execute(
                "INSERT INTO subscriptions (address, channel, topic, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (address, channel, topic) DO UPDATE SET unsubscribed_at = NULL, "
                "created_at = CASE WHEN unsubscribed_at IS NULL THEN created_at ELSE excluded.created_at END",
                [address, channel, topic, iso(now)])

    def unsubscribe(self, address: str, channel: str, topic: str, now: datetime) -> bool:
        """Opt out (kept even for addresses never subscribed here); False when already opted out."""
        with self.state.connection() as con:
            return con.execute(
                "INSERT INTO subscriptions (address, channel, topic, created_at, unsubscribed_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (address, channel, topic) DO UPDATE SET unsubscribed_at = excluded.unsubscribed_at "
                "WHERE unsubscribed_at IS NULL",
                [address, channel, topic, iso(now), iso(now)]).rowcount == 1

    def opted_out(self, address: str, channel: str, topic: str) -> bool:
        with self.state.connection() as con:
            return self._opted_out(con, address, channel, topic)

    def subscriptions(self, topic: str | None = None, address: str | None = None,
                      include_unsubscribed: bool = False) -> list[dict[str, Any]]:
        clauses, args = [], []
        for column, value in (("topic", topic), ("address", address)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if not include_unsubscribed:
            clauses.append("unsubscribed_at IS NULL")
        where = "WHERE " + " AND ".join(clauses) if clauses else ""
        with self.state.connection() as con:
            return [dict(r) for r in con.execute(
                f"SELECT * FROM subscriptions {where} ORDER BY topic, channel, address", args).fetchall()]

    # -- alert evaluation's memory -----------------------------------------------------------------------
    def alert_state(self, rule: str) -> dict[str, Any] | None:
        with self.state.connection() as con:
            row = con.execute("SELECT * FROM alert_state WHERE rule = ?", [rule]).fetchone()
            return dict(row) if row else None

    def save_alert_state(self, rule: str, *, firing: bool, consecutive: int, last_bucket: str | None,
                         now: datetime, event: tuple[str, str | None, float | None, str] | None = None) -> None:
        """Store a rule's state, and with `event` = (fired|recovered, bucket_start, value, message) log it, in
        one transaction (a crash cannot leave a firing without its event)."""
        with self.state.transaction() as con:
            kind = event[0] if event else None
            con.execute(
                "INSERT INTO alert_state (rule, firing, consecutive, last_bucket, last_fired_at, last_recovered_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule) DO UPDATE SET firing = excluded.firing,"
                " consecutive = excluded.consecutive, last_bucket = excluded.last_bucket,"
                " last_fired_at = COALESCE(excluded.last_fired_at, last_fired_at),"
                " last_recovered_at = COALESCE(excluded.last_recovered_at, last_recovered_at),"
                " updated_at = excluded.updated_at",
                [rule, int(firing), consecutive, last_bucket, iso(now) if kind == "fired" else None,
                 iso(now) if kind == "recovered" else None, iso(now)])
            if event:
                con.execute("INSERT INTO alert_events (rule, kind, bucket_start, value, message, at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", [rule, *event, iso(now)])

    def alert_events(self, rule: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = ("WHERE rule = ?", [rule]) if rule else ("", [])
        with self.state.connection() as con:
            return [dict(r) for r in con.execute(f"SELECT * FROM alert_events {where} ORDER BY id DESC LIMIT ?",
                                                 [*args, limit]).fetchall()]

    # -- keys --------------------------------------------------------------------------------------------
    def key(self, name: str) -> bytes:
        """A random 32-byte key made on first use and kept (every process then signs with the same one)."""
        with self.state.connection() as con:
            con.execute("INSERT OR IGNORE INTO notify_keys (name, secret) VALUES (?, ?)", [name, os.urandom(32)])
            return con.execute("SELECT secret FROM notify_keys WHERE name = ?", [name]).fetchone()[0]

    # -- helpers -----------------------------------------------------------------------------------------
    @staticmethod
    def _opted_out(con: sqlite3.Connection, address: str, channel: str, topic: str) -> bool:
        return con.execute("SELECT 1 FROM subscriptions WHERE address = ? AND channel = ? AND topic = ? "
                           "AND unsubscribed_at IS NOT NULL", [address, channel, topic]).fetchone() is not None
