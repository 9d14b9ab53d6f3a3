"""POST /webhooks/github on the real API (uvicorn in its own process), with GitHub's documented payloads:
signatures verified exactly as GitHub computes them, each delivery stored once, answered fast, and drained
into the lake so the github.* metrics show what the payloads say, while a broken delivery is quarantined."""
from __future__ import annotations

import json
import time
import uuid
from datetime import date, datetime, timezone

import pytest
import requests

from conftest import FIXTURES, make_config, start_api
from scheduler import drain_inbox
from warehouse.writer import Writer
from simulators.github import sign
from warehouse import queries
from warehouse.lake import Reader
from warehouse.state import State

HOOKS = FIXTURES / "github_webhooks"
SECRET = "It's a Secret to Everybody"      # the test secret of GitHub's docs; the fixture signatures use it
REPO = "Codertocat/Hello-World"


def fixture_bytes(name: str) -> bytes:
    return (HOOKS / name).read_bytes()


def documented_headers() -> dict[str, str]:
    """The headers of the example delivery in delivery_headers.http (body: star__created.json)."""
    lines = (HOOKS / "delivery_headers.http").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("POST "))
    headers = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return headers


def deliver(base_url: str, body: bytes, event: str, *, delivery: str | None = None, secret: str | None = SECRET,
            session: requests.Session | None = None, signature: str | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd", "X-GitHub-Event": event,
               "X-GitHub-Delivery": delivery or str(uuid.uuid4())}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    elif secret is not None:
        headers["X-Hub-Signature-256"] = sign(body, secret)
    return (session or requests).post(f"{base_url}/webhooks/github", data=body, headers=headers, timeout=10)


def stored(cfg, delivery: str) -> list:
    with State(cfg).connection() as con:
        return con.execute("SELECT * FROM inbox WHERE dedupe_key = ?", [delivery]).fetchall()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    """One API process with the webhook secret set, and its config (to look into its inbox)."""
    cfg = make_config(tmp_path_factory.mktemp("webhooks"), github={"repos": [REPO], "api_url": "http://127.0.0.1:9"})
    server = start_api(cfg, env={"GITHUB_WEBHOOK_SECRET": SECRET})
    yield cfg, server.base_url
    server.process.terminate()
    server.process.wait(10)


def test_our_signature_is_exactly_githubs():
    vectors = json.loads((HOOKS / "signature_test_vectors.json").read_text())["vectors"]
    assert sign(vectors[0]["payload"].encode(), vectors[0]["secret"]) == vectors[0]["X-Hub-Signature-256"]
    assert sign(fixture_bytes("star__created.json"), SECRET) == documented_headers()["X-Hub-Signature-256"]


def test_the_documented_delivery_is_accepted_and_stored_once(receiver):
    cfg, base_url = receiver
    body, headers = fixture_bytes("star__created.json"), documented_headers()
    del headers["Host"]
    first = requests.post(f"{base_url}/webhooks/github", data=body, headers=headers, timeout=10)
    assert first.status_code == 202 and first.json() == {"ok": True, "duplicate": False}
    again = requests.post(f"{base_url}/webhooks/github", data=body, headers=headers, timeout=10)
    assert again.status_code == 200 and again.json() == {"ok": True, "duplicate": True}
    rows = stored(cfg, headers["X-GitHub-Delivery"])
    assert len(rows) == 1
    assert bytes(rows[0]["body"]) == body                      # verbatim: parsing happens in the drain
    assert json.loads(rows[0]["headers"])["x-github-event"] == "star"


@pytest.mark.parametrize("signature", [
    None,                                                                  # no header at all
    "sha256=" + "0" * 64,                                                  # made up
    sign(fixture_bytes("star__created.json"), "not the secret"),           # wrong secret
    "sha1=2b67a136ff402930c9cdff4144aaf21e99c0c148",                       # the legacy SHA-1 header value only
    sign(fixture_bytes("star__deleted.json"), SECRET),                     # a valid signature of another body
], ids=["missing", "made-up", "wrong-secret", "sha1-only", "other-body"])
def test_a_missing_or_wrong_signature_is_refused_and_nothing_stored(receiver, signature):
    cfg, base_url = receiver
    delivery = str(uuid.uuid4())
    response = deliver(base_url, fixture_bytes("star__created.json"), "star", delivery=delivery, secret=None,
                       signature=signature)
    assert response.status_code == 401
    assert stored(cfg, delivery) == []


def test_ping_is_answered_and_not_stored(receiver):
    cfg, base_url = receiver
    delivery = str(uuid.uuid4())
    response = deliver(base_url, fixture_bytes("ping.json"), "ping", delivery=delivery)
    assert response.status_code == 200 and response.json()["pong"] is True
    assert stored(cfg, delivery) == []


def test_a_delivery_is_answered_within_100_ms(receiver):
    cfg, base_url = receiver
    body = fixture_bytes("fork.json")
    with requests.Session() as session:
        for _ in range(5):        # warm-up: the first requests load the config and open the state database
            assert deliver(base_url, body, "fork", session=session).status_code == 202
        started = time.perf_counter()
        response = deliver(base_url, body, "fork", session=session)
        elapsed = time.perf_counter() - started
    assert response.status_code == 202
    assert elapsed < 0.1, f"answered in {elapsed * 1000:.0f} ms"


def daily(cfg, metric: str, start: date, end: date) -> list[float]:
    reader = Reader(cfg)
    try:
        series = queries.metric_series(reader.cursor(), cfg, queries.SeriesRequest(
            metric, "day", start, end, where={"repo": [REPO]}))
    finally:
        reader.close()
    return [p["value"] for p in series["points"]]


def test_drained_deliveries_feed_the_metrics_and_a_broken_one_is_quarantined(tmp_path):
    cfg = make_config(tmp_path, github={"repos": [REPO], "api_url": "http://127.0.0.1:9"})
    server = start_api(cfg, env={"GITHUB_WEBHOOK_SECRET": SECRET})
    try:
        ids = {}
        for name, event in [("star__created.json", "star"), ("fork.json", "fork"),
                            ("pull_request__opened.min.json", "pull_request"), ("not JSON", "star"),
                            ("no repository", "star"), ("release__published.json", "release"),
                            ("pull_request__closed.min.json", "pull_request"), ("watch__started.json", "watch"),
                            ("star__deleted.json", "star")]:
            body = {"not JSON": b'{"action": "created", "starred_at": ',
                    "no repository": b'{"action": "created", "starred_at": "2019-05-15T15:20:40Z"}'
                    }.get(name) or fixture_bytes(name)
            ids[name] = str(uuid.uuid4())
            assert deliver(server.base_url, body, event, delivery=ids[name]).status_code == 202
            time.sleep(0.01)      # the watch and the unstar are timed on receipt: keep their order unambiguous
    finally:
        server.process.terminate()
        server.process.wait(10)

    writer = Writer(cfg)
    try:
        summary = drain_inbox(writer)
        assert (summary.records, summary.inserted, summary.quarantined) == (7, 7, 2)
        quarantined = dict(writer.con.execute("SELECT origin, reason FROM lake.quarantine").fetchall())
        assert writer.con.execute("SELECT count(*) FROM lake.quarantine").fetchone()[0] == 2
        assert "not valid JSON" in quarantined[ids["not JSON"]]
        assert "repository" in quarantined[ids["no repository"]]
        columns = ("event", "action", "repo", "ts", "stars", "forks", "item_id")
        events = {row[0]: dict(zip(columns, row[1:])) for row in writer.con.execute(
            f"SELECT delivery_id, {', '.join(columns)} FROM lake.raw_github_events").fetchall()}
        at = lambda text: datetime.fromisoformat(text).replace(tzinfo=timezone.utc)   # noqa: E731
        expected = {   # times and counts as the payloads state them
            "star__created.json": ("star", "created", at("2019-05-15T15:20:40"), 1, 0, None),
            "fork.json": ("fork", None, at("2019-05-15T15:20:42"), 0, 1, None),
            "pull_request__opened.min.json": ("pull_request", "opened", at("2019-05-15T15:20:33"), 0, 0, 2),
            "pull_request__closed.min.json": ("pull_request", "closed", at("2019-05-15T15:20:33"), 0, 0, 2),
            "release__published.json": ("release", "published", at("2019-05-15T15:20:53"), 0, 1, 17372790),
        }
        for name, (event, action, ts, stars, forks, item_id) in expected.items():
            assert events[ids[name]] == {"event": event, "action": action, "repo": REPO, "ts": ts, "stars": stars,
                                         "forks": forks, "item_id": item_id}, name
        today = datetime.now(timezone.utc).date()
        for name in ("watch__started.json", "star__deleted.json"):     # no event time in the payload: on receipt
            assert events[ids[name]]["ts"].date() == today
        assert events[ids["star__deleted.json"]]["stars"] == 0
        assert drain_inbox(writer).records == 0           # the inbox cursor moved past everything
    finally:
        writer.close()

    around = (date(2019, 5, 14), date(2019, 5, 16))
    assert daily(cfg, "github.stars", *around) == [None, 1, 1]   # no count before the first
    assert daily(cfg, "github.forks", *around) == [None, 1, 1]
    assert daily(cfg, "github.pull_requests_opened", *around) == [0, 1, 0]    # "closed" is not an opening
    assert daily(cfg, "github.releases", *around) == [0, 1, 0]
    assert daily(cfg, "github.stars", today, today) == [0]     # the unstar received last is the latest count


def test_a_switched_off_github_source_refuses_deliveries_with_a_404_not_a_500(tmp_path):
    from fastapi.testclient import TestClient

    from api import deps, main
    cfg = make_config(tmp_path, github={"enabled": False})
    deps._services = deps.Services(cfg)
    try:
        answer = TestClient(main.app).post("/webhooks/github", content=b"{}", headers={"X-GitHub-Event": "star"})
    finally:
        deps._services = None
    assert answer.status_code == 404 and "switched off" in answer.text
