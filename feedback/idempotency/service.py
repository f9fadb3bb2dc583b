"""Idempotency-Key records shared by the API and the counter tablets.

A write does its work, then stores its answer under (scope, key) with one plain INSERT in the
same transaction; a retry or a concurrent twin finds the stored answer and replays it. The
unique (scope, key) is the claim: a twin in flight makes the INSERT wait (PostgreSQL) and,
once the twin commits, fail with an IntegrityError, on which the caller rolls its own work
back and replays the twin's answer (``feedback.actions.commit_once``). Nothing here commits.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Callable

from flask import current_app
from sqlalchemy import delete, insert, select

from feedback.clock import as_utc, utcnow
from feedback.extensions import db
from feedback.idempotency.models import IdempotencyKey


def request_hash(payload: dict) -> str:
    """The identity of a request body: SHA-256 of its canonical JSON."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def stored(scope: str, key: str) -> IdempotencyKey | None:
    """The stored answer of (scope, key), or None when the key was never answered."""
    return db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))


def run_once(scope: str, key: str, digest: str,
             work: Callable[[], tuple[dict, int]]) -> tuple[dict, int]:
    """Run ``work`` once per (scope, key) in the caller's transaction and store its answer.

    Returns ``(body, status)`` when it ran now. Flushes, never commits: errors of ``work`` and
    the IntegrityError of a key already answered propagate, and the caller rolls back and
    reads the stored answer (:func:`stored`).

    A replay usually fails inside ``work`` (the record is already rated: a refusal the caller
    answers from the stored row) or on the unique (scope, key) at the end (an IntegrityError,
    likewise); either way its writes are rolled back with the transaction. The answer is stored
    by one INSERT after the work rather than a claim before it and an UPDATE after it: one round
    trip fewer on the busiest writes (issue 22), the same guarantee.
    """
    body, status = work()
    db.session.flush()  # the work's rows first: a refusal surfaces before the answer is stored
    store(scope, key, digest, body, status)
    return body, status


def store(scope: str, key: str, digest: str, body: dict, status: int) -> None:
    """Store the answer of (scope, key) in one INSERT; a key already answered raises the
    IntegrityError the caller rolls back on (also the one-statement bad tablet rating's, whose
    scope is known only after its statement: evaluations/quick.py)."""
    db.session.execute(insert(IdempotencyKey.__table__).values(
        scope=scope, key=key, request_hash=digest, status=status, body=body, created_at=utcnow()))


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
