"""Failed sign-ins, counted atomically per source address and account (``login_throttles``);
failed API-key authentications, counted per address in the rate limiter's store.

A guess is *claimed* before the password is checked: one ``INSERT … ON CONFLICT DO UPDATE SET
failures = failures + 1 … WHERE failures < limit RETURNING`` per counter, so twelve attempts
at once reach the password hash at most LOGIN_MAX_FAILURES times (a read-then-write counter
lets all of them through while the first ~100 ms hash runs). A failure locks the counter that
is full; a success gives its claim back.

The counters are written on a connection of their own and committed at once: they must hold
even when the request's transaction rolls back, and parallel attempts must see each other's
claims before the hash check ends. Call them with no writes of the session flushed yet (on
SQLite a flushed write holds the database lock until the request commits).
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from limits import parse
from sqlalchemy import and_, case, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from feedback.accounts.models import LoginThrottle
from feedback.db_types import UTCDateTime
from feedback.extensions import counted, db, limiter

SOURCE, ADDRESS, ACCOUNT = "source", "address", "account"
_T = LoginThrottle.__table__


def account_key(username: str) -> str:
    """The name as the counters and the audit log keep it: an HMAC-SHA256 (hex) of the stripped,
    lower-cased name under the secret key — the same for every spelling the login accepts, and
    never the typed text, which may be a password typed into the wrong box."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, username.strip().lower().encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """One sign-in: the account name's key, the source address ('' when unknown) and the moment."""

    account: str
    address: str
    now: datetime

    @classmethod
    def of(cls, username: str, address: str | None, now: datetime) -> "Attempt":
        """The attempt of ``username`` from ``address`` at ``now``."""
        return cls(account_key(username), (address or "")[:45], now)


@dataclass(frozen=True)
class Failure:
    """What a failed guess changed: whether it locked its source or its address out, and the
    account's failures from anywhere in the current window."""

    locked_source: bool
    locked_address: bool
    account_failures: int


def _settings() -> tuple[int, int, timedelta, timedelta]:
    cfg = current_app.config
    return (int(cfg["LOGIN_MAX_FAILURES"]), int(cfg["LOGIN_ADDRESS_MAX_FAILURES"]),
            timedelta(minutes=int(cfg["LOGIN_FAILURE_WINDOW_MINUTES"])),
            timedelta(minutes=int(cfg["LOGIN_LOCKOUT_MINUTES"])))


def _upsert():
    insert = postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    return insert(_T)


def _key(kind: str, address: str, account: str):
    return and_(_T.c.kind == kind, _T.c.address == address, _T.c.account == account)


def _count(conn, kind: str, address: str, account: str, now: datetime, window: timedelta,
           limit: int | None) -> int | None:
    """Add one to a counter (a new window starts at 1) unless it is locked or, with ``limit``,
    full; the new count, or None when refused. One statement: atomic under concurrency."""
    stale = _T.c.window_started_at < now - window
    at_now = literal(now, UTCDateTime())
    allowed = or_(_T.c.locked_until.is_(None), _T.c.locked_until <= now)
    if limit is not None:
        allowed = and_(allowed, or_(stale, _T.c.failures < limit))
    stmt = _upsert().values(kind=kind, address=address, account=account, failures=1, window_started_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_T.c.kind, _T.c.address, _T.c.account],
        set_={"failures": case((stale, 1), else_=_T.c.failures + 1),
              "window_started_at": case((stale, at_now), else_=_T.c.window_started_at)},
        where=allowed)
    return conn.execute(stmt.returning(_T.c.failures)).scalar()


def _give_back(conn, kind: str, address: str, account: str) -> None:
    conn.execute(update(_T).where(_key(kind, address, account), _T.c.failures > 0)
                 .values(failures=_T.c.failures - 1))


def _lock_if_full(conn, kind: str, address: str, account: str, limit: int, now: datetime,
                  lockout: timedelta) -> bool:
    """Lock a full counter (and start it over); True when this call locked it."""
    locked = conn.execute(update(_T).where(
        _key(kind, address, account), _T.c.failures >= limit,
        or_(_T.c.locked_until.is_(None), _T.c.locked_until <= now),
    ).values(locked_until=now + lockout, failures=0).returning(_T.c.id)).first()
    return locked is not None


def claim(attempt: Attempt) -> bool:
    """Reserve one guess for the attempt's address and its (address, account) pair; False when
    either is locked or full — the password must then not be checked."""
    per_source, per_address, window, _ = _settings()
    with db.engine.begin() as conn:
        if _count(conn, ADDRESS, attempt.address, "", attempt.now, window, per_address) is None:
            return False
        if _count(conn, SOURCE, attempt.address, attempt.account, attempt.now, window, per_source) is None:
            _give_back(conn, ADDRESS, attempt.address, "")
            return False
    return True


def failed(attempt: Attempt) -> Failure:
    """Record that the claimed guess was wrong: lock the address and the source if full, and
    count the failure against the account from anywhere. Prunes counters nobody needs any more."""
    per_source, per_address, window, lockout = _settings()
    now = attempt.now
    # Rows are always taken in the order address, source, account (as in claim): two attempts
    # can never wait for each other's rows the other way round.
    with db.engine.begin() as conn:
        address = _lock_if_full(conn, ADDRESS, attempt.address, "", per_address, now, lockout)
        source = _lock_if_full(conn, SOURCE, attempt.address, attempt.account, per_source, now, lockout)
        total = _count(conn, ACCOUNT, "", attempt.account, now, window, None) or 0
    _prune(now, window)
    return Failure(source, address, total)


def _prune(now: datetime, window: timedelta, batch: int = 500) -> None:
    """Delete counters whose window has passed and which lock nothing (as good as none); rows
    another attempt holds are skipped (PostgreSQL ``SKIP LOCKED``), so pruning never waits."""
    stale = and_(_T.c.window_started_at < now - window, or_(_T.c.locked_until.is_(None), _T.c.locked_until <= now))
    victims = select(_T.c.id).where(stale).limit(batch).with_for_update(skip_locked=True)
    with db.engine.begin() as conn:
        conn.execute(delete(_T).where(_T.c.id.in_(victims.scalar_subquery()), stale))


def succeeded(attempt: Attempt) -> None:
    """The right password from a source: the address gets its claim back and the source's
    counter for the account starts over."""
    with db.engine.begin() as conn:
        _give_back(conn, ADDRESS, attempt.address, "")
        conn.execute(update(_T).where(_key(SOURCE, attempt.address, attempt.account))
                     .values(failures=0, locked_until=None))


def minutes_left(attempt: Attempt) -> int:
    """Whole minutes until the attempt's source and address may try again (at least 1)."""
    with db.engine.connect() as conn:
        until = conn.execute(select(func.max(_T.c.locked_until)).where(
            or_(_key(SOURCE, attempt.address, attempt.account), _key(ADDRESS, attempt.address, "")))).scalar()
    if until is None or until <= attempt.now:
        return int(current_app.config["LOGIN_LOCKOUT_MINUTES"])
    return max(1, math.ceil((until - attempt.now).total_seconds() / 60))


def locked_sources(usernames: list[str], now: datetime) -> dict[str, int]:
    """For each of ``usernames``, how many source addresses are locked out of it now (only
    names with at least one)."""
    keys = {account_key(name): name for name in usernames}
    if not keys:
        return {}
    rows = db.session.execute(select(_T.c.account, func.count()).where(
        _T.c.kind == SOURCE, _T.c.account.in_(keys), _T.c.locked_until > now).group_by(_T.c.account))
    return {keys[account]: count for account, count in rows}


def unlock(username: str) -> int:
    """Lift every source's lockout of ``username`` (an administrator's 解除锁定); how many
    counters went. In the caller's transaction."""
    result = db.session.execute(delete(_T).where(_T.c.kind == SOURCE, _T.c.account == account_key(username)))
    return result.rowcount or 0


# ---------------------------------------------------------------- API keys

API_FAILURES = "api-auth-failures"


def api_failures_exhausted(address: str | None) -> bool:
    """Whether ``address`` has had API_AUTH_FAILURE_LIMIT failed API-key authentications in the
    current period: then no key it sends is checked (429). Kept in the rate limiter's store
    (FEEDBACK_RATELIMIT_STORAGE_URI), so it holds across workers with a shared store."""
    if not limiter.enabled:
        return False
    return not counted("test", parse(current_app.config["API_AUTH_FAILURE_LIMIT"]), API_FAILURES, address or "")


def api_failure(address: str | None) -> None:
    """Count one failed API-key authentication (a 401) against ``address``."""
    if limiter.enabled:
        counted("hit", parse(current_app.config["API_AUTH_FAILURE_LIMIT"]), API_FAILURES, address or "")
