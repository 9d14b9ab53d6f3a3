"""`GET /pipeline/{period}` over real HTTP: a warehouse filled by the real Salesforce collector from the
simulator, served by the real API process, answers {start, end, rawleads, mql, inquiries, opp} for every
grain and `?at=`, with the counts the simulator's org says (in the reporting time zone)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from conftest import make_config, start_api
from warehouse.writer import Writer
from scheduler import run_source
from salesforce_support import (CLIENT_ID_ENV, CLIENT_SECRET_ENV, INQUIRY, MQL, history_start, read_since,
                                salesforce_settings, stage_reached)
from simulators.salesforce import SalesforceSimulator

UTC = timezone.utc
ZONE = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
HISTORY_DAYS = 120


@pytest.fixture(scope="module")
def pipeline_api(tmp_path_factory):
    """One warehouse filled through the real collector, served by one real API process; and the org."""
    tmp = tmp_path_factory.mktemp("pipeline-api")
    with SalesforceSimulator(start=NOW.date() - timedelta(days=150), now=NOW, scale=0.3) as sim, \
            pytest.MonkeyPatch.context() as env:
        env.setenv(CLIENT_ID_ENV, "sim-client")
        env.setenv(CLIENT_SECRET_ENV, "sim-secret")
        cfg = make_config(tmp, timezone="America/New_York", salesforce=salesforce_settings(
            sim, history_days=HISTORY_DAYS, chunk_days=60))
        writer = Writer(cfg)
        run_source(writer, "salesforce")
        writer.close()
        server = start_api(cfg)
        try:
            yield server.base_url, sim
        finally:
            server.process.terminate()
            server.process.wait(10)


def expected(sim: SalesforceSimulator, first: datetime, after_last: datetime) -> dict[str, int]:
    """The org's counts for local times in [first, after_last)."""
    since = history_start(NOW, HISTORY_DAYS)
    leads, opportunities = read_since(sim.leads(), NOW, since), read_since(sim.opportunities(), NOW, since)
    first, after_last = first.replace(tzinfo=ZONE), after_last.replace(tzinfo=ZONE)

    def count(moments) -> int:
        return sum(1 for m in moments if m is not None and first <= m < after_last)

    return {"rawleads": count(lead.created for lead in leads),
            "mql": count(stage_reached(lead, NOW, MQL) for lead in leads),
            "inquiries": count(stage_reached(lead, NOW, INQUIRY) for lead in leads),
            "opp": count(opp.created for opp in opportunities)}


PERIODS = [  # grain, ?at=, expected start and end labels, the local period
    ("hour", "2026-02-10T07:00", "2026-02-10T07:00", "2026-02-10T07:00", datetime(2026, 2, 10, 7), datetime(2026, 2, 10, 8)),
    ("day", "2026-02-10", "2026-02-10", "2026-02-10", datetime(2026, 2, 10), datetime(2026, 2, 11)),
    ("week", "2026-02-10", "2026-02-09", "2026-02-15", datetime(2026, 2, 9), datetime(2026, 2, 16)),
    ("month", "2026-02-10", "2026-02-01", "2026-02-28", datetime(2026, 2, 1), datetime(2026, 3, 1)),
    ("quarter", "2026-02-10", "2026-01-01", "2026-03-31", datetime(2026, 1, 1), datetime(2026, 4, 1)),
    ("year", "2026-02-10", "2026-01-01", "2026-12-31", datetime(2026, 1, 1), datetime(2027, 1, 1)),
]


@pytest.mark.parametrize("grain, at, start, end, first, after_last", PERIODS, ids=[p[0] for p in PERIODS])
def test_each_grain_answers_the_period_holding_at(pipeline_api, grain, at, start, end, first, after_last):
    base_url, sim = pipeline_api
    answer = requests.get(f"{base_url}/pipeline/{grain}", params={"at": at}, timeout=30).json()
    assert answer == {"start": start, "end": end, **expected(sim, first, after_last)}
    assert answer["rawleads"] and answer["mql"] and answer["opp"]     # every period here holds some of each
    if grain in ("week", "month"):
        assert answer["rawleads"] > answer["inquiries"] > answer["mql"] > 0 and answer["opp"] > 0


def test_without_at_the_current_period_is_answered(pipeline_api):
    base_url, sim = pipeline_api
    today = datetime.now(ZONE).date()
    year = requests.get(f"{base_url}/pipeline/year", timeout=30).json()
    assert year == {"start": f"{today.year}-01-01", "end": f"{today.year}-12-31",
                    **expected(sim, datetime(today.year, 1, 1), datetime(today.year + 1, 1, 1))}
    day = requests.get(f"{base_url}/pipeline/day", timeout=30).json()
    assert day["start"] == day["end"] == today.isoformat()


def test_a_period_that_is_not_a_grain_is_a_400_saying_why(pipeline_api):
    base_url, _ = pipeline_api
    answer = requests.get(f"{base_url}/pipeline/fortnight", timeout=30)
    assert answer.status_code == 400 and "period must be one of" in answer.json()["error"]
    answer = requests.get(f"{base_url}/pipeline/day", params={"at": "last tuesday"}, timeout=30)
    assert answer.status_code == 400 and "at must be a date" in answer.json()["error"]
