"""Real-browser fixtures: headless Chromium (Playwright, sync API) against a live server.

A browser test asks for ``page`` (a fresh browser context on a tablet-sized screen,
pointed at ``live_server``) and seeds data in the test thread with the factories of
tests/conftest.py, then commits so the server's threads see it::

    @pytest.mark.browser
    def test_something(page, live_server, make_user, db):
        make_user("admin", username="boss")          # factories commit or flush
        db.session.commit()                          # the server reads committed data only
        log_in(page, "boss")
        ...

or, equivalently, inside ``with live_server.app.app_context():`` with the services.

* Database: SQLite by default; ``@on_all_backends`` (or
  ``@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)``) runs a test
  on PostgreSQL too, through the same ``db_url`` machinery as the other tests.
* Screen: ``@pytest.mark.parametrize("viewport", ["phone"], indirect=True)`` gives a
  390x844 phone instead of the default 1280x800 10-inch tablet; ``open_page(viewport=...)``
  opens further pages (another user, another screen) in their own contexts.
* Every page is saved as a full-page screenshot in test-artifacts/screenshots/ when the
  test ends, pass or fail (on failure with the page's HTML beside it).
* Time: the app runs on the ``clock`` fixture (2026-11-23 10:00 Beijing time), like the
  other tests; set it before the browser acts.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from feedback.config import PROJECT_ROOT
from tests.conftest import BACKENDS, TEST_PASSWORD, fresh_database

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
DEFAULT_TIMEOUT_MS = 10_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]

# The screens the platform is used on: the evaluation tablet at a hall window (and staff
# desks), and citizens' phones (links in SMS, QR codes on receipts).
VIEWPORTS = {
    "tablet": {"viewport": {"width": 1280, "height": 800}, "has_touch": True},
    "phone": {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True},
    # The hall's wallboard screen (大屏), with and without JavaScript.
    "wall": {"viewport": {"width": 1920, "height": 1080}},
    "wall_nojs": {"viewport": {"width": 1920, "height": 1080}, "java_script_enabled": False},
}

on_all_backends = pytest.mark.parametrize("db_url", BACKENDS, indirect=True)
"""Run a browser test on every configured database (browser tests default to SQLite)."""

expect.set_options(timeout=DEFAULT_TIMEOUT_MS)

_reports = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Remember each phase's outcome so the page fixture knows, at teardown, if the test failed.
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


# ---------------------------------------------------------------- database and server

@pytest.fixture
def db_url(request, tmp_path):
    """Overrides the root ``db_url``: SQLite unless the test parametrizes it indirectly."""
    yield from fresh_database(request, getattr(request, "param", "sqlite"), tmp_path)


@dataclass
class LiveServer:
    """The app served over real HTTP on a free local port."""

    url: str
    app: Flask


@pytest.fixture
def live_server(app) -> LiveServer:
    """Serve the test's ``app`` (fresh database, injected clock) in a background thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    # Chromium keeps connections alive; do not wait for their threads when closing.
    server.block_on_close = False
    # A short poll interval: shutdown() waits for one poll, 0.5 s by default, on every test.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://127.0.0.1:{server.server_port}", app=app)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------- browser and pages

@pytest.fixture(scope="session")
def browser() -> Browser:
    """One headless Chromium (Debian's, never a downloaded one) for the whole session."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def viewport(request) -> str:
    """The screen of ``page``: "tablet" (default) or "phone", chosen by indirect parametrize."""
    name = getattr(request, "param", "tablet")
    if name not in VIEWPORTS:
        raise ValueError(f"unknown viewport {name!r}; use one of {sorted(VIEWPORTS)}")
    return name


@pytest.fixture
def open_page(request, browser, live_server):
    """A factory: ``open_page(viewport="phone")`` gives a page in a new, isolated context.

    Each page is screenshotted (full page) when the test ends, into
    test-artifacts/screenshots/<test name>[-N].png.
    """
    opened: list[tuple[object, Page]] = []

    def open_(viewport: str = "tablet") -> Page:
        context = browser.new_context(base_url=live_server.url, locale="zh-CN",
                                      timezone_id="Asia/Shanghai", **VIEWPORTS[viewport])
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page = context.new_page()
        opened.append((context, page))
        return page

    yield open_

    reports = request.node.stash.get(_reports, {})
    failed = any(r.failed for r in reports.values())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    for i, (context, page) in enumerate(opened, start=1):
        target = ARTIFACTS / (stem + ("" if i == 1 else f"-{i}"))
        try:
            page.screenshot(path=str(target.with_suffix(".png")), full_page=True)
            if failed:
                target.with_suffix(".html").write_text(page.content(), encoding="utf-8")
                print(f"browser page at failure: {page.url} -> {target}.png / .html")
        finally:
            context.close()


@pytest.fixture
def page(open_page, viewport) -> Page:
    """A page on the live server, 1280x800 tablet by default (see ``viewport``)."""
    return open_page(viewport)


# ---------------------------------------------------------------- helpers

def log_in(page: Page, username: str, password: str = TEST_PASSWORD) -> None:
    """Sign in through the login form and wait until the browser has left /login."""
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page).not_to_have_url(re.compile(r"/login"))
