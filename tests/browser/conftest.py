"""Real-browser fixtures: headless Chromium (Debian's chromium-headless-shell; Playwright, sync
API) against a live server.

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
* Accessibility: every page is checked with axe-core (tests/support/axe, WCAG 2.1 A/AA and
  best-practice rules) after each document's ``load`` and once more on the final state when
  the test ends; any violation fails the test at teardown with the rule, the element and
  the URL. A check runs in the page while the test goes on; a page left before its check
  ends is not reported (tests/browser/test_accessibility.py waits for each page it tours).
  ``FEEDBACK_AXE_LOG=<file>`` also appends every check (page state) as a JSON line.
"""
from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import dataclass, field

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from feedback.config import PROJECT_ROOT
from tests.conftest import BACKENDS, TEST_PASSWORD, fresh_database

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
DEFAULT_TIMEOUT_MS = 10_000
# Debian's chromium-headless-shell (built from the chromium source package: the same Blink, V8
# and rendering, without the full browser's UI layers; what Playwright itself runs headless). It
# takes about a third less CPU than /usr/bin/chromium for the same pages, and the suite is bound
# by the machine's two cores. /usr/bin/chromium is the fallback for a contributor without it.
CHROMIUM = next((p for p in ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium") if os.access(p, os.X_OK)),
                "/usr/bin/chromium")
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

# ---------------------------------------------------------------- axe-core

AXE_SOURCE = (PROJECT_ROOT / "tests" / "support" / "axe" / "axe.min.js").read_text(encoding="utf-8")
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# Runs in every document of the context (init scripts ignore the page's CSP). Only the top
# frame checks, only HTML documents (not a JSON or PDF response Chromium renders itself), one
# run at a time (axe refuses concurrent runs): after ``load``, and on ``__axeCheck('final')``
# unless the DOM has not changed since the last run began (a run costs 0.1-0.6 s).
AXE_RUNNER = """
(() => {
  if (window.top !== window) return;
  const options = {runOnly: {type: 'tag', values: %s}, resultTypes: ['violations']};
  let chain = Promise.resolve();
  let changed = true;
  new MutationObserver(() => { changed = true; }).observe(document,
    {subtree: true, childList: true, attributes: true, characterData: true});
  const report = (reason, payload) => window.__axeReport(Object.assign({reason, url: location.href}, payload));
  window.__axeCheck = (reason) => {
    chain = chain.then(async () => {
      if (document.contentType !== 'text/html' || !window.axe || !changed) return;
      changed = false;
      try {
        const result = await window.axe.run(document, options);
        await report(reason, {violations: result.violations.map(v => ({
          id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.map(n => ({target: n.target.map(String), html: n.html}))}))});
      } catch (e) {
        await report(reason, {error: String(e && e.message || e)});
      }
    });
    return chain;
  };
  window.addEventListener('load', () => setTimeout(() => window.__axeCheck('load'), 0));
})();
""" % json.dumps(AXE_TAGS)


@dataclass
class AxeLog:
    """What axe found in the pages of one test: each check (page state) and its violations."""

    checks: list[dict] = field(default_factory=list)

    def record(self, source, payload: dict) -> None:
        self.checks.append(payload)

    def violations(self) -> dict[tuple, dict]:
        """Distinct violations by (rule, path, first target), with their first report."""
        found: dict[tuple, dict] = {}
        for check in self.checks:
            path = re.sub(r"^https?://[^/]+", "", check["url"])
            for v in check.get("violations", []):
                for node in v["nodes"]:
                    key = (v["id"], path, " ".join(node["target"][:1]))
                    found.setdefault(key, {"rule": v["id"], "impact": v["impact"], "help": v["help"],
                                           "path": path, "target": node["target"][:1],
                                           "html": _trim(node["html"])})
        return found

    def errors(self) -> list[str]:
        return [f"{c['url']}: {c['error']}" for c in self.checks if c.get("error")]

    def message(self) -> str:
        lines = [f"axe-core found accessibility violations ({', '.join(AXE_TAGS)}):"]
        for v in self.violations().values():
            lines.append(f"  [{v['impact']}] {v['rule']} ({v['help']}) at {v['path']}\n"
                         f"      {' '.join(v['target'])}: {v['html']}")
        lines += [f"  axe could not run: {e}" for e in self.errors()]
        return "\n".join(lines)


def _trim(html: str, limit: int = 160) -> str:
    html = re.sub(r"\s+", " ", html).strip()
    return html if len(html) <= limit else html[:limit - 1] + "…"


def _axe_final_check(page: Page) -> None:
    """Check the page's final state and wait for any run still pending (a page left on an
    error or already closed has nothing more to check)."""
    if page.is_closed():
        return
    try:
        page.evaluate("() => window.__axeCheck ? window.__axeCheck('final') : null")
    except Exception as exc:  # navigation raced the teardown, or the page crashed
        print(f"axe final check skipped on {page.url}: {exc}")


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
    """One headless Chromium (Debian's headless shell, never a downloaded one) for the whole session."""
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
    axe = AxeLog()

    def open_(viewport: str = "tablet") -> Page:
        context = browser.new_context(base_url=live_server.url, locale="zh-CN",
                                      timezone_id="Asia/Shanghai", **VIEWPORTS[viewport])
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        # axe-core needs JavaScript: a context without it (the wallboard's "wall_nojs") is
        # not checked; its page is checked with JavaScript on by the wallboard tests.
        if VIEWPORTS[viewport].get("java_script_enabled", True):
            context.expose_binding("__axeReport", axe.record)
            context.add_init_script(AXE_SOURCE)
            context.add_init_script(AXE_RUNNER)
        page = context.new_page()
        opened.append((context, page))
        return page

    yield open_

    reports = request.node.stash.get(_reports, {})
    failed = any(r.failed for r in reports.values())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    for context, page in opened:
        _axe_final_check(page)
    if os.environ.get("FEEDBACK_AXE_LOG"):
        with open(os.environ["FEEDBACK_AXE_LOG"], "a", encoding="utf-8") as log:
            for check in axe.checks:
                log.write(json.dumps(dict(check, test=request.node.nodeid), ensure_ascii=False) + "\n")
    for i, (context, page) in enumerate(opened, start=1):
        target = ARTIFACTS / (stem + ("" if i == 1 else f"-{i}"))
        try:
            page.screenshot(path=str(target.with_suffix(".png")), full_page=True)
            if failed:
                target.with_suffix(".html").write_text(page.content(), encoding="utf-8")
                print(f"browser page at failure: {page.url} -> {target}.png / .html")
        finally:
            context.close()
    if not failed and (axe.violations() or axe.errors()):
        pytest.fail(axe.message(), pytrace=False)


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
