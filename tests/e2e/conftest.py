"""Browser tests: the real app served by waitress on loopback, driven by Playwright in Debian's Chromium."""

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from app import create_app
from seeds.demo import DEMO_PASSWORD
from tests.threaded_server import serve_in_thread

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture
def live_server(database_url, tmp_path):
    """Serves the app on 127.0.0.1 in a background thread; yields its base URL."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "e2e-secret",
            "ATTACHMENT_DIR": str(tmp_path / "attachments"),
        }
    )
    # as `make run` serves it (8 threads): with 4, a busy moment queued the login page past its timeout
    with serve_in_thread(app, threads=8) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            # the browser's own widgets (date inputs) in Chinese, as on the town's PCs
            env={**os.environ, "LANG": "zh_CN.UTF-8", "LANGUAGE": "zh_CN"},
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context; every request to a host other than the app fails the test."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    outside = []
    context.on(
        "request",
        lambda r: (
            None if r.url.startswith(live_server) or r.url.startswith("data:") else outside.append(r.url)
        ),
    )
    page = context.new_page()
    page.base_url = live_server
    page.set_default_timeout(15000)
    yield page
    context.close()
    assert not outside, f"the page loaded something from outside the app: {outside}"


def logout(page):
    """From the user menu, and on to the login page the logout itself navigates to: a next step that
    starts before it races the logout's own navigation."""
    page.wait_for_load_state("load")  # the menu's script is there, not only the page's text
    page.click("#user-menu")
    page.click("#logout-button")
    page.wait_for_url("**/login**")


def login(page, username, password=DEMO_PASSWORD):
    if "/login" not in page.url:
        try:
            page.goto(page.base_url + "/login")
        except PlaywrightError as error:
            # a logout clicked just before navigates to the login page itself and wins the race
            if "ERR_ABORTED" not in str(error):
                raise
            page.wait_for_url("**/login**")
    page.wait_for_selector("#username")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/**")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
