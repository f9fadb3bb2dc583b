"""The operator's side of the exchange: status by day and kind, the error log, re-push,
pause and resume, 补报 (backfill) by date range, and the daily reconciliation."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select, update

from feedback.accounts.models import Role, User
from feedback.audit import service as audit
from feedback.clock import as_utc, local_zone, to_local, utcnow
from feedback.complaints.models import Complaint
from feedback.errors import ValidationError
from feedback.directory.models import ServiceItem
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.exchange import ledger
from feedback.exchange.pusher import BLOCKED
from feedback.exchange.models import KINDS, ExchangeControl, ExchangeMessage, ExchangeReconciliation
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.notifications.service import notification_row, notify_many
from feedback.orders.models import SupervisionOrder
from feedback.tickets.models import Ticket, TicketEvent

CHUNK = 5000


class ExchangeInputError(ValidationError, code="exchange-input"):
    """A bad argument from an operator (a date range, a kind); the message is in Chinese."""


def day_bounds(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """The UTC moments of local midnight at ``date_from`` and after ``date_to`` (inclusive days)."""
    if date_from > date_to:
        raise ExchangeInputError("开始日期不能晚于结束日期")
    zone = local_zone()
    start = datetime.combine(date_from, time(0), zone)
    end = datetime.combine(date_to + timedelta(days=1), time(0), zone)
    return as_utc(start), as_utc(end)


def check_kind(kind: str | None) -> str | None:
    """``kind`` if it is a ledger kind (or None for all); an ExchangeInputError otherwise."""
    kind = (kind or "").strip()
    if kind and kind not in KINDS:
        raise ExchangeInputError(f"未知的消息类型 {kind}（可选：{'、'.join(KINDS)}）")
    return kind or None


# ---------------------------------------------------------------- status

@dataclass
class DayStatus:
    """One day and kind: how many messages, by status, and the oldest pending one."""

    day: date
    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    oldest_pending_at: datetime | None = None

    @property
    def produced(self) -> int:
        """All messages of the day and kind."""
        return sum(self.counts.values())

    def count(self, status: str) -> int:
        """Messages in ``status`` (``pending`` includes those being sent)."""
        if status == "pending":
            return self.counts.get("pending", 0) + self.counts.get("sending", 0)
        return self.counts.get(status, 0)


def status_by_day(date_from: date, date_to: date, kind: str | None = None) -> list[DayStatus]:
    """Per local day and kind: produced, acknowledged, failed, pending, skipped, oldest pending."""
    kind = check_kind(kind)
    m = ExchangeMessage
    q = (select(m.business_date, m.kind, m.status, func.count(), func.min(m.produced_at))
         .where(m.business_date >= date_from, m.business_date <= date_to)
         .group_by(m.business_date, m.kind, m.status))
    if kind:
        q = q.where(m.kind == kind)
    out: dict[tuple[date, str], DayStatus] = {}
    for day, k, status, n, oldest in db.session.execute(q):
        row = out.setdefault((day, k), DayStatus(day, k))
        row.counts[status] = n
        if status in ("pending", "sending") and oldest is not None:
            oldest = as_utc(oldest)
            row.oldest_pending_at = min(filter(None, [row.oldest_pending_at, oldest]))
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out.values(), key=lambda r: (r.day, order.get(r.kind, 99)), reverse=False)


def overview(now: datetime) -> dict[str, Any]:
    """Totals over the whole ledger: by status, the oldest pending message, paused or not."""
    counts = dict(db.session.execute(select(ExchangeMessage.status, func.count()).group_by(ExchangeMessage.status)).all())
    oldest = db.session.scalar(select(func.min(ExchangeMessage.produced_at)).where(
        ExchangeMessage.status.in_(("pending", "sending"))))
    control = db.session.get(ExchangeControl, 1)
    return {"counts": counts, "oldest_pending_at": as_utc(oldest) if oldest else None,
            "oldest_pending_age": (now - as_utc(oldest)) if oldest else None,
            "paused": bool(control and control.paused), "pause_reason": control.reason if control else ""}


def messages(*, status: str | None = None, kind: str | None = None, date_from: date | None = None,
             date_to: date | None = None, text: str = "", limit: int = 100, offset: int = 0) -> list[ExchangeMessage]:
    """The error log and message list, newest attempt first, filtered."""
    return list(db.session.scalars(_filtered(status=status, kind=kind, date_from=date_from, date_to=date_to, text=text)
                                   .order_by(ExchangeMessage.last_attempt_at.desc().nulls_last(), ExchangeMessage.id.desc())
                                   .limit(limit).offset(offset)))


def _filtered(*, status=None, kind=None, date_from=None, date_to=None, text=""):
    q = select(ExchangeMessage)
    if status:
        q = q.where(ExchangeMessage.status.in_(("pending", "sending")) if status == "pending"
                    else ExchangeMessage.status == status)
    if check_kind(kind):
        q = q.where(ExchangeMessage.kind == kind)
    if date_from:
        q = q.where(ExchangeMessage.business_date >= date_from)
    if date_to:
        q = q.where(ExchangeMessage.business_date <= date_to)
    if text:
        like = f"%{text.strip()[:60]}%"
        q = q.where(or_(ExchangeMessage.message_id.ilike(like), ExchangeMessage.last_error.ilike(like)))
    return q


# ---------------------------------------------------------------- operator actions

def repush(*, actor: Any, now: datetime | None = None, ids: list[int] | None = None, **filters) -> int:
    """Queue again failed (or still pending) messages, chosen by id or by filter, with the
    messages that were blocked behind them; audited. Returns how many were queued."""
    now = now or utcnow()
    if ids is not None:
        chosen = select(ExchangeMessage.id).where(ExchangeMessage.id.in_(ids))
    else:
        chosen = _filtered(**filters).with_only_columns(ExchangeMessage.id)
    chosen = chosen.where(ExchangeMessage.status.in_(("failed", "pending")))
    keys = [k for (k,) in db.session.execute(select(ExchangeMessage.subject_key).where(ExchangeMessage.id.in_(chosen)))]
    total = 0
    for i in range(0, len(keys), 1000):
        part = keys[i:i + 1000]
        total += db.session.execute(update(ExchangeMessage).where(
            or_(ExchangeMessage.subject_key.in_(part),
                (ExchangeMessage.depends_on.in_(part)) & (ExchangeMessage.last_error == BLOCKED)),
            ExchangeMessage.status.in_(("failed", "pending"))).values(
            status="pending", attempts=0, next_attempt_at=now, claim=None)
            .execution_options(synchronize_session=False)).rowcount or 0
    audit.record("exchange.repush", actor=actor, count=total, ids=(ids or [])[:50],
                 filters={k: str(v) for k, v in filters.items() if v})
    return total


def set_paused(paused: bool, *, actor: Any, reason: str = "", now: datetime | None = None) -> ExchangeControl:
    """Pause or resume pushing (the ledger keeps filling while paused); audited."""
    control = db.session.get(ExchangeControl, 1) or ExchangeControl(id=1)
    control.paused, control.reason = paused, (reason or "").strip()[:200]
    control.changed_at, control.changed_by = now or utcnow(), getattr(actor, "username", None) or "system"
    db.session.add(control)
    audit.record("exchange.pause" if paused else "exchange.resume", actor=actor, reason=control.reason)
    return control


# ---------------------------------------------------------------- 补报

def _chunks(query, id_col):
    last = 0
    while True:
        rows = db.session.execute(query.where(id_col > last).order_by(id_col).limit(CHUNK)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _missing(keys: list[str]) -> set[str]:
    have = set(db.session.scalars(select(ExchangeMessage.subject_key).where(ExchangeMessage.subject_key.in_(keys))))
    return set(keys) - have


def _insert(rows: list[dict]) -> int:
    if rows:
        db.session.execute(insert_ignoring_conflicts(ExchangeMessage.__table__), rows)
    return len(rows)


def _record_rows(rows, now) -> list[dict]:
    keys = {ledger.record_key(r.rid): r for r in rows}
    missing = _missing(list(keys)) if keys else set()
    return [ledger.message_row("record", key, r.rid, r.completed_at, now=now, backfilled=True,
                               skip_reason=None if (r.code or "").strip() else ledger.LOCAL_ITEM)
            for key, r in keys.items() if key in missing]


def backfill(date_from: date, date_to: date, *, kind: str | None = None, actor: Any = None,
             now: datetime | None = None) -> dict[str, int]:
    """补报: queue every reportable event of the days that has no message yet (a rating's
    record with it, whatever its day), and queue again the failed ones. Audited; the
    caller commits. Returns counts by kind plus ``requeued``."""
    kind = check_kind(kind)
    now = now or utcnow()
    start, end = day_bounds(date_from, date_to)
    kinds = [k for k in KINDS if kind is None or k == kind]
    out = {k: 0 for k in kinds}
    rec = (select(ServiceRecord.id.label("rid"), ServiceRecord.completed_at, ServiceItem.implementation_code.label("code"))
           .join(ServiceItem, ServiceItem.id == ServiceRecord.service_item_id))
    if "record" in kinds:
        for rows in _chunks(rec.where(ServiceRecord.completed_at >= start, ServiceRecord.completed_at < end),
                            ServiceRecord.id):
            out["record"] += _insert(_record_rows(rows, now))
    if "evaluation" in kinds:
        q = (select(Evaluation.id, Evaluation.rated_at, Evaluation.level, Evaluation.service_record_id)
             .where(Evaluation.rated_at >= start, Evaluation.rated_at < end))
        for rows in _chunks(q, Evaluation.id):
            record_ids = sorted({r.service_record_id for r in rows if r.service_record_id})
            parents = db.session.execute(rec.where(ServiceRecord.id.in_(record_ids))).all() if record_ids else []
            out["record"] = out.get("record", 0) + _insert(_record_rows(parents, now))
            status = dict(db.session.execute(select(ExchangeMessage.subject_key, ExchangeMessage.status).where(
                ExchangeMessage.subject_key.in_([ledger.record_key(i) for i in record_ids]))).all())
            missing = _missing([ledger.evaluation_key(r.id) for r in rows])
            new = []
            for r in rows:
                key = ledger.evaluation_key(r.id)
                if key not in missing:
                    continue
                parent = ledger.record_key(r.service_record_id) if r.service_record_id else None
                skip = (ledger.NO_RECORD if parent is None else
                        ledger.PARENT_SKIPPED if status.get(parent) == "skipped" else None)
                new.append(ledger.message_row("evaluation", key, r.id, r.rated_at, depends_on=parent, now=now,
                                              lane="fast" if r.level <= 2 else "batch", skip_reason=skip,
                                              backfilled=True))
            out["evaluation"] += _insert(new)
    if "evaluation_invalidated" in kinds:
        q = select(Evaluation.id, Evaluation.invalidated_at).where(
            Evaluation.invalid.is_(True), Evaluation.invalidated_at >= start, Evaluation.invalidated_at < end)
        for rows in _chunks(q, Evaluation.id):
            missing = _missing([ledger.invalidation_key(r.id) for r in rows])
            out["evaluation_invalidated"] += _insert([ledger.message_row(
                "evaluation_invalidated", ledger.invalidation_key(r.id), r.id, r.invalidated_at,
                depends_on=ledger.evaluation_key(r.id), now=now, backfilled=True)
                for r in rows if ledger.invalidation_key(r.id) in missing])
    if "complaint" in kinds:
        q = select(Complaint.id, Complaint.created_at).where(Complaint.created_at >= start, Complaint.created_at < end)
        for rows in _chunks(q, Complaint.id):
            missing = _missing([ledger.complaint_key(r.id) for r in rows])
            out["complaint"] += _insert([ledger.message_row("complaint", ledger.complaint_key(r.id), r.id,
                                                            r.created_at, now=now, backfilled=True)
                                         for r in rows if ledger.complaint_key(r.id) in missing])
    steps = [s for s in ledger.REPORTED_STEPS if kind is None or ledger.step_kind(s) == kind]
    if steps:
        q = (select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.kind, TicketEvent.at)
             .where(TicketEvent.kind.in_(steps), TicketEvent.at >= start, TicketEvent.at < end))
        for rows in _chunks(q, TicketEvent.id):
            missing = _missing([ledger.step_key(r.id) for r in rows])
            todo = [(r.id, r.ticket_id, r.kind, r.at) for r in rows if ledger.step_key(r.id) in missing]
            ledger.ticket_steps(todo, now=now)
            for obj in db.session.new:
                if isinstance(obj, ExchangeMessage):
                    obj.backfilled = True
                    out[obj.kind] = out.get(obj.kind, 0) + 1
            db.session.flush()
    if "supervision_order" in kinds:  # a few a day: read as objects
        for column, step in ((SupervisionOrder.issued_at, "issued"), (SupervisionOrder.answered_at, "answered")):
            for order in db.session.scalars(select(SupervisionOrder).where(column >= start, column < end)):
                if _missing([ledger.order_key(order.id, step)]):
                    ledger.order_step(order, step, getattr(order, column.key), now=now).backfilled = True
                    out["supervision_order"] += 1
            db.session.flush()
    requeue = update(ExchangeMessage).where(
        ExchangeMessage.status == "failed", ExchangeMessage.event_at >= start, ExchangeMessage.event_at < end)
    if kind:
        requeue = requeue.where(ExchangeMessage.kind == kind)
    out["requeued"] = db.session.execute(requeue.values(status="pending", attempts=0, next_attempt_at=now, claim=None)
                                         .execution_options(synchronize_session=False)).rowcount or 0
    audit.record("exchange.backfill", actor=actor, date_from=date_from.isoformat(), date_to=date_to.isoformat(),
                 kind=kind or "all", **{f"queued_{k}": v for k, v in out.items()})
    return out


# ---------------------------------------------------------------- 对账

def local_counts(day: date) -> dict[str, int]:
    """How many reportable events of each kind the day had locally (what the ledger should hold)."""
    start, end = day_bounds(day, day)

    def count(q) -> int:
        return db.session.scalar(select(func.count()).select_from(q.subquery())) or 0

    out = {
        "record": count(select(ServiceRecord.id).where(ServiceRecord.completed_at >= start, ServiceRecord.completed_at < end)),
        "evaluation": count(select(Evaluation.id).where(Evaluation.rated_at >= start, Evaluation.rated_at < end)),
        "evaluation_invalidated": count(select(Evaluation.id).where(
            Evaluation.invalid.is_(True), Evaluation.invalidated_at >= start, Evaluation.invalidated_at < end)),
        "complaint": count(select(Complaint.id).where(Complaint.created_at >= start, Complaint.created_at < end)),
    }
    for kind in ("rectification", "supervision"):
        steps = [s for s in ledger.REPORTED_STEPS if ledger.step_kind(s) == kind]
        out[kind] = count(select(TicketEvent.id).join(Ticket, Ticket.id == TicketEvent.ticket_id).where(
            TicketEvent.kind.in_(steps), TicketEvent.at >= start, TicketEvent.at < end))
    # 督办单: each issue and each answer is one message.
    out["supervision_order"] = (
        count(select(SupervisionOrder.id).where(SupervisionOrder.issued_at >= start, SupervisionOrder.issued_at < end))
        + count(select(SupervisionOrder.id).where(SupervisionOrder.answered_at >= start,
                                                  SupervisionOrder.answered_at < end)))
    return out


def reconcile(day: date, now: datetime | None = None) -> list[ExchangeReconciliation]:
    """对账 of one local day: local counts beside the ledger's produced, acknowledged and
    skipped counts per kind; a difference is stored and the administrators are warned."""
    now = now or utcnow()
    local = local_counts(day)
    by_kind = {r.kind: r for r in status_by_day(day, day)}
    out, bad = [], []
    for kind in KINDS:
        row = by_kind.get(kind)
        produced = row.produced if row else 0
        acked = row.count("acknowledged") if row else 0
        skipped = row.count("skipped") if row else 0
        matches = produced == local[kind] and acked + skipped == produced
        rec = ExchangeReconciliation(day=day, kind=kind, local_count=local[kind], produced=produced,
                                     acknowledged=acked, skipped=skipped, matches=matches, checked_at=now)
        db.session.add(rec)
        out.append(rec)
        if not matches:
            bad.append(rec)
    if bad:
        text = "；".join(f"{r.kind}: 本地 {r.local_count}，入账 {r.produced}，已确认 {r.acknowledged}，不上报 {r.skipped}"
                        for r in bad)
        admins = db.session.scalars(select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))).all()
        notify_many([notification_row(uid, kind="exchange_mismatch", title=f"数据上报对账不一致（{day.isoformat()}）",
                                      body=text, dedupe_key=f"exchange-reconcile:{day.isoformat()}:{uid}",
                                      now=now, deliver_after=now) for uid in admins])
        audit.record("exchange.reconcile_mismatch", day=day.isoformat(), detail=text[:900])
    return out


def reconcile_yesterday(now: datetime) -> dict:
    """对账 of the previous local day, once: returns the kinds that differ (empty when all
    match), or ``done`` when the day was already reconciled."""
    day = to_local(now).date() - timedelta(days=1)
    if current_app.config["EXCHANGE_ADAPTER"] == "none":
        return {"day": day.isoformat(), "skipped": "未配置上报方式（FEEDBACK_EXCHANGE_ADAPTER=none）"}
    if db.session.scalar(select(ExchangeReconciliation.id).where(ExchangeReconciliation.day == day).limit(1)):
        return {"day": day.isoformat(), "done": True}
    rows = reconcile(day, now)
    return {"day": day.isoformat(), "mismatched": [r.kind for r in rows if not r.matches]}
