"""Data out for analysts and tools: read-only SQL and streamed exports (include with `app.include_router(router)`).

    POST /sql                          {"sql": "SELECT ...", "limit": 1000} -> {columns, rows, truncated, elapsed_ms}
    POST /sql?format=csv|parquet|...   the query's whole result (or its first `limit` rows, when the body
                                       names a limit) as a download
    GET  /sql/tables                   the queryable tables, their kind, time column and columns
    GET  /export/metrics/{metric}.{fmt}  a series (the /metrics/{metric} parameters) as a file
    GET  /export/tables/{table}.{fmt}    a raw table, the facts, the rollups or the quarantine, ?from=&to=

Every route needs the API's bearer token when `[api] token_env` names a set variable. No SQL is written here:
user SQL goes to the sandbox (`warehouse.sql`), table exports take their SELECT from
`warehouse.table_export.table_select`, series come from `warehouse.queries.series_frame`.

Streams: the first chunk of a download is made before the answer starts, so a query refused or failing at
once is a 400 with `{"error"}`; a failure later (the time limit, say) cuts the stream off, which a client sees
as an incomplete download, never as a complete file.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Services, require_token, services
from api.params import Compare, Day, Grain
from api.schemas import ERRORS, QueryableTables, SqlAnswer, media
from config import Config
from warehouse import queries, sql
from warehouse.sql import DEFAULT_LIMIT, MAX_LIMIT
from warehouse.export import MEDIA_TYPES, ChartSpec, ExportError, export
from warehouse.queries import QueryError, SeriesRequest
from warehouse.table_export import exportable_tables, series_table, table_select

Format = Literal["csv", "parquet", "ndjson", "xlsx", "hyper"]
DOWNLOAD = {200: media(*MEDIA_TYPES.values(), description="The file, streamed")}

router = APIRouter(tags=["data"], dependencies=[Depends(require_token)], responses=ERRORS)


class SqlQuery(BaseModel):
    """The body of `POST /sql`."""
    model_config = ConfigDict(extra="forbid")
    sql: str = Field(min_length=1, max_length=100_000, examples=["SELECT count(*) FROM raw_s3_access_logs"],
                     description="One DuckDB SELECT over the tables of GET /sql/tables")
    limit: int = Field(DEFAULT_LIMIT, ge=0, le=MAX_LIMIT, strict=True,
                       description="Most rows in the answer (at most [api] sql_row_limit); with ?format=, "
                                   "only when given")


def where_filters(values: list[str]) -> dict[str, list[str]]:
    """`?where=dim:value` (repeatable) as {dim: [values]}."""
    where: dict[str, list[str]] = {}
    for item in values:
        dim, sep, value = item.partition(":")
        if not sep or not dim:
            raise QueryError(f"where must look like dim:value, got {item!r:.80}")
        where.setdefault(dim, []).append(value)
    return where


@router.post("/sql", response_model=SqlAnswer,
             responses={200: {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                                          for t in MEDIA_TYPES.values()},
                              "description": "The answer as JSON, or with ?format= the result as a file"}})
def run_sql(query: SqlQuery, format: Format | None = Query(None, description="Download the result as a file"),
            svc: Services = Depends(services)):
    cfg = svc.cfg
    if format is not None:
        limit = query.limit if "limit" in query.model_fields_set else None
        return _download(cfg, query.sql, format, "query", max_rows=limit)
    if query.limit > cfg.api.sql_row_limit:
        raise HTTPException(400, f"limit must be at most {cfg.api.sql_row_limit:,} ([api] sql_row_limit); "
                                 "download larger results with ?format=")
    try:
        return sql.run_readonly(cfg, query.sql, query.limit, cfg.api.sql_timeout_seconds).as_dict()
    except sql.SqlRefused as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/sql/tables", response_model=QueryableTables)
def sql_tables(svc: Services = Depends(services)):
    time_columns = exportable_tables(svc.cfg)
    try:
        tables = sql.queryable_tables(svc.cfg, svc.reader.cursor())
    except sql.SqlRefused as exc:
        raise HTTPException(400, str(exc)) from None
    return {"tables": [{**t, "time_column": time_columns[t["name"]]} for t in tables]}


@router.get("/export/metrics/{metric}.{fmt}", response_class=StreamingResponse, responses=DOWNLOAD)
def export_metric(metric: str = Path(description="A metric name from /metrics", examples=["downloads"]),
                  fmt: Format = Path(), grain: Grain = "day", from_: Day | None = Query(None, alias="from"),
                  to: Day | None = None, compare: Compare | None = None, where: list[str] = Query([]), by: list[str] = Query([]),
                  svc: Services = Depends(services)):
    """The series `/metrics/{metric}` answers, as a table: `start`, `end`, `period`, the `by` dimensions,
    `value`, with `compare=` also `previous`, `delta`, `delta_pct`, and `complete`. The Excel file has a line
    chart of the series (without `by`)."""
    if metric not in svc.cfg.catalog.metrics:
        raise HTTPException(404, f"unknown metric {metric!r:.80}; see /metrics for the catalog")
    request = SeriesRequest(metric, grain, from_, to, where_filters(where), by or None, compare)
    series = queries.series_frame(svc.reader.cursor(), svc.cfg, request)
    chart = None if by else ChartSpec(x="start", previous="previous" if compare else None,
                                      title=f"{metric} by {grain}")
    try:
        result = export(series_table(series), fmt, title=f"{metric}-{grain}", chart=chart)
    except ExportError as exc:
        raise HTTPException(400, str(exc)) from None
    return StreamingResponse(result.chunks, media_type=result.media_type, headers=result.headers)


@router.get("/export/tables/{table}.{fmt}", response_class=StreamingResponse, responses=DOWNLOAD)
def export_table(table: str = Path(description="A table from /sql/tables", examples=["rollups"]),
                 fmt: Format = Path(), from_: Day | None = Query(None, alias="from"), to: Day | None = None,
                 svc: Services = Depends(services)):
    """Every row of a raw table (`ts`), the facts (`ts`), the rollups (`bucket`) or the quarantine
    (`received_at`) whose time falls on the local days `from`..`to` (inclusive; either may be left out), in
    storage order, streamed."""
    if table not in exportable_tables(svc.cfg):
        raise HTTPException(404, f"unknown table {table!r:.80}; see /sql/tables for the tables you can export")
    return _download(svc.cfg, table_select(svc.cfg, table, from_, to), fmt, table)


def _download(cfg: Config, select: str, fmt: str, title: str, max_rows: int | None = None) -> StreamingResponse:
    """Run `select` in the sandbox and stream its result as `fmt`. The worker process lives as long as the
    stream; it ends when the last chunk is sent, or when the client goes away."""
    stack = ExitStack()
    try:
        stream = stack.enter_context(sql.readonly_batches(cfg, select, timeout_s=cfg.api.export_timeout_seconds))
        reader = stream.reader()
        if max_rows is not None:
            reader = _first_rows(reader, max_rows)
        result = export(reader, fmt, title=title)
        chunks = result.chunks
        stack.callback(getattr(chunks, "close", lambda: None))    # the Excel/Hyper temp file goes too
        first = next(chunks, b"")        # a query refused or failing at once: still a 400, not a cut stream
    except (sql.SqlRefused, ExportError) as exc:
        stack.close()
        raise HTTPException(400, str(exc)) from None
    except BaseException:
        stack.close()
        raise

    def body():
        with stack:
            if first:
                yield first
            yield from chunks
    return StreamingResponse(body(), media_type=result.media_type, headers=result.headers)


def _first_rows(reader, limit: int):
    """The reader's first `limit` rows, as a reader (the rest is never read)."""
    import pyarrow as pa

    def batches():
        left = limit
        for batch in reader:
            if left <= 0:
                return
            yield batch.slice(0, left)
            left -= min(left, batch.num_rows)
    return pa.RecordBatchReader.from_batches(reader.schema, batches())
