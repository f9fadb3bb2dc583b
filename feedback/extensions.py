"""Flask extensions, created unbound; ``create_app`` binds them."""
import logging

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names make migrations reproducible on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
log = logging.getLogger("feedback.ratelimit")


def counted(operation: str, *args):
    """``limiter.limiter.<operation>(*args)`` (``test``, ``hit``, ``get_window_stats``) for a
    limit the code counts itself, surviving a store that does not answer as the decorated
    routes do: the store is marked down and the call goes to the in-memory fallback
    (RATELIMIT_IN_MEMORY_FALLBACK_ENABLED: each process limits alone until Flask-Limiter finds
    the store back). Without the fallback the store's error is raised, as for those routes."""
    try:
        return getattr(limiter.limiter, operation)(*args)
    except Exception:
        # The private flag is Flask-Limiter's own switch to its fallback (extension.py, 3.x);
        # its health check (__should_check_backend) turns it back once the store answers.
        if not limiter._in_memory_fallback_enabled or limiter._storage_dead:
            raise
        log.warning("rate-limit store not answering; limiting in this process's memory", exc_info=True)
        limiter._storage_dead = True
        return getattr(limiter.limiter, operation)(*args)


def insert_ignoring_conflicts(target):
    """``INSERT … ON CONFLICT DO NOTHING`` for a model or table, on PostgreSQL and SQLite.

    On PostgreSQL a conflict with a row another transaction is still inserting waits for that
    transaction: when it commits, nothing is inserted; when it rolls back, this row is.
    """
    insert = postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    return insert(target).on_conflict_do_nothing()


def drain_due(claim, process, batch: int, *, max_batches: int | None = None) -> int:
    """Work a due-queue batch by batch: ``claim(batch)`` is a statement selecting up to ``batch``
    due ids (locked with SKIP LOCKED on PostgreSQL); ``process(ids)`` works them; each batch is
    committed. Ids already seen in this run are not worked again (a step that could not move a
    row's next check forward would otherwise repeat forever). Returns the number of batches."""
    seen: set[int] = set()
    batches = 0
    while max_batches is None or batches < max_batches:
        ids = list(db.session.scalars(claim(batch)))
        fresh = [i for i in ids if i not in seen]
        if not fresh:
            db.session.rollback()  # release the row locks of an empty or repeated batch
            break
        seen.update(fresh)
        process(fresh)
        db.session.commit()
        batches += 1
        if len(ids) < batch:
            break
    return batches
