"""`s3_access_logs`: product downloads from S3 server access logs.

Cursor: the last log object key read; listing resumes with `StartAfter`, so an ingested object is never
read again. S3 may deliver an object after objects with later keys, so each run re-lists a trailing window
(`relist_hours`) and skips what the `s3_objects_read` ledger says was read. Objects are read oldest first
in chunks of at most `batch_megabytes`; each chunk commits with its ledger rows and the advanced cursor.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import boto3
import duckdb
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from pydantic import Field, field_validator

from collectors.base import Batch, Context, Demo, Source, SourceError
from collectors.s3_logparse import LogParser
from config import SourceConfig
from warehouse.catalog import COUNTER, Metric, RawTable
from warehouse.metrics import downloads_sql

KEY_TIME = re.compile(r"(?:(\d{4})/(\d{2})/(\d{2})/)?(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-[^/]*$")
PIECE_BYTES = 32 * 1024 * 1024    # large objects are split at line ends so memory stays bounded


class S3AccessLogsConfig(SourceConfig):
    bucket: str
    prefix: str = "logs/"
    endpoint_url: str = ""
    region: str = "us-east-1"
    version_pattern: str = r"(?P<artifact>[^/]+)/(?P<version>\d+(?:\.\d+)+)/"
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    relist_hours: int = Field(default=2, ge=0)       # S3 may deliver a log object after later-keyed ones
    batch_megabytes: int = Field(default=24, ge=1)   # bounds memory per committed chunk (~430 MB peak RSS at 24)

    @field_validator("version_pattern")
    @classmethod
    def pattern_has_version(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"a regular expression, got {value!r} ({exc})") from None
        if "version" not in compiled.groupindex:
            raise ValueError("a regular expression with a named group (?P<version>...)")
        # The cube runs the pattern in DuckDB, whose RE2 lacks look-arounds and back-references that Python has:
        # refuse such a pattern now rather than fail inside every cube update.
        try:
            duckdb.execute("SELECT regexp_matches('', ?::VARCHAR)", [value])
        except duckdb.Error as exc:
            raise ValueError(f"a regular expression DuckDB's RE2 engine can run, got {value!r} "
                             f"({str(exc).splitlines()[0][:120]})") from None
        return value


def key_time(key: str) -> datetime | None:
    """The delivery time AWS writes into a log object key (simple or date-partitioned layout)."""
    match = KEY_TIME.search(key)
    if not match:
        return None
    return datetime(*(int(g) for g in match.groups()[3:]))


def key_at(key: str, when: datetime) -> str:
    """A key that sorts just before every log object delivered at or after `when` under the same prefix."""
    match = KEY_TIME.search(key)
    if not match:
        return key
    partition = when.strftime("%Y/%m/%d/") if match.group(1) else ""
    return key[:match.start()] + partition + when.strftime("%Y-%m-%d-%H-%M-%S")


def make_client(ctx: Context):
    settings: S3AccessLogsConfig = ctx.settings
    return boto3.client(
        "s3", region_name=settings.region, endpoint_url=settings.endpoint_url or None,
        aws_access_key_id=ctx.secret(settings.access_key_id_env),
        aws_secret_access_key=ctx.secret(settings.secret_access_key_env),
        config=BotoConfig(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=10, read_timeout=60,
                          max_pool_connections=16))


def _list(client, bucket: str, prefix: str, start_after: str) -> Iterator[dict]:
    paginator = client.get_paginator("list_objects_v2")
    params = {"Bucket": bucket, "Prefix": prefix}
    if start_after:
        params["StartAfter"] = start_after
    for page in paginator.paginate(**params):
        yield from page.get("Contents", [])


def _download(client, bucket: str, key: str, folder: Path, index: int) -> list[Path]:
    """Stream one object to local pieces of at most PIECE_BYTES, cut at line ends."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    pieces, carry, part = [], b"", 0
    for block in iter(lambda: body.read(PIECE_BYTES), b""):
        data = carry + block
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry = data
            continue
        path = folder / f"{index:06d}-{part:04d}.log"
        path.write_bytes(data[:cut])
        pieces.append(path)
        carry, part = data[cut:], part + 1
    if carry:
        path = folder / f"{index:06d}-{part:04d}.log"
        path.write_bytes(carry + b"\n")
        pieces.append(path)
    return pieces


class S3AccessLogs:

    def collect(self, ctx: Context, cursor: dict | None) -> Iterator[Batch]:
        settings: S3AccessLogsConfig = ctx.settings
        last_key = (cursor or {}).get("last_key", "")
        relist_from = last_key
        if last_key and (delivered := key_time(last_key)):
            relist_from = key_at(last_key, delivered - timedelta(hours=settings.relist_hours))
        yield from self._read_new(ctx, start_after=relist_from, keep=lambda key: True, last_key=last_key)

    def backfill(self, ctx: Context, start: date, end: date) -> Iterator[Batch]:
        def in_range(key: str) -> bool:
            delivered = key_time(key)
            # Logs for a day can be delivered up to a day later; keys without a time are always read.
            return delivered is None or start <= delivered.date() <= end + timedelta(days=1)
        yield from self._read_new(ctx, start_after="", keep=in_range, last_key=None)

    def _read_new(self, ctx: Context, start_after: str, keep, last_key: str | None) -> Iterator[Batch]:
        settings: S3AccessLogsConfig = ctx.settings
        client = make_client(ctx)
        try:
            listed = [o for o in _list(client, settings.bucket, settings.prefix, start_after) if keep(o["Key"])]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "NoSuchBucket"):
                raise SourceError(f"S3 refused listing s3://{settings.bucket}/{settings.prefix} ({code}): check "
                                  f"[sources.s3_access_logs] bucket and the credentials in ${settings.access_key_id_env}"
                                  f"/${settings.secret_access_key_env}") from None
            raise
        except NoCredentialsError:
            raise SourceError(f"no AWS credentials: set ${settings.access_key_id_env} and "
                              f"${settings.secret_access_key_env} (named by [sources.s3_access_logs])") from None
        except (EndpointConnectionError, BotoCoreError) as exc:
            raise SourceError(f"cannot reach S3 ({exc}); check [sources.s3_access_logs] endpoint_url") from None
        already = ctx.lookup.s3_keys_read(settings.bucket, start_after)
        todo = sorted((o for o in listed if o["Key"] not in already), key=lambda o: o["Key"])
        limit = settings.batch_megabytes * 1024 * 1024
        chunks, chunk, size = [], [], 0
        for obj in todo:
            if chunk and size + obj["Size"] > limit:
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(obj)
            size += obj["Size"]
        if chunk:
            chunks.append(chunk)
        skipped = len(listed) - len(todo)
        if skipped and not chunks:       # nothing new: say so all the same ("N objects already read, skipped")
            yield Batch(records={}, skipped=skipped, label="already read")
        parser = LogParser(ctx.staging)
        done = 0
        for chunk, parsed in self._parse_chunks(client, settings.bucket, chunks, parser):
            lines = parsed.lines_by_file
            ledger = [{"bucket": settings.bucket, "key": o["Key"], "etag": o.get("ETag", "").strip('"'),
                       "size": o["Size"], "lines": lines.get(o["Key"], 0)} for o in chunk]
            done += len(chunk)
            newest = max(o["Key"] for o in chunk)
            cursor = None if last_key is None else {"last_key": max(last_key, newest)}
            if last_key is not None:
                last_key = cursor["last_key"]
            yield Batch(records={"raw_s3_access_logs": parsed.staged, "s3_objects_read": ledger},
                        cursor=cursor, rejected=parsed.rejected, progress=(done, len(todo)),
                        label=f"{chunk[0]['Key']} .. {chunk[-1]['Key']}", skipped=skipped)
            skipped = 0

    @staticmethod
    def _parse_chunks(client, bucket: str, chunks: list[list[dict]], parser: LogParser):
        """Download and parse each chunk in turn; the next chunk downloads (in a background thread) while the
        current one is parsed and committed. At most two chunks are on local disk at a time."""
        def fetch(chunk: list[dict]) -> tuple[str, dict[Path, str]]:
            folder = tempfile.mkdtemp(prefix="caskalytics-s3-")
            try:
                with ThreadPoolExecutor(max_workers=8) as pool:
                    pieces = list(pool.map(lambda item: _download(client, bucket, item[1]["Key"], Path(folder),
                                                                  item[0]), enumerate(chunk)))
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            return folder, {path: obj["Key"] for obj, paths in zip(chunk, pieces) for path in paths}

        if not chunks:
            return
        with ThreadPoolExecutor(max_workers=1) as prefetch:
            upcoming = prefetch.submit(fetch, chunks[0])
            try:
                for index, chunk in enumerate(chunks):
                    folder, files = upcoming.result()
                    upcoming = prefetch.submit(fetch, chunks[index + 1]) if index + 1 < len(chunks) else None
                    try:
                        parsed = parser.parse(files)
                    finally:
                        shutil.rmtree(folder, ignore_errors=True)
                    yield chunk, parsed
            finally:
                if upcoming is not None:          # stopped early (an error, or the consumer stopped): clean up
                    upcoming.cancel()
                    try:
                        shutil.rmtree(upcoming.result()[0], ignore_errors=True)
                    except BaseException:
                        pass


SOURCE = Source(
    name="s3_access_logs",
    settings=S3AccessLogsConfig,
    collector=S3AccessLogs,
    tables=(
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
        # S3 log objects already read: a late-delivered object is read once, a re-listed one never again.
        RawTable("s3_objects_read", "bucket VARCHAR, key VARCHAR, etag VARCHAR, size BIGINT, lines BIGINT",
                 key=("bucket", "key"), time_partitioned=False),
    ),
    metrics=(
        Metric("downloads", COUNTER, ("version", "artifact"),
               "Product downloads from S3 access logs (200s, plus one per 206 range-request group an hour)",
               sql=downloads_sql),
    ),
    progress_unit="objects",
    demo=Demo("s3_access_logs", needs=("moto",),
              secrets={"DEMO_AWS_ACCESS_KEY_ID": "demo", "DEMO_AWS_SECRET_ACCESS_KEY": "demo"}),
)
