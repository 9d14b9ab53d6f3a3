"""The simulated Salesforce org's records: leads and opportunities generated day by day from a seed, with
every later change, so the org can show what had happened at any moment (see `simulators.salesforce`)."""
from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from simulators.randomness import poisson

UTC = timezone.utc
DEFAULT_START = date(2025, 1, 1)
WEEKDAY_FACTOR = (1.1, 1.25, 1.2, 1.1, 0.85, 0.3, 0.25)       # Monday..Sunday
HOUR_WEIGHTS = (1, 1, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 11, 12, 13, 13, 12, 10, 8, 6, 4, 2, 1)   # UTC, US day
LEAD_SOURCES = (("Web", 50), ("Phone Inquiry", 6), ("Partner Referral", 10), ("Purchased List", 8),
                ("Employee Referral", 4), ("Other", 7))
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell", "Cyberdyne",
             "Soylent", "Vandelay", "Massive Dynamic", "Pied Piper", "Aperture", "Gringotts", "Oscorp", "Dunder")
SUFFIXES = ("Corp", "Inc", "LLC", "Group", "Labs", "Systems", "Analytics", "Holdings")
STAGES = (("Prospecting", 10), ("Qualification", 20), ("Needs Analysis", 30), ("Value Proposition", 50),
          ("Proposal/Price Quote", 75), ("Negotiation/Review", 90))
OPEN, WORKING, CONVERTED, NOT_CONVERTED = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                                           "Closed - Not Converted")
CONFERENCE = ((3, 17), (9, 22))          # (month, day) the yearly conference weeks start near
IMPORT_DELAY = timedelta(days=5)


def sf_datetime(moment: datetime | None) -> str | None:
    """Salesforce's datetime format: 2011-12-16T18:53:59.000+0000."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000") if moment else None


def record_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: key prefix, pod, a base-62 number, and the case-checksum suffix."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    body = ""
    for _ in range(7):
        number, rest = divmod(number, 62)
        body = digits[rest] + body
    base = prefix + "5g000" + body
    suffix = ""
    for chunk in (base[0:5], base[5:10], base[10:15]):
        bits = sum(1 << i for i, c in enumerate(chunk) if "A" <= c <= "Z")
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return base + suffix


# -- generated history ------------------------------------------------------------------------------------
@dataclass
class Change:
    at: datetime
    fields: dict            # field -> new value; {} = a system touch (only SystemModstamp moves)


@dataclass
class SObject:
    """One record: its values at creation and every later change. `visible_from` is when it was inserted
    (after CreatedDate for audit-field imports)."""
    type: str
    id: str
    created: datetime
    visible_from: datetime
    initial: dict
    changes: list[Change] = field(default_factory=list)
    change_times: list[datetime] = field(default_factory=list)

    def add(self, at: datetime, **fields) -> None:
        at = at.replace(microsecond=0)          # the API shows whole seconds (".000")
        index = bisect.bisect_right(self.change_times, at)
        self.changes.insert(index, Change(at, fields))
        self.change_times.insert(index, at)

    def modstamp(self, moment: datetime) -> datetime:
        index = bisect.bisect_right(self.change_times, moment)
        return self.change_times[index - 1] if index else self.visible_from

    def state(self, moment: datetime) -> dict:
        values = dict(self.initial, Id=self.id, CreatedDate=self.created, LastModifiedDate=self.visible_from,
                      SystemModstamp=self.visible_from)
        for change in self.changes[:bisect.bisect_right(self.change_times, moment)]:
            values.update(change.fields)
            values["SystemModstamp"] = change.at
            if change.fields:
                values["LastModifiedDate"] = change.at
        return values

    def status_history(self, moment: datetime) -> list[dict]:
        """LeadHistory rows for Status up to `moment`."""
        rows, status = [], self.initial.get("Status")
        for change in self.changes[:bisect.bisect_right(self.change_times, moment)]:
            if "Status" in change.fields and change.fields["Status"] != status:
                rows.append({"Field": "Status", "OldValue": status, "NewValue": change.fields["Status"],
                             "CreatedDate": change.at})
                status = change.fields["Status"]
        return rows


@dataclass
class Org:
    """Every lead and opportunity the org ever gets, generated day by day up to `generated_through`."""
    seed: int = 1
    start: date = DEFAULT_START
    scale: float = 1.0                      # leads per day multiplier (tests use small orgs)
    leads: list[SObject] = field(default_factory=list)            # in visible_from order
    opportunities: list[SObject] = field(default_factory=list)    # in visible_from order
    generated_through: date = field(init=False)
    _imports: list[SObject] = field(default_factory=list)         # audit-field imports not yet due
    _leads_made: int = 0
    _opportunities_sorted: bool = True

    def __post_init__(self):
        self.generated_through = self.start - timedelta(days=1)

    def extend_to(self, last_day: date) -> None:
        while self.generated_through < last_day:
            self.generated_through += timedelta(days=1)
            self._generate(self.generated_through)

    # Campaign calendar: a webinar on the second Thursday of each month, a conference week twice a year.
    @staticmethod
    def webinar_day(day: date) -> date:
        first = day.replace(day=1)
        return first + timedelta(days=(3 - first.weekday()) % 7 + 7)

    @staticmethod
    def conference_week(day: date) -> bool:
        for month, start_day in CONFERENCE:
            start = date(day.year, month, start_day)
            start -= timedelta(days=start.weekday())          # the Monday of that week
            if start <= day < start + timedelta(days=4):
                return True
        return False

    def _generate(self, day: date) -> None:
        rng = random.Random(f"salesforce/{self.seed}/{day.isoformat()}")
        midnight = datetime.combine(day, datetime.min.time(), UTC)

        def moment(weights=HOUR_WEIGHTS) -> datetime:
            hour = rng.choices(range(24), weights=weights)[0]
            return midnight + timedelta(hours=hour, seconds=rng.randrange(3600))

        growth = 1 + 0.5 * (day - self.start).days / 365.25
        rate = 24 * self.scale * growth * WEEKDAY_FACTOR[day.weekday()]
        webinar = self.webinar_day(day)
        if 0 <= (webinar - day).days < 6:                     # registrations in the days before a webinar
            rate_webinar = 12 * self.scale * growth * WEEKDAY_FACTOR[day.weekday()] * (
                1.5 if (webinar - day).days <= 1 else 1.0)
        else:
            rate_webinar = 0
        created = [(moment(), rng.choices([s for s, _ in LEAD_SOURCES], [w for _, w in LEAD_SOURCES])[0])
                   for _ in range(poisson(rng, rate))]
        created += [(moment(), "Webinar") for _ in range(poisson(rng, rate_webinar))]
        today = [self._lead(rng, when, when, source) for when, source in sorted(created)]
        if self.conference_week(day):
            for _ in range(poisson(rng, 45 * self.scale * growth)):
                scanned = midnight + timedelta(hours=rng.randrange(14, 23), seconds=rng.randrange(3600))
                imported = datetime.combine(day + IMPORT_DELAY, datetime.min.time(), UTC) + timedelta(hours=15)
                self._imports.append(self._lead(rng, scanned, imported + timedelta(seconds=len(self._imports)),
                                                "Trade Show"))
        due = [lead for lead in self._imports if lead.visible_from < midnight + timedelta(days=1)]
        self._imports = [lead for lead in self._imports if lead not in due]
        self.leads.extend(sorted(today + due, key=lambda lead: lead.visible_from))
        if day.weekday() < 5:                                 # sales-sourced opportunities, no lead behind them
            for _ in range(poisson(rng, 1.5 * self.scale * growth)):
                self._opportunity(rng, moment(), None, "Other")

    def _lead(self, rng: random.Random, created: datetime, visible_from: datetime, source: str) -> SObject:
        company = f"{rng.choice(COMPANIES)} {rng.choice(SUFFIXES)}"
        self._leads_made += 1
        lead = SObject("Lead", record_id("00Q", self._leads_made), created, visible_from,
                       {"Status": OPEN, "LeadSource": source, "Company": company, "Rating": None,
                        "IsConverted": False, "ConvertedDate": None, "MQL_Date__c": None})
        at = visible_from
        hot = source in ("Webinar", "Trade Show", "Partner Referral", "Employee Referral")
        if rng.random() < (0.6 if hot else 0.4):
            at += timedelta(hours=2 + rng.expovariate(1 / 36))
            lead.add(at, Status=WORKING, MQL_Date__c=at)
            if rng.random() < 0.35:
                at += timedelta(hours=24 + rng.expovariate(1 / 200))
                lead.add(at, Status=CONVERTED, IsConverted=True, ConvertedDate=at.date())
                if rng.random() < 0.8:
                    self._opportunity(rng, at, company, source)
            elif rng.random() < 0.7:
                at += timedelta(hours=48 + rng.expovariate(1 / 300))
                lead.add(at, Status=NOT_CONVERTED)
        elif rng.random() < 0.5:
            at += timedelta(hours=72 + rng.expovariate(1 / 500))
            lead.add(at, Status=NOT_CONVERTED)
        if rng.random() < 0.3:                                # someone edits an unrelated field
            lead.add(visible_from + timedelta(hours=rng.expovariate(1 / 400)), Rating=rng.choice(("Hot", "Warm",
                                                                                                  "Cold")))
        if rng.random() < 0.1:                                # a system job touches the record
            lead.add(visible_from + timedelta(hours=rng.expovariate(1 / 400)))
        return lead

    def _opportunity(self, rng: random.Random, created: datetime, company: str | None, source: str) -> None:
        created = created.replace(microsecond=0)
        company = company or f"{rng.choice(COMPANIES)} {rng.choice(SUFFIXES)}"
        product = rng.choice(("Enterprise Subscription", "Support Renewal", "Professional Services", "Training"))
        stage = rng.randrange(0, 2)
        amount = float(rng.choice((15, 25, 35, 60, 90, 120, 250)) * 1000)
        close = (created + timedelta(days=rng.randrange(30, 120))).date()
        opp = SObject("Opportunity", record_id("006", len(self.opportunities) + 1), created, created,
                      {"Name": f"{company} - {product}", "StageName": STAGES[stage][0], "Amount": amount,
                       "Probability": float(STAGES[stage][1]), "CloseDate": close, "IsClosed": False,
                       "IsWon": False, "LeadSource": source, "Account.Name": company})
        at = created
        while stage < len(STAGES) - 1 and rng.random() < 0.6:
            stage += rng.randrange(1, 3)
            stage = min(stage, len(STAGES) - 1)
            at += timedelta(hours=24 + rng.expovariate(1 / 150))
            opp.add(at, StageName=STAGES[stage][0], Probability=float(STAGES[stage][1]))
        if rng.random() < 0.75:
            won = rng.random() < 0.3 + 0.08 * stage
            at += timedelta(hours=24 + rng.expovariate(1 / 300))
            opp.add(at, StageName="Closed Won" if won else "Closed Lost", Probability=100.0 if won else 0.0,
                    IsClosed=True, IsWon=won, CloseDate=at.date())
        self.opportunities.append(opp)
        self._opportunities_sorted = False      # a conversion's opportunity can lie weeks after its lead

    def visible(self, sobject: str, moment: datetime) -> list[SObject]:
        if not self._opportunities_sorted:
            self.opportunities.sort(key=lambda opp: opp.visible_from)
            self._opportunities_sorted = True
        records = self.leads if sobject == "Lead" else self.opportunities
        return records[:bisect.bisect_right([r.visible_from for r in records], moment)]
