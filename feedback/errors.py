"""Typed domain errors shared by the areas. Views turn them into flashes or problem+json."""
from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain refused an action; ``message`` is shown to the user (Chinese)."""

    code = "domain-error"
    status = 400

    def __init__(self, message: str, **detail):
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFoundError(DomainError):
    code = "not-found"
    status = 404


class ValidationError(DomainError):
    code = "validation-error"
    status = 422


class ConflictError(DomainError):
    code = "conflict"
    status = 409


class PermissionDeniedError(DomainError):
    code = "forbidden"
    status = 403
