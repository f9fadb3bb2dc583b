"""The counter terminal (评价器): pairing, what the tablet shows, its queued ratings.

The tablet submits ratings it may have queued offline; each runs once per idempotency key
(``feedback.actions.commit_once``: the key row is written in the same transaction as the
rating, a replay gets the stored answer). Nothing here commits.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import contains_eager, joinedload

from feedback.audit import service as audit
from feedback.accounts.models import Role, User
from feedback.audit.models import AuditEvent
from feedback.clock import as_utc, local_zone, utcnow
from feedback.directory.models import Window
from feedback.contact import clean_text
from feedback.errors import DomainError, NotFoundError, PermissionDeniedError, ValidationError
from feedback.evaluations import quick
from feedback.evaluations import reasons as reason_codes
from feedback.evaluations import service as ratings
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.idempotency import service as idempotency
from feedback.idempotency.models import IdempotencyKey
from feedback.notifications import service as notifications
from feedback.terminal import tracking
from feedback.terminal.models import Terminal
from feedback.tickets.models import Ticket

SEEN_WRITE_EVERY = timedelta(seconds=60)


class IdempotencyKeyReusedError(ValidationError, code="idempotency-key-reused"):
    """The same Idempotency-Key came with a different rating."""


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
        # The tablet reloads (when idle) once the reason code list it shows is out of date.
        "reasons_version": reason_codes.current_version(),
    }


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


def earliest_queued_tap(now: datetime) -> datetime:
    """The earliest tap a tablet's queue may carry, whatever the record: ``TERMINAL_OFFLINE_MAX_HOURS``
    back (how long a queue may wait while the network is down), and not in a closed (previous,
    local) month."""
    hours = current_app.config.get("TERMINAL_OFFLINE_MAX_HOURS", 24)
    month_start = now.astimezone(local_zone()).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return max(now - timedelta(hours=hours), month_start.astimezone(now.tzinfo))


def bounded_tap(terminal: Terminal, record: ServiceRecord | None, tap: datetime, now: datetime) -> tuple[datetime, bool]:
    """The tap moment clamped to what the tablet could have seen; and whether it was moved.

    A tablet chooses its tap time, so it may not lie before the terminal's pairing, before
    the record's completion, further back than ``TERMINAL_OFFLINE_MAX_HOURS`` (how long a
    queue may wait while the network is down) or in a closed (previous, local) month.
    """
    bounds = [earliest_queued_tap(now)]
    if terminal.paired_at is not None:
        bounds.append(as_utc(terminal.paired_at))
    if record is not None:
        bounds.append(as_utc(record.completed_at))
    floor = min(max(bounds), now)
    return (floor, True) if tap < floor else (tap, False)


def rating_scope(terminal: Terminal, key: str) -> str:
    """The Idempotency-Key scope of a tablet rating; refuses a missing or over-long key.

    Scoped by window, not by terminal: a tablet re-paired while a rating waits in its
    queue must still get the stored answer for a key it already used.
    """
    key = (key or "").strip()
    if not key or len(key) > 128:
        raise ValidationError("缺少或过长的 Idempotency-Key", field="Idempotency-Key")
    return f"terminal-window:{terminal.window_id}"


def rating_work(terminal: Terminal, payload: dict, *, sent_at: Any = None, now: datetime | None = None):
    """The write of one tablet rating, for ``commit_once``: returns a callable giving (body, 201).

    ``payload``: ``record_id`` (None for an anonymous walk-in rating), ``level`` 1–5,
    ``reasons``, ``comment``, ``rated_at`` (tablet clock), ``reasons_version`` (the reason
    code list the tablet showed). A bad rating needs a label or a text: the tablet asks for
    one before it queues the rating. Domain errors propagate (nothing is stored for them)
    and the caller rolls back.
    """
    now = now or utcnow()

    def work() -> tuple[dict, int]:
        evaluation = _rate(terminal, payload, sent_at, now)
        # A bad review's case number and tracking link, for the thanks screen (stored with the
        # answer, so a replayed request shows the same case).
        # Only a bad rating opens a ticket: a good one is not looked up.
        case = tracking.case_info(evaluation) if evaluation.is_bad else None
        return {"id": evaluation.id, "level": evaluation.level, "record_id": evaluation.service_record_id,
                "flagged": evaluation.flagged, "received": True, "case": case}, 201

    return work


def quick_rate(window_code: str, terminal_id: int, secret: str, payload: dict, *, sent_at: Any, key: str,
               digest: str, now: datetime) -> dict | None:
    """A plain tablet rating written in one statement (evaluations/quick.py), the terminal's
    secret checked in it: the stored answer (as ``rating_work`` gives it), or None when the case
    is not plain (an anonymous rating, a tap to be moved, anything to refuse) and the full path
    must run. Nothing is written then. A bad rating opens its ticket in the statement, and its
    answer names the case page (tracking.case_of)."""
    level, record_id = payload.get("level"), payload.get("record_id")
    reasons, version, comment = payload.get("reasons") or [], payload.get("reasons_version"), payload.get("comment") or ""
    if (not isinstance(level, int) or isinstance(level, bool) or level not in LEVELS
            or not isinstance(record_id, int) or isinstance(record_id, bool) or not isinstance(reasons, list)
            or not all(isinstance(r, int) and not isinstance(r, bool) for r in reasons)
            or not (version is None or (isinstance(version, int) and not isinstance(version, bool)))
            or not isinstance(comment, str)):
        return None
    reasons = sorted(set(reasons))
    try:
        if reasons:
            cap = reason_codes.catalogue().check(reasons, level, version)
        else:
            cap = quick.ANY_VERSION if version is None else max(1, version)
        comment = clean_text(comment, current_app.config["COMMENT_MAX_LENGTH"])
        tap = as_utc(tap_moment(payload, sent_at, now))
    except DomainError:
        return None
    if LEVELS[level].is_bad and not reasons and not comment:
        return None  # the full path refuses it (a bad rating at the tablet says why)
    # bounded_tap's bounds that need no row (the pairing and the record's completion are the
    # statement's): a tap it would move is the full path's, which moves and flags it.
    if tap < earliest_queued_tap(now):
        return None
    rating = quick.Rating(level=level, channel="hall_tablet", reasons=reasons, comment=comment, rated_at=tap,
                          version_cap=cap)
    return quick.rate(rating, find="tablet", body={"level": level, "flagged": False, "received": True, "case": None},
                      drop=("reasons_version", "department_code", "window_code"),
                      where={"record_id": record_id, "window_code": window_code, "secret_hash": _digest(secret)},
                      key=key, digest=digest, terminal_id=terminal_id, now=now,
                      case=lambda ticket_id, sms: tracking.case_of(Ticket(id=ticket_id), sms=sms))


def replayed_answer(stored: IdempotencyKey, digest: str) -> tuple[dict, int]:
    """The stored answer of a replayed tablet rating; the same key with another payload is refused."""
    if stored.request_hash != digest:
        raise IdempotencyKeyReusedError("Idempotency-Key 已用于另一个不同的评价")
    return dict(stored.body), stored.status


def _rate(terminal: Terminal, payload: dict, sent_at: Any, now: datetime) -> Evaluation:
    level = payload.get("level")
    if not isinstance(level, int) or isinstance(level, bool) or level not in LEVELS:
        raise ValidationError("评价等级必须是 1–5", field="level")
    reasons = payload.get("reasons") or []
    if not isinstance(reasons, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in reasons):
        raise ValidationError("reasons 必须是评价指标代码的数组", field="reasons")
    version = payload.get("reasons_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise ValidationError("reasons_version 必须是整数", field="reasons_version")
    comment = payload.get("comment") or ""
    if not isinstance(comment, str):
        raise ValidationError("comment 必须是字符串", field="comment")
    record_id = payload.get("record_id")
    record = None
    if record_id is not None:
        # With its rating, so rate() does not ask again (one round trip fewer).
        record = db.session.scalar(select(ServiceRecord).where(ServiceRecord.id == record_id)
                                   .options(joinedload(ServiceRecord.evaluation))
                                   .execution_options(populate_existing=True)) if isinstance(record_id, int) else None
        if record is None or record.window_id != terminal.window_id:
            raise NotFoundError("该办件不属于本窗口", field="record_id")
    elif not current_app.config.get("TERMINAL_ANONYMOUS_RATING", True):
        raise PermissionDeniedError("本终端未开放匿名评价", field="record_id")
    tap, adjusted = bounded_tap(terminal, record, tap_moment(payload, sent_at, now), now)
    evaluation = ratings.rate(record=record, level=level, channel="hall_tablet", reasons=reasons, comment=comment,
                              rated_at=tap, window=terminal.window, terminal_id=terminal.id,
                              reasons_version=version, reason_required=True, savepoint=False, now=now)
    if adjusted:
        # Kept (nothing accepted is lost), but a person looks at it.
        note = "终端上报的评价时间过早，已调整为允许的最早时间"
        evaluation.flagged = True
        evaluation.flag_reason = "；".join(filter(None, [evaluation.flag_reason, note]))[:200]
    return evaluation


def add_labels(terminal: Terminal, payload: dict, now: datetime | None = None) -> dict:
    """Labels the citizen added on the thanks screen to the good rating just given there.

    ``payload``: ``rating_key`` (the Idempotency-Key the tablet sent the rating with: only
    this window's tablet knows it, and it names the rating even when the tablet never got
    the answer) and ``labels`` (codes of the rating's level). The tablet queues this after the
    rating, so the rating is stored first; adding labels twice changes nothing.
    Raises NotFoundError, LabelsClosedError or ReasonMismatchError.
    """
    key = payload.get("rating_key")
    if not isinstance(key, str) or not key.strip() or len(key) > 128:
        raise ValidationError("rating_key 必须是评价的 Idempotency-Key", field="rating_key")
    labels = payload.get("labels")
    if not isinstance(labels, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in labels):
        raise ValidationError("labels 必须是评价指标代码的数组", field="labels")
    stored = idempotency.stored(rating_scope(terminal, key), key.strip())
    evaluation = None
    if stored is not None and stored.status == 201 and isinstance(stored.body.get("id"), int):
        evaluation = db.session.get(Evaluation, stored.body["id"])
    if evaluation is None or evaluation.window_id != terminal.window_id:
        raise NotFoundError("本终端没有这条评价", field="rating_key")
    reason_codes.add_labels(evaluation, labels, source="terminal", now=now)
    return {"id": evaluation.id, "level": evaluation.level, "reasons": list(evaluation.reasons)}


def terminals_list() -> list[Terminal]:
    """Every terminal, newest first, for the admin page."""
    return list(db.session.scalars(select(Terminal).order_by(Terminal.id.desc())))


# ---------------------------------------------------------------- pairing

def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_pairing_code(window: Window, *, actor: Any, name: str = "", now: datetime | None = None) -> tuple[Terminal, str]:
    """Create a terminal for a window with a one-time pairing code valid for 24 hours."""
    now = now or utcnow()
    code = f"{secrets.randbelow(10**8):08d}"
    terminal = Terminal(window=window, name=name or f"{window.code} 评价器",
                        pairing_code_hash=_digest(f"{window.id}:{code}"), pairing_expires_at=now + timedelta(hours=24))
    db.session.add(terminal)
    db.session.flush()
    audit.record("terminal.issue", actor=actor, obj=terminal, window=window.code)
    return terminal, code


def pair_terminal(window: Window, code: str, now: datetime | None = None) -> tuple[Terminal, str] | None:
    """Exchange a pairing code for a long-lived terminal secret (the code works once).

    A wrong code for a window with a code pending is recorded (``terminal.pair_failed``);
    after ``TERMINAL_PAIR_MAX_FAILURES`` of them the window's pending codes are void and
    the admins are alerted (:func:`_record_pair_failure`). The caller commits either way.
    """
    now = now or utcnow()
    digest = _digest(f"{window.id}:{code.strip()}")
    terminal = db.session.scalar(select(Terminal).where(
        Terminal.window_id == window.id, Terminal.pairing_code_hash == digest, Terminal.revoked_at.is_(None)))
    if terminal is None or terminal.pairing_expires_at is None or as_utc(terminal.pairing_expires_at) < now:
        _record_pair_failure(window, now)
        return None
    secret = secrets.token_urlsafe(32)
    terminal.secret_hash = _digest(secret)
    terminal.pairing_code_hash = None
    terminal.paired_at = now
    audit.record("terminal.pair", obj=terminal, window=window.code)
    return terminal, secret


def _pending_codes(window: Window, now: datetime) -> list[Terminal]:
    return list(db.session.scalars(select(Terminal).where(
        Terminal.window_id == window.id, Terminal.pairing_code_hash.is_not(None), Terminal.revoked_at.is_(None),
        Terminal.pairing_expires_at >= now)))


def _record_pair_failure(window: Window, now: datetime) -> None:
    """Count a wrong code against the window's pending codes; lock them at the limit.

    Failures are audit events of the window counted since its newest pending code was
    issued, so a new code starts afresh and no column is needed.
    """
    pending = _pending_codes(window, now)
    if not pending:
        return
    audit.record("terminal.pair_failed", object_type="Window", object_id=window.id, window=window.code)
    db.session.flush()
    since = max(as_utc(t.created_at) for t in pending)
    failures = db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.action == "terminal.pair_failed", AuditEvent.object_type == "Window",
        AuditEvent.object_id == str(window.id), AuditEvent.at >= since))
    limit = current_app.config.get("TERMINAL_PAIR_MAX_FAILURES", 5)
    if failures < limit:
        return
    for terminal in pending:
        terminal.pairing_code_hash = None  # the admin issues a new code
    audit.record("terminal.pair_locked", object_type="Window", object_id=window.id, window=window.code,
                 failures=failures, terminals=[t.id for t in pending])
    admins = db.session.scalars(select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True))).all()
    title = f"窗口 {window.code} 的评价器配对码已锁定"
    body = (f"该窗口的配对码被输错 {failures} 次，已作废以防猜测。"
            "如需配对评价器，请在终端管理页重新生成配对码；如非工作人员所为，请核查。")
    notifications.notify_many([
        notifications.notification_row(admin_id, kind="pair_alert", title=title, body=body, now=now,
                                       deliver_after=now,
                                       dedupe_key=f"pair:{window.id}:{int(since.timestamp())}:{admin_id}"[:160])
        for admin_id in admins])


def terminal_at(window_code: str, terminal_id: int | None, secret: str | None) -> Terminal | None:
    """The paired, unrevoked terminal ``terminal_id`` of the window ``window_code`` presenting
    ``secret``, loaded with its window in one statement (each tablet request asks); else None."""
    if not terminal_id or not secret:
        return None
    terminal = db.session.scalar(select(Terminal).join(Terminal.window).options(contains_eager(Terminal.window))
                                 .where(Window.code == window_code, Terminal.id == terminal_id))
    return terminal_for(terminal.window, terminal_id, secret) if terminal is not None else None


def terminal_for(window: Window, terminal_id: int | None, secret: str | None) -> Terminal | None:
    """The paired, unrevoked terminal of a window presenting ``secret``; else None."""
    if not terminal_id or not secret:
        return None
    terminal = db.session.get(Terminal, terminal_id)
    if (terminal is None or terminal.window_id != window.id or terminal.revoked_at is not None
            or not terminal.secret_hash or not secrets.compare_digest(terminal.secret_hash, _digest(secret))):
        return None
    return terminal


def revoke_terminal(terminal: Terminal, actor: Any, now: datetime | None = None) -> None:
    """Unpair a tablet at once; it shows nothing of the hall afterwards."""
    terminal.revoked_at = now or utcnow()
    audit.record("terminal.revoke", actor=actor, obj=terminal)
