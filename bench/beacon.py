"""Benchmark: the durable web beacon (`GET /b.gif`) against a bare FastAPI endpoint that returns the same GIF
and stores nothing, both on one uvicorn worker, on loopback. A third server, a plain ASGI function that
answers the GIF and does nothing else, is the floor: what uvicorn alone costs. The beacon answers hits before
FastAPI's middleware and routing (api/main.py), so beacon/floor is what its own steps and the durable write
cost, and beacon/bare is the issue's target.

Targets (from the issue): the beacon keeps at least 80% of the bare endpoint's throughput; p99 latency under
25 ms at 1,000 hits/s; memory flat over a soak.

1. Throughput: `wrk -t2 -c50` against each server in turn (bare, beacon, floor, bare, ... `--rounds`
   times, so all see the same background load), with a browser User-Agent (wrk sends none, and a hit
   without one is a bot, which is not stored). Reported: requests/s (median of the rounds), wrk's latency
   percentiles, and the server's CPU time per request (user + system of the whole process, writer thread
   included), which is steadier than requests/s on a shared machine.
2. Latency at a fixed rate: wrk (not wrk2) has no rate option, so a small open-loop load generator in a
   child process (asyncio, keep-alive connections) sends 1,000 hits/s on a fixed schedule and measures each
   answer from the moment the request was *due* (no coordinated omission): p50, p99, max.
3. Soak: the same constant rate for `--soak-minutes` (default 10; `--quick`: 30 s) while another process
   does the scheduler's beacon work as in production (the inbox drain every 5 s, the rollups every minute);
   the beacon's RSS is sampled every 5 s. "Flat" = the last minute's RSS within 20 MB (or 10%) of the first
   minute's after a 30 s warm-up.

Every stored hit is checked afterwards: inbox rows (plus drained lake rows) = answered hits.

    python bench/beacon.py [--quick] [--soak-minutes 10] [--seconds 10] [--rounds 5] [--rate 1000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
sys.path.insert(0, str(ROOT))
from simulators.ports import free_port, wait_for_port  # noqa: E402

PYTHON = sys.executable
WRK = shutil.which("wrk") or "/usr/bin/wrk"
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
              "Safari/537.36")
SITE = "bench.example"
QUERY = f"/b.gif?site={SITE}&url=/blog/launch-post&referrer=https://news.example/item"
THROUGHPUT_TARGET = 0.80
P99_TARGET_MS = 25.0
FLAT_RATIO, FLAT_MB = 0.10, 20.0

BARE_APP = '''
from fastapi import FastAPI
from fastapi.responses import Response
GIF = (b"GIF89a\\x01\\x00\\x01\\x00\\x80\\x00\\x00\\xff\\xff\\xff\\x00\\x00\\x00!\\xf9\\x04\\x01\\x00\\x00\\x00\\x00,"
       b"\\x00\\x00\\x00\\x00\\x01\\x00\\x01\\x00\\x00\\x02\\x02D\\x01\\x00;")
app = FastAPI()

@app.get("/b.gif")
async def pixel():
    return Response(GIF, media_type="image/gif", headers={"Cache-Control": "no-store, no-cache, must-revalidate, private"})


async def floor(scope, receive, send):      # no framework at all: uvicorn's own cost per request
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        return await send({"type": "lifespan.shutdown.complete"})
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"image/gif"), (b"cache-control", b"no-store, no-cache, must-revalidate, private"),
        (b"content-length", b"43")]})
    await send({"type": "http.response.body", "body": GIF})
'''


# -- servers ------------------------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{QUERY}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(name: str, app: str, cwd: Path, env: dict, log: Path) -> Server:
    port = free_port()
    process = subprocess.Popen([PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
                                "--workers", "1", "--log-level", "warning", "--no-access-log"],
                               cwd=cwd, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    wait_for_port(port)
    return Server(name, port, process)


# -- 1. throughput with wrk ---------------------------------------------------------------------------------
@dataclass
class WrkRun:
    requests: int
    seconds: float
    rps: float
    latency_ms: dict[str, float]
    errors: str
    cpu_us_per_request: float


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(server: Server, seconds: float, connections: int = 50) -> WrkRun:
    before = server.cpu_seconds()
    out = subprocess.run([WRK, "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-H",
                          f"User-Agent: {USER_AGENT}", server.url], capture_output=True, text=True, check=True).stdout
    cpu = server.cpu_seconds() - before
    requests = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))
    took = re.search(r"requests in ([\d.]+\w+)", out).group(1)
    latency = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    errors = "; ".join(line.strip() for line in out.splitlines()
                       if "Non-2xx" in line or "Socket errors" in line)
    return WrkRun(requests, _ms(took) / 1000, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                  latency, errors, cpu / max(requests, 1) * 1e6)


# -- 2./3. the constant-rate load generator (runs in its own process) ---------------------------------------
async def _constant_rate(port: int, rate: float, seconds: float, connections: int) -> dict:
    request = (f"GET {QUERY} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: {USER_AGENT}\r\n"
               f"Accept: image/*\r\n\r\n").encode()
    queue: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    per_second: dict[int, list[float]] = {}
    start = time.perf_counter() + 0.2

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (due := await queue.get()) is not None:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
                await reader.readexactly(length)
                latency = (time.perf_counter() - due) * 1000
                latencies.append(latency)
                per_second.setdefault(int(due - start), []).append(latency)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    total = int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    took = time.perf_counter() - start
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")
    minutes = {}
    for second, values in per_second.items():
        minutes.setdefault(second // 60, []).extend(values)
    slow_seconds = sum(1 for values in per_second.values() if sorted(values)[int(0.99 * len(values))] >= 25)
    return {"sent": total, "answered": len(latencies), "statuses": statuses, "seconds": took,
            "seconds_with_p99_over_25ms": slow_seconds,
            "rate": len(latencies) / took, "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
            "p999_ms": pct(99.9), "max_ms": ordered[-1] if ordered else float("nan"),
            "p99_by_minute": [sorted(v)[int(0.99 * len(v))] for _, v in sorted(minutes.items())]}


def constant_rate(server: Server, rate: float, seconds: float, connections: int = 32) -> subprocess.Popen:
    """Start the generator in a child process; its JSON result comes on stdout."""
    return subprocess.Popen([PYTHON, __file__, "--generate", str(server.port), "--rate", str(rate),
                             "--seconds", str(seconds), "--connections", str(connections)],
                            stdout=subprocess.PIPE, text=True)


def result_of(generator: subprocess.Popen) -> dict:
    out, _ = generator.communicate()
    if generator.returncode != 0:
        raise SystemExit("the load generator failed")
    return json.loads(out)


# -- checks ---------------------------------------------------------------------------------------------------
def stored_hits(warehouse: Path) -> int:
    with sqlite3.connect(warehouse / "state.sqlite") as con:
        inbox = con.execute("SELECT count(*) FROM inbox WHERE kind = 'beacon'").fetchone()[0]
    return inbox


def drainer(config_path: Path, env: dict, log: Path) -> subprocess.Popen:
    """The scheduler's beacon work as `scheduler.py run` does it: the inbox drain every 5 s, and the beacon
    job (the web.* rollups) every minute."""
    code = ("import time, config, scheduler; from warehouse.writer import Writer; from scheduler import drain_inbox, run_source\n"
            "scheduler.yield_cpu_to_servers(); w = Writer(collectors.load_config()); cubed = time.time()\n"
            "while True:\n"
            "    s = drain_inbox(w); print(time.strftime('%H:%M:%S'), s.line(), flush=True)\n"
            "    if time.time() - cubed >= 60:\n"
            "        cubed = time.time(); run_source(w, 'beacon'); print(time.strftime('%H:%M:%S'), 'cube', round(time.time() - cubed, 1), 's', flush=True)\n"
            "    time.sleep(5)\n")
    return subprocess.Popen([PYTHON, "-c", code], cwd=ROOT, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def drained_hits(config_path: Path, env: dict) -> int:
    code = ("import config; from warehouse import lake\n"
            "con = lake.connect(collectors.load_config(), read_only=True)\n"
            "print(con.execute('SELECT count(*), count(DISTINCT hit_id) FROM lake.raw_beacon').fetchone())")
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    rows, distinct = eval(out)   # noqa: S307 - our own child's tuple
    if rows != distinct:
        raise SystemExit(f"raw_beacon holds {rows - distinct} duplicate hits")
    return rows


# -- main -----------------------------------------------------------------------------------------------------
@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    passed: list[bool] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)

    def check(self, ok: bool, what: str) -> None:
        self.passed.append(ok)
        self.say(f"  {'PASS' if ok else 'FAIL'}  {what}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs and a 30 s soak")
    parser.add_argument("--seconds", type=float, help="wrk duration per run (default 10, quick 5)")
    parser.add_argument("--rounds", type=int, help="alternating wrk rounds per server (default 5, quick 2)")
    parser.add_argument("--rate", type=float, default=1000.0, help="hits/s for the latency run and the soak")
    parser.add_argument("--latency-seconds", type=float, help="duration of the constant-rate run (default 30, quick 15)")
    parser.add_argument("--soak-minutes", type=float, help="soak duration (default 10, quick 0.5)")
    parser.add_argument("--no-drain", action="store_true", help="soak without the scheduler's inbox drain")
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)        # child: the load generator
    parser.add_argument("--connections", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate:
        print(json.dumps(asyncio.run(_constant_rate(args.generate, args.rate, args.seconds, args.connections))))
        return 0
    seconds = args.seconds or (5 if args.quick else 10)
    rounds = args.rounds or (2 if args.quick else 5)    # the VM host adds +-15% noise per round
    latency_seconds = args.latency_seconds or (15 if args.quick else 30)
    soak_minutes = args.soak_minutes if args.soak_minutes is not None else (0.5 if args.quick else 10)
    if not Path(WRK).exists():
        raise SystemExit("wrk is not installed (make bench installs it: apt-get install wrk)")

    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="beacon-bench-"))
    (work / "bare_app.py").write_text(BARE_APP)
    config_path = work / "config.toml"
    config_path.write_text(f'[warehouse]\ndir = "{work / "var"}"\ntimezone = "UTC"\n\n'
                           f'[sources.beacon]\nsites = ["{SITE}"]\n')
    env = {**os.environ, "CASKALYTICS_CONFIG": str(config_path), "PYTHONPATH": str(ROOT)}
    report = Report()
    servers: list[Server] = []
    helpers: list[subprocess.Popen] = []
    try:
        subprocess.run([PYTHON, "-c", "import collectors; from warehouse.writer import Writer; Writer(collectors.load_config()).close()"],
                       cwd=ROOT, env=env, check=True)        # the lake exists before readers attach
        bare = start_server("bare", "bare_app:app", work, env, work / "bare.log")
        beacon = start_server("beacon", "api.main:app", ROOT, env, work / "beacon.log")
        floor = start_server("floor", "bare_app:floor", work, env, work / "floor.log")
        servers += [bare, beacon, floor]
        load = os.getloadavg()[0]
        report.say(f"Web beacon benchmark: {os.cpu_count()} cores, load average {load:.1f} at start, "
                   f"{'quick' if args.quick else 'full'} mode")
        report.say(f"  GET {QUERY}  (User-Agent: a desktop Chrome)")
        answered, slack = 0, 0        # beacon 2xx answers; hits committed while wrk stopped waiting
        for server in servers:                      # warm-up: imports, first connections, the day's salt
            run = wrk(server, 2)
            if server is beacon:
                answered, slack = answered + run.requests, slack + 64

        report.say(f"\n1. Throughput: wrk -t2 -c50 -d{seconds:g}s, {rounds} alternating rounds, one uvicorn worker each "
                   "(floor: a plain ASGI function, no framework)")
        runs: dict[str, list[WrkRun]] = {server.name: [] for server in servers}
        for _ in range(rounds):
            for server in servers:
                runs[server.name].append(wrk(server, seconds))
        answered += sum(r.requests for r in runs["beacon"])
        slack += 64 * rounds
        if any(r.errors for r in runs["beacon"]):
            answered = -1       # some answers were not 2xx: the exact comparison below does not apply
        for name, name_runs in runs.items():
            for run in name_runs:
                report.say(f"  {name:7} {run.rps:8.0f} req/s  p50 {run.latency_ms.get('50', 0):6.1f} ms  "
                           f"p99 {run.latency_ms.get('99', 0):6.1f} ms  CPU {run.cpu_us_per_request:5.0f} us/req"
                           + (f"  [{run.errors}]" if run.errors else ""))
        rps = {name: statistics.median(r.rps for r in name_runs) for name, name_runs in runs.items()}
        cpu = {name: statistics.median(r.cpu_us_per_request for r in name_runs) for name, name_runs in runs.items()}
        ratio = rps["beacon"] / rps["bare"]
        cpu_ratio = cpu["bare"] / cpu["beacon"]
        report.say(f"  median: bare {rps['bare']:.0f} req/s, beacon {rps['beacon']:.0f} req/s -> ratio {ratio:.2f} "
                   f"(CPU per request: bare {cpu['bare']:.0f} us, beacon {cpu['beacon']:.0f} us -> {cpu_ratio:.2f})")
        floor_ratio, floor_cpu_ratio = rps["beacon"] / rps["floor"], cpu["floor"] / cpu["beacon"]
        report.say(f"  floor {rps['floor']:.0f} req/s, {cpu['floor']:.0f} us: beacon/floor {floor_ratio:.2f} "
                   f"(CPU {floor_cpu_ratio:.2f}); the beacon's steps and durable write cost "
                   f"{cpu['beacon'] - cpu['floor']:.0f} us a hit")
        report.check(ratio >= THROUGHPUT_TARGET, f"beacon keeps >= {THROUGHPUT_TARGET:.0%} of the bare endpoint's "
                                                 f"throughput ({ratio:.0%})")
        report.results["throughput"] = {"rps": rps, "cpu_us_per_request": cpu, "ratio": ratio,
                                        "ratio_to_floor": floor_ratio,
                                        "runs": {n: [vars(r) for r in rs] for n, rs in runs.items()}}

        report.say(f"\n2. Latency at a constant {args.rate:.0f} hits/s for {latency_seconds:g} s "
                   f"(open loop, 32 keep-alive connections, measured from each request's due time)")
        latency = {}
        for server in (bare, beacon):
            latency[server.name] = result_of(constant_rate(server, args.rate, latency_seconds))
            if server is beacon:
                answered += latency[server.name]["statuses"].get("200", 0)
            r = latency[server.name]
            report.say(f"  {server.name:7} {r['rate']:6.0f} hits/s answered  p50 {r['p50_ms']:5.1f} ms  "
                       f"p90 {r['p90_ms']:5.1f} ms  p99 {r['p99_ms']:5.1f} ms  max {r['max_ms']:6.1f} ms  "
                       f"statuses {r['statuses']}")
        report.check(latency["beacon"]["p99_ms"] < P99_TARGET_MS,
                     f"beacon p99 under {P99_TARGET_MS:g} ms at {args.rate:.0f} hits/s ({latency['beacon']['p99_ms']:.1f} ms)")
        report.results["latency"] = latency

        if soak_minutes > 0:
            drain_note = "no drain" if args.no_drain else "the scheduler's drain (5 s) and rollups (1 min) running"
            report.say(f"\n3. Soak: {args.rate:.0f} hits/s for {soak_minutes:g} min with {drain_note}; beacon RSS every 5 s")
            if not args.no_drain:
                helpers.append(drainer(config_path, env, work / "drain.log"))
            generator = constant_rate(beacon, args.rate, soak_minutes * 60)
            samples: list[tuple[float, float]] = []
            started = time.time()
            while generator.poll() is None:
                samples.append((time.time() - started, beacon.rss_mb()))
                time.sleep(5)
            soak = result_of(generator)
            answered += soak["statuses"].get("200", 0)
            warm = [mb for t, mb in samples if t >= min(30, soak_minutes * 30)] or [mb for _, mb in samples]
            window = max(1, min(12, len(warm) // 3))
            first, last = statistics.mean(warm[:window]), statistics.mean(warm[-window:])
            growth = last - first
            report.say(f"  answered {soak['answered']} hits ({soak['rate']:.0f}/s)  p99 {soak['p99_ms']:.1f} ms  "
                       f"max {soak['max_ms']:.1f} ms  statuses {soak['statuses']}")
            report.say(f"  p99 per minute (ms): {', '.join(f'{v:.1f}' for v in soak['p99_by_minute'])}; "
                       f"seconds whose p99 was 25 ms or more: {soak['seconds_with_p99_over_25ms']} of {int(soak['seconds'])}")
            report.say(f"  RSS (MB): start {samples[0][1]:.1f}, after warm-up {first:.1f}, end {last:.1f}, "
                       f"max {max(mb for _, mb in samples):.1f}; growth {growth:+.1f} MB")
            report.check(growth <= max(FLAT_MB, first * FLAT_RATIO),
                         f"memory flat over the soak ({growth:+.1f} MB from {first:.1f} MB)")
            report.results["soak"] = {**soak, "rss_samples": samples, "rss_growth_mb": growth}
            if not args.no_drain:
                log_lines = (work / "drain.log").read_text().splitlines()
                drains = [line for line in log_lines if "inbox drain" in line]
                cubes = [float(line.split()[2]) for line in log_lines if " cube " in line]
                report.say(f"  meanwhile: {len(drains)} drains, rollup updates taking "
                           f"{', '.join(f'{c:g} s' for c in cubes) or 'none yet'}")

        for helper in helpers:
            helper.send_signal(signal.SIGTERM)
            helper.wait(30)
        helpers.clear()
        beacon.stop()     # flushes; the inbox now holds every answered hit that was not drained yet
        in_inbox = stored_hits(work / "var")
        in_lake = drained_hits(config_path, env) if soak_minutes > 0 and not args.no_drain else 0
        stored = in_inbox + in_lake
        report.say(f"\nDurability: the beacon answered {answered} hits with 200; stored: {in_inbox} in the inbox + "
                   f"{in_lake} drained into raw_beacon (no duplicates)")
        report.check(answered >= 0 and answered <= stored <= answered + slack,
                     f"every answered hit is stored ({stored - answered} more stored: answers wrk stopped waiting "
                     f"for, at most {slack})")
        report.results["stored"] = {"inbox": in_inbox, "lake": in_lake}
    finally:
        for helper in helpers:
            helper.kill()
        for server in servers:
            server.stop()
    (OUT / "beacon-results.json").write_text(json.dumps(report.results, indent=2, default=str))
    (OUT / "beacon-results.txt").write_text("\n".join(report.lines) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    report.say(f"\nFigures in {OUT / 'beacon-results.txt'}; all targets {'met' if all(report.passed) else 'NOT met'}")
    return 0 if all(report.passed) else 1


if __name__ == "__main__":
    sys.exit(main())
