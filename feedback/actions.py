"""The one way a page runs a service call: commit on success, roll back and explain on refusal.

Views parse the form, then hand the service call to :func:`run_action`; a
:class:`~feedback.errors.DomainError` becomes a flash message in Chinese and the
transaction is rolled back, so nothing half-done is ever committed.
"""
from __future__ import annotations

import re
from typing import Callable, TypeVar

from flask import Response, flash, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError

from feedback.errors import DomainError
from feedback.extensions import db
from feedback.idempotency import service as idempotency
from feedback.idempotency.models import IdempotencyKey

T = TypeVar("T")


class Outcome:
    """What :func:`run_action` did: ``ok`` and the service's return value, or the error."""

    __slots__ = ("ok", "value", "error")

    def __init__(self, ok: bool, value=None, error: DomainError | None = None):
        self.ok = ok
        self.value = value
        self.error = error

    def __bool__(self) -> bool:
        return self.ok


def run_action(call: Callable[[], T], success: str | None = None) -> Outcome:
    """Run ``call``; commit and flash ``success`` when it returns, or roll back and flash the
    domain error's message when a rule refuses it. Other exceptions propagate (a 500)."""
    try:
        value = call()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return Outcome(False, error=exc)
    db.session.commit()
    if success:
        flash(success, "success")
    return Outcome(True, value)


def flash_form_errors(form: FlaskForm) -> None:
    """Flash every validation message of a form that did not validate."""
    for errors in form.errors.values():
        for error in errors:
            flash(error, "error")


def commit_once(scope: str, key: str, digest: str, work: Callable[[], tuple[dict, int]],
                refusals: tuple[type[Exception], ...] = (DomainError,)) -> tuple[dict, int] | IdempotencyKey:
    """Run an idempotent write and commit it once: ``(body, status)`` when it ran now, the stored
    IdempotencyKey when it is a replay (the caller compares its request_hash).

    A twin that won a race is answered as it was, also when this copy failed on a unique
    index or with one of ``refusals`` (a copy that lost can fail where the winner passed);
    otherwise the error propagates after the rollback and nothing is stored.
    """
    try:
        result = idempotency.run_once(scope, key, digest, work)
        db.session.commit()
    except (IntegrityError, *refusals):
        db.session.rollback()
        used = idempotency.stored(scope, key)
        if used is None:
            raise
        return used
    return result


def commit_quick(write: Callable[[], T | None]) -> T | None:
    """Run a one-statement write (feedback/evaluations/quick.py) and commit it: its result; None
    when it wrote nothing (the caller's full path goes on in the same transaction) or lost a race
    on a unique index to a twin (rolled back first: the full path answers the twin)."""
    try:
        result = write()
    except IntegrityError:
        db.session.rollback()
        return None
    if result is not None:
        db.session.commit()
    return result


def no_store(resp: Response) -> Response:
    """Mark a response as never to be cached (pages with personal or secret data)."""
    resp.headers["Cache-Control"] = "no-store"
    return resp


_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.\-]")


def as_download(resp: Response, filename: str, *, inline: bool = False) -> Response:
    """Name the file a response downloads as. Characters outside ``A-Z a-z 0-9 _ . -`` become
    ``_``: a name made from data (a 办件编号 with quotes or line breaks) can never break out of
    the Content-Disposition header."""
    safe = _UNSAFE_FILENAME.sub("_", filename)[:120] or "download"
    resp.headers.set("Content-Disposition", "inline" if inline else "attachment", filename=safe)
    return resp


def this_page(**changes) -> str:
    """This page's URL with its query string and ``changes`` (a pager's page, the text size).

    The view's own arguments always win: a query string naming one (``?pub_id=abc``) must not
    override it, or url_for fails to build the link (a 500 for a crafted URL).
    """
    args = {k: v for k, v in request.args.items() if k not in (request.view_args or {})}
    args.update(changes)
    return url_for(request.endpoint, **args, **(request.view_args or {}))
