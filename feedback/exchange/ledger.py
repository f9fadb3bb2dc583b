"""Writing the ledger: each reportable event becomes one message, in the transaction of its cause.

The causes call these functions (a record registered, a rating given or invalidated, a
complaint filed, a ticket step). Each message gets a stable local key (``EVA-123``), is
``skipped`` when it must never go up (a local service item without 实施编码, a walk-in rating
with no 办件, anything whose parent is skipped), and names the message that must be
acknowledged first (a rating waits for its record, a rectification for its rating).
A bad rating and its record take the fast lane.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import case, insert, literal, null, select, update
from sqlalchemy.orm import aliased

from feedback.clock import as_utc, to_local, utcnow
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.exchange.models import ExchangeMessage
from feedback.extensions import db
from feedback.tickets.models import Ticket

# Ticket timeline steps reported as 整改反馈 (rectification, reply, the citizen's verdict,
# closing) and as 督办/预警 (GB/T 39046 table 11).
RECTIFICATION_STEPS = ("rectify", "reply", "handling_rated", "reopened", "close", "unrated_closed")
SUPERVISION_STEPS = ("overdue", "supervised")
REPORTED_STEPS = RECTIFICATION_STEPS + SUPERVISION_STEPS

LOCAL_ITEM = "本地事项（无实施编码），不上报"
NO_RECORD = "窗口匿名评价（无办件），不上报"
PARENT_SKIPPED = "所属办件或评价不上报"


def record_key(record_id: int) -> str:
    """The local key of a record's message."""
    return f"REC-{record_id}"


def evaluation_key(evaluation_id: int) -> str:
    """The local key of a rating's message."""
    return f"EVA-{evaluation_id}"


def invalidation_key(evaluation_id: int) -> str:
    """The local key of a rating's invalidation message."""
    return f"INV-{evaluation_id}"


def complaint_key(complaint_id: int) -> str:
    """The local key of a complaint's message."""
    return f"CMP-{complaint_id}"


def step_key(event_id: int) -> str:
    """The local key of a ticket step's message (rectification or supervision)."""
    return f"TEV-{event_id}"


def order_key(order_id: int, step: str) -> str:
    """The local key of a 督办单 step's message (step ``issued`` or ``answered``)."""
    return f"ORD-{order_id}-{step}"


def message_id_for(subject_key: str) -> str:
    """The remote's dedupe key: this system's data source and the local key."""
    return f"{current_app.config['EXCHANGE_DATA_SOURCE']}-{subject_key}"


def message_row(kind: str, subject_key: str, subject_id: int, event_at: datetime, *,
                lane: str = "batch", depends_on: str | None = None, skip_reason: str | None = None,
                now: datetime | None = None, backfilled: bool = False) -> dict:
    """One ledger row as a plain dict (for bulk inserts and :func:`produce`)."""
    now = now or utcnow()
    event_at = as_utc(event_at)
    return {"subject_key": subject_key, "message_id": message_id_for(subject_key), "kind": kind,
            "subject_id": subject_id, "lane": lane, "depends_on": depends_on,
            "status": "skipped" if skip_reason else "pending", "attempts": 0,
            "next_attempt_at": None if skip_reason else now, "last_error": skip_reason,
            "event_at": event_at, "business_date": to_local(event_at).date(), "produced_at": now,
            "backfilled": backfilled}


def produce(kind: str, subject_key: str, subject_id: int, event_at: datetime, **options) -> ExchangeMessage:
    """Add one message to the session (the caller's transaction commits it with its cause)."""
    message = ExchangeMessage(**message_row(kind, subject_key, subject_id, event_at, **options))
    db.session.add(message)
    return message


def _status_of(subject_key: str) -> str | None:
    # Pending objects of this transaction count too (a record and its rating in one request).
    for obj in db.session.new:
        if isinstance(obj, ExchangeMessage) and obj.subject_key == subject_key:
            return obj.status
    return db.session.scalar(select(ExchangeMessage.status).where(ExchangeMessage.subject_key == subject_key))


def record_skip_reason(record: ServiceRecord) -> str | None:
    """Why a record is never reported (its service item is local), or None."""
    item = record.service_item
    return LOCAL_ITEM if item is None or not (item.implementation_code or "").strip() else None


def record_registered(record: ServiceRecord, now: datetime | None = None) -> ExchangeMessage:
    """A service record (办件) was registered: report it (a local item's record is skipped)."""
    return produce("record", record_key(record.id), record.id, record.completed_at,
                   skip_reason=record_skip_reason(record), now=now)


def rating_given(evaluation: Evaluation, record: ServiceRecord | None, now: datetime | None = None) -> None:
    """A rating was given: report it after its record; a bad one goes in the fast lane and
    takes its still-pending record with it.

    The busiest write of the product, so one statement: an INSERT … SELECT that reads the
    record's message (skipped with it when the record is skipped). A record from before the
    ledger has no message; it gets one here first."""
    key = evaluation_key(evaluation.id)
    if record is None:
        produce("evaluation", key, evaluation.id, evaluation.rated_at, skip_reason=NO_RECORD, now=now)
        return
    parent = record_key(record.id)
    lane = "fast" if evaluation.level <= 2 else "batch"
    row = message_row("evaluation", key, evaluation.id, evaluation.rated_at, lane=lane, depends_on=parent, now=now)
    db.session.flush()  # a record registered in this transaction is visible to the SELECT
    if not _insert_after(parent, row):
        record_registered(record, now=now)
        db.session.flush()
        _insert_after(parent, row)
    if lane == "fast":
        _promote(parent)


def _insert_after(parent: str, row: dict) -> bool:
    """INSERT the row with its status taken from its parent's message (skipped with it);
    False when the parent has no message."""
    m = aliased(ExchangeMessage)
    skipped = m.status == "skipped"
    values = {k: literal(v, ExchangeMessage.__table__.c[k].type) for k, v in row.items()
              if k not in ("status", "next_attempt_at", "last_error")}
    cols = [*values, "status", "next_attempt_at", "last_error"]
    select_ = select(*values.values(),
                     case((skipped, literal("skipped")), else_=literal("pending")),
                     case((skipped, null()), else_=literal(row["next_attempt_at"], ExchangeMessage.__table__.c.next_attempt_at.type)),
                     case((skipped, literal(PARENT_SKIPPED)), else_=null())).where(m.subject_key == parent)
    # RETURNING, not the rowcount: psycopg reports -1 for a prepared INSERT … SELECT, which read
    # as "inserted" and left a rating of a record without a message unreported.
    done = db.session.execute(insert(ExchangeMessage.__table__).from_select(cols, select_)
                              .returning(ExchangeMessage.__table__.c.id))
    return done.first() is not None


def _promote(subject_key: str) -> None:
    for obj in db.session.new:
        if isinstance(obj, ExchangeMessage) and obj.subject_key == subject_key:
            obj.lane = "fast"
            return
    # SKIP LOCKED: a record a pusher is sending right now (its row locked, pusher.py) needs no
    # promotion, and the rating's transaction must not wait for the province's answer.
    pending = (select(ExchangeMessage.id).where(ExchangeMessage.subject_key == subject_key,
                                                ExchangeMessage.status == "pending")
               .with_for_update(skip_locked=True))
    db.session.execute(update(ExchangeMessage).where(ExchangeMessage.id.in_(pending.scalar_subquery()))
                       .values(lane="fast").execution_options(synchronize_session=False))


def rating_invalidated(evaluation: Evaluation, now: datetime | None = None) -> ExchangeMessage:
    """A rating was found invalid (an appeal granted, a flag confirmed): report the 作废."""
    now = now or utcnow()
    parent = evaluation_key(evaluation.id)
    skip = PARENT_SKIPPED if _status_of(parent) == "skipped" else None
    return produce("evaluation_invalidated", invalidation_key(evaluation.id), evaluation.id,
                   evaluation.invalidated_at or now, depends_on=parent, skip_reason=skip, now=now)


def complaint_filed(complaint, now: datetime | None = None) -> ExchangeMessage:
    """A complaint (投诉) was filed: report it."""
    return produce("complaint", complaint_key(complaint.id), complaint.id, complaint.created_at or now or utcnow(),
                   now=now)


def parent_key(evaluation_id: int | None, complaint_id: int | None) -> str | None:
    """The message a ticket's steps wait for: its rating's or its complaint's."""
    if evaluation_id:
        return evaluation_key(evaluation_id)
    if complaint_id:
        return complaint_key(complaint_id)
    return None


def step_kind(step: str) -> str | None:
    """The message kind of a ticket step, or None when the step is not reported."""
    if step in RECTIFICATION_STEPS:
        return "rectification"
    if step in SUPERVISION_STEPS:
        return "supervision"
    return None


def ticket_steps(steps: list[tuple[int, int, str, datetime]], now: datetime | None = None) -> int:
    """Report ticket steps given as (event id, ticket id, step kind, at), in the caller's
    transaction; kinds that are not reported are ignored. Returns how many messages were added."""
    steps = [s for s in steps if step_kind(s[2]) is not None]
    if not steps:
        return 0
    ticket_ids = sorted({s[1] for s in steps})
    parents = {t.id: parent_key(t.evaluation_id, t.complaint_id) for t in db.session.execute(
        select(Ticket.id, Ticket.evaluation_id, Ticket.complaint_id).where(Ticket.id.in_(ticket_ids)))}
    status = {key: _status_of(key) for key in set(parents.values()) if key}
    for event_id, ticket_id, step, at in steps:
        parent = parents.get(ticket_id)
        skip = PARENT_SKIPPED if parent is None or status.get(parent) == "skipped" else None
        produce(step_kind(step), step_key(event_id), event_id, at, depends_on=parent, skip_reason=skip, now=now)
    return len(steps)


ORDER_STEPS = ("issued", "answered")


def order_step(order, step: str, at: datetime, now: datetime | None = None) -> ExchangeMessage:
    """A 督办单 (feedback/orders) was issued or answered: report it (GB/T 39046 table 11),
    ``monitorNo`` being the order's number. The answer waits for the issue; an order on a
    ticket waits for the ticket's rating or complaint when that one goes up (never for a
    skipped or missing one: the order itself is the bureau's and is always reported)."""
    if step not in ORDER_STEPS:
        raise ValueError(f"order step is one of {ORDER_STEPS}, not {step!r}")
    depends = None
    if step == "answered":
        depends = order_key(order.id, "issued")
    elif order.ticket_id is not None:
        ticket = db.session.get(Ticket, order.ticket_id)
        parent = parent_key(ticket.evaluation_id, ticket.complaint_id) if ticket is not None else None
        if parent and _status_of(parent) not in (None, "skipped"):
            depends = parent
    return produce("supervision_order", order_key(order.id, step), order.id, at, depends_on=depends, now=now)
