"""Contact erasure: every copy of a citizen's contact data, CONTACT_RETENTION_DAYS on.

A job body. It reaches across the areas that hold contact data (records, ratings, complaints,
tickets, the SMS log) and so lives above them; each walk reads from its watermark and commits
per batch, and every run with erasures is audited (``privacy.contact_erasure``).

The append-only records (``ticket_events``, ``audit_events``) never hold a phone number, a
name or the citizen's words, only references to the rows below, so erasing those rows is
erasing every copy. What goes and what stays, once the ticket has been closed for the
retention period (records without a ticket: once completed that long ago):

- the citizen's phone and name (record, complaint) and the ticket's callback contact: blanked;
- what the citizen wrote — the rating's comment, the complaint's description and place, their
  SMS answer quoted on the timeline (``ticket_texts``): erased, not masked, because it may
  name people the system never knew;
- the complaint's photos: rows deleted, files removed from the disk;
- what handlers wrote about the case (findings, measures, reply) and the bureau's re-check notes:
  kept for the case's history, with phone and ID numbers (the publication scanner) and the names
  the ticket knew masked;
- the SMS log of that age: numbers, texts and the outcome details;
- kept: ratings, reasons, real-name flags, the tickets' dates, states and outcomes (statistics),
  approved publications (reviewed and masked already), opt-outs (they must go on working).
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Iterable

from flask import current_app
from sqlalchemy import bindparam, case, delete, or_, select, update

from feedback.audit import service as audit
from feedback.clock import as_utc
from feedback.complaints import service as complaints
from feedback.complaints.models import Complaint, ComplaintPhoto
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.operations.watermarks import walk_before
from feedback.oversight.models import Recheck
from feedback.publications.service import NOT_NAMES, find_personal_data
from feedback.sms.models import InboundSms, OutboundSms, SmsFollowUp, SmsInvitation
from feedback.tickets.models import Ticket, TicketText
from feedback.voice import service as voice

ERASED = "已清除"  # in place of a phone number (the columns are NOT NULL)
ERASED_TEXT = "（短信内容已按保存期限清除）"
ERASED_CITIZEN_TEXT = "（已按保存期限清除）"  # a comment, description or place the citizen wrote
MASK_NUMBER = "***"
MASK_NAME = "某某"
SUMMARY_KEYS = ("records", "complaints", "tickets", "texts", "photos", "sms", "voice")


def mask_personal(text: str | None, names: Iterable[str | None] = ()) -> str | None:
    """``text`` with every phone and ID number the publication scanner finds replaced by ***
    and each of ``names`` (two characters or more, not a word like 本人) by 某某."""
    if not text:
        return text
    out, last = [], 0
    for match in find_personal_data(text):
        if match.start < last:
            continue
        out.append(text[last:match.start])
        out.append(MASK_NUMBER)
        last = match.end
    out.append(text[last:])
    masked = "".join(out)
    wanted = {n.strip() for n in names if n and len(n.strip()) >= 2 and n.strip() not in NOT_NAMES}
    for name in sorted(wanted, key=len, reverse=True):  # 李雪梅女士 before 李雪梅
        masked = masked.replace(name, MASK_NAME)
    return masked


def erase_contacts(now: datetime, batch: int = 1000, max_batches: int = 50) -> dict:
    """Erase every copy of citizens' contact data CONTACT_RETENTION_DAYS after their ticket closed.

    Tickets closed before the cut-off are claimed once (``tickets.contact_erased_at``) and
    everything of theirs is erased as the module docstring says; records without a ticket
    completed before the cut-off lose their phone, name and rating comment; the SMS log loses
    numbers, texts and details of messages older than the cut-off. Ratings, tickets and
    statistics are kept. Each run with erasures is audited with its counts.
    """
    now = as_utc(now)
    cutoff = now - timedelta(days=int(current_app.config["CONTACT_RETENTION_DAYS"]))
    summary: Counter = Counter()

    # 1. Tickets closed before the cut-off: everything the ticket and its rating or complaint hold.
    walk_before("contact_erasure_tickets", Ticket.closed_at, Ticket.id, cutoff, now,
                 lambda rows: _erase_tickets([r.id for r in rows], now, summary),
                 where=(Ticket.contact_erased_at.is_(None),), batch=batch, max_batches=max_batches)

    # 2. Records without a ticket, completed before the cut-off.
    # NOT EXISTS, not an outer join: the planner then walks the completed_at index and probes
    # the rating and ticket of each record (a join hashed every record and rating of the
    # province per batch: 0.5 s at 400,000 records).
    has_ticket = (select(Ticket.id).join(Evaluation, Evaluation.id == Ticket.evaluation_id)
                  .where(Evaluation.service_record_id == ServiceRecord.id).exists())

    def erase_record_contacts(rows) -> None:
        ids = [r.id for r in rows]
        summary["records"] += db.session.execute(
            update(ServiceRecord).where(ServiceRecord.id.in_(ids), ServiceRecord.contact_erased_at.is_(None))
            .values(citizen_phone=None, citizen_name=None, contact_erased_at=now)).rowcount or 0
        summary["texts"] += _erase_comments(Evaluation.service_record_id.in_(ids))

    walk_before("contact_erasure_records", ServiceRecord.completed_at, ServiceRecord.id, cutoff, now,
                 erase_record_contacts, batch=batch, max_batches=max_batches,
                 where=(~has_ticket, ServiceRecord.contact_erased_at.is_(None),
                        or_(ServiceRecord.citizen_phone.is_not(None), ServiceRecord.citizen_name.is_not(None))))
    # 3. The SMS log: numbers and texts of messages older than the cut-off (opt-outs are kept:
    #    they must go on stopping invitations to that number). An inbound text's outcome stays
    #    (what it did); its detail goes, as it may quote the sender's number.
    summary["sms"] += _erase_before("contact_erasure_inbound_sms", InboundSms, InboundSms.received_at, cutoff, now,
                                    {"from_phone": ERASED, "to_phone": None, "body": ERASED_TEXT,
                                     "detail": ERASED_TEXT}, batch=batch, max_batches=max_batches)
    summary["sms"] += _erase_before("contact_erasure_outbound_sms", OutboundSms, OutboundSms.created_at, cutoff, now,
                                    {"to_phone": ERASED, "body": ERASED_TEXT}, batch=batch, max_batches=max_batches,
                                    where=(OutboundSms.state.not_in(("queued", "sending")),))
    summary["sms"] += _erase_before("contact_erasure_sms_invitations", SmsInvitation, SmsInvitation.invited_at,
                                    cutoff, now, {"phone": ERASED}, batch=batch, max_batches=max_batches)
    summary["sms"] += _erase_before("contact_erasure_sms_follow_ups", SmsFollowUp, SmsFollowUp.asked_at, cutoff, now,
                                    {"phone": ERASED}, batch=batch, max_batches=max_batches)
    # 4. The phone channel: callers' and callees' numbers, recordings of erased tickets.
    summary["voice"] += voice.erase_contacts(cutoff, now)
    counts = {key: summary[key] for key in SUMMARY_KEYS}
    if any(counts.values()):
        audit.record("privacy.contact_erasure", cutoff=cutoff.isoformat(), **counts)
    db.session.commit()
    return {**counts, "cutoff": cutoff.isoformat()}


def _erase_tickets(ticket_ids: list[int], now: datetime, summary: Counter) -> None:
    """Erase what the given closed tickets hold of their citizens; each ticket is claimed once
    (``contact_erased_at`` set by a conditional UPDATE, so two runs never both do one)."""
    claimed = db.session.execute(
        update(Ticket).where(Ticket.id.in_(ticket_ids), Ticket.contact_erased_at.is_(None))
        .values(contact_erased_at=now)
        .returning(Ticket.id, Ticket.evaluation_id, Ticket.complaint_id, Ticket.callback_contact, Ticket.findings,
                   Ticket.measures, Ticket.reply_text)
        .execution_options(synchronize_session=False)).all()
    if not claimed:
        return
    summary["tickets"] += len(claimed)
    eval_ids = [t.evaluation_id for t in claimed if t.evaluation_id]
    complaint_ids = [t.complaint_id for t in claimed if t.complaint_id]
    # The names the ticket knew, read before they are blanked: masked in what handlers wrote.
    record_names = dict(db.session.execute(
        select(Evaluation.id, ServiceRecord.citizen_name)
        .join(ServiceRecord, ServiceRecord.id == Evaluation.service_record_id)
        .where(Evaluation.id.in_(eval_ids))).all()) if eval_ids else {}
    complaint_names = dict(db.session.execute(
        select(Complaint.id, Complaint.contact_name)
        .where(Complaint.id.in_(complaint_ids))).all()) if complaint_ids else {}
    table = Ticket.__table__
    db.session.execute(
        table.update().where(table.c.id == bindparam("t_id"))
        .values(callback_contact=None, findings=bindparam("t_findings"), measures=bindparam("t_measures"),
                reply_text=bindparam("t_reply_text")),
        [{"t_id": t.id, **{f"t_{column}": mask_personal(getattr(t, column), (
            t.callback_contact, record_names.get(t.evaluation_id), complaint_names.get(t.complaint_id)))
            for column in ("findings", "measures", "reply_text")}} for t in claimed])
    # The bureau's re-check notes (feedback/oversight) are written about the case as findings are: masked.
    known = {t.id: (t.callback_contact, record_names.get(t.evaluation_id), complaint_names.get(t.complaint_id))
             for t in claimed}
    notes = db.session.execute(select(Recheck.id, Recheck.ticket_id, Recheck.note)
                               .where(Recheck.ticket_id.in_(list(known)), Recheck.note.is_not(None))).all()
    if notes:
        rechecks = Recheck.__table__
        db.session.execute(rechecks.update().where(rechecks.c.id == bindparam("r_id"))
                           .values(note=bindparam("r_note")),
                           [{"r_id": rid, "r_note": mask_personal(note, known[tid])} for rid, tid, note in notes])
    summary["texts"] += db.session.execute(
        update(TicketText).where(TicketText.ticket_id.in_([t.id for t in claimed]), TicketText.erased_at.is_(None))
        .values(body=None, erased_at=now).execution_options(synchronize_session=False)).rowcount or 0
    if eval_ids:
        summary["records"] += db.session.execute(
            update(ServiceRecord).where(
                ServiceRecord.id.in_(select(Evaluation.service_record_id).where(Evaluation.id.in_(eval_ids))),
                ServiceRecord.contact_erased_at.is_(None))
            .values(citizen_phone=None, citizen_name=None, contact_erased_at=now)).rowcount or 0
        summary["texts"] += _erase_comments(Evaluation.id.in_(eval_ids))
    if complaint_ids:
        summary["complaints"] += db.session.execute(
            update(Complaint).where(Complaint.id.in_(complaint_ids), Complaint.contact_erased_at.is_(None))
            .values(contact_phone=None, contact_name=None, contact_erased_at=now)).rowcount or 0
        # Not only the complaints claimed above: those erased before the citizen's own words
        # were (before migration 0016) lose them now too.
        db.session.execute(
            update(Complaint).where(Complaint.id.in_(complaint_ids))
            .values(description=ERASED_CITIZEN_TEXT,
                    location_text=case((Complaint.location_text == "", ""), else_=ERASED_CITIZEN_TEXT))
            .execution_options(synchronize_session=False))
        summary["photos"] += _erase_photos(complaint_ids)


def _erase_comments(which) -> int:
    """Replace the citizen's comment of the matching ratings by ERASED_CITIZEN_TEXT; how many."""
    return db.session.execute(
        update(Evaluation).where(which, Evaluation.comment != "", Evaluation.comment != ERASED_CITIZEN_TEXT)
        .values(comment=ERASED_CITIZEN_TEXT).execution_options(synchronize_session=False)).rowcount or 0


def _erase_photos(complaint_ids: list[int]) -> int:
    """Delete the complaints' photos: rows, and files from the disk; how many.

    The files go before the batch commits: a crash in between leaves rows whose files are
    gone (the photo page answers 404) and the complaint unclaimed, so the next run deletes the
    rows; the other order could leave files no row points to, which nothing would erase.
    """
    photos = db.session.scalars(select(ComplaintPhoto).where(ComplaintPhoto.complaint_id.in_(complaint_ids))).all()
    if not photos:
        return 0
    paths = [complaints.photo_path(photo) for photo in photos]
    db.session.execute(delete(ComplaintPhoto).where(ComplaintPhoto.id.in_([p.id for p in photos]))
                       .execution_options(synchronize_session=False))
    for path in paths:
        path.unlink(missing_ok=True)
    return len(photos)


def _erase_before(mark_name: str, model, time_col, cutoff: datetime, now: datetime, values: dict, *,
                  batch: int, max_batches: int, where: tuple = ()) -> int:
    """Overwrite ``values`` on rows of ``model`` whose ``time_col`` is before ``cutoff``; how many."""
    erased = 0

    def overwrite(rows) -> None:
        nonlocal erased
        erased += db.session.execute(update(model).where(model.id.in_([r.id for r in rows])).values(**values)
                                     .execution_options(synchronize_session=False)).rowcount or 0

    walk_before(mark_name, time_col, model.id, cutoff, now, overwrite, where=where, batch=batch,
                 max_batches=max_batches)
    return erased
