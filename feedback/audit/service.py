"""Writing and reading the audit trail."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from feedback.audit.models import AuditEvent
from feedback.extensions import db


def record(action: str, *, actor: Any = None, obj: Any = None, object_type: str | None = None,
           object_id: Any = None, ip: str | None = None, **detail: Any) -> AuditEvent:
    """Append one audit event in the current transaction.

    ``actor`` is a User (or None for the system/anonymous); ``obj`` any model with an
    ``id``. The event is flushed with the change it describes, so both commit or neither.
    """
    if obj is not None:
        object_type = object_type or type(obj).__name__
        object_id = getattr(obj, "id", object_id)
    label = "system"
    if actor is not None:
        label = getattr(actor, "username", None) or str(actor)
    event = AuditEvent(
        actor_id=getattr(actor, "id", None),
        actor_label=label,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail={k: _jsonable(v) for k, v in detail.items()},
        ip=ip,
    )
    db.session.add(event)
    return event


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def search(*, action: str | None = None, actor: str | None = None, limit: int = 50,
           before_id: int | None = None) -> list[AuditEvent]:
    """Newest-first page of audit events, optionally filtered."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action:
        stmt = stmt.where(AuditEvent.action.like(f"{action}%"))
    if actor:
        stmt = stmt.where(AuditEvent.actor_label == actor)
    if before_id:
        stmt = stmt.where(AuditEvent.id < before_id)
    return list(db.session.scalars(stmt))
