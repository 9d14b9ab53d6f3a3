"""The Salesforce collector against the Salesforce simulator over real HTTPS (a trustme CA), into a real
warehouse: the first run backfills the history window page by page, later runs ask only for what changed
since the SystemModstamp cursor, a 30-day outage is caught up to exactly the warehouse a never-stopped
run built, record updates never double count, late-imported old leads recompute their creation day, and the
org's failure modes (expired sessions, bad credentials, REQUEST_LIMIT_EXCEEDED, 5xx, dropped connections,
unknown fields, malformed records) end as retries, one-line errors naming the config key, or quarantine."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time as clock
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import requests

from collectors import http
from collectors.base import SourceError
from conftest import ROOT, free_port, make_config, wait_for_port
from warehouse.writer import Writer
from scheduler import run_source
from salesforce_support import (CLIENT_ID_ENV, CLIENT_SECRET_ENV, MQL, expected_days, history_start, read_since,
                                salesforce_settings, stage_reached)
from simulators import salesforce as simulator
from simulators.salesforce import SalesforceSimulator
from warehouse import ingest, queries
from warehouse.lake import Reader
from warehouse.state import State

UTC = timezone.utc
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
METRICS = ("salesforce.raw_leads", "salesforce.inquiries", "salesforce.mqls", "salesforce.opportunities")
LEAD_QUERY = re.compile(r"FROM Lead WHERE SystemModstamp > (\S+) AND SystemModstamp <= (\S+) ORDER BY SystemModstamp")


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv(CLIENT_ID_ENV, "sim-client")
    monkeypatch.setenv(CLIENT_SECRET_ENV, "sim-secret")


@pytest.fixture
def sim():
    with SalesforceSimulator(start=NOW.date() - timedelta(days=90), now=NOW, scale=0.3, page_size=200) as org:
        yield org


def new_writer(tmp_path, sim, name="var", **settings) -> Writer:
    folder = tmp_path / name
    folder.mkdir()
    return Writer(make_config(folder, salesforce=salesforce_settings(sim, **settings)))


def daily(cfg, metric: str, start: date, end: date) -> dict[date, int]:
    reader = Reader(cfg)
    try:
        series = queries.metric_series(reader.cursor(), cfg, queries.SeriesRequest(metric, "day", start, end))
    finally:
        reader.close()
    return {date.fromisoformat(p["start"]): p["value"] for p in series["points"] if p["value"]}


def table(writer: Writer, name: str, columns: str = "* EXCLUDE (_batch)") -> set[tuple]:
    return set(writer.con.execute(f"SELECT {columns} FROM lake.{name}").fetchall())


def current_versions(writer: Writer, name: str) -> set[tuple]:
    """Each record's latest stored version: what the warehouse says the record is now."""
    return set(writer.con.execute(f"SELECT * EXCLUDE (_batch) FROM lake.{name} "
                                  "QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts DESC) = 1").fetchall())


def stored_ids(writer: Writer) -> set[str]:
    return {row[0] for name in ("raw_salesforce_leads", "raw_salesforce_opportunities")
            for row in table(writer, name, "id")}


def expected_ids(sim: SalesforceSimulator, history_days: int) -> set[str]:
    return {r.id for r in read_since(sim.leads() + sim.opportunities(), sim.now(), history_start(sim.now(), history_days))}


def lead_windows(sim: SalesforceSimulator, first_query: int = 0) -> list[tuple[str, str]]:
    return [m.groups() for q in sim.queries[first_query:] if (m := LEAD_QUERY.search(q))]


def test_first_run_reads_the_history_window_page_by_page_and_the_next_run_only_what_changed(tmp_path, sim):
    writer = new_writer(tmp_path, sim, history_days=60, chunk_days=30)
    try:
        first = run_source(writer, "salesforce")
        since = history_start(NOW, 60)
        leads, opportunities = read_since(sim.leads(), NOW, since), read_since(sim.opportunities(), NOW, since)
        assert first.quarantined == 0 and first.batches == 2                       # 60 days in 30-day windows
        assert any(re.search(r"/query/\w+-200$", path) for path in sim.requests)     # nextRecordsUrl was followed
        assert table(writer, "raw_salesforce_leads", "id, ts, status, created_date") == {
            (lead.id, lead.modstamp(NOW), lead.state(NOW)["Status"], lead.created) for lead in leads}
        assert table(writer, "raw_salesforce_opportunities", "id, ts, stage_name, amount") == {
            (o.id, o.modstamp(NOW), o.state(NOW)["StageName"], o.state(NOW)["Amount"]) for o in opportunities}
        converted = next(lead for lead in leads if lead.state(NOW)["IsConverted"] and lead.status_history(NOW))
        assert table(writer, "raw_salesforce_lead_status_changes", "ts, old_status, new_status")
        assert {(row["CreatedDate"], row["OldValue"], row["NewValue"]) for row in converted.status_history(NOW)} <= \
            table(writer, "raw_salesforce_lead_status_changes", "ts, old_status, new_status")
        assert writer.cursor("salesforce") == {"system_modstamp": NOW.isoformat()}

        later = NOW + timedelta(days=2)
        sim.set_time(later)
        asked, stored = len(sim.queries), table(writer, "raw_salesforce_leads", "id, ts")
        run_source(writer, "salesforce")
        # Never pull twice: one window from the cursor (less the 5-minute overlap) to the org's clock.
        assert lead_windows(sim, asked) == [("2026-03-02T09:25:00Z", "2026-03-04T09:30:00Z")]
        assert table(writer, "raw_salesforce_leads", "id, ts") == stored | {
            (lead.id, lead.modstamp(later)) for lead in read_since(sim.leads(), later, NOW)}

        # Updates never double count: leads have several versions, each counts once.
        versions, distinct = writer.con.execute(
            "SELECT count(*), count(DISTINCT id) FROM lake.raw_salesforce_leads").fetchone()
        assert versions > distinct
        since_days = expected_days(sim, since)
        for metric in METRICS:
            assert daily(writer.cfg, metric, date(2025, 1, 1), later.date()) == since_days[metric], metric
        assert sum(daily(writer.cfg, "salesforce.raw_leads", date(2025, 1, 1), later.date()).values()) == distinct
    finally:
        writer.close()


def test_a_30_day_outage_is_caught_up_to_what_a_never_stopped_run_built(tmp_path, sim):
    start = NOW - timedelta(days=35)
    settings = {"history_days": 20, "chunk_days": 7}
    steady, stopped = new_writer(tmp_path, sim, "steady", **settings), new_writer(tmp_path, sim, "stopped", **settings)
    try:
        for days in range(0, 31, 6):                                  # the never-stopped run: every 6 days
            sim.set_time(start + timedelta(days=days))
            run_source(steady, "salesforce")

        sim.set_time(start)
        run_source(stopped, "salesforce")
        sim.set_time(start + timedelta(days=30))                       # 30 days down, then restarted
        asked = len(sim.queries)
        catch_up = run_source(stopped, "salesforce")
        windows = lead_windows(sim, asked)
        assert catch_up.batches == len(windows) == 5                  # 30 days in 7-day chunks, oldest first
        assert [high for _, high in windows] == sorted(high for _, high in windows)

        for name in ("raw_salesforce_leads", "raw_salesforce_opportunities"):
            assert current_versions(stopped, name) == current_versions(steady, name)
            assert len(table(steady, name)) > len(table(stopped, name))     # the steady run saw more versions
        assert table(stopped, "raw_salesforce_lead_status_changes") == table(steady, "raw_salesforce_lead_status_changes")
        first_day, last_day = (start - timedelta(days=60)).date(), (start + timedelta(days=30)).date()
        for metric in METRICS:
            series = daily(stopped.cfg, metric, first_day, last_day)
            assert series and series == daily(steady.cfg, metric, first_day, last_day), metric
        # Leads that went through "Working - Contacted" to "Closed - Converted" during the outage count as MQLs on
        # the day they converted, not on the day the collector came back.
        outage_mqls = [lead for lead in sim.leads() if start < (stage_reached(lead, sim.now(), MQL) or start) and
                       lead.modstamp(sim.now()) > stage_reached(lead, sim.now(), MQL) + timedelta(days=1)]
        assert outage_mqls
    finally:
        steady.close()
        stopped.close()


def test_old_leads_imported_late_recompute_their_creation_day(tmp_path, sim):
    # The yearly conference's badge scans (16-19 March 2026) are imported five days later with their scan times.
    conference = date(2026, 3, 16)
    sim.set_time(datetime(2026, 3, 18, 12, tzinfo=UTC))
    writer = new_writer(tmp_path, sim, history_days=3)
    try:
        run_source(writer, "salesforce")
        before = daily(writer.cfg, "salesforce.raw_leads", conference, conference)
        sim.set_time(datetime(2026, 3, 26, 12, tzinfo=UTC))
        run_source(writer, "salesforce")
        after = daily(writer.cfg, "salesforce.raw_leads", conference, conference)
        scans = [lead for lead in sim.leads() if lead.initial["LeadSource"] == "Trade Show"
                 and lead.created.date() == conference]
        assert scans and all(lead.visible_from.date() == date(2026, 3, 21) for lead in scans)
        assert after[conference] == before[conference] + len(scans)
    finally:
        writer.close()


def test_an_expired_session_logs_in_again_once_and_a_revoked_one_fails_naming_the_keys(tmp_path, sim):
    writer = new_writer(tmp_path, sim, history_days=10)
    try:
        sim.inject_faults(1, status=401)                     # the first query: INVALID_SESSION_ID
        tokens_before = sim.requests.count("/services/oauth2/token")
        run_source(writer, "salesforce")
        assert sim.requests.count("/services/oauth2/token") - tokens_before == 2
        assert stored_ids(writer) == expected_ids(sim, 10)

        sim.reject_sessions = True                           # the connected app was revoked
        sim.set_time(NOW + timedelta(hours=1))
        with pytest.raises(SourceError, match=f"INVALID_SESSION_ID.*client_secret_env \\(\\${CLIENT_SECRET_ENV}\\)"):
            run_source(writer, "salesforce")
        failed = State(writer.cfg).recent_runs("salesforce")[0]
        assert failed["status"] == "failed" and "INVALID_SESSION_ID" in failed["error"]
    finally:
        writer.close()


def test_bad_or_missing_credentials_fail_with_the_config_keys_and_never_the_secret(tmp_path, sim, monkeypatch):
    writer = new_writer(tmp_path, sim, history_days=10)
    try:
        monkeypatch.setenv(CLIENT_SECRET_ENV, "a-rotated-secret")
        with pytest.raises(SourceError, match=f"invalid_client.*login_url.*client_secret_env \\(\\${CLIENT_SECRET_ENV}"):
            run_source(writer, "salesforce")
        assert "a-rotated-secret" not in State(writer.cfg).recent_runs("salesforce")[0]["error"]
        monkeypatch.delenv(CLIENT_ID_ENV)
        with pytest.raises(SourceError, match=f"not set: \\[sources.salesforce\\] client_id_env \\(\\${CLIENT_ID_ENV}\\)"):
            run_source(writer, "salesforce")
    finally:
        writer.close()


def test_request_limits_server_errors_and_dropped_connections_are_retried_honouring_retry_after(tmp_path, sim):
    writer = new_writer(tmp_path, sim, history_days=10)
    try:
        sim.inject_faults(1, status=503, on="/oauth2/token")
        sim.inject_faults(1, status=403, retry_after=1)      # REQUEST_LIMIT_EXCEEDED with Retry-After
        sim.inject_faults(1, status=403)                     # ... and without: exponential backoff
        sim.inject_faults(1, status=0)                       # a dropped connection
        sim.inject_faults(1, status=500)
        started = clock.monotonic()
        summary = run_source(writer, "salesforce")
        assert clock.monotonic() - started >= 1.0
        assert not sim.faults and summary.quarantined == 0
        assert stored_ids(writer) == expected_ids(sim, 10)
        assert State(writer.cfg).recent_runs("salesforce")[0]["status"] == "ok"
    finally:
        writer.close()


def test_a_limit_that_does_not_lift_fails_the_run_clearly_and_the_next_run_recovers(tmp_path, sim):
    writer = new_writer(tmp_path, sim, history_days=10)
    try:
        sim.inject_faults(http.ATTEMPTS, status=403, retry_after=0)
        with pytest.raises(http.Unavailable, match="REQUEST_LIMIT_EXCEEDED.*gave up after 5 attempts"):
            run_source(writer, "salesforce")
        assert "REQUEST_LIMIT_EXCEEDED" in State(writer.cfg).recent_runs("salesforce")[0]["error"]
        assert writer.cursor("salesforce") is None
        sim.inject_faults(1, status=403, retry_after=3600)   # a wait longer than a run should block: fail now
        started = clock.monotonic()
        with pytest.raises(http.Unavailable, match="wait 3600s"):
            run_source(writer, "salesforce")
        assert clock.monotonic() - started < 10
        run_source(writer, "salesforce")
        assert writer.cursor("salesforce") == {"system_modstamp": NOW.isoformat()}
    finally:
        writer.close()


def test_an_answer_cut_short_fails_the_run_without_moving_the_cursor_and_the_next_run_reads_it(tmp_path, sim):
    writer = new_writer(tmp_path, sim, history_days=10)
    try:
        sim.partial_pages = 1
        with pytest.raises(http.BadResponse, match=r"ended after \d+ of its \d+ records"):
            run_source(writer, "salesforce")
        assert writer.cursor("salesforce") is None and not stored_ids(writer)
        run_source(writer, "salesforce")
        assert stored_ids(writer) == expected_ids(sim, 10)
    finally:
        writer.close()


def test_an_unknown_stage_field_or_untracked_history_names_the_key_to_fix(tmp_path, sim):
    writer = new_writer(tmp_path, sim, history_days=10, mql_field="MQL_Datee__c")
    try:
        with pytest.raises(SourceError, match="No such column 'MQL_Datee__c'.*inquiry_field and mql_field"):
            run_source(writer, "salesforce")
    finally:
        writer.close()


def test_stages_can_come_from_a_date_field_without_status_history(tmp_path, sim):
    writer = new_writer(tmp_path, sim, history_days=30, status_history=False, mql_statuses=[],
                        mql_field="MQL_Date__c")
    try:
        run_source(writer, "salesforce")
        assert not any("Histories" in q for q in sim.queries)
        assert table(writer, "raw_salesforce_lead_status_changes") == set()
        leads = read_since(sim.leads(), NOW, history_start(NOW, 30))
        expected = Counter(lead.state(NOW)["MQL_Date__c"].date() for lead in leads if lead.state(NOW)["MQL_Date__c"])
        assert daily(writer.cfg, "salesforce.mqls", date(2025, 1, 1), NOW.date()) == dict(expected)
    finally:
        writer.close()


def test_malformed_records_are_quarantined_and_the_rest_of_the_page_is_stored(tmp_path, sim):
    good = {"attributes": {"type": "Lead"}, "Id": "00Q5g00000Zz001EAA", "SystemModstamp": "2026-03-01T10:00:00.000+0000",
            "CreatedDate": "2026-03-01T09:00:00.000+0000", "Status": "Open - Not Contacted", "IsConverted": False}
    sim.inject_records("Lead", [{**good, "Id": None}, {**good, "SystemModstamp": "yesterday"},
                                {**good, "IsConverted": "no"}, "not a record",
                                {**good, "Histories": {"totalSize": 1, "done": True, "records": ["x"]}}])
    sim.inject_records("Opportunity", [{"Id": "006X", "SystemModstamp": "2026-03-01T10:00:00.000+0000",
                                        "CreatedDate": "2026-03-01T10:00:00.000+0000", "Amount": "lots"}])
    writer = new_writer(tmp_path, sim, history_days=10)
    try:
        summary = run_source(writer, "salesforce")
        assert summary.quarantined == 6
        reasons = sorted(r[0] for r in writer.con.execute("SELECT reason FROM lake.quarantine").fetchall())
        for expected in ("lead: Id is missing", "lead: SystemModstamp is not a Salesforce datetime",
                         "lead: IsConverted is not true/false", "lead: not a JSON object",
                         "lead: a Histories record is not a JSON object", "opportunity: Amount is not a number"):
            assert any(reason.startswith(expected) for reason in reasons), expected
        assert stored_ids(writer) == expected_ids(sim, 10)
    finally:
        writer.close()


def test_backfill_reads_the_records_created_in_the_range_and_leaves_the_cursor_alone(tmp_path, sim):
    writer = new_writer(tmp_path, sim, chunk_days=10)
    try:
        first, last = date(2026, 1, 5), date(2026, 1, 25)
        summary = run_source(writer, "salesforce", start=first, end=last)
        assert summary.batches == 3 and writer.cursor("salesforce") is None
        assert table(writer, "raw_salesforce_leads", "id") == {
            (lead.id,) for lead in sim.leads() if first <= lead.created.date() <= last}
        assert table(writer, "raw_salesforce_opportunities", "id") == {
            (o.id,) for o in sim.opportunities() if first <= o.created.date() <= last}
    finally:
        writer.close()


def test_the_demo_simulator_serves_https_with_the_ca_it_writes(tmp_path):
    port = free_port()
    cfg = SimpleNamespace(path=tmp_path / "config.toml", sources=SimpleNamespace(salesforce=SimpleNamespace(
        login_url=f"https://127.0.0.1:{port}", ca_bundle="var/sf-ca.pem", client_id_env=CLIENT_ID_ENV,
        client_secret_env=CLIENT_SECRET_ENV)))
    args, wait_port = simulator.demo_process(cfg)
    assert wait_port == port and str(tmp_path / "var" / "sf-ca.pem") in args
    process = subprocess.Popen([sys.executable, "-m", "simulators.salesforce", *args], cwd=ROOT, env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        form = {"grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "sim-secret"}
        token = requests.post(f"https://127.0.0.1:{port}/services/oauth2/token", data=form, timeout=10,
                              verify=str(tmp_path / "var" / "sf-ca.pem")).json()
        answer = requests.get(f"{token['instance_url']}/services/data/v59.0/query",
                              params={"q": "SELECT Id, CreatedDate FROM Lead ORDER BY CreatedDate"},
                              headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30,
                              verify=str(tmp_path / "var" / "sf-ca.pem")).json()
        assert answer["totalSize"] > 10_000 and len(answer["records"]) == 2000 and answer["nextRecordsUrl"]
        with pytest.raises(requests.exceptions.SSLError):            # the system CAs do not know the test CA
            requests.post(f"https://127.0.0.1:{port}/services/oauth2/token", data=form, timeout=10)
    finally:
        process.terminate()
        process.wait(10)
