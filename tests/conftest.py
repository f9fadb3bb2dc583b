"""Shared fixtures: an app per test on SQLite and on PostgreSQL, factories, a clock.

Each test gets a fresh database copied from a template migrated once per session
(the migrations are the only way the schema is made, here as in production).
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from feedback import create_app
from feedback.config import Config

PG_URL = os.environ.get("FEEDBACK_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
TEST_PASSWORD = "Correct-Horse-42"


def pytest_configure(config):
    if os.environ.get("CI") and not PG_URL:
        raise pytest.UsageError("CI run without FEEDBACK_TEST_POSTGRES_URL: use `make test`")


def make_config(url: str, **overrides) -> Config:
    cfg = Config(ENV_NAME="testing", SECRET_KEY="test-secret", SQLALCHEMY_DATABASE_URI=url,
                 SESSION_COOKIE_SECURE=False, REMEMBER_COOKIE_SECURE=False,
                 PUBLIC_URL="https://feedback.example.gov.cn")
    cfg.extra.update(overrides)
    return cfg


def migrate_to_head(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(make_config(url))
    with app.app_context():
        upgrade(revision="heads")
        from feedback.extensions import db
        db.engine.dispose()


class Clock:
    """A settable clock for the app's CLOCK setting."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, iso_or_dt) -> None:
        self.now = datetime.fromisoformat(iso_or_dt) if isinstance(iso_or_dt, str) else iso_or_dt
        if self.now.tzinfo is None:
            raise ValueError("give the clock an aware time")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tpl") / "template.sqlite3"
    migrate_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_admin_engine():
    if not PG_URL:
        raise RuntimeError("this test needs PostgreSQL: run it through `make test` "
                           "or set FEEDBACK_TEST_POSTGRES_URL")
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_admin_engine) -> str:
    name = f"fbtpl_{uuid.uuid4().hex[:8]}"
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    migrate_to_head(_pg_db_url(name))
    yield name
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pg_db_url(name: str) -> str:
    return sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


_counter = itertools.count()


def fresh_database(request, backend: str, tmp_path: Path):
    """Yield the URL of a fresh, migrated database on ``backend``, dropped afterwards.

    A generator for ``yield from`` in a fixture (tests/browser overrides ``db_url``
    with a SQLite default through it).
    """
    if backend == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    admin = request.getfixturevalue("pg_admin_engine")
    name = f"fbt_{os.getpid()}_{next(_counter)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield _pg_db_url(name)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> str:
    """A fresh, migrated database on each backend (override with
    ``@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)``)."""
    yield from fresh_database(request, request.param, tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))


@pytest.fixture
def app_config(db_url, clock) -> Config:
    cfg = make_config(db_url)
    cfg.CLOCK = clock
    return cfg


class FreshContextClient(FlaskClient):
    """Each request in its own app context, as in production (no ``g`` shared between
    requests of different clients); the test's own session stays separate."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    app.test_client_class = FreshContextClient
    with app.app_context():
        yield app
        from feedback.extensions import db
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def db(app):
    from feedback.extensions import db as _db
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


# ---------------------------------------------------------------- HTTP helpers

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def post_form(client, url: str, data: dict, *, form_url: str | None = None, **kw):
    """GET the form page, then POST with its CSRF token, as a browser would."""
    page = client.get(form_url or url)
    payload = dict(data)
    payload["csrf_token"] = csrf_from(page.get_data(as_text=True))
    return client.post(url, data=payload, **kw)


def login(client, username: str, password: str = TEST_PASSWORD):
    resp = post_form(client, "/login", {"username": username, "password": password})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    return resp


# ---------------------------------------------------------------- factories

@pytest.fixture
def make_department(db):
    n = itertools.count(1)

    def make(**kw):
        from feedback.directory.models import Department
        i = next(n)
        dept = Department(code=kw.pop("code", f"D{i:03d}"), name=kw.pop("name", f"测试部门{i}"), **kw)
        db.session.add(dept)
        db.session.flush()
        return dept
    return make


@pytest.fixture
def make_hall(db):
    n = itertools.count(1)

    def make(**kw):
        from feedback.directory.models import Hall
        i = next(n)
        hall = Hall(code=kw.pop("code", f"H{i:02d}"), name=kw.pop("name", f"测试大厅{i}"), **kw)
        db.session.add(hall)
        db.session.flush()
        return hall
    return make


@pytest.fixture
def make_window(db, make_hall, make_department):
    n = itertools.count(1)

    def make(**kw):
        from feedback.directory.models import Window
        i = next(n)
        kw.setdefault("hall", make_hall())
        kw.setdefault("department", make_department())
        window = Window(code=kw.pop("code", f"W{i:03d}"), name=kw.pop("name", f"{i} 号窗口"), **kw)
        db.session.add(window)
        db.session.flush()
        return window
    return make


@pytest.fixture
def make_staff(db, make_department):
    n = itertools.count(1)

    def make(**kw):
        from feedback.directory.models import Staff
        i = next(n)
        kw.setdefault("department", make_department())
        staff = Staff(staff_number=kw.pop("staff_number", f"S{i:04d}"), name=kw.pop("name", f"张{i}"), **kw)
        db.session.add(staff)
        db.session.flush()
        return staff
    return make


@pytest.fixture
def make_item(db, make_department):
    n = itertools.count(1)

    def make(**kw):
        from feedback.directory.models import ServiceItem
        i = next(n)
        kw.setdefault("department", make_department())
        item = ServiceItem(code=kw.pop("code", f"I{i:04d}"), name=kw.pop("name", f"测试事项{i}"),
                           promised_days=kw.pop("promised_days", 5), **kw)
        db.session.add(item)
        db.session.flush()
        return item
    return make


@pytest.fixture
def make_user(db):
    n = itertools.count(1)

    def make(role="admin", departments=(), **kw):
        from feedback.accounts import service
        i = next(n)
        user = service.create_user(kw.pop("username", f"{role}{i}"), kw.pop("password", TEST_PASSWORD), role,
                                   department_codes=[d.code for d in departments], **kw)
        db.session.commit()
        return user
    return make
