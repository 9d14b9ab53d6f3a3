"""The real demo (`make run`: simulators -> collectors -> scheduler -> API) in a folder of its own, on free ports.

Used by `bench/dashboard.py` (pages measured while the scheduler writes) and `tests/dashboard/make_screenshot.py`
(the README's pictures of the real demo). `demo_config(folder)` copies the repository's `config.toml` with the
warehouse under `folder/var` and every port (API, dashboard, each simulator) replaced by a free one, so nothing
clashes with a `make run` or a test on this machine; `DemoStack` runs `run.py` on it and waits until every
enabled source has been collected once.

    python bench/demo_stack.py --dir /tmp/demo      # build (or top up) a demo warehouse there, then stop
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = re.compile(r"(?P<head>127\.0\.0\.1:|^port = |^moto_port = |^github_port = )(?P<port>\d+)", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(folder: Path) -> Path:
    """`folder/config.toml`: the demo config with its warehouse in `folder/var` and fresh ports. An existing
    copy is kept (its warehouse can be topped up), with ports renewed (the old ones may be taken now)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    text = (ROOT / "config.toml").read_text()
    text = re.sub(r'^dir = "var"', f'dir = "{folder / "var"}"', text, flags=re.M)
    ports: dict[str, int] = {}      # the same old port gets the same new one (YouTube's three URLs)
    text = PORT.sub(lambda m: m["head"] + str(ports.setdefault(m["port"], free_port())), text)
    path.write_text(text)
    return path


def status(config: Path) -> dict:
    answer = subprocess.run([sys.executable, "scheduler.py", "--config", str(config), "status", "--json"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(answer.stdout)["sources"]


def collected(config: Path) -> tuple[list[str], list[str]]:
    """(enabled sources collected at least once, enabled sources not yet)."""
    sources = {name: info for name, info in status(config).items() if info["enabled"]}
    done = [name for name, info in sources.items() if info["last_success_at"]]
    return done, [name for name in sources if name not in done]


def demo_env(config: Path) -> dict[str, str]:
    """The environment of the demo's processes: the sources' stand-in credentials (a variable already set
    wins), so each simulator finds the secret it checks (e.g. the GitHub webhook signature) in its variable."""
    sys.path.insert(0, str(ROOT))
    import collectors
    secrets = {name: value for source in collectors.SOURCES.values() for name, value in source.demo.secrets.items()}
    return {**secrets, **os.environ, "CASKALYTICS_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}


class DemoStack:
    """`run.py` (simulators, scheduler, API, a dashboard) on `config`, stopped on exit as a service manager
    stops it."""

    def __init__(self, config: Path, log: Path):
        self.config, self.log_path = config, log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "DemoStack":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "run.py"], cwd=ROOT, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True, env=demo_env(self.config))
        return self

    def wait_collected(self, timeout: float = 1800, quiet: bool = False) -> None:
        """Until every enabled source has been collected once (the demo's first run reads ~400 days)."""
        deadline = time.monotonic() + timeout
        missing: list[str] = []
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"run.py exited with {self.process.returncode}; see {self.log_path}")
            try:
                done, missing = collected(self.config)
            except subprocess.CalledProcessError:
                done, missing = [], ["(status not readable yet)"]
            if not missing:
                return
            if not quiet:
                print(f"  collected: {', '.join(done) or 'none yet'}; waiting for {', '.join(missing)}", flush=True)
            time.sleep(15)
        raise TimeoutError(f"not collected within {timeout:.0f} s: {', '.join(missing)}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            # SIGTERM, not SIGINT: a job started in the background ignores SIGINT, and run.py stops its
            # children itself on SIGTERM (killed instead, it would leave them running).
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="folder for the config copy and the warehouse")
    args = parser.parse_args()
    config = demo_config(args.dir.resolve())
    started = time.monotonic()
    with DemoStack(config, args.dir / "run.log") as stack:
        stack.wait_collected()
    print(f"demo warehouse ready in {time.monotonic() - started:.0f} s: {config}")


if __name__ == "__main__":
    main()
