"""Data out over real HTTP (a uvicorn process on a real lake, the bearer token set): read-only SQL, exports in
every format parsed back with an independent reader and compared with `/metrics`, table exports over local
days, the one error shape, the token on every non-public route, and `/docs` without the internet.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
from tableauhyperapi import Connection, TableName

import collectors
from conftest import ROOT, free_port, wait_for_port
from warehouse import export as export_module

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))
import lakefill  # noqa: E402  (tests/dashboard's builder of small real lakes)

TOKEN = "t0ken-for-data-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ZONE = "America/New_York"
START = datetime(2026, 1, 1, 5, 0, tzinfo=timezone.utc)       # local midnight in New York
VERSIONS = ["6.9.0", "6.8.0", "6.10.0"]
FORMATS = ["csv", "parquet", "ndjson", "xlsx", "hyper"]


def downloads() -> list[dict]:
    """600 downloads, one every 7 hours from 2026-01-01 local midnight, versions in turn."""
    return [lakefill.download(START + timedelta(hours=7 * i), VERSIONS[i % 3]) for i in range(600)]


def snapshots() -> list[dict]:
    return [{"ts": START + timedelta(days=d, hours=12), "repo": "caskdata/cdap", "stars": 100 + d, "forks": 10,
             "watchers": 5, "open_issues": 1} for d in range(10, 60, 3)]


def start_logged_api(cfg, env: dict, log: Path) -> tuple[str, subprocess.Popen]:
    """The real API as `make run` starts it, at info level (access log on), its output into `log`."""
    port = free_port()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "info"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        env={**os.environ, "CASKALYTICS_CONFIG": str(cfg.path), **env})
    wait_for_port(port)
    return f"http://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    cfg = lakefill.write_config(tmp_path_factory.mktemp("data-api"), timezone=ZONE)
    cfg.path.write_text(cfg.path.read_text() + "\n[api]\nsql_row_limit = 5000\n")
    cfg = collectors.load_config(cfg.path)
    lakefill.fill(cfg, downloads=downloads(), snapshots=snapshots())
    return cfg


@pytest.fixture(scope="module")
def api(lake):
    log = lake.path.parent / "api.log"
    base, process = start_logged_api(lake, {"CASKALYTICS_API_TOKEN": TOKEN}, log)

    class Api:
        url, log_file = base, log

        def get(self, path, **kw):
            return requests.get(base + path, headers={**AUTH, **kw.pop("headers", {})}, timeout=60, **kw)

        def post(self, path, **kw):
            return requests.post(base + path, headers={**AUTH, **kw.pop("headers", {})}, timeout=60, **kw)
    yield Api()
    process.terminate()
    process.wait(10)


def one_sentence_error(answer, status: int = 400) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert list(body) == ["error"], body
    message = body["error"]
    assert message and "\n" not in message and "Traceback" not in message and len(message) < 300, message
    return message


# --- read-only SQL ---------------------------------------------------------------------------------------------

def test_sql_answers_a_group_by_as_columns_and_rows(api):
    answer = api.post("/sql", json={"sql": "SELECT split_part(key, '/', 2) AS version, count(*) AS n "
                                           "FROM raw_s3_access_logs GROUP BY ALL ORDER BY version"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["columns"] == [{"name": "version", "type": "VARCHAR"}, {"name": "n", "type": "BIGINT"}]
    assert body["rows"] == [["6.10.0", 200], ["6.8.0", 200], ["6.9.0", 200]]
    assert body["truncated"] is False and isinstance(body["elapsed_ms"], int)
    # the same numbers the metric catalog answers
    adoption = api.get("/adoption/downloads").json()["downloads"]
    assert sorted((d["version"], d["dl"]) for d in adoption) == [tuple(r) for r in body["rows"]]


def test_sql_limit_truncates_and_the_configured_cap_holds(api):
    body = api.post("/sql", json={"sql": "SELECT ts FROM raw_s3_access_logs", "limit": 5}).json()
    assert len(body["rows"]) == 5 and body["truncated"] is True
    assert "at most 5,000 ([api] sql_row_limit)" in one_sentence_error(
        api.post("/sql", json={"sql": "SELECT 1", "limit": 5001}))


@pytest.mark.parametrize("body, words", [
    ({"sql": "COPY raw_s3_access_logs TO '/tmp/stolen.csv'"}, "only a SELECT"),
    ({"sql": "SELECT * FROM read_csv('/etc/passwd')"}, "read_csv"),
    ({"sql": "SELECT 1; DROP TABLE rollups"}, "one statement"),
    ({"sql": "SELECT * FROM no_such_table"}, "no_such_table"),
    ({"sql": ""}, "sql in the body must not be empty"),
    ({"sql": "SELECT 1", "limit": -1}, "limit in the body must be at least 0"),
    ({"sql": "SELECT 1", "limit": "many"}, "limit in the body must be a whole number"),
    ({"sql": "SELECT 1", "timeout": 99}, "timeout in the body is not a known field"),
    ({"query": "SELECT 1"}, "sql in the body is required"),
    ([1, 2], "the body must be a JSON object"),
])
def test_sql_refusals_and_bad_bodies_are_one_sentence_400s(api, body, words):
    assert words in one_sentence_error(api.post("/sql", json=body))


def test_a_body_that_is_not_json_or_missing_is_a_400(api):
    assert "JSON" in one_sentence_error(api.post("/sql", data=b"{not json",
                                                 headers={"Content-Type": "application/json"}))
    assert "body is required" in one_sentence_error(api.post("/sql"))


def read_back(fmt: str, data: bytes, tmp_path) -> pd.DataFrame:
    """A download parsed by an independent reader, as a DataFrame of Python values."""
    if fmt == "csv":
        return pd.read_csv(io.BytesIO(data))
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data)).to_pandas()
    if fmt == "ndjson":
        return pd.DataFrame([json.loads(line) for line in data.decode().splitlines()])
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(data))
        rows = list(book.worksheets[0].iter_rows(values_only=True))
        return pd.DataFrame(rows[1:], columns=rows[0])
    path = tmp_path / "read.hyper"
    path.write_bytes(data)
    with Connection(export_module.hyper_process().endpoint, str(path)) as connection:
        table = connection.catalog.get_table_definition(TableName("Extract", "Extract"))
        names = [c.name.unescaped for c in table.columns]
        rows = connection.execute_list_query('SELECT * FROM "Extract"."Extract"')
    plain = [[v.to_datetime() if hasattr(v, "to_datetime") else v.to_date() if hasattr(v, "to_date") else v
              for v in row] for row in rows]
    return pd.DataFrame(plain, columns=names)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sql_result_downloads_in_every_format(api, fmt, tmp_path):
    query = {"sql": "SELECT split_part(key, '/', 2) AS version, count(*) AS n, min(ts) AS first "
                    "FROM raw_s3_access_logs GROUP BY ALL ORDER BY version"}
    answer = api.post(f"/sql?format={fmt}", json=query)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == f'attachment; filename="query.{fmt}"'
    frame = read_back(fmt, answer.content, tmp_path)
    assert list(frame.columns) == ["version", "n", "first"]
    assert [(v, int(n)) for v, n in zip(frame["version"], frame["n"])] == [
        ("6.10.0", 200), ("6.8.0", 200), ("6.9.0", 200)]
    first = pd.Timestamp(frame["first"].iloc[1])      # 6.8.0: the second download, 7 h after the start
    first = first.tz_convert("UTC") if first.tzinfo else first.tz_localize("UTC")   # Excel: UTC wall time
    assert first == pd.Timestamp(START + timedelta(hours=7))


def test_sql_download_takes_a_limit_only_when_given(api, tmp_path):
    everything = api.post("/sql?format=csv", json={"sql": "SELECT range AS i FROM range(2500)"})
    assert len(read_back("csv", everything.content, tmp_path)) == 2500     # not the JSON answer's 1000
    first = api.post("/sql?format=parquet", json={"sql": "SELECT ts FROM raw_s3_access_logs", "limit": 7})
    assert len(read_back("parquet", first.content, tmp_path)) == 7


def test_sql_download_refused_before_it_starts_is_a_400(api):
    assert "only a SELECT" in one_sentence_error(api.post("/sql?format=csv",
                                                                  json={"sql": "CREATE TABLE t AS SELECT 1"}))
    assert "the query failed" in one_sentence_error(api.post("/sql?format=parquet",
                                                             json={"sql": "SELECT 'x'::INTEGER"}))
    assert "format" in one_sentence_error(api.post("/sql?format=pdf", json={"sql": "SELECT 1"}))


def test_sql_tables_lists_each_queryable_table_with_its_time_column(api):
    tables = {t["name"]: t for t in api.get("/sql/tables").json()["tables"]}
    assert {"raw_s3_access_logs", "metric_points", "rollups", "quarantine"} <= set(tables)
    assert tables["raw_s3_access_logs"]["kind"] == "raw" and tables["raw_s3_access_logs"]["time_column"] == "ts"
    assert tables["rollups"]["time_column"] == "bucket"
    assert {"name": "key", "type": "VARCHAR"} in tables["raw_s3_access_logs"]["columns"]
    assert not any(name.startswith(("ducklake", "_")) or "cursor" in name for name in tables)


# --- exports -------------------------------------------------------------------------------------------------

def series_points(api, metric: str, **params) -> list[dict]:
    answer = api.get(f"/metrics/{metric}", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["points"]


def start_label(value) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def as_number(value):
    return None if value is None or pd.isna(value) else float(value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_metric_export_matches_the_metric_series_with_its_comparison(api, fmt, tmp_path):
    params = {"grain": "day", "from": "2026-01-08", "to": "2026-02-10", "compare": "wow"}
    points = series_points(api, "downloads", **params)
    answer = api.get(f"/export/metrics/downloads.{fmt}", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == f'attachment; filename="downloads-day.{fmt}"'
    frame = read_back(fmt, answer.content, tmp_path)
    assert list(frame.columns) == ["start", "end", "period", "value", "previous", "delta", "delta_pct", "complete"]
    assert [start_label(s) for s in frame["start"]] == [p["start"] for p in points]
    assert [as_number(v) for v in frame["value"]] == [float(p["value"]) for p in points]
    assert [as_number(v) for v in frame["previous"]] == [float(p["previous"]) for p in points]
    assert [as_number(v) for v in frame["delta"]] == [float(p["value"] - p["previous"]) for p in points]
    pct = [round((p["value"] - p["previous"]) / p["previous"] * 100, 2) if p["previous"] else None for p in points]
    assert [as_number(v) for v in frame["delta_pct"]] == pct
    assert [bool(v) for v in frame["complete"]] == [p["complete"] for p in points]


def test_metric_export_of_a_gauge_keeps_null_before_the_first_observation(api, tmp_path):
    params = {"grain": "day", "from": "2026-01-05", "to": "2026-01-20"}
    points = series_points(api, "github.stars", **params)
    assert points[0]["value"] is None and points[-1]["value"] is not None
    frame = read_back("parquet", api.get("/export/metrics/github.stars.parquet", params=params).content, tmp_path)
    assert list(frame.columns) == ["start", "end", "period", "value", "complete"]
    assert [as_number(v) for v in frame["value"]] == [as_number(p["value"]) for p in points]


def test_metric_export_by_a_dimension_has_one_column_per_dimension(api, tmp_path):
    params = {"grain": "week", "from": "2026-01-05", "to": "2026-01-25", "by": "version"}
    series = api.get("/metrics/downloads", params=params).json()["series"]
    frame = read_back("csv", api.get("/export/metrics/downloads.csv", params=params).content, tmp_path)
    expected = sorted((s["dims"]["version"], p["start"], p["value"]) for s in series for p in s["points"])
    got = sorted((v, start_label(s), int(n)) for v, s, n in zip(frame["version"], frame["start"], frame["value"]))
    assert got == expected


def test_xlsx_metric_export_has_a_native_line_chart(api):
    answer = api.get("/export/metrics/downloads.xlsx", params={"grain": "week", "from": "2026-01-05",
                                                               "to": "2026-02-22", "compare": "wow"})
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    sheet = book.worksheets[0]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    assert isinstance(sheet["A2"].value, datetime)     # a real Excel date, not text
    charts = sheet._charts
    assert len(charts) == 1 and charts[0].tagname == "lineChart" and len(charts[0].series) == 2


def local_day_count(api, table: str, column: str, first: str, last: str) -> int:
    """Rows of `table` whose instant `column` falls on the New York days first..last, counted by SQL."""
    answer = api.post("/sql", json={"sql": f"SELECT count(*) FROM {table} WHERE timezone('{ZONE}', {column})::DATE "
                                           f"BETWEEN DATE '{first}' AND DATE '{last}'"})
    return answer.json()["rows"][0][0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_table_export_holds_the_rows_of_the_local_days_asked(api, fmt, tmp_path):
    answer = api.get(f"/export/tables/raw_s3_access_logs.{fmt}", params={"from": "2026-01-10", "to": "2026-01-12"})
    assert answer.status_code == 200, answer.text
    frame = read_back(fmt, answer.content, tmp_path)
    assert len(frame) == local_day_count(api, "raw_s3_access_logs", "ts", "2026-01-10", "2026-01-12") > 0
    assert "_batch" not in frame.columns and {"ts", "key", "http_status"} <= set(frame.columns)
    stamps = pd.to_datetime(frame["ts"].astype(str), utc=True, format="mixed")
    local_days = stamps.dt.tz_convert(ZONE).dt.date
    assert local_days.min() == date(2026, 1, 10) and local_days.max() == date(2026, 1, 12)


def test_table_export_of_rollups_filters_on_the_bucket_and_without_range_gives_everything(api, tmp_path):
    frame = read_back("parquet", api.get("/export/tables/rollups.parquet",
                                         params={"from": "2026-01-03", "to": "2026-01-04"}).content, tmp_path)
    assert set(frame["grain"]) >= {"hour", "day"}
    days = frame.loc[frame["grain"] == "day", "bucket"].dt.date
    assert set(days) == {date(2026, 1, 3), date(2026, 1, 4)}
    whole = read_back("csv", api.get("/export/tables/raw_s3_access_logs.csv").content, tmp_path)
    assert len(whole) == 600


# --- one error shape, never a 500 -----------------------------------------------------------------------------

@pytest.mark.parametrize("path, status, words", [
    ("/metrics/downloads?grain=day&from=0001-01-01&to=9999-12-31", 400, "from must be a date from 1900-01-01"),
    ("/adoption/downloads?from=0001-01-01&to=9999-12-31", 400, "from must be a date from 1900-01-01"),
    ("/pipeline/day?at=9999-12-31", 400, "at must be a date from"),
    ("/pipeline/day?at=0001-01-01", 400, "at must be a date from"),
    ("/metrics/downloads?from=yesterday", 400, "the query parameter from must be a date as YYYY-MM-DD"),
    ("/beacon/dropped?since=garbage", 400, "the query parameter since must be a date"),
    ("/metrics/downloads?grain=hour&from=2000-01-01&to=2026-01-01", 400, "at most 50,000"),
    ("/export/metrics/downloads.csv?grain=hour&from=2000-01-01&to=2026-01-01", 400, "at most 50,000"),
    ("/export/metrics/downloads.doc", 400, "fmt must be one of 'csv', 'parquet', 'ndjson', 'xlsx' or 'hyper'"),
    ("/export/tables/rollups.csv?from=2026-02-01&to=2026-01-01", 400, "after"),
    ("/export/metrics/no.such.csv", 404, "unknown metric 'no.such'"),
    ("/metrics/no.such.metric", 404, "unknown metric"),
    ("/export/tables/state.csv", 404, "unknown table 'state'"),
    ("/export/tables/ducklake_snapshot.parquet", 404, "unknown table"),
    ("/no/such/path", 404, "no such path"),
])
def test_bad_input_gets_one_sentence_in_the_one_error_shape(api, path, status, words):
    assert words in one_sentence_error(api.get(path), status)


def test_a_wrong_method_is_a_405_in_the_error_shape(api):
    one_sentence_error(requests.delete(api.url + "/metrics", headers=AUTH, timeout=10), 405)


# --- auth on every route ---------------------------------------------------------------------------------------

PUBLIC = {("GET", "/health"), ("POST", "/webhooks/github"), ("GET", "/js/caskalytics.js"),
          ("GET", "/unsubscribe"), ("POST", "/unsubscribe")}
GUARDED = [("GET", "/metrics"), ("GET", "/metrics/{metric}"), ("GET", "/pipeline/{period}"),
           ("GET", "/awareness/webtraffic/{period}"), ("GET", "/awareness/socialmedia/subscribers"),
           ("GET", "/awareness/seo"), ("GET", "/adoption/downloads"), ("GET", "/beacon/dropped"),
           ("GET", "/subscriptions"), ("POST", "/subscriptions"), ("DELETE", "/subscriptions"), ("GET", "/outbox"),
           ("POST", "/sql"), ("GET", "/sql/tables"), ("GET", "/export/metrics/{metric}.{fmt}"),
           ("GET", "/export/tables/{table}.{fmt}"), ("GET", "/alerts/rules"), ("POST", "/alerts/rules"),
           ("DELETE", "/alerts/rules/{name}"), ("GET", "/alerts/events")]
SAMPLE = {"metric": "downloads", "period": "day", "table": "rollups", "fmt": "csv", "name": "downloads drop"}


def test_the_audit_lists_every_route_the_api_documents(api):
    spec = requests.get(api.url + "/openapi.json", timeout=10).json()
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert documented == PUBLIC | set(GUARDED), "a new route: add it to GUARDED or PUBLIC"


def call(api, method: str, template: str, headers: dict) -> requests.Response:
    body = {"json": {"sql": "SELECT 1"}} if template == "/sql" else {}
    return requests.request(method, api.url + template.format(**SAMPLE), headers=headers, timeout=30, **body)


@pytest.mark.parametrize("method, template", GUARDED)
def test_a_read_route_needs_the_bearer_token(api, method, template):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Basic {TOKEN}"}):
        answer = call(api, method, template, headers)
        assert one_sentence_error(answer, 401) == "missing or wrong bearer token", (method, template, headers)
        assert answer.headers.get("www-authenticate") == "Bearer"
    answer = call(api, method, template, AUTH)
    # 400: a body it needs; 404: no stored rule of the sample's name to delete
    assert answer.status_code in (200, 400, 404), (answer.status_code, answer.text)


@pytest.mark.parametrize("method, template", sorted(PUBLIC))
def test_public_routes_answer_without_a_token(api, method, template):
    answer = call(api, method, template, {})
    # the webhook has its own check (the HMAC signature), which an unsigned request fails
    assert answer.status_code != 401 or template == "/webhooks/github", answer.text
    assert answer.status_code < 500 or (template == "/webhooks/github" and answer.status_code == 503)


def test_tokens_never_reach_the_log(api):
    api.get("/metrics")
    requests.get(api.url + "/metrics", headers={"Authorization": "Bearer guessed-token-42"}, timeout=10)
    api.post("/sql", json={"sql": "SELECT 1"})
    log = api.log_file.read_text()
    assert "GET /metrics" in log                   # the access log is on, so the check means something
    assert TOKEN not in log and "guessed-token-42" not in log


# --- /docs offline ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_from_this_server(api, page):
    html = requests.get(api.url + page, timeout=10).text
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""(?:url|spec-url)\s*[:=]\s*["']([^"']+)["']""", html)
    assert urls and any(u.endswith(".js") for u in urls), html
    assert not re.search(r"https?://|//[a-z]", " ".join(urls)), urls
    assert "cdn.jsdelivr" not in html and "fonts.googleapis" not in html
    for url in urls:
        answer = requests.get(api.url + url, timeout=10)
        assert answer.status_code == 200, url
        if url.endswith(".js"):
            assert len(answer.content) > 100_000            # the real bundle, not an error page


def test_every_operation_documents_its_answers_and_none_answers_422(api):
    spec = requests.get(api.url + "/openapi.json", timeout=10).json()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert "422" not in codes and "400" in codes, (method, path)
            ok = op["responses"].get("200") or op["responses"].get("201")
            assert ok and ok.get("content"), (method, path)
            schemas = [c.get("schema") for c in ok["content"].values()]
            assert all(schemas) and schemas != [{}], (method, path, schemas)


# --- the README's recipes, as written ----------------------------------------------------------------------------

def test_pandas_reads_parquet_and_csv_urls_with_the_bearer_header(api):
    options = {"Authorization": f"Bearer {TOKEN}"}
    frame = pd.read_parquet(f"{api.url}/export/metrics/downloads.parquet?grain=week&from=2026-01-05&to=2026-01-25",
                            storage_options=options)
    assert list(frame["value"]) == [p["value"] for p in series_points(api, "downloads", grain="week",
                                                                       **{"from": "2026-01-05", "to": "2026-01-25"})]
    rows = pd.read_csv(f"{api.url}/export/tables/raw_s3_access_logs.csv?from=2026-01-10&to=2026-01-10",
                       storage_options=options)
    assert len(rows) == local_day_count(api, "raw_s3_access_logs", "ts", "2026-01-10", "2026-01-10")
