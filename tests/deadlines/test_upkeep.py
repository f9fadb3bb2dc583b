"""The other periodic work: automatic 基本满意, contact erasure, provisional deadlines recomputed."""
from __future__ import annotations

import sqlalchemy as sa

from feedback.audit.models import AuditEvent
from feedback.complaints.models import Complaint
from feedback.deadlines import service as deadlines
from feedback.deadlines import provisional
from feedback.evaluations import automatic
from feedback.idempotency import service as idempotency
from feedback.privacy import service as privacy
from feedback.deadlines.models import TicketDeadlineStep
from feedback.evaluations import service as ratings
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.tickets import service as t
from feedback.tickets.models import Ticket, TicketEvent
from tests.calendar.helpers import ARRANGEMENT_2027_CSV
from tests.deadlines.conftest import bj
from tests.conftest import walk_to


def test_records_left_unrated_get_basically_satisfied_on_channel_default_once(app, db, clock, make_record):
    clock.set(bj(2026, 11, 23, 10))
    late = make_record(record_number="A1", completed_at=bj(2026, 11, 23, 10), citizen_phone="13800138000")
    rated = make_record(record_number="A2", completed_at=bj(2026, 11, 23, 10), citizen_phone="13800138000")
    recent = make_record(record_number="A3", completed_at=bj(2026, 11, 26, 10), citizen_phone="13800138000")
    ratings.rate(record=rated, level=5, channel="hall_tablet", now=clock.now)
    db.session.commit()
    assert automatic.auto_rate(bj(2026, 11, 30, 9)) == {"complete": 1}  # the window closes at 10:00
    summary = automatic.auto_rate(bj(2026, 11, 30, 11))
    assert summary == {"rated": 1, "complete": 1}
    ev = db.session.scalar(sa.select(Evaluation).where(Evaluation.service_record_id == late.id))
    assert (ev.level, ev.channel, ev.is_active_rating, ev.flagged) == (3, "default", False, False)
    assert ev.rated_at == bj(2026, 11, 30, 10)
    assert db.session.scalar(sa.select(Evaluation.level).where(Evaluation.service_record_id == rated.id)) == 5
    assert db.session.scalar(sa.select(Evaluation.id).where(Evaluation.service_record_id == recent.id)) is None
    assert automatic.auto_rate(bj(2026, 11, 30, 11)) == {"complete": 1}
    assert automatic.auto_rate(bj(2026, 12, 3, 11))["rated"] == 1  # the recent one, in its turn
    app.config["AUTO_RATING_ENABLED"] = False
    make_record(record_number="A4", completed_at=bj(2026, 11, 25, 10), citizen_phone="13800138000")
    db.session.commit()
    assert automatic.auto_rate(bj(2026, 12, 31)) == {"enabled": False}


def test_a_record_registered_after_its_rating_window_closed_gets_the_default_rating_at_once(app, db, city):
    """A window system sends a week-old backlog after the auto_rating pass has moved its
    watermark past those completion times: the pass would never read them again, so each
    gets 基本满意 (default, rated when its window closed) as it is registered."""
    assert automatic.auto_rate(bj(2026, 11, 30, 11)) == {"complete": 1}  # watermark: 11-23 11:00
    backlog = ratings.create_record(
        record_number="LATE1", service_item_code=city.item.code, window_code=city.window.code,
        staff_number=city.staff.staff_number, completed_at=bj(2026, 11, 20, 9), citizen_phone="13800138000",
        now=bj(2026, 11, 30, 12))
    open_window = ratings.create_record(
        record_number="LATE2", service_item_code=city.item.code, window_code=city.window.code,
        staff_number=None, completed_at=bj(2026, 11, 29, 9), now=bj(2026, 11, 30, 12))
    db.session.commit()
    ev = db.session.scalar(sa.select(Evaluation).where(Evaluation.service_record_id == backlog.id))
    assert (ev.level, ev.channel, ev.is_active_rating, ev.flagged, ev.rated_at) == (3, "default", False, False,
                                                                                   bj(2026, 11, 27, 9))
    assert db.session.scalar(sa.select(Evaluation.id).where(Evaluation.service_record_id == open_window.id)) is None
    assert automatic.auto_rate(bj(2026, 11, 30, 12, 1)) == {"complete": 1}  # nothing twice
    assert automatic.auto_rate(bj(2026, 12, 6, 10))["rated"] == 1  # the open one, when its window closes
    app.config["AUTO_RATING_ENABLED"] = False
    off = ratings.create_record(record_number="LATE3", service_item_code=city.item.code, window_code=None,
                                staff_number=None, completed_at=bj(2026, 11, 1, 9), now=bj(2026, 11, 30, 12))
    db.session.commit()
    assert db.session.scalar(sa.select(Evaluation.id).where(Evaluation.service_record_id == off.id)) is None


def test_contact_data_is_erased_a_retention_period_after_closure_and_statistics_keep_real_name(
        app, db, clock, city, make_record, make_ticket):
    clock.set(bj(2026, 1, 5, 10))
    closed = make_ticket(now=clock.now)
    walk_to(closed, "replied", city.users, now=clock.now)
    t.rate_handling(closed, "满意", "link", now=clock.now)
    still_open = make_ticket(now=clock.now)
    good = make_record(record_number="G1", completed_at=clock.now, citizen_phone="13800138000")
    ratings.rate(record=good, level=5, channel="qr", now=clock.now)
    complaint = make_ticket(source="complaint")
    walk_to(complaint, "replied", city.users, now=clock.now)
    t.rate_handling(complaint, "满意", "link", now=clock.now)
    db.session.commit()

    assert privacy.erase_contacts(bj(2026, 7, 1))["records"] == 0  # 177 days: kept
    summary = privacy.erase_contacts(bj(2026, 7, 10))
    assert (summary["records"], summary["complaints"]) == (2, 1)
    db.session.expire_all()
    erased = db.session.get(Ticket, closed.id).evaluation.record
    assert erased.citizen_phone is None
    assert erased.contact_erased_at == bj(2026, 7, 10)
    assert db.session.get(Ticket, closed.id).evaluation.real_name is True  # statistics keep it
    assert db.session.get(Ticket, closed.id).callback_contact is None
    assert db.session.get(ServiceRecord, good.id).citizen_phone is None
    assert db.session.get(Ticket, still_open.id).evaluation.record.citizen_phone == "+8613800138000"
    c = db.session.get(Complaint, db.session.get(Ticket, complaint.id).complaint_id)
    assert c.contact_phone is None
    assert c.contact_erased_at is not None
    audit = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "privacy.contact_erasure")).one()
    assert audit.detail["records"] == 2
    assert privacy.erase_contacts(bj(2026, 7, 11))["records"] == 0


def test_provisional_deadlines_are_recomputed_after_the_2027_arrangement_is_imported(
        app, db, clock, city, make_ticket, tmp_path):
    clock.set(bj(2026, 12, 28, 10))
    ticket = make_ticket(now=clock.now)
    tid = ticket.id
    assert ticket.due_provisional
    assert ticket.due_at == bj(2027, 1, 4, 23, 59, 59)
    assert provisional.recompute_provisional(clock.now) == {"still_provisional": 1}

    path = tmp_path / "2027.csv"
    path.write_bytes(ARRANGEMENT_2027_CSV)  # 2027-01-01..03 off
    result = app.test_cli_runner().invoke(args=["calendar", "import", str(path)])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    result = app.test_cli_runner().invoke(args=["jobs", "run", "provisional_deadlines", "--now", "2026-12-28T11:00",
                                                "--commit"])
    assert result.exit_code == 0, result.output
    assert "'recomputed': 1" in result.output, result.output
    db.session.expire_all()
    ticket = db.session.get(Ticket, tid)
    assert not ticket.due_provisional
    assert ticket.due_at == ticket.reply_due_at == bj(2027, 1, 5, 23, 59, 59)  # New Year's Day no longer counts
    event = db.session.scalars(sa.select(TicketEvent).where(TicketEvent.ticket_id == tid,
                                                            TicketEvent.kind == "deadline_recomputed")).one()
    assert "2027-01-04 23:59" in event.note
    assert "2027-01-05 23:59" in event.note
    # The sweep reminds on the new last working day, not the old one.
    deadlines.sweep(bj(2027, 1, 4, 12))
    assert db.session.scalar(sa.select(TicketDeadlineStep.id).where(TicketDeadlineStep.step == "reminder")) is None
    deadlines.sweep(bj(2027, 1, 5, 1))
    step = db.session.scalars(sa.select(TicketDeadlineStep).where(TicketDeadlineStep.step == "reminder")).one()
    assert step.due_at == bj(2027, 1, 5, 23, 59, 59)
    assert provisional.recompute_provisional(bj(2027, 1, 5, 2)) == {}


def test_the_sms_log_loses_numbers_and_texts_after_the_retention_period_but_opt_outs_stay(app, db):
    from feedback.sms.models import InboundSms, OutboundSms, SmsOptOut

    old, recent = bj(2026, 1, 5, 10), bj(2026, 6, 20, 10)
    for n, at in (("OLD", old), ("NEW", recent)):
        db.session.add(InboundSms(message_sid=f"SM{n}", from_phone="+8613800138000", body="5 很满意",
                                  received_at=at, outcome="rated"))
        db.session.add(OutboundSms(to_phone="+8613800138000", body="【某市政务服务】感谢评价，查询码 AB12", purpose="reply",
                                   state="delivered", created_at=at))
    db.session.add(OutboundSms(to_phone="+8613900139000", body="排队中", purpose="reply", state="queued",
                               created_at=old))
    db.session.add(SmsOptOut(phone="+8613800138000", opted_out_at=old))
    db.session.commit()

    summary = privacy.erase_contacts(bj(2026, 7, 10))
    assert summary["sms"] == 2
    inbound = {i.message_sid: i for i in db.session.scalars(sa.select(InboundSms))}
    assert (inbound["SMOLD"].from_phone, inbound["SMOLD"].body) == (privacy.ERASED, privacy.ERASED_TEXT)
    assert inbound["SMNEW"].from_phone == "+8613800138000"
    assert inbound["SMNEW"].body == "5 很满意"
    outbound = db.session.scalars(sa.select(OutboundSms).order_by(OutboundSms.id)).all()
    assert [(o.to_phone, "查询码" in o.body) for o in outbound] == [
        (privacy.ERASED, False), ("+8613800138000", True), ("+8613900139000", False)]  # queued: left to the sender
    assert db.session.scalar(sa.select(SmsOptOut.phone)) == "+8613800138000"
    audit = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "privacy.contact_erasure")).all()
    assert audit
    assert audit[-1].detail["sms"] == 2
    # Later runs start from the watermark and erase the recent ones when their time comes.
    assert privacy.erase_contacts(bj(2026, 7, 11))["sms"] == 0
    assert privacy.erase_contacts(bj(2026, 12, 20))["sms"] == 2


def test_idempotency_keys_are_pruned_after_their_retention(app, db):
    from feedback.idempotency.models import IdempotencyKey

    for key, at in (("old", bj(2026, 9, 1)), ("fresh", bj(2026, 11, 1))):
        db.session.add(IdempotencyKey(scope="api:1", key=key, request_hash="x", status=201, body={}, created_at=at))
    db.session.commit()
    summary = idempotency.prune(bj(2026, 11, 23, 10))  # 30 days by default
    assert summary["deleted"] == 1
    assert db.session.scalars(sa.select(IdempotencyKey.key)).all() == ["fresh"]
