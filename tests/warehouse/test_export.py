"""Exports: every format read back by an independent reader (pandas, pyarrow, json, openpyxl, the Hyper API)
gives the values and types that went in, for a metric series frame and for a typed DuckDB result streamed as
record batches."""
from __future__ import annotations

import io
import json
import math
import zipfile
from datetime import date, datetime, timezone

import duckdb
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tableauhyperapi import Connection, SqlType, TableName

from warehouse import export as export_module
from warehouse.export import ChartSpec, ExportError, export

FORMATS = ["csv", "parquet", "ndjson", "xlsx", "hyper"]
UTC = timezone.utc

# Typed columns with the awkward cases: NULL in every column (row 0), unicode, separators, quotes, newlines.
TYPED_SQL = """
    SELECT i::BIGINT AS id,
           CASE WHEN i = 0 THEN NULL ELSE i * 1.25 - 3 END::DOUBLE AS amount,
           CASE WHEN i = 0 THEN NULL
                WHEN i % 3 = 1 THEN 'Zoë, "the" Größte' || chr(10) || 'line ' || i
                WHEN i % 3 = 2 THEN '日本語 ✓ ' || i ELSE 'plain ' || i END AS name,
           CASE WHEN i = 0 THEN NULL ELSE i % 2 = 0 END::BOOLEAN AS ok,
           CASE WHEN i = 0 THEN NULL ELSE DATE '2025-12-30' + (i % 400)::INTEGER END AS day,
           CASE WHEN i = 0 THEN NULL ELSE TIMESTAMP '2026-01-01 00:00:00' + i * INTERVAL 3779 SECOND END AS at,
           CASE WHEN i = 0 THEN NULL
                ELSE TIMESTAMPTZ '2026-03-29 00:30:00+00' + i * INTERVAL 1801 SECOND + INTERVAL 250 MILLISECOND
           END AS at_tz
    FROM range(2500) t(i) ORDER BY id"""
COLUMNS = ["id", "amount", "name", "ok", "day", "at", "at_tz"]


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def expected_rows(con):
    return [tuple(plain(v) for v in row) for row in con.execute(TYPED_SQL).fetchall()]


def typed_reader(con) -> pa.RecordBatchReader:
    return con.execute(TYPED_SQL).to_arrow_reader(1000)      # three batches


def series_frame() -> pd.DataFrame:
    starts = pd.date_range("2026-03-01", periods=10, freq="D", tz="UTC")
    value = [float(v) for v in (5, 7, 7, 0, 12, 30, 28, 14, 9, 11)]
    previous = [math.nan, 5.0, 6.0, 8.0, 8.0, 10.0, 20.0, 20.0, 10.0, 10.0]
    return pd.DataFrame({
        "start": starts,
        "day": [s.date() for s in starts],
        "label": [s.strftime("%a %d %b") for s in starts],
        "value": value,
        "previous": previous,
        "delta": [v - p for v, p in zip(value, previous)],
        "delta_pct": [(v - p) / p * 100 if p else math.nan for v, p in zip(value, previous)],
    })


def series_rows() -> list[tuple]:
    return [tuple(plain(v) for v in row) for row in series_frame().itertuples(index=False)]


def plain(value):
    """One value as plain Python for comparing: None for NULL/NaN/NaT, datetime for timestamps."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def to_excel_precision(rows: list[tuple]) -> list[tuple]:
    """Excel keeps 15 significant digits of a number."""
    return [tuple(float(f"{v:.15g}") if isinstance(v, float) else v for v in row) for row in rows]


def body(result) -> bytes:
    return b"".join(result.chunks)


# --- readers: each format back into rows of plain values --------------------------------------------------------

def read_csv(data: bytes, dates: list[str], timestamps: list[str]) -> tuple[list[tuple], pd.Series]:
    frame = pd.read_csv(io.BytesIO(data), parse_dates=timestamps)
    for column in dates:
        frame[column] = pd.to_datetime(frame[column]).dt.date
    return [tuple(plain(v) for v in row) for row in frame.itertuples(index=False)], frame.dtypes


def read_ndjson(data: bytes, dates: list[str], timestamps: list[str]) -> list[dict]:
    lines = data.decode().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        for column in dates:
            if record[column] is not None:
                record[column] = date.fromisoformat(record[column])
        for column in timestamps:
            if record[column] is not None:
                record[column] = plain(datetime.fromisoformat(record[column]))
    return records


def read_xlsx(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def sheet_rows(sheet, dates: list[int] = (), utc: list[int] = ()) -> list[tuple]:
    """Data rows of a sheet; Excel dates come back as naive datetimes (dates at midnight, UTC wall time)."""
    rows = []
    for row in sheet.iter_rows(min_row=2, values_only=True):
        row = list(row)
        for c in dates:
            row[c] = row[c].date() if row[c] is not None else None
        for c in utc:
            row[c] = row[c].replace(tzinfo=UTC) if row[c] is not None else None
        rows.append(tuple(plain(v) for v in row))
    return rows


def read_hyper(data: bytes, tmp_path) -> tuple[list[tuple], dict]:
    path = tmp_path / "read.hyper"
    path.write_bytes(data)
    with Connection(export_module.hyper_process().endpoint, str(path)) as connection:
        table = connection.catalog.get_table_definition(TableName("Extract", "Extract"))
        types = {column.name.unescaped: column.type for column in table.columns}
        rows = connection.execute_list_query('SELECT * FROM "Extract"."Extract"')
    def value(v):
        if hasattr(v, "to_datetime"):
            return plain(v.to_datetime())
        if hasattr(v, "to_date"):
            return v.to_date()
        return v
    return [tuple(value(v) for v in row) for row in rows], types


# --- a typed DuckDB result, streamed -------------------------------------------------------------------------

def test_csv_of_a_typed_query(con, expected_rows):
    result = export(typed_reader(con), "csv", title="raw rows")
    assert (result.media_type, result.filename) == ("text/csv; charset=utf-8", "raw-rows.csv")
    rows, dtypes = read_csv(body(result), dates=["day"], timestamps=["at", "at_tz"])
    assert rows == expected_rows
    assert str(dtypes["id"]) == "int64" and str(dtypes["amount"]) == "float64"
    assert str(dtypes["at"]).startswith("datetime64") and str(dtypes["at_tz"]).endswith("UTC]")


def test_parquet_of_a_typed_query_keeps_the_arrow_types(con, expected_rows):
    table = pq.read_table(io.BytesIO(body(export(typed_reader(con), "parquet"))))
    assert [tuple(plain(v) for v in row.values()) for row in table.to_pylist()] == expected_rows
    assert table.schema.types == [pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.date32(),
                                  pa.timestamp("us"), pa.timestamp("us", "UTC")]


def test_ndjson_of_a_typed_query(con, expected_rows):
    records = read_ndjson(body(export(typed_reader(con), "ndjson")), dates=["day"], timestamps=["at", "at_tz"])
    assert [tuple(r[c] for c in COLUMNS) for r in records] == expected_rows
    assert list(records[0]) == COLUMNS
    assert type(records[1]["id"]) is int and type(records[1]["amount"]) is float and type(records[1]["ok"]) is bool
    raw = body(export(typed_reader(con), "ndjson")).decode().splitlines()[1]
    assert '"at_tz":"2026-03-29T01:00:01.25Z"' in raw and '"at":"2026-01-01T01:02:59"' in raw


def test_xlsx_of_a_typed_query(con, expected_rows):
    workbook = read_xlsx(body(export(typed_reader(con), "xlsx", title="raw rows")))
    assert workbook.sheetnames == ["raw rows"]
    sheet = workbook["raw rows"]
    assert [c.value for c in sheet[1]] == COLUMNS
    assert to_excel_precision(sheet_rows(sheet, dates=[4], utc=[6])) == to_excel_precision(expected_rows)
    row = sheet[3]
    assert [c.data_type for c in row[:4]] == ["n", "n", "s", "b"]
    assert all(c.is_date for c in row[4:7])
    assert row[4].number_format == "yyyy-mm-dd" and row[5].number_format == "yyyy-mm-dd hh:mm:ss"
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:G2501"
    assert sheet.column_dimensions["C"].width > sheet.column_dimensions["A"].width


def test_hyper_of_a_typed_query(con, expected_rows, tmp_path):
    result = export(typed_reader(con), "hyper", title="raw rows")
    assert result.filename == "raw-rows.hyper"
    rows, types = read_hyper(body(result), tmp_path)
    assert sorted(rows, key=lambda r: r[0]) == expected_rows
    assert types == {"id": SqlType.big_int(), "amount": SqlType.double(), "name": SqlType.text(),
                     "ok": SqlType.bool(), "day": SqlType.date(), "at": SqlType.timestamp(),
                     "at_tz": SqlType.timestamp_tz()}


# --- a metric series frame ---------------------------------------------------------------------------------

SERIES_COLUMNS = ["start", "day", "label", "value", "previous", "delta", "delta_pct"]


def test_series_as_csv_parquet_and_ndjson():
    expected = series_rows()
    rows, _ = read_csv(body(export(series_frame(), "csv")), dates=["day"], timestamps=["start"])
    assert rows == expected
    table = pq.read_table(io.BytesIO(body(export(series_frame(), "parquet"))))
    assert table.schema.field("start").type == pa.timestamp("us", "UTC")
    assert table.schema.field("day").type == pa.date32()
    assert [tuple(plain(v) for v in r.values()) for r in table.to_pylist()] == expected
    records = read_ndjson(body(export(series_frame(), "ndjson")), dates=["day"], timestamps=["start"])
    assert [tuple(r[c] for c in SERIES_COLUMNS) for r in records] == expected
    assert records[0]["previous"] is None


def test_series_as_xlsx_has_a_line_chart_of_value_and_dashed_previous():
    data = body(export(series_frame(), "xlsx", title="downloads by day", chart=ChartSpec()))
    sheet = read_xlsx(data)["downloads by day"]
    assert to_excel_precision(sheet_rows(sheet, dates=[1], utc=[0])) == to_excel_precision(series_rows())
    assert sheet["A2"].is_date and sheet["B2"].is_date and sheet["A2"].value == datetime(2026, 3, 1)
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:G11"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        charts = [n for n in archive.namelist() if n.startswith("xl/charts/chart")]
        assert len(charts) == 1
        chart = archive.read(charts[0]).decode()
    assert "<c:lineChart>" in chart and chart.count("<c:ser>") == 2
    assert "'downloads by day'!$D$2:$D$11" in chart and "'downloads by day'!$E$2:$E$11" in chart
    assert "'downloads by day'!$A$2:$A$11" in chart           # the x axis: the bucket starts
    assert chart.count('<a:prstDash val="dash"/>') == 1


def test_series_chart_without_previous_has_one_line():
    frame = series_frame().drop(columns=["previous", "delta", "delta_pct"])
    data = body(export(frame, "xlsx", chart=ChartSpec()))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("xl/charts/chart1.xml").decode().count("<c:ser>") == 1


def test_series_as_hyper(tmp_path):
    rows, types = read_hyper(body(export(series_frame(), "hyper")), tmp_path)
    assert sorted(rows) == series_rows()
    assert [types[c] for c in SERIES_COLUMNS] == [SqlType.timestamp_tz(), SqlType.date(), SqlType.text()] + \
        [SqlType.double()] * 4


# --- limits, streaming, clean-up, bad requests ---------------------------------------------------------------

def test_xlsx_past_the_sheet_row_limit_continues_on_more_sheets_and_says_so(monkeypatch, con):
    monkeypatch.setattr(export_module, "EXCEL_MAX_ROWS", 5)       # 4 rows under the header
    frame = con.execute("SELECT i AS n, 'row ' || i AS text FROM range(10) t(i)").df()
    workbook = read_xlsx(body(export(frame, "xlsx", title="big")))
    assert workbook.sheetnames == ["big", "big (2)", "big (3)", "Notes"]
    rows = []
    for name in workbook.sheetnames[:3]:
        sheet = workbook[name]
        assert [c.value for c in sheet[1]] == ["n", "text"] and sheet.freeze_panes == "A2"
        rows += sheet_rows(sheet)
    assert rows == [(i, f"row {i}") for i in range(10)]
    assert workbook["big (3)"].auto_filter.ref == "A1:B3"
    notes = [row[0] for row in workbook["Notes"].iter_rows(values_only=True)]
    assert "10 rows" in notes[0] and notes[1:] == ["Sheet 'big': rows 1 to 4", "Sheet 'big (2)': rows 5 to 8",
                                                    "Sheet 'big (3)': rows 9 to 10"]


def test_chunks_come_out_while_batches_are_still_being_read(monkeypatch):
    monkeypatch.setattr(export_module, "CHUNK_BYTES", 1)
    for fmt in ("csv", "parquet", "ndjson"):
        pulled = []
        def batches():
            for i in range(4):
                pulled.append(i)
                yield pa.record_batch({"n": pa.array(range(i * 100, i * 100 + 100), pa.int64())})
        reader = pa.RecordBatchReader.from_batches(pa.schema([("n", pa.int64())]), batches())
        chunks = export(reader, fmt).chunks
        next(chunks)
        assert len(pulled) < 4, fmt
        rest = list(chunks)
        assert len(pulled) == 4 and rest, fmt


def test_empty_results_are_valid_files(con, tmp_path):
    empty = "SELECT 1::BIGINT AS id, 'x' AS name WHERE false"
    assert body(export(con.execute(empty).to_arrow_reader(), "csv")) == b'"id","name"\n'
    assert pq.read_table(io.BytesIO(body(export(con.execute(empty).to_arrow_reader(), "parquet")))).num_rows == 0
    assert body(export(con.execute(empty).to_arrow_reader(), "ndjson")) == b""
    sheet = read_xlsx(body(export(con.execute(empty).to_arrow_reader(), "xlsx"))).active
    assert [c.value for c in sheet[1]] == ["id", "name"] and sheet.max_row == 1
    rows, _ = read_hyper(body(export(con.execute(empty).to_arrow_reader(), "hyper")), tmp_path)
    assert rows == []


@pytest.mark.parametrize("fmt", ["xlsx", "hyper"])
def test_file_formats_leave_no_files_behind(fmt, monkeypatch, tmp_path, con):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    monkeypatch.chdir(tmp_path)
    assert body(export(typed_reader(con), fmt))
    chunks = export(typed_reader(con), fmt).chunks
    next(chunks)
    chunks.close()                       # the client went away mid-download
    leftovers = [p.name for p in temp.iterdir() if not p.name.startswith("caskalytics-hyper-log-")]
    assert leftovers == [] and sorted(p.name for p in tmp_path.iterdir()) == ["temp"]


ODD_SQL = """SELECT INTERVAL 3 DAY AS span, '\\x00ab'::BLOB AS raw, [1, 2] AS list, {'x': 1, 'y': 'z'} AS record,
                     MAP {'a': 1} AS mapping, union_value(num := 2)::UNION(num INTEGER, str VARCHAR) AS choice,
                     18446744073709551615::UBIGINT AS huge, 'b'::ENUM('a', 'b') AS label,
                     TIMESTAMP_NS '2024-01-01 00:00:00.123456789' AS ns"""


def test_any_type_a_query_returns_exports_in_every_format(con, tmp_path):
    """/sql results can hold any DuckDB type: what a format cannot hold goes as text, never a failure."""
    csv_rows, _ = read_csv(body(export(con.execute(ODD_SQL).to_arrow_reader(), "csv")), [], [])
    assert csv_rows == [("3 days", "\\x00ab", "[1,2]", '{"x":1,"y":"z"}', '{"a":1}', '{"num":2}',
                         18446744073709551615, "b", "2024-01-01 00:00:00.123456")]
    table = pq.read_table(io.BytesIO(body(export(con.execute(ODD_SQL).to_arrow_reader(), "parquet"))))
    assert table.to_pylist()[0]["list"] == [1, 2] and table.to_pylist()[0]["choice"] == '{"num":2}'
    record = json.loads(body(export(con.execute(ODD_SQL).to_arrow_reader(), "ndjson")))
    assert record["record"] == {"x": 1, "y": "z"} and record["span"] == "3 days"
    sheet = read_xlsx(body(export(con.execute(ODD_SQL).to_arrow_reader(), "xlsx"))).active
    assert [c.value for c in sheet[2]][:3] == ["3 days", "\\x00ab", "[1,2]"]
    rows, types = read_hyper(body(export(con.execute(ODD_SQL).to_arrow_reader(), "hyper")), tmp_path)
    assert rows[0][0] == "3 days" and rows[0][1] == b"\x00ab" and types["huge"] == SqlType.double()


def test_bad_requests_are_one_sentence_errors():
    with pytest.raises(ExportError, match="unknown export format 'pdf': use one of csv, parquet, ndjson, xlsx, hyper"):
        export(series_frame(), "pdf")
    with pytest.raises(ExportError, match="cannot chart column 'visits'"):
        export(series_frame(), "xlsx", chart=ChartSpec(value="visits"))
