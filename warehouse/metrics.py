"""The SQL that turns each source's raw tables into hourly points; the sources' metric declarations
(`warehouse.catalog.Metric.sql`) call these builders.

Hourly SQL selects `(ts, dims, value)` where `ts` is the fact hour (`fact_hour`, a zone hour: see
`warehouse.timegrid`), for hours in the temp table
`affected_hours(h)`. Counters give the hour's sum; gauges give the hour's last observation.
"""
from __future__ import annotations

import re
from config import Config
from warehouse.catalog import COUNTER

DOWNLOAD_OPERATIONS = ("REST.GET.OBJECT", "WEBSITE.GET.OBJECT")


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def version_groups(cfg: Config) -> list[str]:
    """Capture-group names of `version_pattern` in group order (unnamed groups get placeholders)."""
    compiled = re.compile(cfg.sources.s3_access_logs.version_pattern)
    by_index = {index: name for name, index in compiled.groupindex.items()}
    return [by_index.get(i, f"_group{i}") for i in range(1, compiled.groups + 1)]


AFFECTED = "fact_hour(ts) IN (SELECT h FROM affected_hours) AND ts >= (SELECT min(h) FROM affected_hours) " \
           "AND ts < (SELECT max(h) FROM affected_hours) + INTERVAL 1 HOUR"


def downloads_sql(cfg: Config) -> str:
    pattern = sql_literal(cfg.sources.s3_access_logs.version_pattern)
    groups = version_groups(cfg)
    dims = [g for g in ("artifact", "version") if g in groups]
    dims_json = "json_object(" + ", ".join(f"'{d}', m.{d}" for d in dims) + ")::VARCHAR"
    operations = ", ".join(sql_literal(op) for op in DOWNLOAD_OPERATIONS)
    # Count per (hour, key) first, then match the version pattern once per key and hour, not per log line.
    # A 206 group is (UTC hour, ip, user agent, key), counted once in the fact hour of its first record; the
    # UTC hours around the affected facts are read whole, so a group is never seen in part.
    return f"""
        SELECT h AS ts, {dims_json} AS dims, sum(n) AS value
        FROM (SELECT h, regexp_extract(key, {pattern}, {groups!r}) AS m, n
              FROM (SELECT h, key, sum(n) AS n FROM (
                        SELECT fact_hour(ts) AS h, key, count(*) AS n
                        FROM lake.raw_s3_access_logs
                        WHERE {AFFECTED} AND operation IN ({operations}) AND http_status = 200
                        GROUP BY ALL
                        UNION ALL
                        SELECT fact_hour(min(ts)) AS h, key, 1 AS n
                        FROM lake.raw_s3_access_logs
                        WHERE ts >= date_trunc('hour', (SELECT min(h) FROM affected_hours))
                          AND ts < date_trunc('hour', (SELECT max(h) FROM affected_hours)) + INTERVAL 2 HOUR
                          AND operation IN ({operations}) AND http_status = 206
                        GROUP BY date_trunc('hour', ts), remote_ip, user_agent, key
                        HAVING fact_hour(min(ts)) IN (SELECT h FROM affected_hours))
                    GROUP BY ALL)
              WHERE regexp_matches(key, {pattern}))
        GROUP BY ALL"""


def _gauge_from(observations: str) -> str:
    """Last observation per repo and hour; `priority` lets exact counts win over reconstructed ones."""
    return f"""
        SELECT fact_hour(ts) AS ts, json_object('repo', repo)::VARCHAR AS dims,
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
        SELECT fact_hour(ts) AS ts, json_object('repo', repo)::VARCHAR AS dims, count(*) AS value
        FROM (SELECT repo, item, min(ts) AS ts FROM (
                SELECT repo, item_id AS item, ts FROM lake.raw_github_events WHERE event = '{event}' AND action = '{action}'
                UNION ALL SELECT repo, {id_column}, ts FROM lake.{table})
              GROUP BY repo, item)
        WHERE {AFFECTED} GROUP BY ALL"""


def observation_sql(table: str, metric: str, kind: str) -> str:
    """Hourly points from an observation table (catalog.observation_table): the latest fetch of each
    (dims, ts), then summed (counter) or last-by-time (gauge) within the hour."""
    combine = "sum(value)" if kind == COUNTER else "arg_max(value, observed)"
    return f"""
        SELECT fact_hour(observed) AS ts, dims, {combine} AS value
        FROM (SELECT ts AS observed, dims, arg_max(value, fetched_at) AS value FROM lake.{table}
              WHERE metric = {sql_literal(metric)} AND {AFFECTED} GROUP BY ts, dims)
        GROUP BY ALL"""


def youtube_subscribers_sql() -> str:
    """The latest exact subscriberCount at its time, and for each reported day before it (12:00 UTC) that
    count minus the net gains (gained - lost, latest fetch) of the reported days after it. Days YouTube has
    not reported yet (two to three) count as no change, so the history sits off by at most their net gain
    until they are; each new count re-anchors the whole history (its source recomputes ALL_HOURS)."""
    return f"""
        WITH days AS (
            SELECT ts, metric, arg_max(value, fetched_at) AS value FROM lake.raw_youtube
            WHERE metric IN ('youtube.subscribers_gained', 'youtube.subscribers_lost') GROUP BY ts, metric),
        net AS (
            SELECT ts, sum(CASE metric WHEN 'youtube.subscribers_gained' THEN value ELSE -value END) AS gained
            FROM days GROUP BY ts),
        anchor AS (
            SELECT max(ts) AS ts, arg_max(subscribers, ts) AS subscribers
            FROM lake.raw_youtube_channel WHERE subscribers IS NOT NULL HAVING count(*) > 0),
        points AS (
            SELECT ts, subscribers AS value FROM anchor
            UNION ALL
            SELECT n.ts, a.subscribers - coalesce(sum(n.gained) OVER (
                       ORDER BY n.ts DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
            FROM net n, anchor a WHERE n.ts < a.ts)
        SELECT fact_hour(ts) AS ts, '{{}}' AS dims, arg_max(value, ts) AS value
        FROM points WHERE {AFFECTED} GROUP BY 1"""


def salesforce_sql(cfg: Config, metric: str) -> str:
    """Each lead or opportunity counts once: raw leads and opportunities in the hour they were created,
    inquiries and MQLs in the hour the lead first reached the stage (its earliest stored version, LeadHistory
    status change or stage-field time that qualifies), however many versions were stored."""
    if metric in ("salesforce.raw_leads", "salesforce.opportunities"):
        table = "raw_salesforce_leads" if metric == "salesforce.raw_leads" else "raw_salesforce_opportunities"
        first_seen = f"SELECT id, min(created_date) AS ts FROM lake.{table} GROUP BY id"
    else:
        settings = cfg.sources.salesforce
        stage = "mql" if metric == "salesforce.mqls" else "inquiry"
        statuses = settings.mql_statuses if stage == "mql" else settings.inquiry_statuses
        in_stage = f"IN ({', '.join(sql_literal(s) for s in statuses)})" if statuses else "IS NULL AND FALSE"
        first_seen = f"""
            SELECT id, min(reached) AS ts FROM (
                SELECT id, ts AS reached FROM lake.raw_salesforce_leads WHERE status {in_stage}
                UNION ALL SELECT id, {stage}_field_at FROM lake.raw_salesforce_leads WHERE {stage}_field_at IS NOT NULL
                UNION ALL SELECT id, ts FROM lake.raw_salesforce_lead_status_changes WHERE new_status {in_stage})
            GROUP BY id"""
    return f"""
        SELECT fact_hour(ts) AS ts, '{{}}' AS dims, count(*) AS value
        FROM ({first_seen}) WHERE {AFFECTED} GROUP BY ALL"""


def beacon_sql(cfg: Config, metric: str) -> str:
    """Hourly web.* points from raw_beacon. A visitor is (site, visitor_id). A hit starts a session when the
    visitor's previous hit is `session_minutes` or more earlier, or there is none; the session counts in the
    hour of that hit. Distinct metrics come from `distinct_sql` (each fact hour its own bucket)."""
    settings = cfg.sources.beacon
    if metric == "web.pageviews":
        return f"""
            SELECT fact_hour(ts) AS ts, json_object('path', path)::VARCHAR AS dims, count(*) AS value
            FROM lake.raw_beacon WHERE name = 'pageview' AND {AFFECTED} GROUP BY ALL"""
    if metric == "web.blog_views":
        prefixes = " OR ".join(f"starts_with(path, {sql_literal(p)})" for p in settings.blog_prefixes) or "FALSE"
        return f"""
            SELECT fact_hour(ts) AS ts, '{{}}' AS dims, count(*) AS value
            FROM lake.raw_beacon WHERE name = 'pageview' AND ({prefixes}) AND {AFFECTED} GROUP BY ALL"""
    if metric == "web.sessions":
        timeout = f"INTERVAL {int(settings.session_minutes)} MINUTE"
        # A hit in an affected hour has its previous hit (if it matters) no earlier than `timeout` before it.
        return f"""
            SELECT fact_hour(ts) AS ts, '{{}}' AS dims, count(*) AS value
            FROM (SELECT ts, ts - lag(ts) OVER (PARTITION BY site, visitor_id ORDER BY ts, hit_id) AS gap
                  FROM lake.raw_beacon
                  WHERE ts >= (SELECT min(h) FROM affected_hours) - {timeout}
                    AND ts < (SELECT max(h) FROM affected_hours) + INTERVAL 1 HOUR)
            WHERE (gap IS NULL OR gap >= {timeout}) AND fact_hour(ts) IN (SELECT h FROM affected_hours)
            GROUP BY ALL"""
    raise KeyError(metric)


# Distinct metrics (unique visitors) cannot be summed from hourly points: each bucket is counted from raw
# rows. The cube builds the temp table first_hours(site, visitor_id, first_h) once per update from
# `first_hours_sql`: every visitor once, with the fact hour of its first hit ever. `distinct_sql` then counts,
# per bucket, the visitors with a hit in it (all), those whose first hit is in it (new) or before it
# (returning).
DISTINCT_COUNTS = {"web.visitors": "all", "web.new_visitors": "new", "web.returning_visitors": "returning"}


# first_hours of the beacon's visitors (the only distinct metrics so far): its `Source.first_seen_sql`.
BEACON_FIRST_HOURS = "SELECT site, visitor_id, fact_hour(min(ts)) AS first_h FROM lake.raw_beacon GROUP BY ALL"


def distinct_sql(metrics: list[str], hours: str) -> str:
    """(ts = bucket, metric, dims, value, last_ts) of DISTINCT `metrics` for each bucket of `hours`, SQL for
    (h, bucket) rows: every fact hour of every bucket to count, with its bucket. Reads only the raw_beacon rows
    of those hours, and works out no bucket per row: a bucket's first hour tells first visits in it (a visitor
    with a hit in the bucket whose first hit is at or after its first hour) from earlier ones. Buckets with no
    rows answer nothing (read as 0)."""
    counted = {"all": "count(*)", "new": "count(*) FILTER (WHERE first_h >= first_hour)",
               "returning": "count(*) FILTER (WHERE first_h < first_hour)"}
    columns = ", ".join(f'{counted[DISTINCT_COUNTS[m]]} AS "{m}"' for m in metrics)
    return f"""
        UNPIVOT (
            WITH hours AS ({hours}),
            starts AS (SELECT bucket, min(h) AS first_hour FROM hours GROUP BY bucket),
            active AS (
                SELECT site, visitor_id, bucket, max(h) AS last_h
                FROM lake.raw_beacon JOIN hours ON fact_hour(ts) = h
                WHERE ts >= (SELECT min(h) FROM hours) AND ts < (SELECT max(h) FROM hours) + INTERVAL 1 HOUR
                GROUP BY ALL)
            SELECT bucket AS ts, '{{}}' AS dims, max(last_h) AS last_ts, {columns}
            FROM active JOIN starts USING (bucket) JOIN first_hours USING (site, visitor_id)
            GROUP BY bucket)
        ON {", ".join(f'"{m}"' for m in metrics)} INTO NAME metric VALUE value"""
