"""Idempotency-Key records shared by the API and the counter tablets.

A write first claims its (scope, key) in the transaction of the work itself, then stores the
answer there; a retry or a concurrent twin finds the stored answer and replays it.
"""
from __future__ import annotations

from typing import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from feedback.errors import DomainError
from feedback.evaluations.models import IdempotencyKey
from feedback.extensions import db, insert_ignoring_conflicts


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
    return db.session.scalar(select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key))


def run_once(scope: str, key: str, digest: str, work: Callable[[], tuple[dict, int]],
             refusals: tuple[type[Exception], ...] = (DomainError,)) -> tuple[dict, int] | IdempotencyKey:
    """Run ``work`` once per (scope, key) and commit; ``(body, status)`` when it ran now, the
    stored IdempotencyKey when this is a replay (the caller compares its request_hash).

    A twin that won the race is answered as it was, also when this copy failed on a unique
    index or with one of ``refusals`` (a copy that lost can fail where the winner passed);
    otherwise the error propagates and nothing is stored.
    """
    row, used = claim(scope, key, digest)
    if used is not None:
        return used
    try:
        body, status = work()
        row.status, row.body = status, body
        db.session.commit()
    except (IntegrityError, *refusals):
        db.session.rollback()
        used = stored(scope, key)
        if used is None:
            raise
        return used
    return body, status
