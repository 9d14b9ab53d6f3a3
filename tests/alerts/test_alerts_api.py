"""The alert rules router (api/alerts.py): rules added over HTTP are stored, listed beside the config's, judged
by the evaluator, and deleted; bad rules get one-sentence 400s."""
from __future__ import annotations

import pytest

from alerts.rules import all_rules
from api.alerts import router
from config import AlertRule
from notify_support import notify_api
from warehouse.alert_store import AlertStore

DROP = {"name": "drop", "metric": "downloads", "grain": "week", "change_below_pct": -30, "compare": "wow",
        "where": {"version": "3.5.0"}, "for": 2, "recipients": ["growth@example.com"]}


@pytest.fixture
def api(tmp_path, monkeypatch):
    client = notify_api(tmp_path, monkeypatch, router)
    client.cfg.alerts.rules = [AlertRule.model_validate({"name": "from config", "metric": "downloads", "below": 1})]
    return client


def test_a_rule_posted_is_stored_listed_evaluated_and_deleted(api):
    created = api.post("/alerts/rules", json=DROP)
    assert created.status_code == 201, created.text
    assert created.json()["rule"]["for"] == 2 and created.json()["rule"]["where"] == {"version": "3.5.0"}
    listed = api.get("/alerts/rules").json()["rules"]
    assert [(r["name"], r["origin"], r["firing"]) for r in listed] == [("from config", "config", False),
                                                                      ("drop", "api", False)]
    [stored] = [r for r in all_rules(api.cfg, AlertStore(api.notify.state)) if r.name == "drop"]
    assert (stored.for_, stored.compare, stored.change_below_pct, stored.grain) == (2, "wow", -30, "week")

    assert api.delete("/alerts/rules/drop").json() == {"deleted": "drop"}
    assert [r["name"] for r in api.get("/alerts/rules").json()["rules"]] == ["from config"]
    assert api.delete("/alerts/rules/drop").status_code == 404


@pytest.mark.parametrize("body, message", [
    ({**DROP, "metric": "downloadz"}, "unknown metric 'downloadz'"),
    ({**DROP, "where": {"colour": "red"}}, "no dimension 'colour'"),
    ({**DROP, "compare": "yoy", "grain": "year"}, None),
    ({**DROP, "compare": "mom", "grain": "quarter"}, "needs a grain shorter"),
    ({k: v for k, v in DROP.items() if k != "compare"}, "compare = "),
    ({**DROP, "for": 0}, "greater than or equal to 1"),
    ({k: v for k, v in DROP.items() if k not in ("compare", "change_below_pct")}, "has no condition"),
    ({**DROP, "recipients": ["+15555550123"]}, "needs 'sms' in channels"),
    ({**DROP, "name": "from config"}, "is in the config file"),
    ({**DROP, "surprise": 1}, "surprise"),
    ([1, 2], "JSON object"),
])
def test_bad_rules_are_refused_in_one_sentence(api, body, message):
    answer = api.post("/alerts/rules", json=body)
    if message is None:
        assert answer.status_code == 201
        return
    assert answer.status_code == 400 and message in answer.json()["error"], answer.text
    assert "\n" not in answer.json()["error"]


def test_a_name_taken_and_config_rules_cannot_be_replaced_or_deleted_here(api):
    assert api.post("/alerts/rules", json=DROP).status_code == 201
    again = api.post("/alerts/rules", json=DROP)
    assert again.status_code == 400 and "exists already" in again.json()["error"]
    refused = api.delete("/alerts/rules/from config")
    assert refused.status_code == 400 and "config file" in refused.json()["error"]
    assert api.get("/alerts/events?limit=0").status_code == 400
    assert api.get("/alerts/events").json() == {"events": []}
