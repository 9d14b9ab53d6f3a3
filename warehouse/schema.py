"""Every table in the lake: raw tables (one or more per source, append-only, with the natural key used for
dedupe), the ledgers that make ingestion exactly-once, and the cube."""
from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: str                 # "name TYPE, ..." without the bookkeeping column _batch
    key: tuple[str, ...]         # natural record key: re-ingesting a key never adds a row
    same_key_same_ts: bool = False   # lets dedupe look only at the batch's time range (large tables)
    time_partitioned: bool = True
    # Other time columns whose hours a new row changes in the cube (e.g. a Salesforce lead's CreatedDate
    # when a later version of the record arrives).
    also_affects: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [part.strip().split()[0] for part in self.columns.split(",")]


def observation_table(source: str) -> RawTable:
    """The raw table of a source that reports ready-made numbers (report APIs, follower counts).

    Every fetch is kept (append-only); `fetched_at` is part of the key, and the cube uses the latest fetch
    of each (metric, dims, ts), so a re-fetched day that the API finalised late replaces the earlier value
    instead of adding to it. Daily values are stamped 12:00 UTC of their date, so they fall on that date in
    any reporting time zone from UTC-11 to UTC+11."""
    return RawTable(f"raw_{source}", "ts TIMESTAMPTZ, metric VARCHAR, dims VARCHAR, value DOUBLE, fetched_at TIMESTAMPTZ",
                    key=("metric", "dims", "ts", "fetched_at"))


INGEST_TABLES: dict[str, RawTable] = {t.name: t for t in [
    RawTable(
        "raw_s3_access_logs",
        "ts TIMESTAMPTZ, bucket VARCHAR, request_id VARCHAR, operation VARCHAR, key VARCHAR, "
        "remote_ip VARCHAR, requester VARCHAR, request_uri VARCHAR, http_status INTEGER, error_code VARCHAR, "
        "bytes_sent BIGINT, object_size BIGINT, total_time_ms BIGINT, turn_around_time_ms BIGINT, "
        "referer VARCHAR, user_agent VARCHAR, version_id VARCHAR, host_id VARCHAR, signature_version VARCHAR, "
        "cipher_suite VARCHAR, authentication_type VARCHAR, host_header VARCHAR, tls_version VARCHAR, "
        "access_point_arn VARCHAR, acl_required VARCHAR, source_region VARCHAR, log_object VARCHAR",
        # One multi-object request (BATCH.DELETE, COPY) logs several records under one request ID.
        key=("bucket", "request_id", "operation", "key"),
        same_key_same_ts=True,
    ),
    RawTable(
        "raw_github_events",
        "ts TIMESTAMPTZ, delivery_id VARCHAR, event VARCHAR, action VARCHAR, repo VARCHAR, sender VARCHAR, "
        "stars BIGINT, forks BIGINT, watchers BIGINT, item_id BIGINT, payload JSON",
        key=("delivery_id",),
    ),
    RawTable(
        "raw_github_snapshots",
        "ts TIMESTAMPTZ, repo VARCHAR, stars BIGINT, forks BIGINT, watchers BIGINT, open_issues BIGINT",
        key=("repo", "ts"),
    ),
    RawTable("raw_github_stargazers", "ts TIMESTAMPTZ, repo VARCHAR, login VARCHAR", key=("repo", "login", "ts")),
    RawTable("raw_github_pulls", "ts TIMESTAMPTZ, repo VARCHAR, number BIGINT", key=("repo", "number")),
    RawTable("raw_github_releases", "ts TIMESTAMPTZ, repo VARCHAR, release_id BIGINT, tag VARCHAR",
             key=("repo", "release_id")),
    # Salesforce: every version of a record (ts = SystemModstamp); a new version of an old record changes
    # the hour it was created in. Status changes come from LeadHistory (ts = when the status changed; the
    # status a lead was created with is a row at its CreatedDate with old_status NULL).
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
    # Web beacon hits; the hit id is made at receive time, and a hit's time never changes.
    RawTable(
        "raw_beacon",
        "ts TIMESTAMPTZ, hit_id VARCHAR, site VARCHAR, name VARCHAR, path VARCHAR, visitor_id VARCHAR, via VARCHAR, "
        "referrer VARCHAR, utm_source VARCHAR, utm_medium VARCHAR, utm_campaign VARCHAR, utm_term VARCHAR, "
        "utm_content VARCHAR",
        key=("hit_id",),
        same_key_same_ts=True,
    ),
    # LinkedIn: exact follower counts (ts = the API's clock) and daily gains (ts = 12:00 UTC of the day;
    # every fetch kept, the latest counts).
    RawTable("raw_linkedin_followers", "ts TIMESTAMPTZ, organization VARCHAR, followers BIGINT",
             key=("organization", "ts")),
    RawTable("raw_linkedin_follower_gains", "ts TIMESTAMPTZ, organization VARCHAR, organic_gain BIGINT, "
             "paid_gain BIGINT, fetched_at TIMESTAMPTZ", key=("organization", "ts", "fetched_at")),
    observation_table("meltwater"),
    # SEO keyword rankings (ts = 12:00 UTC of `date`); a (day, keyword, domain) is kept as first reported.
    RawTable("raw_seo", "ts TIMESTAMPTZ, date DATE, keyword VARCHAR, domain VARCHAR, position INTEGER, "
             "search_volume BIGINT, provider VARCHAR, origin VARCHAR", key=("ts", "keyword", "domain", "provider"),
             same_key_same_ts=True),
    # SEO CSV files already imported (by name and content): each file once, a corrected copy again.
    RawTable("seo_files_read", "name VARCHAR, sha256 VARCHAR, rows BIGINT, rejected BIGINT",
             key=("name", "sha256"), time_partitioned=False),
    # YouTube: daily report rows (views, subscribers gained and lost; every fetch kept, the latest counts)
    # and channel snapshots (ts = the API's clock; subscribers NULL when the channel hides its count).
    observation_table("youtube"),
    RawTable("raw_youtube_channel", "ts TIMESTAMPTZ, channel_id VARCHAR, subscribers BIGINT, hidden BOOLEAN, "
             "views BIGINT, videos BIGINT", key=("channel_id", "ts")),
    # X/Twitter follower counts per poll (ts = fetched_at = the API's clock): the contract total and one row
    # per account (metric twitter.account_followers, dims {"account": username}).
    observation_table("twitter"),
    # S3 log objects already read: a late-delivered object is read once, a re-listed one never again.
    RawTable("s3_objects_read", "bucket VARCHAR, key VARCHAR, etag VARCHAR, size BIGINT, lines BIGINT",
             key=("bucket", "key"), time_partitioned=False),
]}

BOOKKEEPING_DDL = [
    # One row per committed batch: the batch id orders all ingestion and drives incremental rollups.
    "CREATE TABLE IF NOT EXISTS lake.batches (batch BIGINT, source VARCHAR, committed_at TIMESTAMPTZ, "
    "records BIGINT, inserted BIGINT, quarantined BIGINT)",
    "CREATE TABLE IF NOT EXISTS lake.cursors (source VARCHAR, cursor JSON, batch BIGINT, updated_at TIMESTAMPTZ)",
    "CREATE TABLE IF NOT EXISTS lake.quarantine (received_at TIMESTAMPTZ, source VARCHAR, reason VARCHAR, "
    "record VARCHAR, origin VARCHAR, _batch BIGINT)",
    # The cube: hourly facts (zone hours, `timegrid.fact_hour_macros`) and rollups at every grain (bucket = local
    # wall-clock start; bucket_utc = the instant it starts, which tells apart the two hours a DST end repeats).
    "CREATE TABLE IF NOT EXISTS lake.metric_points (ts TIMESTAMPTZ, source VARCHAR, metric VARCHAR, "
    "dims VARCHAR, value DOUBLE)",
    "CREATE TABLE IF NOT EXISTS lake.rollups (grain VARCHAR, bucket TIMESTAMP, metric VARCHAR, dims VARCHAR, "
    "value DOUBLE, last_ts TIMESTAMPTZ, bucket_utc TIMESTAMPTZ)",
    # What each source's cube was built from: the last batch, and a fingerprint of time zone + metric SQL.
    "CREATE TABLE IF NOT EXISTS lake.cube_state (source VARCHAR, batch BIGINT, definition VARCHAR)",
]


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table that is missing (idempotent; the writer calls it on start)."""
    from warehouse.lake import write_transaction
    # One catalog transaction for all of them: one commit per statement took seconds on a busy machine.
    write_transaction(con, _ensure, what="create the lake tables")


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    existing = {row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake'").fetchall()}
    for statement in BOOKKEEPING_DDL:
        con.execute(statement)
    # Lakes made before the cube kept a definition fingerprint rebuild their cube once.
    con.execute("ALTER TABLE lake.cube_state ADD COLUMN IF NOT EXISTS definition VARCHAR")
    # Lakes made before rollups kept bucket_utc: the cube's definition fingerprint changed too, so it rebuilds.
    con.execute("ALTER TABLE lake.rollups ADD COLUMN IF NOT EXISTS bucket_utc TIMESTAMPTZ")
    for table in INGEST_TABLES.values():
        if table.name not in existing:
            con.execute(f"CREATE TABLE lake.{table.name} ({table.columns}, _batch BIGINT)")
            if table.time_partitioned:
                # Time-partitioned files, so Spark/Trino/Athena can prune by the same layout.
                con.execute(f"ALTER TABLE lake.{table.name} SET PARTITIONED BY (year(ts), month(ts))")
