"""Issue 16: a reply the citizen never rates closes by itself as 未评价 (the close_unrated job),
once; and the ticket page shows the new deadlines, states and outcomes in Chinese."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from feedback.tickets import closing, workflow
from feedback.tickets import service as t
from feedback.tickets.models import Ticket, TicketEvent
from tests.conftest import login, walk_to
from tests.tickets.test_rules import bj


def test_a_reply_nobody_rates_closes_as_unrated_after_five_working_days_once(db, city, clock, make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users, now=bj("2026-11-23T11:00:00"))
    rated = walk_to(make_ticket(), "replied", city.users, now=bj("2026-11-23T11:00:00"))
    db.session.commit()
    tid, rated_id = ticket.id, rated.id
    # 5 working days after the reply: 11-24, 25, 26, 27, 30 → until 11-30 23:59:59.
    assert closing.close_unrated(bj("2026-11-30T23:00:00")) == {"waiting": 2}
    t.rate_handling(db.session.get(Ticket, rated_id), "满意", "link", now=bj("2026-11-30T23:30:00"))
    db.session.commit()
    assert closing.close_unrated(bj("2026-12-01T00:30:00")) == {"closed": 1}
    assert closing.close_unrated(bj("2026-12-01T00:40:00")) == {}
    ticket = db.session.get(Ticket, tid)
    assert (ticket.state, ticket.is_open, ticket.close_reason) == ("closed", False, "unrated")
    assert ticket.handling_rating is None
    assert ticket.closed_at == bj("2026-12-01T00:30:00")
    events = db.session.scalars(sa.select(TicketEvent).where(TicketEvent.ticket_id == tid,
                                                             TicketEvent.kind == "unrated_closed")).all()
    assert len(events) == 1
    assert "记为未评价" in events[0].note
    assert db.session.get(Ticket, rated_id).close_reason == "rated"


def test_the_unrated_close_is_a_job_and_claims_each_ticket_once(app, db, city, make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users, now=bj("2026-11-23T11:00:00"))
    db.session.commit()
    # A second run that read the same candidate before the first claimed it finds it claimed.
    db.session.execute(sa.update(Ticket).where(Ticket.id == ticket.id).values(close_reason="unrated"))
    db.session.commit()
    assert closing.close_unrated(bj("2026-12-02T10:00:00")) == {"already_done": 1}
    db.session.execute(sa.update(Ticket).where(Ticket.id == ticket.id).values(close_reason=None))
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["jobs", "run", "close_unrated", "--now", "2026-12-02T10:00", "--commit"])
    assert result.exit_code == 0, result.output
    assert "'closed': 1" in result.output
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "closed"


def test_the_rating_link_after_the_unrated_close_says_the_ticket_is_closed(client, db, city, make_ticket):
    ticket = walk_to(make_ticket(), "replied", city.users, now=bj("2026-11-23T11:00:00"))
    db.session.commit()
    closing.close_unrated(bj("2026-12-02T10:00:00"))
    with pytest.raises(workflow.InvalidTransitionError, match="已办结"):
        t.rate_handling(db.session.get(Ticket, ticket.id), "满意", "link")


# ---------------------------------------------------------------- the ticket page

def test_the_ticket_page_shows_rework_deadline_close_reason_and_unrated_in_chinese(client, db, city, clock,
                                                                                    make_ticket):
    reworked = walk_to(make_ticket(), "replied", city.users)
    t.rate_handling(reworked, "不满意", "link")
    t.review(reworked, city.users.supervisor, decision="rework", note="重新整改")
    waiting = walk_to(make_ticket(), "replied", city.users)
    unrated = walk_to(make_ticket(now=bj("2026-11-13T10:00:00")), "replied", city.users, now=bj("2026-11-13T11:00:00"))
    db.session.commit()
    closing.close_unrated(clock.now)
    login(client, "super")
    html = client.get(f"/console/tickets/{reworked.id}").get_data(as_text=True)
    assert "重新整改答复期限" in html
    assert "2026-11-30 23:59" in html  # 5 working days from 11-23 10:00
    assert "重新整改中，待再次答复" in html
    html = client.get(f"/console/tickets/{waiting.id}").get_data(as_text=True)
    assert "群众评价截止" in html
    assert "逾期未评价将自动办结" in html
    html = client.get(f"/console/tickets/{unrated.id}").get_data(as_text=True)
    assert 'id="close-reason">未评价（答复后群众未评价，自动办结）' in html
    assert "未评价（不计入回访整改满意率）" in html
    assert "群众未评价，自动办结" in html  # the timeline event's label
    page = client.get(f"/console/tickets/{make_ticket().id}").get_data(as_text=True)
    assert "须在答复期限" in page
