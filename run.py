"""`make run`: start every Caskalytics process (and, for the demo config, the local simulators), print the
URLs, and stop them all cleanly on Ctrl-C.

Processes: scheduler (`scheduler.py run`), API (uvicorn, [api] port), dashboard (streamlit, [dashboard] port),
replication (litestream), and with `[demo] simulators = true`: each enabled source's simulator from
`simulators/` (started as its `demo_process(cfg)` says), plus a moto S3 server for the access logs.
"""
from __future__ import annotations

import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import config as config_module
from config import ConfigError
from pipeline import Writer

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DEMO_SECRETS = {"DEMO_AWS_ACCESS_KEY_ID": "demo", "DEMO_AWS_SECRET_ACCESS_KEY": "demo",
                "GITHUB_WEBHOOK_SECRET": "demo-webhook-secret",
                "DEMO_SALESFORCE_CLIENT_ID": "demo-connected-app", "DEMO_SALESFORCE_CLIENT_SECRET": "demo",
                "DEMO_LINKEDIN_ACCESS_TOKEN": "demo-linkedin-token", "DEMO_MELTWATER_API_KEY": "demo-meltwater-key",
                "DEMO_SEO_API_KEY": "demo-seo-key",
                "DEMO_YOUTUBE_CLIENT_ID": "demo-youtube.apps.googleusercontent.com",
                "DEMO_YOUTUBE_CLIENT_SECRET": "demo", "DEMO_YOUTUBE_REFRESH_TOKEN": "demo-refresh-token",
                "DEMO_TWITTER_BEARER_TOKEN": "demo-bearer-token"}


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


def wait_for_port(port: int, what: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start listening on port {port} within {seconds:.0f}s")


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start_simulators(cfg, processes: Processes, env: dict[str, str], log_dir: Path) -> None:
    """Each enabled source with a module in simulators/ gets its simulator, started as that module's
    `demo_process(cfg)` says. S3 logs need an S3-compatible server first: moto."""
    print("Starting the demo simulators...")
    if "s3_access_logs" in cfg.enabled_sources():
        processes.start("moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(cfg.demo.moto_port)],
                        env, log_dir)
        wait_for_port(cfg.demo.moto_port, "moto server")
    for source in cfg.enabled_sources():
        try:
            module = importlib.import_module(f"simulators.{source}")
        except ModuleNotFoundError:
            continue
        args, port = module.demo_process(cfg)
        processes.start(f"{source}-simulator", [sys.executable, "-m", f"simulators.{source}", *args], env, log_dir)
        if port:
            wait_for_port(port, f"{source} simulator")


def litestream_config(cfg, path: Path) -> Path | None:
    """Replicate the two SQLite files (lake catalog, state) to the replica folder or bucket."""
    binary = shutil.which("litestream", path=str(BIN)) or shutil.which("litestream")
    if not cfg.replication.enabled or not binary:
        return None
    replica = cfg.replication.replica_url or str(cfg.warehouse_dir / "replica")
    lines = ["dbs:"]
    for db in ("lake.sqlite", "state.sqlite"):
        lines.append(f"  - path: {cfg.warehouse_dir / db}")
        if replica.startswith("s3://"):
            lines += ["    replica:", f"      url: {replica.rstrip('/')}/{db}"]
            if cfg.replication.endpoint_url:
                lines += [f"      endpoint: {cfg.replication.endpoint_url}", "      force-path-style: true"]
        else:
            lines += ["    replica:", "      type: file", f"      path: {Path(replica) / db}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    try:
        cfg = config_module.load()
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
            for name, value in DEMO_SECRETS.items():
                env.setdefault(name, value)
            start_simulators(cfg, processes, env, log_dir)
        # Readers attach the lake read-only, so it must exist (with its tables) before they start.
        Writer(cfg).close()
        processes.start("scheduler", [sys.executable, "scheduler.py", "run"], env, log_dir)
        processes.start("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--host", cfg.api.host,
                                "--port", str(cfg.api.port)], env, log_dir)
        processes.start("dashboard", [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless",
                                      "true", "--server.port", str(cfg.dashboard.port),
                                      "--browser.gatherUsageStats", "false"], env, log_dir)
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
