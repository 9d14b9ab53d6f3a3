"""`make run` as a newcomer uses it: the demo comes up, data flows from the simulators through the real
collectors to the API and the dashboard, and Ctrl-C stops every process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from conftest import ROOT, free_port, to_toml


def demo_config(tmp_path) -> dict:
    moto, github, api, dashboard = (free_port() for _ in range(4))
    return {
        "warehouse": {"dir": str(tmp_path / "var"), "timezone": "America/New_York"},
        "api": {"port": api},
        "dashboard": {"port": dashboard},
        "demo": {"simulators": True, "moto_port": moto, "github_port": github},
        "sources": {
            "s3_access_logs": {"schedule": "every 1 minutes", "bucket": "demo-download-logs",
                               "endpoint_url": f"http://127.0.0.1:{moto}",
                               "access_key_id_env": "DEMO_AWS_ACCESS_KEY_ID",
                               "secret_access_key_env": "DEMO_AWS_SECRET_ACCESS_KEY"},
            "github": {"schedule": "every 1 minutes", "repos": ["caskdata/cdap"], "api_url": f"http://127.0.0.1:{github}"},
        },
    }


def test_the_demo_comes_up_serves_data_and_stops_cleanly(tmp_path):
    settings = demo_config(tmp_path)
    path = tmp_path / "config.toml"
    path.write_text(to_toml(settings))
    launcher = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "CASKALYTICS_CONFIG": str(path)})
    api = f"http://127.0.0.1:{settings['api']['port']}"
    try:
        lines = []
        deadline = time.time() + 240
        while time.time() < deadline and not any("Press Ctrl-C" in line for line in lines):
            line = launcher.stdout.readline()
            assert line, "launcher exited early:\n" + "".join(lines)
            lines.append(line)
        banner = "".join(lines)
        assert f"http://localhost:{settings['dashboard']['port']}" in banner
        assert f"http://localhost:{settings['api']['port']}" in banner

        # The README's CLI commands work against the running demo from the repository root: the demo's stand-in
        # credentials come with its config, a second writer beside the scheduler just retries a lost commit race.
        def cli(*args):
            return subprocess.run([sys.executable, "scheduler.py", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=180, env={**os.environ, "CASKALYTICS_CONFIG": str(path)})
        status = cli("status")
        assert status.returncode == 0 and "s3_access_logs" in status.stdout, status.stderr
        collected = cli("collect", "s3_access_logs")
        assert collected.returncode == 0, collected.stderr
        assert "s3_access_logs collect:" in collected.stdout

        # The S3 simulator is still writing history while the first collection runs: later versions arrive
        # with the next scheduled collection (every minute here).
        downloads = []
        while time.time() < deadline and not {d["version"] for d in downloads} >= {"6.9.0", "6.10.0"}:
            downloads = requests.get(f"{api}/adoption/downloads", timeout=10).json()["downloads"]
            time.sleep(2)
        assert {d["version"] for d in downloads} >= {"6.9.0", "6.10.0"}
        assert sum(d["dl"] for d in downloads) > 10_000          # fourteen months of traffic

        weekly = requests.get(f"{api}/metrics/downloads", params={"grain": "week", "compare": "yoy"}, timeout=10).json()
        assert sum(p["value"] for p in weekly["points"]) > 0 and sum(p["previous"] for p in weekly["points"]) > 0
        stars = []
        while time.time() < deadline and not stars:
            series = requests.get(f"{api}/metrics/github.stars", params={"grain": "month"}, timeout=10).json()
            stars = [p["value"] for p in series["points"] if p["value"]]
            time.sleep(2)
        assert stars and stars == sorted(stars)
        page = requests.get(f"http://127.0.0.1:{settings['dashboard']['port']}", timeout=10)
        assert page.status_code == 200
    finally:
        launcher.send_signal(signal.SIGINT)
        output, _ = launcher.communicate(timeout=30)
    assert "Stopped." in output
    assert "did not stop in time" not in output, output       # the scheduler stops mid catch-up, between batches
    for port in (settings["api"]["port"], settings["dashboard"]["port"], settings["demo"]["moto_port"],
                 settings["demo"]["github_port"]):
        try:
            requests.get(f"http://127.0.0.1:{port}", timeout=2)
            raise AssertionError(f"something still listens on {port} after Ctrl-C")
        except requests.ConnectionError:
            pass
