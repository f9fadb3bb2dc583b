"""What one rating costs in database round trips, on each of its three busiest paths (issue 22).

Counted with a ``before_cursor_execute`` listener on the engine: every SQL statement the request
sends (SAVEPOINTs included; BEGIN and COMMIT are the driver's and come on top, as does a
pool pre-ping, which the app no longer does). Each path is measured on a warm worker (the second
rating of the test), since the first request also loads the reason catalogue and the like.
The bounds are the figures reached in issue 22; a change that adds a round trip to the busiest
write of the product fails here and says which statements it sent.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from feedback.accounts import service as accounts
from tests.conftest import TABLET
from tests.sms.conftest import AUTH_TOKEN, FROM_NUMBER, post_inbound

# Upper bounds of statements per request (issue 22's "after" column; README "Benchmarks").
# Before issue 22: API 10, SMS reply 16, tablet 15 (each with a pool pre-ping on top).
# On PostgreSQL a plain rating is one statement (feedback/evaluations/quick.py); the tablet's
# rate limit reads the terminal first (its key names the tablet).
API_RATING_MAX = {"sqlite": 5, "postgresql": 1}
SMS_RATING_MAX = 11
TABLET_RATING_MAX = {"sqlite": 6, "postgresql": 2}
# A bad rating opens its ticket: on SQLite through the ORM (the rating, its ticket, timeline
# event, statistics and ledger rows, the handlers' notifications with their recipients in one
# statement, the stored answer; the calendar and the reason list read once); on PostgreSQL all of
# it in the rating's one statement (evaluations/quick_ticket.py), after reading the reason list
# and the calendar its deadlines need. 21 before on both, 14 at stop 30.
BAD_API_RATING_MAX = {"sqlite": 14, "postgresql": 4}


@contextmanager
def statements(engine):
    """Collect the SQL text of every statement sent to ``engine`` inside the block."""
    sent: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        sent.append(" ".join(statement.split())[:160])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _show(sent: list[str]) -> str:
    return "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(sent))


@pytest.fixture
def sms_app(app):
    app.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER)
    return app


def test_an_api_rating_costs_a_few_statements(client, db, make_record):
    _, key = accounts.create_api_key("窗口系统", ["ratings:write"])
    db.session.commit()
    first, second = "RT1", "RT2"
    make_record(record_number=first)
    make_record(record_number=second)
    headers = {"Authorization": f"Bearer {key}"}

    def rate(number):
        return client.post("/api/v1/evaluations", json={"record_number": number, "level": 5, "level_scheme": "score"},
                           headers={**headers, "Idempotency-Key": uuid.uuid4().hex})

    assert rate(first).status_code == 201
    with statements(db.engine) as sent:
        resp = rate(second)
    assert resp.status_code == 201, resp.get_json()
    print(f"API rating: {len(sent)} statements\n{_show(sent)}")
    most = API_RATING_MAX[db.engine.dialect.name]
    assert len(sent) <= most, f"an API rating sent {len(sent)} statements:\n{_show(sent)}"


def test_a_bad_api_rating_that_opens_a_ticket_costs_a_bounded_number_of_statements(client, db, city, make_record):
    from feedback.tickets.models import Ticket

    _, key = accounts.create_api_key("窗口系统", ["ratings:write"])
    make_record(record_number="RB1")
    make_record(record_number="RB2")
    db.session.commit()
    headers = {"Authorization": f"Bearer {key}"}

    def rate(number):
        return client.post("/api/v1/evaluations", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                           json={"record_number": number, "level": 1, "level_scheme": "score", "reasons": [115],
                                 "comment": "态度差"})

    assert rate("RB1").status_code == 201
    with statements(db.engine) as sent:
        resp = rate("RB2")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["ticket_id"] == db.session.scalar(select(Ticket.id).where(Ticket.evaluation_id == body["id"]))
    print(f"bad API rating: {len(sent)} statements\n{_show(sent)}")
    limit = BAD_API_RATING_MAX[db.engine.dialect.name]
    assert len(sent) <= limit, f"a bad API rating sent {len(sent)} statements:\n{_show(sent)}"


def test_an_sms_rating_costs_a_few_statements(sms_app, client, db, make_record, clock):
    from feedback.sms import service

    records = [make_record(citizen_phone=f"+86138001380{n:02d}", completed_at=clock.now - timedelta(minutes=30))
               for n in (1, 2)]
    for record in records:
        assert service.invite(record, clock.now) is not None
    db.session.commit()
    assert post_inbound(client, "5", phone="+8613800138001").status_code == 200
    with statements(db.engine) as sent:
        resp = post_inbound(client, "5", phone="+8613800138002")
    assert resp.status_code == 200
    print(f"SMS rating: {len(sent)} statements\n{_show(sent)}")
    assert len(sent) <= SMS_RATING_MAX, f"an SMS rating sent {len(sent)} statements:\n{_show(sent)}"


def test_a_tablet_rating_costs_a_few_statements(tablet, db, make_record, clock):
    first, second = make_record().id, make_record().id
    tapped = clock.now.isoformat()

    def rate(record_id):
        return tablet.post("/terminal/W01/ratings", headers={**TABLET, "Idempotency-Key": uuid.uuid4().hex},
                           json={"record_id": record_id, "level": 5, "reasons": [], "comment": "",
                                 "rated_at": tapped})

    assert rate(first).status_code == 201
    with statements(db.engine) as sent:
        resp = rate(second)
    assert resp.status_code == 201, resp.get_json()
    print(f"tablet rating: {len(sent)} statements\n{_show(sent)}")
    most = TABLET_RATING_MAX[db.engine.dialect.name]
    assert len(sent) <= most, f"a tablet rating sent {len(sent)} statements:\n{_show(sent)}"
