"""The platform's other periodic work: automatic ratings, contact erasure, provisional deadlines.

Each function is a job's body: it claims its work in the database (a unique constraint or
a conditional UPDATE), commits per batch, and reads only what is new since its last run
through a watermark (``job_watermarks``) re-read with an overlap of
WATERMARK_OVERLAP_MINUTES, so a run costs what became due, not what exists.
"""
from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from feedback.clock import as_utc, format_local
from feedback.deadlines.models import JobWatermark
from feedback.errors import DomainError
from feedback.extensions import db

log = logging.getLogger("feedback.deadlines")

# ---------------------------------------------------------------- watermarks

def get_watermark(name: str) -> datetime | None:
    """How far job ``name`` has settled its work, or None before its first complete pass."""
    return db.session.scalar(select(JobWatermark.value).where(JobWatermark.name == name))


def set_watermark(name: str, value: datetime, now: datetime) -> None:
    """Move the watermark forward (never back, whatever another process wrote meanwhile)."""
    if db.session.get(JobWatermark, name) is None:
        try:
            with db.session.begin_nested():
                db.session.add(JobWatermark(name=name, value=value, updated_at=now))
            return
        except IntegrityError:  # another process inserted it first: move it forward below
            pass
    db.session.execute(update(JobWatermark).where(JobWatermark.name == name, JobWatermark.value < value)
                       .values(value=value, updated_at=now))


def _overlap() -> timedelta:
    return timedelta(minutes=int(current_app.config["WATERMARK_OVERLAP_MINUTES"]))


# ---------------------------------------------------------------- automatic ratings

def auto_rate(now: datetime, batch: int = 500, max_batches: int = 20) -> dict:
    """Give 基本满意 on channel ``default`` to every record whose rating window has closed unrated.

    DOMAIN.md (Guangdong's rule, AUTO_RATING_ENABLED): not an active rating, no reasons,
    rated at the moment the window closed. The unique rating per record decides a race
    (AlreadyRatedError: counted, skipped). Burst flags never apply to automatic ratings.
    A record registered after its window closed is rated when it is registered
    (``create_record``): this pass reads by completion time and would not reach it.
    """
    from feedback.evaluations import service as ratings
    from feedback.evaluations.models import Evaluation, ServiceRecord

    now = as_utc(now)
    if not current_app.config["AUTO_RATING_ENABLED"]:
        return {"enabled": False}
    cutoff = now - timedelta(days=int(current_app.config["RATING_WINDOW_DAYS"]))
    mark = get_watermark("auto_rating")
    summary: Counter = Counter()
    seen: set[int] = set()
    last_completed = None
    finished = False
    for _ in range(max_batches):
        stmt = (select(ServiceRecord)
                .outerjoin(Evaluation, Evaluation.service_record_id == ServiceRecord.id)
                .where(Evaluation.id.is_(None), ServiceRecord.completed_at < cutoff)
                .order_by(ServiceRecord.completed_at, ServiceRecord.id).limit(batch))
        if mark is not None:
            stmt = stmt.where(ServiceRecord.completed_at >= mark - _overlap())
        records = [r for r in db.session.scalars(stmt) if r.id not in seen]
        if not records:
            finished = True
            break
        for record in records:
            seen.add(record.id)
            last_completed = record.completed_at
            try:
                ratings.give_default_rating(record, now)
            except ratings.AlreadyRatedError:
                summary["already_rated"] += 1
                continue
            except DomainError as exc:  # recorded on the job run; the record is not retried
                summary["errors"] += 1
                log.warning("auto rating of record %s failed: %s", record.id, exc)
                continue
            summary["rated"] += 1
        db.session.commit()
        if len(records) < batch:
            finished = True
            break
    if finished:
        set_watermark("auto_rating", cutoff, now)
    elif last_completed is not None:
        set_watermark("auto_rating", as_utc(last_completed), now)
    db.session.commit()
    summary["complete"] = int(finished)
    return dict(summary)


# ---------------------------------------------------------------- contact erasure

def erase_contacts(now: datetime, batch: int = 1000, max_batches: int = 50) -> dict:
    """Erase citizens' contact data CONTACT_RETENTION_DAYS after their ticket closed.

    Blanks the phone and name of the service record (or the complaint's contact) of every
    ticket closed before the retention cut-off, and of every record without a ticket
    completed before it, setting ``contact_erased_at``; the ticket's callback contact goes
    too. Ratings, tickets and statistics are kept (real-name is a flag on the rating). Each
    run is audited with its counts.
    """
    from feedback.audit import service as audit
    from feedback.complaints.models import Complaint
    from feedback.evaluations.models import Evaluation, ServiceRecord
    from feedback.tickets.models import Ticket

    now = as_utc(now)
    cutoff = now - timedelta(days=int(current_app.config["CONTACT_RETENTION_DAYS"]))
    summary: Counter = Counter()

    # 1. Tickets closed before the cut-off: their record's or complaint's contact.
    def erase_ticket_contacts(rows) -> None:
        eval_ids = [r.evaluation_id for r in rows if r.evaluation_id]
        complaint_ids = [r.complaint_id for r in rows if r.complaint_id]
        if eval_ids:
            summary["records"] += db.session.execute(
                update(ServiceRecord).where(
                    ServiceRecord.id.in_(select(Evaluation.service_record_id).where(Evaluation.id.in_(eval_ids))),
                    ServiceRecord.contact_erased_at.is_(None))
                .values(citizen_phone=None, citizen_name=None, contact_erased_at=now)).rowcount or 0
        if complaint_ids:
            summary["complaints"] += db.session.execute(
                update(Complaint).where(Complaint.id.in_(complaint_ids), Complaint.contact_erased_at.is_(None))
                .values(contact_phone=None, contact_name=None, contact_erased_at=now)).rowcount or 0
        db.session.execute(update(Ticket).where(Ticket.id.in_([r.id for r in rows]),
                                                Ticket.callback_contact.is_not(None)).values(callback_contact=None))

    _walk_before("contact_erasure_tickets", Ticket.closed_at, Ticket.id, cutoff, now, erase_ticket_contacts,
                 columns=(Ticket.evaluation_id, Ticket.complaint_id), batch=batch, max_batches=max_batches)

    # 2. Records without a ticket, completed before the cut-off.
    # NOT EXISTS, not an outer join: the planner then walks the completed_at index and probes
    # the rating and ticket of each record (a join hashed every record and rating of the
    # province per batch: 0.5 s at 400,000 records).
    has_ticket = (select(Ticket.id).join(Evaluation, Evaluation.id == Ticket.evaluation_id)
                  .where(Evaluation.service_record_id == ServiceRecord.id).exists())

    def erase_record_contacts(rows) -> None:
        summary["records"] += db.session.execute(
            update(ServiceRecord).where(ServiceRecord.id.in_([r.id for r in rows]),
                                        ServiceRecord.contact_erased_at.is_(None))
            .values(citizen_phone=None, citizen_name=None, contact_erased_at=now)).rowcount or 0

    _walk_before("contact_erasure_records", ServiceRecord.completed_at, ServiceRecord.id, cutoff, now,
                 erase_record_contacts, batch=batch, max_batches=max_batches,
                 where=(~has_ticket, ServiceRecord.contact_erased_at.is_(None),
                        or_(ServiceRecord.citizen_phone.is_not(None), ServiceRecord.citizen_name.is_not(None))))
    # 3. The SMS log: numbers and texts of messages older than the cut-off (opt-outs are kept:
    #    they must go on stopping invitations to that number).
    from feedback.sms.models import InboundSms, OutboundSms, SmsFollowUp, SmsInvitation

    summary["sms"] += _erase_before("contact_erasure_inbound_sms", InboundSms, InboundSms.received_at, cutoff, now,
                                    {"from_phone": ERASED, "to_phone": None, "body": ERASED_TEXT},
                                    batch=batch, max_batches=max_batches)
    summary["sms"] += _erase_before("contact_erasure_outbound_sms", OutboundSms, OutboundSms.created_at, cutoff, now,
                                    {"to_phone": ERASED, "body": ERASED_TEXT}, batch=batch, max_batches=max_batches,
                                    where=(OutboundSms.state.not_in(("queued", "sending")),))
    summary["sms"] += _erase_before("contact_erasure_sms_invitations", SmsInvitation, SmsInvitation.invited_at,
                                    cutoff, now, {"phone": ERASED}, batch=batch, max_batches=max_batches)
    summary["sms"] += _erase_before("contact_erasure_sms_follow_ups", SmsFollowUp, SmsFollowUp.asked_at, cutoff, now,
                                    {"phone": ERASED}, batch=batch, max_batches=max_batches)
    if summary["records"] or summary["complaints"] or summary["sms"]:
        audit.record("privacy.contact_erasure", records=summary["records"], complaints=summary["complaints"],
                     sms=summary["sms"], cutoff=cutoff.isoformat())
    db.session.commit()
    return {"records": summary["records"], "complaints": summary["complaints"], "sms": summary["sms"],
            "cutoff": cutoff.isoformat()}


ERASED = "已清除"  # in place of a phone number (the columns are NOT NULL)
ERASED_TEXT = "（短信内容已按保存期限清除）"


def _walk_before(mark_name: str, time_col, id_col, cutoff: datetime, now: datetime, act, *, columns: tuple = (),
                 where: tuple = (), batch: int, max_batches: int) -> None:
    """Hand ``act`` the rows ``(id, at, *columns)`` whose ``time_col`` is before ``cutoff``, in
    (time, id) order, a batch at a time, each batch committed. A run starts where the last
    complete pass left off (the watermark ``mark_name``, re-read with an overlap) and walks on
    with a (time, id) cursor, so no batch reads again the rows an earlier one handled; a pass
    that reaches the end moves the watermark to the cut-off."""
    mark = get_watermark(mark_name)
    done, last = False, None
    for _ in range(max_batches):
        stmt = (select(id_col.label("id"), time_col.label("at"), *columns).where(time_col < cutoff, *where)
                .order_by(time_col, id_col).limit(batch))
        if mark is not None:
            stmt = stmt.where(time_col >= mark - _overlap())
        if last is not None:
            stmt = stmt.where(or_(time_col > last[0], and_(time_col == last[0], id_col > last[1])))
        rows = db.session.execute(stmt).all()
        if not rows:
            done = True
            break
        last = (rows[-1].at, rows[-1].id)
        act(rows)
        db.session.commit()
        if len(rows) < batch:
            done = True
            break
    if done:
        set_watermark(mark_name, cutoff, now)
    elif last is not None:
        set_watermark(mark_name, as_utc(last[0]), now)


def _erase_before(mark_name: str, model, time_col, cutoff: datetime, now: datetime, values: dict, *,
                  batch: int, max_batches: int, where: tuple = ()) -> int:
    """Overwrite ``values`` on rows of ``model`` whose ``time_col`` is before ``cutoff``; how many."""
    erased = 0

    def overwrite(rows) -> None:
        nonlocal erased
        erased += db.session.execute(update(model).where(model.id.in_([r.id for r in rows])).values(**values)
                                     .execution_options(synchronize_session=False)).rowcount or 0

    _walk_before(mark_name, time_col, model.id, cutoff, now, overwrite, where=where, batch=batch,
                 max_batches=max_batches)
    return erased


# ---------------------------------------------------------------- idempotency keys

def prune_idempotency_keys(now: datetime, batch: int = 5000, max_batches: int = 20) -> dict:
    """Delete answered-write records older than IDEMPOTENCY_RETENTION_DAYS (a client retries
    within minutes; a tablet's offline queue within days), in committed batches."""
    from feedback.evaluations.models import IdempotencyKey

    cutoff = as_utc(now) - timedelta(days=int(current_app.config["IDEMPOTENCY_RETENTION_DAYS"]))
    deleted = 0
    for _ in range(max_batches):
        ids = list(db.session.scalars(select(IdempotencyKey.id).where(IdempotencyKey.created_at < cutoff)
                                      .order_by(IdempotencyKey.created_at).limit(batch)))
        if not ids:
            break
        deleted += db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(ids))
                                      .execution_options(synchronize_session=False)).rowcount or 0
        db.session.commit()
        if len(ids) < batch:
            break
    return {"deleted": deleted, "cutoff": cutoff.isoformat()}


# ---------------------------------------------------------------- provisional deadlines

def recompute_provisional(now: datetime, batch: int = 500) -> dict:
    """Recompute the deadlines computed without official calendar data once their years are known.

    From the ticket's creation, as when it opened: verification, reply and (if extended)
    the extended deadline. A ticket whose deadlines still touch an unknown year keeps its
    provisional deadlines. Each recomputed ticket gets a timeline event; the deadline sweep
    picks the new deadlines up (fresh reminder and escalation steps).
    """
    from feedback.calendar.service import WorkingCalendar
    from feedback.tickets.models import Ticket
    from feedback.tickets.service import add_event

    now = as_utc(now)
    cfg = current_app.config
    calendar = WorkingCalendar()
    summary: Counter = Counter()
    last_id = 0
    while True:
        tickets = list(db.session.scalars(
            select(Ticket).where(Ticket.due_provisional == True, Ticket.id > last_id)  # noqa: E712
            .order_by(Ticket.id).limit(batch)))
        if not tickets:
            break
        for t in tickets:
            last_id = t.id
            reply = calendar.add_working_days(t.created_at, int(cfg["REPLY_DUE_WORKING_DAYS"]))
            verify = (calendar.add_working_days(t.created_at, int(cfg["VERIFY_DUE_WORKING_DAYS"]))
                      if t.verify_due_at is not None else None)
            extended = (calendar.add_working_days(t.created_at, int(cfg["EXTENDED_DUE_WORKING_DAYS"]))
                        if t.extended_at is not None else None)
            if any(d is not None and d.provisional for d in (reply, verify, extended)):
                summary["still_provisional"] += 1
                continue
            before = t.due_at
            t.reply_due_at = reply.due_at
            if verify is not None:
                t.verify_due_at = verify.due_at
            if extended is not None:
                t.extended_due_at = extended.due_at
            t.due_at = extended.due_at if extended is not None else reply.due_at
            t.due_provisional = False
            changed = before != t.due_at
            add_event(t, "deadline_recomputed", at=now,
                      note=(f"节假日安排已录入，答复期限由 {format_local(before)} 重算为 {format_local(t.due_at)}"
                            if changed else f"节假日安排已录入，答复期限 {format_local(t.due_at)} 确认不变"),
                      before=before.isoformat() if before else None, after=t.due_at.isoformat())
            summary["recomputed"] += 1
            summary["changed"] += int(changed)
        db.session.commit()
    return dict(summary)
