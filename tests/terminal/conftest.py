"""Fixtures of the terminal area: a window with its staff, item, accounts and a paired tablet."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest


@dataclass
class Hall:
    window: object
    other_window: object
    staff: object
    item: object
    department: object
    other_department: object


@pytest.fixture
def hall(db, make_department, make_hall, make_window, make_staff, make_item):
    """Window GA-01 of department GA (staff 张三, item I-GA) and window SW-01 of another department."""
    ga = make_department(code="GA", name="市公安局")
    sw = make_department(code="SW", name="市税务局")
    h = make_hall(code="SMZX", name="市民中心")
    window = make_window(code="GA-01", name="1 号窗口", hall=h, department=ga)
    other = make_window(code="SW-01", name="2 号窗口", hall=h, department=sw)
    staff = make_staff(staff_number="GA0001", name="张三", department=ga, windows=[window])
    make_staff(staff_number="SW0001", name="李四", department=sw, windows=[other])
    item = make_item(code="I-GA", name="户口迁入登记", department=ga)
    make_item(code="I-SW", name="完税证明开具", department=sw)
    db.session.commit()
    return Hall(window, other, staff, item, ga, sw)


@pytest.fixture
def window_staff(db, make_user, hall):
    """staff_ga (linked to 张三 at GA-01)."""
    user = make_user("window_staff", departments=[hall.department], username="staff_ga")
    user.staff = hall.staff
    db.session.commit()
    return user


@pytest.fixture
def issue_code(db, make_user):
    """issue_code(window) -> (terminal, pairing code), as an admin would."""
    from feedback.evaluations import service as ratings

    admin = make_user("admin", username="root")

    def issue(window):
        terminal, code = ratings.issue_pairing_code(window, actor=admin)
        db.session.commit()
        return terminal, code
    return issue


@pytest.fixture
def tablet(app, client, hall, issue_code):
    """A test client paired to GA-01 through /terminal/pair; returns the client."""
    from tests.conftest import post_form

    _, code = issue_code(hall.window)
    resp = post_form(client, "/terminal/pair", {"window_code": "GA-01", "code": code})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    assert resp.headers["Location"].endswith("/terminal/GA-01")
    return client


TABLET = {"X-Terminal-Request": "1"}


@pytest.fixture
def make_record(db, hall, clock):
    """make_record(**overrides): a record just completed at GA-01 by 张三."""
    from feedback.evaluations import service as ratings
    import itertools
    n = itertools.count(1)

    def make(**kw):
        kw.setdefault("record_number", f"R{next(n):04d}")
        kw.setdefault("service_item_code", "I-GA")
        kw.setdefault("window_code", "GA-01")
        kw.setdefault("staff_number", "GA0001")
        kw.setdefault("completed_at", clock.now - timedelta(seconds=30))
        record = ratings.create_record(**kw)
        db.session.commit()
        return record
    return make
