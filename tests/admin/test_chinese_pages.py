"""Every staff and admin screen speaks Chinese: no snake_case, dotted or kebab codes and no JSON
in the text a person reads (code samples in <code>, and error traces, are for operators)."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from feedback.operations.service import run_job
from feedback.sms import outbox
from jobs.scheduler import load_jobs
from tests.conftest import login

HIDDEN = {"script", "style", "code", "pre", "template"}
CODE = re.compile(r"(?<![\w/.@:-])[a-z][a-z0-9]*(?:[_.-][a-z0-9]+)+(?![\w/.@-])")
JSON = re.compile(r"\{\s*\"|\":\s|\[\s*\{")


class VisibleText(HTMLParser):
    """The text of a page as a person sees it (not attributes, scripts or <code>)."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in HIDDEN:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in HIDDEN and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth and data.strip():
            self.chunks.append(data.strip())


# User names are data an administrator typed (the city's accounts), not codes.
USERNAMES = {"handler_ga", "handler_hz", "handler_scj", "staff_ga01"}


def raw_codes(html: str) -> list[str]:
    """Codes and JSON fragments in the visible text of ``html``."""
    parser = VisibleText()
    parser.feed(html)
    text = "\n".join(parser.chunks)
    return [c for c in CODE.findall(text) if c not in USERNAMES] + JSON.findall(text)


@pytest.fixture
def busy_city(db, city, clock, make_ticket, make_evaluation):
    """A city with what the staff pages list: tickets, a flagged rating, a text held by quiet
    hours, a job run of every job, and audit events (logins, a new user)."""
    make_ticket()
    make_ticket(source="complaint")
    flagged = make_evaluation(level=5, channel="hall_tablet")
    flagged.flagged, flagged.flag_reason = True, "同一终端 10 分钟内 5 次评价"
    msg = outbox.enqueue("+8613800138000", "测试短信", purpose="invitation")
    msg.error_code = "quiet-hours"
    db.session.commit()
    for name, spec in sorted(load_jobs().items()):
        if not spec.external:
            run_job(name, spec.func, clock.now)
    return city


STAFF_PAGES = {
    "boss": ["/admin/", "/admin/audit", "/admin/jobs", "/admin/jobs/deadline_sweep", "/admin/jobs/statistics_refresh",
             "/admin/users", "/admin/users/new", "/admin/apikeys", "/admin/terminals", "/admin/sms",
             "/admin/directory/departments/", "/admin/directory/halls/", "/admin/directory/windows/",
             "/admin/directory/staff/", "/admin/directory/service_items/", "/admin/directory/import",
             "/admin/exchange/", "/admin/calendar/", "/admin/reasons/"],
    "handler_hz": ["/console/", "/console/tickets", "/console/notifications/", "/console/directory/windows/",
                   "/console/directory/staff/", "/console/directory/staff/1"],
    "super": ["/console/tickets", "/console/ratings/flagged", "/console/tickets/overview"],
    "staff_ga01": ["/counter"],
}


@pytest.mark.parametrize("username", sorted(STAFF_PAGES))
def test_staff_and_admin_pages_show_no_raw_codes_or_json(client, db, busy_city, username):
    login(client, username)
    found = {}
    for url in STAFF_PAGES[username]:
        resp = client.get(url)
        assert resp.status_code == 200, f"{url} answered {resp.status_code}"
        codes = raw_codes(resp.get_data(as_text=True))
        if codes:
            found[url] = sorted(set(codes))
    assert not found, f"raw codes or JSON shown to {username}: {found}"


def test_the_ticket_page_and_the_audit_log_name_people_and_channels_in_chinese(app, client, db, busy_city,
                                                                              make_ticket):
    ticket = make_ticket()
    login(client, "handler_hz")
    html = client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert not raw_codes(html), raw_codes(html)
    assert "政务大厅平板电脑" in html
    client = app.test_client()
    login(client, "boss")
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert "登录成功" in audit and "login.success" not in audit
    assert "User 1" not in audit
    sms = client.get("/admin/sms").get_data(as_text=True)
    assert "夜间免打扰，延后发送" in sms, "the quiet-hours deferral reads in Chinese"


def test_a_directory_list_has_chinese_headers_and_the_export_keeps_the_file_format(client, db, busy_city):
    login(client, "boss")
    html = client.get("/admin/directory/windows/").get_data(as_text=True)
    for header in ("编码", "名称", "大厅编码", "部门编码"):
        assert f">{header}</th>" in html, f"column header {header} missing"
    assert ">hall_code<" not in html
    export = client.get("/admin/directory/windows/export.csv").get_data(as_text=True)
    assert export.lstrip("\ufeff").startswith("code,name,hall_code,department_code,active"), export[:80]
