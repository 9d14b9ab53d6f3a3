"""The Caskalytics dashboard: a multipage Streamlit app (`st.navigation`), one file per page in `pages/`.

Run from the repo root with `python -m dashboard` (what `make run` does: it refuses a bad config before it
listens) or `streamlit run app.py`; the config comes from $CASKALYTICS_CONFIG or ./config.toml.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from config import ConfigError
from dashboard import access, data

PAGES = Path(__file__).resolve().parent / "pages"
# The browser tab's icon, served by the app itself: a Material icon as page or tab icon would make every
# browser fetch it from fonts.gstatic.com (Streamlit 1.67), which an offline install cannot reach.
FAVICON = str(Path(__file__).resolve().parent / "dashboard" / "favicon.png")
# (file in pages/, title, URL path)
NAVIGATION = [
    ("overview.py", "Overview", "overview"),
    ("explore.py", "Explore", "explore"),
    ("dashboards.py", "Dashboards", "dashboards"),
    ("downloads.py", "Downloads and stars", "downloads"),
    ("sql.py", "SQL", "sql"),
    ("report_downloads.py", "Reports", "reports"),
    ("sources.py", "Sources", "sources"),
    ("alerts.py", "Alerts", "alerts"),
]

try:
    cfg = data.settings(data.config_file())
except ConfigError:
    cfg = None      # every page says why; the sign-in gate falls back to the default variable


def sign_in() -> None:
    access.sign_in_page(access.password(cfg))


signed_in = access.signed_in(cfg)
# Before the shared password is given, every page's URL leads to the sign-in form instead of the page (so a
# link keeps its page through the sign-in), and no page is listed or run.
pages = [st.Page(f"pages/{file}" if signed_in else sign_in, title=title, url_path=url, default=not i)
         for i, (file, title, url) in enumerate(NAVIGATION)]
navigation = st.navigation(pages, position="sidebar" if signed_in else "hidden")
# After st.navigation, which resets the page config (Streamlit 1.67: a layout set before it is not applied).
st.set_page_config(page_title=f"{navigation.title} · Caskalytics", page_icon=FAVICON, layout="wide")
navigation.run()
