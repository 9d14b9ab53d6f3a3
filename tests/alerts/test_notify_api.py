"""The notifications router (api/notify.py) in a small FastAPI app: one-click unsubscribe links, the
subscription list, the outbox view, and the token rule."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.outbox import enqueue
from alerts.unsubscribe import Subscription, make_token, signing_key, unsubscribe_url
from api.notify import router
from notify_support import notify_api

UTC = timezone.utc
ANN = Subscription("ann@example.com", "email", "digest:weekly")


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.delenv("CASKALYTICS_UNSUBSCRIBE_SECRET", raising=False)
    return notify_api(tmp_path, monkeypatch, router)


def link_path(client, sub=ANN, now=None) -> str:
    return unsubscribe_url(client.cfg, client.notify, sub, now).removeprefix(client.cfg.notify.public_url)


def opted_out(client, sub=ANN) -> bool:
    return client.notify.opted_out(sub.address, sub.channel, sub.topic)


def test_get_shows_what_the_link_unsubscribes_and_changes_nothing_post_unsubscribes(api):
    path = link_path(api)
    shown = api.get(path)
    assert shown.status_code == 200
    assert shown.json() == {"address": "a***@example.com", "channel": "email", "topic": "digest:weekly",
                            "unsubscribe": "POST this URL to unsubscribe"}
    page = api.get(path, headers={"Accept": "text/html"})
    assert page.status_code == 200 and '<form method="post">' in page.text and "the weekly digest" in page.text
    assert not opted_out(api)                    # mail scanners follow GET links: GET must not unsubscribe

    done = api.post(path, content="List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200
    assert done.json() == {"unsubscribed": True, "already": False, "address": "a***@example.com",
                           "channel": "email", "topic": "digest:weekly"}
    assert opted_out(api)
    assert api.post(path).json()["already"] is True


def test_the_pages_button_posts_the_token_as_a_form_field(api):
    token = link_path(api).split("token=", 1)[1]
    done = api.post("/unsubscribe", data={"token": token}, headers={"Accept": "text/html"})
    assert done.status_code == 200 and "will no longer get the weekly digest" in done.text
    assert opted_out(api)


def test_forged_damaged_and_expired_links_are_refused(api):
    now = datetime.now(UTC)
    key = signing_key(api.cfg, api.notify)
    forged = make_token(b"somebody else's key", ANN, now + timedelta(days=30))
    genuine = make_token(key, ANN, now + timedelta(days=30))
    payload, signature = genuine.split(".")
    other_topic = make_token(key, Subscription("ann@example.com", "email", "digest:daily"), now + timedelta(days=30))
    spliced = other_topic.split(".")[0] + "." + signature        # someone else's payload under a valid signature
    expired = make_token(key, ANN, now - timedelta(seconds=1))
    for token, reason in [(forged, "signature is not valid"), (spliced, "signature is not valid"),
                          (payload, "damaged"), (payload + ".%%%", "damaged"), ("", "no valid token"),
                          (expired, "expired")]:
        for method in ("GET", "POST"):
            answer = api.request(method, "/unsubscribe", params={"token": token})
            assert answer.status_code == 400, (token, method)
            assert reason in answer.json()["error"], (token, answer.json())
    page = api.post("/unsubscribe", params={"token": forged}, headers={"Accept": "text/html"})
    assert page.status_code == 400 and "not valid" in page.text
    assert api.notify.subscriptions(include_unsubscribed=True) == []
    assert api.post(f"/unsubscribe?token={genuine}").status_code == 200


def test_an_unsubscribe_link_holds_for_the_configured_days(api):
    issued = datetime.now(UTC) - timedelta(days=89)                # unsubscribe_link_days = 90
    assert api.post(link_path(api, now=issued)).status_code == 200
    issued = datetime.now(UTC) - timedelta(days=91)
    assert "expired" in api.post(link_path(api, now=issued)).json()["error"]


def test_subscribe_list_unsubscribe_and_subscribe_again(api):
    added = api.post("/subscriptions", json={"address": "Ann@Example.com", "channel": "email", "topic": "digest:weekly"})
    assert added.status_code == 201
    assert added.json() == {"subscription": {"address": "ann@example.com", "channel": "email", "topic": "digest:weekly"}}
    api.post("/subscriptions", json={"address": "+15555550123", "channel": "sms", "topic": "rule:downloads drop"})

    listed = api.get("/subscriptions").json()["subscriptions"]
    assert [(s["address"], s["topic"]) for s in listed] == [("ann@example.com", "digest:weekly"),
                                                              ("+15555550123", "rule:downloads drop")]
    assert [s["address"] for s in api.get("/subscriptions", params={"topic": "digest:weekly"}).json()["subscriptions"]] \
        == ["ann@example.com"]

    removed = api.request("DELETE", "/subscriptions",
                          json={"address": "ann@example.com", "channel": "email", "topic": "digest:weekly"})
    assert removed.status_code == 200 and removed.json()["already"] is False
    assert [s["address"] for s in api.get("/subscriptions").json()["subscriptions"]] == ["+15555550123"]
    everything = api.get("/subscriptions", params={"all": "true"}).json()["subscriptions"]
    assert [s["unsubscribed_at"] is not None for s in everything] == [True, False]

    api.post("/subscriptions", json={"address": "ann@example.com", "channel": "email", "topic": "digest:weekly"})
    assert not opted_out(api)


@pytest.mark.parametrize("body, message", [
    (b"not json", "must be JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"address": "ann@example.com", "channel": "email"}', "missing: topic"),
    (b'{"address": "ann@example.com", "channel": "email", "topic": "failures", "admin": true}', "unknown: admin"),
    (b'{"address": "ann@", "channel": "email", "topic": "failures"}', "not an e-mail address"),
    (b'{"address": "5555550123", "channel": "sms", "topic": "failures"}', "E.164"),
    (b'{"address": "ann@example.com", "channel": "pager", "topic": "failures"}', "channel must be"),
    (b'{"address": "ann@example.com", "channel": "email", "topic": "everything"}', "topic must be"),
    (b'{"address": 7, "channel": "email", "topic": "failures"}', "must be text"),
])
def test_bad_subscription_bodies_get_a_one_sentence_400(api, body, message):
    for method in ("POST", "DELETE"):
        answer = api.request(method, "/subscriptions", content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    assert api.get("/subscriptions", params={"topic": "nope"}).status_code == 400
    assert api.get("/subscriptions", params={"all": "maybe"}).status_code == 400


def test_the_outbox_lists_recent_messages_with_masked_recipients(api):
    enqueue(api.notify, "k1", "email", "growth@example.com", "Downloads drop", "text", topic="rule:downloads drop")
    enqueue(api.notify, "k2", "sms", "+15555554567", "Downloads drop", "text", topic="rule:downloads drop")
    messages = api.get("/outbox").json()["messages"]
    assert [(m["channel"], m["recipient"], m["status"]) for m in messages] == [
        ("sms", "+1******4567", "queued"), ("email", "g***@example.com", "queued")]
    assert "idempotency_key" not in messages[0] and "body_text" not in messages[0]
    assert api.get("/outbox", params={"status": "sent"}).json() == {"messages": []}
    assert len(api.get("/outbox", params={"limit": "1"}).json()["messages"]) == 1
    for params in ({"status": "lost"}, {"limit": "0"}, {"limit": "x"}):
        answer = api.get("/outbox", params=params)
        assert answer.status_code == 400 and "error" in answer.json()


def test_with_an_api_token_only_the_unsubscribe_link_is_public(api, monkeypatch):
    monkeypatch.setenv("CASKALYTICS_API_TOKEN", "t0ken")
    for method, path in (("GET", "/subscriptions"), ("POST", "/subscriptions"), ("DELETE", "/subscriptions"),
                         ("GET", "/outbox")):
        answer = api.request(method, path)
        assert answer.status_code == 401 and answer.json() == {"error": "missing or wrong bearer token"}
    assert api.get("/outbox", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    assert api.post(link_path(api)).status_code == 200
