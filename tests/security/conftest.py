"""The security suite's ``targets``: on the root ``city``, one object of every kind a route
can name, and a client per role (users, API keys of every scope, a paired tablet).

Roles (the columns of the access matrix):

* ``anonymous``; ``window_staff`` (staff_ga01 at 户政支队's window W01);
  ``other_handler`` (市场监管局); ``handler`` (市公安局 and below, the assignee);
  ``supervisor``; ``admin``;
* ``tablet``: a counter tablet paired to W01 (its secret cookie, no user);
* ``api:<scope>``: a bearer key with only that scope, for each of the seven scopes;
* ``api:other``: a key with every scope, limited to 市场监管局 (another department).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from feedback.evaluations import links
from feedback.terminal import service as terminals
from tests.conftest import TEST_PASSWORD, csrf_from, walk_to

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
SCOPES = ["records:write", "records:read", "ratings:write", "ratings:read", "complaints:write", "complaints:read",
          "tickets:read"]
USER_ROLES = ["window_staff", "other_handler", "handler", "supervisor", "admin"]
USERNAMES = {"window_staff": "staff_ga01", "other_handler": "handler_scj", "handler": "handler_ga",
             "supervisor": "super", "admin": "boss"}
ROLES = ["anonymous", *USER_ROLES, "tablet", *[f"api:{s}" for s in SCOPES], "api:other"]


@dataclass
class Targets:
    """Ids and tokens of one object of each kind a route can name, and what each role presents."""

    args: dict = field(default_factory=dict)  # URL argument name -> value
    api_keys: dict = field(default_factory=dict)  # role -> plain bearer key
    tablet_cookie: str = ""
    ns: SimpleNamespace = field(default_factory=SimpleNamespace)


@pytest.fixture
def targets(app, db, city, clock, make_record, make_ticket, make_department, make_user):
    """Everything a route of the app can name, committed."""
    from feedback.accounts import service as accounts
    from feedback.calendar import entries as calendar
    from feedback.complaints.models import ComplaintPhoto
    from feedback.complaints.service import Upload
    from feedback.exchange.models import ExchangeMessage
    from feedback.notifications.models import Notification
    from feedback.orders import service as orders
    from feedback.oversight import rechecks
    from feedback.publications import service as pubs
    from feedback.tickets import service as t

    users = city.users
    ticket = make_ticket()
    t.accept(ticket, users.handler)  # the handler is the assignee (may reveal the phone)
    replied = walk_to(make_ticket(), "replied", users)
    closed = walk_to(make_ticket(), "replied", users)
    t.rate_handling(closed, "satisfied", "link")
    complaint_ticket = make_ticket(source="complaint", photos=[Upload("a.png", PNG)])
    db.session.commit()
    pub = pubs.draft_for(closed, users.supervisor)
    pubs.publish(pub, users.supervisor)
    record = make_record(record_number="OPEN-1", citizen_phone="13700137000")
    note = Notification(user_id=users.handler.id, ticket_id=ticket.id, kind="reminder", title="期限提醒",
                        dedupe_key="security-matrix", deliver_after=clock.now - timedelta(hours=1))
    db.session.add(note)
    spare_dept = make_department(code="SPARE", name="备用部门")
    spare_user = make_user("handler", departments=[spare_dept], username="spare_user")
    spare_key, _ = accounts.create_api_key("spare", ["records:read"])
    calendar.set_day(date(2030, 5, 6), "holiday", "测试假日")
    calendar.mark_year_complete(2030, "测试")
    terminal, code = terminals.issue_pairing_code(city.window, actor=users.admin)
    spare_terminal, _ = terminals.issue_pairing_code(city.other_window, actor=users.admin)
    paired = terminals.pair_terminal(city.window, code)
    assert paired is not None
    keys = {f"api:{s}": accounts.create_api_key(f"key {s}", [s])[1] for s in SCOPES}
    keys["api:other"] = accounts.create_api_key("other dept", SCOPES, department_code=city.other.code)[1]
    db.session.commit()
    order = orders.issue_order(actor=users.supervisor, content="矩阵测试督办", due_working_days=5,
                               department=city.parent)
    db.session.commit()
    recheck_draw, _ = rechecks.draw(clock.now + timedelta(days=7))  # 抽查回访 of the week ``closed`` closed in
    db.session.commit()
    from feedback.reports.models import MonthlyReport  # a bulletin row without rendering (cheap per test)
    bulletin = MonthlyReport(month="2026-10", scope="city", status="draft", cases=[], snapshot={},
                             pdf=b"%PDF-1.4 matrix", xlsx=b"PK matrix")
    db.session.add(bulletin)
    db.session.commit()
    photo = db.session.query(ComplaintPhoto).one()
    message = db.session.query(ExchangeMessage).order_by(ExchangeMessage.id).first()
    evaluation = ticket.evaluation
    args = {
        "ticket_id": ticket.id, "action": "note", "photo_id": photo.id, "staff_id": city.staff.id,
        "notification_id": note.id, "pub_id": pub.id, "hit_id": "no-such-hit", "record_id": record.id,
        "evaluation_id": evaluation.id, "terminal_id": spare_terminal.id, "key_id": spare_key.id,
        "user_id": spare_user.id, "obj_id": spare_dept.id, "kind": "departments", "iso_date": "2030-05-06",
        "year": 2030, "name": "deadline_sweep", "code": city.window.code, "token": links.link_token(record),
        "case_number": complaint_ticket.complaint.case_number, "record_number": evaluation.record.record_number,
        "fmt": "csv", "filename": "css/app.css", "message_id": message.id,
        "hall_code": city.hall.code,  # the hall wallboard
        "unit": f"department:{city.child.code}", "month": "2026-11", "counter": "bad_tickets",  # statistics drill-down
        "order_id": order.id,  # a 督办单 to 市公安局 (the handler's department)
        "recheck_id": rechecks.pending()[0].id,  # the 抽查回访 of the ``closed`` ticket
        "report_id": bulletin.id,  # a monthly 通报 draft (October, the city)
    }
    ns = SimpleNamespace(ticket=ticket, replied=replied, closed=closed, complaint_ticket=complaint_ticket,
                         handling_token=t.handling_token(replied), pub=pub, record=record, terminal=terminal,
                         city=city)
    return Targets(args=args, api_keys=keys, tablet_cookie=f"{paired[0].id}.{paired[1]}", ns=ns)


def role_client(app, targets: Targets, role: str):
    """A test client acting as ``role``; API roles carry their key in ``client.api_headers``."""
    client = app.test_client()
    client.api_headers = {}
    if role in USERNAMES:
        page = client.get("/login")
        resp = client.post("/login", data={"username": USERNAMES[role], "password": TEST_PASSWORD,
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})
        assert resp.status_code == 302, f"{role} could not log in: {resp.status_code}"
    elif role == "tablet":
        client.set_cookie("fb_terminal", targets.tablet_cookie, path="/terminal/")
        client.api_headers = {"X-Terminal-Request": "1"}
    elif role.startswith("api:"):
        client.api_headers = {"Authorization": f"Bearer {targets.api_keys[role]}"}
    return client


def fresh_csrf(client) -> str:
    """A CSRF token of this client's session (the public complaint form has one for everybody)."""
    return csrf_from(client.get("/complaints/new").get_data(as_text=True))
