"""Every page a person uses, on the 10-inch tablet and the phone, checked by axe-core.

The ``page``/``open_page`` fixtures run axe-core (WCAG 2.1 A/AA and best-practice) on every
document and fail the test on any violation (tests/browser/conftest.py); this tour makes sure
every page is visited with real data in its tables: the public and citizen pages, the rating
link and the citizen's reply rating through their states, and each staff role's pages, found by
following the links a person would follow (a signed-in tour does not check again the public
pages the public tour checked). The list to cover comes from the app's url_map, so
a new GET page fails the tour until it is reachable (or excluded below with a reason).

A keyboard test walks a few representative pages with Tab only: every interactive element is
reached, and the focused element shows a visible focus indicator.
"""
from __future__ import annotations

import re
from collections import deque
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page
from werkzeug.exceptions import HTTPException

from tests.browser.conftest import log_in
from tests.conftest import walk_to
from tests.reports.conftest import activity  # noqa: F401  (the fixture: a month of ratings, tickets, publications)

pytestmark = pytest.mark.browser

# GET endpoints that are not pages a person reads (downloads, images, JSON, feeds), with why.
NOT_PAGES = {
    "static": "stylesheets, scripts, images",
    "core.healthz": "JSON health probe for the load balancer",
    "directory.export_csv": "CSV download", "directory.export_xlsx": "XLSX download",
    "statistics.rows_csv": "CSV download", "stats_workbench.download": "XLSX/CSV download",
    "tickets.export_csv": "CSV download", "tickets.export_xlsx": "XLSX download",
    "orders.export_csv": "CSV download", "orders.export_xlsx": "XLSX download",
    "reports.download_pdf": "PDF download", "reports.download_xlsx": "XLSX download",
    "public.results_data": "open-data download (CSV/JSON)", "public.stats_data": "open-data download (CSV/JSON)",
    "public.feed": "Atom feed", "counter.qr_png": "PNG image", "terminal.case_qr": "SVG image",
    "terminal.record_qr": "SVG image", "terminal.state": "the tablet's JSON poll",
    "tickets.photo": "an uploaded photo (image)",
    # The tablet's kiosk page needs a paired device; tests/browser/test_terminal.py drives it
    # (and so axe-checks it) through its pairing flow.
    "terminal.kiosk": "paired counter tablet, covered by test_terminal.py",
}
NOT_PAGE_PREFIXES = ("api.",)  # the JSON API (/api/v1/*), documented by /api/v1/openapi.json
# Pages visited once per argument value (each kind of directory table is a different table).
PER_ARGUMENT = {"directory.list", "console.directory_list", "public.stats_units"}

ROLES = {  # who: (username or None, where they start)
    "public": (None, ["/", "/public/", "/public/stats/window", "/public/stats/department", "/complaints/new",
                      "/complaints/lookup", "/login", "/terminal/pair", "/dev/sms", "/dev/voice"]),
    "handler": ("handler_ga", ["/console/"]),
    "window_staff": ("staff_ga01", ["/"]),
    "supervisor": ("super", ["/console/", "/wall/H1"]),
    "admin": ("boss", ["/admin/", "/admin/directory/", "/console/"]),
}


def required_endpoints(app) -> set[str]:
    out = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES or rule.endpoint.startswith(NOT_PAGE_PREFIXES):
            continue
        out.add(rule.endpoint)
    return out


def settle(page: Page) -> None:
    """Wait until axe has checked the page as it is now (the fixture reports it)."""
    page.evaluate("() => window.__axeCheck && window.__axeCheck('visit')")


def _key(endpoint: str, args: dict):
    return (endpoint, tuple(sorted(args.items()))) if endpoint in PER_ARGUMENT else endpoint


def _keys(app, urls: list[str]) -> set:
    """The crawl keys of ``urls`` (see crawl)."""
    adapter = app.url_map.bind("localhost")
    out = set()
    for url in urls:
        try:
            out.add(_key(*adapter.match(urlsplit(url).path, method="GET")))
        except HTTPException:
            continue
    return out


def crawl(page: Page, app, starts: list[str], seen: set) -> dict[str, str]:
    """Follow same-site links from ``starts``, one URL per endpoint (per argument for
    PER_ARGUMENT), skipping the keys in ``seen`` (filled in); return endpoint -> URL visited."""
    adapter = app.url_map.bind("localhost")
    visited: dict[str, str] = {}
    queue = deque(starts)
    while queue:
        url = queue.popleft()
        parts = urlsplit(url)
        if parts.netloc and not parts.netloc.startswith("127.0.0.1"):
            continue
        path = parts.path
        try:
            endpoint, args = adapter.match(path, method="GET")
        except HTTPException:
            continue
        if endpoint in NOT_PAGES or endpoint.startswith(NOT_PAGE_PREFIXES) or endpoint == "static":
            continue
        key = _key(endpoint, args)
        if key in seen:
            continue
        seen.add(key)
        response = page.goto(path)
        assert response is not None and response.status < 500, f"GET {path} answered {response and response.status}"
        if response.status >= 400:
            continue
        visited.setdefault(endpoint, path)
        settle(page)
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
        queue.extend(h for h in hrefs if h and not h.startswith(("#", "mailto:", "tel:", "javascript:")))
    return visited


@pytest.fixture
def town(db, clock, city, activity, make_ticket, make_record, issue_code):  # noqa: F811
    """The reports' month of activity, plus: a replied ticket (its /h/ link), a complaint (its
    case page), a recheck drawn, an API key, a paired terminal, an outbound SMS."""
    from feedback.accounts import service as accounts
    from feedback.evaluations import links
    from feedback.orders import service as orders
    from feedback.oversight import rechecks
    from feedback.reports import service as reports
    from feedback.terminal import tracking
    from feedback.tickets import service as t

    replied = make_ticket()
    walk_to(replied, "replied", city.users)
    complaint = make_ticket(source="complaint")
    closed_at = clock.now - timedelta(days=5)
    checked = make_ticket(now=closed_at - timedelta(days=1))
    walk_to(checked, "replied", city.users, now=closed_at - timedelta(hours=2))
    t.rate_handling(checked, "satisfied", "link", now=closed_at)
    db.session.commit()
    rechecks.draw(clock.now)
    accounts.create_api_key("窗口系统", ["records:write"])
    issue_code(city.window)
    record = make_record(citizen_phone="13700137000")
    orders.issue_order(actor=city.users.supervisor, content="请立即核实处理并书面报告。", due_working_days=3,
                       ticket=activity.late)
    reports.generate("2026-11", actor=city.users.supervisor)
    db.session.commit()
    return {
        "tablet_case": "/t/" + tracking.tracking_token(activity.late),
        "rating": re.sub(r"^https?://[^/]+", "", links.rating_url(record)),
        "rating_bad": re.sub(r"^https?://[^/]+", "", links.rating_url(make_record())),
        "handling": "/h/" + t.handling_token(replied),
        "complaint": complaint,
    }


def citizen_states(page: Page, town) -> set[str]:
    """The rating link, the reply rating and the complaint pages through their states."""
    page.goto(town["rating"])
    settle(page)
    page.locator("button.level-btn").first.click()  # the first face: the best level -> thanks
    page.wait_for_load_state()
    settle(page)
    page.goto(town["rating"])  # used: the link's closed state
    settle(page)
    page.goto(town["rating_bad"])
    page.locator("button.level-btn").last.click()  # the worst level -> reasons
    page.wait_for_load_state()
    settle(page)
    page.locator('input[name="reasons"]').first.check()
    page.get_by_role("button", name="提交评价").click()
    page.wait_for_load_state()
    settle(page)
    page.goto(town["handling"])
    settle(page)
    page.goto(town["tablet_case"])
    settle(page)
    page.goto("/complaints/new")
    page.get_by_role("button", name="提交投诉").click()  # empty: the errors state
    page.wait_for_load_state()
    settle(page)
    page.get_by_label("发生了什么").fill("1 号窗口要求提供办事指南以外的材料")
    page.get_by_label("发生时间").fill("2026-11-23T09:30")
    page.get_by_label("联系电话").fill("139 0013 9000")
    page.get_by_role("button", name="提交投诉").click()  # accepted: 303 to the receipt page
    page.wait_for_url(re.compile(r"/complaints/received(#\w+)?$"))
    settle(page)
    page.goto("/complaints/lookup")
    ticket = town["complaint"]
    page.get_by_label("投诉编号").fill(ticket.complaint.case_number)
    page.get_by_label("查询码").fill(ticket._secret)
    page.get_by_role("button", name="查询").click()  # -> the case page
    page.wait_for_load_state()
    settle(page)
    return {"rating.link", "handling.rate", "terminal.case", "complaints.received", "complaints.case"}


@pytest.mark.parametrize("viewport", ["tablet", "phone"], indirect=True)
def test_every_page_of_every_audience_has_no_axe_violation(open_page, live_server, town, viewport):
    app = live_server.app
    required = required_endpoints(app)
    covered: set[str] = set()
    public: set = set()  # the pages the public tour checked
    for role, (username, starts) in ROLES.items():
        page = open_page(viewport)
        if username:
            log_in(page, username)
        # A signed-in tour skips the public pages already checked (their body is everybody's;
        # the staff header around it is checked on the staff's own pages), not its start pages.
        seen = set() if role == "public" else public - _keys(app, starts)
        covered |= set(crawl(page, app, starts, seen))
        if role == "public":
            public = set(seen)
            covered |= citizen_states(page, town)
    missing = sorted(required - covered)
    assert not missing, ("GET pages nobody reached in the tour (link them, visit them here, or list them in "
                         f"NOT_PAGES with a reason): {missing}")


# ---------------------------------------------------------------- keyboard

FOCUSABLE = ("a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), "
             "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])")

FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
  const shadow = s.boxShadow && s.boxShadow !== 'none';
  // Focus inside a control's own parts (a date field's calendar button) leaves the host
  // without :focus; Chromium draws that part's focus ring itself.
  const inner = !el.matches(':focus');
  return {key: el.outerHTML.slice(0, 120), visible: outline || !!shadow || inner,
          id: el.dataset.kbd || null};
}"""


def tab_through(page: Page) -> None:
    """Tab from the top of the page to its end; every focusable element must be reached with a
    visible focus indicator."""
    count = page.evaluate("""(sel) => {
      let i = 0;
      for (const el of document.querySelectorAll(sel)) {
        const r = el.getBoundingClientRect(), s = getComputedStyle(el);
        if (s.visibility === 'hidden' || s.display === 'none' || (r.width === 0 && r.height === 0)) continue;
        el.dataset.kbd = String(i++);
      }
      return i;
    }""", FOCUSABLE)
    reached, invisible, first = set(), [], None
    page.locator("body").focus()
    for _ in range(3 * count + 40):  # a date-time field takes several Tabs (one per segment)
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STATE)
        if state is None:
            continue
        if state["id"] is not None:
            if state["id"] == first and len(reached) > 1:
                break  # wrapped around
            first = first or state["id"]
            reached.add(state["id"])
        if not state["visible"]:
            invisible.append(state["key"])
        if len(reached) == count:
            break
    unreached = page.evaluate("""(ids) => [...document.querySelectorAll('[data-kbd]')]
        .filter(el => !ids.includes(el.dataset.kbd)).map(el => el.outerHTML.slice(0, 120))""", sorted(reached))
    assert not unreached, f"{page.url}: Tab never reaches {unreached}"
    assert not invisible, f"{page.url}: no visible focus outline on {invisible}"


@pytest.mark.parametrize("viewport", ["tablet", "phone"], indirect=True)
def test_keyboard_alone_reaches_everything_with_visible_focus(page, open_page, town, viewport):
    for path in ("/public/", "/complaints/new", town["rating"]):
        page.goto(path)
        tab_through(page)
    staff = open_page(viewport)
    log_in(staff, "handler_ga")
    staff.goto("/console/tickets")
    tab_through(staff)
