"""Province-scale reads on a replica: FEEDBACK_READ_DATABASE_URL (README "Configuration" and
"Public disclosure"; tests/replica runs it on real PostgreSQL streaming replication).

When READ_DATABASE_URL is set, the requests that only read published figures — every page of
/public (open data and its CSV/JSON downloads included) and the ticket queue's CSV/XLSX exports —
run their queries on a second engine bound to that database, normally a PostgreSQL streaming
replica (hot standby). Everything else (every write, staff pages, the rating path, the jobs)
stays on the primary; with the setting empty every request uses the primary as before.

How: for such a request, ``use_replica`` puts a ``ReplicaSession`` into ``db.session``'s registry
for the request's app context, so the views and the modules they call (public/statistics.py,
results.py, rankings.py, tickets/queue.py) read through the replica without a change. Its
connections are read-only twice over: a hot standby refuses every write, and each connection
starts with ``default_transaction_read_only=on`` (SQLite: ``PRAGMA query_only``), so even a
read URL pointing at the primary cannot be written through. On a staff export the signed-in user
was loaded from the primary by the role check before the switch, and the primary session it
belongs to stays open: the account's state and department scope come from the primary (a
sign-out or a changed scope applies at once), only the exported rows from the replica. Public
pages show nothing of a signed-in user.

Replication lag: a replica is usually well under a second behind the primary, more under load
or after an outage. What these pages show may be that much older — they show the statistics
the refresh job took once a minute anyway, and a result published a moment ago appears a moment
later. Nothing that must read its own write is routed here: the rating path, staff pages, a
ticket's page after an action and the directory's exports (checked right after an import)
stay on the primary.

Replica down: each request checks out its replica connection first (pool_pre_ping: a dead
connection is replaced, a dead server fails here, before the page has read anything). When that
fails the request is served from the primary and the replica is left alone for
READ_DATABASE_RETRY_SECONDS (one warning in the log), then tried again: a replica outage costs
the primary the public traffic, never an error page. A replica that fails in the middle of a
request answers that one request with the error page; the next one fails over.
"""
from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy.exc import DBAPIError

from feedback.extensions import db

EXTENSION = "feedback_read_replica"
CONNECT_TIMEOUT_SECONDS = 3  # an unreachable replica host fails over this fast, not after minutes
APPLICATION_NAME = "feedback-read"  # how the replica's sessions appear in pg_stat_activity


@dataclass
class _Replica:
    engine: sa.Engine
    down_until: float = 0.0  # time.monotonic(): skip the replica until then


_lock = threading.Lock()


class ReplicaSession(FlaskSession):
    """``db.session`` of a read-only request: every statement goes to the replica engine.

    It holds the primary session it displaced (which may hold the signed-in user) and closes it
    with itself when the app context ends (Flask-SQLAlchemy's ``db.session.remove()``)."""

    def __init__(self, *, replica: sa.Engine, displaced: sa.orm.Session | None = None, **kwargs) -> None:
        super().__init__(bind=replica, **kwargs)
        self._replica = replica
        self._displaced = displaced

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        """Every query of this session goes to the replica (an explicit bind still wins)."""
        return bind if bind is not None else self._replica

    def close(self) -> None:
        """Close the replica session and put the request's primary session back."""
        try:
            super().close()
        finally:
            displaced, self._displaced = self._displaced, None
            if displaced is not None:
                displaced.close()


def read_url(app=None) -> str:
    """The replica's URL (postgresql:// read as psycopg 3, like the primary's), or ''."""
    url = ((app or current_app).config.get("READ_DATABASE_URL") or "").strip()
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def create_read_engine(url: str, engine_options: dict | None = None) -> sa.Engine:
    """An engine whose every connection is read-only, with pre-ping (the failover check)."""
    options = {k: v for k, v in (engine_options or {}).items() if k != "connect_args"}
    connect_args = dict((engine_options or {}).get("connect_args") or {})
    options["pool_pre_ping"] = True
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # libpq startup options: the setting holds for the whole connection, whatever a
        # transaction's rollback undoes (a SET in the first transaction would not).
        given = parsed.query.get("options") or connect_args.get("options") or ""
        connect_args["options"] = f"{given} -c default_transaction_read_only=on".strip()
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        connect_args.setdefault("application_name", APPLICATION_NAME)
    engine = sa.create_engine(parsed, connect_args=connect_args, **options)
    if parsed.get_backend_name() == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _query_only(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA query_only = ON")
    return engine


def replica(app=None) -> _Replica | None:
    """This app's replica (its engine made on first use), or None without READ_DATABASE_URL."""
    app = app or current_app._get_current_object()
    url = read_url(app)
    if not url:
        return None
    state = app.extensions.get(EXTENSION)
    if state is None:
        with _lock:
            state = app.extensions.get(EXTENSION)
            if state is None:
                state = _Replica(create_read_engine(url, app.config.get("SQLALCHEMY_ENGINE_OPTIONS")))
                app.extensions[EXTENSION] = state
    return state


def dispose(app) -> None:
    """Close the replica's pooled connections (tests; a worker shutting down)."""
    state = app.extensions.pop(EXTENSION, None)
    if state is not None:
        state.engine.dispose()


def use_replica() -> None:
    """Serve the rest of this request's reads from the replica, when one is set and answers.

    A ``before_request`` hook for a blueprint that only reads (/public), and the start of every
    view decorated with ``reads_from_replica``. Does nothing without the setting, while the
    replica is marked down, or when the primary session already holds unsaved changes."""
    state = replica()
    if state is None or time.monotonic() < state.down_until:
        return
    registry = db.session.registry
    displaced = registry() if registry.has() else None
    if displaced is not None:
        if isinstance(displaced, ReplicaSession):
            return  # already switched (a decorated view of a switched blueprint)
        if displaced.new or displaced.dirty or displaced.deleted:
            return  # a write in progress stays on the primary
    options = {k: v for k, v in db.session.session_factory.kw.items() if k != "bind"}
    session = ReplicaSession(replica=state.engine, displaced=displaced, **options)
    try:
        session.connection()  # check out now: a dead replica fails here, not halfway through the page
    except DBAPIError as exc:
        session._displaced = None  # keep the primary session in place
        session.close()
        pause = float(current_app.config.get("READ_DATABASE_RETRY_SECONDS", 10))
        state.down_until = time.monotonic() + pause
        current_app.logger.warning("read replica unavailable, serving reads from the primary for %s s: %s",
                                   pause, exc.orig or exc)
        return
    registry.set(session)


def on_replica() -> bool:
    """Whether this request's ``db.session`` reads from the replica."""
    registry = db.session.registry
    return registry.has() and isinstance(registry(), ReplicaSession)


def reads_from_replica(view):
    """Decorate a view that only reads (an export) to run its queries on the replica."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        use_replica()
        return view(*args, **kwargs)
    return wrapper
