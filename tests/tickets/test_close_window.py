"""Issue 20, item 6: a supervisor may close a replied ticket "without rating" only once the
citizen's time to rate the reply has run out (UNRATED_CLOSE_WORKING_DAYS working days after the
reply, the window DOMAIN.md gives the close_unrated job), and the citizen's link of a ticket
closed without their rating shows a friendly page, not an error."""
from __future__ import annotations

import pytest

from feedback.tickets import service as t
from feedback.tickets import workflow
from feedback.tickets.models import Ticket
from tests.conftest import walk_to
from tests.tickets.test_rules import bj

REPLIED = "2026-11-23T11:00:00"  # Monday; 5 working days: 11-24 … 11-30, until 11-30 23:59:59


def test_a_supervisor_cannot_close_without_rating_a_minute_after_the_reply(db, city, make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users, now=bj(REPLIED))
    db.session.commit()
    with pytest.raises(workflow.RatingWindowOpenError) as refused:
        t.close(ticket, city.users.supervisor, note="群众未接电话", now=bj("2026-11-23T11:01:00"))
    message = refused.value.message
    assert "答复后 5 个工作日" in message and "2026-11-30 23:59" in message and "期满前不能" in message, message
    assert ticket.state == "replied", "a refused close must change nothing"
    assert "close" not in workflow.available_actions(ticket, city.users.supervisor, now=bj("2026-11-30T23:00:00")), \
        "the ticket page must not offer the close form while the citizen may still rate"


def test_a_supervisor_may_close_without_rating_once_the_window_has_ended(db, city, make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users, now=bj(REPLIED))
    db.session.commit()
    after = bj("2026-12-01T09:00:00")
    assert "close" in workflow.available_actions(ticket, city.users.supervisor, now=after)
    t.close(ticket, city.users.supervisor, note="群众未评价", now=after)
    assert (ticket.state, ticket.close_reason, ticket.handling_rating) == ("closed", "supervisor", None)


def test_a_complaint_waits_for_the_window_too(db, city, make_ticket):
    ticket = walk_to(make_ticket(source="complaint"), "replied", city.users, now=bj(REPLIED))
    db.session.commit()
    with pytest.raises(workflow.RatingWindowOpenError):
        t.close(ticket, city.users.supervisor, note="x", now=bj("2026-11-24T10:00:00"))


def test_an_anonymous_rating_with_no_way_to_rate_the_reply_may_be_closed_at_once(db, city, make_ticket):
    ticket = walk_to(make_ticket(citizen_phone=None), "replied", city.users, now=bj(REPLIED))
    t.close(ticket, city.users.supervisor, note="匿名评价，无法回访", now=bj("2026-11-23T11:05:00"))
    assert ticket.state == "closed"


def test_the_console_refuses_an_early_close_with_the_chinese_reason(client, db, city, make_ticket, clock):
    from tests.conftest import login, post_form

    ticket = walk_to(make_ticket(), "replied", city.users, now=clock.now)
    db.session.commit()
    assert workflow.refusal(ticket, "close", city.users.supervisor, clock.now) is not None
    login(client, city.users.supervisor.username)
    resp = post_form(client, f"/console/tickets/{ticket.id}/close", {"note": "群众未评价"},
                     form_url=f"/console/tickets/{ticket.id}")
    page = resp.get_data(as_text=True)
    assert "期满前不能" in page, "the refusal must be shown to the supervisor in Chinese"
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "replied"


def test_the_citizens_link_of_a_ticket_closed_without_rating_explains_and_offers_a_complaint(client, db, city,
                                                                                             make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users, now=bj(REPLIED))
    db.session.commit()
    url = t.handling_url(ticket).split("://", 1)[1].split("/", 1)[1]
    t.close(ticket, city.users.supervisor, note="群众未评价", now=bj("2026-12-01T09:00:00"))
    db.session.commit()
    resp = client.get("/" + url)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200, "a closed ticket is not an error for the citizen"
    assert "不在待评价状态" not in page
    assert "该工单已办结" in page and "2026年12月01日" in page
    assert "提交投诉" in page and "/complaints/new" in page, "the page must say how to complain"
