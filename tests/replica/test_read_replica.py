"""FEEDBACK_READ_DATABASE_URL on real PostgreSQL streaming replication: a primary and its hot
standby started for this module (tests/support/pg_replica.sh, about 4 s, plus one migration).

The public statistics page reads the standby: with replay paused it keeps showing the older
figures, and once replay resumes it shows what the primary wrote (polled with a deadline). The
standby refuses every write and so does the app's read session. With the standby stopped a
rating is stored as ever (the rating path never touches the replica) and the public pages fail
over to the primary (decided in feedback/readonly.py: a citizen gets the page, the operator a
warning in the log); started again, the pages go back to it.
"""
from __future__ import annotations

import itertools
import logging
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from feedback import readonly
from feedback.statistics import service as stats
from tests.conftest import TABLET, migrate_to_head
from tests.public.test_stats_page import row_values

pytestmark = pytest.mark.processes  # one after another on one xdist worker (tests/conftest.py)

PG_REPLICA = Path(__file__).resolve().parents[1] / "support" / "pg_replica.sh"
TEMPLATE = "fbreplica_tpl"
MONTH = "from=2026-11&to=2026-11"
REPLICATION_DEADLINE = 30.0  # seconds; replication here takes milliseconds


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class Pair:
    """The primary and the standby of tests/support/pg_replica.sh."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="feedback-pgreplica.")
        self.primary = self.standby = ""

    def __enter__(self) -> "Pair":
        out = subprocess.run(["bash", str(PG_REPLICA), "start", self.dir], check=True, capture_output=True,
                             text=True).stdout.split()
        self.primary, self.standby = out
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["bash", str(PG_REPLICA), "stop", self.dir], check=False, capture_output=True)

    def url(self, server: str, database: str) -> str:
        return getattr(self, server).rsplit("/", 1)[0] + "/" + database

    def sql(self, server: str, statement: str, database: str = "postgres"):
        with psycopg.connect(_plain(self.url(server, database)), autocommit=True) as conn:
            return conn.execute(statement).fetchall() if statement.lstrip().upper().startswith("SELECT") \
                else conn.execute(statement)

    def stop_standby(self) -> None:
        subprocess.run(["bash", str(PG_REPLICA), "stop-standby", self.dir], check=True, capture_output=True)

    def start_standby(self) -> None:
        subprocess.run(["bash", str(PG_REPLICA), "start-standby", self.dir], check=True, capture_output=True)


def wait_for(predicate, what: str, timeout: float = REPLICATION_DEADLINE):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)  # polling a condition with a deadline, not timing the test


@pytest.fixture(scope="module")
def pair():
    with Pair() as p:
        p.sql("primary", f'CREATE DATABASE "{TEMPLATE}"')
        migrate_to_head(p.url("primary", TEMPLATE))
        yield p


_names = itertools.count()


@pytest.fixture
def db_url(pair):
    """The suite's ``db_url`` for this module: a fresh migrated database on the primary, once the
    standby has it too."""
    name = f"fbr_{next(_names)}_{uuid.uuid4().hex[:6]}"
    pair.sql("primary", f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')

    def on_standby():
        try:
            pair.sql("standby", "SELECT 1", database=name)
            return True
        except psycopg.OperationalError:
            return False

    wait_for(on_standby, f"database {name} on the standby")
    yield pair.url("primary", name)
    pair.sql("primary", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def app_config(app_config, pair, db_url):
    app_config.READ_DATABASE_URL = pair.url("standby", sa.engine.make_url(db_url).database)
    app_config.READ_DATABASE_RETRY_SECONDS = 0.0  # try the standby on every request (it comes back mid-test)
    return app_config


def _refresh(db) -> None:
    db.session.commit()
    stats.refresh()
    db.session.commit()


def _city_ratings(client) -> str:
    resp = client.get(f"/public/stats?{MONTH}")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return row_values(resp.get_data(as_text=True), "all-0")["ratings"]


def test_the_public_page_shows_what_the_primary_wrote_once_the_standby_has_replayed_it(
        request, db, client, city, make_evaluation, pair, routes):
    for _ in range(2):
        make_evaluation(level=5)
    _refresh(db)
    wait_for(lambda: _city_ratings(client) == "2", "the first two ratings on the public page")

    pair.sql("standby", "SELECT pg_wal_replay_pause()")
    try:
        make_evaluation(level=4)
        _refresh(db)
        assert _city_ratings(client) == "2", "with replay paused the page still reads the standby's figures"
    finally:
        pair.sql("standby", "SELECT pg_wal_replay_resume()")
    resumed = time.monotonic()
    wait_for(lambda: _city_ratings(client) == "3", "the third rating on the public page after replay resumed")
    lag = time.monotonic() - resumed
    assert all(on for _, on in routes), f"every public request read the standby: {routes}"
    request.node.user_properties.append(("fault figure", (
        f"read replica: a rating written to the primary shown by /public/stats on the standby "
        f"{lag * 1000:.0f} ms after replay resumed")))


def test_the_read_session_is_read_only(app, db, pair):
    state = readonly.replica(app)
    with state.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT pg_is_in_recovery()")) is True, "the read URL is the standby"
        assert conn.scalar(sa.text("SHOW default_transaction_read_only")) == "on"
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
            conn.execute(sa.text("CREATE TABLE written_on_the_replica (x int)"))
    with app.app_context(), app.test_request_context("/public/stats"):
        readonly.use_replica()
        assert readonly.on_replica()
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
            db.session.execute(sa.text("UPDATE departments SET name = 'x'"))
        db.session.rollback()


def test_with_the_standby_stopped_ratings_are_stored_and_public_pages_fail_over_to_the_primary(
        db, client, clock, tablet, make_record, pair, routes, caplog):
    from feedback.evaluations.models import Evaluation

    assert client.get("/public/stats").status_code == 200  # the pool now holds a standby connection
    assert routes[-1] == ("/public/stats", True)
    record = make_record()
    pair.stop_standby()
    try:
        rated = client.post("/terminal/W01/ratings", json={"record_id": record.id, "level": 1, "reasons": [115],
                                                         "rated_at": clock.now.isoformat()},
                            headers={**TABLET, "Idempotency-Key": str(uuid.uuid4())})
        assert rated.status_code == 201, rated.get_data(as_text=True)
        assert routes[-1] == ("/terminal/W01/ratings", False)
        db.session.expire_all()
        assert db.session.get(Evaluation, rated.get_json()["id"]) is not None, "the rating is stored"
        _refresh(db)
        with caplog.at_level(logging.WARNING):
            assert _city_ratings(client) == "1", "the public page fails over to the primary, with the new rating"
        assert routes[-1] == ("/public/stats", False)
        assert any("read replica unavailable" in r.getMessage() for r in caplog.records), "the failover is logged"
    finally:
        pair.start_standby()
    wait_for(lambda: _city_ratings(client) == "1" and routes[-1][1], "the public page back on the standby")
