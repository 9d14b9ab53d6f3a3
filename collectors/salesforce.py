"""`salesforce`: leads and opportunities from a Salesforce org, by SOQL over the REST API (simple-salesforce).

What is stored: every version of every Lead and Opportunity we read (`raw_salesforce_leads`,
`raw_salesforce_opportunities`, keyed by Id + SystemModstamp), and each lead's Status changes from
LeadHistory (`raw_salesforce_lead_status_changes`, with the status it was created in as a row at its
CreatedDate). `warehouse.metrics` counts each lead once at its CreatedDate (raw leads), once when it first
reached an inquiry or MQL stage, and each opportunity once at its CreatedDate, however many versions arrive.
LeadHistory is what makes stage times exact when a lead passed through a stage between two runs (or during
an outage): without it a stage would be dated by the first version we happened to see in it.

Cursor: {"system_modstamp": ISO time}. Each run asks for records whose SystemModstamp is after it (less
`overlap_minutes`, since a record can commit with a stamp slightly in the past), oldest first in windows of
`chunk_days`, one batch per window committed with the window's end as the new cursor. The first run starts
`history_days` back. The last window ends at the org's own clock (the `Date` of its answers), so the
cursor never runs ahead of records the org has yet to write. `backfill` re-reads the current version of
every record created in a date range (CreatedDate), leaving the cursor alone.

Failures: an expired session (401 INVALID_SESSION_ID) logs in again once; refused credentials, a field the org
does not have, or an org without Lead history tracking raise `SourceError` naming the config keys to fix;
REQUEST_LIMIT_EXCEEDED, 5xx, dropped connections and garbled pages are retried (Retry-After honoured, else
exponential backoff) and fail the run with the reason after `http.ATTEMPTS` attempts. A record we cannot use
goes to quarantine with the reason; the rest of its page is stored.
"""
from __future__ import annotations

import re
import json
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import requests
from simple_salesforce import Salesforce as SalesforceClient
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from pydantic import Field, field_validator
from collectors import http
from collectors.base import Batch, Context, Demo, Malformed, Rejected, Source, SourceError, quarantine_text
from config import SourceConfig
from warehouse.catalog import COUNTER, Metric, RawTable
from warehouse.metrics import salesforce_sql
from warehouse.retry import Retryable, parse_retry_after, retry
from warehouse import timegrid

log = logging.getLogger("caskalytics.collectors.salesforce")
UTC = timezone.utc
LEAD_FIELDS = ("Id", "SystemModstamp", "CreatedDate", "LastModifiedDate", "Status", "IsConverted", "ConvertedDate",
               "LeadSource", "Company")
STATUS_HISTORY = "(SELECT Field, OldValue, NewValue, CreatedDate FROM Histories WHERE Field = 'Status')"
OPPORTUNITY_FIELDS = ("Id", "SystemModstamp", "CreatedDate", "LastModifiedDate", "Name", "StageName", "Amount",
                      "Probability", "CloseDate", "IsClosed", "IsWon", "LeadSource", "Account.Name")
SECTION = "[sources.salesforce]"


class SalesforceConfig(SourceConfig):
    """OAuth 2.0 against `login_url` (client-credentials, or username-password), then SOQL over REST.
    Lead stages: a lead is an inquiry / MQL from the first time its Status is one of the listed values, or
    the named Lead field (a date, datetime or checkbox, e.g. a custom MQL_Date__c) is set."""
    login_url: str = "https://login.salesforce.com"     # token endpoint: <login_url>/services/oauth2/token
    grant_type: Literal["client_credentials", "password"] = "client_credentials"
    client_id_env: str = "SALESFORCE_CLIENT_ID"
    client_secret_env: str = "SALESFORCE_CLIENT_SECRET"
    username: str = ""                                   # password grant only
    password_env: str = "SALESFORCE_PASSWORD"            # password grant: password + security token
    instance_url: str = ""                               # "" = the instance_url the token answer names
    api_version: str = "59.0"
    ca_bundle: str = ""                                  # PEM file of CAs to trust; "" = the system CAs
    inquiry_statuses: list[str] = ["Working - Contacted", "Closed - Converted"]
    mql_statuses: list[str] = ["Closed - Converted"]
    inquiry_field: str = ""
    mql_field: str = ""
    status_history: bool = True          # read LeadHistory (Status tracked) to date stages reached between runs
    overlap_minutes: int = Field(default=5, ge=0)       # re-read: SystemModstamp can commit slightly late

    @field_validator("inquiry_field", "mql_field")
    @classmethod
    def api_field_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise ValueError(f"a Lead field API name such as 'MQL_Date__c', got {value!r}")
        return value



# -- Salesforce values -> Python --------------------------------------------------------------------------
def parse_time(value: Any, name: str) -> datetime:
    """A Salesforce datetime ("2016-03-01T17:02:11.000+0000") as an aware UTC datetime."""
    if not isinstance(value, str):
        raise Malformed(f"{name} is not a datetime string: {value!r:.80}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{name} is not a Salesforce datetime: {value!r:.80}") from None
    if moment.tzinfo is None:
        raise Malformed(f"{name} has no UTC offset: {value!r:.80}")
    return moment.astimezone(UTC)


def _get(record: dict, name: str, required: bool) -> Any:
    value = record.get(name)
    if value is None and required:
        raise Malformed(f"{name} is missing")
    return value


def _time(record: dict, name: str, required: bool = True) -> datetime | None:
    value = _get(record, name, required)
    return None if value is None else parse_time(value, name)


def _date(record: dict, name: str) -> date | None:
    value = record.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value) if isinstance(value, str) else _fail(name, value, "a date")
    except ValueError:
        raise Malformed(f"{name} is not a date: {value!r:.80}") from None


def _text(record: dict, name: str, required: bool = False) -> str | None:
    value = _get(record, name, required)
    if value is not None and not isinstance(value, str):
        _fail(name, value, "text")
    return value


def _number(record: dict, name: str) -> float | None:
    value = record.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        _fail(name, value, "a number")
    return value


def _flag(record: dict, name: str) -> bool | None:
    value = record.get(name)
    if value is not None and not isinstance(value, bool):
        _fail(name, value, "true/false")
    return value


def _fail(name: str, value: Any, expected: str):
    raise Malformed(f"{name} is not {expected}: {value!r:.80}")


def stage_field_time(record: dict, name: str, version_time: datetime) -> datetime | None:
    """When the stage field `name` says the lead reached its stage: a datetime as is, a date at 12:00 UTC
    (a date has no time of day; noon keeps it on that date in the reporting zones), a checked checkbox at
    this version's time; None while it is empty or unchecked."""
    if not name:
        return None
    value = record.get(name)
    if value is None or value is False:
        return None
    if value is True:
        return version_time
    if isinstance(value, str) and len(value) == 10:
        return datetime.combine(_date(record, name), time(12), UTC)
    return parse_time(value, name)


def _stored(record: dict) -> str:
    """The record as Salesforce sent it, for later metrics (without the envelope and the history)."""
    return json.dumps({k: v for k, v in record.items() if k not in ("attributes", "Histories")}, ensure_ascii=False)


def lead_row(record: Any, settings: SalesforceConfig) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise Malformed("not a JSON object")
    version_time = _time(record, "SystemModstamp")
    return {"ts": version_time, "id": _text(record, "Id", required=True), "created_date": _time(record, "CreatedDate"),
            "last_modified_date": _time(record, "LastModifiedDate", required=False),
            "status": _text(record, "Status"), "is_converted": _flag(record, "IsConverted"),
            "converted_date": _date(record, "ConvertedDate"), "lead_source": _text(record, "LeadSource"),
            "inquiry_field_at": stage_field_time(record, settings.inquiry_field, version_time),
            "mql_field_at": stage_field_time(record, settings.mql_field, version_time), "record": _stored(record)}


def status_change_rows(record: dict, lead: dict[str, Any]) -> list[dict[str, Any]]:
    """The lead's Status changes from its `Histories`, and the status it was created in (the first change's
    old value, or the current status when it never changed) as a row at its CreatedDate."""
    histories = record.get("Histories")
    entries = histories.get("records") if isinstance(histories, dict) else [] if histories is None else None
    if not isinstance(entries, list):
        raise Malformed("Histories is not a list of LeadHistory records")
    changes = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise Malformed("a Histories record is not a JSON object")
        if entry.get("Field") == "Status":
            changes.append({"ts": _time(entry, "CreatedDate"), "id": lead["id"],
                            "old_status": _text(entry, "OldValue"), "new_status": _text(entry, "NewValue")})
    changes.sort(key=lambda change: change["ts"])
    created_in = changes[0]["old_status"] if changes else lead["status"]
    return [{"ts": lead["created_date"], "id": lead["id"], "old_status": None, "new_status": created_in}, *changes]


def opportunity_row(record: Any) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise Malformed("not a JSON object")
    account = record.get("Account")
    if account is not None and not isinstance(account, dict):
        _fail("Account", account, "a related record")
    return {"ts": _time(record, "SystemModstamp"), "id": _text(record, "Id", required=True),
            "created_date": _time(record, "CreatedDate"),
            "last_modified_date": _time(record, "LastModifiedDate", required=False), "name": _text(record, "Name"),
            "stage_name": _text(record, "StageName"), "amount": _number(record, "Amount"),
            "probability": _number(record, "Probability"), "close_date": _date(record, "CloseDate"),
            "is_closed": _flag(record, "IsClosed"), "is_won": _flag(record, "IsWon"),
            "lead_source": _text(record, "LeadSource"),
            "account_name": _text(account, "Name") if account else None, "record": _stored(record)}


def soql_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the org: login, queries, retries ---------------------------------------------------------------------
class Org:
    """One logged-in connection to the org. Every call goes through `_call`: retried when worth it, logged in
    again once when the session expired, and turned into a one-line `SourceError` when only the operator
    can fix it."""

    def __init__(self, ctx: Context):
        self.settings: SalesforceConfig = ctx.settings
        self.ctx = ctx
        self.session = http.new_session(ca_bundle=self._ca_bundle(ctx))
        self.session.hooks["response"].append(self._note_response)
        self.server_now: datetime | None = None       # the org's clock, from the Date of its latest answer
        self.last_response: requests.Response | None = None
        self.client: SalesforceClient | None = None

    def _ca_bundle(self, ctx: Context) -> str:
        if not self.settings.ca_bundle:
            return ""
        path = Path(self.settings.ca_bundle)
        path = path if path.is_absolute() else ctx.config.path.parent / path
        if not path.is_file():
            raise SourceError(f"{SECTION} ca_bundle names {path}, which is not a file")
        return str(path)

    def _note_response(self, response: requests.Response, *args, **kwargs) -> None:
        self.last_response = response
        if (moment := http.http_date(response.headers.get("Date"))) is not None:
            self.server_now = max(self.server_now or moment, moment)

    def close(self) -> None:
        self.session.close()

    # -- OAuth 2.0 --------------------------------------------------------------------------------------
    def _credentials(self) -> dict[str, str]:
        s = self.settings
        needed = {"client_id": s.client_id_env, "client_secret": s.client_secret_env}
        if s.grant_type == "password":
            needed["password"] = s.password_env
        values = {name: self.ctx.secret(env) for name, env in needed.items()}
        missing = [f"{name}_env (${needed[name]})" for name, value in values.items() if value is None]
        if missing:
            raise SourceError(f"Salesforce credentials are not set: {SECTION} {', '.join(missing)}")
        if s.grant_type == "password" and not s.username:
            raise SourceError(f"{SECTION} username is required for grant_type = 'password'")
        form = {"grant_type": s.grant_type, **values}
        if s.grant_type == "password":
            form["username"] = s.username
        return form

    def credential_hint(self) -> str:
        s = self.settings
        keys = [f"client_id_env (${s.client_id_env})", f"client_secret_env (${s.client_secret_env})"]
        if s.grant_type == "password":
            keys += ["username", f"password_env (${s.password_env}, password + security token)"]
        return f"{SECTION} login_url ({s.login_url}), grant_type ({s.grant_type}), " + ", ".join(keys)

    def login(self) -> None:
        form = self._credentials()
        url = self.settings.login_url.rstrip("/") + "/services/oauth2/token"

        def attempt() -> dict:
            try:
                response = self.session.post(url, data=form, headers={"Accept": "application/json"})
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise Retryable(f"Salesforce login: {type(exc).__name__}: {exc}") from exc
            if response.status_code == 429 or response.status_code >= 500:
                raise Retryable(f"Salesforce login: HTTP {response.status_code}",
                                retry_after=parse_retry_after(response.headers.get("Retry-After")))
            body = _json(response)
            if response.status_code >= 400 or not isinstance(body, dict) or not body.get("access_token"):
                reason = (f"{body.get('error')}: {body.get('error_description')}" if isinstance(body, dict)
                          else response.text[:200])
                raise SourceError(f"Salesforce refused the login (HTTP {response.status_code} {reason}): check "
                                  f"{self.credential_hint()}")
            return body

        body = self._retrying(attempt, "Salesforce login")
        instance_url = self.settings.instance_url or body.get("instance_url")
        if not instance_url:
            raise SourceError(f"the token answer names no instance_url: set {SECTION} instance_url")
        self.client = SalesforceClient(instance_url=instance_url, session_id=body["access_token"],
                                       session=self.session, version=self.settings.api_version)

    # -- queries ----------------------------------------------------------------------------------------
    def query_pages(self, soql: str, what: str) -> Iterator[tuple[str, list]]:
        """Each page of the query as (where it came from, records), following nextRecordsUrl. An answer that
        ends before its `totalSize` raises `http.BadResponse`: the window must not be committed half read."""
        body = self._call(lambda client: client.query(soql), what)
        yield f"{self.client.base_url}query", body["records"]
        received = len(body["records"])
        for origin, records in self._pages(body, what):
            received += len(records)
            yield origin, records
        total = body.get("totalSize")
        if isinstance(total, int) and received < total:
            raise http.BadResponse(f"{what}: the answer ended after {received} of its {total} records")

    def rest_of(self, subquery: Any, what: str) -> Any:
        """A nested subquery result (a lead's Histories) with the records of its further pages added."""
        if not isinstance(subquery, dict) or subquery.get("done", True) or not isinstance(subquery.get("records"), list):
            return subquery
        records = list(subquery["records"])
        for _, more in self._pages(subquery, what):
            records += more
        return {**subquery, "records": records, "done": True}

    def _pages(self, body: dict, what: str) -> Iterator[tuple[str, list]]:
        visited = set()
        while body.get("done") is False:
            next_url = body.get("nextRecordsUrl")
            if not isinstance(next_url, str) or next_url in visited:   # a locator that repeats would page forever
                raise http.BadResponse(f"{what}: more records follow, but nextRecordsUrl is {next_url!r}")
            visited.add(next_url)
            body = self._call(lambda client: client.query_more(next_url, identifier_is_url=True), what)
            yield next_url, body["records"]

    def _call(self, action: Callable[[SalesforceClient], Any], what: str) -> dict:
        for fresh_login in (False, True):
            try:
                return self._retrying(lambda: self._attempt(action, what), what)
            except SalesforceExpiredSession:
                if fresh_login:
                    raise SourceError(f"{what}: Salesforce rejected a fresh access token (INVALID_SESSION_ID): check "
                                      f"{self.credential_hint()}, and that the connected app may use the API") from None
                log.info("%s: the Salesforce session expired; logging in again", what)
                self.login()
        raise AssertionError("unreachable")

    @staticmethod
    def _retrying(attempt: Callable[[], Any], what: str) -> Any:
        try:
            return retry(attempt, attempts=http.ATTEMPTS, what=what)
        except Retryable as exc:
            raise http.Unavailable(f"{exc} (gave up after {http.ATTEMPTS} attempts)") from exc

    def _attempt(self, action: Callable[[SalesforceClient], Any], what: str) -> dict:
        try:
            body = action(self.client)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Retryable(f"{what}: {type(exc).__name__}: {exc}") from exc
        except SalesforceExpiredSession:
            raise
        except SalesforceError as exc:
            self._refused(exc, what)
        except ValueError:                 # a 2xx whose body is not JSON (a proxy's page, a cut-off answer)
            raise Retryable(f"{what}: the answer is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise Retryable(f"{what}: the answer has no records list: {quarantine_text(body)[:200]}")
        return body

    def _refused(self, exc: SalesforceError, what: str):
        code, message = _error(exc.content)
        headers = self.last_response.headers if self.last_response is not None else {}
        wait = parse_retry_after(headers.get("Retry-After"))
        if code == "REQUEST_LIMIT_EXCEEDED" or exc.status == 429 or exc.status >= 500:
            if wait is not None and wait > http.MAX_SERVER_WAIT:
                raise http.Unavailable(f"{what}: HTTP {exc.status} {code}: {message}; the org asks to wait "
                                       f"{wait:.0f}s") from None
            raise Retryable(f"{what}: HTTP {exc.status} {code}: {message}", retry_after=wait) from None
        if code == "INVALID_FIELD":
            raise SourceError(f"{what}: the org has no such field ({_last_line(message)}): check {SECTION} "
                              "inquiry_field and mql_field") from None
        if code == "INVALID_TYPE" and "Histories" in message:
            raise SourceError(f"{what}: the org does not track Lead history ({_last_line(message)}): enable "
                              f"field history tracking for Lead Status, or set {SECTION} status_history = false") \
                from None
        if exc.status in (401, 403):
            raise SourceError(f"{what} was refused (HTTP {exc.status} {code}: {message}): check that the user "
                              f"behind {self.credential_hint()} may read Leads and Opportunities through the API") \
                from None
        raise SourceError(f"{what}: HTTP {exc.status} {code}: {_last_line(message)}") from None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error(content: Any) -> tuple[str, str]:
    """(errorCode, message) of a REST error body: a JSON array of {message, errorCode}."""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "")), str(content[0].get("message", ""))
    return "", str(content)[:200]


def _last_line(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


# -- the collector ----------------------------------------------------------------------------------------
class Salesforce:

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        settings: SalesforceConfig = ctx.settings
        org = Org(ctx)
        try:
            org.login()
            now = org.server_now or datetime.now(UTC)
            start = _saved_time(cursor) or now - timedelta(days=settings.history_days)
            overlap = timedelta(minutes=settings.overlap_minutes)
            windows = list(_windows(start, now, timedelta(days=settings.chunk_days)))
            for index, (low, high) in enumerate(windows, 1):
                # Only where the last run stopped can a late-committed record hide; the windows of one run abut.
                low = low - overlap if index == 1 else low
                where = f"SystemModstamp > {soql_time(low)} AND SystemModstamp <= {soql_time(high)}"
                batch = self._read(org, where, "SystemModstamp")
                batch.cursor = {"system_modstamp": high.isoformat()}
                batch.progress, batch.label = (index, len(windows)), f"modified {low:%Y-%m-%d %H:%M}..{high:%Y-%m-%d %H:%M}"
                yield batch
        finally:
            org.close()

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        """The current version of every lead and opportunity created in [start, end] (reporting time zone)."""
        settings: SalesforceConfig = ctx.settings
        first, after_last = timegrid.local_day_bounds(start, end, ctx.config.warehouse.timezone)
        org = Org(ctx)
        try:
            org.login()
            windows = list(_windows(first, after_last, timedelta(days=settings.chunk_days)))
            for index, (low, high) in enumerate(windows, 1):
                batch = self._read(org, f"CreatedDate >= {soql_time(low)} AND CreatedDate < {soql_time(high)}",
                                   "CreatedDate")
                batch.progress, batch.label = (index, len(windows)), f"created {low:%Y-%m-%d}..{high:%Y-%m-%d}"
                yield batch
        finally:
            org.close()

    def _read(self, org: Org, where: str, order: str) -> Batch:
        """Leads (with their Status history) and opportunities matching `where`, as one batch."""
        settings: SalesforceConfig = org.settings
        lead_fields = list(LEAD_FIELDS) + [f for f in (settings.inquiry_field, settings.mql_field)
                                           if f and f not in LEAD_FIELDS]
        if settings.status_history:
            lead_fields.append(STATUS_HISTORY)
        leads, changes, opportunities, rejected = [], [], [], []
        for origin, records in org.query_pages(
                f"SELECT {', '.join(lead_fields)} FROM Lead WHERE {where} ORDER BY {order}", "Salesforce query Lead"):
            for record in records:
                if settings.status_history and isinstance(record, dict) and "Histories" in record:
                    record["Histories"] = org.rest_of(record["Histories"], "Salesforce query LeadHistory")
                try:
                    row = lead_row(record, settings)
                    lead_changes = status_change_rows(record, row) if settings.status_history else []
                except Malformed as exc:
                    rejected.append(Rejected(f"lead: {exc}", quarantine_text(record), origin))
                    continue
                leads.append(row)
                changes += lead_changes
        for origin, records in org.query_pages(
                f"SELECT {', '.join(OPPORTUNITY_FIELDS)} FROM Opportunity WHERE {where} ORDER BY {order}",
                "Salesforce query Opportunity"):
            for record in records:
                try:
                    opportunities.append(opportunity_row(record))
                except Malformed as exc:
                    rejected.append(Rejected(f"opportunity: {exc}", quarantine_text(record), origin))
        return Batch(records={"raw_salesforce_leads": leads, "raw_salesforce_lead_status_changes": changes,
                              "raw_salesforce_opportunities": opportunities}, rejected=rejected)


def _saved_time(cursor: dict | None) -> datetime | None:
    """The saved SystemModstamp mark; anything unreadable counts as never read (first-run backfill)."""
    try:
        moment = datetime.fromisoformat((cursor or {}).get("system_modstamp"))
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def _windows(start: datetime, end: datetime, step: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """[start, end] in consecutive windows of at most `step`, oldest first."""
    low = start
    while low < end:
        high = min(low + step, end)
        yield low, high
        low = high


SOURCE = Source(
    name="salesforce",
    settings=SalesforceConfig,
    collector=Salesforce,
    tables=(
        # Every version of a record (ts = SystemModstamp); a new version of an old record changes the hour it
        # was created in. Status changes come from LeadHistory (ts = when the status changed; the status a lead
        # was created with is a row at its CreatedDate with old_status NULL).
        RawTable(
            "raw_salesforce_leads",
            "ts TIMESTAMPTZ, id VARCHAR, created_date TIMESTAMPTZ, last_modified_date TIMESTAMPTZ, status VARCHAR, "
            "is_converted BOOLEAN, converted_date DATE, lead_source VARCHAR, inquiry_field_at TIMESTAMPTZ, "
            "mql_field_at TIMESTAMPTZ, record JSON",
            key=("id", "ts"), also_affects=("created_date", "inquiry_field_at", "mql_field_at"),
        ),
        RawTable("raw_salesforce_lead_status_changes", "ts TIMESTAMPTZ, id VARCHAR, old_status VARCHAR, new_status VARCHAR",
                 key=("id", "ts", "new_status")),
        RawTable(
            "raw_salesforce_opportunities",
            "ts TIMESTAMPTZ, id VARCHAR, created_date TIMESTAMPTZ, last_modified_date TIMESTAMPTZ, name VARCHAR, "
            "stage_name VARCHAR, amount DOUBLE, probability DOUBLE, close_date DATE, is_closed BOOLEAN, "
            "is_won BOOLEAN, lead_source VARCHAR, account_name VARCHAR, record JSON",
            key=("id", "ts"), also_affects=("created_date",),
        ),
    ),
    metrics=(
        Metric("salesforce.raw_leads", COUNTER, (), "Leads created (by CreatedDate)",
               sql=lambda cfg: salesforce_sql(cfg, "salesforce.raw_leads")),
        Metric("salesforce.inquiries", COUNTER, (),
               "Leads that became inquiries ([sources.salesforce] inquiry_statuses / inquiry_field), when they did",
               sql=lambda cfg: salesforce_sql(cfg, "salesforce.inquiries")),
        Metric("salesforce.mqls", COUNTER, (),
               "Leads that became marketing-qualified ([sources.salesforce] mql_statuses / mql_field), when they did",
               sql=lambda cfg: salesforce_sql(cfg, "salesforce.mqls")),
        Metric("salesforce.opportunities", COUNTER, (), "Opportunities created (by CreatedDate)",
               sql=lambda cfg: salesforce_sql(cfg, "salesforce.opportunities")),
    ),
    demo=Demo("salesforce", secrets={"DEMO_SALESFORCE_CLIENT_ID": "demo-connected-app",
                                     "DEMO_SALESFORCE_CLIENT_SECRET": "demo"}),
)
