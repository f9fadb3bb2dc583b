"""Flask extensions, created unbound; ``create_app`` binds them."""
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


def insert_ignoring_conflicts(target):
    """``INSERT … ON CONFLICT DO NOTHING`` for a model or table, on PostgreSQL and SQLite.

    On PostgreSQL a conflict with a row another transaction is still inserting waits for that
    transaction: when it commits, nothing is inserted; when it rolls back, this row is.
    """
    insert = postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    return insert(target).on_conflict_do_nothing()
