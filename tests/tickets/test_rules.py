"""Issue 16, every ticket rule enforced: invalid ratings close their tickets, appeals filed by the
department and decided by someone else, extensions only before the deadline, rework with its own
deadline (the 未评价 close is in test_unrated.py)."""
from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from feedback.deadlines import service as deadlines
from feedback.deadlines.models import TicketDeadlineStep
from feedback.evaluations import service as ratings
from feedback.publications import service as pubs
from feedback.statistics import service as stats
from feedback.errors import PermissionDeniedError, ValidationError
from feedback.tickets import workflow
from feedback.tickets import service as t
from feedback.tickets.models import Ticket
from tests.conftest import walk_to

BJ = "+08:00"


def bj(text: str) -> datetime:
    return datetime.fromisoformat(text + BJ)


def _flag(db, ticket):
    ev = ticket.evaluation
    ev.flagged, ev.flag_reason = True, "同一号码 1 天内评价 7 个办件"
    db.session.commit()
    return ev


# ---------------------------------------------------------------- 3. invalid ratings

def test_invalidating_a_flagged_bad_rating_closes_its_ticket_never_escalated_overdue_or_published(
        db, city, clock, make_ticket):
    ticket = make_ticket()
    tid = ticket.id
    ev = _flag(db, ticket)
    ratings.decide_flag(ev, "invalidate", actor=city.users.supervisor, reason="同一人批量刷差评")
    db.session.commit()
    ticket = db.session.get(Ticket, tid)
    assert (ticket.state, ticket.is_open, ticket.outcome) == ("closed", False, "rating_invalid")
    assert ticket.close_reason == "rating_invalid"
    assert ticket.closed_at == clock.now
    assert ticket.next_deadline_check_at is None
    event = ticket.events[-1]
    assert (event.kind, event.actor_label) == ("rating_invalid", "督查员")
    assert "同一人批量刷差评" in event.note
    # Never escalated: its deadlines (11-24 verification, 11-30 reply) pass without a step.
    later = bj("2026-12-10T10:00:00")
    deadlines.sweep(later)
    assert db.session.scalar(sa.select(sa.func.count(TicketDeadlineStep.id))) == 0
    assert db.session.get(Ticket, tid).escalation_level == 0
    # Never counted overdue on the public pages.
    assert stats.count_overdue(later) == {}
    # Never published.
    assert not pubs.eligible(ticket)
    with pytest.raises(pubs.NotEligibleError, match="被认定无效"):
        pubs.draft_for(ticket, city.users.supervisor)
    assert pubs.awaiting()[1] == 0


def test_a_rating_invalidated_after_its_ticket_closed_is_still_never_published(db, city, make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users)
    t.rate_handling(ticket, "满意", "link")
    db.session.commit()
    assert pubs.eligible(ticket)
    ev = _flag(db, ticket)
    ratings.decide_flag(ev, "invalidate", actor=city.users.supervisor, reason="刷评")
    db.session.commit()
    assert ticket.outcome == "fixed_at_once"  # a closed ticket keeps what it was closed with
    assert not pubs.eligible(ticket)
    with pytest.raises(pubs.NotEligibleError):
        pubs.draft_for(ticket, city.users.supervisor)


def test_keeping_a_flagged_rating_leaves_its_ticket_open(db, city, make_ticket):
    ticket = make_ticket()
    ratings.decide_flag(_flag(db, ticket), "keep", actor=city.users.supervisor)
    db.session.commit()
    assert (ticket.state, ticket.is_open) == ("new", True)


# ---------------------------------------------------------------- 7. appeals

def test_a_supervisor_cannot_file_an_appeal(db, city, make_ticket):
    ticket = make_ticket()
    with pytest.raises(PermissionDeniedError, match="只有工单所属部门的办理人员可以提出申诉"):
        t.appeal(ticket, city.users.supervisor, reason="恶意差评")
    assert ticket.state == "new"
    assert ticket.appeal_state is None


def test_only_a_handler_of_the_tickets_department_files_an_appeal(db, city, make_ticket, make_user):
    ticket = make_ticket()  # 户政支队
    with pytest.raises(PermissionDeniedError, match="只有工单所属部门的办理人员"):
        t.appeal(ticket, city.users.other, reason="不属本部门")  # 市场监管局's handler
    rated = make_user("handler", departments=[city.child], username="wang_handler")
    rated.staff_id = city.staff.id
    db.session.commit()
    with pytest.raises(PermissionDeniedError, match="被评价的工作人员本人除外"):
        t.appeal(ticket, rated, reason="评价我的人是恶意的")  # the rated staff member
    t.appeal(ticket, city.users.handler2, reason="评价人当天未到本窗口")
    assert ticket.state == "appealed"


def test_whoever_decides_an_appeal_is_not_whoever_filed_it(db, city, make_ticket, make_user):
    ticket = make_ticket()
    filer = city.users.handler
    t.appeal(ticket, filer, reason="评价人与窗口有私人纠纷")
    db.session.commit()
    filer.role = "supervisor"  # promoted meanwhile: still may not decide their own appeal
    db.session.commit()
    with pytest.raises(PermissionDeniedError, match="须由其他督查人员审核"):
        t.decide_appeal(ticket, filer, upheld=True, note="属实")
    assert "decide_appeal" not in workflow.available_actions(ticket, filer)
    assert (ticket.state, ticket.evaluation.invalid) == ("appealed", False)
    t.decide_appeal(ticket, city.users.supervisor, upheld=True, note="经调取录像，申诉属实")
    assert (ticket.state, ticket.close_reason, ticket.evaluation.invalid) == ("closed", "appeal_upheld", True)


# ---------------------------------------------------------------- 9. extensions

def test_an_extension_after_the_deadline_it_extends_is_refused_and_the_ticket_stays_late(db, city, clock, make_ticket):
    ticket = make_ticket()  # reply due 2026-11-30 23:59:59
    late = bj("2026-12-01T09:00:00")
    with pytest.raises(ValidationError, match="届满前申请"):
        t.extend(ticket, city.users.supervisor, reason="情况复杂", now=late)
    assert ticket.extended_at is None
    assert ticket.due_at == bj("2026-11-30T23:59:59")
    assert "extend" not in workflow.available_actions(ticket, city.users.supervisor, late)
    t.extend(ticket, city.users.supervisor, reason="情况复杂", now=bj("2026-11-30T23:00:00"))
    assert ticket.extended_due_at == ticket.due_at


# ---------------------------------------------------------------- 8. rework

def test_rework_after_dissatisfaction_gets_a_new_reply_deadline_from_the_decision(db, city, clock, make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users)  # replied 11-23, on time
    t.rate_handling(ticket, "不满意", "link", now=bj("2026-12-02T10:00:00"))
    assert ticket.state == "reopened"
    # Answered already: waiting for the review is not overdue, though the first deadline passed.
    assert stats.count_overdue(bj("2026-12-03T10:00:00")) == {}
    t.review(ticket, city.users.supervisor, decision="rework", note="答复未解决问题，请重新整改",
             now=bj("2026-12-03T10:00:00"))
    db.session.commit()
    # REWORK_DUE_WORKING_DAYS (5) from the decision: 12-04, 07, 08, 09, 10.
    assert ticket.rework_due_at == ticket.due_at == bj("2026-12-10T23:59:59")
    assert ticket.reworked_at == bj("2026-12-03T10:00:00")
    assert ticket.reply_due_at == bj("2026-11-30T23:59:59")  # kept for the record
    assert ticket.replied_at is None  # the clock runs again
    assert ticket.next_deadline_check_at == bj("2026-12-10T00:00:00")
    assert datetime.fromisoformat(ticket.events[-1].data["rework_due_at"]) == bj("2026-12-10T23:59:59")
    assert stats.count_overdue(bj("2026-12-10T12:00:00")) == {}
    assert stats.count_overdue(bj("2026-12-11T00:00:01")) == {city.child.id: 1}
    with pytest.raises(workflow.InvalidTransitionError, match="重新整改的工单"):
        t.extend(ticket, city.users.supervisor, reason="再延", now=bj("2026-12-04T10:00:00"))
    t.reply(ticket, city.users.handler, text="已再次整改。", now=bj("2026-12-09T10:00:00"))
    assert ticket.on_time is True
    assert stats.count_overdue(bj("2026-12-11T00:00:01")) == {}


def test_a_rework_decision_can_be_made_a_different_number_of_days(app, db, city, make_ticket):
    app.config["REWORK_DUE_WORKING_DAYS"] = 2
    ticket = walk_to(make_ticket(), "replied", city.users)
    t.rate_handling(ticket, "不满意", "link")
    t.review(ticket, city.users.supervisor, decision="rework", note="重新整改", now=bj("2026-11-23T12:00:00"))
    assert ticket.due_at == bj("2026-11-25T23:59:59")
