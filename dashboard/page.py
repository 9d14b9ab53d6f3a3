"""What every dashboard page does first, in one place: the wide layout, the sign-in gate, the title, the config
(or one sentence saying why it cannot be read), and, for pages that need data, what to do while there is none."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from config import Config, ConfigError
from dashboard import data

T = TypeVar("T")
HOW_TO_FILL = ("Start the pipeline with `make run` (it loads demo data when no credentials are set), or collect "
               "once with `python scheduler.py collect SOURCE`; then reload this page.")


def start(title: str) -> tuple[str, Config]:
    """Open a page: `(config path, config)`, or an error sentence and a stop. The layout is set again here
    because app.py's is lost when a link opens a page directly; `data.config_path` holds the sign-in gate."""
    st.set_page_config(layout="wide")
    path = data.config_path()
    st.title(title)
    try:
        return path, data.settings(path)
    except ConfigError as exc:
        st.error(f"The configuration cannot be read: {exc}")
        st.stop()


def needs_data(read: Callable[[], T], nothing: str | None = None, how: str = HOW_TO_FILL) -> T:
    """`read()`; while there is no warehouse yet, or (with `nothing`, the sentence to show) `read` found
    nothing, say so and `how` to fill it, and stop the page."""
    try:
        found = read()
    except data.NoData as exc:
        st.info(f"{exc} {how}", icon=":material/hourglass_empty:")
        st.stop()
    if nothing is not None and not found:
        st.info(f"{nothing} {how}", icon=":material/hourglass_empty:")
        st.stop()
    return found
