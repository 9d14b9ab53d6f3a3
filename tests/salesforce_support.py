"""What the Salesforce simulator's org says the warehouse must hold: the expected rows and metric counts,
computed from the simulator's own records (not from the warehouse)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from simulators.salesforce import SalesforceSimulator
from simulators.salesforce_org import SObject

CLIENT_ID_ENV, CLIENT_SECRET_ENV = "CASKALYTICS_TEST_SF_CLIENT_ID", "CASKALYTICS_TEST_SF_CLIENT_SECRET"
INQUIRY = ("Working - Contacted", "Closed - Converted")      # the config defaults
MQL = ("Closed - Converted",)


def salesforce_settings(sim: SalesforceSimulator, **overrides) -> dict:
    return {"login_url": sim.url, "client_id_env": CLIENT_ID_ENV, "client_secret_env": CLIENT_SECRET_ENV,
            "ca_bundle": sim.ca_file, **overrides}


def read_since(records: Iterable[SObject], moment: datetime, since: datetime) -> list[SObject]:
    """The records a collector that started reading at `since` has seen by `moment`."""
    return [r for r in records if r.modstamp(moment) > since]


def stage_reached(lead: SObject, moment: datetime, statuses: tuple[str, ...]) -> datetime | None:
    """When the lead first had one of `statuses`, by its creation status and its Status history."""
    times = [lead.created] if lead.initial["Status"] in statuses else []
    times += [row["CreatedDate"] for row in lead.status_history(moment) if row["NewValue"] in statuses]
    return min(times, default=None)


def counts_by(moments: Iterable[datetime | None], bucket: Callable[[datetime], object]) -> dict:
    return dict(Counter(bucket(m) for m in moments if m is not None))


def expected_days(sim: SalesforceSimulator, since: datetime, zone=None) -> dict[str, dict]:
    """Per metric, {local date: count} for what a collector reading since `since` must report."""
    now = sim.now()
    leads, opportunities = read_since(sim.leads(), now, since), read_since(sim.opportunities(), now, since)
    day = (lambda m: m.astimezone(zone).date()) if zone else (lambda m: m.date())
    return {"salesforce.raw_leads": counts_by((lead.created for lead in leads), day),
            "salesforce.inquiries": counts_by((stage_reached(lead, now, INQUIRY) for lead in leads), day),
            "salesforce.mqls": counts_by((stage_reached(lead, now, MQL) for lead in leads), day),
            "salesforce.opportunities": counts_by((opp.created for opp in opportunities), day)}


def history_start(now: datetime, days: int, overlap_minutes: int = 5) -> datetime:
    """Where a first run with `history_days = days` starts reading (its first window re-reads the overlap)."""
    return now - timedelta(days=days, minutes=overlap_minutes)
