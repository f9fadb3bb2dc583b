"""How long a staff session lasts: SESSION_IDLE_MINUTES (30) without a request, and
SESSION_MAX_HOURS (12) after signing in whatever the use. Signing out ends it on the server
(``service.sign_out`` moves the account's session version on).

The moments live in the signed session cookie, which the browser cannot change. They are real
time (``time.time``), not the app's CLOCK: that is the domain's clock, which tests and
``jobs run --now`` move by days, while a session's age is how long a person has been away.
"""
from __future__ import annotations

import time

from flask import current_app, flash, request, session
from flask_login import logout_user

SIGNED_IN_AT = "_signed_in_at"
SEEN_AT = "_seen_at"
# The last request is written back at most this often: not a new cookie on every request.
RENEW_AFTER_SECONDS = 60


def start() -> None:
    """Stamp a session that has just signed in."""
    now = int(time.time())
    session[SIGNED_IN_AT] = now
    session[SEEN_AT] = now


def end() -> None:
    """Forget the session's moments (after signing out)."""
    session.pop(SIGNED_IN_AT, None)
    session.pop(SEEN_AT, None)


def enforce_limits() -> None:
    """``before_app_request``: sign a session out when it was idle for SESSION_IDLE_MINUTES or
    signed in SESSION_MAX_HOURS ago (a session without the stamps — older than this code — is
    treated as expired); otherwise note the request. Static files neither count nor end it."""
    cookie = current_app.session_interface.get_cookie_name(current_app)
    if request.endpoint == "static" or cookie not in request.cookies:
        return None  # nothing to end, and the session stays untouched (no Vary: Cookie on the API)
    if "_user_id" not in session:
        return None
    cfg = current_app.config
    now = time.time()
    signed_in, seen = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
    alive = (isinstance(signed_in, (int, float)) and isinstance(seen, (int, float))
             and now - signed_in < float(cfg["SESSION_MAX_HOURS"]) * 3600
             and now - seen < float(cfg["SESSION_IDLE_MINUTES"]) * 60)
    if not alive:
        logout_user()
        end()
        flash("登录已超时，请重新登录", "info")
        return None
    if now - seen >= RENEW_AFTER_SECONDS:
        session[SEEN_AT] = int(now)
    return None
