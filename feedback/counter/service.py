"""办结 at the counter: which windows and items a staff member serves, completing a record,
and who may see a record's printable rating QR code. Flushes, never commits."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from feedback.accounts import service as accounts
from feedback.accounts.models import Role, User
from feedback.audit import service as audit
from feedback.clock import utcnow
from feedback.directory import service as directory
from feedback.directory.models import ServiceItem, Window
from feedback.errors import PermissionDeniedError, ValidationError
from feedback.evaluations import service as ratings
from feedback.evaluations.models import ServiceRecord
from feedback.extensions import db


def counter_windows(user: User) -> list[Window]:
    """The active windows a window-staff account serves at (through its staff record)."""
    if user.staff is None:
        return []
    return [w for w in user.staff.windows if w.active]


def items_for_window(window: Window) -> list[ServiceItem]:
    """Active service items of the window's department and its sub-departments."""
    ids = directory.subtree_ids([window.department_id])
    return list(db.session.scalars(select(ServiceItem).where(ServiceItem.department_id.in_(ids),
                                                             ServiceItem.active.is_(True))
                                   .order_by(ServiceItem.code)))


def complete_at_counter(user: User, *, window_id: int, service_item_id: int, citizen_phone: str | None,
                        citizen_name: str | None, citizen_kind: str, record_number: str | None = None,
                        now: datetime | None = None, prefers_call: bool = False) -> ServiceRecord:
    """办结: the staff member completes a record at one of their windows (source "counter").
    ``prefers_call``: 老年人/不便短信, invite to rate by one phone call (feedback/voice/outbound.py)."""
    now = now or utcnow()
    window = next((w for w in counter_windows(user) if w.id == window_id), None)
    if window is None:
        raise PermissionDeniedError("只能在本人的窗口办结")
    item = next((i for i in items_for_window(window) if i.id == service_item_id), None)
    if item is None:
        raise ValidationError("该服务事项不属于本窗口的部门", field="service_item_id")
    if prefers_call and not (citizen_phone or "").strip():
        raise ValidationError("电话邀请评价须填写联系电话", field="citizen_phone")
    record = ratings.create_record(
        record_number=(record_number or "").strip() or ratings.new_record_number(now),
        service_item_code=item.code, window_code=window.code, staff_number=user.staff.staff_number,
        completed_at=now, citizen_phone=citizen_phone, citizen_name=citizen_name, citizen_kind=citizen_kind,
        source="counter", now=now)
    record.prefers_call = bool(prefers_call)
    db.session.flush()
    audit.record("record.complete", actor=user, obj=record, window=window.code, record_number=record.record_number,
                 **({"prefers_call": True} if prefers_call else {}))
    return record


def recent_counter_records(user: User, limit: int = 10) -> list[ServiceRecord]:
    """The latest records this staff member completed, for the 办结 page."""
    if user.staff is None:
        return []
    return list(db.session.scalars(select(ServiceRecord).where(ServiceRecord.staff_id == user.staff_id)
                                   .order_by(ServiceRecord.id.desc()).limit(limit)))


def can_see_record(user: User, record: ServiceRecord) -> bool:
    """Printable QR scope: window staff of the record's window, handlers of its department
    (and parents), supervisors and admins."""
    if user.has_role(Role.ADMIN, Role.SUPERVISOR):
        return True
    if user.has_role(Role.WINDOW_STAFF):
        return record.window_id is not None and any(w.id == record.window_id for w in counter_windows(user))
    if user.has_role(Role.HANDLER):
        scope = accounts.department_scope(user)
        return scope is None or record.department_id in scope
    return False
