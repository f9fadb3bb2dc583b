"""The window staff's 办结 page and the printable QR page, scoped per role."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from feedback.evaluations import links
from tests.conftest import TABLET, csrf_from, login, post_form


def test_window_staff_completes_a_record_that_then_waits_on_the_tablet(app, tablet, city, db):
    from feedback.audit.models import AuditEvent
    from feedback.evaluations.models import ServiceRecord

    staff = app.test_client()
    login(staff, "staff_ga01")
    page = staff.get("/counter")
    assert page.status_code == 200
    assert "户口迁移" in page.get_data(as_text=True)
    assert "营业执照" not in page.get_data(as_text=True)  # another department's item
    resp = post_form(staff, "/counter", {"window_id": city.window.id, "service_item_id": city.item.id,
                                         "citizen_kind": "person", "citizen_phone": "138 0013 8000",
                                         "citizen_name": "王五"})
    assert resp.status_code == 302
    record = db.session.scalar(select(ServiceRecord))
    assert (record.source, record.window_id, record.staff_id, record.citizen_phone) == (
        "counter", city.window.id, city.staff.id, "+8613800138000")
    done = staff.get(resp.headers["Location"]).get_data(as_text=True)
    assert record.record_number in done
    assert f"/counter/records/{record.id}/qr" in done
    assert tablet.get("/terminal/W01/state", headers=TABLET).get_json()["pending"]["id"] == record.id
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "record.complete")) is not None


def test_window_staff_cannot_complete_at_another_window_or_with_another_departments_item(app, city, db):
    from feedback.evaluations.models import ServiceRecord

    staff = app.test_client()
    login(staff, "staff_ga01")
    for data in ({"window_id": city.other_window.id, "service_item_id": city.item.id},
                 {"window_id": city.window.id, "service_item_id": city.other_item.id}):
        resp = post_form(staff, "/counter", {**data, "citizen_kind": "person"})
        assert resp.status_code == 200
    assert db.session.scalar(select(ServiceRecord)) is None


def test_window_staff_without_staff_link_is_told_so(app, make_user, city):
    make_user("window_staff", departments=[city.child], username="unlinked")
    client = app.test_client()
    login(client, "unlinked")
    assert 'id="no-window"' in client.get("/counter").get_data(as_text=True)


def test_counter_page_is_for_window_staff_only(app, city):
    client = app.test_client()
    assert client.get("/counter").status_code == 302
    login(client, city.users.handler2.username)  # a handler of the window's department
    assert client.get("/counter").status_code == 403


@pytest.mark.parametrize("who, status", [
    ("window_staff", 200),        # window staff of the record's window (W01)
    ("other_window_staff", 404),  # window staff of another window (W02)
    ("handler2", 200),            # handler of the record's department (户政支队)
    ("other", 404),               # handler of another department
    ("supervisor", 200),
    ("admin", 200),
    (None, 302),                  # anonymous: to the login page
])
def test_printable_qr_page_is_scoped_by_role(app, db, city, make_user, make_record, who, status):
    users = city.users
    users.other_window_staff = make_user("window_staff", departments=[city.other], username="staff_scj01")
    users.other_window_staff.staff = city.other_staff
    db.session.commit()
    record = make_record()
    client = app.test_client()
    if who:
        login(client, getattr(users, who).username)
    page = client.get(f"/counter/records/{record.id}/qr")
    png = client.get(f"/counter/records/{record.id}/qr.png")
    assert page.status_code == status
    assert png.status_code == status
    if status == 200:
        html = page.get_data(as_text=True)
        assert "<svg" in html
        assert record.record_number in html
        assert png.data.startswith(b"\x89PNG")


def test_qr_encodes_the_public_rating_link_which_rates_on_the_qr_channel(app, db, make_record):
    from feedback.evaluations.models import Evaluation

    record = make_record()
    url = links.rating_url(record)
    assert url.startswith("https://feedback.example.gov.cn/e/")
    assert url.endswith("?via=qr")
    path = url[len("https://feedback.example.gov.cn"):]
    client = app.test_client()
    page = client.get(path)
    resp = client.post(path, data={"level": 5, "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 303, "a stored rating redirects (post/redirect/get) to its thanks page"
    assert client.get(resp.headers["Location"]).status_code == 200
    assert db.session.scalar(select(Evaluation.channel)) == "qr"
