"""Deny-by-default access checks, one per audience blueprint."""
from __future__ import annotations

from typing import Callable

from flask import abort, redirect, request, url_for
from flask_login import current_user

from feedback.accounts.models import Role


def require_roles(*roles: Role) -> Callable[[], object]:
    """A ``before_request`` hook admitting only logged-in users with one of ``roles``.

    Anonymous visitors are sent to the login page (HTML) or get 401 (JSON); logged-in
    users of another role get 403.
    """
    allowed = {r.value for r in roles}

    def guard():
        if not current_user.is_authenticated:
            if request.accept_mimetypes.best == "application/json":
                abort(401)
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        if current_user.role not in allowed:
            abort(403)
        return None

    guard.allowed_roles = allowed  # type: ignore[attr-defined]
    return guard
