"""`python -m dashboard [streamlit options]`: check the config, then serve `app.py` with Streamlit.

Streamlit runs a page's script only when a browser opens it, so a bad config would otherwise surface as an
error on every page of a server that looks healthy; this refuses it at start, with the same one line as the
API and the scheduler, and a non-zero exit. It also refuses to listen beyond loopback without the shared
password (`dashboard.access`), and preloads what the first page view needs while the server starts
(`dashboard.preload`).
"""
from __future__ import annotations

import sys
from pathlib import Path

import collectors
import config
from config import ConfigError
from dashboard import access, preload


def _address(cfg: config.Config, argv: list[str]) -> str:
    """The address Streamlit will listen on: the config's, unless the command line says otherwise."""
    host = cfg.dashboard.host
    for i, arg in enumerate(argv):
        if arg == "--server.address" and i + 1 < len(argv):
            host = argv[i + 1]
        elif arg.startswith("--server.address="):
            host = arg.split("=", 1)[1]
    return host


def main(argv: list[str]) -> int:
    try:
        cfg = collectors.load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    refusal = access.exposed_without_password(cfg, _address(cfg, argv))
    if refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 1
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli
    # Streamlit 1.67 treats an app with a pages/ folder as a pages-folder app until app.py has called
    # st.navigation once: until then a link to /sql runs pages/sql.py without app.py (no sign-in gate, file
    # names in the sidebar). app.py's st.navigation routes every URL, from the first request on.
    PagesManager.uses_pages_directory = False
    preload.start(str(config.default_path().resolve()))
    app = str(Path(__file__).resolve().parents[1] / "app.py")
    sys.argv = ["streamlit", "run", app, "--server.address", cfg.dashboard.host, "--server.port",
                str(cfg.dashboard.port), "--browser.gatherUsageStats", "false", *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
