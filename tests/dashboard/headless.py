"""A real `streamlit run app.py` server and a headless Debian Chromium driven over the DevTools protocol.

Used by the browser test and by make_screenshot.py. The DevTools client is a few lines over the
`websockets` package (a Streamlit dependency): navigate, evaluate JavaScript until the page is rendered,
capture a PNG.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from websockets.sync.client import connect

from simulators.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-port=0"]

# True once Streamlit has finished a run and Plotly has drawn `charts` charts.
RENDERED_JS = """(charts) => {
  const running = document.querySelector('[data-testid="stStatusWidget"]');
  const stale = document.querySelector('[data-stale="true"]');
  const drawn = [...document.querySelectorAll('.js-plotly-plot')].filter(p => p.querySelector('.main-svg')).length;
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && !running && !stale && drawn >= charts;
}"""


def _wait_http(url: str, timeout: float, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{what} did not answer {url} within {timeout:.0f} s")


@contextmanager
def streamlit_server(config_path: Path, log_path: Path | None = None, timeout: float = 60):
    """`streamlit run app.py` from the repo root against `config_path`; yields the app URL."""
    port = free_port()
    env = {**os.environ, "CASKALYTICS_CONFIG": str(config_path)}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout, process, "streamlit")
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log_path:
            log.close()


class Chromium:
    """One headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 30):
        self.profile = Path(tempfile.mkdtemp(prefix="caskalytics-chromium-"))
        self.width, self.height = width, height
        self.process = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = itertools.count(1)
        try:
            port = self._devtools_port(timeout)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
                page = next(t for t in json.load(answer) if t["type"] == "page")
            self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout,
                              legacy=True)     # held across calls (not a `with` block), closed by close()
            self.call("Page.enable")
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.close()
            raise

    def _devtools_port(self, timeout: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode} at start")
            if marker.exists() and (text := marker.read_text().split()):
                return int(text[0])
            time.sleep(0.1)
        raise TimeoutError(f"chromium did not open its DevTools port within {timeout:.0f} s")

    def call(self, method: str, timeout: float = 30, **params) -> dict:
        """Send one DevTools command and return its result (events that arrive meanwhile are dropped)."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"javascript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, charts: int, timeout: float = 60) -> None:
        """Load `url` and wait until Streamlit has finished running and `charts` Plotly charts are drawn."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        settled_since = None
        while time.monotonic() < deadline:
            if self.evaluate(f"({RENDERED_JS})({charts})"):
                settled_since = settled_since or time.monotonic()
                if time.monotonic() - settled_since > 1.0:    # stable for a second: no rerun, no animation
                    return
            else:
                settled_since = None
            time.sleep(0.2)
        raise TimeoutError(f"{url} did not render {charts} charts within {timeout:.0f} s; page text: "
                           f"{(self.text() or '')[:500]!r}")

    def text(self) -> str:
        """Everything the page shows as text, including SVG text (chart titles, axes, legends)."""
        return self.evaluate("document.querySelector('[data-testid=\"stApp\"]').textContent")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page; `full_page` grows the viewport to the app's whole height first."""
        if full_page:
            height = self.evaluate("""Math.max(...[...document.querySelectorAll(
                '[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]')]
                .map(e => e.getBoundingClientRect().bottom + window.scrollY)) + 48""")
            self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=max(int(height), 400),
                      deviceScaleFactor=1, mobile=False)
            time.sleep(1.5)     # let Plotly redraw at the new size
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for _ in range(10):    # helper processes may still write into the profile for a moment
            shutil.rmtree(self.profile, ignore_errors=True)
            if not self.profile.exists():
                break
            time.sleep(0.3)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
