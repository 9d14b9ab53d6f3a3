"""The X (Twitter) collector against the X API v2 simulator over real HTTP through tweepy, into a real
warehouse: each poll stores every account's follower count and their sum at the API's clock, accounts X
cannot find or has suspended are quarantined while the others are stored, rate limits are waited out by
`Retry-After` or `x-rate-limit-reset`, server errors and timeouts are retried, operator errors name the
config key, and a 30-day outage leaves no duplicate and carries the gauge across the gap."""
from __future__ import annotations

import json
import time as clock
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
from requests.adapters import HTTPAdapter

from collectors.base import SourceError
from collectors.twitter import RouteToBaseUrl, new_client
from collectors.twitter import TwitterConfig
from conftest import FIXTURES, make_config
from warehouse.writer import Writer
from scheduler import run_source
from simulators.twitter import TwitterSimulator
from warehouse import queries
from warehouse.lake import Reader
from warehouse.state import State

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ACCOUNTS = ["caskdata", "cdapio"]
TOKEN_ENV = "TW_TEST_BEARER_TOKEN"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAsimulated%2Fbearer"


@pytest.fixture
def sim():
    with TwitterSimulator(ACCOUNTS, now=NOW, token=TOKEN, suspended=("gone_account",)) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def twitter_config(tmp_path, sim, accounts=ACCOUNTS, **settings):
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_config(tmp_path, twitter={"accounts": list(accounts), "api_url": sim.url,
                                          "bearer_token_env": TOKEN_ENV, **settings})


def stored(writer) -> list[tuple]:
    return writer.con.execute("SELECT ts, metric, dims, value FROM lake.raw_twitter "
                              "ORDER BY ts, metric, dims").fetchall()


def daily(cfg, first: date, last: date) -> dict[str, float]:
    reader = Reader(cfg)
    try:
        request = queries.SeriesRequest("twitter.followers", "day", first, last)
        answer = queries.metric_series(reader.cursor(), cfg, request)
    finally:
        reader.close()
    return {p["start"]: p["value"] for p in answer["points"]}


def test_a_poll_stores_each_account_and_the_total_at_the_api_clock(tmp_path, sim):
    writer = Writer(twitter_config(tmp_path, sim))
    try:
        summary = run_source(writer, "twitter")
        assert summary.quarantined == 0
        assert sim.requests == ["/2/users/by?user.fields=public_metrics&usernames=caskdata%2Ccdapio"]
        counts = {name: sim.followers(name) for name in ACCOUNTS}
        assert stored(writer) == sorted([
            (NOW, "twitter.account_followers", json.dumps({"account": name}, separators=(",", ":")), count)
            for name, count in counts.items()] + [(NOW, "twitter.followers", "{}", sum(counts.values()))])
        assert daily(writer.cfg, NOW.date(), NOW.date()) == {"2026-03-02": sum(counts.values())}

        again = run_source(writer, "twitter")          # the same moment by X's clock: the same observation
        assert again.inserted == 0
    finally:
        writer.close()


def test_unknown_and_suspended_accounts_are_quarantined_and_the_rest_stored(tmp_path, sim):
    writer = Writer(twitter_config(tmp_path, sim, accounts=["caskdata", "TwitterDec", "gone_account"]))
    try:
        summary = run_source(writer, "twitter")
        assert summary.quarantined == 2
        reasons = sorted(r[0] for r in writer.con.execute("SELECT reason FROM lake.quarantine").fetchall())
        assert reasons == ["X account not collected: Could not find user with username: [TwitterDec].",
                           "X account not collected: User has been suspended: [gone_account]."]
        assert daily(writer.cfg, NOW.date(), NOW.date()) == {"2026-03-02": sim.followers("caskdata")}
        assert State(writer.cfg).recent_runs("twitter")[0]["status"] == "ok"

        # An item X documents differently (a count that is not a number) is quarantined on its own.
        sim.injected_users.append({"id": "1", "username": "odd", "name": "Odd",
                                   "public_metrics": {"followers_count": "many"}})
        sim.set_time(NOW + timedelta(hours=1))
        assert run_source(writer, "twitter").quarantined == 3
    finally:
        writer.close()


def test_no_account_found_fails_the_run_naming_the_accounts_key(tmp_path, sim):
    writer = Writer(twitter_config(tmp_path, sim, accounts=["TwitterDec"]))
    try:
        with pytest.raises(SourceError, match=r"\[sources.twitter\] accounts"):
            run_source(writer, "twitter")
        assert writer.con.execute("SELECT count(*) FROM lake.quarantine").fetchone()[0] == 1
    finally:
        writer.close()


def test_rate_limits_server_errors_and_timeouts_are_retried(tmp_path, sim):
    sim.inject_faults(1, status=429, reset_in=1)             # X's usual 429: only x-rate-limit-reset
    sim.inject_faults(1, status=429, retry_after=1)
    sim.inject_faults(1, status=503)
    writer = Writer(twitter_config(tmp_path, sim, timeout_seconds=1))
    try:
        started = clock.monotonic()
        summary = run_source(writer, "twitter")
        assert clock.monotonic() - started >= 2.0           # both waits were honoured
        assert not sim.faults and summary.inserted == 3

        sim.inject_faults(1, status=0)                       # a dropped connection
        sim.inject_faults(1, status=-1, seconds=2)           # a server slower than timeout_seconds
        sim.set_time(NOW + timedelta(hours=1))
        assert run_source(writer, "twitter").inserted == 3 and not sim.faults
        assert [r["status"] for r in State(writer.cfg).recent_runs("twitter")] == ["ok", "ok"]
    finally:
        writer.close()


def test_a_used_up_rate_limit_fails_the_run_until_its_reset(tmp_path, sim):
    sim.rate_limit_outage(until=NOW + timedelta(minutes=15))
    writer = Writer(twitter_config(tmp_path, sim))
    try:
        with pytest.raises(SourceError, match="rate limit is used up until 15:15 UTC"):
            run_source(writer, "twitter")
        sim.set_time(NOW + timedelta(minutes=16))
        run_source(writer, "twitter")
        assert [r["status"] for r in State(writer.cfg).recent_runs("twitter")][:2] == ["ok", "failed"]
    finally:
        writer.close()


def test_a_refused_token_names_bearer_token_env_and_is_not_logged(tmp_path, sim, monkeypatch):
    writer = Writer(twitter_config(tmp_path, sim))
    try:
        monkeypatch.setenv(TOKEN_ENV, "revoked-token")
        with pytest.raises(SourceError, match=rf"401 Unauthorized.*bearer_token_env \(\${TOKEN_ENV}\)"):
            run_source(writer, "twitter")
        assert "revoked-token" not in State(writer.cfg).recent_runs("twitter")[0]["error"]
        monkeypatch.delenv(TOKEN_ENV)
        with pytest.raises(SourceError, match="bearer token missing"):
            run_source(writer, "twitter")
    finally:
        writer.close()


def test_a_30_day_outage_leaves_no_duplicate_and_carries_the_gauge_across_the_gap(tmp_path, sim):
    """X has no follower history, so a snapshot-only source cannot catch up: a count missed during an outage
    is gone, and the series starts at the first poll. What the restart must guarantee instead, and what this
    asserts: the warehouse holds exactly the polls that happened, each once (a run retried at the same
    moment by X's clock stores nothing; nothing is invented for the missed days), the day series carries
    the last count before the outage across the 30 days of the gap (a gauge never drops to 0 for want of a
    poll), and after the restart it shows the current count."""
    writer = Writer(twitter_config(tmp_path, sim))
    try:
        restart = NOW + timedelta(days=31)
        for moment in (NOW, restart, restart):
            sim.set_time(moment)
            run_source(writer, "twitter")

        assert [(row[0], row[1]) for row in stored(writer)] == [
            (moment, metric) for moment in (NOW, restart)
            for metric in ("twitter.account_followers", "twitter.account_followers", "twitter.followers")]
        before = sum(sim.followers(name, NOW) for name in ACCOUNTS)
        after = sum(sim.followers(name, restart) for name in ACCOUNTS)
        assert list(daily(writer.cfg, NOW.date(), restart.date()).values()) == [before] * 31 + [after]
        assert before != after
    finally:
        writer.close()


def test_backfill_has_nothing_to_read_and_is_not_a_failure(tmp_path, sim):
    writer = Writer(twitter_config(tmp_path, sim))
    try:
        summary = run_source(writer, "twitter", start=date(2026, 1, 1), end=date(2026, 1, 31))
        assert summary.batches == 0 and not sim.requests
        assert State(writer.cfg).recent_runs("twitter")[0]["status"] == "ok"
    finally:
        writer.close()


def test_only_a_non_default_base_url_is_rerouted(sim):
    production = new_client(TwitterConfig(accounts=["caskdata"]), "token")
    assert type(production.session.get_adapter("https://api.twitter.com/2/users/by")) is HTTPAdapter
    routed = new_client(TwitterConfig(accounts=["caskdata"], api_url=sim.url), "token")
    assert isinstance(routed.session.get_adapter("https://api.twitter.com/2/users/by"), RouteToBaseUrl)
    assert type(routed.session.get_adapter("https://example.com/")) is HTTPAdapter


def test_the_simulator_answers_in_the_shapes_of_the_recorded_fixtures(sim):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    fixtures = FIXTURES / "api_responses"
    partial = json.loads((fixtures / "twitter_v2_users_by_partial_error.json").read_text())
    answer = requests.get(f"{sim.url}/2/users/by", params={"usernames": "caskdata,TwitterDec",
                                                           "user.fields": "public_metrics"},
                          headers=auth, timeout=10).json()
    assert answer.keys() == partial.keys()
    assert answer["data"][0].keys() == partial["data"][0].keys()
    assert answer["data"][0]["public_metrics"].keys() >= partial["data"][0]["public_metrics"].keys()
    assert answer["errors"] == partial["errors"]
    single = json.loads((fixtures / "twitter_v2_user_by_username_single.json").read_text())
    one = requests.get(f"{sim.url}/2/users/by/username/cdapio", params={"user.fields": "public_metrics"},
                       headers=auth, timeout=10).json()
    assert one.keys() == single.keys() and one["data"].keys() == single["data"].keys()
    unauthorized = requests.get(f"{sim.url}/2/users/by", params={"usernames": "caskdata"}, timeout=10)
    assert unauthorized.status_code == 401 and unauthorized.json()["title"] == "Unauthorized"
