"""The tests' directory factories and the ``city`` (tests/conftest.py), made once per session.

Most tests act on the same small directory with six accounts. Building it took about a fifth
of a second a test (ten flushes and seven commits): a quarter of the suite's set-up. So each
backend gets a second template, a copy of the migrated one with the city built in it
(``build_city_in``), and a test whose fixtures include ``city`` starts from a copy of that
one; its ``city`` fixture then reads the objects back (``load_city``). A test that asks for
the city some other way (``request.getfixturevalue``, a database of its own) gets it built
as before (``create_city``), so both ways give the same rows and ids.
"""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import sqlalchemy as sa

TEST_PASSWORD = "Correct-Horse-42"
DEPARTMENTS = ("GA", "GA-HZ", "SCJ")
USERNAMES = {"handler": "handler_ga", "handler2": "handler_hz", "other": "handler_scj", "supervisor": "super",
             "admin": "boss", "window_staff": "staff_ga01"}


def fast_hasher():
    """Cheap Argon2 parameters, for accounts made in bulk (the city has six)."""
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


# ---------------------------------------------------------------- factories

def _maker(db, build, **defaults):
    """A factory numbering what it makes: ``build(i, kw)`` returns the row for number ``i``;
    ``defaults`` (field=factory) fill a field the caller left out. Each default is made even
    when the caller gives the field (``setdefault`` evaluates it): the numbering tests rely on."""
    n = itertools.count(1)

    def make(**kw):
        i = next(n)
        for field, factory in defaults.items():
            kw.setdefault(field, factory())
        row = build(i, kw)
        db.session.add(row)
        db.session.flush()
        return row
    make.counter = n
    return make


def department_maker(db):
    from feedback.directory.models import Department

    return _maker(db, lambda i, kw: Department(code=kw.pop("code", f"D{i:03d}"),
                                               name=kw.pop("name", f"测试部门{i}"), **kw))


def hall_maker(db):
    from feedback.directory.models import Hall

    return _maker(db, lambda i, kw: Hall(code=kw.pop("code", f"H{i:02d}"), name=kw.pop("name", f"测试大厅{i}"), **kw))


def window_maker(db, make_hall, make_department):
    from feedback.directory.models import Window

    return _maker(db, lambda i, kw: Window(code=kw.pop("code", f"W{i:03d}"), name=kw.pop("name", f"{i} 号窗口"), **kw),
                  hall=make_hall, department=make_department)


def staff_maker(db, make_department):
    from feedback.directory.models import Staff

    return _maker(db, lambda i, kw: Staff(staff_number=kw.pop("staff_number", f"S{i:04d}"),
                                          name=kw.pop("name", f"张{i}"), **kw), department=make_department)


def item_maker(db, make_department):
    from feedback.directory.models import ServiceItem

    return _maker(db, lambda i, kw: ServiceItem(code=kw.pop("code", f"I{i:04d}"), name=kw.pop("name", f"测试事项{i}"),
                                                promised_days=kw.pop("promised_days", 5), **kw),
                  department=make_department)


def user_maker(db):
    n = itertools.count(1)

    def make(role="admin", departments=(), **kw):
        from feedback.accounts import service
        i = next(n)
        user = service.create_user(kw.pop("username", f"{role}{i}"), kw.pop("password", TEST_PASSWORD), role,
                                   department_codes=[d.code for d in departments], **kw)
        db.session.commit()
        return user
    make.counter = n
    return make


# ---------------------------------------------------------------- the city

def create_city(db, make_department, make_hall, make_window, make_staff, make_item, make_user) -> SimpleNamespace:
    """Build the city (tests/conftest.py ``city`` says what it holds) and commit it."""
    parent = make_department(code="GA", name="市公安局")
    child = make_department(code="GA-HZ", name="户政支队", parent=parent)
    other = make_department(code="SCJ", name="市场监管局")
    hall = make_hall(code="H1", name="市民中心")
    window = make_window(code="W01", name="1 号窗口", hall=hall, department=child)
    other_window = make_window(code="W02", name="2 号窗口", hall=hall, department=other)
    staff = make_staff(staff_number="S001", name="王小明", department=child, windows=[window])
    other_staff = make_staff(staff_number="S002", name="赵六六", department=other, windows=[other_window])
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
                           other_window=other_window, staff=staff, other_staff=other_staff, item=item,
                           other_item=other_item, users=users)


# How many objects each factory had numbered once the city was built (make_window's and the
# others' defaults are made even when given, so the city numbers some throwaway rows too):
# a test that reads the city back continues the numbering from there, as if it had built it.
CITY_COUNTS: dict[str, int] = {}


def continue_numbering(**makers) -> None:
    """Advance each factory (``make_hall=…``) past the numbers the city used (CITY_COUNTS)."""
    for name, make in makers.items():
        for _ in range(CITY_COUNTS[name]):
            next(make.counter)


def load_city(db) -> SimpleNamespace | None:
    """The city read back from a database copied from the city template; None when the
    database has none (it was not made from that template)."""
    from feedback.accounts.models import User
    from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window

    def by(model, column, keys):
        return {getattr(row, column): row for row in db.session.scalars(
            sa.select(model).where(getattr(model, column).in_(keys)))}

    departments = by(Department, "code", DEPARTMENTS)
    if len(departments) != len(DEPARTMENTS):
        return None
    windows, staff = by(Window, "code", ("W01", "W02")), by(Staff, "staff_number", ("S001", "S002"))
    items, users = by(ServiceItem, "code", ("IT1", "IT2")), by(User, "username", tuple(USERNAMES.values()))
    return SimpleNamespace(parent=departments["GA"], child=departments["GA-HZ"], other=departments["SCJ"],
                           hall=db.session.scalars(sa.select(Hall).where(Hall.code == "H1")).one(),
                           window=windows["W01"], other_window=windows["W02"], staff=staff["S001"],
                           other_staff=staff["S002"], item=items["IT1"], other_item=items["IT2"],
                           users=SimpleNamespace(**{role: users[name] for role, name in USERNAMES.items()}))


def build_city_in(app) -> None:
    """Build the city in ``app``'s database (a copy of the migrated template), as the ``city``
    fixture would at the tests' starting time (the app's CLOCK), with the cheap hasher."""
    import pytest

    from feedback.accounts import service
    from feedback.extensions import db

    with app.app_context(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(service, "_hasher", fast_hasher())
        make_department, make_hall = department_maker(db), hall_maker(db)
        makers = {"make_department": make_department, "make_hall": make_hall,
                  "make_window": window_maker(db, make_hall, make_department),
                  "make_staff": staff_maker(db, make_department), "make_item": item_maker(db, make_department),
                  "make_user": user_maker(db)}
        create_city(db, *makers.values())
        CITY_COUNTS.update({name: next(make.counter) - 1 for name, make in makers.items()})
        db.session.remove()
        db.engine.dispose()
