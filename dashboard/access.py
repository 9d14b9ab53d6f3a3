"""Who may open the dashboard: everyone on this machine by default, one shared password when it is exposed.

The dashboard listens on 127.0.0.1 unless `[dashboard] host` says otherwise. When the variable named by
`[dashboard] password_env` (default CASKALYTICS_DASHBOARD_PASSWORD) is set, `app.py` shows only a sign-in form
until the session has given that password (compared in constant time); the session then stays signed in.
`python -m dashboard` refuses a host other than loopback without a password (`exposed_without_password`).
Single sign-on through Streamlit's OIDC login (`st.login`) is described in docs/dashboard.md.
"""
from __future__ import annotations

import hmac
import ipaddress
import os

import streamlit as st

from config import Config, DashboardConfig

SIGNED_IN = "caskalytics_signed_in"


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False        # a host name other than localhost, or "" (every interface)


def password(cfg: Config | None) -> str | None:
    """The shared password, or None when none is set (with no readable config: the default variable's)."""
    if cfg is None:
        return os.environ.get(DashboardConfig().password_env) or None
    return cfg.secret(cfg.dashboard.password_env)


def exposed_without_password(cfg: Config, host: str) -> str | None:
    """One line saying why the dashboard must not start on `host`, or None when it may."""
    if is_loopback(host) or password(cfg):
        return None
    return (f"the dashboard would listen on {host or 'every interface'!r} with no login: set "
            f"${cfg.dashboard.password_env} to a shared password, or keep [dashboard] host = \"127.0.0.1\" "
            f"behind a proxy that signs users in")


def matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def sign_in_page(expected: str) -> None:
    """The only page a session sees before it has given the password."""
    st.title("Caskalytics")
    with st.form("sign_in"):
        given = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if matches(given, expected):
            st.session_state[SIGNED_IN] = True
            st.rerun()
        st.error("That password is not right.")


def signed_in(cfg: Config | None) -> bool:
    """True when the session may see the pages: no password set, or this session gave it."""
    expected = password(cfg)
    return expected is None or st.session_state.get(SIGNED_IN, False)
