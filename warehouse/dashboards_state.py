"""Saved dashboards and their widgets, in the state database (`<dir>/state.sqlite`), shared by every session.

A widget is a `WidgetSpec`: a chart kind and a series question (metric, grain, range, split, comparison),
stored as JSON so a new optional field never needs a migration. Positions order the widgets of a dashboard;
moves and deletes renumber them in one transaction, so two sessions editing at once never leave a gap or a
duplicate position.

`seed_demo` creates the ready-made dashboards ("Marketing funnel", "Awareness") the first time it runs on a
state database; it remembers what it seeded, so a dashboard someone deleted does not come back.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta

from warehouse.cube import GRAINS
from warehouse.queries import COMPARE_SHIFT
from warehouse.state import State, now_iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS dashboards (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dashboard_widgets (
    id INTEGER PRIMARY KEY,
    dashboard_id INTEGER NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    spec TEXT NOT NULL,                  -- WidgetSpec as JSON
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dashboard_widgets_order ON dashboard_widgets (dashboard_id, position);
CREATE TABLE IF NOT EXISTS dashboard_seeds (
    name TEXT PRIMARY KEY,               -- a ready-made dashboard created once (kept deleted if deleted)
    seeded_at TEXT NOT NULL
);
"""

KINDS = ("line", "bar", "pie", "scatter", "kpi", "table")
KIND_LABELS = {"line": "Line", "bar": "Bar", "pie": "Pie", "scatter": "Scatter (metric against metric)",
               "kpi": "KPI number", "table": "Table"}
RANGE_UNITS = ("days", "weeks", "months")
MAX_LAST = 3660          # "last N <unit>": N from 1 to this


class DashboardError(ValueError):
    """A dashboard or widget that cannot be saved or found as asked; the message is one sentence."""


@dataclass(frozen=True)
class WidgetSpec:
    """What a widget shows. The range is either relative (`last` units of `unit`, ending today in the
    reporting time zone: days count back from today, weeks from this ISO week's Monday, months from this
    month's first day) or fixed (`start`..`end`, inclusive). `y_metric` is the scatter's vertical metric."""
    kind: str
    metric: str
    title: str = ""
    grain: str = "day"
    last: int | None = 30
    unit: str = "days"
    start: date | None = None
    end: date | None = None
    by: str | None = None
    compare: str | None = None
    where: dict[str, list[str]] = field(default_factory=dict)
    y_metric: str | None = None

    def label(self) -> str:
        if self.title:
            return self.title
        if self.kind == "scatter":
            return f"{self.y_metric} against {self.metric} per {self.grain}"
        return f"{self.metric} by {self.by}" if self.by else self.metric

    def dates(self, today: date) -> tuple[date, date]:
        """The inclusive date range this widget shows on `today`."""
        if self.last is None:
            return self.start, self.end
        if self.unit == "days":
            return today - timedelta(days=self.last - 1), today
        if self.unit == "weeks":
            return today - timedelta(days=today.weekday(), weeks=self.last - 1), today
        months = today.year * 12 + today.month - 1 - (self.last - 1)
        return date(months // 12, months % 12 + 1, 1), today

    def to_json(self) -> str:
        data = asdict(self)
        data["start"] = self.start.isoformat() if self.start else None
        data["end"] = self.end.isoformat() if self.end else None
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "WidgetSpec":
        data = json.loads(text)
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        for name in ("start", "end"):
            if known.get(name):
                known[name] = date.fromisoformat(known[name])
        return cls(**known)

    def checked(self, catalog) -> "WidgetSpec":
        """This spec, or a DashboardError naming the first thing wrong with it (`catalog`: cfg.catalog)."""
        if self.kind not in KINDS:
            raise DashboardError(f"a widget's kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "scatter" and not self.y_metric:
            raise DashboardError("a scatter widget needs a second metric for its vertical axis")
        for name in (self.metric, *([self.y_metric] if self.kind == "scatter" else [])):
            if name not in catalog.metrics:
                raise DashboardError(f"unknown metric {name!r}")
        if self.grain not in GRAINS:
            raise DashboardError(f"grain must be one of {', '.join(GRAINS)}, got {self.grain!r}")
        dims = catalog.metrics[self.metric].dims
        for dim in [*([self.by] if self.by else []), *self.where]:
            if dim not in dims:
                raise DashboardError(f"{self.metric} has no dimension {dim!r}; its dimensions: {', '.join(dims) or 'none'}")
        if self.compare is not None and (self.compare not in COMPARE_SHIFT
                                         or self.grain not in COMPARE_SHIFT[self.compare][1]):
            raise DashboardError(f"comparison {self.compare!r} does not fit the {self.grain} grain")
        if self.last is None:
            if not (self.start and self.end) or self.start > self.end:
                raise DashboardError("a fixed range needs a start date on or before its end date")
        elif not (1 <= self.last <= MAX_LAST and self.unit in RANGE_UNITS):
            raise DashboardError(f"a relative range is the last 1 to {MAX_LAST} days, weeks or months")
        return self


@dataclass(frozen=True)
class Widget:
    id: int
    dashboard_id: int
    position: int
    spec: WidgetSpec


@dataclass(frozen=True)
class Dashboard:
    id: int
    name: str
    widgets: tuple[Widget, ...] = ()


class Dashboards:
    """Saved dashboards in the state database (see the module notes)."""

    def __init__(self, state: State):
        self.state = state
        with state.connection() as con:
            con.executescript(SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self.state.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    # -- dashboards --------------------------------------------------------------------------------------
    def names(self) -> list[tuple[int, str]]:
        """(id, name) of every dashboard, by name."""
        with self.state.connection() as con:
            return [(r["id"], r["name"]) for r in con.execute("SELECT id, name FROM dashboards ORDER BY name COLLATE NOCASE")]

    def get(self, dashboard_id: int) -> Dashboard:
        with self.state.connection() as con:
            row = con.execute("SELECT id, name FROM dashboards WHERE id = ?", [dashboard_id]).fetchone()
            if row is None:
                raise DashboardError(f"there is no dashboard {dashboard_id}")
            widgets = con.execute("SELECT * FROM dashboard_widgets WHERE dashboard_id = ? ORDER BY position, id",
                                  [dashboard_id]).fetchall()
        return Dashboard(row["id"], row["name"], tuple(
            Widget(w["id"], w["dashboard_id"], w["position"], WidgetSpec.from_json(w["spec"])) for w in widgets))

    def by_name(self, name: str) -> Dashboard | None:
        with self.state.connection() as con:
            row = con.execute("SELECT id FROM dashboards WHERE name = ?", [name]).fetchone()
        return self.get(row["id"]) if row else None

    def create(self, name: str, specs: list[WidgetSpec] = ()) -> int:
        name = _clean_name(name)
        with self._transaction() as con:
            return self._create(con, name, specs)

    def _create(self, con: sqlite3.Connection, name: str, specs) -> int:
        if con.execute("SELECT 1 FROM dashboards WHERE name = ?", [name]).fetchone():
            raise DashboardError(f"a dashboard named {name!r} already exists")
        now = now_iso()
        dashboard_id = con.execute("INSERT INTO dashboards (name, created_at, updated_at) VALUES (?, ?, ?)",
                                   [name, now, now]).lastrowid
        con.executemany("INSERT INTO dashboard_widgets (dashboard_id, position, spec, updated_at) VALUES (?, ?, ?, ?)",
                        [(dashboard_id, i, spec.to_json(), now) for i, spec in enumerate(specs)])
        return dashboard_id

    def rename(self, dashboard_id: int, name: str) -> None:
        name = _clean_name(name)
        with self._transaction() as con:
            clash = con.execute("SELECT id FROM dashboards WHERE name = ?", [name]).fetchone()
            if clash and clash["id"] != dashboard_id:
                raise DashboardError(f"a dashboard named {name!r} already exists")
            if not con.execute("UPDATE dashboards SET name = ?, updated_at = ? WHERE id = ?",
                               [name, now_iso(), dashboard_id]).rowcount:
                raise DashboardError(f"there is no dashboard {dashboard_id}")

    def delete(self, dashboard_id: int) -> None:
        with self._transaction() as con:
            con.execute("DELETE FROM dashboard_widgets WHERE dashboard_id = ?", [dashboard_id])
            con.execute("DELETE FROM dashboards WHERE id = ?", [dashboard_id])

    # -- widgets -----------------------------------------------------------------------------------------
    def add_widget(self, dashboard_id: int, spec: WidgetSpec) -> int:
        """Append a widget at the end of the dashboard; its id."""
        with self._transaction() as con:
            self._touch(con, dashboard_id)
            position = con.execute("SELECT coalesce(max(position) + 1, 0) FROM dashboard_widgets "
                                   "WHERE dashboard_id = ?", [dashboard_id]).fetchone()[0]
            return con.execute("INSERT INTO dashboard_widgets (dashboard_id, position, spec, updated_at) "
                               "VALUES (?, ?, ?, ?)", [dashboard_id, position, spec.to_json(), now_iso()]).lastrowid

    def update_widget(self, widget_id: int, spec: WidgetSpec) -> None:
        with self._transaction() as con:
            row = self._widget_row(con, widget_id)
            con.execute("UPDATE dashboard_widgets SET spec = ?, updated_at = ? WHERE id = ?",
                        [spec.to_json(), now_iso(), widget_id])
            self._touch(con, row["dashboard_id"])

    def duplicate_widget(self, widget_id: int) -> int:
        """A copy of the widget right after it; the copy's id."""
        with self._transaction() as con:
            row = self._widget_row(con, widget_id)
            con.execute("UPDATE dashboard_widgets SET position = position + 1 WHERE dashboard_id = ? AND position > ?",
                        [row["dashboard_id"], row["position"]])
            spec = WidgetSpec.from_json(row["spec"])
            if spec.title:
                spec = replace(spec, title=f"{spec.title} (copy)")
            new_id = con.execute("INSERT INTO dashboard_widgets (dashboard_id, position, spec, updated_at) "
                                 "VALUES (?, ?, ?, ?)",
                                 [row["dashboard_id"], row["position"] + 1, spec.to_json(), now_iso()]).lastrowid
            self._renumber(con, row["dashboard_id"])
            return new_id

    def move_widget(self, widget_id: int, steps: int) -> None:
        """Move a widget `steps` places later (negative: earlier), stopping at either end."""
        with self._transaction() as con:
            row = self._widget_row(con, widget_id)
            ids = [r[0] for r in con.execute("SELECT id FROM dashboard_widgets WHERE dashboard_id = ? "
                                             "ORDER BY position, id", [row["dashboard_id"]])]
            at = ids.index(widget_id)
            ids.insert(max(0, min(len(ids) - 1, at + steps)), ids.pop(at))
            con.executemany("UPDATE dashboard_widgets SET position = ? WHERE id = ?",
                            [(i, wid) for i, wid in enumerate(ids)])
            self._touch(con, row["dashboard_id"])

    def delete_widget(self, widget_id: int) -> None:
        with self._transaction() as con:
            row = self._widget_row(con, widget_id)
            con.execute("DELETE FROM dashboard_widgets WHERE id = ?", [widget_id])
            self._renumber(con, row["dashboard_id"])

    def _widget_row(self, con: sqlite3.Connection, widget_id: int) -> sqlite3.Row:
        row = con.execute("SELECT * FROM dashboard_widgets WHERE id = ?", [widget_id]).fetchone()
        if row is None:
            raise DashboardError(f"there is no widget {widget_id} (someone may have deleted it)")
        return row

    def _renumber(self, con: sqlite3.Connection, dashboard_id: int) -> None:
        ids = [r[0] for r in con.execute("SELECT id FROM dashboard_widgets WHERE dashboard_id = ? ORDER BY position, id",
                                         [dashboard_id])]
        con.executemany("UPDATE dashboard_widgets SET position = ? WHERE id = ?", [(i, w) for i, w in enumerate(ids)])
        self._touch(con, dashboard_id)

    def _touch(self, con: sqlite3.Connection, dashboard_id: int) -> None:
        if not con.execute("UPDATE dashboards SET updated_at = ? WHERE id = ?", [now_iso(), dashboard_id]).rowcount:
            raise DashboardError(f"there is no dashboard {dashboard_id} (someone may have deleted it)")

    # -- ready-made dashboards ---------------------------------------------------------------------------
    def seed_demo(self) -> list[str]:
        """Create each ready-made dashboard (DEMO_DASHBOARDS) never seeded on this database and whose name is
        free; the names created. Safe to call from every process and session at once."""
        created = []
        with self._transaction() as con:
            for name, specs in DEMO_DASHBOARDS.items():
                if con.execute("SELECT 1 FROM dashboard_seeds WHERE name = ?", [name]).fetchone():
                    continue
                con.execute("INSERT INTO dashboard_seeds (name, seeded_at) VALUES (?, ?)", [name, now_iso()])
                if not con.execute("SELECT 1 FROM dashboards WHERE name = ?", [name]).fetchone():
                    self._create(con, name, specs)
                    created.append(name)
        return created


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name or len(name) > 80:
        raise DashboardError("a dashboard name has 1 to 80 characters")
    return name


W = WidgetSpec
DEMO_DASHBOARDS: dict[str, list[WidgetSpec]] = {
    "Marketing funnel": [
        W("kpi", "salesforce.raw_leads", "Raw leads", grain="month", last=1, unit="months", compare="yoy"),
        W("kpi", "salesforce.mqls", "MQLs", grain="month", last=1, unit="months", compare="yoy"),
        W("kpi", "salesforce.opportunities", "Opportunities", grain="month", last=1, unit="months",
          compare="yoy"),
        W("line", "salesforce.raw_leads", "Weekly raw leads, against a year earlier", grain="week", last=26,
          unit="weeks", compare="yoy"),
        W("bar", "salesforce.inquiries", "Monthly inquiries", grain="month", last=12, unit="months"),
        W("bar", "salesforce.mqls", "Monthly MQLs", grain="month", last=12, unit="months", compare="yoy"),
        W("scatter", "salesforce.raw_leads", "Weekly MQLs against raw leads", grain="week", last=26, unit="weeks",
          y_metric="salesforce.mqls"),
        W("table", "salesforce.opportunities", "Opportunities by month", grain="month", last=6, unit="months",
          compare="yoy"),
    ],
    "Awareness": [
        W("kpi", "web.sessions", "Sessions", grain="week", last=1, unit="weeks", compare="wow"),
        W("kpi", "youtube.subscribers", "YouTube subscribers", grain="day", last=1, unit="days", compare="mom"),
        W("kpi", "linkedin.followers", "LinkedIn followers", grain="day", last=1, unit="days", compare="mom"),
        W("kpi", "twitter.followers", "X followers", grain="day", last=1, unit="days", compare="mom"),
        W("line", "web.sessions", "Daily sessions, against a week earlier", grain="day", last=30, compare="wow"),
        W("line", "youtube.views", "Weekly YouTube views", grain="week", last=12, unit="weeks"),
        W("pie", "meltwater.mentions", "Mentions by brand", grain="day", last=30, by="brand"),
        W("line", "seo.share_of_voice", "Share of voice by brand", grain="week", last=12, unit="weeks", by="brand"),
        W("scatter", "downloads", "Weekly downloads against GitHub stars", grain="week", last=26, unit="weeks",
          y_metric="github.stars"),
    ],
}
del W
