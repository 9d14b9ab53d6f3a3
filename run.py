"""`make run`: start every Caskalytics process (and, for the demo config, the local simulators), print the
URLs, and stop them all cleanly on Ctrl-C.

Processes: scheduler (`scheduler.py run`), API (uvicorn, [api] port), dashboard (streamlit, [dashboard] port),
replication (litestream), and with `[demo] simulators = true`: each enabled source's simulator from
`simulators/` (started as its `demo_process(cfg)` says), plus a moto S3 server for the access logs.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import collectors
from config import ConfigError
from simulators.demo import start_simulators
from simulators.ports import port_free, wait_for_port
from warehouse.replication import litestream_config
from warehouse.writer import Writer

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


class Processes:
    def __init__(self):
        self.running: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> subprocess.Popen:
        log = open(log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        self.running.append((name, process))
        return process

    def check(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with status {process.returncode}; see var/logs/{name}.log")

    def stop(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for name, process in reversed(self.running):
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                print(f"  {name} did not stop in time; killed")


def main() -> int:
    try:
        cfg = collectors.load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    env = dict(os.environ, PYTHONUNBUFFERED="1", CASKALYTICS_CONFIG=str(cfg.path))
    log_dir = cfg.warehouse_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    busy = [p for p in (cfg.api.port, cfg.dashboard.port) if not port_free(p)]
    if busy:
        print(f"error: port {busy[0]} is already in use (is Caskalytics already running?)", file=sys.stderr)
        return 1
    processes = Processes()

    def terminate(*_):
        raise KeyboardInterrupt   # `kill` and service managers stop us like Ctrl-C does: children too
    signal.signal(signal.SIGTERM, terminate)
    try:
        if cfg.demo.simulators:
            start_simulators(cfg, lambda name, args, secrets: processes.start(name, args, {**env, **secrets}, log_dir))
        # Readers attach the lake read-only, so it must exist (with its tables) before they start.
        Writer(cfg).close()
        processes.start("scheduler", [sys.executable, "scheduler.py", "run"], env, log_dir)
        processes.start("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--host", cfg.api.host,
                                "--port", str(cfg.api.port)], env, log_dir)
        processes.start("dashboard", [sys.executable, "-m", "dashboard", "--server.headless", "true"], env, log_dir)
        litestream = litestream_config(cfg, cfg.warehouse_dir / "litestream.yml")
        if litestream:
            litestream_env = {k: v for k, v in env.items() if k != "AWS_CA_BUNDLE"}   # see STACK-NOTES
            processes.start("litestream", [shutil.which("litestream", path=str(BIN)) or "litestream",
                                           "replicate", "-config", str(litestream)], litestream_env, log_dir)
        wait_for_port(cfg.api.port, "API")
        wait_for_port(cfg.dashboard.port, "dashboard")
        print(f"""
Caskalytics is running{' on the demo simulators' if cfg.demo.simulators else ''}:
  dashboard   http://localhost:{cfg.dashboard.port}
  REST API    http://localhost:{cfg.api.port}   (docs: http://localhost:{cfg.api.port}/docs)
  warehouse   {cfg.warehouse_dir}   logs: {log_dir}
The first collection of the demo history takes a few minutes; `python scheduler.py status` shows progress.
Press Ctrl-C to stop everything.""", flush=True)
        while True:
            processes.check()
            time.sleep(1)
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        processes.stop()
        print("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
