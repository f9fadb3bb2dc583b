"""Fixtures of the disclosure tests: a small directory and a supervisor."""
from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture
def city(db, make_department, make_hall, make_window, make_staff, make_item, make_user):
    """One hall with two windows of two departments, a staff member each, a service item each."""
    ga = make_department(code="GA", name="市公安局")
    scj = make_department(code="SCJ", name="市场监管局")
    hall = make_hall(code="HALL1", name="市民中心")
    w1 = make_window(code="W01", name="1 号窗口", hall=hall, department=ga)
    w2 = make_window(code="W02", name="2 号窗口", hall=hall, department=scj)
    s1 = make_staff(staff_number="GA001", name="王小五", department=ga)
    s2 = make_staff(staff_number="SCJ001", name="赵六六", department=scj)
    i1 = make_item(code="ITEM1", name="户籍迁移", department=ga)
    i2 = make_item(code="ITEM2", name="营业执照办理", department=scj)
    supervisor = make_user("supervisor", username="boss", display_name="督查员甲")
    handler = make_user("handler", username="ga_handler", departments=[ga])
    db.session.commit()
    return SimpleNamespace(ga=ga, scj=scj, hall=hall, w1=w1, w2=w2, s1=s1, s2=s2, i1=i1, i2=i2,
                           supervisor=supervisor, handler=handler)
