"""Deadline enforcement with an injected clock: reminder, overdue (level 1) and 督办 (level 2),
each recorded and notified exactly once, across National Day 2026 and a weekend."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from feedback.deadlines import service as deadlines
from feedback.deadlines.models import TicketDeadlineStep
from feedback.notifications import service as notifications
from feedback.notifications.models import Notification
from feedback.sms.models import OutboundSms
from feedback.tickets import service as t
from feedback.tickets.models import Ticket, TicketEvent
from tests.conftest import login
from tests.deadlines.conftest import bj


def _walk(db, clock, start, end, step=timedelta(hours=1)):
    moment = start
    while moment <= end:
        clock.set(moment)
        deadlines.sweep(moment)
        moment += step


# The sweep's notifications (a ticket's opening also tells its handlers: kind new_ticket).
SWEEP_NOTES = Notification.kind != "new_ticket"


def _notes(db, ticket_id):
    rows = db.session.execute(sa.select(Notification.user_id, Notification.kind, Notification.deliver_after)
                              .where(Notification.ticket_id == ticket_id, SWEEP_NOTES).order_by(Notification.id)).all()
    return rows


def _sms(db, ticket_id):
    return db.session.execute(sa.select(OutboundSms.to_phone, OutboundSms.purpose, OutboundSms.next_attempt_at,
                                        OutboundSms.body)
                              .where(OutboundSms.ticket_id == ticket_id).order_by(OutboundSms.id)).all()


def test_a_ticket_walks_through_reminder_overdue_and_supervision_across_national_day_and_a_weekend(
        db, clock, recipients, make_ticket):
    clock.set(bj(2026, 9, 30, 10))
    ticket = make_ticket(now=clock.now)
    tid = ticket.id
    # 1 working day to verify: 10-01..07 are National Day, so Thursday 10-08; reply in 5: 10-13.
    assert ticket.verify_due_at == bj(2026, 10, 8, 23, 59, 59)
    assert ticket.due_at == bj(2026, 10, 13, 23, 59, 59)
    assert ticket.next_deadline_check_at == bj(2026, 10, 8)  # the verification reminder

    _walk(db, clock, bj(2026, 9, 30, 11), bj(2026, 10, 7, 23))
    assert _notes(db, tid) == [], "nothing happens during the holiday"

    _walk(db, clock, bj(2026, 10, 8), bj(2026, 10, 20, 12))
    u = recipients
    notes = _notes(db, tid)
    got = Counter((uid, kind) for uid, kind, _ in notes)
    assert got == Counter({
        (u.handler2.id, "verify_reminder"): 1, (u.handler2.id, "verify_overdue"): 1, (u.head.id, "verify_overdue"): 1,
        (u.supervisor.id, "verify_level2"): 1,
        (u.handler2.id, "reminder"): 1, (u.handler2.id, "overdue"): 1, (u.head.id, "overdue"): 1,
        (u.supervisor.id, "level2"): 1,
    })
    delivered = {(uid, kind): at for uid, kind, at in notes}
    # Found at midnight, shown at the start of working hours; verification 督办 falls due on
    # Sunday 10-11 00:00 (two working days after 10-08: Friday and the make-up Saturday) and
    # waits for Monday 09:00.
    assert delivered[(u.handler2.id, "verify_reminder")] == bj(2026, 10, 8, 9)
    assert delivered[(u.head.id, "verify_overdue")] == bj(2026, 10, 9, 9)
    assert delivered[(u.supervisor.id, "verify_level2")] == bj(2026, 10, 12, 9)
    assert delivered[(u.handler2.id, "reminder")] == bj(2026, 10, 13, 9)
    assert delivered[(u.head.id, "overdue")] == bj(2026, 10, 14, 9)
    assert delivered[(u.supervisor.id, "level2")] == bj(2026, 10, 16, 9)  # 10-14, 10-15 → Friday 00:00

    steps = db.session.execute(sa.select(TicketDeadlineStep.step, TicketDeadlineStep.done_at, TicketDeadlineStep.outcome)
                               .where(TicketDeadlineStep.ticket_id == tid).order_by(TicketDeadlineStep.id)).all()
    assert [(s.step, s.done_at, s.outcome) for s in steps] == [
        ("verify_reminder", bj(2026, 10, 8), "done"), ("verify_overdue", bj(2026, 10, 9), "done"),
        ("verify_level2", bj(2026, 10, 11), "done"), ("reminder", bj(2026, 10, 13), "done"),
        ("overdue", bj(2026, 10, 14), "done"), ("level2", bj(2026, 10, 16), "done")]

    events = db.session.execute(sa.select(TicketEvent.kind, TicketEvent.at, TicketEvent.note)
                                .where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id)).all()
    kinds = [e.kind for e in events]
    assert kinds == ["opened", "deadline_reminder", "overdue", "supervised", "deadline_reminder", "overdue",
                     "supervised"]
    assert "回访核实期限" in events[1].note
    assert "答复期限" in events[4].note
    assert "督办" in events[6].note

    # SMS copies: department head and supervisors (NOTIFY_SMS_ROLES), never the handler;
    # sent no earlier than working hours; no citizen data in them.
    texts = _sms(db, tid)
    assert Counter(x.to_phone for x in texts) == Counter({u.head.phone: 2, u.supervisor.phone: 2})
    assert {x.purpose for x in texts} == {"staff_notice"}
    assert min(x.next_attempt_at for x in texts) >= bj(2026, 10, 9, 9)
    assert all("13800138000" not in x.body and "态度很差" not in x.body for x in texts)

    db.session.expire_all()
    ticket = db.session.get(Ticket, tid)
    assert ticket.escalation_level == 2
    assert ticket.next_deadline_check_at is None  # nothing left to enforce


def test_sweeping_twice_at_the_same_moment_changes_nothing(db, clock, recipients, make_ticket):
    clock.set(bj(2026, 9, 30, 10))
    tid = make_ticket(now=clock.now).id
    first = deadlines.sweep(bj(2026, 10, 9, 1))
    assert first["verify_reminder_skipped"] == 1
    assert first["verify_overdue_done"] == 1
    counts = (db.session.scalar(sa.select(sa.func.count()).select_from(Notification)),
              db.session.scalar(sa.select(sa.func.count()).select_from(OutboundSms)),
              db.session.scalar(sa.select(sa.func.count()).select_from(TicketEvent)))
    again = deadlines.sweep(bj(2026, 10, 9, 1))
    assert again == {}  # nothing due: the ticket's next check moved on
    # Even a sweep that finds the ticket again (its check moment forced back) does nothing twice.
    db.session.execute(sa.update(Ticket).where(Ticket.id == tid).values(next_deadline_check_at=bj(2026, 10, 1)))
    db.session.commit()
    forced = deadlines.sweep(bj(2026, 10, 9, 1))
    assert forced["already_done"] == 2
    assert "notifications" in forced
    assert forced["notifications"] == 0
    assert counts == (db.session.scalar(sa.select(sa.func.count()).select_from(Notification)),
                      db.session.scalar(sa.select(sa.func.count()).select_from(OutboundSms)),
                      db.session.scalar(sa.select(sa.func.count()).select_from(TicketEvent)))


def test_after_downtime_escalations_are_caught_up_once_and_stale_reminders_recorded_not_sent(
        db, clock, recipients, make_ticket):
    clock.set(bj(2026, 9, 30, 10))
    tid = make_ticket(now=clock.now).id
    summary = deadlines.sweep(bj(2026, 10, 20, 10))  # the scheduler was down for three weeks
    assert summary["reminder_skipped"] == 1
    assert summary["verify_reminder_skipped"] == 1
    assert summary["overdue_done"] == summary["level2_done"] == summary["verify_overdue_done"] == 1
    kinds = Counter(kind for _, kind, _ in _notes(db, tid))
    assert kinds == Counter({"verify_overdue": 2, "verify_level2": 1, "overdue": 2, "level2": 1})
    assert deadlines.sweep(bj(2026, 10, 20, 10)) == {}


def test_an_extension_gives_the_new_deadline_fresh_steps(db, clock, recipients, make_ticket):
    clock.set(bj(2026, 11, 23, 10))
    ticket = make_ticket(now=clock.now)
    tid = ticket.id
    t.accept(ticket, recipients.handler, now=clock.now)
    t.verify(ticket, recipients.handler, callback_at=None, contact="评价人本人", reached=True, findings="属实",
             now=clock.now)
    db.session.commit()
    _walk(db, clock, bj(2026, 11, 30), bj(2026, 11, 30, 12), step=timedelta(hours=3))  # due Mon 11-30
    assert {k for _, k, _ in _notes(db, tid)} == {"reminder"}
    ticket = db.session.get(Ticket, tid)
    clock.set(bj(2026, 11, 30, 14))  # an extension is asked for before the deadline it extends
    t.extend(ticket, recipients.supervisor, reason="涉及多个部门，情况复杂", now=clock.now)
    db.session.commit()
    assert ticket.due_at == bj(2026, 12, 14, 23, 59, 59)  # 15 working days from 11-23
    assert ticket.next_deadline_check_at == bj(2026, 12, 14)
    _walk(db, clock, bj(2026, 11, 30, 15), bj(2026, 12, 20), step=timedelta(hours=3))
    steps = Counter(s for s, in db.session.execute(sa.select(TicketDeadlineStep.step)
                                                   .where(TicketDeadlineStep.ticket_id == tid)))
    # The old deadline's reminder, then the new deadline's own three steps.
    # The assignee (who accepted) is told, not the department's other handlers.
    assert steps == Counter({"reminder": 2, "overdue": 1, "level2": 1})
    assert Counter(uid for uid, k, _ in _notes(db, tid) if k == "reminder") == Counter({recipients.handler.id: 2})


def test_the_reply_stops_the_clock_and_the_verification_stops_its_own(db, clock, recipients, make_ticket):
    clock.set(bj(2026, 11, 23, 10))
    ticket = make_ticket(now=clock.now)
    t.accept(ticket, recipients.handler, now=clock.now)
    t.verify(ticket, recipients.handler, callback_at=None, contact="本人", reached=True, findings="属实", now=clock.now)
    db.session.commit()
    assert ticket.next_deadline_check_at == bj(2026, 11, 30)  # only the reply's reminder is left
    clock.set(bj(2026, 11, 30, 10))
    deadlines.sweep(clock.now)
    t.rectify(ticket, recipients.handler, outcome="fixed_at_once", measures="已整改", now=clock.now)
    t.reply(ticket, recipients.handler, text="已整改，感谢监督。", now=clock.now)
    db.session.commit()
    assert ticket.next_deadline_check_at is None
    _walk(db, clock, bj(2026, 11, 30, 11), bj(2026, 12, 10), step=timedelta(hours=6))
    assert [k for _, k, _ in _notes(db, ticket.id)] == ["reminder"]
    assert db.session.get(Ticket, ticket.id).escalation_level == 0


def test_an_unassigned_complaint_in_triage_goes_to_supervisors_and_a_closed_ticket_is_left_alone(
        db, clock, recipients, make_ticket):
    clock.set(bj(2026, 11, 23, 10))
    triage = make_ticket(source="complaint", department=None)
    closed = make_ticket(now=clock.now)
    t.accept(closed, recipients.handler, now=clock.now)
    closed.state, closed.is_open = "closed", False  # as an upheld appeal would leave it
    db.session.commit()
    assert closed.next_deadline_check_at is None
    deadlines.sweep(bj(2026, 11, 30, 10))
    assert {(uid, k) for uid, k, _ in _notes(db, triage.id)} == {
        (recipients.supervisor.id, "verify_overdue"), (recipients.supervisor.id, "verify_level2"),
        (recipients.supervisor.id, "reminder")}
    assert _notes(db, closed.id) == []


def test_a_provisional_deadline_is_enforced_and_its_notifications_say_so(db, clock, recipients, make_ticket):
    clock.set(bj(2026, 12, 28, 10))
    ticket = make_ticket(now=clock.now)
    assert ticket.due_provisional
    assert ticket.due_at == bj(2027, 1, 4, 23, 59, 59)
    deadlines.sweep(bj(2027, 1, 4, 10))
    note = db.session.scalars(sa.select(Notification).where(Notification.kind == "reminder")).one()
    assert note.provisional
    assert "临时计算" in note.title


def test_staff_notifications_wait_for_working_hours_on_working_days(app):
    assert notifications.next_working_moment(bj(2026, 11, 23, 10)) == bj(2026, 11, 23, 10)
    assert notifications.next_working_moment(bj(2026, 11, 23, 7)) == bj(2026, 11, 23, 9)
    assert notifications.next_working_moment(bj(2026, 11, 27, 18)) == bj(2026, 11, 30, 9)  # Friday evening
    assert notifications.next_working_moment(bj(2026, 9, 30, 17)) == bj(2026, 10, 8, 9)  # National Day
    assert notifications.next_working_moment(bj(2026, 10, 9, 20)) == bj(2026, 10, 10, 9)  # make-up Saturday


def test_the_console_shows_delivered_notifications_with_an_unread_count(db, clock, client, recipients, make_ticket):
    clock.set(bj(2026, 11, 23, 10))
    tid = make_ticket(now=clock.now).id
    db.session.execute(sa.update(Notification).where(~SWEEP_NOTES).values(read_at=clock.now))  # 新工单, read
    db.session.commit()
    clock.set(bj(2026, 11, 30, 0, 30))
    deadlines.sweep(clock.now)
    login(client, "handler_hz")
    page = client.get("/console/").get_data(as_text=True)
    assert 'id="nav-notifications"' in page
    assert "条未读" not in page  # made at night, shown at 09:00
    clock.set(bj(2026, 11, 30, 9))
    page = client.get("/console/notifications/").get_data(as_text=True)
    assert "2 条未读" in page
    assert f"工单 #{tid} 答复期限仅剩 1 个工作日" in page
    note = db.session.scalars(sa.select(Notification).where(Notification.kind == "reminder")).one()
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    resp = client.post(f"/console/notifications/{note.id}/read", data={"csrf_token": token})
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/console/tickets/{tid}")
    assert "1 条未读" in client.get("/console/notifications/").get_data(as_text=True)
    # Somebody else's notification is not there for this user.
    other = db.session.scalars(sa.select(Notification).where(Notification.user_id != recipients.handler2.id)).first()
    if other is not None:
        assert client.post(f"/console/notifications/{other.id}/read", data={"csrf_token": token}).status_code == 404
    client.post("/console/notifications/read-all", data={"csrf_token": token})
    assert "条未读" not in client.get("/console/notifications/").get_data(as_text=True)


def test_the_sweep_is_a_job_run_once_from_the_command_line(app, db, clock, recipients, make_ticket):
    clock.set(bj(2026, 11, 23, 10))
    make_ticket(now=clock.now)
    result = app.test_cli_runner().invoke(args=["jobs", "run", "deadline_sweep", "--now", "2026-11-24T10:00",
                                                "--commit"])
    assert result.exit_code == 0, result.output
    assert "'verify_reminder_done': 1" in result.output
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification).where(SWEEP_NOTES)) == 1
