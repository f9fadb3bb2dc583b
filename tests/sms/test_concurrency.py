"""On PostgreSQL, with real connections racing: one MessageSid rates once, one row is sent once."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from feedback.evaluations.models import Evaluation
from feedback.sms import outbox, sender
from feedback.sms.models import InboundSms, OutboundSms, SmsRatingCorrection
from tests.sms.conftest import post_inbound

on_postgres = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _race(n, work):
    barrier = threading.Barrier(n)
    errors, results = [], [None] * n

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    return results


@on_postgres
def test_the_same_message_sid_posted_twice_concurrently_rates_once(app, db, make_invited):
    make_invited()
    db.session.remove()
    clients = [app.test_client(), app.test_client()]  # each request: its own app context and connection
    sid = "SM" + "c0ffee" * 5 + "00"
    statuses = _race(2, lambda i: post_inbound(clients[i], "5", sid=sid).status_code)
    assert statuses == [200, 200]
    assert db.session.scalar(sa.select(sa.func.count(Evaluation.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(InboundSms.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(OutboundSms.id)).where(OutboundSms.purpose == "reply")) == 1


@on_postgres
def test_two_different_replies_racing_for_one_record_rate_it_once(app, db, make_invited):
    make_invited()
    db.session.remove()
    clients = [app.test_client(), app.test_client()]
    _race(2, lambda i: post_inbound(clients[i], str(5 - i)).status_code)
    assert db.session.scalar(sa.select(sa.func.count(Evaluation.id))) == 1
    outcomes = sorted(db.session.scalars(sa.select(InboundSms.outcome)))
    # The loser either waited on the record's lock (already_rated), found nothing left to rate
    # (no_pending), or came after the winner committed: then its lone level is read as a
    # correction of that SMS rating, and both levels being good, the rating is kept (rating_final).
    assert outcomes in (["already_rated", "rated"], ["no_pending", "rated"], ["rated", "rating_final"]), outcomes
    if outcomes == ["rated", "rating_final"]:
        assert db.session.scalar(sa.select(sa.func.count(SmsRatingCorrection.id))) == 0, "a good rating was corrected"


@on_postgres
def test_two_senders_at_once_send_each_text_once(app, db, clock):
    for n in range(20):
        outbox.enqueue(f"+86138001381{n:02d}", f"第{n}条", purpose="reply")
    db.session.commit()
    db.session.remove()

    def send(_):
        with app.app_context():
            return sender.send_due(clock.now)

    results = _race(2, send)
    assert sum(r["sent"] for r in results) == 20
    attempts = db.session.scalars(sa.select(OutboundSms.attempts)).all()
    assert attempts == [1] * 20
