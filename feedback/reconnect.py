"""A dropped database connection costs one retry, not a ping before every request (issue 22).

``pool_pre_ping`` sent a ``SELECT 1`` each time a request took a connection from the pool: a
round trip on every rating, to catch the rare connection that died while idle (the database
restarted, a proxy cut it). Instead the app now finds out when it uses the connection: the
first statement on a dead one fails as a disconnect, SQLAlchemy invalidates the pool (every
connection older than the failure is replaced) and this module runs the request once more on a
fresh connection.

Only when nothing can have been lost or done twice: the retry happens when the disconnect hit
the request's *first* statement (engine events note on ``g`` that one succeeded), so nothing
of the request ran and no commit of it can have happened; a later failure (mid-transaction, or at COMMIT, whose outcome is unknown) is a 500
as before, and the clients' idempotency keys settle it. The database-outage fault test
(tests/faults/test_database_outage.py) covers it on a real restart.
"""
from __future__ import annotations

from flask import Flask, g, has_request_context
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from feedback.extensions import db

_USED = "_feedback_database_used"


def _after_execute(conn, cursor, statement, parameters, context, executemany) -> None:
    if has_request_context():
        setattr(g, _USED, True)


def _on_error(context) -> None:
    # Before any statement of this request succeeded: nothing ran, nothing was committed.
    if context.is_disconnect and context.sqlalchemy_exception is not None and has_request_context() \
            and not getattr(g, _USED, False):
        context.sqlalchemy_exception.feedback_retry_safe = True


def watch(engine: Engine) -> None:
    """Note on ``engine`` whether a request sent a statement, and mark disconnects before that."""
    if event.contains(engine, "handle_error", _on_error):
        return
    event.listen(engine, "after_cursor_execute", _after_execute)
    event.listen(engine, "handle_error", _on_error)


def is_retry_safe(exc: BaseException) -> bool:
    """Whether ``exc`` is a disconnect on a request's first statement (see the module doc)."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated) and \
        getattr(exc, "feedback_retry_safe", False)


def init_app(app: Flask) -> None:
    """Watch the app's engines and run a request once more after a retry-safe disconnect."""
    with app.app_context():
        for engine in db.engines.values():
            watch(engine)
    dispatch = app.full_dispatch_request

    def full_dispatch_request():
        try:
            return dispatch()
        except DBAPIError as exc:
            if not is_retry_safe(exc):
                raise
            app.logger.warning("database connection lost before the first statement; retrying the request once")
            db.session.rollback()
            for name in list(g):  # the retry starts afresh: nothing the failed try cached on g
                g.pop(name, None)
            return dispatch()

    app.full_dispatch_request = full_dispatch_request  # type: ignore[method-assign]
