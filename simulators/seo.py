"""A local rank tracker for the demo and the tests. Pro Ranking (the tracker Cask used) has no public API, so
Caskalytics defines a small JSON API for rank data (collectors/seo_providers.py: ApiProvider) and this
simulator implements it; `write_csv` writes the same rows in the CSV import format (CsvProvider).

    GET /v1/projects/{project}
        {"id", "name", "first_date", "latest_date", "keywords", "domains"}
    GET /v1/projects/{project}/rankings?from=YYYY-MM-DD&to=YYYY-MM-DD[&page_size=N][&page_token=T]
        {"project", "from", "to", "rankings": [{"date", "keyword", "domain", "position", "search_volume"}],
         "next_page_token": "..." | null}

Authentication: `Authorization: Bearer <api key>`. Errors: {"error": {"code", "message"}} with 400
bad_request, 401 unauthorized, 404 not_found, 429 rate_limited (Retry-After), 503 unavailable.
`latest_date` is the newest day with rankings: the tracker checks every keyword at 08:00 UTC.

History: twenty data-integration keywords with monthly search volumes (seasonal), and for each keyword the
domains that compete for it, ranked each day by a relevance score that drifts (a random walk per keyword and
domain, seeded by (seed, day)): cask.co climbs after an SEO push in September 2025, fivetran.com gains
steadily, talend.com slips, informatica.com holds; wikipedia, AWS, G2 and others fill the rest of the page.
The tracker missed two days in August 2025 (no rankings at all for them).

    python -m simulators.seo --port 8097 --project cask-competitors [--key-env DEMO_SEO_API_KEY]
"""
from __future__ import annotations

import base64
import csv
import logging
import math
import os
import random
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from simulators.jsonserver import (JsonApiSimulator, Reply, Request, argument_parser, configure_logging,
                                   serve_until_stopped)
from simulators.randomness import stable_number

log = logging.getLogger("caskalytics.simulators.seo")
UTC = timezone.utc
DEFAULT_START = date(2025, 1, 1)
CHECKED_AT = time(8, tzinfo=UTC)                    # the tracker checks a day's rankings at this hour
TRACKER_DOWN = {date(2025, 8, 12), date(2025, 8, 13)}
KEYWORDS = {   # keyword -> monthly searches
    "etl tools": 14800, "data integration": 9900, "data pipeline": 8100, "hadoop": 22200,
    "cdap": 720, "data integration platform": 2400, "elt vs etl": 3600, "data ingestion": 4400,
    "change data capture": 3600, "spark etl": 1300, "open source etl": 1900, "data lake": 12100,
    "hadoop ui": 320, "data pipeline tools": 2900, "cloud data fusion": 1600, "reverse etl": 1900,
    "informatica alternatives": 1000, "talend alternatives": 880, "fivetran pricing": 1300,
    "streaming data pipeline": 880,
}
DOMAINS = {    # domain -> (base relevance, yearly trend, keywords it targets: a prefix match, or "*" for all)
    "cask.co": (5.2, 0.0, ("cdap", "hadoop", "data pipeline", "data integration", "open source etl", "spark etl",
                           "cloud data fusion", "data lake", "streaming", "etl tools")),
    "cdap.io": (5.6, 0.0, ("cdap", "hadoop ui", "cloud data fusion", "open source etl")),
    "informatica.com": (6.4, 0.0, ("*",)),
    "talend.com": (6.2, -0.8, ("*",)),
    "fivetran.com": (5.8, 0.9, ("etl", "elt", "data", "reverse etl", "change data capture", "fivetran")),
    "en.wikipedia.org": (6.0, 0.0, ("hadoop", "data lake", "data integration", "change data capture", "etl tools",
                                    "data ingestion", "cdap")),
    "aws.amazon.com": (5.9, 0.1, ("data lake", "etl tools", "data pipeline", "data ingestion", "streaming",
                                  "spark etl")),
    "www.g2.com": (5.5, 0.0, ("etl tools", "data integration platform", "data pipeline tools",
                              "informatica alternatives", "talend alternatives", "fivetran pricing")),
    "medium.com": (4.8, 0.0, ("*",)),
    "stackoverflow.com": (4.6, 0.0, ("hadoop", "spark etl", "cdap", "hadoop ui")),
    "cloud.google.com": (5.7, 0.2, ("cloud data fusion", "data pipeline", "data lake", "cdap", "etl tools")),
}
SEO_PUSH = date(2025, 9, 1)          # cask.co's content push: +1.6 relevance over the following six months


def targets(domain: str, keyword: str) -> bool:
    return any(t == "*" or keyword.startswith(t) or t in keyword for t in DOMAINS[domain][2])


@dataclass(frozen=True)
class Ranking:
    day: date
    keyword: str
    domain: str
    position: int
    search_volume: int

    def as_json(self) -> dict:
        return {"date": self.day.isoformat(), "keyword": self.keyword, "domain": self.domain,
                "position": self.position, "search_volume": self.search_volume}


class RankHistory:
    """Every day's rankings from `start`, generated in order (the relevance drift is a random walk)."""

    def __init__(self, seed: int = 1, start: date = DEFAULT_START):
        self.seed, self.start = seed, start
        self.pairs = [(k, d) for k in KEYWORDS for d in DOMAINS if targets(d, k)]
        self._drift = {pair: 0.0 for pair in self.pairs}
        self._days: list[list[Ranking]] = []
        self._lock = threading.Lock()

    def volume(self, keyword: str, day: date) -> int:
        """Monthly searches as trackers report them: one figure per month, with a seasonal swing."""
        season = 1 + 0.12 * math.cos(2 * math.pi * (day.month - 3) / 12) + 0.08 * ((day.year - 2025) + day.month / 12)
        jitter = stable_number(f"{keyword}/{day.year}-{day.month}", 95, 105) / 100
        return int(round(KEYWORDS[keyword] * season * jitter, -1))

    def _generate(self, day: date) -> list[Ranking]:
        rng = random.Random(f"{self.seed}/rankings/{day.isoformat()}")
        years = (day - self.start).days / 365.25
        scores: dict[str, list[tuple[float, str]]] = {}
        for keyword, domain in self.pairs:
            self._drift[keyword, domain] = 0.97 * self._drift[keyword, domain] + rng.gauss(0, 0.18)
            base, trend, _ = DOMAINS[domain]
            push = 1.6 * min(1.0, max(0, (day - SEO_PUSH).days) / 182) if domain == "cask.co" else 0.0
            focus = stable_number(f"{keyword}/{domain}", 0, 100) / 60          # how well the domain fits it
            score = base + focus + trend * years + push + self._drift[keyword, domain] + rng.gauss(0, 0.15)
            scores.setdefault(keyword, []).append((score, domain))
        if day in TRACKER_DOWN:
            return []
        return [Ranking(day, keyword, domain, position, self.volume(keyword, day))
                for keyword, ranked in scores.items()
                for position, (_, domain) in enumerate(sorted(ranked, reverse=True), 1)]

    def rankings(self, day: date) -> list[Ranking]:
        index = (day - self.start).days
        if index < 0:
            return []
        with self._lock:
            while len(self._days) <= index:
                self._days.append(self._generate(self.start + timedelta(days=len(self._days))))
        return self._days[index]


def latest_date(now: datetime) -> date:
    """The newest day the tracker has checked by `now`."""
    today = now.astimezone(UTC).date()
    return today if now.astimezone(UTC).timetz() >= CHECKED_AT else today - timedelta(days=1)


def write_csv(history: RankHistory, path: Path, first: date, last: date) -> Path:
    """The rankings of [first, last] in the CSV import format (header date,keyword,domain,position,search_volume)."""
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["date", "keyword", "domain", "position", "search_volume"])
        day = first
        while day <= last:
            for r in history.rankings(day):
                writer.writerow([r.day.isoformat(), r.keyword, r.domain, r.position, r.search_volume])
            day += timedelta(days=1)
    return path


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


_HISTORIES: dict[tuple[int, date], RankHistory] = {}    # generated once per process: tests start many servers


class SeoSimulator(JsonApiSimulator):
    server_name = "rank-tracker"

    def __init__(self, project: str = "cask-competitors", *, seed: int = 1, start: date = DEFAULT_START,
                 api_key: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.history = _HISTORIES.setdefault((seed, start), RankHistory(seed, start))
        self.project, self.api_key = project, api_key
        self.injected: dict[date, list[object]] = {}      # raw items a test adds to a day (maybe malformed)

    def error_body(self, status: int, message: str) -> object:
        code = {400: "bad_request", 401: "unauthorized", 404: "not_found", 429: "rate_limited",
                503: "unavailable"}.get(status, "internal")
        return {"error": {"code": code, "message": message}}

    def in_outage(self, request: Request) -> bool:
        """The demo's outage: rankings of the last 30 days fail for a while."""
        return request.path.endswith("/rankings") and request.query.get("to", "") > (
            self.now() - timedelta(days=30)).date().isoformat()

    def route(self, request: Request) -> Reply:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key or (self.api_key is not None and key != self.api_key):
            return _error(401, "unauthorized", "missing or invalid API key")
        parts = [p for p in request.path.split("/") if p]
        if len(parts) < 3 or parts[:2] != ["v1", "projects"]:
            return _error(404, "not_found", f"no such resource: {request.path}")
        if parts[2] != self.project:
            return _error(404, "not_found", f"no project {parts[2]!r}")
        if len(parts) == 3:
            return Reply(200, {"id": self.project, "name": "Cask and competitors",
                               "first_date": self.history.start.isoformat(),
                               "latest_date": latest_date(self.now()).isoformat(), "keywords": len(KEYWORDS),
                               "domains": sorted(DOMAINS)})
        if parts[3:] == ["rankings"]:
            return self._rankings(request.query)
        return _error(404, "not_found", f"no such resource: {request.path}")

    def _rankings(self, query: dict[str, str]) -> Reply:
        try:
            first, last = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
            page_size = min(1000, max(1, int(query.get("page_size", "500"))))
            offset = int(base64.urlsafe_b64decode(query["page_token"]).decode()) if query.get("page_token") else 0
        except (KeyError, ValueError) as exc:
            return _error(400, "bad_request", f"from and to are required dates (YYYY-MM-DD); page_size a number; "
                                              f"page_token as given ({exc})")
        if first > last:
            return _error(400, "bad_request", "from is after to")
        items: list[object] = []
        day, newest = first, min(last, latest_date(self.now()))
        while day <= newest:
            items += [r.as_json() for r in self.history.rankings(day)] + self.injected.get(day, [])
            day += timedelta(days=1)
        page = items[offset:offset + page_size]
        following = offset + page_size
        token = base64.urlsafe_b64encode(str(following).encode()).decode() if following < len(items) else None
        return Reply(200, {"project": self.project, "from": first.isoformat(), "to": last.isoformat(),
                           "rankings": page, "next_page_token": token})


def drop_exports(history: RankHistory, folder: Path, since: date, stop: threading.Event) -> int:
    """The CSV side of the demo: the history as one export, then one export per day as it is checked. Each
    file is written under a temporary name and renamed, as the CSV provider asks."""
    folder.mkdir(parents=True, exist_ok=True)
    written = since - timedelta(days=1)
    while True:
        newest = latest_date(datetime.now(UTC))
        if newest > written:
            first = written + timedelta(days=1)
            name = f"rankings-{newest}.csv" if first == newest else f"rankings-{first}-{newest}.csv"
            write_csv(history, folder / (name + ".part"), first, newest).rename(folder / name)
            log.info("dropped %s", folder / name)
            written = newest
        try:
            if stop.wait(60.0):
                return 0
        except KeyboardInterrupt:
            return 0


# -- command line -------------------------------------------------------------------------------------------
def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator for the demo config: arguments, and the port to wait for."""
    seo = cfg.sources.seo
    if seo.provider == "csv":            # no server: the tracker's exports are dropped into import_dir
        folder = Path(seo.import_dir).expanduser()
        return ["--csv-dir", str(folder if folder.is_absolute() else cfg.path.parent / folder)], None
    port = urlsplit(seo.api_url).port or 80
    return ["--port", str(port), "--project", seo.project, "--key-env", seo.api_key_env, "--outage"], port


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser("simulators.seo", __doc__, port=8097, since=DEFAULT_START)
    parser.add_argument("--project", default="cask-competitors")
    parser.add_argument("--key-env", help="variable holding the only API key accepted (default: any)")
    parser.add_argument("--outage", action="store_true", help="for the first 3 minutes answer 503 to rankings "
                                                              "of the last 30 days")
    parser.add_argument("--csv-dir", type=Path, help="instead of serving: drop the history into this folder as a "
                                                     "CSV export, then each new day's export as the tracker checks it")
    args = parser.parse_args(argv)
    key = os.environ.get(args.key_env) if args.key_env else None
    outage_until = datetime.now(UTC) + timedelta(minutes=3) if args.outage else None
    sim = SeoSimulator(args.project, seed=args.seed, start=args.since, api_key=key, host=args.host, port=args.port,
                       outage_until=outage_until)
    if args.csv_dir:
        configure_logging()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        return drop_exports(sim.history, args.csv_dir, args.since, stop)
    sim.history.rankings(latest_date(sim.now()))      # generate before serving, so the first call is not slow
    return serve_until_stopped(sim, f"rank tracker simulator on {{url}}, project {args.project}")


if __name__ == "__main__":
    sys.exit(main())
