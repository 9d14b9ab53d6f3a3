"""The awareness endpoints and metric series of linkedin, meltwater and seo over real HTTP, on one warehouse
filled by the real collectors from their simulators: `/awareness/seo` is the latest share of voice by brand
(summing to 100), `/awareness/socialmedia/subscribers` carries the exact LinkedIn count, and every grain of
`/metrics/{metric}` agrees with the days (gauges: the value at the end of the bucket; counters: the sum)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from conftest import make_config, start_api
from warehouse.writer import Writer
from scheduler import run_source
from simulators.linkedin import LinkedInSimulator
from simulators.meltwater import MeltwaterSimulator
from simulators.seo import SeoSimulator

UTC = timezone.utc
NOW = datetime(2026, 5, 20, 14, 0, tzinfo=UTC)            # 10:00 in New York
ZONE = "America/New_York"
GRAINS = ("hour", "day", "week", "month", "quarter", "year")
SEO_BRANDS = {"cask": ["cask.co", "cdap.io"], "informatica": ["informatica.com"], "talend": ["talend.com"],
              "fivetran": ["fivetran.com"]}
SECRETS = {"AWARENESS_TEST_LINKEDIN": "li-token", "AWARENESS_TEST_MELTWATER": "mw-key", "AWARENESS_TEST_SEO": "seo-key"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One warehouse filled by the three collectors, served by one API process; and the simulators."""
    tmp = tmp_path_factory.mktemp("awareness-api")
    linkedin = LinkedInSimulator(["2414183"], now=NOW, token="li-token").start()
    meltwater = MeltwaterSimulator({27558: "cask", 27559: "informatica"}, now=NOW, api_key="mw-key").start()
    seo = SeoSimulator("cask-competitors", now=NOW, api_key="seo-key").start()
    cfg = make_config(
        tmp, timezone=ZONE,
        linkedin={"organization_id": "2414183", "api_url": linkedin.url, "access_token_env": "AWARENESS_TEST_LINKEDIN",
                  "linkedin_version": "202604", "history_days": 14, "chunk_days": 14},
        meltwater={"brands": {"cask": "27558", "informatica": "27559"}, "api_url": meltwater.url,
                   "api_key_env": "AWARENESS_TEST_MELTWATER", "history_days": 14, "chunk_days": 14},
        seo={"brands": SEO_BRANDS, "api_url": seo.url, "api_key_env": "AWARENESS_TEST_SEO",
             "project": "cask-competitors", "history_days": 14, "chunk_days": 14})
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in SECRETS.items():
                env.setenv(name, value)
            writer = Writer(cfg)
            for source in ("linkedin", "meltwater", "seo"):
                run_source(writer, source)
            writer.close()
        server = start_api(cfg)
        try:
            yield server.base_url, linkedin, meltwater, seo
        finally:
            server.process.terminate()
            server.process.wait(10)
    finally:
        for sim in (linkedin, meltwater, seo):
            sim.stop()


def get(base_url: str, path: str, **params):
    response = requests.get(base_url + path, params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_seo_answers_the_latest_share_of_voice_by_brand(served):
    base_url, *_ = served
    answer = get(base_url, "/awareness/seo")
    assert set(answer) == set(SEO_BRANDS)
    assert sum(answer.values()) == pytest.approx(100)
    assert all(0 < share < 100 for share in answer.values())
    newest = get(base_url, "/metrics/seo.share_of_voice", grain="day", by="brand", **{"from": "2026-05-20",
                                                                                     "to": "2026-05-20"})
    assert answer == {s["dims"]["brand"]: s["points"][-1]["value"] for s in newest["series"]}


def test_social_media_subscribers_carry_the_exact_linkedin_count(served):
    base_url, linkedin, *_ = served
    answer = get(base_url, "/awareness/socialmedia/subscribers")
    assert answer["linkedin"] == linkedin.histories["2414183"].followers_at(NOW)
    # not collected here: unknown, not 0
    assert answer["youtube"] == {"views": None, "subscribers": None} and answer["twitter"] is None


def test_the_catalog_lists_the_awareness_metrics(served):
    base_url, *_ = served
    catalog = {m["name"]: m for m in get(base_url, "/metrics")["metrics"]}
    assert (catalog["linkedin.followers"]["kind"], catalog["linkedin.followers"]["dims"]) == ("gauge", [])
    assert (catalog["meltwater.mentions"]["kind"], catalog["meltwater.mentions"]["dims"]) == ("counter", ["brand"])
    assert (catalog["seo.share_of_voice"]["kind"], catalog["seo.share_of_voice"]["dims"]) == ("gauge", ["brand"])


@pytest.mark.parametrize("grain", GRAINS)
def test_every_grain_agrees_with_the_days(served, grain):
    base_url, linkedin, *_ = served
    span = {"from": "2026-05-01", "to": "2026-05-20"}
    followers = get(base_url, "/metrics/linkedin.followers", grain=grain, **span)
    assert followers["kind"] == "gauge"
    assert followers["points"][-1]["value"] == linkedin.histories["2414183"].followers_at(NOW)

    days = get(base_url, "/metrics/meltwater.mentions", grain="day", by="brand", **span)
    mentions = get(base_url, "/metrics/meltwater.mentions", grain=grain, by="brand", **span)
    for by_day, by_grain in zip(days["series"], mentions["series"]):
        assert by_grain["dims"] == by_day["dims"]
        assert sum(p["value"] for p in by_grain["points"]) == sum(p["value"] for p in by_day["points"]) > 0

    shares = get(base_url, "/metrics/seo.share_of_voice", grain=grain, by="brand", **span)
    by_bucket: dict[str, list] = {}
    for series in shares["series"]:
        for point in series["points"]:
            by_bucket.setdefault(point["start"], []).append(point["value"])
    # before the first ranking every brand's share is null (unknown), after it they add up to 100
    assert by_bucket and all(set(v) == {None} or sum(v) == pytest.approx(100) for v in by_bucket.values())
    assert sum(list(by_bucket.values())[-1]) == pytest.approx(100)
    assert all(isinstance(v, float) for values in by_bucket.values() for v in values if v is not None)


def test_week_over_week_compares_mentions_with_seven_days_earlier(served):
    base_url, *_ = served
    answer = get(base_url, "/metrics/meltwater.mentions", grain="day", compare="wow", where="brand:cask",
                 **{"from": "2026-05-14", "to": "2026-05-20"})
    by_day = {p["start"]: p["value"] for p in get(base_url, "/metrics/meltwater.mentions", grain="day",
                                                  where="brand:cask", **{"from": "2026-05-07",
                                                                         "to": "2026-05-20"})["points"]}
    for point in answer["points"]:
        earlier = (date.fromisoformat(point["start"]) - timedelta(days=7)).isoformat()
        assert point["previous"] == by_day[earlier]
