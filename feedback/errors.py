"""Typed domain errors shared by the areas. Views turn them into flashes or problem+json.

A refusal names its problem code (the problem+json ``type``) and HTTP status as class
keywords: ``class AlreadyRatedError(ConflictError, code="already-rated"): "…"``.
"""
from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused an action; ``message`` is shown to the user (Chinese)."""



    code = "domain-error"
    status = 400

    def __init_subclass__(cls, code: str | None = None, status: int | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status

    def __init__(self, message: str, **detail):
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFoundError(DomainError, code="not-found", status=404):
    """What was asked for does not exist (or is out of scope)."""


class ValidationError(DomainError, code="validation-error", status=422):
    """The input breaks a rule; ``detail['field']`` names it."""


class ConflictError(DomainError, code="conflict", status=409):
    """The action conflicts with the current state."""


class PermissionDeniedError(DomainError, code="forbidden", status=403):
    """The user may not take this action."""
