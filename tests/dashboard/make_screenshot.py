"""Screenshot the real demo for the README: the Overview (docs/dashboard.png) and Explore (docs/explore.png).

    make screenshot                                    # runs the demo in a temp folder first (minutes)
    make screenshot ARGS="--dir /tmp/caskalytics-demo" # reuse (and top up) a demo folder

The demo is `make run`'s own path (`bench/demo_stack.py`: simulators -> collectors -> scheduler, on free ports,
its warehouse in the folder), run until every source has been collected once; then `python -m dashboard` serves
it and headless Chromium captures both pages at 1400x900 (the whole page height) while the scheduler writes.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[0:1] = [str(ROOT), str(ROOT / "tests" / "dashboard")]

import headless                                           # noqa: E402
from bench.demo_stack import DemoStack, demo_config       # noqa: E402
from dashboard import preload                             # noqa: E402

SHOTS = {"dashboard.png": "", "explore.png": "explore?metric=downloads&grain=week&by=version&compare=yoy"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="demo folder to reuse (default: a new temp folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    if not headless.CHROMIUM.exists():
        sys.exit(f"{headless.CHROMIUM} is missing: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="caskalytics-screenshot-") as scratch:
        folder = (args.dir or Path(scratch)).resolve()
        config = demo_config(folder)
        with DemoStack(config, folder / "run.log") as stack:
            print(f"demo in {folder}: waiting until every source has been collected once...", flush=True)
            stack.wait_collected()
            with headless.streamlit_server(config, folder / "screenshot-dashboard.log", ready_line=preload.READY) \
                    as url, headless.Chromium(width=1400, height=900) as browser:
                for name, page in SHOTS.items():
                    browser.load(url + page, timeout=120)
                    if problems := browser.problems():
                        sys.exit(f"{page or 'overview'} shows problems: {problems}")
                    args.out.mkdir(parents=True, exist_ok=True)
                    browser.screenshot(args.out / name)
                    print(f"saved {args.out / name}")


if __name__ == "__main__":
    main()
