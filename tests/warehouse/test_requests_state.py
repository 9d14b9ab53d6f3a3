"""Backfill requests and outages in the state database (warehouse/requests_state.py, status_queries.outages)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from conftest import make_config
from warehouse.requests_state import BackfillRequests
from warehouse.state import State
from warehouse.status_queries import outages


def test_requests_queue_once_run_oldest_first_and_resume_after_a_stop(tmp_path):
    state = State(make_config(tmp_path))
    requests = BackfillRequests(state)
    first = requests.queue("github", date(2024, 1, 1), date(2024, 1, 31))
    assert requests.queue("github", date(2024, 1, 1), date(2024, 1, 31)) == first      # the same work, once
    second = requests.queue("seo", date(2024, 2, 1), date(2024, 2, 2))
    claimed = requests.claim_next()
    assert (claimed["id"], claimed["status"]) == (first, "running")
    requests.progress(first, batches=2, records=300, inserted=250, done=2, total=5, label="2024-01-08..14")
    assert requests.requeue_interrupted() == 1          # the scheduler stopped mid-way: queued again, first again
    assert requests.claim_next()["id"] == first
    requests.finish(first)
    assert requests.claim_next()["id"] == second
    requests.finish(second, error="Unavailable: rank tracker GET rankings: HTTP 503")
    assert requests.claim_next() is None
    rows = {r["id"]: r for r in requests.recent()}
    assert (rows[first]["status"], rows[first]["records"], rows[first]["progress_total"]) == ("done", 300, 5)
    assert (rows[second]["status"], rows[second]["error"]) == ("failed", "Unavailable: rank tracker GET rankings: HTTP 503")


def test_outages_are_runs_of_failures_ended_by_the_catch_up(tmp_path):
    state = State(make_config(tmp_path))
    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    state.finish_run(state.start_run("github", "collect"))
    for _ in range(3):
        state.finish_run(state.start_run("github", "collect"), error="Unavailable: HTTP 503")
    catch_up = state.start_run("github", "collect")
    state.add_to_run(catch_up, 120, 120, 0, 0)
    state.finish_run(catch_up)
    state.finish_run(state.start_run("seo", "collect"), error="Unavailable: HTTP 502")
    state.finish_run(state.start_run("beacon", "drain"), error="not a collection")      # drains are not outages
    found = {o.source: o for o in outages(state, since=before)}
    assert set(found) == {"github", "seo"}
    assert (found["github"].failed_runs, found["github"].caught_up_records, found["github"].error) == (3, 120, "Unavailable: HTTP 503")
    assert found["github"].start <= found["github"].end
    assert (found["seo"].end, found["seo"].failed_runs) == (None, 1)                       # still failing
    assert outages(state, since=datetime.now(timezone.utc) + timedelta(hours=1))[0].source == "seo"
