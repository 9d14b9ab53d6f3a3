"""The web beacon on the real API (uvicorn in its own process, over HTTP): hits sent exactly as the README
documents them are stored with the documented fields; refused, invalid and bot hits are answered as
documented, never stored, and counted by reason; pixel visitors are a keyed daily hash and the IP address is
stored nowhere; the snippet works in a real browser (page view, SPA navigation, UTM tags, one visitor id);
/awareness/webtraffic answers the contract at all six grains, agreeing with a plain-Python reading of the
documented rules; and every hit answered 2xx survives a SIGKILL of the API under load, stored once."""
from __future__ import annotations

import asyncio
import http.server
import importlib.util
import json
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from api.beacon import Drop, Edge, Incoming
from collectors.beacon import Hit, encode
from conftest import ROOT, make_config, start_api
from warehouse.writer import Writer
from scheduler import drain_inbox, run_source
from warehouse.beacon_state import BeaconState
from warehouse.state import State

UTC = timezone.utc
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
           "Safari/537.36")
GIF_BYTES = 43
GRAINS = ("hour", "day", "week", "month", "quarter", "year")


@pytest.fixture(scope="module")
def beacon(tmp_path_factory):
    """One API process with the beacon on for cask.co; its config, to look into its state database."""
    cfg = make_config(tmp_path_factory.mktemp("beacon-api"), beacon={"sites": ["cask.co"]})
    BeaconState(State(cfg)).salt("2020-01-01")          # an old day's salt, which must not survive
    server = start_api(cfg)
    yield cfg, server.base_url
    server.process.terminate()
    server.process.wait(10)


def inbox_hits(cfg) -> dict[str, dict]:
    with State(cfg).connection() as con:
        rows = con.execute("SELECT dedupe_key, body FROM inbox WHERE kind = 'beacon'").fetchall()
    return {row[0]: json.loads(bytes(row[1])) for row in rows}


def dropped(base_url: str) -> Counter:
    answer = requests.get(f"{base_url}/beacon/dropped", timeout=10).json()["dropped"]
    return Counter({row["reason"]: row["hits"] for row in answer if row["day"] == datetime.now(UTC).date().isoformat()})


def test_the_documented_event_is_stored_with_the_documented_fields(beacon):
    cfg, base_url = beacon
    body = {"site": "www.cask.co", "url": "https://www.cask.co/blog/launch?utm_source=newsletter&utm_campaign=may#top",
            "referrer": "https://www.google.com/search?q=cask", "visitor": "4f1c2a9e0b7d4c3f"}
    answer = requests.post(f"{base_url}/api/event", data=json.dumps(body),
                           headers={"User-Agent": BROWSER, "Content-Type": "text/plain"}, timeout=10)
    assert answer.status_code == 202 and answer.headers["access-control-allow-origin"] == "*"
    assert answer.json()["stored"] is True
    stored = inbox_hits(cfg)[answer.json()["hit"]]
    assert {k: stored[k] for k in ("site", "name", "path", "referrer", "visitor_id", "via", "utm_source",
                                   "utm_campaign", "utm_medium")} == {
        "site": "cask.co", "name": "pageview", "path": "/blog/launch", "referrer": "https://www.google.com/search",
        "visitor_id": "4f1c2a9e0b7d4c3f", "via": "event", "utm_source": "newsletter", "utm_campaign": "may",
        "utm_medium": None}
    assert abs(datetime.fromisoformat(stored["ts"]) - datetime.now(UTC)) < timedelta(seconds=30)
    # The same fields as query parameters; a custom event; utm_* fields override the url's.
    answer = requests.get(f"{base_url}/api/event", params={"url": "/pricing?utm_source=x", "site": "cask.co",
                                                           "name": "signup", "utm_source": "ads"},
                          headers={"User-Agent": BROWSER}, timeout=10)
    assert answer.status_code == 202
    stored = inbox_hits(cfg)[answer.json()["hit"]]
    assert (stored["name"], stored["path"], stored["utm_source"], stored["visitor_id"][:2]) == (
        "signup", "/pricing", "ads", "h:")


def test_the_pixel_answers_a_gif_and_hashes_visitors_without_keeping_the_ip(beacon):
    cfg, base_url = beacon

    def pixel(user_agent=BROWSER, ip="203.0.113.77", **params):
        return requests.get(f"{base_url}/b.gif", params={"site": "cask.co", **params},
                            headers={"User-Agent": user_agent, "X-Forwarded-For": ip}, timeout=10)

    first = pixel(url="/email/newsletter-2026-05", name="email_open", utm_source="newsletter")
    assert first.status_code == 200 and first.headers["content-type"] == "image/gif"
    assert len(first.content) == GIF_BYTES and first.content.startswith(b"GIF89a")
    assert "no-store" in first.headers["cache-control"]
    again, other_browser = pixel(url="/pricing"), pixel(url="/pricing", user_agent=BROWSER.replace("124", "125"))
    referer = requests.get(f"{base_url}/b.gif", headers={"User-Agent": BROWSER, "Referer": "https://cask.co/blog/x?a=1"},
                           timeout=10)
    hits = inbox_hits(cfg)
    ids = [hits[r.headers["x-caskalytics-hit"]] for r in (first, again, other_browser, referer)]
    assert ids[0]["visitor_id"].startswith("h:") and len(ids[0]["visitor_id"]) == 34
    assert ids[0]["visitor_id"] == ids[1]["visitor_id"] != ids[2]["visitor_id"]     # same IP + browser + site
    assert (ids[0]["name"], ids[0]["utm_source"], ids[0]["via"]) == ("email_open", "newsletter", "pixel")
    assert (ids[3]["site"], ids[3]["path"]) == ("cask.co", "/blog/x")               # the page from Referer
    with State(cfg).connection() as con:
        assert [r[0] for r in con.execute("SELECT day FROM beacon_salts").fetchall()] == [
            datetime.now(UTC).date().isoformat()]                                    # the old salt is gone
        con.execute("PRAGMA wal_checkpoint(FULL)")
    for name in ("state.sqlite", "state.sqlite-wal"):
        path = cfg.warehouse_dir / name
        assert not path.exists() or b"203.0.113.77" not in path.read_bytes()


@pytest.mark.parametrize("request_, status, reason", [
    ({"json": {"url": "https://someone-else.example/"}}, 403, "unknown_site"),
    ({"json": {"url": "/pricing", "site": "evil.example"}}, 403, "unknown_site"),
    ({"json": {"site": "cask.co"}}, 400, "invalid"),                                     # no url
    ({"json": {"url": "ftp://cask.co/file"}}, 400, "invalid"),
    ({"json": {"url": "/pricing"}}, 400, "invalid"),                                     # a path needs site
    ({"json": {"url": "https://cask.co/", "visitor": "short"}}, 400, "invalid"),
    ({"json": {"url": "https://cask.co/", "name": "has space"}}, 400, "invalid"),
    ({"json": {"url": 42}}, 400, "invalid"),
    ({"data": b"not json"}, 400, "invalid"),
    ({"data": b"[1, 2]"}, 400, "invalid"),
    ({"data": json.dumps({"url": "https://cask.co/", "referrer": "x" * 9000})}, 400, "invalid"),   # > 8 KB
    ({"data": b'{"url": "https://cask.co/", "referrer": "https://x.example/\\ud800"}'}, 400, "invalid"),
    ({"json": {"url": "https://cask.co/"}, "agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}, 202, "bot"),
    ({"json": {"url": "https://cask.co/"}, "agent": BROWSER.replace("Chrome/", "HeadlessChrome/")}, 202, "bot"),
    ({"json": {"url": "https://cask.co/"}, "agent": "curl/8.5.0"}, 202, "bot"),
    ({"json": {"url": "https://cask.co/"}, "agent": "python-requests/2.32.3"}, 202, "bot"),
    ({"json": {"url": "https://cask.co/"}, "agent": ""}, 202, "bot"),
], ids=["other-site", "other-site-param", "no-url", "ftp-url", "path-without-site", "short-visitor", "bad-name",
        "url-not-string", "not-json", "not-an-object", "too-large", "lone-surrogate", "googlebot", "headless-chrome", "curl",
        "python-requests", "no-user-agent"])
def test_refused_and_bot_hits_are_answered_counted_by_reason_and_never_stored(beacon, request_, status, reason):
    cfg, base_url = beacon
    before_hits, before_dropped = len(inbox_hits(cfg)), dropped(base_url)
    headers = {"User-Agent": request_.get("agent", BROWSER)}
    body = request_.get("data") or json.dumps(request_["json"])
    answer = requests.post(f"{base_url}/api/event", data=body, headers=headers, timeout=10)
    assert answer.status_code == status
    assert answer.json()["stored"] is False and answer.json()["dropped"] == reason
    params = request_.get("json") if isinstance(request_.get("json", {}).get("url", ""), str) else None
    if params is not None and "referrer" not in params:             # the pixel refuses the same way
        gif = requests.get(f"{base_url}/b.gif", params=params, headers=headers, timeout=10)
        assert gif.status_code == (200 if status < 400 else status) and len(gif.content) == GIF_BYTES
        assert gif.headers["x-caskalytics-dropped"] == reason
    assert len(inbox_hits(cfg)) == before_hits
    counted = dropped(base_url) - before_dropped
    assert counted == Counter({reason: 2 if params is not None and "referrer" not in params else 1})


def test_the_hit_paths_answer_other_methods_405_and_store_nothing(beacon):
    cfg, base_url = beacon
    before = len(inbox_hits(cfg))
    for method, path in (("PUT", "/b.gif"), ("DELETE", "/b.gif"), ("OPTIONS", "/b.gif"), ("PATCH", "/api/event"),
                         ("PUT", "/api/event")):
        answer = requests.request(method, f"{base_url}{path}?site=cask.co&url=/x", headers={"User-Agent": BROWSER},
                                  timeout=10)
        assert answer.status_code == 405, (method, path)
        assert "GET" in answer.headers["allow"] and "POST" in answer.headers["allow"]
    assert requests.head(f"{base_url}/b.gif?site=cask.co&url=/x", headers={"User-Agent": BROWSER},
                         timeout=10).status_code == 200
    assert len(inbox_hits(cfg)) == before
    assert requests.get(f"{base_url}/health", timeout=10).json()["status"] == "ok"   # the rest is FastAPI's


def test_a_hit_path_with_a_trailing_slash_or_behind_a_root_path_counts(beacon, tmp_path):
    cfg, base_url = beacon
    slash = requests.get(f"{base_url}/b.gif/", params={"site": "cask.co", "url": "/slash"},
                         headers={"User-Agent": BROWSER}, timeout=10)
    event = requests.post(f"{base_url}/api/event/", json={"url": "https://cask.co/slash-event"},
                          headers={"User-Agent": BROWSER}, timeout=10)
    assert (slash.status_code, event.status_code) == (200, 202)
    hits = inbox_hits(cfg)
    assert hits[slash.headers["x-caskalytics-hit"]]["path"] == "/slash"
    assert hits[event.json()["hit"]]["path"] == "/slash-event"
    proxied_cfg = make_config(tmp_path, beacon={"sites": ["cask.co"]})
    # Behind a proxy that serves the API at /analytics/ and strips the prefix: uvicorn puts it back in front
    # of the request's path.
    proxied = start_api(proxied_cfg, args=("--root-path", "/analytics"))
    try:
        gif = requests.get(f"{proxied.base_url}/b.gif", params={"site": "cask.co", "url": "/proxied"},
                           headers={"User-Agent": BROWSER}, timeout=10)
        assert gif.status_code == 200
        assert inbox_hits(proxied_cfg)[gif.headers["x-caskalytics-hit"]]["path"] == "/proxied"
    finally:
        proxied.process.terminate()
        proxied.process.wait(10)


@pytest.mark.parametrize("query", [
    b"", b"site=cask.co&url=/blog/a", b"url=%2Fblog%2Fa%3Fx%3D1&site=cask.co", b"name=a+b&url=/x%20y",
    b"a=1&a=2&&b&=v&c=", b"url=/%E2%82%AC&bad=%zz&half=%E2%82", b"k%3D=v%26w", b"utm_source=%F0%9F%98%80&x=+",
    "site=caf\u00e9.example".encode("latin-1"), b";a=1;b=2"])
def test_pixel_query_parameters_are_read_as_the_standard_library_reads_them(query):
    from urllib.parse import parse_qsl
    from api.beacon import _query
    first: dict[str, str] = {}
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        first.setdefault(key, value)
    assert _query(query) == first


def test_hit_times_are_the_utc_instant_to_the_microsecond():
    from api.beacon import utc_stamp
    for now in (0.0, 1_700_000_000.0, 1_700_000_000.000001, 1_700_000_000.5, 1_767_225_599.999999,
                1_767_225_600.25, time.time()):
        ts, day = utc_stamp(now)
        moment = datetime.fromisoformat(ts)
        assert abs((moment - datetime.fromtimestamp(now, UTC)).total_seconds()) < 2e-6, now
        assert moment.utcoffset() == timedelta(0) and day == moment.date().isoformat()


def test_a_beacon_that_is_not_configured_refuses_every_hit(tmp_path):
    edge = Edge(make_config(tmp_path))
    with pytest.raises(Drop) as refused:
        asyncio.run(edge.accept(Incoming("cask.co", "pageview", "/", None, None, {}), BROWSER, "127.0.0.1", "event"))
    assert (refused.value.reason, refused.value.status) == ("disabled", 404)


def test_the_snippet_counts_a_page_view_and_spa_navigation_in_a_real_browser(beacon):
    cfg, base_url = beacon
    script = requests.get(f"{base_url}/js/caskalytics.js", timeout=10)
    assert script.headers["content-type"].startswith("application/javascript")
    assert "LIFETIME_DAYS = 395;" in script.text and "__VISITOR" not in script.text
    preflight = requests.options(f"{base_url}/api/event", timeout=10)
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == "*"
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    spec = importlib.util.spec_from_file_location("headless", ROOT / "tests" / "dashboard" / "headless.py")
    headless = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(headless)
    page = (f'<html><head><script defer data-site="cask.co" src="{base_url}/js/caskalytics.js"></script></head>'
            f'<body>a blog post</body></html>').encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    page_url = f"http://127.0.0.1:{site.server_port}/blog/hello?utm_source=newsletter&utm_medium=email"
    before = set(inbox_hits(cfg))
    try:
        with headless.Chromium() as chrome:
            chrome.call("Emulation.setUserAgentOverride", userAgent=BROWSER)    # HeadlessChrome would be a bot
            chrome.call("Page.navigate", url=page_url)
            new = wait_for_hits(cfg, before, 1)
            chrome.evaluate("history.pushState({}, '', '/pricing'); history.pushState({}, '', '/pricing#plans'); 1")
            new = wait_for_hits(cfg, before, 2)
            stored_id = chrome.evaluate("JSON.parse(localStorage.getItem('caskalytics_vid')).id")
    finally:
        site.shutdown()
    first, second = sorted(new, key=lambda h: h["hit_id"])
    assert (first["path"], first["utm_source"], first["utm_medium"], first["referrer"]) == (
        "/blog/hello", "newsletter", "email", None)
    assert (second["path"], second["referrer"], second["utm_source"]) == (
        "/pricing", f"http://127.0.0.1:{site.server_port}/blog/hello", None)
    assert first["visitor_id"] == second["visitor_id"] == stored_id and len(stored_id) == 32
    assert first["site"] == second["site"] == "cask.co"


def wait_for_hits(cfg, before: set, count: int, seconds: float = 15) -> list[dict]:
    deadline = time.time() + seconds
    while time.time() < deadline:
        new = [hit for key, hit in inbox_hits(cfg).items() if key not in before]
        if len(new) >= count:
            time.sleep(0.5)            # nothing more should come
            new = [hit for key, hit in inbox_hits(cfg).items() if key not in before]
            assert len(new) == count
            return new
        time.sleep(0.1)
    raise AssertionError(f"{count} hits expected from the browser, got {len(new)}")


def test_hits_wait_for_a_writer_that_holds_the_state_database_and_are_all_stored(beacon):
    cfg, base_url = beacon
    holder = sqlite3.connect(cfg.warehouse_dir / "state.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")                  # another process writing (the scheduler's prune, say)
    answers: list[requests.Response] = []

    def send(n: int) -> None:
        answers.append(requests.post(f"{base_url}/api/event", json={"url": f"https://cask.co/locked/{n}"},
                                     headers={"User-Agent": BROWSER}, timeout=30))
    senders = [threading.Thread(target=send, args=(n,)) for n in range(6)]
    for thread in senders:
        thread.start()
    time.sleep(0.5)
    assert answers == []                               # nobody is told "stored" before it is
    holder.execute("COMMIT")
    holder.close()
    for thread in senders:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [202] * 6
    stored = inbox_hits(cfg)
    assert all(a.json()["hit"] in stored for a in answers)


# -- /awareness/webtraffic against a plain reading of the documented rules ---------------------------------
def bucket(ts: datetime, grain: str) -> datetime:
    ts = ts.replace(minute=0, second=0, microsecond=0)
    if grain == "hour":
        return ts
    day = ts.replace(hour=0)
    return {"day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1),
            "quarter": day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1),
            "year": day.replace(month=1, day=1)}[grain]


def documented_counts(hits: list[dict], grain: str, at: datetime) -> dict:
    """The README's rules, read plainly: sessions start after 30 minutes without a hit of the visitor;
    new = first hit ever in the bucket, returning = first hit in an earlier one; blog = page views under /blog/."""
    target = bucket(at, grain)
    by_visitor: dict[tuple, list] = {}
    for h in hits:
        by_visitor.setdefault((h["site"], h["visitor_id"]), []).append((h["ts"], h["hit_id"], h))
    sessions = new = returning = 0
    for visits in by_visitor.values():
        visits.sort()
        first = bucket(visits[0][0], grain)
        previous = None
        for ts, _, _ in visits:
            if (previous is None or ts - previous >= timedelta(minutes=30)) and bucket(ts, grain) == target:
                sessions += 1
            previous = ts
        if any(bucket(ts, grain) == target for ts, _, _ in visits):
            new += first == target
            returning += first < target
    blog = sum(1 for h in hits if h["name"] == "pageview" and h["path"].startswith("/blog/")
               and bucket(h["ts"], grain) == target)
    return {"sessions": sessions, "newVisitors": new, "returningVisitors": returning, "blogViewers": blog}


def test_webtraffic_answers_the_contract_at_all_six_grains(beacon):
    cfg, base_url = beacon
    now = datetime.now(UTC)
    # A visitor first seen yesterday (a back-dated hit straight into the inbox) who comes back today.
    earlier = Hit("webtraffic-earlier", (now - timedelta(days=1)).isoformat(), "cask.co", "pageview", "/",
                  "returner-0001", "event")
    State(cfg).receive_many("beacon", [(earlier.hit_id, {}, encode(earlier))])
    for visitor, path in [("returner-0001", "/blog/a"), ("returner-0001", "/pricing"), ("newcomer-0001", "/blog/b"),
                          ("newcomer-0002", "/blog")]:
        requests.post(f"{base_url}/api/event", json={"url": f"https://cask.co{path}", "visitor": visitor},
                      headers={"User-Agent": BROWSER}, timeout=10).raise_for_status()
    requests.get(f"{base_url}/b.gif", params={"site": "cask.co", "url": "/blog/c"},
                 headers={"User-Agent": BROWSER, "X-Forwarded-For": "198.51.100.9"}, timeout=10).raise_for_status()
    writer = Writer(cfg)
    try:
        drain_inbox(writer)
        run_source(writer, "beacon")
        hits = [{**dict(zip(("hit_id", "ts", "site", "name", "path", "visitor_id"), row))} for row in writer.con.execute(
            "SELECT hit_id, ts, site, name, path, visitor_id FROM lake.raw_beacon").fetchall()]
    finally:
        writer.close()
    catalog = {m["name"]: m["kind"] for m in requests.get(f"{base_url}/metrics", timeout=10).json()["metrics"]}
    assert catalog["web.visitors"] == "distinct" and catalog["web.blog_views"] == "counter"
    latest = max(h["ts"] for h in hits)
    for grain in GRAINS:
        at = latest.strftime("%Y-%m-%dT%H:00") if grain == "hour" else latest.date().isoformat()
        answer = requests.get(f"{base_url}/awareness/webtraffic/{grain}", params={"at": at}, timeout=10).json()
        assert set(answer) == {"start", "end", "sessions", "newVisitors", "returningVisitors", "blogViewers"}
        start = bucket(latest, grain)
        assert answer["start"] == (start.strftime("%Y-%m-%dT%H:%M") if grain == "hour" else start.date().isoformat())
        assert {k: answer[k] for k in ("sessions", "newVisitors", "returningVisitors", "blogViewers")} == \
            documented_counts(hits, grain, latest), grain
        if grain == "day":
            assert answer["returningVisitors"] >= 1 and answer["newVisitors"] >= 3 and answer["blogViewers"] >= 3
    empty = requests.get(f"{base_url}/awareness/webtraffic/month", params={"at": "2020-02-10"}, timeout=10).json()
    assert empty == {"start": "2020-02-01", "end": "2020-02-29", "sessions": 0, "newVisitors": 0,
                     "returningVisitors": 0, "blogViewers": 0}


# -- durability --------------------------------------------------------------------------------------------
def test_every_hit_answered_2xx_survives_a_sigkill_under_load_and_is_stored_once(tmp_path):
    cfg = make_config(tmp_path, beacon={"sites": ["cask.co"]})
    server = start_api(cfg)
    acknowledged: list[str] = []
    stop = threading.Event()

    def client(number: int) -> None:
        with requests.Session() as session:
            for n in range(100_000):
                if stop.is_set():
                    return
                try:
                    if n % 2:
                        answer = session.get(f"{server.base_url}/b.gif", params={"site": "cask.co",
                                             "url": f"/load/{number}/{n}"}, headers={"User-Agent": BROWSER}, timeout=5)
                        hit_id = answer.headers.get("x-caskalytics-hit")
                    else:
                        answer = session.post(f"{server.base_url}/api/event", json={
                            "url": f"https://cask.co/load/{number}/{n}", "visitor": f"load-visitor-{number}"},
                            headers={"User-Agent": BROWSER}, timeout=5)
                        hit_id = answer.json().get("hit") if answer.status_code == 202 else None
                except (requests.RequestException, ValueError):
                    return                         # the server is gone
                if 200 <= answer.status_code < 300 and hit_id:
                    acknowledged.append(hit_id)

    clients = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for thread in clients:
        thread.start()
    deadline = time.time() + 30
    while len(acknowledged) < 300 and time.time() < deadline:     # well into the load
        time.sleep(0.05)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(10)
    for thread in clients:
        thread.join(10)
    stop.set()
    assert len(acknowledged) >= 300

    with sqlite3.connect(cfg.warehouse_dir / "state.sqlite") as con:      # group commit: shared transactions
        largest_group = con.execute("SELECT max(n) FROM (SELECT count(*) AS n FROM inbox GROUP BY received_at)").fetchone()[0]
    assert largest_group > 1

    restarted = start_api(cfg)                     # the API comes back on the same state database
    try:
        after = requests.post(f"{restarted.base_url}/api/event", json={"url": "https://cask.co/after"},
                              headers={"User-Agent": BROWSER}, timeout=10)
        assert after.status_code == 202
        acknowledged.append(after.json()["hit"])
    finally:
        restarted.process.terminate()
        restarted.process.wait(10)

    writer = Writer(cfg)
    try:
        drain_inbox(writer)
        assert drain_inbox(writer).records == 0
        rows, distinct = writer.con.execute("SELECT count(*), count(DISTINCT hit_id) FROM lake.raw_beacon").fetchone()
        stored = {r[0] for r in writer.con.execute("SELECT hit_id FROM lake.raw_beacon").fetchall()}
    finally:
        writer.close()
    assert rows == distinct                                   # none twice
    assert set(acknowledged) <= stored                        # every 2xx is in the warehouse
    assert len(stored) - len(set(acknowledged)) <= 12         # at most the requests in flight at the kill


def test_the_beacon_docs_name_every_field_drop_reason_and_setting():
    from api.beacon import UTM_FIELDS
    from collectors.beacon import BeaconConfig
    from config import SourceConfig
    section = (ROOT / "docs" / "beacon.md").read_text()
    for field in ("url", "site", "name", "referrer", "visitor", *UTM_FIELDS):
        assert f"`{field}`" in section, field
    for reason in ("invalid", "disabled", "unknown_site", "bot", "store_failed"):
        assert f"`{reason}`" in section, reason
    for key in set(BeaconConfig.model_fields) - set(SourceConfig.model_fields) | {"schedule", "history_days"}:
        assert f"`{key}`" in section, key
    for path in ("/api/event", "/b.gif", "/js/caskalytics.js", "/beacon/dropped", "/awareness/webtraffic/{period}"):
        assert path in section, path
