"""Widgets as reportlab charts (vector drawings in the PDF, no screenshots): line, bar, pie, scatter, and a
sparkline for KPI numbers.

Reading rules shared with the dashboard: the current, incomplete bucket is drawn lighter (a bar) or as a
dotted segment (a line), the previous period dashed and lighter in the same colour as its series, numbers on
the axes compact (1.2k), one colour per series in the order `PALETTE` gives (Plotly's, as on screen).
"""
from __future__ import annotations

import math

import pandas as pd
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.charts.lineplots import ScatterPlot
from reportlab.graphics.charts.piecharts import Pie
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors

from reports import numbers
from reports.model import PREVIOUS_LABELS, WidgetData

# Plotly's qualitative palette: the dashboard's series colours, so a series looks the same in the report.
PALETTE = ["#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF",
           "#FECB52"]
WIDTH, HEIGHT = 480, 220
MAX_CATEGORY_LABELS = 12
LEGEND_X = WIDTH - 120           # the legend's swatches, right of the plot; names run to the page's edge


def color(i: int, alpha: float = 1.0) -> colors.Color:
    c = colors.HexColor(PALETTE[i % len(PALETTE)])
    return colors.Color(c.red, c.green, c.blue, alpha=alpha)


def _lighter(c: colors.Color, share: float = 0.55) -> colors.Color:
    """The colour mixed with white (a faded bar; reportlab's PDF alpha is not honoured by every viewer)."""
    return colors.Color(c.red + (1 - c.red) * share, c.green + (1 - c.green) * share, c.blue + (1 - c.blue) * share)


def _value_axis(axis, values: list, unit: str) -> None:
    finite = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    low, high = (min(finite), max(finite)) if finite else (0, 1)
    axis.valueMin = min(0, low) if unit != "percent" or low < 0 else 0
    axis.valueMax = high * 1.1 if high > 0 else 1
    axis.labelTextFormat = lambda v: numbers.compact(v, unit)
    axis.labels.fontSize = 7
    axis.visibleGrid = True
    axis.gridStrokeColor = colors.HexColor("#DDDDDD")


def _category_axis(axis, labels: list[str]) -> None:
    step = max(1, math.ceil(len(labels) / MAX_CATEGORY_LABELS))
    axis.categoryNames = [label if i % step == 0 else "" for i, label in enumerate(labels)]
    axis.labels.fontSize = 7
    axis.labels.angle = 30 if len(labels) > 6 else 0
    axis.labels.boxAnchor = "ne" if len(labels) > 6 else "n"


def _legend(drawing: Drawing, items: list[tuple[colors.Color, str]], x: float, y: float) -> None:
    if not items:
        return
    legend = Legend()
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.fontSize = 7
    legend.columnMaximum = 12
    legend.colorNamePairs = [(c, name if len(name) <= 30 else name[:29] + "…") for c, name in items]
    drawing.add(legend)


def groups(data: WidgetData) -> list[tuple[str, pd.DataFrame]]:
    """The series of a widget's frame: one per split value (in a stable order), or one named after the metric."""
    frame, by = data.frame, data.spec.by
    if by and by in frame:
        return [(str(name), part) for name, part in frame.groupby(by, sort=True, dropna=False)]
    return [(data.spec.metric, frame)]


def _nan_to_none(values) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]


def _drawable(values: list) -> list:
    """reportlab draws a line through two points or more; a series with fewer is left blank (all None)."""
    return values if sum(v is not None for v in values) >= 2 else [None] * len(values)


def _plot_series(chart, series: list[list], styles: list) -> None:
    """Set the chart's series and their styles, skipping those with no line to draw."""
    kept = [(values, style) for values, style in zip(series, styles) if any(v is not None for v in _drawable(values))]
    chart.data = [values for values, _ in kept] or [[0] * max(1, len(series[0]) if series else 1)]
    for j, (_, (c, width, dash)) in enumerate(kept):
        chart.lines[j].strokeColor, chart.lines[j].strokeWidth = c, width
        if dash:
            chart.lines[j].strokeDashArray = dash
    if not kept:
        chart.lines[0].strokeColor = colors.transparent


def line_chart(data: WidgetData) -> Drawing:
    drawing = Drawing(WIDTH, HEIGHT)
    chart = HorizontalLineChart()
    chart.x, chart.y, chart.width, chart.height = 45, 45, WIDTH - 175, HEIGHT - 60
    series, styles, legend, every = [], [], [], []
    earlier, earlier_styles = [], []         # drawn first, so an equal current line stays on top
    for i, (name, part) in enumerate(groups(data)):
        values = _nan_to_none(part["value"])
        complete = part["complete"].tolist()
        solid = [v if ok else None for v, ok in zip(values, complete)]
        series.append(solid)
        styles.append((color(i), 1.6, None))
        legend.append((color(i), name))
        if not all(complete):       # the incomplete tail, dotted, joined to the last complete point
            first = complete.index(False)
            tail = [v if j >= max(0, first - 1) else None for j, v in enumerate(values)]
            series.append(tail)
            styles.append((color(i), 1.2, (1, 2)))
        if data.compare and "previous" in part:
            earlier.append(_nan_to_none(part["previous"]))
            earlier_styles.append((_lighter(color(i)), 1.0, (4, 2)))
            legend.append((_lighter(color(i)), f"{name}, {PREVIOUS_LABELS[data.compare]}"))
        every += values + _nan_to_none(part.get("previous", []))
    _plot_series(chart, earlier + series, earlier_styles + styles)
    _category_axis(chart.categoryAxis, groups(data)[0][1]["label"].tolist())
    _value_axis(chart.valueAxis, every, data.unit)
    drawing.add(chart)
    _legend(drawing, legend, LEGEND_X, HEIGHT - 15)
    return drawing


def bar_chart(data: WidgetData) -> Drawing:
    drawing = Drawing(WIDTH, HEIGHT)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 45, 45, WIDTH - 175, HEIGHT - 60
    parts = groups(data)
    chart.data = [[v or 0 for v in _nan_to_none(part["value"])] for _, part in parts]
    if len(parts) > 1:
        chart.categoryAxis.style = "stacked"
    for i, (_, part) in enumerate(parts):
        chart.bars[i].fillColor, chart.bars[i].strokeColor = color(i), None
        for j, ok in enumerate(part["complete"].tolist()):
            if not ok:                               # the incomplete bucket, faded
                chart.bars[(i, j)].fillColor = _lighter(color(i))
    _category_axis(chart.categoryAxis, parts[0][1]["label"].tolist())
    totals = pd.concat([p["value"].reset_index(drop=True) for _, p in parts], axis=1).sum(axis=1).tolist()
    _value_axis(chart.valueAxis, totals, data.unit)
    drawing.add(chart)
    _legend(drawing, [(color(i), name) for i, (name, _) in enumerate(parts)], LEGEND_X, HEIGHT - 15)
    return drawing


def pie_chart(data: WidgetData) -> Drawing:
    drawing = Drawing(WIDTH, HEIGHT)
    frame = data.frame[data.frame["value"] > 0]
    pie = Pie()
    pie.x, pie.y, pie.width, pie.height = 40, 15, HEIGHT - 40, HEIGHT - 40
    pie.data = [float(v) for v in frame["value"]] or [1]
    pie.labels = None
    total = float(frame["value"].sum())
    for i in range(len(pie.data)):
        pie.slices[i].fillColor = color(i) if len(frame) else colors.HexColor("#DDDDDD")
        pie.slices[i].strokeColor = colors.white
    drawing.add(pie)
    _legend(drawing, [(color(i), f"{name}: {numbers.compact(v, data.unit)} ({v / total * 100:.0f} %)")
                      for i, (name, v) in enumerate(zip(frame["name"], frame["value"]))], LEGEND_X, HEIGHT - 15)
    return drawing


def scatter_chart(data: WidgetData) -> Drawing:
    drawing = Drawing(WIDTH, HEIGHT)
    frame = data.frame.dropna(subset=["x", "y"])
    plot = ScatterPlot()
    plot.x, plot.y, plot.width, plot.height = 55, 45, WIDTH - 90, HEIGHT - 60
    done = [(float(x), float(y)) for x, y, ok in zip(frame["x"], frame["y"], frame["complete"]) if ok]
    partial = [(float(x), float(y)) for x, y, ok in zip(frame["x"], frame["y"], frame["complete"]) if not ok]
    plot.data = [done or [(0, 0)], *([partial] if partial else [])]
    for j, c in enumerate([color(0), _lighter(color(0))][:len(plot.data)]):   # the incomplete bucket, faded
        plot.lines[j].strokeColor = c
        plot.lines[j].symbol = makeMarker("FilledCircle", size=6, fillColor=c, strokeColor=c)
    plot.lineLabelFormat = None
    points = done + partial
    for axis, values in ((plot.xValueAxis, [p[0] for p in points]), (plot.yValueAxis, [p[1] for p in points])):
        if values:              # a margin around the points, so none sits on an axis
            low, high = min(values), max(values)
            pad = (high - low) * 0.08 or abs(high) * 0.1 or 1
            axis.valueMin, axis.valueMax = low - pad if low - pad > 0 or low < 0 else 0, high + pad
    plot.xLabel, plot.yLabel = data.spec.metric, data.spec.y_metric
    plot.xValueAxis.labelTextFormat = lambda v: numbers.compact(v, data.unit)
    plot.yValueAxis.labelTextFormat = lambda v: numbers.compact(v, data.y_unit)
    for axis in (plot.xValueAxis, plot.yValueAxis):
        axis.labels.fontSize = 7
    drawing.add(plot)
    return drawing


def sparkline(data: WidgetData, width: float = 200, height: float = 50) -> Drawing:
    drawing = Drawing(width, height)
    chart = HorizontalLineChart()
    chart.x, chart.y, chart.width, chart.height = 2, 2, width - 4, height - 4
    values = _nan_to_none(data.frame["value"]) if data.frame is not None and len(data.frame) else [None]
    _plot_series(chart, [values], [(color(0), 1.2, None)])
    chart.categoryAxis.visible = chart.valueAxis.visible = False
    _value_axis(chart.valueAxis, values, data.unit)
    finite = [v for v in values if v is not None]
    if finite and data.kind == "gauge":       # a gauge's growth would look flat from zero
        chart.valueAxis.valueMin, chart.valueAxis.valueMax = min(finite) * 0.98, max(finite) * 1.02 or 1
    drawing.add(chart)
    return drawing


DRAW = {"line": line_chart, "bar": bar_chart, "pie": pie_chart, "scatter": scatter_chart}
