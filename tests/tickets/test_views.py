"""The console queue and ticket pages over HTTP: order, filters, actions, phone reveal, exports."""
import csv
import io

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from feedback.accounts import service as accounts
from feedback.audit.models import AuditEvent
from feedback.errors import ValidationError
from feedback.tickets import service as t
from tests.conftest import csrf_from, login, walk_to


def _act(client, ticket_id, action, data):
    page = client.get(f"/console/tickets/{ticket_id}")
    return client.post(f"/console/tickets/{ticket_id}/{action}",
                       data={**data, "csrf_token": csrf_from(page.get_data(as_text=True))})


def test_queue_lists_the_soonest_deadline_first_with_badges(client, db, city, clock, make_ticket):
    later = make_ticket()
    clock.set("2026-11-20T02:00:00+00:00")  # the Friday before: due earlier
    sooner = make_ticket(now=clock.now)
    clock.set("2026-11-23T02:00:00+00:00")
    login(client, "handler_ga")
    html = client.get("/console/tickets").get_data(as_text=True)
    assert html.index(f'data-ticket="{sooner.id}"') < html.index(f'data-ticket="{later.id}"')
    assert "2026-11-27 23:59" in html
    assert "剩 4 个工作日" in html
    assert "非常不满意" in html


def test_queue_filters(client, db, city, make_ticket):
    bad = make_ticket()
    complaint = make_ticket(source="complaint")
    triage = make_ticket(source="complaint", department=None)
    walk_to(bad, "accepted", city.users)
    db.session.commit()
    login(client, "handler_ga")

    def ids(query):
        html = client.get("/console/tickets" + query).get_data(as_text=True)
        return {i for i in (bad.id, complaint.id, triage.id) if f'data-ticket="{i}"' in html}

    assert ids("") == {bad.id, complaint.id}  # the triage queue is for supervisors
    assert ids("?source=complaint") == {complaint.id}
    assert ids("?state=accepted") == {bad.id}
    assert ids("?mine=1") == {bad.id}
    assert ids("?due=overdue") == set()
    assert ids(f"?department={city.other.id}") == set()
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/console/").get_data(as_text=True))})
    login(client, "super")
    assert ids("?department=none") == {triage.id}
    assert ids("") == {bad.id, complaint.id, triage.id}


def test_overdue_and_due_today_filters(client, db, city, clock, make_ticket):
    ticket = make_ticket()
    login(client, "handler_ga")
    clock.set("2026-11-30T05:00:00+00:00")  # due day, 13:00 Beijing
    assert f'data-ticket="{ticket.id}"' in client.get("/console/tickets?due=today").get_data(as_text=True)
    clock.set("2026-12-01T05:00:00+00:00")
    assert f'data-ticket="{ticket.id}"' in client.get("/console/tickets?due=overdue").get_data(as_text=True)
    assert f'data-ticket="{ticket.id}"' not in client.get("/console/tickets?due=today").get_data(as_text=True)


def test_handler_works_a_ticket_through_the_pages(client, db, city, clock, make_ticket):
    ticket = make_ticket()
    login(client, "handler_ga")
    clock.set("2026-11-23T03:00:00+00:00")
    assert _act(client, ticket.id, "accept", {}).status_code == 302
    resp = _act(client, ticket.id, "verify", {"contact": "本人", "reached": "yes", "findings": "属实",
                                               "callback_at": "2026-11-23T10:30"})
    assert resp.status_code == 302
    assert _act(client, ticket.id, "rectify", {"outcome": "rectified", "measures": "补充材料清单"}).status_code == 302
    assert _act(client, ticket.id, "reply", {"text": "已整改", "confirm": "yes"}).status_code == 302
    db.session.expire_all()
    assert ticket.state == "replied"
    assert ticket.callback_at.isoformat() == "2026-11-23T02:30:00+00:00"  # entered in Beijing time


def test_refused_action_shows_why_and_keeps_what_was_typed(client, db, city, make_ticket):
    ticket = walk_to(make_ticket(), "verified", city.users)
    db.session.commit()
    login(client, "handler_ga")
    resp = _act(client, ticket.id, "rectify", {"outcome": "", "measures": "我写了很多字"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "请选择处理结果" in html
    assert "我写了很多字" in html
    resp = _act(client, ticket.id, "accept", {})  # no form for it, but a crafted POST is refused clearly
    assert resp.status_code == 409
    assert "工单当前状态为“已核实”，不能签收" in resp.get_data(as_text=True)
    resp = _act(client, ticket.id, "extend", {"reason": "x"})
    assert resp.status_code == 403


def test_forms_offered_are_the_allowed_actions(client, db, city, make_ticket):
    ticket = make_ticket()
    login(client, "handler_ga")
    html = client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert 'action-accept' in html
    assert 'action-appeal' in html
    assert 'action-extend' not in html
    assert 'action-verify' not in html
    assert 'action-reply' not in html


def test_phone_is_masked_and_revealed_only_to_the_assignee_with_an_audit(client, db, city, make_ticket):
    ticket = make_ticket()
    login(client, "handler_ga")
    html = client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "138****8000" in html
    assert "+8613800138000" not in html
    assert "显示完整号码" not in html
    assert client.post(f"/console/tickets/{ticket.id}/phone",
                       data={"csrf_token": csrf_from(html)}).status_code == 403
    _act(client, ticket.id, "accept", {})
    html = client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "显示完整号码" in html
    resp = client.post(f"/console/tickets/{ticket.id}/phone", data={"csrf_token": csrf_from(html)})
    assert resp.status_code == 200
    assert "+8613800138000" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "ticket.phone_reveal")) == 1
    # The reveal is not sticky: the next view is masked again.
    assert "+8613800138000" not in client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)


def test_the_rated_staff_member_never_sees_their_ticket(client, db, city, make_ticket, make_user):
    ticket = make_ticket()
    rated = make_user("handler", departments=[city.child], username="wang_handler")
    rated.staff_id = city.staff.id
    db.session.commit()
    login(client, "wang_handler")
    assert client.get(f"/console/tickets/{ticket.id}").status_code == 404
    assert f'data-ticket="{ticket.id}"' not in client.get("/console/tickets").get_data(as_text=True)
    # 王小明's account covers the ticket's department, so only the exclusion keeps it off the list.
    assert city.child.id in accounts.department_scope(rated)
    assert rated not in t.assignable_users(ticket)
    assert {u.username for u in t.assignable_users(ticket)} == {"handler_ga", "handler_hz"}
    with pytest.raises(ValidationError, match="只能指派"):
        t.assign(ticket, city.users.supervisor, rated)


def test_csv_export_is_excel_friendly_and_masks_phones(client, db, city, make_ticket):
    make_ticket()
    make_ticket(source="complaint")
    login(client, "handler_ga")
    resp = client.get("/console/tickets/export.csv?source=evaluation")
    body = resp.data.decode("utf-8")
    assert resp.status_code == 200
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert len(rows) == 1
    assert rows[0]["联系电话"] == "138****8000"
    assert rows[0]["来源"] == "差评"
    assert "8613800138000" not in body


def test_xlsx_export_has_the_filtered_queue(client, db, city, make_ticket):
    make_ticket()
    make_ticket(source="complaint")
    login(client, "handler_ga")
    resp = client.get("/console/tickets/export.xlsx")
    ws = load_workbook(io.BytesIO(resp.data)).active
    values = list(ws.values)
    assert values[0][0] == "工单号"
    assert len(values) == 3
    assert all("+86" not in str(v) for row in values for v in row)


def test_supervisor_overview_counts_per_department(client, db, city, clock, make_ticket):
    make_ticket()
    make_ticket(source="complaint", department=None)
    clock.set("2026-12-05T02:00:00+00:00")
    login(client, "super")
    html = client.get("/console/tickets/overview").get_data(as_text=True)
    assert "户政支队" in html
    assert "待分办" in html


def test_console_home_shows_ticket_counts(client, db, city, make_ticket):
    make_ticket()
    login(client, "handler_ga")
    html = client.get("/console/").get_data(as_text=True)
    assert 'id="open-count">1<' in html
    assert "工单队列" in html
