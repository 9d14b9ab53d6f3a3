"""A local Salesforce org for the demo and the tests: the OAuth token endpoint and the REST query resource, in
Salesforce's wire format, over HTTPS (simple-salesforce only builds https:// URLs), over deterministic
generated lead and opportunity history.

Endpoints (REST API, as on a real org; `vXX.X` is any version):

    POST /services/oauth2/token             grant_type=client_credentials (client_id, client_secret) or
                                            password (+ username, password): {"access_token", "instance_url", ...};
                                            bad credentials: 400 {"error": "invalid_client"|"invalid_grant", ...}
    GET  /services/data/vXX.X/query?q=SOQL  {"totalSize", "done", "nextRecordsUrl"?, "records": [...]}
    GET  /services/data/vXX.X/query/<locator>-<offset>    the next page ("Query More Results")

SOQL understood: `SELECT f, ..., Account.Name, (SELECT Field, OldValue, NewValue, CreatedDate FROM Histories
[WHERE Field = 'Status']) FROM Lead|Opportunity [WHERE <field> <op> <literal> [AND ...]] [ORDER BY f [ASC|DESC]]
[LIMIT n]`. Unknown fields answer 400 INVALID_FIELD, unparsable queries 400 MALFORMED_QUERY, a missing or
expired token 401 INVALID_SESSION_ID; errors are JSON arrays of {message, errorCode}. Pages hold 2000
records (`Sforce-Query-Options: batchSize=N` asks for fewer); the answer's `Date` header is the org's clock.

History (generated in `simulators/salesforce_org.py`): from `start`, each day draws its leads from a generator
seeded by (seed, day): more on weekdays, growing over the years, spikes before each monthly webinar and in two
conference weeks a year, whose badge scans are imported five days later with their CreatedDate set to the scan
time (Salesforce's "Set Audit Fields upon Record Creation"): old creation dates that appear late. Each lead
then lives: it is contacted ("Working - Contacted", which also stamps the custom field MQL_Date__c),
converted ("Closed - Converted", often with an opportunity) or closed; some get unrelated edits, some only a
system touch (SystemModstamp moves, LastModifiedDate does not). Status changes are tracked in LeadHistory.
Opportunities (from conversions and sales-sourced) move through the standard stages to Closed Won / Lost.
The org shows what had happened by its clock: the real time, or a time a test sets (`set_time`).

Test hooks: `inject_faults` (403 REQUEST_LIMIT_EXCEEDED, 401 INVALID_SESSION_ID, 5xx, dropped connections,
with or without Retry-After), `inject_records` (malformed records), `expire_sessions`, `reject_sessions`,
`partial_pages`. The demo (`demo_process`) adds a 20-minute maintenance window (503) 20 minutes after start.

Run: python -m simulators.salesforce --port 8092 --ca-file var/salesforce-demo-ca.pem \\
        --client-id-env SALESFORCE_CLIENT_ID --client-secret-env SALESFORCE_CLIENT_SECRET
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import trustme

from simulators.jsonserver import Fault, JsonApiSimulator, Reply, Request, argument_parser, serve_until_stopped
from simulators.salesforce_org import DEFAULT_START, IMPORT_DELAY, Org, SObject, record_id, sf_datetime

UTC = timezone.utc
PAGE_SIZE = 2000
INVALID_FIELD = ("\n{query}\n       ^\nERROR at Row:1:Column:8\nNo such column '{name}' on entity '{entity}'. If you "
                 "are attempting to use a custom field, be sure to append the '__c' after the custom field name. "
                 "Please reference your WSDL or the describe call for the appropriate names.")


# -- SOQL ---------------------------------------------------------------------------------------------------
FIELDS = {
    "Lead": ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "Status", "LeadSource", "Company", "Rating",
             "IsConverted", "ConvertedDate", "MQL_Date__c"),
    "Opportunity": ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "Name", "StageName", "Amount",
                    "Probability", "CloseDate", "IsClosed", "IsWon", "LeadSource", "Account.Name"),
}
HISTORY_FIELDS = ("Field", "OldValue", "NewValue", "CreatedDate")
SOQL = re.compile(r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<object>\w+)(?:\s+WHERE\s+(?P<where>.+?))?"
                  r"(?:\s+ORDER\s+BY\s+(?P<order>[\w.]+)(?:\s+(?P<direction>ASC|DESC))?)?"
                  r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$", re.IGNORECASE | re.DOTALL)
SUBQUERY = re.compile(r"\(\s*SELECT\s+(?P<fields>[^()]+?)\s+FROM\s+Histories(?:\s+WHERE\s+Field\s*=\s*'(?P<field>\w+)')?"
                      r"(?:\s+ORDER\s+BY\s+CreatedDate(?:\s+ASC)?)?\s*\)", re.IGNORECASE)
CONDITION = re.compile(r"^\s*([\w.]+)\s*(<=|>=|!=|=|<|>)\s*(\S+|'[^']*')\s*$")


class QueryError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Query:
    sobject: str
    fields: list[str]
    history: tuple[list[str], str | None] | None
    conditions: list[tuple[str, str, object]]
    order: str | None
    descending: bool
    limit: int | None


def literal(text: str):
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        return date.fromisoformat(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else None
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise QueryError("MALFORMED_QUERY", f"unexpected token: '{text}'") from None


def parse_soql(text: str) -> Query:
    sub = SUBQUERY.search(text)
    match = SOQL.match(text[:sub.start()] + text[sub.end():] if sub else text)
    if not match:
        raise QueryError("MALFORMED_QUERY", f"unexpected token: '{text.split()[0] if text.split() else ''}'")
    sobject = match["object"]
    if sobject not in FIELDS:
        raise QueryError("INVALID_TYPE", f"\n{text}\n^\nERROR at Row:1:Column:1\nsObject type '{sobject}' is not "
                                         "supported. If you are attempting to use a custom object, be sure to append "
                                         "the '__c' after the entity name.")
    history = None
    if sub:
        if sobject != "Lead":
            raise QueryError("INVALID_TYPE", "Didn't understand relationship 'Histories' in FROM part of query call")
        history = ([f.strip() for f in sub["fields"].split(",")], sub["field"])
    fields = [f.strip() for f in match["select"].split(",") if f.strip()]

    def known(name: str) -> str:
        if name not in FIELDS[sobject]:
            raise QueryError("INVALID_FIELD", INVALID_FIELD.format(query=text, name=name, entity=sobject))
        return name

    for name in fields + [match["order"]] * bool(match["order"]):
        known(name)
    for name in (history[0] if history else []):
        if name not in HISTORY_FIELDS:
            raise QueryError("INVALID_FIELD", INVALID_FIELD.format(query=text, name=name, entity="LeadHistory"))
    conditions = []
    for part in re.split(r"\s+AND\s+", match["where"] or "", flags=re.IGNORECASE) if match["where"] else []:
        condition = CONDITION.match(part)
        if not condition:
            raise QueryError("MALFORMED_QUERY", f"unexpected token: '{part.strip()}'")
        conditions.append((known(condition[1]), condition[2], literal(condition[3])))
    return Query(sobject, fields, history, conditions, match["order"], (match["direction"] or "").upper() == "DESC",
                 int(match["limit"]) if match["limit"] else None)


def _compare(value, op: str, wanted) -> bool:
    if value is None or wanted is None:
        return (value is None) == (wanted is None) if op == "=" else (value is None) != (wanted is None) if op == "!=" \
            else False
    if isinstance(value, datetime) and isinstance(wanted, date) and not isinstance(wanted, datetime):
        wanted = datetime.combine(wanted, datetime.min.time(), UTC)
    return {"=": value == wanted, "!=": value != wanted, "<": value < wanted, "<=": value <= wanted,
            ">": value > wanted, ">=": value >= wanted}[op]


def _json_value(value):
    if isinstance(value, datetime):
        return sf_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def run_query(org: Org, query: Query, moment: datetime, version: str) -> list[dict]:
    """The query's records as of `moment`, as Salesforce's JSON."""
    matched = []
    for record in org.visible(query.sobject, moment):
        fast = {"CreatedDate": record.created, "SystemModstamp": record.modstamp(moment), "Id": record.id}
        state = None
        for name, op, wanted in query.conditions:
            if name not in fast and state is None:
                state = record.state(moment)
            if not _compare(fast[name] if name in fast else state.get(name), op, wanted):
                break
        else:
            matched.append((record, state or record.state(moment)))
    if query.order:
        matched.sort(key=lambda pair: (pair[1].get(query.order) is None, pair[1].get(query.order) or 0),
                     reverse=query.descending)
    if query.limit is not None:
        matched = matched[:query.limit]
    base = f"/services/data/v{version}/sobjects"
    answer = []
    for record, state in matched:
        item = {"attributes": {"type": record.type, "url": f"{base}/{record.type}/{record.id}"}}
        for name in query.fields:
            if name == "Account.Name":
                account = record_id("001", int(hashlib.sha256(state[name].encode()).hexdigest()[:8], 16)) \
                    if state.get(name) else ""
                item["Account"] = {"attributes": {"type": "Account", "url": f"{base}/Account/{account}"},
                                   "Name": state[name]} if state.get(name) else None
            else:
                item[name] = _json_value(state.get(name))
        if query.history:
            fields, only = query.history
            rows = [r for r in record.status_history(moment) if only in (None, "Status")]
            item["Histories"] = {"totalSize": len(rows), "done": True, "records": [
                {"attributes": {"type": "LeadHistory", "url": f"{base}/LeadHistory/017{record.id[3:15]}{n:03d}"},
                 **{f: _json_value(r[f]) for f in fields}} for n, r in enumerate(rows)]} if rows else None
        answer.append(item)
    return answer


# -- the server ---------------------------------------------------------------------------------------------
ERROR_BODIES = {
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: "
                               "1193052283-77445 (-1434654123)"),
    503: ("SERVER_UNAVAILABLE", "Salesforce is down for maintenance. Please try again later."),
}


def errors(code: str, message: str) -> list[dict]:
    """Salesforce's error answer: a JSON array of {message, errorCode}."""
    return [{"message": message, "errorCode": code}]


def fault_errors(status: int, code: str = "") -> list[dict]:
    """The error a struck request gets: the usual one for `status`, or with `code` as its errorCode."""
    usual_code, message = ERROR_BODIES.get(status, ("UNKNOWN_EXCEPTION", "An unexpected error occurred."))
    return errors(code or usual_code, message)


class SalesforceSimulator(JsonApiSimulator):
    """The simulated org over HTTPS. `start()` serves it on a thread; use as a context manager in tests."""
    server_name = None
    content_type = "application/json;charset=UTF-8"
    methods = ("GET", "POST")

    def __init__(self, *, seed: int = 1, start: date = DEFAULT_START, scale: float = 1.0,
                 client_id: str = "sim-client", client_secret: str = "sim-secret", username: str = "api@example.com",
                 password: str = "sim-password", ca_file: str | Path | None = None, page_size: int = PAGE_SIZE,
                 **server):
        super().__init__(tls_ca=trustme.CA(), **server)
        self.org = Org(seed, start, scale)
        self.client_id, self.client_secret, self.username, self.password = client_id, client_secret, username, password
        self.page_size = page_size
        self._ca_file = Path(ca_file) if ca_file else None
        self.tokens: set[str] = set()
        self.injected: dict[str, list] = {}          # object -> raw records served first, as they are
        self.unavailable: tuple[float, float] | None = None     # (from, until) in time.time(): a maintenance window
        self.reject_sessions = False                 # every query answers 401 INVALID_SESSION_ID (a revoked app)
        self.partial_pages = 0                       # the next N pages stop halfway, claiming to be the last
        self.queries: list[str] = []                 # every SOQL received, for tests that check what was asked
        self._results: dict[str, list[dict]] = {}

    # -- the certificate ----------------------------------------------------------------------------------
    @property
    def ca_file(self) -> str:
        """The PEM of the CA that signed the server's certificate: what a client must trust."""
        if self._ca_file is None:
            self._ca_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"salesforce-sim-ca-{uuid.uuid4().hex[:8]}.pem"
            self._write_ca()
        return str(self._ca_file)

    def _write_ca(self) -> None:
        self._ca_file.parent.mkdir(parents=True, exist_ok=True)
        self.tls_ca.cert_pem.write_to_path(str(self._ca_file))     # every start has a new CA: replace the old file

    def start(self) -> SalesforceSimulator:
        if self._ca_file is not None:
            self._write_ca()                                # before anyone connects
        return super().start()

    # -- the truth ----------------------------------------------------------------------------------------
    def history(self) -> Org:
        """The org's generated history, extended to cover the clock (and the imports due by then)."""
        with self._lock:
            self.org.extend_to(self.now().date() + IMPORT_DELAY + timedelta(days=1))
        return self.org

    def leads(self) -> list[SObject]:
        return self.history().visible("Lead", self.now())

    def opportunities(self) -> list[SObject]:
        return self.history().visible("Opportunity", self.now())

    # -- test hooks ---------------------------------------------------------------------------------------
    def inject_faults(self, count: int, status: int = 500, retry_after: float | None = None, code: str = "",
                      on: str = "/query") -> None:
        """Answer the next `count` requests whose path contains `on` with `status` (0 drops the connection),
        with Retry-After when given, and `code` as the errorCode instead of the usual one for the status."""
        body = fault_errors(status, code) if code else None
        super().inject_faults(count, status, retry_after, body=body, only=on)

    def inject_records(self, sobject: str, records: list) -> None:
        """Raw JSON records served at the start of the next query on `sobject` (they may be malformed)."""
        with self._lock:
            self.injected.setdefault(sobject, []).extend(records)

    def expire_sessions(self) -> None:
        """Every access token issued so far stops working (a session timeout, a revoked token)."""
        with self._lock:
            self.tokens.clear()

    def take_fault(self, request: Request) -> Fault | None:
        """A maintenance window and rejected sessions come before the faults a test queued (which wait)."""
        with self._lock:
            if self.unavailable and self.unavailable[0] <= time.time() < self.unavailable[1]:
                return Fault(503)
            if self.reject_sessions and "/query" in request.path:
                return Fault(401)
            return super().take_fault(request)

    # -- Salesforce's envelope and headers ----------------------------------------------------------------
    def error_body(self, status: int, message: str) -> list[dict]:
        return errors(ERROR_BODIES.get(status, ("UNKNOWN_EXCEPTION",))[0], message)

    def fault_body(self, status: int) -> list[dict]:
        return fault_errors(status)

    def common_headers(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": "api-usage=25/15000"}

    # -- requests -----------------------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        if request.method == "POST":
            if request.path != "/services/oauth2/token":
                return Reply(404, errors("NOT_FOUND", "The requested resource does not exist"))
            form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
            return Reply(*self.issue_token(form))
        match = re.fullmatch(r"/services/data/v(\d+\.\d)/query(?:/(\w+)-(\d+))?/?", request.path)
        if not match:
            return Reply(404, errors("NOT_FOUND", "The requested resource does not exist"))
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return Reply(401, errors("INVALID_SESSION_ID", "Session expired or invalid"))
        options = re.search(r"batchSize=(\d+)", request.headers.get("sforce-query-options", ""))
        batch_size = max(200, min(PAGE_SIZE, int(options[1]))) if options else PAGE_SIZE
        version, locator, offset = match.groups()
        try:
            if locator:
                return Reply(200, self.page(locator, int(offset), version, batch_size))
            soql = request.query.get("q", "")
            self.queries.append(soql)
            return Reply(200, self.query(soql, version, batch_size))
        except QueryError as exc:
            return Reply(400, errors(exc.code, str(exc)))

    def issue_token(self, form: dict[str, str]) -> tuple[int, dict]:
        grant = form.get("grant_type")
        if grant not in ("client_credentials", "password"):
            return 400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
        if form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_client_id", "error_description": "client identifier invalid"}
        if form.get("client_secret") != self.client_secret:
            return 400, {"error": "invalid_client", "error_description": "invalid client credentials"}
        if grant == "password" and (form.get("username"), form.get("password")) != (self.username, self.password):
            return 400, {"error": "invalid_grant", "error_description": "authentication failure"}
        token = "00D5g000004Sim!" + uuid.uuid4().hex + uuid.uuid4().hex
        with self._lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "instance_url": self.url,
                     "id": f"{self.url}/id/00D5g000004SimEAA/0055g00000SimUAAA", "token_type": "Bearer",
                     "issued_at": str(int(self.now().timestamp() * 1000)),
                     "signature": hashlib.sha256(token.encode()).hexdigest()[:44] + "="}

    def query(self, soql: str, version: str, batch_size: int) -> dict:
        query = parse_soql(soql)
        records = run_query(self.history(), query, self.now(), version)
        with self._lock:
            records = self.injected.pop(query.sobject, []) + records
            locator = "01g5g00000" + uuid.uuid4().hex[:8].upper()
            self._results[locator] = records
        return self.page(locator, 0, version, batch_size)

    def page(self, locator: str, offset: int, version: str, batch_size: int) -> dict:
        with self._lock:
            records = self._results.get(locator)
        if records is None or offset > len(records):
            raise QueryError("INVALID_QUERY_LOCATOR", "invalid query locator")
        size = min(self.page_size, batch_size)
        chunk, following = records[offset:offset + size], offset + size
        with self._lock:
            cut, self.partial_pages = self.partial_pages > 0, max(0, self.partial_pages - 1)
        if cut:            # a proxy or a bug cut the answer short: half the page, and "done"
            chunk, following = chunk[:len(chunk) // 2], len(records)
        body = {"totalSize": len(records), "done": following >= len(records), "records": chunk}
        if following < len(records):
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{following}"
        else:
            with self._lock:
                self._results.pop(locator, None)
        return body


# -- command line -------------------------------------------------------------------------------------------
DEMO_OUTAGE_AFTER = 20 * 60          # seconds after start: a maintenance window the scheduler must ride out
DEMO_OUTAGE_MINUTES = 20


def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    salesforce = cfg.sources.salesforce
    port = urlsplit(salesforce.login_url).port or 443
    ca_file = Path(salesforce.ca_bundle)
    ca_file = ca_file if ca_file.is_absolute() else cfg.path.parent / ca_file
    return ["--port", str(port), "--ca-file", str(ca_file), "--client-id-env", salesforce.client_id_env,
            "--client-secret-env", salesforce.client_secret_env,
            "--outage-after", str(DEMO_OUTAGE_AFTER), "--outage-minutes", str(DEMO_OUTAGE_MINUTES)], port


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser("simulators.salesforce", __doc__, port=8092,
                             since_help="first day of history (default: 450 days ago)")
    parser.add_argument("--ca-file", required=True, help="where to write the PEM of the test CA clients must trust")
    parser.add_argument("--client-id-env", default="SALESFORCE_CLIENT_ID")
    parser.add_argument("--client-secret-env", default="SALESFORCE_CLIENT_SECRET")
    parser.add_argument("--outage-after", type=float, default=0, help="seconds after start of a maintenance window")
    parser.add_argument("--outage-minutes", type=float, default=0, help="its length (0: none)")
    args = parser.parse_args(argv)
    client_id, client_secret = os.environ.get(args.client_id_env), os.environ.get(args.client_secret_env)
    if not client_id or not client_secret:
        print(f"error: set ${args.client_id_env} and ${args.client_secret_env} (the credentials to accept)",
              file=sys.stderr)
        return 2
    since = args.since or (datetime.now(UTC).date() - timedelta(days=450))
    sim = SalesforceSimulator(seed=args.seed, start=since, host=args.host, port=args.port, client_id=client_id,
                              client_secret=client_secret, ca_file=args.ca_file)
    sim.history()                # generate before serving, so the first query is not slow
    if args.outage_minutes:
        begin = time.time() + args.outage_after
        sim.unavailable = (begin, begin + args.outage_minutes * 60)
    return serve_until_stopped(sim, f"Salesforce simulator on {{url}} (CA: {sim.ca_file}), {len(sim.leads())} leads "
                                    f"and {len(sim.opportunities())} opportunities so far")


if __name__ == "__main__":
    sys.exit(main())
