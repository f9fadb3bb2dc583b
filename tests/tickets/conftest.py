"""A small city for ticket tests: two departments, a window, staff, users of every role,
and factories for bad-review and complaint tickets."""
from __future__ import annotations

import itertools
from datetime import timedelta
from types import SimpleNamespace

import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Cheap Argon2 parameters: these tests create six accounts each."""
    from argon2 import PasswordHasher

    from feedback.accounts import service

    monkeypatch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def app_config(app_config, tmp_path):
    app_config.extra["UPLOAD_DIR"] = str(tmp_path / "uploads")
    return app_config


@pytest.fixture
def city(db, make_department, make_hall, make_window, make_staff, make_item, make_user):
    parent = make_department(code="GA", name="市公安局")
    child = make_department(code="GA-HZ", name="户政支队", parent=parent)
    other = make_department(code="SCJ", name="市场监管局")
    hall = make_hall(code="H1", name="市民中心")
    window = make_window(code="W01", name="1 号窗口", hall=hall, department=child)
    other_window = make_window(code="W02", name="2 号窗口", hall=hall, department=other)
    staff = make_staff(staff_number="S001", name="王小明", department=child)
    item = make_item(code="IT1", name="户口迁移", department=child)
    other_item = make_item(code="IT2", name="营业执照", department=other)
    users = SimpleNamespace(
        handler=make_user("handler", departments=[parent], username="handler_ga", display_name="公安办理员"),
        handler2=make_user("handler", departments=[child], username="handler_hz", display_name="户政办理员"),
        other=make_user("handler", departments=[other], username="handler_scj", display_name="市场监管办理员"),
        supervisor=make_user("supervisor", username="super", display_name="督查员"),
        admin=make_user("admin", username="boss"),
        window_staff=make_user("window_staff", departments=[child], username="staff_ga01"),
    )
    users.window_staff.staff_id = staff.id
    db.session.commit()
    return SimpleNamespace(parent=parent, child=child, other=other, hall=hall, window=window,
                           other_window=other_window, staff=staff, item=item, other_item=other_item, users=users)


_numbers = itertools.count(1)


@pytest.fixture
def make_bad_ticket(db, city, clock):
    """A bad review (level 1 by default, real-name) and its ticket, committed."""
    from feedback.evaluations import service as ratings
    from feedback.tickets.models import Ticket

    def make(level=1, phone="13800138000", window=None, item=None, staff="default", now=None):
        window = window or city.window
        record = ratings.create_record(
            record_number=f"BJ{next(_numbers):05d}", service_item_code=(item or city.item).code,
            window_code=window.code,
            staff_number=city.staff.staff_number if staff == "default" else staff,
            completed_at=(now or clock.now) - timedelta(minutes=10), citizen_phone=phone, now=now or clock.now)
        ev = ratings.rate(record=record, level=level, channel="hall_tablet",
                          reasons=[115] if level == 1 else [], comment="态度很差", now=now or clock.now)
        ticket = db.session.query(Ticket).filter_by(evaluation_id=ev.id).one()
        db.session.commit()
        return ticket
    return make


@pytest.fixture
def make_complaint_ticket(db, city, clock):
    from feedback.complaints import service as complaints

    def make(department="child", window=None, phone="13900139000", **kw):
        dept = {"child": city.child, "other": city.other, None: None}[department]
        complaint, secret = complaints.create_complaint(
            description=kw.pop("description", "窗口工作人员要求提供办事指南以外的材料"), contact_phone=phone,
            occurred_at=clock.now - timedelta(hours=2), department_id=dept.id if dept else None,
            window_id=window.id if window else None, **kw)
        db.session.commit()
        ticket = complaints.ticket_of(complaint)
        ticket._secret = secret
        return ticket
    return make


def walk_to(ticket, state, users, *, now=None):
    """Drive a ticket through the happy path up to ``state`` with the services."""
    from feedback.tickets import service as t

    h = users.handler
    steps = ["new", "accepted", "verified", "rectifying", "replied"]
    for target in steps[steps.index(ticket.state) + 1: steps.index(state) + 1]:
        if target == "accepted":
            t.accept(ticket, h, now=now)
        elif target == "verified":
            t.verify(ticket, h, callback_at=None, contact="评价人本人", reached=True, findings="情况属实", now=now)
        elif target == "rectifying":
            t.rectify(ticket, h, outcome="fixed_at_once", measures="已对窗口人员批评教育", now=now)
        elif target == "replied":
            t.reply(ticket, h, text="已整改，感谢监督。", now=now)
    return ticket
