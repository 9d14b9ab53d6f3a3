"""How fast each dashboard page renders in a real browser, on the demo's data, while the scheduler writes.

    python bench/dashboard.py                       # builds the demo warehouse in a temp folder first
    python bench/dashboard.py --dir /tmp/demo       # reuse (and top up) a demo warehouse there

1. The real demo (`run.py`: simulators, scheduler, API; `bench/demo_stack.py`) runs on free ports with its
   warehouse in `--dir`, until every source has been collected once (minutes the first time). It keeps running
   while the pages are measured, so the scheduler commits meanwhile, as in production.
2. Per page, a fresh `python -m dashboard` server (what `make run` starts; measured once it has preloaded its
   modules and connection, `dashboard/preload.py`) and a fresh headless Chromium with an empty profile
   (`tests/dashboard/headless.py`): the first load is **cold** (empty data caches, empty browser cache),
   then `--warm` more loads (each a new browser session on the same server) are **warm**; then a second new
   server and the same browser: **cold server** (empty data caches, the browser's cache warm). A load ends when the
   page has settled: Streamlit's running indicator gone, no spinner or skeleton, nothing stale, the title and
   every chart drawn, and still so half a second later (that half second is not counted).
3. A table per page: cold seconds (both ways), warm median and worst, and the machine's load average. Targets: warm < 2 s,
   cold < 4 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The repository instead of bench/ first on the path: this file's name would hide the `dashboard` package.
sys.path[0:1] = [str(HERE.parent), str(HERE.parent / "tests" / "dashboard")]

import headless                 # noqa: E402  (tests/dashboard: the server and browser drivers)
from bench.demo_stack import DemoStack, demo_config   # noqa: E402
from dashboard import preload   # noqa: E402

PAGES = ["overview", "explore", "dashboards", "downloads", "sql", "reports", "sources", "alerts"]
URL = {"overview": ""}          # the default page is served at the root
WARM_TARGET, COLD_TARGET = 2.0, 4.0


def measure(config: Path, page: str, warm: int, logs: Path) -> tuple[float, float, list[float], list[str]]:
    """One page: cold (new server, new browser), cold server with the browser's cache warm (a second new
    server, the same browser: a marketer's morning after a restart), warm loads, and any problems shown."""
    link = URL.get(page, page)
    with headless.Chromium() as browser:
        with headless.streamlit_server(config, logs / f"streamlit-{page}.log", ready_line=preload.READY) as url:
            cold = browser.load(url + link)
            warms = [browser.load(url + link) for _ in range(warm)]
            problems = browser.problems()
            browser.call("Page.navigate", url="about:blank")    # before its server stops under it
            time.sleep(0.5)
        browser.console_errors.clear()
        with headless.streamlit_server(config, logs / f"streamlit-{page}-2.log", ready_line=preload.READY) as url:
            cold_server = browser.load(url + link)
            problems += browser.problems()
            browser.call("Page.navigate", url="about:blank")
            time.sleep(0.5)
        return cold, cold_server, warms, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="demo folder to reuse (default: a new temp folder)")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated URL paths")
    parser.add_argument("--warm", type=int, default=2, help="warm loads per page")
    args = parser.parse_args()
    if not headless.CHROMIUM.exists():
        sys.exit(f"{headless.CHROMIUM} is missing: apt-get install -y chromium")
    scratch = tempfile.TemporaryDirectory(prefix="caskalytics-bench-") if args.dir is None else None
    folder = (args.dir or Path(scratch.name)).resolve()
    config = demo_config(folder)
    pages = [p for p in args.pages.split(",") if p and (p != "alerts" or (HERE.parent / "pages/alerts.py").exists())]
    rows = []
    try:
        with DemoStack(config, folder / "run.log") as stack:
            print(f"demo in {folder}: waiting until every source has been collected once...", flush=True)
            stack.wait_collected()
            print("measuring while the scheduler writes", flush=True)
            for page in pages:
                cold, cold_server, warms, problems = measure(config, page, args.warm, folder)
                rows.append((page, cold, cold_server, warms, os.getloadavg()[0], problems))
                print(f"  {page}: cold {cold:.2f} s, cold server {cold_server:.2f} s, warm "
                      f"{', '.join(f'{w:.2f}' for w in warms)} s", flush=True)
    finally:
        if scratch:
            scratch.cleanup()
    print("\n| page | cold s | cold server, browser cache warm s | warm s (median) | warm s (worst) | load | problems |"
          "\n|---|---|---|---|---|---|---|")
    for page, cold, cold_server, warms, load, problems in rows:
        print(f"| {page} | {cold:.2f} | {cold_server:.2f} | {statistics.median(warms):.2f} | {max(warms):.2f} | "
              f"{load:.1f} | {'; '.join(problems)[:200] or 'none'} |")
    missed = [page for page, cold, _, warms, _, _ in rows
              if cold >= COLD_TARGET or statistics.median(warms) >= WARM_TARGET]
    print(f"\ntargets (cold < {COLD_TARGET:.0f} s, warm < {WARM_TARGET:.0f} s): "
          + ("all met" if not missed else f"missed by {', '.join(missed)}") + f"; 2 cores, load as shown")
    return 0


if __name__ == "__main__":
    sys.exit(main())
