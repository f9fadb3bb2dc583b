"""The counter terminal (评价器), the 办结 page and QR codes: rules without HTTP.

The tablet submits ratings it may have queued offline; ``submit_rating`` runs once per
idempotency key (the approach of feedback.api.support.idempotent_write: the key row is
written in the same transaction as the rating, a replay gets the stored answer).
"""
from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timedelta
from typing import Any

import segno
from flask import current_app
from sqlalchemy import select

from feedback.accounts.models import Role, User
from feedback.audit import service as audit
from feedback.clock import utcnow
from feedback.directory import service as directory
from feedback.directory.models import ServiceItem, Window
from feedback.errors import DomainError, NotFoundError, PermissionDeniedError, ValidationError
from feedback.evaluations import idempotency
from feedback.evaluations import service as ratings
from feedback.evaluations.levels import LEVELS, REASONS
from feedback.evaluations.models import Evaluation, IdempotencyKey, ServiceRecord, Terminal
from feedback.extensions import db

SEEN_WRITE_EVERY = timedelta(seconds=60)


class IdempotencyKeyReusedError(ValidationError):
    code = "idempotency-key-reused"


# ---------------------------------------------------------------- the tablet

def touch(terminal: Terminal, now: datetime | None = None) -> bool:
    """Note that the tablet polled; written at most once a minute (a poll comes every second)."""
    now = now or utcnow()
    if terminal.last_seen_at is None or now - terminal.last_seen_at >= SEEN_WRITE_EVERY:
        terminal.last_seen_at = now
        return True
    return False


def terminal_state(terminal: Terminal, now: datetime | None = None) -> dict[str, Any]:
    """What the tablet shows: its window, the staff on duty and the record waiting for a rating.

    The citizen's name and phone are never sent to the tablet.
    """
    window = terminal.window
    staff = ratings.staff_on_duty(window, now=now)
    record = ratings.pending_record(window, now=now)
    return {
        "window": {"code": window.code, "name": window.name},
        "hall": window.hall.name,
        "department": window.department.name,
        "staff": {"name": staff.name, "staff_number": staff.staff_number} if staff else None,
        "pending": None if record is None else {
            "id": record.id, "record_number": record.record_number, "service_item": record.service_item.name,
        },
        "anonymous": bool(current_app.config.get("TERMINAL_ANONYMOUS_RATING", True)),
    }


def _request_hash(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _parse_client_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ratings.InvalidTimestampError(f"{field} 必须是 ISO 8601 时间", field=field)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ratings.InvalidTimestampError(f"{field} 必须是 ISO 8601 时间", field=field)
    if moment.tzinfo is None:
        raise ratings.InvalidTimestampError(f"{field} 必须带时区", field=field)
    return moment


def tap_moment(payload: dict, sent_at: Any, now: datetime) -> datetime:
    """When the citizen tapped, on the server's clock.

    The tablet's own clock may be wrong by minutes; what it measures well is how long the
    rating waited in its queue (``sent_at`` − ``rated_at``, both on its clock). The tap is
    therefore ``now`` minus that age, never in the future.
    """
    rated_at = _parse_client_time(payload.get("rated_at"), "rated_at")
    if sent_at is None:
        return min(rated_at, now)
    age = _parse_client_time(sent_at, "sent_at") - rated_at
    return now - max(age, timedelta(0))


def submit_rating(terminal: Terminal, key: str, payload: dict, *, sent_at: Any = None,
                  now: datetime | None = None) -> tuple[dict, int, bool]:
    """Store one tablet rating once per idempotency key; returns (body, status, replayed).

    ``payload``: ``record_id`` (None for an anonymous walk-in rating), ``level`` 1–5,
    ``reasons``, ``comment``, ``rated_at`` (tablet clock). A replay with the same key gets
    the stored answer; the same key with another payload is refused. Domain errors
    propagate (nothing is stored for them) and the caller rolls back. Commits.
    """
    now = now or utcnow()
    key = (key or "").strip()
    if not key or len(key) > 128:
        raise ValidationError("缺少或过长的 Idempotency-Key", field="Idempotency-Key")
    # Scoped by window, not by terminal: a tablet re-paired while a rating waits in its
    # queue must still get the stored answer for a key it already used.
    scope = f"terminal-window:{terminal.window_id}"
    digest = _request_hash(payload)

    def work() -> tuple[dict, int]:
        evaluation = _rate(terminal, payload, sent_at, now)
        return {"id": evaluation.id, "level": evaluation.level, "record_id": evaluation.service_record_id,
                "flagged": evaluation.flagged, "received": True}, 201

    result = idempotency.run_once(scope, key, digest, work)
    if isinstance(result, IdempotencyKey):
        return _replay(result, digest)
    body, status = result
    return body, status, False


def _replay(stored: IdempotencyKey, digest: str) -> tuple[dict, int, bool]:
    if stored.request_hash != digest:
        raise IdempotencyKeyReusedError("Idempotency-Key 已用于另一个不同的评价")
    return dict(stored.body), stored.status, True


def _rate(terminal: Terminal, payload: dict, sent_at: Any, now: datetime) -> Evaluation:
    level = payload.get("level")
    if not isinstance(level, int) or isinstance(level, bool) or level not in LEVELS:
        raise ValidationError("评价等级必须是 1–5", field="level")
    reasons = payload.get("reasons") or []
    if not isinstance(reasons, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in reasons):
        raise ValidationError("reasons 必须是评价指标代码的数组", field="reasons")
    if any(r not in REASONS for r in reasons):
        raise ratings.ReasonMismatchError("未知的评价指标", field="reasons")
    comment = payload.get("comment") or ""
    if not isinstance(comment, str):
        raise ValidationError("comment 必须是字符串", field="comment")
    record_id = payload.get("record_id")
    record = None
    if record_id is not None:
        record = db.session.get(ServiceRecord, record_id) if isinstance(record_id, int) else None
        if record is None or record.window_id != terminal.window_id:
            raise NotFoundError("该办件不属于本窗口", field="record_id")
    elif not current_app.config.get("TERMINAL_ANONYMOUS_RATING", True):
        raise PermissionDeniedError("本终端未开放匿名评价", field="record_id")
    return ratings.rate(record=record, level=level, channel="hall_tablet", reasons=reasons, comment=comment,
                        rated_at=tap_moment(payload, sent_at, now), window=terminal.window, terminal=terminal,
                        now=now)


def terminals_list() -> list[Terminal]:
    """Every terminal, newest first, for the admin page."""
    return list(db.session.scalars(select(Terminal).order_by(Terminal.id.desc())))


# ---------------------------------------------------------------- the 办结 page

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
                        now: datetime | None = None) -> ServiceRecord:
    """办结: the staff member completes a record at one of their windows (source "counter")."""
    now = now or utcnow()
    window = next((w for w in counter_windows(user) if w.id == window_id), None)
    if window is None:
        raise PermissionDeniedError("只能在本人的窗口办结")
    item = next((i for i in items_for_window(window) if i.id == service_item_id), None)
    if item is None:
        raise ValidationError("该服务事项不属于本窗口的部门", field="service_item_id")
    record = ratings.create_record(
        record_number=(record_number or "").strip() or ratings.new_record_number(now),
        service_item_code=item.code, window_code=window.code, staff_number=user.staff.staff_number,
        completed_at=now, citizen_phone=citizen_phone, citizen_name=citizen_name, citizen_kind=citizen_kind,
        source="counter", now=now)
    audit.record("record.complete", actor=user, obj=record, window=window.code, record_number=record.record_number)
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
        from feedback.accounts import service as accounts

        scope = accounts.department_scope(user)
        return scope is None or record.department_id in scope
    return False


# ---------------------------------------------------------------- QR codes

def rating_url(record: ServiceRecord) -> str:
    """The public /e/<token>?via=qr address of a record (FEEDBACK_PUBLIC_URL based)."""
    base = current_app.config["PUBLIC_URL"].rstrip("/")
    return f"{base}/e/{ratings.link_token(record)}?via=qr"


def qr_svg(url: str, scale: int = 6) -> str:
    """The QR code of ``url`` as an inline SVG element (no XML declaration)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True,
                                    title="评价二维码", dark="#000", light="#fff")
    return buf.getvalue().decode()


def qr_png(url: str, scale: int = 10) -> bytes:
    """The QR code of ``url`` as PNG bytes, for printing on receipts."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=scale, border=2)
    return buf.getvalue()
