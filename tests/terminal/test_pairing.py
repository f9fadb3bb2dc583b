"""Pairing a tablet once, what an unpaired or revoked tablet sees, the admin page."""
from __future__ import annotations

from sqlalchemy import select

from tests.conftest import TABLET, csrf_from, login, post_form


def test_paired_tablet_shows_window_department_and_staff_on_duty(tablet, city):
    page = tablet.get("/terminal/W01")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "1 号窗口" in html
    assert "户政支队" in html
    assert "王小明" in html
    assert "S001" in html
    assert page.headers["Cache-Control"] == "no-store"
    state = tablet.get("/terminal/W01/state", headers=TABLET).get_json()
    assert state["window"]["code"] == "W01"
    assert state["staff"] == {"name": "王小明", "staff_number": "S001"}
    assert state["pending"] is None


def test_secret_cookie_is_httponly_strict_and_limited_to_terminal_paths(client, city, issue_code):
    _, code = issue_code(city.window)
    resp = post_form(client, "/terminal/pair", {"window_code": "W01", "code": code})
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/terminal/" in cookie


def test_unpaired_tablet_sees_nothing_of_the_hall(client, city):
    for url in ("/terminal/W01", "/terminal/NO-SUCH"):
        page = client.get(url)
        html = page.get_data(as_text=True)
        assert page.status_code == 403
        assert "尚未配对" in html
        assert "1 号窗口" not in html
        assert "户政支队" not in html
        assert "王小明" not in html
    assert client.get("/terminal/W01/state", headers=TABLET).status_code == 401


def test_pairing_code_works_once_and_only_for_its_window(client, app, city, issue_code):
    _, code = issue_code(city.window)
    wrong_window = post_form(client, "/terminal/pair", {"window_code": "W02", "code": code})
    assert wrong_window.status_code == 200
    assert "配对码无效" in wrong_window.get_data(as_text=True)
    assert post_form(client, "/terminal/pair", {"window_code": "W01", "code": code}).status_code == 302
    other = app.test_client()
    again = post_form(other, "/terminal/pair", {"window_code": "W01", "code": code})
    assert again.status_code == 200
    assert "配对码无效" in again.get_data(as_text=True)
    assert other.get("/terminal/W01").status_code == 403


def test_expired_pairing_code_is_refused(client, city, issue_code, clock):
    from datetime import timedelta

    _, code = issue_code(city.window)
    clock.set(clock.now + timedelta(hours=25))
    resp = post_form(client, "/terminal/pair", {"window_code": "W01", "code": code})
    assert "配对码无效" in resp.get_data(as_text=True)


def test_tablet_paired_to_one_window_sees_nothing_of_another(tablet, city):
    assert tablet.get("/terminal/W02").status_code == 403
    assert tablet.get("/terminal/W02/state", headers=TABLET).status_code == 401


def test_json_endpoints_need_the_custom_header(tablet):
    assert tablet.get("/terminal/W01/state").status_code == 401
    assert tablet.post("/terminal/W01/ratings", json={"level": 5}).status_code == 401


def test_admin_issues_code_and_revokes_a_tablet_which_then_sees_nothing(app, tablet, city, db):
    from feedback.audit.models import AuditEvent
    from feedback.terminal.models import Terminal

    admin = app.test_client()
    login(admin, city.users.admin.username)
    page = admin.get("/admin/terminals")
    assert page.status_code == 200
    assert "W01" in page.get_data(as_text=True)
    issued = admin.post("/admin/terminals", data={"window_id": city.other_window.id, "name": "税务评价器",
                                                  "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert issued.status_code == 200
    assert 'id="pairing-code"' in issued.get_data(as_text=True)

    paired = db.session.scalar(select(Terminal).where(Terminal.window_id == city.window.id,
                                                      Terminal.paired_at.is_not(None)))
    page = admin.get("/admin/terminals")
    resp = admin.post(f"/admin/terminals/{paired.id}/revoke", data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                                                  "confirm": "yes"})
    assert resp.status_code == 302

    assert tablet.get("/terminal/W01").status_code == 403
    assert "王小明" not in tablet.get("/terminal/W01").get_data(as_text=True)
    assert tablet.get("/terminal/W01/state", headers=TABLET).status_code == 401
    assert tablet.post("/terminal/W01/ratings", headers={**TABLET, "Idempotency-Key": "k"},
                       json={"level": 5, "record_id": None, "rated_at": "2026-11-23T02:00:00Z"}).status_code == 401
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"terminal.issue", "terminal.pair", "terminal.revoke"} <= actions


def test_revoking_a_tablet_without_the_ticked_confirmation_is_refused(app, tablet, city, db):
    from feedback.audit.models import AuditEvent
    from feedback.terminal.models import Terminal

    admin = app.test_client()
    login(admin, city.users.admin.username)
    paired = db.session.scalar(select(Terminal).where(Terminal.window_id == city.window.id,
                                                      Terminal.paired_at.is_not(None)))
    page = admin.get("/admin/terminals").get_data(as_text=True)
    assert f'id="confirm-terminal-{paired.id}" name="confirm" value="yes" required' in page, \
        "the revoke form lacks its 确认撤销 checkbox"
    resp = admin.post(f"/admin/terminals/{paired.id}/revoke", data={"csrf_token": csrf_from(page)},
                      follow_redirects=True)
    assert resp.status_code == 200
    assert "请先勾选“确认撤销”" in resp.get_data(as_text=True), "the refusal must say what to do"
    db.session.expire_all()
    assert db.session.get(Terminal, paired.id).revoked_at is None, "the tablet must stay paired"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "terminal.revoke")) is None
    assert tablet.get("/terminal/W01").status_code == 200, "the tablet must keep working"


def test_terminal_admin_page_is_for_admins_only(app, city):
    client = app.test_client()
    assert client.get("/admin/terminals").status_code == 302  # to the login page
    login(client, city.users.supervisor.username)
    assert client.get("/admin/terminals").status_code == 403


def test_unknown_paths_of_the_terminal_blueprint_are_not_found(client):
    assert client.get("/terminal/W01/nope").status_code == 404
