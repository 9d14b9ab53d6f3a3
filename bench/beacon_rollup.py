"""Benchmark: the web beacon's rollup update once `raw_beacon` holds a year of a busy site's hits.

The scheduler's beacon job (every minute by default) brings the web.* rollups up to date after each drain.
Distinct visitors cannot be summed, so each update recounts the affected buckets of all six grains from raw
rows (the year's visitors for the year grain, every visitor's first hit for new versus returning): the cost
grows with the data, and it must stay well inside the schedule.

Set-up (not timed): `--hits` generated hits spread evenly over the last 365 days, `--hits / 8` visitors,
written straight into `raw_beacon` with one SQL statement (the drain would take minutes for millions).
Then, timed, through the real path: 200 new hits into the inbox, the drain, and the cube update; first the
full build (the first update after the set-up), then `--rounds` minute updates, each after 200 more hits.

    python bench/beacon_rollup.py [--hits 5000000] [--rounds 3] [--timezone America/New_York]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=5_000_000, help="hits over the last year (default 5,000,000)")
    parser.add_argument("--rounds", type=int, default=3, help="minute updates to time (default 3)")
    parser.add_argument("--timezone", default="America/New_York", help="the reporting time zone")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="beacon-rollup-"))
    (work / "config.toml").write_text(f'[warehouse]\ndir = "{work / "var"}"\ntimezone = "{args.timezone}"\n\n'
                                      f'[sources.beacon]\nsites = ["bench.example"]\n')
    os.environ["CASKALYTICS_CONFIG"] = str(work / "config.toml")
    import collectors
    from collectors.beacon import Hit, encode
    from scheduler import drain_inbox
    from warehouse.writer import Writer
    from warehouse import cube
    from warehouse.state import State

    cfg = collectors.load_config()
    writer = Writer(cfg)
    visitors = max(1, args.hits // 8)
    try:
        started = time.time()
        writer.con.execute(f"""
            INSERT INTO lake.raw_beacon (ts, hit_id, site, name, path, visitor_id, via)
            SELECT now() - INTERVAL 365 DAY + (i * {365 * 86400 / max(args.hits, 1)}) * INTERVAL 1 SECOND,
                   'bench-' || i, 'bench.example', 'pageview', '/page-' || (i % 500), 'v' || (hash(i) % {visitors}),
                   'event'
            FROM range({args.hits}) t(i)""")
        print(f"Beacon rollup benchmark: {args.hits:,} hits of {visitors:,} visitors over 365 days in raw_beacon "
              f"(set up in {time.time() - started:.1f} s, not timed); time zone {args.timezone}; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)

        def new_hits(tag: str) -> float:
            """200 hits of the last minutes through the inbox and the drain; the cube update's seconds."""
            now = datetime.now(timezone.utc)
            hits = [Hit(hit_id=f"{tag}-{k}", ts=(now - timedelta(seconds=k)).isoformat(), site="bench.example",
                        name="pageview", path="/blog/new", visitor_id=f"v{k * 7919 % visitors}", via="event")
                    for k in range(200)]
            State(cfg).receive_many("beacon", [(h.hit_id, {}, encode(h)) for h in hits])
            drain_inbox(writer)
            began = time.time()
            cube.update(writer.con, cfg)
            return time.time() - began

        full = new_hits("first")
        print(f"  full build of the web.* rollups (first update): {full:6.1f} s", flush=True)
        minutes = []
        for round_ in range(args.rounds):
            minutes.append(new_hits(f"minute-{round_}"))
            print(f"  minute update after 200 new hits:               {minutes[-1]:6.1f} s", flush=True)
        if minutes:
            print(f"  median minute update {statistics.median(minutes):.1f} s: "
                  f"{statistics.median(minutes) / 60:.0%} of the default one-minute schedule", flush=True)
    finally:
        writer.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
