"""A dashboard report as a PDF (reportlab): a title page (dashboard, range, time zone, data freshness), the KPI
table against the previous period, then every widget with its chart drawn natively (`reports.charts`), a KPI
widget as its number, a table widget as its rows. Every page carries "page N of M" and the time zone.

    pdf_bytes = dashboard_pdf(cfg, cur, dashboard, date(2024, 2, 1), date(2024, 2, 29))
    pdf_bytes = render(model)          # from an already evaluated `reports.model.ReportModel` (digests)
"""
from __future__ import annotations

import io
from datetime import date

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import (CondPageBreak, KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table,
                                TableStyle)
from xml.sax.saxutils import escape

from config import Config
from reports import charts, numbers
from reports.model import PREVIOUS_LABELS, ReportModel, WidgetData, evaluate, sheet_frame
from warehouse.dashboards_state import KIND_LABELS, Dashboard

MAX_TABLE_ROWS = 60          # a table widget's rows in the PDF; the workbook has them all
STYLES = getSampleStyleSheet()
SMALL = ParagraphStyle("small", parent=STYLES["Normal"], fontSize=8, leading=10, textColor=colors.HexColor("#555555"))
BIG = ParagraphStyle("big", parent=STYLES["Title"], fontSize=30, leading=36, alignment=0)
GRID = TableStyle([
    ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9), ("FONT", (0, 1), (-1, -1), "Helvetica", 9),
    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#EEF0FB")),
    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#636EFA")),
    ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.HexColor("#DDDDDD")),
    ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
])
UP, DOWN = colors.HexColor("#0A7D3E"), colors.HexColor("#B3261E")


def dashboard_pdf(cfg: Config, cur, dashboard: Dashboard, start: date, end: date) -> bytes:
    """The PDF report of `dashboard` over [start, end] (dates in the reporting time zone, inclusive)."""
    return render(evaluate(cfg, cur, dashboard, start, end))


def _p(text: str, style=STYLES["Normal"]) -> Paragraph:
    return Paragraph(text, style)


def _range(model: ReportModel) -> str:
    days = (model.end - model.start).days + 1
    return f"{model.start.isoformat()} to {model.end.isoformat()} ({days} day{'s' if days > 1 else ''})"


def _title_page(model: ReportModel) -> list:
    story = [Spacer(1, 40 * mm), _p("Caskalytics report", STYLES["Heading3"]), _p(escape(model.dashboard), BIG),
             Spacer(1, 6 * mm), _p(f"<b>Range:</b> {_range(model)}"),
             _p(f"<b>Compared with:</b> {model.previous_start.isoformat()} to {model.previous_end.isoformat()} "
                f"(the period of the same length just before)"),
             _p(f"<b>Time zone:</b> {escape(model.timezone)} (dates and buckets are local to it)"),
             _p(f"<b>Generated:</b> {model.generated_at:%Y-%m-%d %H:%M} {escape(model.timezone)}"),
             _p(f"<b>Widgets:</b> {len(model.widgets)}"), Spacer(1, 10 * mm), _p("Data freshness", STYLES["Heading2"])]
    if model.freshness:
        rows = [["Source", "Last day with data", "Last successful collection (UTC)"]]
        rows += [[f.source, f.last_data.isoformat() if f.last_data else "no data yet",
                  (f.last_success_at or "none recorded")[:16].replace("T", " ")] for f in model.freshness]
        table = Table(rows, colWidths=[45 * mm, 45 * mm, 70 * mm], hAlign="LEFT")
        table.setStyle(GRID)
        story += [table, Spacer(1, 3 * mm),
                  _p("A source whose last day with data is behind the range's end makes its numbers for the last "
                     "days low: read them as missing, not as a drop.", SMALL)]
    else:
        story.append(_p("This dashboard has no metrics yet."))
    return [*story, PageBreak()]


def _change_cell(delta, pct, unit: str) -> list[str]:
    return [numbers.delta(delta, unit, short=False), numbers.percent(pct)]


def _kpi_table(model: ReportModel) -> list:
    story = [_p("Key numbers", STYLES["Heading1"]),
             _p(f"Each metric over {_range(model)} against {model.previous_start.isoformat()} to "
                f"{model.previous_end.isoformat()}. Counters are totals over the range; gauges (followers, stars, "
                f"shares) are their value at the range's end, never summed.", SMALL), Spacer(1, 3 * mm)]
    if not model.kpis:
        return [*story, _p("No numbers: the dashboard has no widgets, or none can be totalled."), PageBreak()]
    rows = [["Metric", "Value", "Previous", "Δ", "Δ %"]]
    style = TableStyle(GRID.getCommands())
    for r, row in enumerate(model.kpis, start=1):
        label = row.label + (f" ({row.note})" if row.note else "") + (" [gauge]" if row.kind == "gauge" else "")
        rows.append([_p(escape(label), STYLES["Normal"]), numbers.full(row.value, row.unit),
                     numbers.full(row.previous, row.unit), *_change_cell(row.delta, row.delta_pct, row.unit)])
        if row.delta:
            style.add("TEXTCOLOR", (3, r), (4, r), UP if row.delta > 0 else DOWN)
    table = Table(rows, colWidths=[70 * mm, 28 * mm, 28 * mm, 25 * mm, 22 * mm], repeatRows=1, hAlign="LEFT")
    table.setStyle(style)
    return [*story, table, PageBreak()]


def _describe(data: WidgetData) -> str:
    spec = data.spec
    parts = [KIND_LABELS[spec.kind], f"{data.spec.metric}" + (f" against {spec.y_metric}" if spec.y_metric
                                                             and spec.kind == "scatter" else ""),
             f"per {spec.grain}"]
    if spec.by:
        parts.append(f"split by {spec.by}")
    if spec.where:
        parts.append("only " + "; ".join(f"{k} = {', '.join(v)}" for k, v in spec.where.items()))
    if data.compare and spec.kind not in ("pie", "scatter"):
        parts.append(f"compared with {PREVIOUS_LABELS[data.compare]}")
    return escape(" · ".join(parts))


def _kpi_block(data: WidgetData) -> list:
    kpi = data.kpi
    text = numbers.full(kpi.value, data.unit)
    change = ""
    if data.compare and kpi.delta is not None:
        tone = "#0A7D3E" if kpi.delta > 0 else "#B3261E" if kpi.delta < 0 else "#555555"
        change = (f"<font color='{tone}'>{numbers.delta(kpi.delta, data.unit)} "
                  f"({numbers.percent(kpi.delta_pct)})</font> vs {PREVIOUS_LABELS[data.compare]}")
    rows = [[_p(f"<font size=26>{text}</font>", STYLES["Normal"]), charts.sparkline(data)],
            [_p(change + ("" if kpi.complete else " · the last bucket is not complete yet"), SMALL), ""]]
    table = Table(rows, colWidths=[80 * mm, 75 * mm], rowHeights=[18 * mm, 8 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return [table]


def _table_block(data: WidgetData) -> list:
    frame = sheet_frame(data)
    header = [str(c) for c in frame.columns if c != "complete"]
    rows = [[h.replace("delta_pct", "Δ %").replace("delta", "Δ") for h in header]]
    for record in frame.head(MAX_TABLE_ROWS).to_dict("records"):
        mark = "" if record.get("complete", True) else " *"
        row = []
        for h in header:
            value = record[h]
            if h == "delta_pct":
                row.append(numbers.percent(value))
            elif h == "delta":
                row.append(numbers.delta(value, data.unit))
            elif h in ("value", "previous"):
                row.append(numbers.full(value, data.unit))
            elif isinstance(value, (int, float)):
                row.append(numbers.full(value, data.y_unit if h == data.spec.y_metric else data.unit))
            else:
                row.append(str(value) + (mark if h == "period" else ""))
        rows.append(row)
    table = Table(rows, repeatRows=1, hAlign="LEFT")
    table.setStyle(GRID)
    notes = []
    if len(frame) > MAX_TABLE_ROWS:
        notes.append(f"The first {MAX_TABLE_ROWS} of {len(frame)} rows; the Excel workbook has them all.")
    if "complete" in frame and not frame["complete"].all():
        notes.append("* the bucket is not complete yet.")
    return [table, *([_p(" ".join(notes), SMALL)] if notes else [])]


def _widget(data: WidgetData) -> list:
    head = [_p(escape(data.title), STYLES["Heading2"]), _p(_describe(data), SMALL), Spacer(1, 2 * mm)]
    if data.error:
        return [CondPageBreak(40 * mm), *head, _p(f"Not shown: {escape(data.error)}")]
    if not data.has_data:
        return [CondPageBreak(40 * mm), *head, _p("No data in this range.")]
    if data.spec.kind == "kpi":
        body = _kpi_block(data)
    elif data.spec.kind == "table":
        return [CondPageBreak(60 * mm), *head, *_table_block(data), Spacer(1, 6 * mm)]
    else:
        body = [charts.DRAW[data.spec.kind](data)]
        if data.spec.kind in ("line", "bar") and not data.frame["complete"].all():
            body.append(_p("The faded bar or dotted line is the current bucket, not complete yet.", SMALL))
    if data.note:
        body.append(_p(escape(f"Shown: {data.note}."), SMALL))
    return [KeepTogether([*head, *body]), Spacer(1, 6 * mm)]


def _numbered_canvas(model: ReportModel):
    """A canvas that holds its pages until the end, so each can say "page N of M"."""
    footer = f"{model.dashboard} · {_range(model)} · times in {model.timezone}"

    class NumberedCanvas(pdf_canvas.Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            for number, page in enumerate(self._pages, start=1):
                self.__dict__.update(page)
                self.setFont("Helvetica", 7.5)
                self.setFillColor(colors.HexColor("#666666"))
                self.drawString(15 * mm, 10 * mm, footer[:120])
                self.drawRightString(A4[0] - 15 * mm, 10 * mm, f"Page {number} of {len(self._pages)}")
                super().showPage()
            super().save()

    return NumberedCanvas


def render(model: ReportModel) -> bytes:
    """The PDF of an evaluated report model."""
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=18 * mm, title=f"{model.dashboard}: {_range(model)}",
                            author="Caskalytics", subject=f"Dashboard report, times in {model.timezone}")
    story = _title_page(model) + _kpi_table(model)
    if not model.widgets:
        story.append(_p("This dashboard has no widgets: add some on the Dashboards page."))
    for data in model.widgets:
        story += _widget(data)
    doc.build(story, canvasmaker=_numbered_canvas(model))
    return out.getvalue()
