"""Simulated website traffic for the demo: visitors reading a product site and its blog.

Two parts:

- **Demo seeding (history)**: `seed_history` writes back-dated hits for the last `history_days` straight into
  the receive inbox through `warehouse.state`, as if the API had received them then. The API itself never
  accepts a client's timestamp, so history cannot come over HTTP. This is demo data only: the hits carry
  `via = "demo"`. Every day is generated from its own random generator (seed, date), so a day always gives
  the same hits with the same hit ids; a marker file (`<warehouse>/demo/beacon_history.json`) records how
  far seeding got, and the lake's natural key makes any overlap harmless.
- **Live traffic over HTTP** (`live`): the same model, sped up (`--speed`), sent to the running API as the
  snippet and the pixel would send it: page views with visitor ids via `POST /api/event`, `<noscript>`
  pixel hits and e-mail opens via `GET /b.gif`, plus a few crawlers, headless browsers and hits for a site
  that is not configured, which the API must refuse or drop.

The model: visits per day grow ~40% over a year, dip at weekends (x0.45) and follow an hour-of-day curve
(US and European office hours); about a third of visits come from returning visitors (a visitor first seen
1 to 90 days earlier); a visit is a session of 1 to 6 page views 20 s to 4 min apart; referrers are search,
social, news sites, the newsletter (with UTM tags) or none; every ~6 weeks a blog post launches and blog
traffic jumps 4x for a day, decaying over the next days.

    python -m simulators.beacon --api http://127.0.0.1:8000 [--speed 30] [--no-seed]
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import math
import random
import signal
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import requests

import collectors
from config import ConfigError
from collectors.beacon import Hit, encode
from warehouse.state import State

log = logging.getLogger("caskalytics.simulators.beacon")
UTC = timezone.utc
SEED = 7
FIRST_DAY = date(2025, 1, 1)                 # growth is measured from here
PAGES = [("/", 30), ("/products/cdap", 14), ("/products/coopr", 6), ("/pricing", 9), ("/docs/getting-started", 8),
         ("/docs/install", 6), ("/customers", 4), ("/about", 3), ("/contact", 3), ("/blog/", 7)]
POSTS = ["hello-cdap", "pipelines-at-scale", "data-lakes-explained", "cdap-6-9-released", "streaming-etl",
         "metadata-matters", "coopr-clusters", "cdap-6-10-released", "hybrid-cloud-etl", "lineage-in-practice",
         "wrangler-tips", "cdap-on-kubernetes", "replication-deep-dive", "cost-of-idle-clusters"]
LAUNCH_EVERY_DAYS = 45
REFERRERS = [(None, 25), ("https://www.google.com/", 40), ("https://www.bing.com/", 5), ("https://duckduckgo.com/", 3),
             ("https://t.co/", 6), ("https://www.linkedin.com/", 6), ("https://news.ycombinator.com/", 3),
             ("https://www.reddit.com/", 3), ("https://github.com/", 6), ("newsletter", 3)]
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 10, 11, 12, 12, 11, 10, 8, 7, 6, 5, 4, 3)   # UTC
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
]
BOTS = ["Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
        "curl/8.5.0", "python-requests/2.32.3", ""]


# -- the traffic model ---------------------------------------------------------------------------------------
def _rng(*parts) -> random.Random:
    return random.Random(hashlib.sha256("|".join(map(str, (SEED, *parts))).encode()).digest())


def _pick(rng: random.Random, weighted):
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def launches_until(day: date) -> list[tuple[date, str]]:
    """(launch day, slug) of every blog post published up to `day`."""
    out, when = [], FIRST_DAY + timedelta(days=10)
    for slug in POSTS * 10:
        if when > day:
            break
        out.append((when, slug if len(out) < len(POSTS) else f"{slug}-{len(out) // len(POSTS)}"))
        when += timedelta(days=LAUNCH_EVERY_DAYS)
    return out


@functools.lru_cache(maxsize=1024)
def blog_boost(day: date) -> float:
    """How much more blog traffic `day` gets from the latest launches (x4 on launch day, halving daily)."""
    return 1 + sum(3 * 0.5 ** (day - launched).days for launched, _ in launches_until(day)
                   if 0 <= (day - launched).days < 7)


@functools.lru_cache(maxsize=1024)
def new_visitors_on(day: date) -> int:
    """How many first-time visitors `day` brings (a function of the date only, so returning visitors can be
    drawn from earlier days without generating them)."""
    growth = 1 + 0.4 * max(0, (day - FIRST_DAY).days) / 365
    weekend = 0.45 if day.weekday() >= 5 else 1.0
    mean = 150 * growth * weekend * (1 + 0.3 * (blog_boost(day) - 1))
    return max(0, int(_rng("new", day).gauss(mean, math.sqrt(mean))))


def visitor_id(born: date, number: int) -> str:
    return hashlib.blake2b(f"{SEED}|{born}|{number}".encode(), digest_size=12).hexdigest()


@dataclass
class Visit:
    start: datetime
    visitor: str | None          # None: the <noscript> pixel (the server hashes IP + User-Agent)
    user_agent: str
    ip: str
    pages: list[tuple[float, str]]     # (seconds after start, path with query)
    referrer: str | None


def visits_on(day: date) -> list[Visit]:
    """Every visit of `day` (UTC), in time order; the same for the same day, always."""
    rng = _rng("visits", day)
    newcomers = new_visitors_on(day)
    returning = int(newcomers * 0.55)          # ~35% of visits come back
    posts = [slug for _, slug in launches_until(day)][-6:] or POSTS[:1]
    boost = blog_boost(day)
    visits = []
    for index in range(newcomers + returning):
        if index < newcomers:
            who, born = index, day
        else:
            born = day - timedelta(days=min(90, 1 + int(rng.expovariate(1 / 12))))
            who = rng.randrange(max(1, new_visitors_on(born)))
        start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
            hours=_pick(rng, list(enumerate(HOUR_WEIGHTS))), seconds=rng.uniform(0, 3600))
        source = _pick(rng, REFERRERS)
        pages, at = [], 0.0
        for _ in range(min(6, 1 + int(rng.expovariate(0.8)))):
            blog = rng.random() < 0.25 * boost / (1 + 0.25 * (boost - 1))
            path = f"/blog/{rng.choice(posts[-3:] if rng.random() < 0.7 else posts)}" if blog else _pick(rng, PAGES)
            if not pages and source == "newsletter":
                path += f"?utm_source=newsletter&utm_medium=email&utm_campaign={day:%Y-%m}"
            elif not pages and source == "https://t.co/":
                path += "?utm_source=twitter&utm_medium=social"
            pages.append((at, path))
            at += rng.uniform(20, 240)
        noscript = rng.random() < 0.04
        visits.append(Visit(start, None if noscript else visitor_id(born, who), rng.choice(BROWSERS),
                            f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}", pages,
                            None if source in (None, "newsletter") else source))
    return sorted(visits, key=lambda v: v.start)


# -- demo seeding: back-dated hits straight into the inbox -------------------------------------------------
def history_hits(day: date, site: str) -> list[tuple[datetime, Hit]]:
    hits = []
    for number, visit in enumerate(visits_on(day)):
        visitor = visit.visitor or "h:" + hashlib.blake2b(f"{day}|{visit.ip}|{visit.user_agent}".encode(),
                                                          digest_size=16).hexdigest()
        for page, (offset, path) in enumerate(visit.pages):
            ts = visit.start + timedelta(seconds=offset)
            plain, _, query = path.partition("?")
            utm = dict(part.split("=", 1) for part in query.split("&")) if query else {}
            hits.append((ts, Hit(hit_id=f"demo-{day:%Y%m%d}-{number:05d}-{page}", ts=ts.isoformat(), site=site,
                                 name="pageview", path=plain, visitor_id=visitor, via="demo",
                                 referrer=visit.referrer if page == 0 else f"https://{site}{visit.pages[page - 1][1]}".split("?")[0],
                                 **utm)))
    return sorted(hits, key=lambda pair: pair[0])


def seed_history(cfg, until: datetime | None = None, chunk: int = 5000) -> int:
    """DEMO SEEDING: write hits from `history_days` ago (or from where the last seeding stopped) up to
    `until` into the inbox; returns how many. The scheduler's drain moves them into the lake."""
    settings = cfg.sources.beacon
    until = until or datetime.now(UTC)
    marker = cfg.warehouse_dir / "demo" / "beacon_history.json"
    since = until - timedelta(days=settings.history_days)
    if marker.exists():
        since = max(since, datetime.fromisoformat(json.loads(marker.read_text())["seeded_until"]))
    state, written, pending = State(cfg), 0, []
    day = since.date()
    while day <= until.date():
        pending += [(hit.hit_id, {}, encode(hit)) for ts, hit in history_hits(day, settings.sites[0])
                    if since <= ts < until]
        if len(pending) >= chunk or day == until.date():
            written += state.receive_many("beacon", pending)
            pending = []
        day += timedelta(days=1)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seeded_until": until.isoformat()}))
    log.info("demo seeding: %d back-dated hits from %s to %s written to the inbox", written, since, until)
    return written


# -- live traffic over HTTP --------------------------------------------------------------------------------
def send_visit_page(session: requests.Session, api: str, site: str, visit: Visit, page: int) -> int:
    """One page view of `visit` the way the snippet (or, without a visitor id, the pixel) sends it."""
    offset, path = visit.pages[page]
    url = f"https://{site}{path}"
    referrer = visit.referrer if page == 0 else f"https://{site}{visit.pages[page - 1][1]}"
    headers = {"User-Agent": visit.user_agent, "X-Forwarded-For": visit.ip}
    if visit.visitor is None:
        params = {"site": site, "url": url, **({"referrer": referrer} if referrer else {})}
        return session.get(f"{api}/b.gif", params=params, headers=headers, timeout=10).status_code
    body = {"site": site, "name": "pageview", "url": url, "referrer": referrer, "visitor": visit.visitor}
    return session.post(f"{api}/api/event", data=json.dumps(body),
                        headers={**headers, "Content-Type": "text/plain"}, timeout=10).status_code


def send_noise(session: requests.Session, api: str, site: str, rng: random.Random) -> int:
    """What a public beacon also gets: crawlers, headless browsers, scripts, other people's sites, and
    e-mail opens of the newsletter."""
    kind = rng.random()
    if kind < 0.5:
        headers = {"User-Agent": rng.choice(BOTS)}
        return session.get(f"{api}/b.gif", params={"site": site, "url": f"https://{site}/"}, headers=headers,
                           timeout=10).status_code
    if kind < 0.65:
        return session.post(f"{api}/api/event", data=json.dumps({"url": "https://someone-else.example/"}),
                            headers={"User-Agent": BROWSERS[0]}, timeout=10).status_code
    month = datetime.now(UTC).strftime("%Y-%m")
    params = {"site": site, "url": f"/email/newsletter-{month}", "name": "email_open", "utm_source": "newsletter",
              "utm_medium": "email", "utm_campaign": month}
    return session.get(f"{api}/b.gif", params=params, headers={"User-Agent": rng.choice(BROWSERS)},
                       timeout=10).status_code


def live(cfg, api: str, speed: float, stop: list) -> None:
    """Play the model's visits from now on with a clock running `speed` times faster than real time (30: a
    day's traffic in 48 minutes), day after day, plus noise; keeps going while the API is down."""
    site = cfg.sources.beacon.sites[0]
    rng = random.Random()
    session = requests.Session()
    sent = failed = 0
    wall_start, model_start = time.time(), datetime.now(UTC)
    day = model_start.date()
    while not stop:
        for when, visit, page in sorted((visit.start + timedelta(seconds=offset), visit, page)
                                        for visit in visits_on(day) for page, (offset, _) in enumerate(visit.pages)):
            if when < model_start:
                continue
            while not stop and (wait := (when - model_start).total_seconds() / speed - (time.time() - wall_start)) > 0:
                time.sleep(min(wait, 1.0))
            if stop:
                return
            try:
                send_visit_page(session, api, site, visit, page)
                if rng.random() < 0.08:
                    send_noise(session, api, site, rng)
                sent += 1
            except requests.RequestException:
                failed += 1
                if failed % 50 == 1:
                    log.warning("the API at %s does not answer (%d hits failed so far)", api, failed)
                time.sleep(1)
            if sent and sent % 500 == 0:
                log.info("live traffic: %d page views sent", sent)
        day += timedelta(days=1)


def demo_process(cfg) -> tuple[list[str], int | None]:
    """How `make run` starts this simulator: arguments, and no port to wait for (it is a client)."""
    return ["--api", f"http://127.0.0.1:{cfg.api.port}"], None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.beacon", description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="the Caskalytics API to send hits to")
    parser.add_argument("--speed", type=float, default=30.0, help="live traffic runs this many times faster")
    parser.add_argument("--no-seed", action="store_true", help="skip the back-dated demo history")
    parser.add_argument("--seed-only", action="store_true", help="write the demo history and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = collectors.load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if cfg.sources.beacon is None or not cfg.sources.beacon.enabled:
        print("error: [sources.beacon] is missing or disabled in the config", file=sys.stderr)
        return 2
    stop: list = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    if not args.no_seed:
        seed_history(cfg)
    if args.seed_only:
        return 0
    try:
        live(cfg, args.api.rstrip("/"), args.speed, stop)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
