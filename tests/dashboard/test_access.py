"""Who may open the dashboard: with the shared password set, every session sees only the sign-in form until it
gives the password (app.py, and a page Streamlit runs without app.py); once given, the session stays in. Without
it the dashboard is open, but `python -m dashboard` refuses to listen beyond loopback."""
from __future__ import annotations

import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

import headless
import lakefill
from dashboard import access

APP = str(headless.ROOT / "app.py")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    cfg = lakefill.write_config(tmp_path)
    lakefill.create_empty(cfg)
    monkeypatch.setenv("CASKALYTICS_CONFIG", str(cfg.path))
    monkeypatch.delenv("CASKALYTICS_DASHBOARD_PASSWORD", raising=False)
    return cfg


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key="sign_in_password").set_value(password)    # a form: sent with its button
    return at.button[0].click().run()


def test_without_a_password_the_pages_open(cfg):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and titles(at) == ["Overview"]
    assert not at.text_input


def test_with_a_password_only_the_sign_in_form_shows_until_it_is_given(cfg, monkeypatch):
    monkeypatch.setenv("CASKALYTICS_DASHBOARD_PASSWORD", PASSWORD)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception and titles(at) == ["Caskalytics"]
    assert [t.label for t in at.text_input] == ["Password"] and not at.metric and not at.info

    sign_in(at, "wrong")
    assert titles(at) == ["Caskalytics"] and [e.value for e in at.error] == ["That password is not right."]

    sign_in(at, PASSWORD)
    assert not at.exception and titles(at) == ["Overview"] and not at.error
    at.switch_page("pages/sources.py").run()           # the session stays signed in
    assert titles(at) == ["Sources"]


def test_a_page_run_without_app_py_asks_for_the_password_too(cfg, monkeypatch):
    monkeypatch.setenv("CASKALYTICS_DASHBOARD_PASSWORD", PASSWORD)
    at = AppTest.from_file(str(headless.ROOT / "pages" / "sql.py"), default_timeout=60).run()
    assert not at.exception and titles(at) == ["Caskalytics"]
    assert [t.label for t in at.text_input] == ["Password"] and not at.text_area     # no SQL editor
    sign_in(at, PASSWORD)
    assert titles(at) == ["SQL"] and at.text_area


def test_the_variable_is_the_one_the_config_names(tmp_path, monkeypatch):
    cfg = lakefill.write_config(tmp_path)
    cfg.path.write_text(cfg.path.read_text() + '\n[dashboard]\npassword_env = "TEAM_DASHBOARD_PASSWORD"\n')
    monkeypatch.setenv("CASKALYTICS_CONFIG", str(cfg.path))
    monkeypatch.setenv("CASKALYTICS_DASHBOARD_PASSWORD", "not this one")
    monkeypatch.setenv("TEAM_DASHBOARD_PASSWORD", PASSWORD)
    at = AppTest.from_file(APP, default_timeout=60).run()
    sign_in(at, "not this one")
    assert titles(at) == ["Caskalytics"]
    sign_in(at, PASSWORD)
    assert titles(at) == ["Overview"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_hosts_need_no_password(cfg, host):
    assert access.is_loopback(host) and access.exposed_without_password(cfg, host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.0.2.10", "dashboard.example.com"])
def test_an_exposed_host_needs_the_password(cfg, monkeypatch, host):
    assert "CASKALYTICS_DASHBOARD_PASSWORD" in access.exposed_without_password(cfg, host)
    monkeypatch.setenv("CASKALYTICS_DASHBOARD_PASSWORD", PASSWORD)
    assert access.exposed_without_password(cfg, host) is None


def test_python_m_dashboard_refuses_an_exposed_host_without_a_password_in_one_line(cfg):
    cfg.path.write_text(cfg.path.read_text() + '\n[dashboard]\nhost = "0.0.0.0"\n')
    for extra in ([], ["--server.address", "192.0.2.10"]):
        done = subprocess.run([sys.executable, "-m", "dashboard", *extra], cwd=headless.ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 1
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("error: the dashboard would listen on") and "CASKALYTICS_DASHBOARD_PASSWORD" in line
