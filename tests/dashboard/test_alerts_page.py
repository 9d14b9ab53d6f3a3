"""The Alerts page (pages/alerts.py) with Streamlit's AppTest, over a real state database: rules with their
state, events, the outbox with masked recipients, and the subscribe/unsubscribe form."""
from __future__ import annotations

from datetime import datetime, timezone

from streamlit.testing.v1 import AppTest

import headless
from conftest import make_config
from alerts.outbox import enqueue, notify_state
from warehouse.alert_store import AlertStore
from warehouse.state import State

PAGE = str(headless.ROOT / "pages" / "alerts.py")
UTC = timezone.utc


def test_the_alerts_page_shows_rules_events_outbox_and_manages_subscriptions(tmp_path, monkeypatch):
    cfg = make_config(tmp_path)
    state = State(cfg)
    store = AlertStore(state)
    store.add_rule("downloads drop", {"name": "downloads drop", "metric": "downloads", "below": 100,
                                      "recipients": ["growth@example.com"]}, datetime.now(UTC))
    notify = notify_state(state)
    notify.save_alert_state("downloads drop", firing=True, consecutive=1, last_bucket="2025-01-04",
                            now=datetime.now(UTC), event=("fired", "2025-01-04", 42.0, "Alert: downloads drop"))
    enqueue(state, "k1", "email", "growth@example.com", "Alert: downloads drop", "42", topic="rule:downloads drop")
    monkeypatch.setenv("CASKALYTICS_CONFIG", str(cfg.path))

    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    rules = at.dataframe[0].value
    assert rules.to_dict("records") == [{"rule": "downloads drop", "from": "API",
                                         "watches": "downloads (day) below 100, for 1 day(s)", "firing": True,
                                         "last bucket judged": "2025-01-04", "recipients": "g***@example.com"}]
    assert at.dataframe[1].value["message"].tolist() == ["Alert: downloads drop"]
    outbox = at.dataframe[2].value
    assert outbox[["status", "recipient"]].values.tolist() == [["queued", "g***@example.com"]]
    assert at.selectbox(key="topic").options == ["Daily digest", "Weekly digest", "Source failure alerts",
                                                 "Rule: downloads drop"]

    at.text_input(key="address").set_value("Ann@Example.com")
    at.selectbox(key="topic").set_value("digest:weekly")
    at.button[0].click().run()
    assert not at.exception and "a***@example.com now gets weekly digest by email." in at.success[0].value
    assert [s["address"] for s in notify.subscriptions("digest:weekly")] == ["ann@example.com"]
    assert at.dataframe[3].value["address"].tolist() == ["a***@example.com"]

    at.button[1].click().run()
    assert "gets no more weekly digest" in at.success[0].value
    assert notify.subscriptions("digest:weekly") == []

    at.text_input(key="address").set_value("not an address")
    at.button[0].click().run()
    assert "not an e-mail address" in at.error[0].value
