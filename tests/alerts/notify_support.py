"""Shared by the notification tests: a real SMTP server (aiosmtpd) on a free loopback port that keeps the
messages it accepts, and configs pointing the notifier at it."""
from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from conftest import free_port, to_toml
import collectors
import config as config_module


class SmtpInbox:
    """An aiosmtpd handler: keeps every accepted message, refuses the recipients in `refuse` with 550."""

    def __init__(self):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 2.0.0 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m, (_, rcpts) in zip(self.messages, self.envelopes) if address in rcpts]


class SmtpServer:
    def __init__(self, port: int, **controller_args):
        self.port = port
        self.inbox = SmtpInbox()
        self.controller_args = controller_args
        self.controller: Controller | None = None

    def start(self) -> "SmtpServer":
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **self.controller_args)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server():
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


def deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def notify_config(tmp_path, smtp_port: int, **sections) -> config_module.Config:
    """A config whose warehouse is under tmp_path and whose mail goes to 127.0.0.1:smtp_port, written as TOML
    (subprocesses read it) with `sections` merged in."""
    data = deep_merge({
        "warehouse": {"dir": str(tmp_path / "var")},
        "notify": {"public_url": "https://analytics.example.com", "dashboard_url": "https://dash.example.com",
                   "retry_base_seconds": 60, "retry_max_seconds": 600, "lease_seconds": 120,
                   "email": {"smtp_host": "127.0.0.1", "smtp_port": smtp_port, "sender": "caskalytics@example.com",
                             "timeout_seconds": 5, "sendgrid_api_key_env": "TEST_SENDGRID_KEY"},
                   "sms": {"timeout_seconds": 5}},
    }, sections)
    path = tmp_path / "config.toml"
    path.write_text(to_toml(data))
    return collectors.load_config(path)


def notify_api(tmp_path, monkeypatch, router):
    """A TestClient of a small app serving `router` (api.notify's or api.alerts') on a fresh state database,
    open without a token; `.cfg` and `.notify` give the test the same config and notification tables."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from alerts.outbox import notify_state
    from api.notify import NotifyServices, notify_services
    from warehouse.state import State
    monkeypatch.delenv("CASKALYTICS_API_TOKEN", raising=False)
    cfg = notify_config(tmp_path, 25)
    notify = notify_state(State(cfg))
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[notify_services] = lambda: NotifyServices(cfg, notify)
    client = TestClient(app)
    client.cfg, client.notify = cfg, notify
    return client
