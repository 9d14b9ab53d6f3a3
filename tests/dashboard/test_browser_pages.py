"""Every page of a running dashboard (`python -m dashboard`, as `make run` starts it) opened by its URL in a real
headless Chromium, on a warehouse of several sources: each shows its own title and the sidebar names every
page, with no Streamlit error element and no browser console error. Screenshots of every page are saved in the
test's temporary folder (printed with -s). With the shared password set, a link to a page on a fresh server
shows the sign-in form, not the page."""
from __future__ import annotations

import re
import time

import pytest

import headless
import pagefill
from dashboard import preload

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not headless.CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install -y chromium)")]
# Every page app.py routes to: (file, title, URL path), read from its NAVIGATION list. The first is the default
# page, which Streamlit serves at the root ("/overview" is not one of its URLs).
PAGES = [(file, title, url) for file, title, url in re.findall(
    r'\("(\w+\.py)", "([^"]+)", "([\w-]+)"\)', (headless.ROOT / "app.py").read_text())
    if (headless.ROOT / "pages" / file).exists()]
PAGES[0] = (*PAGES[0][:2], "")


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return pagefill.fill(tmp_path_factory.mktemp("browser"))


def heading(browser: headless.Chromium) -> str:
    return browser.evaluate("document.querySelector('[data-testid=\"stMain\"] h1')?.textContent")


def test_every_page_opens_by_its_link_without_an_error(cfg, tmp_path):
    assert len(PAGES) >= 7
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with headless.streamlit_server(cfg.path, tmp_path / "dashboard.log", ready_line=preload.READY) as url, \
            headless.Chromium() as browser:
        for file, title, path in PAGES:
            browser.load(url + path)
            assert heading(browser) == title, path
            nav = browser.evaluate("[...document.querySelectorAll('[data-testid=\"stSidebarNavLink\"]')]"
                                   ".map(e => e.textContent)")
            assert nav == [t for _, t, _ in PAGES], path
            problems = browser.problems()
            browser.screenshot(shots / f"{path or 'index'}.png")
            assert problems == [], path
    print(f"screenshots in {shots}")
    assert len(list(shots.iterdir())) == len(PAGES)


def test_a_link_to_a_page_on_a_fresh_server_asks_for_the_password_first(cfg, tmp_path):
    with headless.streamlit_server(cfg.path, tmp_path / "dashboard.log", ready_line=preload.READY,
                                   env={"CASKALYTICS_DASHBOARD_PASSWORD": "s3cret shared"}) as url, \
            headless.Chromium() as browser:
        for path in ("", "sql"):
            browser.load(url + path)
            assert heading(browser) == "Caskalytics"
            text = browser.text()
            assert "Password" in text and "Sign in" in text
            assert "SELECT" not in text and "Pipeline" not in text and "Adoption" not in text
            assert browser.problems() == []
        # Signing in on the link's page opens that page.
        browser.evaluate("document.querySelector('input[type=password]').focus()")
        browser.call("Input.insertText", text="s3cret shared")
        browser.evaluate("[...document.querySelectorAll('button')].find(b => b.textContent.includes('Sign in')).click()")
        deadline = time.monotonic() + 30
        while heading(browser) != "SQL" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert heading(browser) == "SQL" and browser.problems() == []
