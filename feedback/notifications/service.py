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

from feedback.audit import service as audit
from feedback.clock import as_utc, local_zone, utcnow
from feedback.errors import NotFoundError, ValidationError
from feedback.extensions import db
from feedback.notifications.models import DepartmentHead, Notification

PAGE_SIZE = 50


def next_working_moment(now: datetime, calendar=None) -> datetime:
    """``now`` if it lies in working hours of a working day, else the next start of working hours.

    ``calendar`` is a ``feedback.calendar.service.WorkingCalendar`` (one per sweep);
    a provisional year counts Monday–Friday.
    """
    if calendar is None:
        from feedback.calendar.service import WorkingCalendar

        calendar = WorkingCalendar()
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


# ---------------------------------------------------------------- department heads

def heads_of(department_id: int) -> list:
    """The users registered as heads of one department (not of its ancestors)."""
    from feedback.accounts.models import User

    return list(db.session.scalars(select(User).join(DepartmentHead, DepartmentHead.user_id == User.id)
                                   .where(DepartmentHead.department_id == department_id).order_by(User.username)))


def set_head(department_code: str, username: str, *, actor=None, remove: bool = False) -> bool:
    """Register (or with ``remove`` unregister) a user as head of a department; audited.

    Returns False when nothing changed.
    """
    from feedback.accounts.models import User
    from feedback.directory.models import Department

    dept = db.session.scalar(select(Department).where(Department.code == department_code))
    if dept is None:
        raise ValidationError(f"部门编码 {department_code} 不存在")
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValidationError(f"用户 {username} 不存在")
    if not remove and not user.active:
        raise ValidationError(f"用户 {username} 已停用，不能设为部门负责人")
    row = db.session.scalar(select(DepartmentHead).where(DepartmentHead.department_id == dept.id,
                                                         DepartmentHead.user_id == user.id))
    if remove:
        if row is None:
            return False
        db.session.delete(row)
    else:
        if row is not None:
            return False
        db.session.add(DepartmentHead(department_id=dept.id, user_id=user.id))
    audit.record("department_head.remove" if remove else "department_head.add", actor=actor, obj=dept,
                 username=username)
    db.session.flush()
    return True
