"""The GitHub REST poller against the GitHub simulator over real HTTP, into a real warehouse: the raw tables
match the simulator's history, a second run reads only the tail and adds nothing twice, stars missed during
a webhook outage are recovered from the stargazer history, throttling and server errors are retried,
operator errors name the config key, and malformed API items are quarantined instead of failing the run."""
from __future__ import annotations

import time as clock
from datetime import date, datetime, time, timedelta, timezone
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from collectors import http
from collectors.base import SourceError
from collectors.github import resume_page
from conftest import make_config
from warehouse.writer import Writer
from scheduler import drain_inbox, run_source
from simulators.github import GitHubSimulator, WebhookSender
from warehouse import ingest, queries
from warehouse.lake import Reader
from warehouse.state import State

UTC = timezone.utc
REPOS = ["caskdata/cdap", "caskdata/coopr"]
HISTORY_START = date(2025, 1, 1)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)        # the simulator's clock: 14 months of history
TOKEN_ENV = "CASKALYTICS_TEST_GITHUB_TOKEN"
SECRET = "It's a Secret to Everybody"


@pytest.fixture
def sim():
    with GitHubSimulator(REPOS, start=HISTORY_START, now=NOW) as simulator:
        yield simulator


def github_config(tmp_path, sim, repos=REPOS, timezone="UTC"):
    return make_config(tmp_path, timezone=timezone, github={
        "repos": list(repos), "api_url": sim.url, "token_env": TOKEN_ENV, "history_days": 1000})


@pytest.fixture
def writer(tmp_path, sim, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    writer = Writer(github_config(tmp_path, sim))
    yield writer
    writer.close()


def rows(writer, table: str, repo: str, columns: str) -> set[tuple]:
    return set(writer.con.execute(f"SELECT {columns} FROM lake.{table} WHERE repo = ?", [repo]).fetchall())


def daily(cfg, metric: str, repo: str, start: date, end: date) -> dict[date, float]:
    reader = Reader(cfg)
    try:
        series = queries.metric_series(reader.cursor(), cfg, queries.SeriesRequest(
            metric, "day", start, end, where={"repo": [repo]}))
    finally:
        reader.close()
    return {date.fromisoformat(p["start"]): p["value"] for p in series["points"]}


def stargazer_pages(requests_log: list[str]) -> list[int]:
    return [int(parse_qs(urlsplit(path).query)["page"][0]) for path in requests_log if "/stargazers" in path]


def test_poll_matches_the_simulator_and_a_second_run_reads_only_the_tail(writer, sim):
    first = run_source(writer, "github")
    assert first.quarantined == 0
    for repo in REPOS:
        h = sim.history(repo)
        assert rows(writer, "raw_github_stargazers", repo, "login, ts") == {
            (s.login, s.starred_at) for s in h.stargazers_at(NOW)}
        assert rows(writer, "raw_github_pulls", repo, "number, ts") == {
            (p.number, p.created_at) for p in h.pulls_at(NOW)}
        assert rows(writer, "raw_github_releases", repo, "release_id, tag, ts") == {
            (r.id, r.tag, r.published_at) for r in h.releases_at(NOW, include_drafts=False)}
        assert rows(writer, "raw_github_snapshots", repo, "stars, forks, watchers, open_issues") == {
            (h.stars_at(NOW), h.forks_at(NOW), h.subscribers_at(NOW), h.open_issues_at(NOW))}
    counts = {t: writer.con.execute(f"SELECT count(*) FROM lake.{t}").fetchone()[0]
              for t in ("raw_github_stargazers", "raw_github_pulls", "raw_github_releases")}

    asked_before = len(sim.requests)
    second = run_source(writer, "github")
    assert second.inserted == len(REPOS)              # one new snapshot per repository, nothing else
    assert {t: writer.con.execute(f"SELECT count(*) FROM lake.{t}").fetchone()[0] for t in counts} == counts
    second_requests = sim.requests[asked_before:]
    # Never pull twice: the stargazer list is re-read from one page before the last star seen, pulls and
    # releases stop at the first page (nothing newer); two repos x (repo, 2 star pages, pulls, releases).
    seen = {repo: len(sim.history(repo).stargazers_at(NOW)) for repo in REPOS}
    assert min(stargazer_pages(second_requests)) == min(resume_page(n, n) for n in seen.values()) > 1
    assert len(second_requests) == 2 * 5

    today = datetime.now(UTC).date()
    for repo in REPOS:
        h = sim.history(repo)
        assert daily(writer.cfg, "github.stars", repo, today, today) == {today: h.stars_at(NOW)}
        assert daily(writer.cfg, "github.watchers", repo, today, today) == {today: h.subscribers_at(NOW)}
        opened = daily(writer.cfg, "github.pull_requests_opened", repo, HISTORY_START, NOW.date())
        assert sum(opened.values()) == len(h.pulls_at(NOW))
        assert opened[date(2025, 6, 2)] == sum(1 for p in h.pulls if p.created_at.date() == date(2025, 6, 2))
        releases = daily(writer.cfg, "github.releases", repo, HISTORY_START, NOW.date())
        assert sum(releases.values()) == len(h.releases_at(NOW, include_drafts=False))


def test_stars_missed_during_a_webhook_outage_are_recovered_from_the_stargazer_history(tmp_path, sim, api_server,
                                                                                       monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    repo, zone = "caskdata/cdap", ZoneInfo("America/New_York")
    h = sim.history(repo)
    t0 = datetime(2026, 2, 2, tzinfo=zone)                      # a Monday, local midnight
    live_until, outage_until, t3 = t0 + timedelta(days=3), t0 + timedelta(days=7), t0 + timedelta(days=9)
    # GitHub's API has no unstar history, so the stargazer list can only rebuild counts exactly while
    # nobody unstars; unstars in the history are before this window (the simulator is deterministic).
    assert not [u for u in h.unstar_times if t0 < u <= t3]
    assert [s for s in h.stars if live_until < s.starred_at <= outage_until], "the outage must miss some stars"

    cfg = github_config(tmp_path, sim, repos=[repo], timezone="America/New_York")
    api = api_server(cfg, {"GITHUB_WEBHOOK_SECRET": SECRET})
    sender = WebhookSender(sim, f"{api.base_url}/webhooks/github", SECRET)
    writer = Writer(cfg)
    try:
        sim.set_time(t0)
        run_source(writer, "github")                            # the history up to t0
        for after, until, delivered in [(t0, live_until, True), (live_until, outage_until, False),
                                        (outage_until, t3, True)]:
            sim.set_time(until)
            if delivered:                                        # during the outage GitHub's deliveries fail
                assert set(sender.deliver_between(after, until)) == {202}
                drain_inbox(writer)

        days = [(t0 + timedelta(days=n)).date() for n in range(10)]
        truth = {d: h.stars_at(min(datetime.combine(d + timedelta(days=1), time.min, zone), t3)) for d in days}
        webhooks_only = daily(cfg, "github.stars", repo, days[0], days[-1])
        assert webhooks_only != truth                           # without the poller, the outage shows

        run_source(writer, "github")
        assert daily(cfg, "github.stars", repo, days[0], days[-1]) == truth
        opened = daily(cfg, "github.pull_requests_opened", repo, days[0], days[-1])
        assert opened == {d: sum(1 for p in h.pulls_at(t3) if p.created_at.astimezone(zone).date() == d) for d in days}
    finally:
        writer.close()


def test_throttling_and_server_errors_are_retried_honouring_retry_after(writer, sim):
    sim.inject_faults(1, status=429, retry_after=1)
    sim.inject_faults(1, status=0)                               # a dropped connection
    sim.inject_faults(1, status=502)
    sim.inject_faults(1, status=403, retry_after=1)              # GitHub's secondary rate limit is a 403
    started = clock.monotonic()
    summary = run_source(writer, "github")
    assert clock.monotonic() - started >= 2.0                    # both Retry-After waits were honoured
    assert not sim.faults
    assert summary.quarantined == 0
    for repo in REPOS:
        assert len(rows(writer, "raw_github_stargazers", repo, "login")) == sim.history(repo).stars_at(NOW)
    assert State(writer.cfg).recent_runs("github")[0]["status"] == "ok"


def test_a_server_that_keeps_failing_fails_the_run_which_the_next_run_recovers(writer, sim):
    sim.inject_faults(5, status=503, retry_after=0)
    with pytest.raises(http.Unavailable, match="HTTP 503"):
        run_source(writer, "github")
    failed = State(writer.cfg).recent_runs("github")[0]
    assert failed["status"] == "failed" and "503" in failed["error"]
    run_source(writer, "github")
    assert len(rows(writer, "raw_github_snapshots", REPOS[0], "stars")) == 1


def test_operator_errors_name_what_to_fix(tmp_path, sim, monkeypatch):
    sim.token = "the-right-token"
    monkeypatch.setenv(TOKEN_ENV, "a-revoked-token")
    writer = Writer(github_config(tmp_path, sim, repos=["caskdata/cdap", "caskdata/gone", "caskdata/coopr"]))
    try:
        with pytest.raises(SourceError, match=f"token_env.*{TOKEN_ENV}"):
            run_source(writer, "github")
        assert "a-revoked-token" not in State(writer.cfg).recent_runs("github")[0]["error"]

        monkeypatch.setenv(TOKEN_ENV, "the-right-token")
        with pytest.raises(SourceError, match="caskdata/gone"):
            run_source(writer, "github")
        # The repositories that exist were still collected.
        assert {r[0] for r in writer.con.execute("SELECT DISTINCT repo FROM lake.raw_github_snapshots").fetchall()} \
            == {"caskdata/cdap", "caskdata/coopr"}
    finally:
        writer.close()


def test_drafts_seen_by_an_authenticated_poller_are_not_counted_until_published(tmp_path, sim, monkeypatch):
    h = sim.history("caskdata/cdap")
    release = h.releases[2]
    sim.set_time(release.created_at + timedelta(hours=1))       # drafted, not yet published
    monkeypatch.setenv(TOKEN_ENV, "any-token")                  # drafts are only listed for authenticated callers
    writer = Writer(github_config(tmp_path, sim, repos=["caskdata/cdap"]))
    try:
        summary = run_source(writer, "github")
        assert summary.quarantined == 0
        assert any("/releases" in path for path in sim.requests)
        assert release.id not in {r[0] for r in rows(writer, "raw_github_releases", "caskdata/cdap", "release_id")}
        sim.set_time(release.published_at + timedelta(hours=1))
        run_source(writer, "github")
        assert (release.id, release.published_at) in rows(writer, "raw_github_releases", "caskdata/cdap",
                                                          "release_id, ts")
    finally:
        writer.close()


def test_malformed_api_items_are_quarantined_and_the_rest_is_stored(writer, sim):
    repo = "caskdata/cdap"
    sim.inject_items(repo, "stargazers", [{"starred_at": "last tuesday", "user": {"login": "someone"}},
                                          {"starred_at": "2026-02-01T10:00:00Z", "user": None},
                                          "not an object"])
    sim.inject_items(repo, "pulls", [{"number": "7", "created_at": "2026-03-01T00:00:00Z"}])
    sim.inject_items(repo, "releases", [{"id": 5, "draft": False, "published_at": None, "tag_name": "v9.9.9"}])
    summary = run_source(writer, "github")
    assert summary.quarantined == 5
    quarantined = writer.con.execute("SELECT reason, origin FROM lake.quarantine ORDER BY reason").fetchall()
    assert [reason.split(":")[0] for reason, _ in quarantined] == ["pull request", "release", "stargazer",
                                                                   "stargazer", "stargazer"]
    assert all(origin.startswith(sim.url) for _, origin in quarantined)
    reasons = " | ".join(reason for reason, _ in quarantined)
    for expected in ("starred_at is not an ISO 8601 time", "user is missing", "not a JSON object",
                     "number is not a count", "published_at is missing"):
        assert expected in reasons
    h = sim.history(repo)
    assert len(rows(writer, "raw_github_stargazers", repo, "login")) == h.stars_at(NOW)
    assert len(rows(writer, "raw_github_pulls", repo, "number")) == len(h.pulls_at(NOW))


def test_backfill_keeps_only_the_range_and_leaves_the_cursor_alone(writer, sim):
    start, end = date(2025, 6, 1), date(2025, 6, 30)
    summary = run_source(writer, "github", start=start, end=end)
    assert summary.quarantined == 0
    assert writer.cursor("github") is None
    in_june = lambda moment: start <= moment.date() <= end      # noqa: E731  (the config's time zone is UTC)
    for repo in REPOS:
        h = sim.history(repo)
        assert rows(writer, "raw_github_stargazers", repo, "login, ts") == {
            (s.login, s.starred_at) for s in h.stargazers_at(NOW) if in_june(s.starred_at)}
        assert rows(writer, "raw_github_pulls", repo, "number") == {
            (p.number,) for p in h.pulls_at(NOW) if in_june(p.created_at)}
        assert rows(writer, "raw_github_releases", repo, "release_id") == {
            (r.id,) for r in h.releases_at(NOW, False) if in_june(r.published_at)}
    assert writer.con.execute("SELECT count(*) FROM lake.raw_github_snapshots").fetchone()[0] == 0
