"""抽查回访: each week a share of the real-name bad-review tickets closed the week before (at
least one per department) is drawn, seeded per week; a supervisor records the bureau's own
callback; when the citizen does not confirm the department's account, the ticket reopens and a
督办单 is issued. Outcomes are counted per department."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select

from feedback.audit.models import AuditEvent
from feedback.errors import ValidationError
from feedback.orders.models import SupervisionOrder
from feedback.oversight import rechecks
from feedback.oversight.models import Recheck, RecheckDraw
from feedback.tickets import service as t
from feedback.tickets.models import Ticket
from jobs import tasks
from tests.conftest import login, post_form, walk_to

BJ = "+08:00"
LAST_WEEK = "2026-W47"  # Mon 16 – Sun 22 November 2026; the clock is Mon 23 November, 10:00


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso + BJ)


@pytest.fixture
def close_ticket(db, city, make_ticket):
    """``close_ticket(closed_at, **make_ticket overrides)``: a bad-review ticket opened the day
    before ``closed_at`` and closed then by the citizen's 满意."""
    def make(closed_at: str = "2026-11-18T15:00:00", **kw):
        closed = at(closed_at)
        ticket = make_ticket(now=closed - timedelta(days=1), **kw)
        walk_to(ticket, "replied", city.users, now=closed - timedelta(hours=2))
        t.rate_handling(ticket, "satisfied", "link", now=closed)
        db.session.commit()
        return ticket
    return make


def drawn_ids(week: str = LAST_WEEK) -> list[int]:
    return sorted(r.ticket_id for r in rechecks_of(week))


def rechecks_of(week: str) -> list[Recheck]:
    from feedback.extensions import db
    return list(db.session.scalars(select(Recheck).join(RecheckDraw).where(RecheckDraw.week == week)))


def test_weeks_are_iso_weeks_in_beijing_time(app, clock):
    assert rechecks.previous_week(clock.now) == LAST_WEEK
    start, end = rechecks.week_bounds(LAST_WEEK)
    assert start == at("2026-11-16T00:00:00") and end == at("2026-11-23T00:00:00")
    assert rechecks.week_label(LAST_WEEK) == "2026-11-16 至 2026-11-22"
    with pytest.raises(ValidationError, match="周次"):
        rechecks.week_bounds("2026-W99")


@pytest.mark.parametrize("count,share,expected", [
    (0, 0.1, 0), (1, 0.1, 1), (4, 0.1, 1), (14, 0.1, 1), (15, 0.1, 2), (21, 0.1, 2), (25, 0.1, 3),
    (3, 1.0, 3), (5, 0.0, 1)])
def test_each_department_gets_its_share_rounded_and_at_least_one(count, share, expected):
    assert rechecks.sample_size(count, share) == expected


def test_the_draw_takes_the_share_of_each_department_and_at_least_one_from_each(db, app, city, close_ticket, clock):
    mine = [close_ticket(f"2026-11-{16 + i % 5}T1{i % 8}:00:00") for i in range(15)]
    theirs = [close_ticket("2026-11-19T09:00:00", window=city.other_window)]
    made, new = rechecks.draw(clock.now)
    db.session.commit()
    assert new and made.week == LAST_WEEK and made.eligible == 16 and made.drawn == 3
    rows = rechecks_of(LAST_WEEK)
    by_department = {d: sorted(r.ticket_id for r in rows if r.department_id == d)
                     for d in (city.child.id, city.other.id)}
    assert len(by_department[city.child.id]) == 2  # 10 % of 15, rounded
    assert set(by_department[city.child.id]) <= {tk.id for tk in mine}
    assert by_department[city.other.id] == [theirs[0].id]  # 10 % of 1 → at least one
    assert all(r.state == "pending" for r in rows)
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "oversight.recheck_draw")).one()


def test_a_rerun_draws_nothing_new_and_a_fresh_draw_of_the_week_picks_the_same_tickets(db, app, city, close_ticket,
                                                                                      clock):
    for i in range(30):
        close_ticket(f"2026-11-{16 + i % 6}T10:{i:02d}:00")
    first, _ = rechecks.draw(clock.now)
    db.session.commit()
    picked = drawn_ids()
    assert len(picked) == 3
    again, new = rechecks.draw(clock.now + timedelta(hours=5))
    assert not new and again.id == first.id and drawn_ids() == picked
    assert tasks.recheck_draw(clock.now + timedelta(days=2)) == {"week": LAST_WEEK, "new": False, "eligible": 30,
                                                                 "drawn": 3}
    db.session.execute(delete(Recheck))
    db.session.execute(delete(RecheckDraw))
    db.session.commit()
    rechecks.draw(clock.now)
    db.session.commit()
    assert drawn_ids() == picked


def test_only_closed_real_name_bad_review_tickets_closed_last_week_are_drawn(db, app, city, close_ticket, make_ticket,
                                                                           clock):
    app.config["RECHECK_SHARE"] = 1.0
    wanted = [close_ticket("2026-11-16T00:30:00"), close_ticket("2026-11-22T23:30:00"),
              close_ticket(window=city.other_window)]
    close_ticket("2026-11-15T23:30:00")  # the week before
    close_ticket("2026-11-23T08:00:00")  # this week
    close_ticket(citizen_phone=None)  # anonymous: no citizen to call
    walk_to(make_ticket(now=at("2026-11-17T10:00:00")), "replied", city.users)  # still open
    today = clock.now
    clock.set(at("2026-11-17T10:00:00"))
    complaint = make_ticket(source="complaint")
    clock.set(today)
    walk_to(complaint, "replied", city.users, now=at("2026-11-18T10:00:00"))
    t.rate_handling(complaint, "satisfied", "link", now=at("2026-11-18T12:00:00"))  # not a bad review
    upheld = make_ticket(now=at("2026-11-17T10:00:00"))
    t.appeal(upheld, city.users.handler, reason="恶意差评", now=at("2026-11-17T11:00:00"))
    t.decide_appeal(upheld, city.users.supervisor, upheld=True, note="查实为恶意评价", now=at("2026-11-18T11:00:00"))
    db.session.commit()
    made, _ = rechecks.draw(clock.now)
    db.session.commit()
    assert drawn_ids() == sorted(tk.id for tk in wanted)
    assert made.eligible == 3


def test_a_week_without_closed_tickets_draws_an_empty_week_once(db, app, clock):
    made, new = rechecks.draw(clock.now)
    assert new and made.drawn == 0 and made.eligible == 0
    assert rechecks.counts() == []


@pytest.fixture
def pending(db, app, city, close_ticket, clock):
    """One drawn re-check of a closed ticket of 户政支队 (share 100 %)."""
    app.config["RECHECK_SHARE"] = 1.0
    ticket = close_ticket()
    rechecks.draw(clock.now)
    db.session.commit()
    (found,) = rechecks_of(LAST_WEEK)
    assert found.ticket_id == ticket.id
    return found


def test_a_callback_that_did_not_reach_the_citizen_is_recorded_and_changes_nothing_else(db, city, pending):
    rechecks.record_outcome(pending, city.users.supervisor, reached=False, confirmed=True, note="无人接听")
    db.session.commit()
    assert (pending.state, pending.reached, pending.confirmed) == ("done", False, None)
    assert pending.ticket.state == "closed" and pending.order_number is None
    assert [(c.drawn, c.done, c.reached, c.confirmed, c.not_confirmed) for c in rechecks.counts()] == [(1, 1, 0, 0, 0)]


def test_a_confirmed_account_is_recorded_once_and_audited(db, city, pending, clock):
    rechecks.record_outcome(pending, city.users.supervisor, reached=True, confirmed=True, note="")
    db.session.commit()
    assert (pending.state, pending.reached, pending.confirmed, pending.note) == ("done", True, True, None)
    assert pending.called_at == clock.now and pending.recorded_by_id == city.users.supervisor.id
    assert pending.ticket.state == "closed"
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "oversight.recheck_record")).one()
    assert event.detail["confirmed"] is True and event.actor_id == city.users.supervisor.id
    with pytest.raises(rechecks.RecheckAlreadyRecordedError):
        rechecks.record_outcome(pending, city.users.supervisor, reached=True, confirmed=False, note="改口")


def test_a_reached_citizen_needs_an_answer_and_a_denial_needs_a_note(db, city, pending):
    with pytest.raises(ValidationError, match="是否认可"):
        rechecks.record_outcome(pending, city.users.supervisor, reached=True, confirmed=None, note="")
    with pytest.raises(ValidationError, match="不符之处"):
        rechecks.record_outcome(pending, city.users.supervisor, reached=True, confirmed=False, note=" ")
    with pytest.raises(rechecks.RecheckNotSupervisorError):
        rechecks.record_outcome(pending, city.users.handler, reached=True, confirmed=True, note="")
    assert pending.state == "pending"


def test_an_account_that_does_not_hold_reopens_the_ticket_and_issues_an_order(db, city, pending, clock):
    ticket = pending.ticket
    rechecks.record_outcome(pending, city.users.supervisor, reached=True, confirmed=False,
                            note="群众称部门从未回访", due_working_days=3)
    db.session.commit()
    db.session.refresh(ticket)
    assert ticket.state == "rectifying" and ticket.is_open and ticket.closed_at is None
    assert ticket.replied_at is None and ticket.close_reason is None
    assert ticket.due_at == ticket.rework_due_at == at("2026-11-30T23:59:59")  # 5 working days from Mon 23
    reopened = next(e for e in ticket.events if e.kind == "recheck_reopened")
    assert reopened.actor_id == city.users.supervisor.id and "13800138000" not in reopened.note
    assert "群众称部门从未回访" not in reopened.note  # the note may quote the citizen: kept off the timeline
    order = db.session.scalars(select(SupervisionOrder).where(SupervisionOrder.ticket_id == ticket.id)).one()
    assert order.source == "recheck" and order.status == "open" and order.due_working_days == 3
    assert order.department_id == city.child.id
    assert (pending.reopened, pending.order_id, pending.order_number) == (True, order.id, order.number)
    (counted,) = rechecks.counts(LAST_WEEK)
    assert (counted.name, counted.drawn, counted.done, counted.reached, counted.confirmed, counted.not_confirmed) == (
        "户政支队", 1, 1, 1, 0, 1)


def test_the_reopened_ticket_is_worked_and_closed_again(db, city, pending, clock):
    ticket = pending.ticket
    rechecks.record_outcome(pending, city.users.supervisor, reached=True, confirmed=False, note="未整改")
    t.reply(ticket, city.users.handler, text="已重新整改")
    t.rate_handling(ticket, "satisfied", "link")
    assert ticket.state == "closed"


def test_a_ticket_closed_as_invalid_cannot_be_reopened_by_a_recheck(db, city, make_ticket):
    ticket = make_ticket()
    t.appeal(ticket, city.users.handler, reason="恶意差评")
    t.decide_appeal(ticket, city.users.supervisor, upheld=True, note="查实")
    with pytest.raises(t.workflow.InvalidTransitionError, match="不能重新打开"):
        t.reopen_after_recheck(ticket, city.users.supervisor, note="x")
    with pytest.raises(t.workflow.ActionNotAllowedError):
        t.reopen_after_recheck(ticket, city.users.handler, note="x")


def test_the_recheck_pages_show_the_phone_masked_and_reveal_it_audited(client, db, city, pending):
    login(client, "super")
    html = client.get("/console/rechecks").get_data(as_text=True)
    assert f"#{pending.ticket_id}" in html and "户政支队" in html
    url = f"/console/rechecks/{pending.id}"
    html = client.get(url).get_data(as_text=True)
    assert "138****8000" in html and "13800138000" not in html
    resp = post_form(client, url + "/phone", {}, form_url=url)
    assert resp.status_code == 200 and "+8613800138000" in resp.get_data(as_text=True)
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "ticket.phone_reveal")).one()


def test_the_recheck_form_records_a_denial_that_reopens_the_ticket(client, db, city, pending):
    login(client, "super")
    url = f"/console/rechecks/{pending.id}"
    resp = post_form(client, url, {"reached": "yes", "confirmed": "no", "note": ""}, form_url=url)
    assert resp.status_code == 422 and "不符之处" in resp.get_data(as_text=True)
    resp = post_form(client, url, {"reached": "yes", "confirmed": "no", "note": "群众称未整改",
                                   "order_content": "请重新整改", "due_working_days": "5"}, form_url=url)
    assert resp.status_code == 302
    html = client.get(url).get_data(as_text=True)
    assert "督〔2026〕" in html and "已重新打开" in html
    ticket = db.session.get(Ticket, pending.ticket_id)
    db.session.refresh(ticket)
    assert ticket.state == "rectifying"
    assert client.get("/console/rechecks?week=nonsense").status_code == 200
    assert client.get("/console/rechecks/999999").status_code == 404


def test_odd_values_in_every_field_of_the_recheck_form_never_make_a_500(client, db, city, pending):
    from tests.security.test_odd_inputs import ODD

    login(client, "super")
    url = f"/console/rechecks/{pending.id}"
    good = {"reached": "yes", "confirmed": "yes", "note": "", "order_content": "请整改", "due_working_days": "5"}
    for value in ODD:
        for name in good:
            resp = post_form(client, url, {**good, name: value}, form_url=url)
            assert resp.status_code < 500, (name, value)
            if resp.status_code == 302:  # a value that happens to be valid: back to the queue
                db.session.refresh(pending)
                pending.state, pending.reached, pending.confirmed = "pending", None, None
                db.session.commit()


def test_contact_erasure_masks_the_numbers_and_names_in_a_recheck_note(db, app, city, close_ticket, clock):
    from feedback.privacy import service as privacy

    app.config["RECHECK_SHARE"] = 1.0
    close_ticket(citizen_name="李雪梅")
    rechecks.draw(clock.now)
    (found,) = rechecks_of(LAST_WEEK)
    rechecks.record_outcome(found, city.users.supervisor, reached=True, confirmed=True,
                            note="李雪梅女士确认已整改，另留电话13912345678")
    db.session.commit()
    privacy.erase_contacts(clock.now + timedelta(days=app.config["CONTACT_RETENTION_DAYS"] + 2))
    db.session.commit()
    db.session.refresh(found)
    assert found.note == "某某女士确认已整改，另留电话***"
