"""Screenshot the dashboard for the README (docs/dashboard.png).

    make screenshot                                   # demo-like data in a temp warehouse
    make screenshot ARGS="--config config.toml"       # an existing warehouse (e.g. after make run)

(The Makefile puts the repository on PYTHONPATH, which this script and lakefill import from.)

Without --config it generates 18 months of realistic-looking data through the real write path
(Writer -> ingest.commit -> cube.update): daily downloads of four CDAP versions, each adopted after
its release and fading after the next, with weekly seasonality, a holiday dip and growth; and stargazers of
two repositories. Then it runs `streamlit run app.py` and captures the page with headless Chromium.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

import headless      # beside this script, which Python puts first on sys.path
import lakefill

DAYS = 560
RELEASES = {"6.7.0": -60, "6.8.0": 150, "6.9.0": 345, "6.10.0": 500}     # day offsets from the first day
WEEKDAY = [1.0, 1.05, 1.05, 1.0, 0.9, 0.5, 0.55]                         # Monday .. Sunday
HOUR_WEIGHTS = np.array([2, 1.5, 1.2, 1, 1, 1.2, 1.8, 2.5, 3.5, 4.2, 4.8, 5, 5.2, 5.6, 6, 6, 5.8, 5.2, 4.6, 4,
                         3.5, 3.2, 2.8, 2.4])                            # UTC: Europe and America awake
REPOS = {"caskdata/cdap": (610, 0.35), "caskdata/coopr": (170, 0.05)}   # stars before the window, per day after


def demo_downloads(first: date, rng: np.random.Generator) -> list[dict]:
    rows = []
    versions = list(RELEASES)
    hours = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
    for t in range(DAYS):
        day = first + timedelta(days=t)
        holiday = 0.65 if (day.month, day.day) >= (12, 20) or (day.month, day.day) <= (1, 3) else 1.0
        latest = max(r for r in RELEASES.values() if r <= t)
        base = 110 * 1.45 ** (t / 365) * WEEKDAY[day.weekday()] * holiday * (1 + 0.35 * math.exp(-(t - latest) / 12))
        weights = []
        for i, version in enumerate(versions):
            adopted = 1 / (1 + math.exp(-(t - RELEASES[version] - 8) / 4))
            successor = RELEASES[versions[i + 1]] if i + 1 < len(versions) else None
            fading = 1.0 if successor is None or t < successor + 10 else max(0.05, math.exp(-(t - successor - 10) / 45))
            weights.append(adopted * fading)
        for version, weight in zip(versions, weights):
            count = rng.poisson(base * weight / sum(weights))
            midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            for hour, second in zip(rng.choice(24, size=count, p=hours), rng.integers(0, 3600, size=count)):
                ts = midnight + timedelta(hours=int(hour), seconds=int(second))
                rows.append(lakefill.download(ts, version, remote_ip=f"198.51.100.{rng.integers(1, 255)}"))
    return rows


def demo_stars(first: date, rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    stargazers, snapshots = [], []
    window_start = datetime(first.year, first.month, first.day, tzinfo=timezone.utc)
    created = datetime(2014, 11, 1, tzinfo=timezone.utc)
    for repo, (before, per_day) in REPOS.items():
        times = [created + (window_start - created) * float(f) for f in np.sort(rng.random(before))]
        for t in range(DAYS):
            since_release = min((t - r for r in RELEASES.values() if r <= t), default=99)
            bump = 2.5 * math.exp(-since_release / 5) if repo == "caskdata/cdap" else 0
            for _ in range(rng.poisson(per_day + bump)):
                times.append(window_start + timedelta(days=t, seconds=int(rng.integers(0, 86400))))
        stargazers += [{"ts": ts, "repo": repo, "login": f"{repo.split('/')[1]}-fan-{n}"} for n, ts in enumerate(times)]
        snapshots.append({"ts": max(times) + timedelta(minutes=5), "repo": repo, "stars": len(times),
                          "forks": len(times) // 3, "watchers": len(times) // 9, "open_issues": 40})
    return stargazers, snapshots


def build_demo_warehouse(directory: Path) -> Path:
    cfg = lakefill.write_config(directory, timezone="America/New_York", repos=REPOS)
    rng = np.random.default_rng(7)
    first = datetime.now(timezone.utc).date() - timedelta(days=DAYS)
    downloads = demo_downloads(first, rng)
    stargazers, snapshots = demo_stars(first, rng)
    print(f"writing {len(downloads):,} download records and {len(stargazers):,} stargazers to {cfg.warehouse_dir}")
    lakefill.fill(cfg, downloads, stargazers, snapshots)
    return cfg.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="screenshot this config's warehouse instead of demo data")
    parser.add_argument("--out", type=Path, default=headless.ROOT / "docs" / "dashboard.png")
    parser.add_argument("--keep", type=Path, help="build the demo warehouse in this folder and keep it")
    parser.add_argument("--query", default="grain=week&compare=yoy", help="the view, as the app's URL query")
    args = parser.parse_args()
    if not headless.CHROMIUM.exists():
        sys.exit(f"{headless.CHROMIUM} is missing: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="caskalytics-screenshot-") as scratch:
        config_path = args.config.resolve() if args.config else build_demo_warehouse(args.keep or Path(scratch))
        with headless.streamlit_server(config_path, Path(scratch) / "streamlit.log") as url, \
                headless.Chromium() as browser:
            browser.open(f"{url}?{args.query}", charts=3, timeout=120)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            browser.screenshot(args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
