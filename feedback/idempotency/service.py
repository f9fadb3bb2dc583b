"""Idempotency-Key records shared by the API and the counter tablets.

A write first claims its (scope, key) in the transaction of the work itself, then stores the
answer there; a retry or a concurrent twin finds the stored answer and replays it. Nothing
here commits: the view that called commits once (``feedback.actions.commit_once``).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import delete, select

from feedback.clock import as_utc
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.idempotency.models import IdempotencyKey


def request_hash(payload: dict) -> str:
    """The identity of a request body: SHA-256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def claim(scope: str, key: str, digest: str) -> tuple[IdempotencyKey | None, IdempotencyKey | None]:
    """``(new row, None)`` when this request owns the key, ``(None, stored)`` when it was used.

    One ``INSERT … ON CONFLICT DO NOTHING RETURNING`` statement: on PostgreSQL a twin still in
    flight is waited for, so a conflict always means a committed answer.
    """
    row = db.session.scalars(insert_ignoring_conflicts(IdempotencyKey)
                             .values(scope=scope, key=key, request_hash=digest, status=0, body={})
                             .returning(IdempotencyKey)).first()
    if row is not None:
        return row, None
    used = stored(scope, key)
    if used is None:  # cannot follow a conflict; a 5xx makes every client of ours retry
        raise RuntimeError(f"Idempotency-Key {key!r} of {scope} conflicted but is not stored")
    return None, used


def stored(scope: str, key: str) -> IdempotencyKey | None:
    """The stored answer of (scope, key), or None when the key was never answered."""
    return db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))


def run_once(scope: str, key: str, digest: str,
             work: Callable[[], tuple[dict, int]]) -> tuple[dict, int] | IdempotencyKey:
    """Run ``work`` once per (scope, key) in the caller's transaction and store its answer.

    Returns ``(body, status)`` when it ran now, or the stored IdempotencyKey when this is a
    replay (the caller compares its ``request_hash``). Flushes, never commits: errors of
    ``work`` propagate and the caller's rollback takes the claim with them.
    """
    row, used = claim(scope, key, digest)
    if used is not None:
        return used
    body, status = work()
    row.status, row.body = status, body
    db.session.flush()
    return body, status


def prune(now: datetime, batch: int = 5000, max_batches: int = 20) -> dict:
    """Delete answered-write records older than IDEMPOTENCY_RETENTION_DAYS (a client retries
    within minutes; a tablet's offline queue within days), in committed batches (a job body)."""
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
