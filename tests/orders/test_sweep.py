"""The 督办单's reminder and overdue steps, from the one deadline sweep, each exactly once."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from feedback.deadlines import service as deadlines
from feedback.notifications.models import Notification
from feedback.orders import service as orders
from feedback.orders.models import SupervisionOrder
from feedback.orders.sweep import sweep_orders
from feedback.sms.models import OutboundSms
from feedback.tickets.models import TicketEvent
from tests.orders.conftest import bj


def _order(city, now, **kw):
    if "ticket" not in kw:
        kw.setdefault("department", city.child)
    order = orders.issue_order(actor=city.users.supervisor, content="限期报告", due_working_days=3, now=now, **kw)
    return order


def _notes(db, kind=None):
    q = sa.select(Notification.user_id, Notification.kind).where(Notification.kind != "new_ticket").order_by(Notification.id)
    if kind:
        q = q.where(Notification.kind == kind)
    return db.session.execute(q).all()


def test_the_deadline_sweep_reminds_the_handlers_once_then_escalates_once(db, city, clock, people):
    order = _order(city, bj(2026, 11, 23, 10))  # due Thu 11-26 23:59:59
    db.session.commit()
    assert deadlines.sweep(bj(2026, 11, 25, 18)) == {}  # nothing due yet

    summary = deadlines.sweep(bj(2026, 11, 26, 8))
    assert summary["order_reminder_done"] == 1
    # 户政支队's own handler (the nearest department with handlers), never window staff.
    assert _notes(db) == [(people.handler2.id, "order_reminder")]
    assert "order_reminder_done" not in deadlines.sweep(bj(2026, 11, 26, 9))  # once

    summary = deadlines.sweep(bj(2026, 11, 27, 8))
    assert summary["order_overdue_done"] == 1
    db.session.refresh(order)
    assert order.status == "overdue" and order.next_check_at is None
    told = {uid for uid, kind in _notes(db, "order_overdue")}
    assert told == {people.head.id, people.supervisor.id}  # the head up the tree, and the supervisors
    texts = db.session.scalars(sa.select(OutboundSms.to_phone).where(OutboundSms.purpose == "staff_notice")).all()
    assert sorted(texts) == ["+8613700000001", "+8613700000002"]
    assert deadlines.sweep(bj(2026, 11, 27, 9)) == {}  # nothing left to do
    assert len(_notes(db)) == 3

    # Overdue, it can still be answered: kept, shown as late.
    orders.answer_order(order, people.handler2, text="已补报", now=bj(2026, 11, 27, 10))
    db.session.commit()
    assert order.status == "answered" and order.answered_late


def test_an_answered_order_is_neither_reminded_nor_escalated(db, city, people):
    order = _order(city, bj(2026, 11, 23, 10))
    orders.answer_order(order, people.handler2, text="当天已办", now=bj(2026, 11, 23, 15))
    db.session.commit()
    assert deadlines.sweep(bj(2026, 12, 10, 9)) == {}
    assert _notes(db) == []


def test_after_downtime_the_reminder_is_recorded_not_sent_and_the_escalation_goes_once(db, city, people, make_ticket):
    ticket = make_ticket()
    order = _order(city, bj(2026, 11, 23, 10), ticket=ticket)
    db.session.commit()
    summary = sweep_orders(bj(2026, 12, 2, 9))
    assert (summary["order_reminder_skipped"], summary["order_overdue_done"]) == (1, 1)
    assert {k for _, k in _notes(db)} == {"order_overdue"}
    events = db.session.scalars(sa.select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)).all()
    assert events.count("order_overdue") == 1
    assert sweep_orders(bj(2026, 12, 2, 9)) == {}
    db.session.refresh(order)
    assert order.reminded_at is not None and order.overdue_at is not None


def test_a_claimed_step_cannot_be_claimed_again(db, city):
    from feedback.orders.sweep import claim

    order = _order(city, bj(2026, 11, 23, 10))
    db.session.commit()
    assert claim(order.id, "reminder", bj(2026, 11, 26, 8))
    assert not claim(order.id, "reminder", bj(2026, 11, 26, 8))
    assert not claim(order.id, "overdue", bj(2026, 11, 26, 8))  # not yet due
    assert claim(order.id, "overdue", bj(2026, 11, 27, 8))
    assert not claim(order.id, "overdue", bj(2026, 11, 27, 8))


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_sweeps_at_the_same_time_do_each_step_once_on_postgresql(app, db, city, people):
    for _ in range(40):
        _order(city, bj(2026, 11, 23, 10))
    db.session.commit()
    start = threading.Barrier(2)
    results, errors = [], []

    def run(moment):
        try:
            with app.app_context():
                start.wait(timeout=10)
                results.append(sweep_orders(moment, batch=7))
        except Exception as exc:  # reported below, not swallowed
            errors.append(exc)

    for moment in (bj(2026, 11, 26, 8), bj(2026, 11, 27, 8)):
        threads = [threading.Thread(target=run, args=(moment,)) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
    assert not errors
    done = sum(r.get("order_reminder_done", 0) for r in results)
    overdue = sum(r.get("order_overdue_done", 0) for r in results)
    assert (done, overdue) == (40, 40)
    db.session.expire_all()
    kinds = [k for _, k in _notes(db)]
    assert kinds.count("order_reminder") == 40  # one handler each
    assert kinds.count("order_overdue") == 80  # the head and the supervisor each
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SupervisionOrder)
                             .where(SupervisionOrder.status == "overdue")) == 40
