"""The ledger: every reportable event writes one message in the transaction of its cause,
skipped when it must never go up, in the right lane, waiting for the right parent; 补报 fills
what is missing and never doubles; 对账 warns the administrators of a difference."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import walk_to


@pytest.fixture
def national(db, city):
    """The city's items with national 实施编码 (reported); ``city.other_item`` stays local."""
    city.item.implementation_code = "11340000MB0000000A3340110001000"[:31]
    city.item.handle_item_code = "113400000000000000334011000100001"[:33]
    city.item.item_type = "01"
    city.child.credit_code = "91350100M000100Y43"
    city.child.area_code = "341602000000"
    db.session.commit()
    return city


def messages(db, **where):
    from feedback.exchange.models import ExchangeMessage

    q = sa.select(ExchangeMessage).order_by(ExchangeMessage.id)
    for key, value in where.items():
        q = q.where(getattr(ExchangeMessage, key) == value)
    return list(db.session.scalars(q))


def by_key(db) -> dict:
    return {m.subject_key: m for m in messages(db)}


def test_a_record_registered_through_the_service_is_queued_once_and_a_local_items_record_is_skipped(db, national, clock):
    from feedback.evaluations import service as ratings

    reported = ratings.create_record(record_number="A1", service_item_code=national.item.code, window_code="W01",
                                     staff_number=None, completed_at=clock.now, now=clock.now)
    local = ratings.create_record(record_number="A2", service_item_code=national.other_item.code, window_code="W02",
                                  staff_number=None, completed_at=clock.now, now=clock.now)
    db.session.commit()
    rows = by_key(db)
    assert rows[f"REC-{reported.id}"].status == "pending", "a record of a national item waits to go up"
    assert rows[f"REC-{reported.id}"].message_id == f"city-REC-{reported.id}", "the dedupe key is stable"
    assert rows[f"REC-{local.id}"].status == "skipped", "a local item's record is never reported"
    assert "本地事项" in rows[f"REC-{local.id}"].last_error
    assert rows[f"REC-{reported.id}"].business_date == date(2026, 11, 23)


def test_a_bad_rating_takes_the_fast_lane_with_its_record_and_a_good_one_is_batched(db, national, make_evaluation):
    good = make_evaluation(level=5)
    bad = make_evaluation(level=1, reasons=[115], comment="态度差")
    rows = by_key(db)
    assert rows[f"EVA-{good.id}"].lane == "batch"
    assert rows[f"EVA-{good.id}"].depends_on == f"REC-{good.service_record_id}", "a rating waits for its record"
    assert rows[f"EVA-{bad.id}"].lane == "fast", "a bad rating goes within the minute"
    assert rows[f"REC-{bad.service_record_id}"].lane == "fast", "its record is promoted with it"
    assert rows[f"REC-{good.service_record_id}"].lane == "batch"


def test_a_walk_in_rating_and_a_rating_of_a_local_item_are_skipped_with_the_reason(db, national, make_evaluation):
    walk_in = make_evaluation(level=4, record=None)
    local = make_evaluation(level=4, window=national.other_window)
    rows = by_key(db)
    assert rows[f"EVA-{walk_in.id}"].status == "skipped" and "无办件" in rows[f"EVA-{walk_in.id}"].last_error
    assert rows[f"EVA-{local.id}"].status == "skipped", "the rating of a local item's record stays home too"


def test_a_rolled_back_rating_leaves_no_message(db, national, make_record, clock):
    from feedback.evaluations import service as ratings

    record = make_record()
    ratings.rate(record=record, level=2, channel="hall_tablet", comment="慢", now=clock.now)
    db.session.rollback()
    assert [m.subject_key for m in messages(db, kind="evaluation")] == [], "the message shares its cause's transaction"


def test_ticket_steps_and_the_citizens_verdict_are_reported_after_the_rating(db, national, make_ticket, clock):
    from feedback.tickets import service as tickets
    from feedback.tickets.models import TicketEvent

    def step_kinds():
        return [db.session.get(TicketEvent, m.subject_id).kind for m in messages(db, kind="rectification")]

    ticket = make_ticket()
    walk_to(ticket, "replied", national.users)
    db.session.commit()
    assert step_kinds() == ["rectify", "reply"], f"rectify and reply are reported, not accept/verify: {step_kinds()}"
    tickets.rate_handling(ticket, "satisfied", "web", now=clock.now)
    db.session.commit()
    assert "handling_rated" in step_kinds(), "the citizen's verdict on the handling goes up"
    assert {m.depends_on for m in messages(db, kind="rectification")} == {f"EVA-{ticket.evaluation_id}"}


def test_a_complaint_and_its_ticket_steps_are_reported(db, national, make_ticket):
    ticket = make_ticket(source="complaint")
    rows = messages(db, kind="complaint")
    assert [m.subject_key for m in rows] == [f"CMP-{ticket.complaint_id}"]
    assert rows[0].status == "pending"


def test_an_overdue_ticket_is_reported_as_supervision_by_the_sweep(db, national, make_ticket, clock):
    from feedback.deadlines import service as deadlines

    ticket = make_ticket()
    clock.set(ticket.due_at + timedelta(days=10))
    deadlines.sweep(clock.now)
    db.session.commit()
    sup = messages(db, kind="supervision")
    assert sup, "the sweep's 超期预警 and 督办 steps go up (GB/T 39046 table 11)"
    assert all(m.depends_on == f"EVA-{ticket.evaluation_id}" for m in sup)
    assert len({m.subject_key for m in sup}) == len(sup)


def test_an_invalidated_rating_is_reported_after_the_rating(db, national, make_evaluation, clock):
    from feedback.evaluations import service as ratings

    evaluation = make_evaluation(level=1, reasons=[115], comment="x")
    evaluation.flagged = True
    ratings.decide_flag(evaluation, "invalidate", actor=national.users.supervisor, reason="同一人重复刷评", now=clock.now)
    db.session.commit()
    inv = messages(db, kind="evaluation_invalidated")
    assert [m.depends_on for m in inv] == [f"EVA-{evaluation.id}"]


def test_backfill_queues_what_is_missing_once_with_the_records_and_requeues_the_failed(db, national, make_record,
                                                                                     make_evaluation, clock):
    from feedback.exchange import service
    from feedback.exchange.models import ExchangeMessage

    ev = make_evaluation(level=5)
    db.session.execute(sa.delete(ExchangeMessage))  # as if the ratings came before the ledger
    db.session.commit()
    day = date(2026, 11, 23)
    first = service.backfill(day, day)
    db.session.commit()
    assert first["evaluation"] == 1 and first["record"] == 1, first
    rows = by_key(db)
    assert rows[f"EVA-{ev.id}"].backfilled and rows[f"EVA-{ev.id}"].depends_on == f"REC-{ev.service_record_id}"
    again = service.backfill(day, day)
    db.session.commit()
    assert again["evaluation"] == 0 and again["record"] == 0, "a second 补报 queues nothing twice"
    rows[f"EVA-{ev.id}"].status = "failed"
    db.session.commit()
    third = service.backfill(day, day, kind="evaluation")
    db.session.commit()
    assert third["requeued"] == 1
    assert by_key(db)[f"EVA-{ev.id}"].status == "pending"


def test_backfill_refuses_a_reversed_range_and_an_unknown_kind(db, national):
    from feedback.exchange import service

    with pytest.raises(service.ExchangeInputError, match="开始日期不能晚于结束日期"):
        service.backfill(date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(service.ExchangeInputError, match="未知的消息类型"):
        service.backfill(date(2026, 11, 1), date(2026, 11, 2), kind="ratings")


def test_reconciliation_warns_the_administrators_when_local_and_acknowledged_counts_differ(db, national,
                                                                                          make_evaluation, clock):
    from feedback.exchange import service
    from feedback.notifications.models import Notification

    make_evaluation(level=5)
    rows = service.reconcile(date(2026, 11, 23), clock.now)
    db.session.commit()
    by_kind = {r.kind: r for r in rows}
    assert by_kind["evaluation"].local_count == 1 and by_kind["evaluation"].acknowledged == 0
    assert not by_kind["evaluation"].matches, "a rating not yet acknowledged is a difference"
    notes = db.session.scalars(sa.select(Notification).where(Notification.kind == "exchange_mismatch")).all()
    assert {n.user_id for n in notes} == {national.users.admin.id}, "administrators only"
    for m in messages(db):
        m.status = "acknowledged" if m.status != "skipped" else "skipped"
    db.session.commit()
    assert all(r.matches for r in service.reconcile(date(2026, 11, 23), clock.now))


def test_status_by_day_counts_each_status_and_the_oldest_pending(db, national, make_evaluation, clock):
    from feedback.exchange import service

    make_evaluation(level=5)
    make_evaluation(level=1, reasons=[115], comment="差")
    rows = {r.kind: r for r in service.status_by_day(date(2026, 11, 23), date(2026, 11, 23))}
    assert rows["evaluation"].produced == 2 and rows["evaluation"].count("pending") == 2
    assert rows["record"].produced == 2
    assert rows["evaluation"].oldest_pending_at == clock.now
