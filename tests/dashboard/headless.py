"""A real dashboard server (`python -m dashboard`) and a headless Debian Chromium driven over the DevTools protocol.

Used by the browser test and by make_screenshot.py. The DevTools client is a few lines over the
`websockets` package (a Streamlit dependency): navigate, evaluate JavaScript until the page is rendered,
capture a PNG.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import re
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


# True once a page has finished: Streamlit's running indicator gone, nothing stale, no spinner or skeleton,
# the page's title drawn and every Plotly chart drawn.
SETTLED_JS = """(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || !document.querySelector('[data-testid="stMain"] h1')) return false;
  if (document.querySelector('[data-testid="stStatusWidget"], [data-stale="true"], [data-testid="stSpinner"], '
                             + '[data-testid="stSkeleton"]')) return false;
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  return charts.every(c => c.querySelector('.js-plotly-plot .main-svg'));
})()"""
# Streamlit's frontend first asks for its health and host config under the page's own path (/explore/_stcore/...)
# and, answered 404, at the root: the browser logs those two 404s on every page opened by its URL. Not an error.
PATH_PROBE = re.compile(r"status of 404 .*/[\w-]+/_stcore/(health|host-config)\)$")
# Streamlit's error elements: an exception box, or an error alert (st.error).
PROBLEMS_JS = """[...document.querySelectorAll('[data-testid="stException"], [data-testid="stAlertContentError"]')]
  .map(e => e.textContent.slice(0, 300))"""



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
def streamlit_server(config_path: Path, log_path: Path | None = None, timeout: float = 60,
                     env: dict[str, str] | None = None, ready_line: str | None = None):
    """`python -m dashboard` (what `make run` starts) from the repo root against `config_path`, on a free
    loopback port, with `env` added to the environment; yields the app URL once it answers (and, with
    `ready_line` and `log_path`, once its log shows that line)."""
    port = free_port()
    env = {**os.environ, "CASKALYTICS_CONFIG": str(config_path), **(env or {})}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    command = [sys.executable, "-m", "dashboard", "--server.headless", "true", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout, process, "streamlit")
        deadline = time.monotonic() + timeout
        while ready_line and log_path and ready_line not in log_path.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the dashboard's log did not show {ready_line!r} within {timeout:.0f} s")
            time.sleep(0.1)
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
        self.console_errors: list[str] = []     # console.error calls, uncaught exceptions, error log entries
        try:
            port = self._devtools_port(timeout)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
                page = next(t for t in json.load(answer) if t["type"] == "page")
            self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=timeout,
                              legacy=True)     # held across calls (not a `with` block), closed by close()
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Log.enable")
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
        """Send one DevTools command and return its result (events that arrive meanwhile are only read for
        console errors)."""
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def _event(self, message: dict) -> None:
        params = message.get("params", {})
        if message.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console_errors.append(details.get("exception", {}).get("description") or details.get("text", "?"))
        elif message.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif message.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(f"{entry.get('text')} ({entry.get('url', '')})")

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

    def load(self, url: str, timeout: float = 60, settle: float = 0.5) -> float:
        """Load `url` and return the seconds until the page settled (SETTLED_JS true, and still true `settle`
        seconds later: a rerun or a chart drawn late restarts the wait)."""
        started = time.monotonic()
        self.call("Page.navigate", url=url)
        deadline = started + timeout
        settled_at = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if self.evaluate(SETTLED_JS):
                settled_at = settled_at or now
                if now - settled_at >= settle:
                    return settled_at - started
            else:
                settled_at = None
            time.sleep(0.05)
        raise TimeoutError(f"{url} did not settle within {timeout:.0f} s; page text: {(self.text() or '')[:300]!r}")

    def problems(self) -> list[str]:
        """Streamlit error elements on the page and browser console errors so far."""
        console = [e for e in self.console_errors if not PATH_PROBE.search(e)]
        return [f"page: {p}" for p in self.evaluate(PROBLEMS_JS)] + [f"console: {e}" for e in console]

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
        # The viewport already holds the whole page: capturing beyond it resizes the page once more, and
        # Streamlit answers a resize by sliding its sidebar (caught half-way in the picture).
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
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
