"""`/awareness/socialmedia/subscribers` and the `/metrics/{metric}` series of youtube.views, youtube.subscribers and
twitter.followers at every grain, over real HTTP against a warehouse filled by the real YouTube and X
collectors from their simulators."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from conftest import make_config, start_api
from warehouse.writer import Writer
from scheduler import run_source
from simulators.twitter import TwitterSimulator
from simulators.youtube import YouTubeSimulator

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
FIRST_DAY = date(2026, 1, 21)                        # history_days = 40 before 2026-03-02
ENV = {"SOCIAL_YT_CLIENT_ID": "client", "SOCIAL_YT_CLIENT_SECRET": "secret", "SOCIAL_YT_REFRESH_TOKEN": "refresh",
       "SOCIAL_X_TOKEN": "bearer"}
GRAINS = ("hour", "day", "week", "month", "quarter", "year")


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """One warehouse with 40 days of YouTube history and two X polls (yesterday and today), served by the API."""
    tmp = tmp_path_factory.mktemp("social-api")
    youtube = YouTubeSimulator(now=NOW, client_id="client", client_secret="secret", refresh_token="refresh").start()
    twitter = TwitterSimulator(["caskdata", "cdapio"], now=NOW - timedelta(days=1), token="bearer").start()
    cfg = make_config(tmp, youtube={
        "analytics_url": youtube.url, "data_api_url": youtube.url, "token_url": f"{youtube.url}/token",
        "client_id_env": "SOCIAL_YT_CLIENT_ID", "client_secret_env": "SOCIAL_YT_CLIENT_SECRET",
        "refresh_token_env": "SOCIAL_YT_REFRESH_TOKEN", "history_days": 40},
        twitter={"accounts": ["caskdata", "cdapio"], "api_url": twitter.url, "bearer_token_env": "SOCIAL_X_TOKEN"})
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENV.items():
            env.setenv(name, value)
        writer = Writer(cfg)
        run_source(writer, "youtube")
        run_source(writer, "twitter")
        twitter.set_time(NOW)
        run_source(writer, "twitter")
        views = dict(writer.con.execute("SELECT ts::DATE, arg_max(value, fetched_at) FROM lake.raw_youtube "
                                        "WHERE metric = 'youtube.views' GROUP BY ALL").fetchall())
        writer.close()
    truth = {"views": views, "subscribers": youtube.counts()[0],
             "followers": [sum(twitter.followers(a, moment) for a in ("caskdata", "cdapio"))
                           for moment in (NOW - timedelta(days=1), NOW)]}
    youtube.stop()
    twitter.stop()
    server = start_api(cfg)
    yield server.base_url, truth
    server.process.terminate()
    server.process.wait(10)


def get(base_url: str, path: str, **params) -> dict:
    response = requests.get(base_url + path, params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_socialmedia_subscribers(filled):
    base_url, truth = filled
    assert get(base_url, "/awareness/socialmedia/subscribers") == {
        "youtube": {"views": sum(truth["views"].values()), "subscribers": truth["subscribers"]},
        "linkedin": None,                               # its collector has not run in this warehouse
        "twitter": truth["followers"][-1]}


def test_the_catalog_lists_the_social_metrics(filled):
    base_url, _ = filled
    catalog = {m["name"]: m for m in get(base_url, "/metrics")["metrics"]}
    assert {name: (catalog[name]["kind"], catalog[name]["dims"]) for name in
            ("youtube.views", "youtube.subscribers", "twitter.followers")} == {
        "youtube.views": ("counter", []), "youtube.subscribers": ("gauge", []), "twitter.followers": ("gauge", [])}


def _bucket(day: date, grain: str) -> str:
    return {"day": day, "week": day - timedelta(days=day.weekday()), "month": day.replace(day=1),
            "quarter": day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1),
            "year": day.replace(month=1, day=1)}[grain].isoformat()


@pytest.mark.parametrize("grain", GRAINS)
def test_series_at_every_grain(filled, grain):
    base_url, truth = filled
    first, last = (date(2026, 2, 25), date(2026, 2, 25)) if grain == "hour" else (FIRST_DAY, NOW.date())
    views = get(base_url, "/metrics/youtube.views", grain=grain, **{"from": first.isoformat(), "to": last.isoformat()})
    assert (views["metric"], views["grain"], views["kind"]) == ("youtube.views", grain, "counter")
    if grain == "hour":                                 # a daily value sits at 12:00 UTC of its day
        assert [p["value"] for p in views["points"]] == [0] * 12 + [truth["views"][first]] + [0] * 11
    else:
        expected: dict[str, float] = {}
        for day, value in truth["views"].items():
            expected[_bucket(day, grain)] = expected.get(_bucket(day, grain), 0) + value
        assert {p["start"]: p["value"] for p in views["points"]} == {
            start: expected.get(start, 0) for start in (p["start"] for p in views["points"])}

    subscribers = get(base_url, "/metrics/youtube.subscribers", grain=grain, to=NOW.date().isoformat())
    assert subscribers["kind"] == "gauge" and subscribers["points"][-1]["value"] == truth["subscribers"]
    followers = get(base_url, "/metrics/twitter.followers", grain=grain, to=NOW.date().isoformat())
    assert followers["kind"] == "gauge" and followers["points"][-1]["value"] == truth["followers"][-1]
    if grain == "day":
        assert [p["value"] for p in followers["points"][-2:]] == truth["followers"]
