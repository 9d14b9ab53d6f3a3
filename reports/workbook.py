"""A dashboard report as an Excel workbook (xlsxwriter): a "Summary" sheet (range, time zone, freshness and the
KPI table against the previous period), then a sheet per widget with its rows (period, split value, value,
previous, Δ, Δ %, complete) and a native Excel chart of the widget's kind drawn from those cells.

Numbers are typed cells with a number format (percentages of share metrics with two decimals, Δ % as a
percentage), never text, so the workbook can be recomputed and charted further.

    xlsx_bytes = dashboard_xlsx(cfg, cur, dashboard, date(2024, 2, 1), date(2024, 2, 29))
    xlsx_bytes = render(model)       # from an already evaluated `reports.model.ReportModel`
"""
from __future__ import annotations

import io
import math
import re
from datetime import date

import xlsxwriter

from config import Config
from reports.charts import PALETTE
from reports.model import PREVIOUS_LABELS, ReportModel, WidgetData, evaluate, sheet_frame
from warehouse.dashboards_state import Dashboard

SHEET_NAME_CHARS = re.compile(r"[\[\]:*?/\\']")
HEADERS = {"value": "Value", "previous": "Previous", "delta": "Δ", "delta_pct": "Δ %", "complete": "Complete",
           "period": "Period"}
EXCEL_CHART = {"line": "line", "bar": "column", "pie": "pie", "scatter": "scatter", "kpi": "column",
               "table": "line"}


def dashboard_xlsx(cfg: Config, cur, dashboard: Dashboard, start: date, end: date) -> bytes:
    """The Excel report of `dashboard` over [start, end] (dates in the reporting time zone, inclusive)."""
    return render(evaluate(cfg, cur, dashboard, start, end))


def sheet_name(title: str, taken: set[str]) -> str:
    """A legal, unique sheet name (31 characters, none of []:*?/\\') for a widget title."""
    base = SHEET_NAME_CHARS.sub(" ", title).strip() or "Widget"
    name, n = base[:31], 2
    while name.lower() in taken:
        suffix = f" ({n})"
        name, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def _cell(value):
    """None for NaN and missing values (an empty cell), plain Python numbers otherwise."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook):
        self.header = book.add_format({"bold": True, "bg_color": "#EEF0FB", "bottom": 1})
        self.title = book.add_format({"bold": True, "font_size": 16})
        self.note = book.add_format({"italic": True, "font_color": "#555555"})
        self.whole = book.add_format({"num_format": "#,##0"})
        self.share = book.add_format({"num_format": "0.00"})
        self.signed = book.add_format({"num_format": "+#,##0;-#,##0;0"})
        self.signed_share = book.add_format({"num_format": "+0.00;-0.00;0.00"})
        self.pct = book.add_format({"num_format": "+0.0%;-0.0%;0.0%"})
        self.faded = book.add_format({"font_color": "#888888", "italic": True})

    def number(self, unit: str, signed: bool = False):
        if unit == "percent":
            return self.signed_share if signed else self.share
        return self.signed if signed else self.whole


def _summary(book, sheet, fmt: _Formats, model: ReportModel) -> None:
    sheet.set_column(0, 0, 42)
    sheet.set_column(1, 5, 16)
    sheet.write_string(0, 0, f"{model.dashboard}: report", fmt.title)
    facts = [("Range", f"{model.start.isoformat()} to {model.end.isoformat()}"),
             ("Compared with", f"{model.previous_start.isoformat()} to {model.previous_end.isoformat()}"),
             ("Time zone", model.timezone), ("Generated", model.generated_at.strftime("%Y-%m-%d %H:%M"))]
    for r, (name, text) in enumerate(facts, start=2):
        sheet.write_string(r, 0, name, fmt.header)
        sheet.write_string(r, 1, text)
    row = len(facts) + 3
    for c, name in enumerate(["Metric", "Value", "Previous", "Δ", "Δ %", "Note"]):
        sheet.write_string(row, c, name, fmt.header)
    for kpi in model.kpis:
        row += 1
        sheet.write_string(row, 0, kpi.label + (" (gauge: value at the end)" if kpi.kind == "gauge" else ""))
        for c, value, signed in ((1, kpi.value, False), (2, kpi.previous, False), (3, kpi.delta, True)):
            if value is not None:
                sheet.write_number(row, c, value, fmt.number(kpi.unit, signed))
        if kpi.delta_pct is not None:
            sheet.write_number(row, 4, kpi.delta_pct / 100, fmt.pct)
        if kpi.note:
            sheet.write_string(row, 5, kpi.note)
    row += 2
    sheet.write_string(row, 0, "Data freshness", fmt.header)
    sheet.write_string(row, 1, "Last day with data", fmt.header)
    sheet.write_string(row, 2, "Last collection (UTC)", fmt.header)
    for f in model.freshness:
        row += 1
        sheet.write_string(row, 0, f.source)
        sheet.write_string(row, 1, f.last_data.isoformat() if f.last_data else "no data yet")
        sheet.write_string(row, 2, (f.last_success_at or "none recorded")[:16].replace("T", " "))


def _widget_sheet(book, sheet, fmt: _Formats, data: WidgetData) -> None:
    spec = data.spec
    sheet.write_string(0, 0, data.title, fmt.title)
    described = f"{spec.kind} · {spec.metric}" + (f" against {spec.y_metric}" if spec.kind == "scatter" else "") + \
        f" · per {spec.grain}" + (f" · split by {spec.by}" if spec.by else "") + \
        (f" · previous = {PREVIOUS_LABELS[data.compare]}" if data.compare and spec.kind not in ("pie", "scatter") else "")
    sheet.write_string(1, 0, described, fmt.note)
    if data.error:
        sheet.write_string(3, 0, f"Not shown: {data.error}")
        return
    frame = sheet_frame(data)
    if frame.empty:
        sheet.write_string(3, 0, "No data in this range.")
        return
    top = 3                              # header row; data rows follow
    names = list(frame.columns)
    for c, name in enumerate(names):
        sheet.write_string(top, c, HEADERS.get(name, name), fmt.header)
        sheet.set_column(c, c, max(12, len(HEADERS.get(name, name)) + 2))
    for r, record in enumerate(frame.itertuples(index=False), start=top + 1):
        for c, (name, value) in enumerate(zip(names, record)):
            value = _cell(value)
            if value is None:
                continue
            if name == "complete":
                sheet.write_string(r, c, "yes" if value else "no, still counting", None if value else fmt.faded)
            elif name == "delta_pct":
                sheet.write_number(r, c, value / 100, fmt.pct)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                unit = data.y_unit if name == spec.y_metric and spec.kind == "scatter" else data.unit
                sheet.write_number(r, c, value, fmt.number(unit, signed=name == "delta"))
            else:
                sheet.write_string(r, c, str(value))
    sheet.freeze_panes(top + 1, 0)
    sheet.autofilter(top, 0, top + len(frame), len(names) - 1)
    if spec.kind == "kpi":
        _kpi_cells(sheet, fmt, data, len(names) + 1)
    _chart(book, sheet, data, names, top, top + len(frame))


def _kpi_cells(sheet, fmt: _Formats, data: WidgetData, column: int) -> None:
    """The KPI's headline number beside its buckets: value, previous, Δ, Δ % (as on the dashboard)."""
    kpi = data.kpi
    for r, (name, value) in enumerate((("KPI", kpi.value), ("Previous", kpi.previous), ("Δ", kpi.delta)), start=3):
        sheet.write_string(r, column, name, fmt.header)
        if value is not None:
            sheet.write_number(r, column + 1, value, fmt.number(data.unit, signed=name == "Δ"))
    sheet.write_string(6, column, "Δ %", fmt.header)
    if kpi.delta_pct is not None:
        sheet.write_number(6, column + 1, kpi.delta_pct / 100, fmt.pct)
    sheet.set_column(column, column + 1, 14)


def _series_ranges(data: WidgetData, names: list[str], top: int, last: int) -> list[tuple[str, int, int]]:
    """(name, first row, last row) of each split value's contiguous rows (the frame is sorted by split value)."""
    by = data.spec.by
    if not by or by not in names or data.spec.kind == "pie":
        return [(data.spec.metric, top + 1, last)]
    frame = sheet_frame(data)
    ranges, start = [], top + 1
    values = frame[by].astype(str).tolist()
    for i, value in enumerate(values):
        if i == len(values) - 1 or values[i + 1] != value:
            ranges.append((value, start, top + 1 + i))
            start = top + 2 + i
    return ranges


def _chart(book, sheet, data: WidgetData, names: list[str], top: int, last: int) -> None:
    kind = data.spec.kind
    chart = book.add_chart({"type": EXCEL_CHART[kind], **({"subtype": "stacked"} if kind == "bar" and data.spec.by
                                                          else {})})
    col = names.index
    if kind == "scatter":
        chart.add_series({"name": data.spec.y_metric, "categories": [sheet.name, top + 1, 1, last, 1],
                          "values": [sheet.name, top + 1, 2, last, 2],
                          "marker": {"type": "circle", "size": 6, "fill": {"color": PALETTE[0]}}})
        chart.set_x_axis({"name": data.spec.metric})
        chart.set_y_axis({"name": data.spec.y_metric})
        chart.set_legend({"none": True})
    elif kind == "pie":
        chart.add_series({"name": data.title, "categories": [sheet.name, top + 1, 0, last, 0],
                          "values": [sheet.name, top + 1, col("value"), last, col("value")],
                          "points": [{"fill": {"color": PALETTE[i % len(PALETTE)]}} for i in range(last - top)],
                          "data_labels": {"percentage": True}})
    else:
        for i, (name, first, end) in enumerate(_series_ranges(data, names, top, last)):
            colour = PALETTE[i % len(PALETTE)]
            look = {"fill": {"color": colour}} if EXCEL_CHART[kind] == "column" else {"line": {"color": colour, "width": 2}}
            chart.add_series({"name": name, "categories": [sheet.name, first, 0, end, 0],
                              "values": [sheet.name, first, col("value"), end, col("value")], **look})
            if data.compare and kind in ("line", "table"):
                chart.add_series({"name": f"{name}, {PREVIOUS_LABELS[data.compare]}",
                                  "categories": [sheet.name, first, 0, end, 0],
                                  "values": [sheet.name, first, col("previous"), end, col("previous")],
                                  "line": {"color": colour, "width": 1.25, "dash_type": "dash"}})
        chart.set_legend({"position": "bottom"})
    chart.set_title({"name": data.title})
    chart.set_size({"width": 720, "height": 360})
    sheet.insert_chart(top, len(names) + (4 if kind == "kpi" else 1), chart)


def render(model: ReportModel) -> bytes:
    """The workbook of an evaluated report model."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
                                     "strings_to_numbers": False, "nan_inf_to_errors": True})
    fmt = _Formats(book)
    taken = {"summary"}
    _summary(book, book.add_worksheet("Summary"), fmt, model)
    for data in model.widgets:
        _widget_sheet(book, book.add_worksheet(sheet_name(data.title, taken)), fmt, data)
    book.set_properties({"title": f"{model.dashboard}: {model.start} to {model.end}", "author": "Caskalytics",
                         "comments": f"Times in {model.timezone}"})
    book.close()
    return out.getvalue()
