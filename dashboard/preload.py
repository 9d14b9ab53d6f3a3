"""Work the first page view would otherwise wait for, done while the server starts (`python -m dashboard`).

Streamlit imports a page's modules on its first run, so the first visitor after a restart used to wait for
pandas, Plotly's figure classes, the report renderers and the DuckDB extensions to load (~2 s on the shared
2-core machine). `start(path)` does that in a background thread as the server comes up: the imports, the
warehouse connection (`dashboard.data`'s cached resource, so pages reuse it), the reporting zone's offset table
and one small Plotly figure. No answers are computed or cached here: the data caches start empty. Any failure
is left for the page to report in its own words.
"""
from __future__ import annotations

import importlib
import logging
import sys
import threading
import time

log = logging.getLogger("caskalytics.dashboard")

MODULES = ["pandas", "plotly.graph_objects", "plotly.io", "dashboard.data", "dashboard.widgets",
           "dashboard.widget_kinds", "dashboard.widget_editor", "warehouse.export", "warehouse.series_batch",
           "reports.model", "reports.pdf", "reports.workbook"]


READY = "caskalytics dashboard: preloaded"     # printed when done (the benchmark waits for it)


def _preload(path: str) -> None:
    started = time.monotonic()
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:    # noqa: BLE001 (a page that needs it says why when it runs)
            log.warning("preload: cannot import %s: %s", name, exc)
    import plotly.graph_objects as go
    import plotly.io
    from dashboard import data
    from warehouse import timegrid
    plotly.io.to_json(go.Figure([go.Scatter(x=[1, 2], y=[1, 2]), go.Bar(x=[1], y=[1])]))
    try:
        cfg = data.settings(path)
        timegrid.today(cfg.warehouse.timezone)
        data._cursor(path).close()
    except Exception as exc:        # noqa: BLE001 (no warehouse yet, a bad config: the pages say so)
        log.info("preload: no warehouse connection yet: %s", exc)
    print(f"{READY} in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


def start(path: str) -> threading.Thread:
    thread = threading.Thread(target=_preload, args=(path,), name="caskalytics-preload", daemon=True)
    thread.start()
    return thread
