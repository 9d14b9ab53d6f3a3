"""The read endpoints over real HTTP against a real warehouse filled by the real S3 collector."""
from __future__ import annotations

import boto3
import pytest
import requests

from conftest import make_config, start_api
from warehouse.writer import Writer
from scheduler import run_source
from tests_support import put_logs


@pytest.fixture(scope="module")
def api(moto_endpoint, tmp_path_factory):
    """One warehouse filled through the real S3 collector, served by one real API process."""
    tmp = tmp_path_factory.mktemp("read-api")
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket="read-api-logs")
    put_logs(client, "read-api-logs", "logs/2026-03-02-23-00-00-A", [
        ("02/Mar/2026:10:00:00", "R1", "6.9.0", 200), ("02/Mar/2026:11:00:00", "R2", "6.9.0", 200),
        ("04/Mar/2026:11:00:00", "R3", "6.8.0", 200), ("04/Mar/2026:11:00:00", "R4", "6.8.0", 304)])
    cfg = make_config(tmp, s3_access_logs={"bucket": "read-api-logs", "endpoint_url": moto_endpoint,
                                           "access_key_id_env": "TEST_AWS_KEY", "secret_access_key_env": "TEST_AWS_SECRET"})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TEST_AWS_KEY", "testing")
        env.setenv("TEST_AWS_SECRET", "testing")
        env.delenv("AWS_CA_BUNDLE", raising=False)
        writer = Writer(cfg)
        run_source(writer, "s3_access_logs")
        writer.close()
    server = start_api(cfg)
    yield server
    server.process.terminate()
    server.process.wait(10)


def test_health_and_catalog(api):
    health = requests.get(f"{api.base_url}/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["sources"]["s3_access_logs"]["consecutive_failures"] == 0
    catalog = {m["name"]: m for m in requests.get(f"{api.base_url}/metrics", timeout=10).json()["metrics"]}
    assert catalog["downloads"]["kind"] == "counter"
    assert catalog["github.stars"]["kind"] == "gauge"
    assert set(catalog["downloads"]["dims"]) == {"version", "artifact"}


def test_metric_series_contract(api):
    series = requests.get(f"{api.base_url}/metrics/downloads",
                          params={"grain": "day", "from": "2026-03-01", "to": "2026-03-05"}, timeout=10).json()
    assert {k: series[k] for k in ("metric", "grain", "kind")} == {"metric": "downloads", "grain": "day",
                                                                   "kind": "counter"}
    assert [(p["start"], p["value"]) for p in series["points"]] == [
        ("2026-03-01", 0), ("2026-03-02", 2), ("2026-03-03", 0), ("2026-03-04", 1), ("2026-03-05", 0)]
    split = requests.get(f"{api.base_url}/metrics/downloads",
                         params={"grain": "week", "from": "2026-03-01", "to": "2026-03-08", "by": "version"},
                         timeout=10).json()
    assert {s["dims"]["version"]: [p["value"] for p in s["points"]] for s in split["series"]} == {
        "6.8.0": [0, 1], "6.9.0": [0, 2]}
    assert [p["start"] for p in split["series"][0]["points"]] == ["2026-02-23", "2026-03-02"]
    filtered = requests.get(f"{api.base_url}/metrics/downloads",
                            params=[("grain", "month"), ("from", "2026-03-01"), ("to", "2026-03-31"),
                                    ("where", "version:6.9.0")], timeout=10).json()
    # March has ended, but the logs stop on 03-04: nothing says March's count is final yet
    assert filtered["points"] == [{"start": "2026-03-01", "period": "2026-03", "value": 2, "complete": False}]
    hourly = requests.get(f"{api.base_url}/metrics/downloads",
                          params={"grain": "hour", "from": "2026-03-02", "to": "2026-03-02", "compare": "wow"},
                          timeout=10).json()
    assert len(hourly["points"]) == 24 and hourly["points"][10] == {
        "start": "2026-03-02T10:00", "period": "2026-03-02 10:00", "value": 1, "previous": 0, "complete": True}


def test_adoption_downloads(api):
    everything = requests.get(f"{api.base_url}/adoption/downloads", timeout=10).json()
    assert everything == {"downloads": [{"version": "6.9.0", "dl": 2}, {"version": "6.8.0", "dl": 1}]}
    one_day = requests.get(f"{api.base_url}/adoption/downloads", params={"from": "2026-03-04", "to": "2026-03-04"},
                           timeout=10).json()
    assert one_day == {"downloads": [{"version": "6.8.0", "dl": 1}]}


def test_bad_questions_get_a_clear_4xx(api):
    cases = {"/metrics/no.such.metric": "unknown metric", "/metrics/downloads?grain=fortnight": "grain must be",
             "/metrics/downloads?grain=month&compare=wow": "compare=wow",
             "/metrics/downloads?where=colour:red": "no dimension",
             "/metrics/downloads?from=2026-03-05&to=2026-03-01": "after",
             "/adoption/downloads?from=yesterday": ""}
    for path, words in cases.items():
        answer = requests.get(api.base_url + path, timeout=10)
        assert 400 <= answer.status_code < 500, path
        assert words in answer.text, (path, answer.text)


def test_read_endpoints_require_the_token_when_configured(tmp_path, api_server):
    cfg = make_config(tmp_path)
    Writer(cfg).close()
    api = api_server(cfg, {"CASKALYTICS_API_TOKEN": "s3cret"})
    assert requests.get(f"{api.base_url}/metrics", timeout=10).status_code == 401
    assert requests.get(f"{api.base_url}/metrics", headers={"Authorization": "Bearer s3cret"},
                        timeout=10).status_code == 200
    assert requests.get(f"{api.base_url}/health", timeout=10).status_code == 200
