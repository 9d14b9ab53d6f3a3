"""Each channel against a real server: SendGrid's v3 API (our simulator), Amazon SNS (moto server), and SMTP
with STARTTLS and AUTH (aiosmtpd with a test CA). Addresses are validated and masked."""
from __future__ import annotations

import base64
import ssl

import pytest
import requests
import trustme
from aiosmtpd.smtp import AuthResult

from conftest import free_port
from notify_support import SmtpServer, notify_config
from alerts.channels import fit_sms, mask, normalise, sms_units
from alerts.outbox import deliver_due, enqueue, notify_state
from simulators.sendgrid import SendgridSimulator
from warehouse.state import State

PDF = b"%PDF-1.4\n%%EOF\n"


def test_through_sendgrid_when_its_key_is_set_the_v3_json_arrives(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_SENDGRID_KEY", "SG.test-key")
    with SendgridSimulator(api_key="SG.test-key", mail_dir=tmp_path / "mail") as sendgrid:
        cfg = notify_config(tmp_path, free_port(), notify={"email": {"sendgrid_url": sendgrid.url}})
        state = State(cfg)
        enqueue(state, "digest:weekly:2026-W19:ann", "email", "Ann@Example.com", "Weekly digest", "Downloads: 1,204",
                "<html><body><p>Downloads: <b>1,204</b></p></body></html>", [("week.pdf", PDF)], topic="digest:weekly")

        assert deliver_due(state, cfg) == {"sent": 1}

        [stored] = sendgrid.messages
    body = stored["body"]
    assert body["personalizations"] == [{"to": [{"email": "ann@example.com"}]}]
    assert body["from"] == {"email": "caskalytics@example.com"} and body["subject"] == "Weekly digest"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"].startswith("Downloads: 1,204")
    assert body["attachments"] == [{"content": base64.b64encode(PDF).decode(), "type": "application/pdf",
                                    "filename": "week.pdf", "disposition": "attachment"}]
    assert body["headers"]["List-Unsubscribe"].startswith("<https://analytics.example.com/unsubscribe?token=")
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["headers"]["Message-ID"].startswith("<caskalytics.")
    assert body["custom_args"] == {"idempotency_key": "digest:weekly:2026-W19:ann"}
    row = notify_state(state).message_by_key("digest:weekly:2026-W19:ann")
    assert row["status"] == "sent" and row["provider_message_id"] == stored["id"]    # SendGrid's X-Message-Id
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1 and len(list((tmp_path / "mail").glob("*.json"))) == 1


def test_sendgrid_refusals_are_in_its_error_shape_and_decide_retry_or_dead(tmp_path, monkeypatch):
    with SendgridSimulator(api_key="SG.right") as sendgrid:
        url = sendgrid.url + "/v3/mail/send"
        refused = requests.post(url, json={"personalizations": [{"to": [{"email": "nope"}]}], "content": []},
                                headers={"Authorization": "Bearer SG.right"}, timeout=5)
        assert refused.status_code == 400
        fields = {e["field"] for e in refused.json()["errors"]}
        assert fields == {"personalizations.0.to.0.email", "from", "subject", "content"}
        assert all(set(e) == {"message", "field", "help"} for e in refused.json()["errors"])
        wrong_key = requests.post(url, json={}, headers={"Authorization": "Bearer SG.wrong"}, timeout=5)
        assert wrong_key.status_code == 401
        assert wrong_key.json() == {"errors": [{"message": "The provided authorization grant is invalid, expired, "
                                                           "or revoked", "field": None, "help": None}]}

        # Through the outbox: a wrong key waits for a fix (retried); a 5xx is retried too.
        monkeypatch.setenv("TEST_SENDGRID_KEY", "SG.wrong")
        cfg = notify_config(tmp_path, free_port(), notify={"email": {"sendgrid_url": sendgrid.url}})
        state = State(cfg)
        enqueue(state, "k", "email", "ann@example.com", "s", "t", topic="failures")
        assert deliver_due(state, cfg) == {"retrying": 1}
        assert "401" in notify_state(state).message_by_key("k")["last_error"]
        assert sendgrid.messages == []


def test_an_sms_goes_through_sns_short_with_the_dashboard_link(tmp_path, moto_endpoint, aws_env, monkeypatch):
    cfg = notify_config(tmp_path, free_port(), notify={"sms": {
        "endpoint_url": moto_endpoint, "access_key_id_env": "TEST_AWS_KEY", "secret_access_key_env": "TEST_AWS_SECRET"}})
    state = State(cfg)
    long_text = "Downloads dropped below 100 per day: 42 on 2026-05-04, against 380 on the same weekday last week. " * 3
    assert enqueue(state, "rule:downloads drop:2026-05-04:+15555550123", "sms", "+15555550123", "Downloads drop",
                   long_text, topic="rule:downloads drop", link="https://dash.example.com/d/downloads") == "queued"

    assert deliver_due(state, cfg) == {"sent": 1}

    published = requests.get(f"{moto_endpoint}/moto-api/data.json", timeout=10).json()["sns"]["SMS"]
    row = notify_state(state).message_by_key("rule:downloads drop:2026-05-04:+15555550123")
    [sms] = [m for m in published if m["message_id"] == row["provider_message_id"]]
    assert sms["phone_number"] == "+15555550123"
    assert len(sms["message"]) <= 160 and sms["message"].endswith("... https://dash.example.com/d/downloads")
    assert sms["message"].startswith("Downloads dropped below 100 per day: 42")

    # Without a link of the caller's, an SMS points at the dashboard.
    enqueue(state, "failures:github:+15555550123", "sms", "+15555550123", "GitHub failing",
            "GitHub collection failed 3 times in a row.", topic="failures")
    deliver_due(state, cfg)
    row = notify_state(state).message_by_key("failures:github:+15555550123")
    published = requests.get(f"{moto_endpoint}/moto-api/data.json", timeout=10).json()["sns"]["SMS"]
    [sms] = [m for m in published if m["message_id"] == row["provider_message_id"]]
    assert sms["message"] == "GitHub collection failed 3 times in a row. https://dash.example.com"
    with pytest.raises(ValueError, match="attachments"):
        enqueue(state, "k", "sms", "+15555550123", "s", "t", attachments=[("a.pdf", PDF)], topic="failures")


def test_smtp_with_starttls_and_auth(tmp_path, monkeypatch):
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password, session.ssl is not None))
        # handled=False: aiosmtpd answers a refusal with 535 itself (the default expects us to).
        return AuthResult(success=auth_data.login == b"mailer" and auth_data.password == b"s3cret", handled=False)

    server = SmtpServer(free_port(), tls_context=server_context, require_starttls=True, authenticator=authenticator,
                        auth_required=True).start()
    try:
        cfg = notify_config(tmp_path, server.port, notify={"email": {
            "starttls": True, "ca_bundle": str(ca_file), "username": "mailer", "password_env": "TEST_SMTP_PASSWORD"}})
        state = State(cfg)
        enqueue(state, "k1", "email", "ops@example.com", "Source failing", "github failed 3 times", topic="failures")
        assert deliver_due(state, cfg) == {"retrying": 1}            # password variable unset: waits for it
        assert "TEST_SMTP_PASSWORD" in notify_state(state).message_by_key("k1")["last_error"]

        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
        assert deliver_due(state, cfg, now=_minutes_later(5)) == {"retrying": 1}
        assert "AUTH refused: 535" in notify_state(state).message_by_key("k1")["last_error"]

        monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
        assert deliver_due(state, cfg, now=_minutes_later(15)) == {"sent": 1}
    finally:
        server.stop()
    assert [m["Subject"] for m in server.inbox.messages] == ["Source failing"]
    assert logins[-1] == (b"mailer", b"s3cret", True)                # AUTH only after STARTTLS


def _minutes_later(minutes: int):
    from datetime import datetime, timedelta, timezone
    return datetime.now(timezone.utc) + timedelta(minutes=minutes)


@pytest.mark.parametrize("channel, given, stored, masked", [
    ("email", " Growth@Example.COM ", "growth@example.com", "g***@example.com"),
    ("sms", "+15555554567", "+15555554567", "+1******4567"),
])
def test_addresses_are_normalised_and_masked(channel, given, stored, masked):
    assert normalise(channel, given) == stored
    assert mask(stored) == masked


@pytest.mark.parametrize("channel, address", [
    ("email", "growth@"), ("email", "growth example.com"), ("email", "a@b"), ("email", "<a@example.com>"),
    ("sms", "+0123456"), ("sms", "15551234567"), ("sms", "+1555555012345678"), ("sms", "+1 555 555 0123")])
def test_bad_addresses_are_refused_without_showing_them_whole(channel, address):
    with pytest.raises(ValueError) as refused:
        normalise(channel, address)
    assert address.strip() not in str(refused.value)


def test_sms_text_fits_one_message_where_it_can():
    link = "https://dash.example.com/d/1"
    assert fit_sms("short  alert\ntext", link) == f"short alert text {link}"
    fitted = fit_sms("x" * 300, link)
    assert sms_units(fitted) == (160, 160) and fitted.endswith("... " + link)
    unicode_fitted = fit_sms("Téléchargements ✓ " * 20, link)            # ✓ is not GSM-7: UCS-2's 70
    assert sms_units(unicode_fitted)[0] <= 70 and unicode_fitted.endswith(link)
    assert fit_sms("y" * 50) == "y" * 50
