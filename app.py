"""The Caskalytics dashboard: a multipage Streamlit app (`st.navigation`), one file per page in `pages/`.

Run from the repo root with `python -m dashboard` (what `make run` does: it refuses a bad config before it
listens) or `streamlit run app.py`; the config comes from $CASKALYTICS_CONFIG or ./config.toml.
"""
from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Caskalytics", page_icon=":material/insights:", layout="wide")
navigation = st.navigation([
    st.Page("pages/downloads.py", title="Downloads and stars", icon=":material/download:", default=True),
])
navigation.run()
