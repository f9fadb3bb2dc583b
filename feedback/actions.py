"""The one way a page runs a service call: commit on success, roll back and explain on refusal.

Views parse the form, then hand the service call to :func:`run_action`; a
:class:`~feedback.errors.DomainError` becomes a flash message in Chinese and the
transaction is rolled back, so nothing half-done is ever committed.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from flask import flash
from flask_wtf import FlaskForm

from feedback.errors import DomainError
from feedback.extensions import db

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
