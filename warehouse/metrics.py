"""The metric catalog: each contract metric, its measure kind, its dimensions, and the SQL that turns a
source's raw tables into hourly points.

Hourly SQL selects `(ts, dims, value)` where `ts` is the UTC hour, for hours in the temp table
`affected_hours(h)`. Counters give the hour's sum; gauges give the hour's last observation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from config import Config

COUNTER, GAUGE, DISTINCT = "counter", "gauge", "distinct"
DOWNLOAD_OPERATIONS = ("REST.GET.OBJECT", "WEBSITE.GET.OBJECT")


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    source: str
    dims: tuple[str, ...]
    description: str
    unit: str = ""


CATALOG: dict[str, Metric] = {m.name: m for m in [
    Metric("downloads", COUNTER, "s3_access_logs", ("version", "artifact"),
           "Product downloads from S3 access logs (200s, plus one per 206 range-request group an hour)"),
    Metric("github.stars", GAUGE, "github", ("repo",), "Stargazers of the repository"),
    Metric("github.forks", GAUGE, "github", ("repo",), "Forks of the repository"),
    Metric("github.watchers", GAUGE, "github", ("repo",), "Watchers (subscribers) of the repository"),
    Metric("github.pull_requests_opened", COUNTER, "github", ("repo",), "Pull requests opened"),
    Metric("github.releases", COUNTER, "github", ("repo",), "Releases published"),
    Metric("salesforce.raw_leads", COUNTER, "salesforce", (), "Leads created (by CreatedDate)"),
    Metric("salesforce.inquiries", COUNTER, "salesforce", (),
           "Leads that became inquiries ([sources.salesforce] inquiry_statuses / inquiry_field), when they did"),
    Metric("salesforce.mqls", COUNTER, "salesforce", (),
           "Leads that became marketing-qualified ([sources.salesforce] mql_statuses / mql_field), when they did"),
    Metric("salesforce.opportunities", COUNTER, "salesforce", (), "Opportunities created (by CreatedDate)"),
]}

# Sources whose gauges are reconstructed from cumulative history: a late record changes every later hour.
RECOMPUTE_FROM_EARLIEST = {"github"}


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def version_groups(cfg: Config) -> list[str]:
    """Capture-group names of `version_pattern` in group order (unnamed groups get placeholders)."""
    compiled = re.compile(cfg.sources.s3_access_logs.version_pattern)
    by_index = {index: name for name, index in compiled.groupindex.items()}
    return [by_index.get(i, f"_group{i}") for i in range(1, compiled.groups + 1)]


AFFECTED = "date_trunc('hour', ts) IN (SELECT h FROM affected_hours) AND ts >= (SELECT min(h) FROM affected_hours) " \
           "AND ts < (SELECT max(h) FROM affected_hours) + INTERVAL 1 HOUR"


def downloads_sql(cfg: Config) -> str:
    pattern = sql_literal(cfg.sources.s3_access_logs.version_pattern)
    groups = version_groups(cfg)
    dims = [g for g in ("artifact", "version") if g in groups]
    dims_json = "json_object(" + ", ".join(f"'{d}', m.{d}" for d in dims) + ")::VARCHAR"
    operations = ", ".join(sql_literal(op) for op in DOWNLOAD_OPERATIONS)
    return f"""
        SELECT h AS ts, {dims_json} AS dims,
               count(*) FILTER (WHERE http_status = 200)
             + count(DISTINCT CASE WHEN http_status = 206 THEN struct_pack(ip := remote_ip, ua := user_agent, k := key) END)
               AS value
        FROM (SELECT date_trunc('hour', ts) AS h, http_status, remote_ip, user_agent, key,
                     regexp_extract(key, {pattern}, {groups!r}) AS m
              FROM lake.raw_s3_access_logs
              WHERE {AFFECTED} AND operation IN ({operations}) AND http_status IN (200, 206)
                AND regexp_matches(key, {pattern}))
        GROUP BY ALL"""


def _gauge_from(observations: str) -> str:
    """Last observation per repo and hour; `priority` lets exact counts win over reconstructed ones."""
    return f"""
        SELECT date_trunc('hour', ts) AS ts, json_object('repo', repo)::VARCHAR AS dims,
               arg_max(value, struct_pack(p := priority, t := ts)) AS value
        FROM ({observations}) WHERE {AFFECTED} GROUP BY ALL"""


def github_sql(metric: str) -> str:
    if metric == "github.stars":
        # Exact counts come from webhook payloads and snapshots. Between them (a webhook outage), the
        # stargazer history fills in: the last exact count plus the stars given since it. The history
        # lists current stargazers only, so anchoring on exact counts keeps unstars from skewing it.
        return _gauge_from("""
            WITH exact AS (
                SELECT ts, repo, stars AS value FROM lake.raw_github_events
                  WHERE event IN ('star', 'watch') AND stars IS NOT NULL
                UNION ALL SELECT ts, repo, stars FROM lake.raw_github_snapshots),
            history AS (
                SELECT ts, repo, row_number() OVER (PARTITION BY repo ORDER BY ts, login) AS starred_so_far
                FROM lake.raw_github_stargazers),
            anchors AS (
                SELECT e.ts, e.repo, e.value, coalesce(h.starred_so_far, 0) AS starred_so_far
                FROM exact e ASOF LEFT JOIN history h ON e.repo = h.repo AND e.ts >= h.ts)
            SELECT ts, repo, value, 2 AS priority FROM exact
            UNION ALL
            SELECT h.ts, h.repo,
                   CASE WHEN a.ts IS NULL THEN h.starred_so_far
                        ELSE a.value + h.starred_so_far - a.starred_so_far END,
                   1
            FROM history h ASOF LEFT JOIN anchors a ON h.repo = a.repo AND h.ts >= a.ts""")
    if metric == "github.forks":
        return _gauge_from("""
            SELECT ts, repo, forks AS value, 2 AS priority FROM lake.raw_github_events
              WHERE event = 'fork' AND forks IS NOT NULL
            UNION ALL SELECT ts, repo, forks, 2 FROM lake.raw_github_snapshots""")
    if metric == "github.watchers":
        return _gauge_from("SELECT ts, repo, watchers AS value, 2 AS priority FROM lake.raw_github_snapshots")
    event, action, table, id_column = {
        "github.pull_requests_opened": ("pull_request", "opened", "raw_github_pulls", "number"),
        "github.releases": ("release", "published", "raw_github_releases", "release_id"),
    }[metric]
    # The webhook and the REST poller may both have seen an item: count each (repo, id) once.
    return f"""
        SELECT date_trunc('hour', ts) AS ts, json_object('repo', repo)::VARCHAR AS dims, count(*) AS value
        FROM (SELECT repo, item, min(ts) AS ts FROM (
                SELECT repo, item_id AS item, ts FROM lake.raw_github_events WHERE event = '{event}' AND action = '{action}'
                UNION ALL SELECT repo, {id_column}, ts FROM lake.{table})
              GROUP BY repo, item)
        WHERE {AFFECTED} GROUP BY ALL"""


def observation_sql(table: str, metric: Metric) -> str:
    """Hourly points from an observation table (schema.observation_table): the latest fetch of each
    (dims, ts), then summed (counter) or last-by-time (gauge) within the hour."""
    combine = "sum(value)" if metric.kind == COUNTER else "arg_max(value, observed)"
    return f"""
        SELECT date_trunc('hour', observed) AS ts, dims, {combine} AS value
        FROM (SELECT ts AS observed, dims, arg_max(value, fetched_at) AS value FROM lake.{table}
              WHERE metric = {sql_literal(metric.name)} AND {AFFECTED} GROUP BY ts, dims)
        GROUP BY ALL"""


def salesforce_sql(cfg: Config, metric: Metric) -> str:
    """Each lead or opportunity counts once: raw leads and opportunities in the hour they were created,
    inquiries and MQLs in the hour the lead first reached the stage (its earliest stored version, LeadHistory
    status change or stage-field time that qualifies), however many versions were stored."""
    if metric.name in ("salesforce.raw_leads", "salesforce.opportunities"):
        table = "raw_salesforce_leads" if metric.name == "salesforce.raw_leads" else "raw_salesforce_opportunities"
        first_seen = f"SELECT id, min(created_date) AS ts FROM lake.{table} GROUP BY id"
    else:
        settings = cfg.sources.salesforce
        stage = "mql" if metric.name == "salesforce.mqls" else "inquiry"
        statuses = settings.mql_statuses if stage == "mql" else settings.inquiry_statuses
        in_stage = f"IN ({', '.join(sql_literal(s) for s in statuses)})" if statuses else "IS NULL AND FALSE"
        first_seen = f"""
            SELECT id, min(at) AS ts FROM (
                SELECT id, ts AS at FROM lake.raw_salesforce_leads WHERE status {in_stage}
                UNION ALL SELECT id, {stage}_field_at FROM lake.raw_salesforce_leads WHERE {stage}_field_at IS NOT NULL
                UNION ALL SELECT id, ts FROM lake.raw_salesforce_lead_status_changes WHERE new_status {in_stage})
            GROUP BY id"""
    return f"""
        SELECT date_trunc('hour', ts) AS ts, '{{}}' AS dims, count(*) AS value
        FROM ({first_seen}) WHERE {AFFECTED} GROUP BY ALL"""


def hourly_sql(cfg: Config, metric: Metric) -> str:
    if metric.name == "downloads":
        return downloads_sql(cfg)
    if metric.source == "salesforce":
        return salesforce_sql(cfg, metric)
    if metric.source == "github":
        return github_sql(metric.name)
    raise KeyError(metric.name)


def metrics_of(source: str) -> list[Metric]:
    return [m for m in CATALOG.values() if m.source == source]
