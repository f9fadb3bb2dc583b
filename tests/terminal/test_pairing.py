"""Pairing a tablet once, what an unpaired or revoked tablet sees, the admin page."""
from __future__ import annotations

from sqlalchemy import select

from tests.conftest import csrf_from, login, post_form
from tests.terminal.conftest import TABLET


def test_paired_tablet_shows_window_department_and_staff_on_duty(tablet, hall):
    page = tablet.get("/terminal/GA-01")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "1 号窗口" in html and "市公安局" in html and "张三" in html and "GA0001" in html
    assert page.headers["Cache-Control"] == "no-store"
    state = tablet.get("/terminal/GA-01/state", headers=TABLET).get_json()
    assert state["window"]["code"] == "GA-01"
    assert state["staff"] == {"name": "张三", "staff_number": "GA0001"}
    assert state["pending"] is None


def test_secret_cookie_is_httponly_strict_and_limited_to_terminal_paths(client, hall, issue_code):
    _, code = issue_code(hall.window)
    resp = post_form(client, "/terminal/pair", {"window_code": "GA-01", "code": code})
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/terminal/" in cookie


def test_unpaired_tablet_sees_nothing_of_the_hall(client, hall):
    for url in ("/terminal/GA-01", "/terminal/NO-SUCH"):
        page = client.get(url)
        html = page.get_data(as_text=True)
        assert page.status_code == 403
        assert "尚未配对" in html and "1 号窗口" not in html and "市公安局" not in html and "张三" not in html
    assert client.get("/terminal/GA-01/state", headers=TABLET).status_code == 401


def test_pairing_code_works_once_and_only_for_its_window(client, app, hall, issue_code):
    _, code = issue_code(hall.window)
    wrong_window = post_form(client, "/terminal/pair", {"window_code": "SW-01", "code": code})
    assert wrong_window.status_code == 200 and "配对码无效" in wrong_window.get_data(as_text=True)
    assert post_form(client, "/terminal/pair", {"window_code": "GA-01", "code": code}).status_code == 302
    other = app.test_client()
    again = post_form(other, "/terminal/pair", {"window_code": "GA-01", "code": code})
    assert again.status_code == 200 and "配对码无效" in again.get_data(as_text=True)
    assert other.get("/terminal/GA-01").status_code == 403


def test_expired_pairing_code_is_refused(client, hall, issue_code, clock):
    from datetime import timedelta

    _, code = issue_code(hall.window)
    clock.set(clock.now + timedelta(hours=25))
    resp = post_form(client, "/terminal/pair", {"window_code": "GA-01", "code": code})
    assert "配对码无效" in resp.get_data(as_text=True)


def test_tablet_paired_to_one_window_sees_nothing_of_another(tablet, hall):
    assert tablet.get("/terminal/SW-01").status_code == 403
    assert tablet.get("/terminal/SW-01/state", headers=TABLET).status_code == 401


def test_json_endpoints_need_the_custom_header(tablet):
    assert tablet.get("/terminal/GA-01/state").status_code == 401
    assert tablet.post("/terminal/GA-01/ratings", json={"level": 5}).status_code == 401


def test_admin_issues_code_and_revokes_a_tablet_which_then_sees_nothing(app, tablet, hall, make_user, db):
    from feedback.audit.models import AuditEvent
    from feedback.evaluations.models import Terminal

    make_user("admin", username="boss")
    admin = app.test_client()
    login(admin, "boss")
    page = admin.get("/admin/terminals")
    assert page.status_code == 200 and "GA-01" in page.get_data(as_text=True)
    issued = admin.post("/admin/terminals", data={"window_id": hall.other_window.id, "name": "税务评价器",
                                                  "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert issued.status_code == 200 and 'id="pairing-code"' in issued.get_data(as_text=True)

    paired = db.session.scalar(select(Terminal).where(Terminal.window_id == hall.window.id,
                                                      Terminal.paired_at.is_not(None)))
    page = admin.get("/admin/terminals")
    resp = admin.post(f"/admin/terminals/{paired.id}/revoke", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 302

    assert tablet.get("/terminal/GA-01").status_code == 403
    assert "张三" not in tablet.get("/terminal/GA-01").get_data(as_text=True)
    assert tablet.get("/terminal/GA-01/state", headers=TABLET).status_code == 401
    assert tablet.post("/terminal/GA-01/ratings", headers={**TABLET, "Idempotency-Key": "k"},
                       json={"level": 5, "record_id": None, "rated_at": "2026-11-23T02:00:00Z"}).status_code == 401
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"terminal.issue", "terminal.pair", "terminal.revoke"} <= actions


def test_terminal_admin_page_is_for_admins_only(app, hall, make_user):
    make_user("supervisor", username="sup")
    client = app.test_client()
    assert client.get("/admin/terminals").status_code == 302  # to the login page
    login(client, "sup")
    assert client.get("/admin/terminals").status_code == 403
