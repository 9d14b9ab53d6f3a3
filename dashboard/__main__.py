"""`python -m dashboard [streamlit options]`: check the config, then serve `app.py` with Streamlit.

Streamlit runs a page's script only when a browser opens it, so a bad config would otherwise surface as an
error on every page of a server that looks healthy; this refuses it at start, with the same one line as the
API and the scheduler, and a non-zero exit.
"""
from __future__ import annotations

import sys
from pathlib import Path

import collectors
from config import ConfigError


def main(argv: list[str]) -> int:
    try:
        cfg = collectors.load_config()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from streamlit.web import cli
    app = str(Path(__file__).resolve().parents[1] / "app.py")
    sys.argv = ["streamlit", "run", app, "--server.address", cfg.dashboard.host, "--server.port",
                str(cfg.dashboard.port), "--browser.gatherUsageStats", "false", *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
