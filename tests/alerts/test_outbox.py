"""The outbox against a real SMTP server: what arrives, retries, idempotency, a crash between send and
record, and unsubscribe links that hold."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import ROOT, free_port
from notify_support import SmtpServer, notify_config, smtp_server  # noqa: F401 - fixture
from alerts.outbox import deliver_due, enqueue, notify_state
from api.notify import NotifyServices, notify_services, router
from warehouse.state import State

UTC = timezone.utc
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def later(**delta) -> datetime:
    return (datetime.now(UTC) + timedelta(**delta)).replace(microsecond=0)   # stored times keep milliseconds


def alert(state, key="rule:downloads drop:2026-05-04:growth", recipient="growth@example.com", **extra):
    return enqueue(state, key, "email", recipient, "Downloads dropped below 100",
                   "Downloads were 42 on 2026-05-04 (rule: below 100).",
                   "<html><body><p>Downloads were <b>42</b> on 2026-05-04.</p></body></html>",
                   topic="rule:downloads drop", **extra)


def test_an_alert_arrives_as_multipart_mail_with_attachment_and_one_click_unsubscribe(tmp_path, smtp_server):
    cfg = notify_config(tmp_path, smtp_server.port, notify={"email": {"unsubscribe_mailto": "unsubscribe@example.com"}})
    state = State(cfg)
    assert alert(state, attachments=[("weekly.pdf", PDF)]) == "queued"

    assert deliver_due(state, cfg) == {"sent": 1}

    [mail] = smtp_server.inbox.messages
    assert smtp_server.inbox.envelopes == [("caskalytics@example.com", ["growth@example.com"])]
    assert mail["Subject"] == "Downloads dropped below 100"
    assert mail["From"] == "caskalytics@example.com" and mail["To"] == "growth@example.com"
    assert mail.get_content_type() == "multipart/mixed"
    assert "Downloads were 42" in mail.get_body(("plain",)).get_content()
    assert "<b>42</b>" in mail.get_body(("html",)).get_content()
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "weekly.pdf" and attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF
    # RFC 8058: an https URI (here with a mailto beside it) and the one-click POST marker.
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://analytics.example.com/unsubscribe?token=")
    assert unsubscribe.endswith(", <mailto:unsubscribe@example.com?subject=unsubscribe>")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe[1:unsubscribe.index(">")] in mail.get_body(("plain",)).get_content()
    row = notify_state(state).message_by_key("rule:downloads drop:2026-05-04:growth")
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"]
    assert row["provider_message_id"] == mail["Message-ID"]


def test_the_same_key_enqueued_twice_sends_one_message(tmp_path, smtp_server):
    cfg = notify_config(tmp_path, smtp_server.port)
    state = State(cfg)
    assert alert(state) == "queued"
    assert alert(state) == "duplicate"
    deliver_due(state, cfg)
    assert alert(State(cfg)) == "duplicate"           # after sending, and from another State object too
    deliver_due(state, cfg, now=later(days=1))

    assert len(smtp_server.inbox.messages) == 1


def test_a_dead_server_leaves_the_row_failed_with_its_error_then_it_is_delivered_once_the_server_is_up(tmp_path):
    port = free_port()                                 # nothing listens here yet
    cfg = notify_config(tmp_path, port)
    state = State(cfg)
    alert(state)

    assert deliver_due(state, cfg) == {"retrying": 1}
    row = notify_state(state).message_by_key("rule:downloads drop:2026-05-04:growth")
    assert row["status"] == "failed" and row["attempts"] == 1
    assert "ConnectionRefusedError" in row["last_error"] and f"127.0.0.1:{port}" in row["last_error"]
    retry_at = datetime.fromisoformat(row["next_attempt_at"])
    assert timedelta(seconds=55) < retry_at - datetime.now(UTC) <= timedelta(seconds=60)   # retry_base_seconds

    assert deliver_due(state, cfg) == {}               # not due yet
    second_failure = later(seconds=61)
    assert deliver_due(state, cfg, now=second_failure) == {"retrying": 1}
    row = notify_state(state).message(row["id"])
    assert datetime.fromisoformat(row["next_attempt_at"]) - second_failure == timedelta(seconds=120)   # doubled

    server = SmtpServer(port).start()
    try:
        assert deliver_due(state, cfg, now=later(seconds=200)) == {"sent": 1}
        assert deliver_due(state, cfg, now=later(days=1)) == {}
    finally:
        server.stop()
    assert len(server.inbox.messages) == 1
    row = notify_state(state).message(row["id"])
    assert row["status"] == "sent" and row["attempts"] == 3


def test_backoff_is_capped_and_a_message_dies_after_max_attempts(tmp_path):
    cfg = notify_config(tmp_path, free_port(), notify={"max_attempts": 6})
    state = State(cfg)
    alert(state)
    waits, moment = [], later(seconds=1)
    for _ in range(6):
        counts = deliver_due(state, cfg, now=moment)
        row = notify_state(state).message_by_key("rule:downloads drop:2026-05-04:growth")
        if row["status"] == "failed":
            retry_at = datetime.fromisoformat(row["next_attempt_at"])
            waits.append((retry_at - moment).total_seconds())
            moment = retry_at
    assert waits == [60, 120, 240, 480, 600]            # 960 would pass retry_max_seconds = 600
    assert counts == {"dead": 1} and row["status"] == "dead" and row["attempts"] == 6
    assert deliver_due(state, cfg, now=later(days=30)) == {}


def test_a_recipient_the_server_refuses_for_good_is_dead_at_once(tmp_path, smtp_server):
    cfg = notify_config(tmp_path, smtp_server.port)
    smtp_server.inbox.refuse.add("gone@example.com")
    state = State(cfg)
    alert(state, key="k-gone", recipient="gone@example.com")

    assert deliver_due(state, cfg) == {"dead": 1}
    row = notify_state(state).message_by_key("k-gone")
    assert row["status"] == "dead" and "550" in row["last_error"] and "no such user" in row["last_error"]
    assert "gone@" not in row["last_error"] and "g***@example.com" in row["last_error"]   # the server quoted it


KILLED_SENDER = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
import collectors
from alerts.outbox import deliver_due
from warehouse.state import State
cfg = collectors.load_config(sys.argv[1])
deliver_due(State(cfg), cfg, after_send=lambda row: os.kill(os.getpid(), signal.SIGKILL))
"""


@pytest.mark.parametrize("policy", ["resend", "give_up"])
def test_a_sender_killed_between_send_and_record_is_handled_by_the_in_doubt_policy(tmp_path, smtp_server, policy):
    cfg = notify_config(tmp_path, smtp_server.port, notify={"in_doubt": policy})
    state = State(cfg)
    alert(state)

    killed = subprocess.run([sys.executable, "-c", KILLED_SENDER, str(cfg.path), str(ROOT)], cwd=ROOT, timeout=60)
    assert killed.returncode == -9
    [first] = smtp_server.inbox.messages
    row = notify_state(state).message_by_key("rule:downloads drop:2026-05-04:growth")
    assert row["status"] == "sending" and row["sent_at"] is None

    # A restart within the lease does not resend: the first sender may still be at work.
    assert deliver_due(state, cfg) == {}
    assert deliver_due(state, cfg, now=later(seconds=100)) == {}
    assert len(smtp_server.inbox.messages) == 1

    counts = deliver_due(state, cfg, now=later(seconds=121))    # lease_seconds = 120
    row = notify_state(state).message(row["id"])
    if policy == "resend":
        assert counts == {"in_doubt": 1, "sent": 1}
        first_copy, second_copy = smtp_server.inbox.messages
        assert second_copy["Message-ID"] == first_copy["Message-ID"] == first["Message-ID"]  # receivers dedupe
        assert row["status"] == "sent" and row["attempts"] == 2 and "same Message-ID" in row["last_error"]
    else:
        assert counts == {"in_doubt": 1, "dead": 1}
        assert len(smtp_server.inbox.messages) == 1
        assert row["status"] == "dead" and "not resent" in row["last_error"]
    deliver_due(state, cfg, now=later(days=1))
    assert len(smtp_server.inbox.messages) == (2 if policy == "resend" else 1)


def test_the_unsubscribe_link_of_a_mail_stops_further_mail_on_that_topic_only(tmp_path, smtp_server):
    cfg = notify_config(tmp_path, smtp_server.port)
    state = State(cfg)
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[notify_services] = lambda: NotifyServices(cfg, notify_state(state))
    alert(state, key="first")
    deliver_due(state, cfg)
    alert(state, key="queued before the click")
    link = smtp_server.inbox.messages[0]["List-Unsubscribe"].strip("<>")
    path = link.removeprefix("https://analytics.example.com")

    # What a mail client does for RFC 8058 one-click.
    answer = TestClient(app).post(path, content="List-Unsubscribe=One-Click",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200 and answer.json()["unsubscribed"] is True
    assert answer.json()["address"] == "g***@example.com"

    assert alert(state, key="after the click") == "unsubscribed"
    assert enqueue(state, "digest", "email", "growth@example.com", "Daily digest", "All fine.",
                   topic="digest:daily") == "queued"
    assert deliver_due(state, cfg) == {"unsubscribed": 1, "sent": 1}
    assert [m["Subject"] for m in smtp_server.inbox.messages] == ["Downloads dropped below 100", "Daily digest"]
    assert notify_state(state).message_by_key("after the click") is None
    assert "unsubscribed" in notify_state(state).message_by_key("queued before the click")["last_error"]


@pytest.mark.parametrize("channel, recipient, message", [
    ("email", "not-an-address", "not an e-mail address"), ("sms", "5555550123", "E.164"),
    ("fax", "growth@example.com", "channel must be")])
def test_enqueue_refuses_bad_addresses_and_channels(tmp_path, channel, recipient, message):
    state = State(notify_config(tmp_path, 25))
    with pytest.raises(ValueError, match=message):
        enqueue(state, "k", channel, recipient, "s", "t", topic="failures")
    with pytest.raises(ValueError, match="topic must be"):
        enqueue(state, "k", "email", "growth@example.com", "s", "t", topic="everything")
