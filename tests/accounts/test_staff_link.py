"""A staff record (工号) linked to any staff-facing account — handler, window staff, supervisor —
in the admin form and the CLI, checked and audited; the linked person then never sees a ticket
about a rating of themselves (issue 17, M6)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from feedback.accounts.models import User
from feedback.audit.models import AuditEvent
from tests.conftest import TEST_PASSWORD, login, post_form


def _last(db, action: str) -> AuditEvent:
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id.desc())).first()


@pytest.mark.parametrize("username,role,department", [("handler_hz", "handler", "GA-HZ"), ("super", "supervisor", None)])
def test_a_handler_or_supervisor_who_is_also_the_rated_staff_member_is_linked_and_never_sees_the_ticket(
        app, db, city, make_ticket, username, role, department):
    ticket = make_ticket()  # a bad rating of 王小明 (S001) at W01, 户政支队
    own = app.test_client()
    login(own, username)
    assert own.get(f"/console/tickets/{ticket.id}").status_code == 200
    assert f'data-ticket="{ticket.id}"' in own.get("/console/tickets").get_data(as_text=True)

    admin = app.test_client()
    login(admin, "boss")
    user = db.session.scalar(sa.select(User).where(User.username == username))
    form = {"display_name": user.display_name, "role": role, "departments": [department] if department else [],
            "active": "y", "staff_number": "S001"}
    resp = post_form(admin, f"/admin/users/{user.id}", form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    db.session.expire_all()
    assert db.session.get(User, user.id).staff_id == city.staff.id
    change = _last(db, "user.update")
    assert (change.detail["before"]["staff_number"], change.detail["after"]["staff_number"]) == (None, "S001")

    assert own.get(f"/console/tickets/{ticket.id}").status_code == 404
    assert f'data-ticket="{ticket.id}"' not in own.get("/console/tickets").get_data(as_text=True)


def test_an_administrator_account_is_not_linked_to_a_staff_record(app, db, city):
    admin = app.test_client()
    login(admin, "boss")
    form = {"display_name": "管理员", "role": "admin", "departments": [], "active": "y", "staff_number": "S001"}
    html = post_form(admin, f"/admin/users/{city.users.admin.id}", form).get_data(as_text=True)
    assert "系统管理员账号不能关联工号" in html
    db.session.expire_all()
    assert db.session.get(User, city.users.admin.id).staff_id is None


def test_a_link_to_a_staff_record_deactivated_since_survives_an_edit_of_the_account(app, db, city):
    city.staff.active = False
    db.session.commit()
    admin = app.test_client()
    login(admin, "boss")
    form = {"display_name": "新名字", "role": "window_staff", "departments": ["GA-HZ"], "active": "y",
            "staff_number": "S001"}
    assert post_form(admin, f"/admin/users/{city.users.window_staff.id}", form).status_code == 302
    db.session.expire_all()
    assert db.session.get(User, city.users.window_staff.id).staff_id == city.staff.id
    # A new link to it is refused.
    form = {"display_name": "户政办理员", "role": "handler", "departments": ["GA-HZ"], "active": "y",
            "staff_number": "S001"}
    assert "已停用" in post_form(admin, f"/admin/users/{city.users.handler2.id}", form).get_data(as_text=True)


def test_the_cli_links_a_staff_record_to_a_handler_or_supervisor_checked_and_audited(app, db, city):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["users", "create", "wang_h", "--role", "handler", "--department", "GA-HZ",
                                  "--staff", "S001", "--password", TEST_PASSWORD])
    assert created.exit_code == 0, created.output
    assert db.session.scalar(sa.select(User.staff_id).where(User.username == "wang_h")) == city.staff.id

    linked = runner.invoke(args=["users", "link-staff", "super", "S002"])
    assert linked.exit_code == 0, linked.output
    db.session.expire_all()
    assert db.session.get(User, city.users.supervisor.id).staff_id == city.other_staff.id
    event = _last(db, "user.staff_link")
    assert (event.detail["before"], event.detail["after"]) == (None, "S002")

    refused = runner.invoke(args=["users", "link-staff", "boss", "S001"])
    assert refused.exit_code == 2 and "系统管理员账号不能关联工号" in refused.output
    unknown = runner.invoke(args=["users", "link-staff", "super", "NOPE"])
    assert unknown.exit_code == 2 and "工号 NOPE 不存在" in unknown.output
    nobody = runner.invoke(args=["users", "link-staff", "nobody", "S001"])
    assert nobody.exit_code == 2 and "用户 nobody 不存在" in nobody.output

    unlinked = runner.invoke(args=["users", "link-staff", "super", "--unlink"])
    assert unlinked.exit_code == 0, unlinked.output
    db.session.expire_all()
    assert db.session.get(User, city.users.supervisor.id).staff_id is None
    event = _last(db, "user.staff_link")
    assert (event.detail["before"], event.detail["after"]) == ("S002", None)
