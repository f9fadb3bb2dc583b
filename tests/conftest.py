"""The tests' one vocabulary: an app per test on SQLite and on PostgreSQL, a clock, the
``city`` (a small demo directory with users of every role) and factories that return
callables: ``make_department`` ... ``make_user`` for the directory and accounts,
``make_record``, ``make_evaluation`` and ``make_ticket(**overrides)`` for what citizens
leave behind; ``tablet`` is a test client paired to the city's window.

Each test gets a fresh database copied from a template migrated once per session (the
migrations are the only way the schema is made, here as in production); under pytest-xdist
each worker has its own template and databases.
"""
from __future__ import annotations

import itertools
import os
import re
import shutil
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from feedback import create_app
from feedback.config import Config
from tests.support import city as city_support

PG_URL = os.environ.get("FEEDBACK_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
TEST_PASSWORD = city_support.TEST_PASSWORD
START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # the clock fixture's moment
# Under pytest-xdist each worker is a process of its own ("gw0", "gw1", ...): its name goes
# into every database it creates, so workers sharing one PostgreSQL server never collide.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_configure(config):
    if os.environ.get("CI") and not PG_URL:
        raise pytest.UsageError("CI run without FEEDBACK_TEST_POSTGRES_URL: use `make test`")
    _reuse_url_builders()


def _reuse_url_builders() -> None:
    """Every test makes its own app, and Werkzeug compiles two URL builder functions for each of
    the app's 150 routes (Python code generated and compiled: 0.1 s an app, 4 minutes of the
    suite). A builder depends only on its rule's parsed shape and defaults (it reads the
    converters from the rule it is bound to), so the tests' processes compile each shape once."""
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    builders: dict = {}

    def cached(self, append_unknown: bool = True):
        try:
            key = (tuple(self._trace), tuple(sorted((self.defaults or {}).items())), append_unknown)
            hash(key)
        except TypeError:  # a default that cannot be a key: compiled as usual
            return compile_builder(self, append_unknown)
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    Rule._compile_builder = cached


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs ``-n auto``, setup.cfg ``--dist loadgroup``) the
    tests that start Chromium or real processes run one after another on one worker: two
    Chromiums or two gunicorn stacks at once would fight over the machine's two cores and its
    free ports (tests/bench/stack.py picks a port, then gunicorn binds it)."""
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("processes"):
            item.add_marker(pytest.mark.xdist_group("serial"))


def pytest_terminal_summary(terminalreporter):
    """The figures the fault suite keeps (tests/faults/conftest.py ``report``), after the run."""
    figures = [value for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed")
               for name, value in report.user_properties if name == "fault figure"]
    if figures:
        terminalreporter.section("fault figures")
        for figure in figures:
            terminalreporter.line(f"[faults] {figure}")


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
def sqlite_city_template(sqlite_template, tmp_path_factory) -> Path:
    """The migrated template with the city built in it (tests/support/city.py)."""
    path = tmp_path_factory.mktemp("tpl") / "city.sqlite3"
    shutil.copy(sqlite_template, path)
    city_support.build_city_in(_template_app(f"sqlite:///{path}"))
    return path


def _template_app(url: str):
    cfg = make_config(url)
    cfg.CLOCK = Clock(START)
    return create_app(cfg)


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
    name = f"fbtpl_{WORKER}_{uuid.uuid4().hex[:8]}"
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    migrate_to_head(_pg_db_url(name))
    yield name
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_city_template(pg_admin_engine, pg_template) -> str:
    """The migrated PostgreSQL template with the city built in it (tests/support/city.py)."""
    name = f"fbtcity_{WORKER}_{uuid.uuid4().hex[:8]}"
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    city_support.build_city_in(_template_app(_pg_db_url(name)))
    yield name
    with pg_admin_engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pg_db_url(name: str) -> str:
    return sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


class PgPool:
    """PostgreSQL databases reused from test to test, each emptied back to the migrated template.

    Copying the template (CREATE DATABASE … TEMPLATE) and dropping the copy cost about 0.8 s a
    test, most of the suite's PostgreSQL time. A database a test is done with goes back to the
    pool unless its schema changed (a migration test, a table a test added: those are dropped);
    the next test gets it after ``reset``: other sessions on it ended, every table emptied with
    triggers and foreign keys off for the moment (``session_replication_role``), the rows the
    migrations seed (the reason code list) put back from a copy taken when it was made, and
    every sequence set to where the template has it, so ids start as in a fresh copy."""

    def __init__(self, admin: sa.Engine, template: str):
        self.admin, self.template, self.free = admin, template, []
        with sa.create_engine(_pg_db_url(template), poolclass=sa.pool.NullPool).connect() as conn:
            self.schema = self._schema(conn)
            tables = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
            self.seeded = [t for t in tables if conn.execute(sa.text(f'SELECT EXISTS (SELECT 1 FROM "{t}")')).scalar()]
            sequences = conn.execute(sa.text("SELECT sequencename, last_value FROM pg_sequences "
                                             "WHERE schemaname = 'public'")).all()
        # last_value is NULL for a sequence never used: its next value is then 1 again.
        values = [f"setval('public.\"{n}\"', {v if v is not None else 1}, {'true' if v is not None else 'false'})"
                  for n, v in sequences]
        self.reset_sql = ("SET session_replication_role = replica; "
                          + "".join(f'DELETE FROM public."{t}"; ' for t in tables)
                          + "".join(f'INSERT INTO public."{t}" SELECT * FROM fbt_seed."{t}"; ' for t in self.seeded)
                          + (f"SELECT {', '.join(values)}; " if values else "")
                          + "RESET session_replication_role")

    @staticmethod
    def _schema(conn) -> tuple:
        relations = conn.execute(sa.text(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' ORDER BY 1, 2")).all()
        return tuple(relations), conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def take(self) -> str:
        if not self.free:
            name = f"fbt_{WORKER}_{os.getpid()}_{next(_counter)}"
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
            with sa.create_engine(_pg_db_url(name), poolclass=sa.pool.NullPool).begin() as conn:
                conn.execute(sa.text("CREATE SCHEMA fbt_seed"))
                for t in self.seeded:
                    conn.execute(sa.text(f'CREATE TABLE fbt_seed."{t}" AS TABLE public."{t}"'))
            return name
        name = self.free.pop()
        engine = sa.create_engine(_pg_db_url(name), poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            conn.exec_driver_sql(self.reset_sql)
        engine.dispose()
        return name

    def give_back(self, name: str) -> None:
        engine = sa.create_engine(_pg_db_url(name), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                same = self._schema(conn) == self.schema
        except sa.exc.SQLAlchemyError:
            same = False
        engine.dispose()
        if same:
            self.free.append(name)
            return
        self.drop(name)

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pooled(admin: sa.Engine, template: str):
    pool = PgPool(admin, template)
    yield pool
    for name in pool.free:
        pool.drop(name)


@pytest.fixture(scope="session")
def pg_pool(pg_admin_engine, pg_template):
    yield from _pooled(pg_admin_engine, pg_template)


@pytest.fixture(scope="session")
def pg_city_pool(pg_admin_engine, pg_city_template):
    """Databases emptied back to the city template: the city's rows are among the seeded ones."""
    yield from _pooled(pg_admin_engine, pg_city_template)


_counter = itertools.count()


def fresh_database(request, backend: str, tmp_path: Path):
    """Yield the URL of a fresh, migrated database on ``backend``: a copy of the SQLite template
    file, or a PostgreSQL database from the pool, as empty as the migrated template (PgPool).
    When the test's fixtures include the ``city``, the template is the one with the city in it.

    A generator for ``yield from`` in a fixture (tests/browser overrides ``db_url``
    with a SQLite default through it).
    """
    with_city = "city" in request.fixturenames
    if backend == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_city_template" if with_city else "sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    pool = request.getfixturevalue("pg_city_pool" if with_city else "pg_pool")
    name = pool.take()
    yield _pg_db_url(name)
    pool.give_back(name)


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> str:
    """A fresh, migrated database on each backend (override with
    ``@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)``)."""
    yield from fresh_database(request, request.param, tmp_path)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def app_config(db_url, clock, tmp_path) -> Config:
    cfg = make_config(db_url)
    cfg.CLOCK = clock
    cfg.UPLOAD_DIR = str(tmp_path / "uploads")  # complaint photos: never the shared instance/uploads
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


# ---------------------------------------------------------------- factories (tests/support/city.py)

@pytest.fixture
def make_department(db):
    return city_support.department_maker(db)


@pytest.fixture
def make_hall(db):
    return city_support.hall_maker(db)


@pytest.fixture
def make_window(db, make_hall, make_department):
    return city_support.window_maker(db, make_hall, make_department)


@pytest.fixture
def make_staff(db, make_department):
    return city_support.staff_maker(db, make_department)


@pytest.fixture
def make_item(db, make_department):
    return city_support.item_maker(db, make_department)


@pytest.fixture
def make_user(db):
    return city_support.user_maker(db)


@pytest.fixture
def fast_password_hashing(monkeypatch):
    """Cheap Argon2 parameters, for tests that create many accounts (the city has six).
    The accounts tests do without it: they hash with the production parameters."""
    from feedback.accounts import service

    monkeypatch.setattr(service, "_hasher", city_support.fast_hasher())


# ---------------------------------------------------------------- the city

@pytest.fixture
def city(db, fast_password_hashing, make_department, make_hall, make_window, make_staff, make_item, make_user):
    """One small demo directory, committed: what most tests of the areas act on.

    * departments: ``parent`` 市公安局 (GA) with its ``child`` 户政支队 (GA-HZ), and
      ``other`` 市场监管局 (SCJ);
    * one ``hall`` 市民中心 (H1) with ``window`` W01 (1 号窗口, 户政支队) and
      ``other_window`` W02 (2 号窗口, 市场监管局);
    * ``staff`` 王小明 (S001, 户政支队, serves at W01) and ``other_staff`` 赵六六 (S002,
      市场监管局, at W02); service items ``item`` 户口迁移 (IT1, 户政支队) and ``other_item``
      营业执照 (IT2, 市场监管局);
    * ``users`` of every role (password TEST_PASSWORD): ``handler`` handler_ga (公安办理员,
      市公安局 and below), ``handler2`` handler_hz (户政支队), ``other`` handler_scj
      (市场监管局), ``supervisor`` super (督查员), ``admin`` boss, ``window_staff``
      staff_ga01 (户政支队, linked to 王小明).

    The database of a test with this fixture is copied from a template that has the city
    already (fresh_database), and the objects are read back; built here only when it is not.
    """
    loaded = city_support.load_city(db)
    if loaded is None:
        return city_support.create_city(db, make_department, make_hall, make_window, make_staff, make_item, make_user)
    city_support.continue_numbering(make_department=make_department, make_hall=make_hall, make_window=make_window,
                                    make_staff=make_staff, make_item=make_item, make_user=make_user)
    return loaded


# ---------------------------------------------------------------- records, ratings, tickets

_DEFAULT = object()  # "the city's", where None means "none" (no window, no staff, no department)


@pytest.fixture
def make_record(db, city, clock):
    """``make_record(**overrides)``: a committed service record (办件) done five minutes before
    ``now`` (default: the clock) at the city's window W01, for its item 户口迁移, by 王小明, with
    no contact data.

    Overrides: ``window`` (``city.other_window`` brings its item and staff member along;
    None: no window), ``item``, ``staff`` (None: nobody named), ``now``, and any column:
    ``record_number``, ``completed_at``, ``citizen_phone`` (normalised to E.164 as the API
    does), ``citizen_name``, ``citizen_kind``, ``source``. Built directly rather than through
    the ratings service, so a test may backdate a record past its rating window without it
    getting the default rating on the spot.
    """
    numbers = itertools.count(1)

    def make(*, window=_DEFAULT, item=None, staff=_DEFAULT, now=None, **columns):
        from feedback.contact import normalise_phone
        from feedback.evaluations.models import ServiceRecord
        from feedback.exchange import ledger

        window = city.window if window is _DEFAULT else window
        at_window = {city.window.id: (city.item, city.staff), city.other_window.id: (city.other_item, city.other_staff)}
        window_item, window_staff = at_window.get(window.id if window else None, (city.item, None))
        item = item or window_item
        columns.setdefault("record_number", f"R{next(numbers):05d}")
        columns.setdefault("completed_at", (now or clock.now) - timedelta(minutes=5))
        columns["citizen_phone"] = normalise_phone(columns.get("citizen_phone"))
        record = ServiceRecord(service_item=item, department_id=(window or item).department_id,
                               hall_id=window.hall_id if window else None, window=window,
                               staff=window_staff if staff is _DEFAULT else staff, **columns)
        db.session.add(record)
        db.session.flush()
        ledger.record_registered(record, now=now or clock.now)  # as create_record does: its exchange message
        db.session.commit()
        return record
    return make


@pytest.fixture
def make_evaluation(db, city, clock, make_record):
    """``make_evaluation(**overrides)``: a committed rating (评价) through the ratings service,
    by default 非常满意 (level 5) on the tablet, of a new record (see ``make_record``).

    Overrides: ``level``, ``channel``, ``reasons``, ``comment``, ``rated_at``, ``now``;
    ``record`` (an existing one, or None for an anonymous walk-in rating at ``window``,
    default W01); anything else goes to ``make_record``. A bad rating opens its ticket.
    """
    def make(*, level=5, channel="hall_tablet", reasons=None, comment=None, rated_at=None, record=_DEFAULT,
             now=None, **record_overrides):
        from feedback.evaluations import service as ratings

        now = now or clock.now
        window = None
        if record is _DEFAULT:
            record = make_record(now=now, **record_overrides)
        else:
            window = record_overrides.pop("window", city.window) if record is None else None
            assert not record_overrides, f"{sorted(record_overrides)}: only for a new record"
        evaluation = ratings.rate(record=record, level=level, channel=channel, reasons=reasons, comment=comment,
                                  rated_at=rated_at, window=window, now=now)
        db.session.commit()
        return evaluation
    return make


@pytest.fixture
def make_ticket(db, city, clock, make_evaluation):
    """``make_ticket(**overrides)``: a committed ticket (工单).

    By default the ticket a bad rating opens: 非常不满意 (level 1, reason 115) with the
    comment 态度很差, by a citizen who left 13800138000, of a record at W01 (户政支队).
    Overrides go to ``make_evaluation`` and ``make_record`` (``level``, ``reasons``,
    ``citizen_phone=None`` for an anonymous one, ``window``, ``item``, ``staff``, ``now``...).

    ``source="complaint"``: a complaint's ticket instead, filed now about something two hours
    ago, against 户政支队 (``department``; None leaves it in the supervisors' triage queue),
    contact 13900139000; ``window`` and any other argument of ``complaints.create_complaint``
    (``description``, ``photos``...) may be given. Its lookup secret is ``ticket._secret``.
    """
    def bad_rating(*, level=1, **kw):
        from feedback.tickets.models import Ticket

        kw.setdefault("reasons", [115] if level == 1 else [])
        kw.setdefault("comment", "态度很差")
        kw.setdefault("citizen_phone", "13800138000")
        evaluation = make_evaluation(level=level, **kw)
        ticket = db.session.scalar(sa.select(Ticket).where(Ticket.evaluation_id == evaluation.id))
        assert ticket is not None, f"a rating of level {level} opens no ticket (only 1 and 2 do)"
        return ticket

    def complaint(*, department=_DEFAULT, window=None, contact_phone="13900139000", **kw):
        from feedback.complaints import service as complaints

        department = city.child if department is _DEFAULT else department
        kw.setdefault("description", "窗口工作人员要求提供办事指南以外的材料")
        kw.setdefault("occurred_at", clock.now - timedelta(hours=2))
        found, secret = complaints.create_complaint(
            contact_phone=contact_phone, department_id=department.id if department else None,
            window_id=window.id if window else None, **kw)
        db.session.commit()
        ticket = complaints.ticket_of(found)
        ticket._secret = secret
        return ticket

    def make(*, source="evaluation", **overrides):
        if source == "complaint":
            return complaint(**overrides)
        if source != "evaluation":
            raise ValueError(f"source is 'evaluation' or 'complaint', not {source!r}")
        return bad_rating(**overrides)
    return make


# ---------------------------------------------------------------- the counter tablet

TABLET = {"X-Terminal-Request": "1"}
"""The header the tablet's script sends with every JSON request (no header, 401)."""


@pytest.fixture
def issue_code(db, city):
    """``issue_code(window)`` -> (terminal, pairing code), issued by the city's admin."""
    def issue(window):
        from feedback.terminal import service as terminals

        terminal, code = terminals.issue_pairing_code(window, actor=city.users.admin)
        db.session.commit()
        return terminal, code
    return issue


@pytest.fixture
def tablet(client, city, issue_code):
    """The test ``client``, paired to the city's window W01 through /terminal/pair."""
    _, code = issue_code(city.window)
    resp = post_form(client, "/terminal/pair", {"window_code": city.window.code, "code": code})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:400]
    assert resp.headers["Location"].endswith(f"/terminal/{city.window.code}")
    return client


# ---------------------------------------------------------------- driving tickets

def walk_to(ticket, state, users, *, now=None):
    """Drive a ticket through the happy path up to ``state`` with the services, as the
    city's ``users.handler``: accepted, verified, rectifying (fixed at once), replied."""
    from feedback.tickets import service as t

    h = users.handler
    steps = ["new", "accepted", "verified", "rectifying", "replied"]
    for target in steps[steps.index(ticket.state) + 1: steps.index(state) + 1]:
        if target == "accepted":
            t.accept(ticket, h, now=now)
        elif target == "verified":
            t.verify(ticket, h, callback_at=None, contact="评价人本人", reached=True, findings="情况属实", now=now)
        elif target == "rectifying":
            t.rectify(ticket, h, outcome="fixed_at_once", measures="已对窗口人员批评教育", now=now)
        elif target == "replied":
            t.reply(ticket, h, text="已整改，感谢监督。", now=now)
    return ticket
