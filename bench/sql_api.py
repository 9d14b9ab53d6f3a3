"""Benchmark: `POST /sql` and the table exports over HTTP, on a year of raw S3 download rows.

Set-up (not timed, cached in bench/out/sql-<rows>/): a lake whose `raw_s3_access_logs` holds `--rows` rows
spread evenly over 2025 (inserted straight into the lake through the real schema: the query reads exactly what
the collector would have stored; 150,000 is about a year of the demo's downloads, `--rows 1000000` a busier
product). A real API (`uvicorn api.main:app`, one worker, bearer token set) serves it.

1. `/sql`: a GROUP BY over the whole year (downloads per month and version, status 200 only), `--repeat` times
   at each of `--pauses` (seconds between requests: 2 = an analyst's pace, when the sandbox's spare worker is
   ready; 0 = back to back, when it is still starting); prints wall time per request as the client sees it
   (median, best, worst) and the query's own `elapsed_ms` inside the sandbox. Target: median < 1 s.
2. With `--export`: `/export/tables/raw_s3_access_logs.{parquet,csv}` for the whole year, read by `curl` and
   thrown away, against DuckDB's own `COPY (SELECT * EXCLUDE (_batch) FROM lake.raw_s3_access_logs)
   TO file` of the same rows from a direct read-only connection, in the same run. Target (issue 10): ours at
   least 50% of COPY's rows/s.

    python bench/sql_api.py [--rows 150000] [--repeat 10] [--pauses 2 0] [--export]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from measure import free_port  # noqa: E402

TOKEN = "bench-token"
GROUP_BY = ("SELECT date_trunc('month', ts) AS month, split_part(key, '/', 2) AS version, count(*) AS downloads "
            "FROM raw_s3_access_logs WHERE http_status = 200 AND operation = 'REST.GET.OBJECT' "
            "GROUP BY ALL ORDER BY month, version")


def build_lake(rows: int) -> Path:
    """A config and lake with `rows` raw download rows over 2025; cached by row count."""
    import collectors
    from warehouse import lake, schema
    folder = OUT / f"sql-{rows}"
    config = folder / "config.toml"
    done = folder / "done"
    if done.exists():
        return config
    folder.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[warehouse]\ndir = "{folder / "var"}"\ntimezone = "UTC"\n\n'
                      '[sources.s3_access_logs]\nbucket = "downloads"\n')
    cfg = collectors.load_config(config)
    print(f"inserting {rows:,} raw rows into {folder.relative_to(ROOT)} ...", flush=True)
    con = lake.connect(cfg, read_only=False)
    try:
        schema.ensure(con, cfg.catalog.tables)
        step = 365 * 86400 / rows
        con.execute(f"""
            INSERT INTO lake.raw_s3_access_logs (ts, bucket, request_id, operation, key, remote_ip, requester,
                request_uri, http_status, error_code, bytes_sent, object_size, total_time_ms, turn_around_time_ms,
                referer, user_agent, log_object, _batch)
            SELECT TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_microseconds((i * {step} * 1e6)::BIGINT),
                   'downloads', 'REQ' || lpad(i::VARCHAR, 12, '0'),
                   CASE WHEN i % 20 = 0 THEN 'REST.HEAD.OBJECT' ELSE 'REST.GET.OBJECT' END,
                   'cdap-sdk/' || ['6.8.0', '6.9.0', '6.10.0', '6.10.1'][1 + i % 4] || '/cdap-sdk.zip',
                   '198.51.' || (i % 256) || '.' || (i % 199), '-', 'GET /downloads/x HTTP/1.1',
                   CASE WHEN i % 11 = 0 THEN 206 WHEN i % 17 = 0 THEN 304 ELSE 200 END, '-',
                   350000000, 350000000, 800 + i % 300, 20, 'https://cdap.io/', 'curl/8.5.0',
                   'logs/2025-' || lpad((1 + i % 12)::VARCHAR, 2, '0'), 1
            FROM range({rows}) t(i)""")
    finally:
        con.close()
    done.touch()
    return config


def start_api(config: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"], cwd=ROOT,
        env={**os.environ, "CASKALYTICS_CONFIG": str(config), "CASKALYTICS_API_TOKEN": TOKEN})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(url + "/health", timeout=1)
            return url, process
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("the API did not start")


def bench_sql(url: str, repeat: int, pause: float) -> None:
    """`repeat` requests `pause` seconds apart: 0 is back to back (the spare worker is still starting when
    the next query comes), 2 s is an analyst's pace (the spare is ready)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    requests.post(url + "/sql", json={"sql": "SELECT 1"}, headers=headers, timeout=60)    # start the spare
    walls, inside = [], []
    for _ in range(repeat):
        time.sleep(pause)
        start = time.perf_counter()
        answer = requests.post(url + "/sql", json={"sql": GROUP_BY}, headers=headers, timeout=60)
        walls.append(time.perf_counter() - start)
        answer.raise_for_status()
        inside.append(answer.json()["elapsed_ms"])
    rows = len(answer.json()["rows"])
    median = statistics.median(walls)
    print(f"/sql GROUP BY month, version over a year ({rows} result rows), {repeat} requests {pause:g} s apart: "
          f"median {median:.3f} s, best {min(walls):.3f} s, worst {max(walls):.3f} s; "
          f"the query itself {statistics.median(inside):.0f} ms -> {'PASS' if median < 1 else 'MISS'} (< 1 s)",
          flush=True)


def bench_export(url: str, config: Path, rows: int) -> None:
    import collectors
    from warehouse import lake
    cfg = collectors.load_config(config)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    target = OUT / "sql-export.tmp"
    for fmt, copy_format in (("parquet", "parquet"), ("csv", "csv")):
        # curl reads the stream (a Python client would spend as much CPU as the server on these two cores)
        start = time.perf_counter()
        fetched = subprocess.run(["curl", "-sf", "-o", "/dev/null", "-w", "%{size_download}", "-H",
                                  f"Authorization: {headers['Authorization']}",
                                  f"{url}/export/tables/raw_s3_access_logs.{fmt}"],
                                 capture_output=True, text=True, check=True, timeout=600)
        ours = time.perf_counter() - start
        size = int(fetched.stdout)
        con = lake.connect(cfg, read_only=True)
        try:
            start = time.perf_counter()
            con.execute(f"COPY (SELECT * EXCLUDE (_batch) FROM lake.raw_s3_access_logs) TO '{target}' "
                        f"(FORMAT {copy_format})")
            copy = time.perf_counter() - start
        finally:
            con.close()
            target.unlink(missing_ok=True)
        ratio = copy / ours
        print(f"export {fmt}: HTTP {ours:.2f} s ({rows / ours:,.0f} rows/s, {size / 1e6:.1f} MB) vs DuckDB COPY "
              f"{copy:.2f} s ({rows / copy:,.0f} rows/s): ratio {ratio:.2f} -> {'PASS' if ratio >= 0.5 else 'MISS'} (>= 0.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--pauses", type=float, nargs="+", default=[2.0, 0.0], help="seconds between requests")
    parser.add_argument("--export", action="store_true")
    args = parser.parse_args()
    config = build_lake(args.rows)
    url, process = start_api(config)
    try:
        for pause in args.pauses:
            bench_sql(url, args.repeat, pause)
        if args.export:
            bench_export(url, config, args.rows)
    finally:
        process.terminate()
        process.wait(10)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
