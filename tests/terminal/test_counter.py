"""The window staff's 办结 page and the printable QR page, scoped per role."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import login, post_form
from tests.terminal.conftest import TABLET


def test_window_staff_completes_a_record_that_then_waits_on_the_tablet(app, tablet, window_staff, hall, db):
    from feedback.audit.models import AuditEvent
    from feedback.evaluations.models import ServiceRecord

    staff = app.test_client()
    login(staff, "staff_ga")
    page = staff.get("/counter")
    assert page.status_code == 200 and "户口迁入登记" in page.get_data(as_text=True)
    assert "完税证明开具" not in page.get_data(as_text=True)  # another department's item
    resp = post_form(staff, "/counter", {"window_id": hall.window.id, "service_item_id": hall.item.id,
                                         "citizen_kind": "person", "citizen_phone": "138 0013 8000",
                                         "citizen_name": "王五"})
    assert resp.status_code == 302
    record = db.session.scalar(select(ServiceRecord))
    assert (record.source, record.window_id, record.staff_id, record.citizen_phone) == (
        "counter", hall.window.id, hall.staff.id, "+8613800138000")
    done = staff.get(resp.headers["Location"]).get_data(as_text=True)
    assert record.record_number in done and f"/counter/records/{record.id}/qr" in done
    assert tablet.get("/terminal/GA-01/state", headers=TABLET).get_json()["pending"]["id"] == record.id
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "record.complete")) is not None


def test_window_staff_cannot_complete_at_another_window_or_with_another_departments_item(app, window_staff, hall, db):
    from feedback.directory.models import ServiceItem
    from feedback.evaluations.models import ServiceRecord

    staff = app.test_client()
    login(staff, "staff_ga")
    other_item = db.session.scalar(select(ServiceItem).where(ServiceItem.code == "I-SW"))
    for data in ({"window_id": hall.other_window.id, "service_item_id": hall.item.id},
                 {"window_id": hall.window.id, "service_item_id": other_item.id}):
        resp = post_form(staff, "/counter", {**data, "citizen_kind": "person"})
        assert resp.status_code == 200
    assert db.session.scalar(select(ServiceRecord)) is None


def test_window_staff_without_staff_link_is_told_so(app, make_user, hall):
    make_user("window_staff", departments=[hall.department], username="unlinked")
    client = app.test_client()
    login(client, "unlinked")
    assert 'id="no-window"' in client.get("/counter").get_data(as_text=True)


def test_counter_page_is_for_window_staff_only(app, make_user, hall):
    make_user("handler", departments=[hall.department], username="handler1")
    client = app.test_client()
    assert client.get("/counter").status_code == 302
    login(client, "handler1")
    assert client.get("/counter").status_code == 403


@pytest.mark.parametrize("who, status", [
    ("staff_ga", 200),        # window staff of the record's window
    ("staff_sw", 404),        # window staff of another window
    ("handler_ga", 200),      # handler of the department
    ("handler_sw", 404),      # handler of another department
    ("supervisor", 200),
    ("admin", 200),
    (None, 302),              # anonymous: to the login page
])
def test_printable_qr_page_is_scoped_by_role(app, db, hall, window_staff, make_user, make_record, who, status):
    from feedback.directory.models import Staff

    make_user("handler", departments=[hall.department], username="handler_ga")
    make_user("handler", departments=[hall.other_department], username="handler_sw")
    make_user("supervisor", username="supervisor")
    make_user("admin", username="admin")
    sw = make_user("window_staff", departments=[hall.other_department], username="staff_sw")
    sw.staff = db.session.scalar(select(Staff).where(Staff.staff_number == "SW0001"))
    db.session.commit()
    record = make_record()
    client = app.test_client()
    if who:
        login(client, who)
    page = client.get(f"/counter/records/{record.id}/qr")
    png = client.get(f"/counter/records/{record.id}/qr.png")
    assert page.status_code == status and png.status_code == status
    if status == 200:
        html = page.get_data(as_text=True)
        assert "<svg" in html and record.record_number in html
        assert png.data.startswith(b"\x89PNG")


def test_qr_encodes_the_public_rating_link_which_rates_on_the_qr_channel(app, db, hall, make_record, make_user):
    from feedback.evaluations.models import Evaluation
    from feedback.terminal import service
    from tests.conftest import csrf_from

    record = make_record()
    url = service.rating_url(record)
    assert url.startswith("https://feedback.example.gov.cn/e/") and url.endswith("?via=qr")
    path = url[len("https://feedback.example.gov.cn"):]
    client = app.test_client()
    page = client.get(path)
    resp = client.post(path, data={"level": 5, "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 200
    assert db.session.scalar(select(Evaluation.channel)) == "qr"
