"""Helpers shared by the Streamlit pages (`app.py`, `pages/`): cached warehouse reads and chart widgets."""
