"""On PostgreSQL, with real connections racing: two calls pressing their key for one record at
the same moment give one rating; one key press delivered twice at once is acted on once."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from feedback.evaluations.models import Evaluation
from feedback.voice.models import VoiceCall
from tests.sms.test_concurrency import _race
from tests.voice.conftest import CITIZEN, Caller, heard, signed_post

on_postgres = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@on_postgres
def test_two_calls_pressing_at_the_same_moment_rate_the_record_once(app, db, make_record, clock):
    make_record(citizen_phone=CITIZEN, completed_at=clock.now - timedelta(minutes=30))
    callers = [Caller(app.test_client()), Caller(app.test_client())]
    for c in callers:
        c.dial()
    db.session.remove()
    answers = _race(2, lambda i: callers[i].press(str(5 - i)).text)
    assert db.session.scalar(sa.select(sa.func.count(Evaluation.id))) == 1
    assert sum("已经评价过了" in a for a in answers) == 1, answers
    outcomes = sorted(db.session.scalars(sa.select(VoiceCall.outcome)))
    assert outcomes == ["already_rated", "rated"]


@on_postgres
def test_one_key_press_delivered_twice_at_once_is_acted_on_once(app, db, make_record, clock):
    make_record(citizen_phone=CITIZEN, completed_at=clock.now - timedelta(minutes=30))
    make_record(citizen_phone=CITIZEN, completed_at=clock.now - timedelta(minutes=90))
    call = Caller(app.test_client())
    first = call.dial()
    action = first.gather.get("action")
    db.session.remove()
    clients = [app.test_client(), app.test_client()]
    _race(2, lambda i: heard(signed_post(clients[i], action, call.params(Digits="5"))))
    assert db.session.scalar(sa.select(sa.func.count(Evaluation.id))) == 1
