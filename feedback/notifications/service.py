"""Console notifications: written once per cause (UNIQUE dedupe key), shown in working hours.

Staff are told things in working hours only: a notification written at night, on a
weekend or on a holiday carries ``deliver_after`` = the start of the next working hours
(working days from the calendar, hours WORK_HOURS_START–WORK_HOURS_END), and neither the
console nor the unread count shows it before then. SMS copies for some roles go through
the outbox with the same ``next_attempt_at``.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from feedback.calendar.days import shared_calendar
from feedback.clock import as_utc, local_zone, utcnow
from feedback.errors import NotFoundError
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.notifications.models import Notification

PAGE_SIZE = 50


def next_working_moment(now: datetime, calendar=None) -> datetime:
    """``now`` if it lies in working hours of a working day, else the next start of working hours.

    ``calendar`` is a ``feedback.calendar.days.WorkingCalendar`` (one per sweep);
    a provisional year counts Monday–Friday.
    """
    if calendar is None:
        calendar = shared_calendar()
    cfg = current_app.config
    start_h, end_h = int(cfg["WORK_HOURS_START"]), int(cfg["WORK_HOURS_END"])
    zone = local_zone()
    local = as_utc(now).astimezone(zone)
    day = local.date()
    if calendar.day_status(day).is_workday:
        if start_h <= local.hour < end_h:
            return as_utc(now)
        if local.hour < start_h:
            return datetime.combine(day, time(start_h), tzinfo=zone).astimezone(as_utc(now).tzinfo)
    for _ in range(60):  # the longest run of days off is far shorter
        day += timedelta(days=1)
        if calendar.day_status(day).is_workday:
            break
    return datetime.combine(day, time(start_h), tzinfo=zone).astimezone(as_utc(now).tzinfo)


def sms_roles() -> set[str]:
    """The roles ('head', 'handler', 'supervisor') that also get an SMS copy (NOTIFY_SMS_ROLES)."""
    return {r.strip() for r in str(current_app.config["NOTIFY_SMS_ROLES"]).split(",") if r.strip()}


def notification_row(user_id: int, *, kind: str, title: str, body: str, dedupe_key: str, now: datetime,
                     deliver_after: datetime, ticket_id: int | None = None, provisional: bool = False) -> dict:
    """One console notification as a plain dict for :func:`notify_many` (unread, shown from
    ``deliver_after`` on)."""
    return {"user_id": user_id, "ticket_id": ticket_id, "kind": kind, "title": title[:200], "body": body,
            "provisional": provisional, "created_at": now, "deliver_after": deliver_after, "read_at": None,
            "dedupe_key": dedupe_key}


def notify_many(rows: list[dict], chunk: int = 1000) -> None:
    """Write notification rows in the caller's transaction, each once (its UNIQUE dedupe key)."""
    for i in range(0, len(rows), chunk):
        db.session.execute(insert_ignoring_conflicts(Notification.__table__).values(rows[i:i + chunk]))


# ---------------------------------------------------------------- reading

def _visible(user_id: int, now: datetime):
    return (Notification.user_id == user_id, Notification.deliver_after <= now)


def unread_count(user, now: datetime | None = None) -> int:
    """Unread notifications of ``user`` already delivered (the console nav's badge)."""
    now = now or utcnow()
    return db.session.scalar(select(func.count(Notification.id)).where(
        *_visible(user.id, now), Notification.read_at.is_(None))) or 0


def list_for(user, *, page: int = 1, unread_only: bool = False, now: datetime | None = None
             ) -> tuple[list[Notification], int]:
    """One page of ``user``'s delivered notifications, newest first, and their total."""
    now = now or utcnow()
    where = list(_visible(user.id, now))
    if unread_only:
        where.append(Notification.read_at.is_(None))
    total = db.session.scalar(select(func.count(Notification.id)).where(*where)) or 0
    rows = list(db.session.scalars(select(Notification).where(*where)
                                   .order_by(Notification.deliver_after.desc(), Notification.id.desc())
                                   .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return rows, total


def mark_read(user, notification_id: int, now: datetime | None = None) -> Notification:
    """Mark one of ``user``'s notifications read; NotFoundError for anybody else's."""
    now = now or utcnow()
    note = db.session.get(Notification, notification_id)
    if note is None or note.user_id != user.id or note.deliver_after > now:
        raise NotFoundError("通知不存在")
    if note.read_at is None:
        note.read_at = now
    db.session.flush()
    return note


def mark_all_read(user, now: datetime | None = None) -> int:
    """Mark every delivered notification of ``user`` read; returns how many."""
    now = now or utcnow()
    return db.session.execute(update(Notification).where(
        *_visible(user.id, now), Notification.read_at.is_(None)).values(read_at=now)).rowcount or 0
