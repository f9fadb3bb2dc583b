"""FEEDBACK_READ_DATABASE_URL on both backends, without a real standby: the "replica" is a copy of
the test database taken mid-test (a replica that is behind), the primary itself (the read-only
session is all that stops a write) or a database that does not answer (failover).
tests/replica/test_read_replica.py runs the same against real PostgreSQL streaming replication."""
from __future__ import annotations

import csv
import io
import json
import logging
import shutil
import uuid

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from feedback import readonly
from feedback.directory.models import Department
from feedback.statistics import service as stats
from tests.conftest import TABLET, login, post_form
from tests.public.test_stats_page import row_values

MONTH = "from=2026-11&to=2026-11"


@pytest.fixture
def snapshot(request, app, db, db_url, tmp_path):
    """``snapshot()`` -> the URL of a copy of the test database as it is now (committed)."""
    dropped: list[str] = []

    def take() -> str:
        db.session.commit()
        if db_url.startswith("sqlite"):
            path = tmp_path / f"replica-{uuid.uuid4().hex[:6]}.sqlite3"
            shutil.copy(db_url.removeprefix("sqlite:///"), path)
            return f"sqlite:///{path}"
        db.engine.dispose()  # CREATE DATABASE … TEMPLATE needs the template without connections
        source = sa.engine.make_url(db_url)
        name = f"{source.database}_r{uuid.uuid4().hex[:6]}"
        with request.getfixturevalue("pg_admin_engine").connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"'))
        dropped.append(name)
        return source.set(database=name).render_as_string(hide_password=False)

    yield take
    readonly.dispose(app)
    for name in dropped:
        with request.getfixturevalue("pg_admin_engine").connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _refresh(db):
    db.session.commit()
    stats.refresh()
    db.session.commit()


def _city_ratings(client) -> str:
    resp = client.get(f"/public/stats?{MONTH}")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return row_values(resp.get_data(as_text=True), "all-0")["ratings"]


def _open_data_ratings(client) -> int:
    resp = client.get(f"/public/data/stats.json?{MONTH}")
    assert resp.status_code == 200
    return sum(r["ratings"] for r in json.loads(resp.get_data(as_text=True))["data"] if r["unit_kind"] == "all")


def test_without_the_setting_every_request_reads_from_the_primary(app, client, city, routes):
    assert client.get("/public/stats").status_code == 200
    assert client.get("/public/data").status_code == 200
    assert routes == [("/public/stats", False), ("/public/data", False)]
    assert readonly.EXTENSION not in app.extensions, "no replica engine is made without the setting"


def test_public_pages_open_data_and_exports_read_the_replica_staff_pages_and_ratings_the_primary(
        app, db, client, clock, city, make_evaluation, make_ticket, make_record, issue_code, snapshot, routes):
    first = make_ticket()  # a bad rating, with its ticket
    make_evaluation(level=5)
    _refresh(db)
    replica_url = snapshot()  # the replica has 2 ratings and 1 ticket; the primary moves on
    second = make_ticket()
    make_evaluation(level=5)
    _refresh(db)
    app.config["READ_DATABASE_URL"] = replica_url

    assert _city_ratings(client) == "2", "the public statistics page reads the replica (2 ratings), not the primary (4)"
    assert _open_data_ratings(client) == 2, "open data reads the replica"
    assert client.get("/public/data/results.csv").status_code == 200
    for page in ("/public/", "/public/results", "/public/rankings", "/public/data", "/public/feed.atom"):
        assert client.get(page).status_code == 200, page
    assert all(on for path, on in routes), f"every /public request read from the replica: {routes}"

    login(client, "super")
    routes.clear()
    export = client.get("/console/tickets/export.csv")
    assert export.status_code == 200
    ids = {int(row["工单号"]) for row in csv.DictReader(io.StringIO(export.get_data(as_text=True).lstrip("\ufeff")))}
    assert ids == {first.id}, f"the ticket export reads the replica (ticket {first.id} only), got {ids}"
    detail = client.get(f"/console/tickets/{second.id}")
    assert detail.status_code == 200, "a staff page reads the primary: the newest ticket is there"
    assert routes == [("/console/tickets/export.csv", True), (f"/console/tickets/{second.id}", False)]

    # The rating path stays on the primary, replica or not.
    _, code = issue_code(city.window)
    tablet = app.test_client()
    post_form(tablet, "/terminal/pair", {"window_code": city.window.code, "code": code})
    record = make_record()
    routes.clear()
    rated = tablet.post("/terminal/W01/ratings", json={"record_id": record.id, "level": 4, "rated_at": clock.now.isoformat()},
                        headers={**TABLET, "Idempotency-Key": str(uuid.uuid4())})
    assert rated.status_code == 201, rated.get_data(as_text=True)
    assert routes == [("/terminal/W01/ratings", False)]


def test_an_export_checks_the_account_on_the_primary_and_reads_the_rows_from_the_replica(
        app, client, city, make_ticket, make_user, snapshot, routes):
    make_ticket()
    app.config["READ_DATABASE_URL"] = snapshot()
    make_ticket()
    make_user("supervisor", username="newcomer", display_name="新来的督查员")  # not on the replica yet
    login(client, "newcomer")
    export = client.get("/console/tickets/export.xlsx")
    assert export.status_code == 200, "the account (only on the primary) passed the role check"
    rows = list(load_workbook(io.BytesIO(export.data)).active.values)
    assert len(rows) == 2, f"a header and the replica's one ticket, got {rows}"
    assert routes[-1] == ("/console/tickets/export.xlsx", True)


def test_a_write_through_the_replica_session_is_refused_even_when_it_points_at_the_primary(app, db, db_url, city):
    app.config["READ_DATABASE_URL"] = db_url  # no standby to refuse it: only the read-only session does
    try:
        with app.app_context(), app.test_request_context("/public/stats"):
            readonly.use_replica()
            assert readonly.on_replica()
            with pytest.raises(sa.exc.DBAPIError) as refused:
                db.session.execute(sa.update(Department).values(name="改过了"))
                db.session.flush()
            db.session.rollback()
        message = str(refused.value.orig).lower()
        assert "read-only" in message or "readonly" in message, message
    finally:
        readonly.dispose(app)
    db.session.expire_all()
    assert "改过了" not in {d.name for d in db.session.scalars(sa.select(Department))}


def test_a_replica_that_does_not_answer_is_skipped_and_the_primary_serves(app, db, db_url, client, city, routes,
                                                                         caplog, tmp_path):
    if db_url.startswith("sqlite"):
        dead = f"sqlite:///{tmp_path / 'no-such-dir' / 'replica.sqlite3'}"
    else:
        import socket

        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dead = f"postgresql+psycopg://pg@127.0.0.1:{port}/nothing"
    app.config["READ_DATABASE_URL"] = dead
    with caplog.at_level(logging.WARNING):
        assert client.get("/public/stats").status_code == 200
        assert client.get("/public/data/stats.csv").status_code == 200
    assert routes == [("/public/stats", False), ("/public/data/stats.csv", False)], "both served from the primary"
    warnings = [r for r in caplog.records if "read replica unavailable" in r.getMessage()]
    assert len(warnings) == 1, "the replica is tried once, then left alone for READ_DATABASE_RETRY_SECONDS"

    readonly.dispose(app)  # the replica is back (here: the setting now names one that answers)
    app.config["READ_DATABASE_URL"] = db_url
    routes.clear()
    assert client.get("/public/stats").status_code == 200
    assert routes == [("/public/stats", True)]
