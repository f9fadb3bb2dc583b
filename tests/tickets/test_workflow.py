"""The ticket state machine: the happy path, every invalid transition, extension, appeal,
moves, the citizen's rating of the handling and the append-only timeline."""
from datetime import datetime

import pytest
import sqlalchemy as sa

from feedback.audit.models import AuditEvent
from feedback.calendar.days import add_working_days
from feedback.errors import ValidationError
from feedback.sms.models import OutboundSms
from feedback.tickets import queue, workflow
from feedback.tickets import service as t
from feedback.tickets.models import TicketEvent
from tests.conftest import walk_to

BJ = "+08:00"


def test_bad_review_opens_a_ticket_with_deadlines_in_working_days(make_ticket):
    ticket = make_ticket()
    # Created Monday 2026-11-23 10:00 Beijing: verify by Tue 24th, reply by Mon 30th, 23:59:59.
    assert ticket.verify_due_at == datetime.fromisoformat("2026-11-24T23:59:59" + BJ)
    assert ticket.reply_due_at == ticket.due_at == datetime.fromisoformat("2026-11-30T23:59:59" + BJ)
    assert ticket.state == "new"
    assert ticket.is_open
    assert ticket.staff_id
    assert ticket.window_id
    assert ticket.hall_id


def test_happy_path_replies_by_sms_and_the_citizens_satisfaction_closes_it(db, make_ticket, city, clock):
    ticket = make_ticket()
    walk_to(ticket, "replied", city.users)
    db.session.commit()
    assert ticket.state == "replied"
    assert ticket.assignee_id == city.users.handler.id
    assert ticket.outcome == "fixed_at_once"
    assert ticket.on_time is True
    sms = db.session.scalars(sa.select(OutboundSms).where(OutboundSms.ticket_id == ticket.id)).one()
    assert sms.purpose == "ticket_reply"
    assert sms.to_phone == "+8613800138000"
    assert sms.dedupe_key == f"ticket-reply:{ticket.id}:1"
    assert sms.body.startswith("【")
    assert "已整改，感谢监督。" in sms.body
    assert "/h/" in sms.body
    t.rate_handling(ticket, "满意", "link")
    db.session.commit()
    assert ticket.state == "closed"
    assert not ticket.is_open
    assert ticket.closed_at == clock.now
    assert ticket.handling_rating == "satisfied"
    kinds = [e.kind for e in ticket.events]
    assert kinds == ["opened", "accept", "verify", "rectify", "reply", "sms_queued", "handling_rated"]
    verify = ticket.events[2]
    assert verify.actor_label == "公安办理员"
    assert verify.data["reached"] is True
    assert verify.data["on_time"] is True


ALL_ACTIONS = [a for a in workflow.TRANSITIONS]


@pytest.mark.parametrize("state", list(workflow.STATES))
def test_every_action_not_allowed_from_a_state_is_refused_with_what_is_allowed(make_ticket, city, state):
    ticket = make_ticket()
    ticket.state = state
    for action in ALL_ACTIONS:
        if state in workflow.TRANSITIONS[action].sources:
            continue
        with pytest.raises(workflow.InvalidTransitionError) as err:
            workflow.check(ticket, action, city.users.supervisor)
        assert f"工单当前状态为“{workflow.STATES[state]}”" in err.value.message
        assert "当前可执行" in err.value.message


def test_invalid_transition_through_the_service_changes_nothing(db, make_ticket, city):
    ticket = make_ticket()
    with pytest.raises(workflow.InvalidTransitionError, match="不能答复群众。当前可执行：签收"):
        t.reply(ticket, city.users.handler, text="答复")
    with pytest.raises(workflow.InvalidTransitionError, match="不能回访核实"):
        t.verify(ticket, city.users.handler, callback_at=None, contact="本人", reached=True, findings="x")
    assert ticket.state == "new"
    assert len(ticket.events) == 1


def test_closed_ticket_refuses_everything_but_notes(db, make_ticket, city):
    ticket = make_ticket()
    walk_to(ticket, "replied", city.users)
    t.rate_handling(ticket, "satisfied", "link")
    with pytest.raises(workflow.InvalidTransitionError, match="已办结"):
        t.accept(ticket, city.users.handler)
    with pytest.raises(workflow.InvalidTransitionError):
        t.rate_handling(ticket, "dissatisfied", "link")
    t.add_note(ticket, city.users.handler, note="群众来电致谢")


@pytest.mark.parametrize("action,kwargs", [
    ("extend", {"reason": "情况复杂"}), ("close", {"note": "x"}),
    ("decide_appeal", {"upheld": True, "note": "x"}), ("review", {"decision": "close", "note": "x"}),
])
def test_handlers_may_not_take_supervisor_actions(db, make_ticket, city, action, kwargs):
    ticket = make_ticket()
    ticket.state = workflow.TRANSITIONS[action].sources[0]
    with pytest.raises(workflow.ActionNotAllowedError):
        getattr(t, action)(ticket, city.users.handler, **kwargs)


def test_rectify_needs_an_outcome_and_measures(db, make_ticket, city):
    ticket = walk_to(make_ticket(), "verified", city.users)
    with pytest.raises(ValidationError, match="处理结果"):
        t.rectify(ticket, city.users.handler, outcome="appeal_upheld", measures="x")
    with pytest.raises(ValidationError, match="整改措施"):
        t.rectify(ticket, city.users.handler, outcome="explained", measures="  ")


def test_extension_once_by_a_supervisor_to_15_working_days_from_opening(db, make_ticket, city, clock):
    ticket = make_ticket()
    t.extend(ticket, city.users.supervisor, reason="涉及多个部门，需联合核查")
    expected = add_working_days(ticket.created_at, 15).due_at
    assert ticket.extended_due_at == ticket.due_at == expected
    assert ticket.reply_due_at == datetime.fromisoformat("2026-11-30T23:59:59" + BJ)  # kept for the record
    assert ticket.extended_by_id == city.users.supervisor.id
    assert ticket.events[-1].kind == "extend"
    assert ticket.events[-1].data["after"] == expected.isoformat()
    with pytest.raises(workflow.AlreadyExtendedError, match="已延期过一次"):
        t.extend(ticket, city.users.supervisor, reason="再延一次")
    with pytest.raises(ValidationError, match="延期理由"):
        t.extend(make_ticket(), city.users.supervisor, reason="")


def test_extension_is_not_possible_after_the_reply(db, make_ticket, city):
    ticket = walk_to(make_ticket(), "replied", city.users)
    with pytest.raises(workflow.InvalidTransitionError, match="不能延期"):
        t.extend(ticket, city.users.supervisor, reason="x")


def test_appeal_window_is_three_working_days(db, make_ticket, city, clock):
    # Created Friday 2026-11-27 10:00: Mon 30, Tue 1, Wed 2 → appeal until Wed 2 Dec 23:59:59.
    friday = datetime.fromisoformat("2026-11-27T10:00:00" + BJ)
    clock.set(friday)
    ticket = make_ticket(now=friday)
    assert workflow.appeal_deadline(ticket) == datetime.fromisoformat("2026-12-02T23:59:59" + BJ)
    late = make_ticket(now=friday)
    sunday = datetime.fromisoformat("2026-11-29T20:00:00" + BJ)
    assert workflow.can_appeal(ticket, sunday)
    t.appeal(ticket, city.users.handler, reason="评价人当天未到本窗口办事", now=sunday)
    assert ticket.state == "appealed"
    assert ticket.appeal_state == "pending"
    assert ticket.state_before_appeal == "new"
    with pytest.raises(workflow.AppealWindowClosedError, match="已过期"):
        t.appeal(late, city.users.handler, reason="x", now=datetime.fromisoformat("2026-12-03T00:00:01" + BJ))
    t.appeal(late, city.users.handler, reason="x", now=datetime.fromisoformat("2026-12-02T23:59:00" + BJ))


def test_upheld_appeal_invalidates_the_evaluation_and_closes_the_ticket(db, make_ticket, city, clock):
    ticket = walk_to(make_ticket(), "accepted", city.users)
    t.appeal(ticket, city.users.handler, reason="恶意差评：评价人与窗口有私人纠纷")
    with pytest.raises(workflow.InvalidTransitionError):
        t.appeal(ticket, city.users.handler, reason="again")
    t.decide_appeal(ticket, city.users.supervisor, upheld=True, note="经调取录像，申诉属实")
    db.session.commit()
    ev = ticket.evaluation
    assert ev.invalid is True
    assert ev.invalidated_at == clock.now
    assert ticket.state == "closed"
    assert ticket.outcome == "appeal_upheld"
    assert ticket.appeal_state == "upheld"
    assert db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "evaluation.invalidate")) is not None


def test_rejected_appeal_returns_to_the_state_before_with_the_same_deadline(db, make_ticket, city):
    ticket = walk_to(make_ticket(), "verified", city.users)
    due = ticket.due_at
    t.appeal(ticket, city.users.handler, reason="不属本部门职责")
    t.decide_appeal(ticket, city.users.supervisor, upheld=False, note="属于本部门职责")
    assert ticket.state == "verified"
    assert ticket.appeal_state == "rejected"
    assert ticket.due_at == due
    assert ticket.evaluation.invalid is False
    with pytest.raises(workflow.InvalidTransitionError, match="已申诉过"):
        t.appeal(ticket, city.users.handler, reason="再次申诉")


def test_complaints_cannot_be_appealed(db, make_ticket, city):
    ticket = make_ticket(source="complaint")
    with pytest.raises(workflow.InvalidTransitionError, match="只有差评工单可以申诉"):
        t.appeal(ticket, city.users.handler, reason="x")


def test_moving_to_another_department_keeps_the_deadline_and_is_an_event(db, make_ticket, city, clock):
    ticket = walk_to(make_ticket(), "accepted", city.users)
    before = (ticket.due_at, ticket.verify_due_at, ticket.reply_due_at)
    clock.set("2026-11-27T02:00:00+00:00")
    t.move(ticket, city.users.supervisor, city.other, note="属市场监管局职责")
    assert (ticket.due_at, ticket.verify_due_at, ticket.reply_due_at) == before
    assert ticket.department_id == city.other.id
    assert ticket.assignee_id is None
    assert ticket.moved_count == 1
    event = ticket.events[-1]
    assert event.kind == "move"
    assert event.data["from_department"] == "户政支队"
    assert event.data["to_department"] == "市场监管局"
    assert event.data["due_at"] == before[0].isoformat()
    with pytest.raises(workflow.ActionNotAllowedError):
        t.move(ticket, city.users.handler, city.child, note="x")


def test_routing_a_complaint_out_of_triage_keeps_its_deadline(db, make_ticket, city):
    ticket = make_ticket(source="complaint", department=None)
    assert ticket.department_id is None
    assert ticket.complaint.triage_state == "pending"
    due = ticket.due_at
    t.move(ticket, city.users.supervisor, city.child, note="经核实为户政窗口")
    assert ticket.complaint.triage_state == "triaged"
    assert ticket.complaint.department_id == city.child.id
    assert ticket.due_at == due


def test_dissatisfied_reopens_once_for_supervisor_review(db, make_ticket, city):
    ticket = walk_to(make_ticket(), "replied", city.users)
    t.rate_handling(ticket, "不满意", "sms")
    assert ticket.state == "reopened"
    assert ticket.reopened_count == 1
    assert ticket.is_open
    with pytest.raises(workflow.InvalidTransitionError):
        t.reply(ticket, city.users.handler, text="x")
    t.review(ticket, city.users.supervisor, decision="rework", note="请重新整改并再次回复")
    assert ticket.state == "rectifying"
    t.reply(ticket, city.users.handler, text="已再次整改。")
    keys = set(db.session.scalars(sa.select(OutboundSms.dedupe_key).where(OutboundSms.ticket_id == ticket.id)))
    assert keys == {f"ticket-reply:{ticket.id}:1", f"ticket-reply:{ticket.id}:2"}
    t.rate_handling(ticket, "dissatisfied", "link")
    assert ticket.state == "closed"
    assert ticket.reopened_count == 1
    assert ticket.handling_rating == "dissatisfied"


def test_review_may_close_a_reopened_ticket(db, make_ticket, city):
    ticket = walk_to(make_ticket(), "replied", city.users)
    t.rate_handling(ticket, "dissatisfied", "link")
    t.review(ticket, city.users.supervisor, decision="close", note="处理得当，维持")
    assert ticket.state == "closed"


@pytest.mark.parametrize("text,code", [("满意", "satisfied"), ("不满意", "dissatisfied"), ("基本满意", "basically_satisfied"),
                                       ("我觉得不满意！", "dissatisfied"), ("satisfied", "satisfied")])
def test_handling_verdict_matches_the_longest_label(text, code):
    assert t.parse_handling_verdict(text) == code


def test_handling_verdict_refuses_anything_else():
    with pytest.raises(ValidationError):
        t.parse_handling_verdict("好")


def test_reply_without_a_phone_sends_nothing_and_says_so(db, make_ticket, city):
    ticket = walk_to(make_ticket(citizen_phone=None), "replied", city.users)
    assert ticket.verify_due_at is None  # anonymous: no callback deadline
    assert db.session.scalar(sa.select(sa.func.count(OutboundSms.id)).where(OutboundSms.ticket_id == ticket.id)) == 0
    assert ticket.events[-1].note == "无联系电话，未发送短信"
    t.close(ticket, city.users.supervisor, note="匿名评价，无法回访")
    assert ticket.state == "closed"


def test_late_reply_is_not_on_time(db, make_ticket, city, clock):
    ticket = walk_to(make_ticket(), "rectifying", city.users)
    clock.set("2026-12-01T01:00:00+00:00")
    t.reply(ticket, city.users.handler, text="迟到的答复")
    assert ticket.on_time is False


def test_timeline_entries_cannot_be_changed(db, make_ticket):
    ticket = make_ticket()
    event = ticket.events[0]
    event.note = "篡改"
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.text("UPDATE ticket_events SET note = 'x'"))
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.text("DELETE FROM ticket_events"))
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(TicketEvent.id))) == 1


def test_phone_reveal_is_for_the_assignee_and_supervisors_and_audited(db, make_ticket, city):
    ticket = make_ticket()
    assert not t.can_reveal_phone(ticket, city.users.handler)  # not yet assigned
    t.accept(ticket, city.users.handler)
    assert t.reveal_phone(ticket, city.users.handler) == "+8613800138000"
    assert t.reveal_phone(ticket, city.users.supervisor) == "+8613800138000"
    with pytest.raises(workflow.ActionNotAllowedError):
        t.reveal_phone(ticket, city.users.handler2)
    with pytest.raises(workflow.ActionNotAllowedError):
        t.reveal_phone(ticket, city.users.admin)
    audits = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "ticket.phone_reveal")).all()
    assert [a.actor_label for a in audits] == ["handler_ga", "super"]


@pytest.mark.parametrize("now,text,tone", [
    ("2026-11-23T10:00:00+08:00", "剩 5 个工作日", "green"),
    ("2026-11-27T10:00:00+08:00", "剩 1 个工作日", "warn"),
    ("2026-11-30T10:00:00+08:00", "今日到期 · 剩 13 小时", "red"),
    ("2026-12-02T10:00:00+08:00", "已超期 2 个工作日", "red"),
])
def test_countdown_badge_in_working_days_and_hours(make_ticket, now, text, tone):
    ticket = make_ticket()
    badge = queue.countdown(ticket, datetime.fromisoformat(now))
    assert badge.text.startswith(text)
    assert badge.tone == tone


def test_assignment_only_to_handlers_of_the_department(db, make_ticket, city):
    ticket = make_ticket()
    assert {u.username for u in t.assignable_users(ticket)} == {"handler_ga", "handler_hz"}
    t.assign(ticket, city.users.supervisor, city.users.handler2)
    assert ticket.assignee_id == city.users.handler2.id
    with pytest.raises(ValidationError, match="只能指派"):
        t.assign(ticket, city.users.handler, city.users.other)
