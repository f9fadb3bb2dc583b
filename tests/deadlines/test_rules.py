"""Issue 16 in the sweep: a rework's own deadline, level 1 without any department head, nobody told
about their own rating, and the reminder lead as a setting."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from feedback.deadlines import service as deadlines
from feedback.deadlines.models import TicketDeadlineStep
from feedback.notifications.models import Notification
from feedback.sms.models import OutboundSms
from feedback.tickets import service as t
from feedback.tickets.models import Ticket, TicketEvent
from tests.conftest import walk_to
from tests.deadlines.conftest import bj


def _walk(clock, start, end, step=timedelta(hours=3)):
    moment = start
    while moment <= end:
        clock.set(moment)
        deadlines.sweep(moment)
        moment += step


def _told(db, ticket_id):
    return Counter((uid, kind) for uid, kind in db.session.execute(
        sa.select(Notification.user_id, Notification.kind).where(Notification.ticket_id == ticket_id,
                                                                 Notification.kind != "new_ticket")))


def _steps(db, ticket_id):
    return [(s.step, s.due_at) for s in db.session.execute(
        sa.select(TicketDeadlineStep.step, TicketDeadlineStep.due_at)
        .where(TicketDeadlineStep.ticket_id == ticket_id).order_by(TicketDeadlineStep.id))]


def test_a_reworked_ticket_gets_reminders_and_escalation_of_its_new_deadline(db, clock, recipients, make_ticket):
    clock.set(bj(2026, 11, 23, 10))
    ticket = walk_to(make_ticket(now=clock.now), "replied", recipients, now=clock.now)
    tid = ticket.id
    t.rate_handling(ticket, "不满意", "sms", now=bj(2026, 11, 25, 10))
    t.review(ticket, recipients.supervisor, decision="rework", note="请重新整改", now=bj(2026, 11, 26, 10))
    db.session.commit()
    # 5 working days from Thursday 11-26: 27, 30, 12-01, 02, 03.
    rework_due = bj(2026, 12, 3, 23, 59, 59)
    assert ticket.due_at == rework_due
    assert ticket.next_deadline_check_at == bj(2026, 12, 3)
    _walk(clock, bj(2026, 11, 26, 12), bj(2026, 12, 10))
    assert _steps(db, tid) == [("reminder", rework_due), ("overdue", rework_due), ("level2", rework_due)]
    kinds = [k for k, in db.session.execute(sa.select(TicketEvent.kind).where(
        TicketEvent.ticket_id == tid, TicketEvent.kind.in_(("deadline_reminder", "overdue", "supervised"))))]
    assert kinds == ["deadline_reminder", "overdue", "supervised"]
    assert db.session.get(Ticket, tid).escalation_level == 2
    told = _told(db, tid)
    assert told[(recipients.handler.id, "reminder")] == 1  # the assignee
    assert told[(recipients.head.id, "overdue")] == 1
    assert told[(recipients.supervisor.id, "level2")] == 1


def test_the_second_reply_of_a_rework_stops_its_clock(db, clock, recipients, make_ticket):
    clock.set(bj(2026, 11, 23, 10))
    ticket = walk_to(make_ticket(now=clock.now), "replied", recipients, now=clock.now)
    t.rate_handling(ticket, "不满意", "sms", now=bj(2026, 11, 25, 10))
    t.review(ticket, recipients.supervisor, decision="rework", note="请重新整改", now=bj(2026, 11, 26, 10))
    t.reply(ticket, recipients.handler, text="已重新整改", now=bj(2026, 11, 27, 10))
    db.session.commit()
    assert ticket.next_deadline_check_at is None
    _walk(clock, bj(2026, 11, 27, 12), bj(2026, 12, 10), step=timedelta(hours=6))
    assert _steps(db, ticket.id) == []


def test_with_no_department_head_anywhere_level_1_goes_to_the_supervisors(db, clock, city, make_ticket):
    city.users.supervisor.phone = "+8613700000002"
    db.session.commit()
    clock.set(bj(2026, 11, 23, 10))
    ticket = make_ticket(now=clock.now, citizen_phone=None)  # no verification deadline
    deadlines.sweep(bj(2026, 12, 1, 0, 30))  # the reply deadline (11-30) has passed
    told = _told(db, ticket.id)
    assert told[(city.users.supervisor.id, "overdue")] == 1
    assert told[(city.users.handler2.id, "overdue")] == 1  # the department's handlers as before
    texts = db.session.scalars(sa.select(OutboundSms.to_phone).where(OutboundSms.ticket_id == ticket.id)).all()
    assert texts == ["+8613700000002"]  # supervisors get SMS copies (NOTIFY_SMS_ROLES)


def test_nobody_is_told_about_a_ticket_on_their_own_rating(db, clock, city, make_ticket, make_user):
    from feedback.directory import heads as department_heads

    # The rated staff member 王小明 has a handler account in 户政支队 and heads the city police.
    rated = make_user("handler", departments=[city.child], username="wang_handler", phone="+8613700000009")
    rated.staff_id = city.staff.id
    db.session.commit()
    department_heads.set_head("GA", "wang_handler")
    db.session.commit()
    clock.set(bj(2026, 11, 23, 10))
    ticket = make_ticket(now=clock.now)  # rates 王小明 at W01
    deadlines.sweep(bj(2026, 12, 10))  # every step of both deadlines falls due
    told = _told(db, ticket.id)
    assert rated.id not in {uid for uid, _ in told}
    assert told[(city.users.handler2.id, "overdue")] == 1
    # With its only head left out, level 1 falls back to the supervisors.
    assert told[(city.users.supervisor.id, "overdue")] == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboundSms.id)).where(
        OutboundSms.to_phone == "+8613700000009")) == 0
    # A ticket about someone else still goes to that account as head.
    other = make_ticket(now=clock.now, staff=None)
    deadlines.sweep(bj(2026, 12, 10))
    assert _told(db, other.id)[(rated.id, "overdue")] == 1


def test_the_reminder_lead_is_a_setting(app, db, clock, recipients, make_ticket):
    app.config["REMINDER_LEAD_WORKING_DAYS"] = 2
    clock.set(bj(2026, 11, 23, 10))
    ticket = make_ticket(now=clock.now, citizen_phone=None)  # reply due Monday 11-30
    db.session.commit()
    # Two working days left from the start of Friday 11-27 (the weekend does not count).
    assert ticket.next_deadline_check_at == bj(2026, 11, 27)
    assert deadlines.sweep(bj(2026, 11, 26, 23)) == {}
    deadlines.sweep(bj(2026, 11, 27, 1))
    note = db.session.scalars(sa.select(Notification).where(Notification.ticket_id == ticket.id,
                                                            Notification.kind != "new_ticket")).one()
    assert note.kind == "reminder"
    assert "仅剩 2 个工作日" in note.title
