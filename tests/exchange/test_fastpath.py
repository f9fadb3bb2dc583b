"""The PostgreSQL path builds, in SQL, exactly the payloads the Python builders of mapping.py
build: the same keys, the same values, for records and ratings of every shape."""
from __future__ import annotations

from datetime import timedelta

import json

import pytest
import sqlalchemy as sa


# The SQL payload path is PostgreSQL's; SQLite takes the Python builders (tests/exchange/test_push.py).
pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def reported(db, city):
    city.item.implementation_code = "11340000MB0000000A3340110001000"[:31]
    city.item.handle_item_code = "113400000000000000334011000100001"[:33]
    city.item.item_type = "01"
    city.item.promised_days = 3
    city.child.credit_code = "91350100M000100Y43"
    city.child.area_code = "341602000000"
    city.other_item.implementation_code = "11340000MB0000000A3340110002000"[:31]  # no handle code, no type
    db.session.commit()
    return city


def _pending(db, kind):
    from feedback.exchange.models import ExchangeMessage

    return list(db.session.scalars(sa.select(ExchangeMessage).where(
        ExchangeMessage.kind == kind, ExchangeMessage.status == "pending").order_by(ExchangeMessage.id)))


def test_the_sql_payloads_equal_the_python_builders_field_for_field(db, app, reported, make_evaluation, clock):
    from feedback.exchange import fastpath, pusher
    from feedback.exchange.adapters.national_json import canonical_json
    from feedback.exchange.mapping import payloads, stored_request

    make_evaluation(level=1, reasons=[115, 110], comment="王小明说窗口态度差，电话13800138000", citizen_name="王小明")
    make_evaluation(level=5, channel="sms")
    make_evaluation(level=3, reasons=[307], comment="")
    make_evaluation(level=2, channel="default", reasons=[213], window=reported.other_window)
    make_evaluation(level=4, channel="phone", rated_at=clock.now - timedelta(hours=30),
                    completed_at=clock.now - timedelta(days=2, minutes=3))
    make_evaluation(level=5, window=None)  # a record without a window or hall
    # Text that JSON must escape, sent as PostgreSQL writes it: it must be what Python writes.
    db.session.execute(sa.text("UPDATE service_items SET name = name || :odd"),
                       {"odd": ' "引号"\\反斜杠/\n换行\t\x01\x1f\u2028😀'})
    db.session.commit()
    for kind in fastpath.KINDS:  # records first: a rating is claimed once its record is acknowledged
        messages = _pending(db, kind)
        assert len(messages) >= 5, f"{kind}: the ratings above queued their {kind} messages"
        expected = payloads(kind, messages)
        got, kept = {}, {}
        claims = fastpath.Claims()
        try:
            for lane in pusher.LANES:
                taken = claims.take(kind, pusher._DUE, {
                    "due_lane": lane, "due_kind": kind, "now": clock.now + timedelta(days=1), "limit": 200,
                    "tz": app.config["TIMEZONE"], "source": app.config["EXCHANGE_DATA_SOURCE"]})
                if taken is not None:
                    _, rows, built, stored = taken
                    assert {r.message_id for r in rows} == set(built), "one payload per claimed row"
                    for message_id, item in built.items():
                        if isinstance(item, str):  # sent as PostgreSQL wrote it: compact, messageId first
                            assert item == canonical_json(json.loads(item)), (
                                f"{kind} {message_id}: the SQL text is not the canonical JSON that is signed")
                            assert item.startswith('{"messageId":' + json.dumps(message_id) + ","), item[:60]
                            built[message_id] = {k: v for k, v in json.loads(item).items() if k != "messageId"}
                    got.update(built)
                    for message_id, text in stored.items():
                        assert json.loads(text) == {"messageId": message_id, **built[message_id]}, (
                            "the request kept is the item sent")
                        assert json.loads(text) == json.loads(stored_request({"messageId": message_id,
                                                                               **built[message_id]}))
                    kept.update(stored)
        finally:
            claims.close()
        if kind == "record":  # as if the province acknowledged them: their ratings become ready
            db.session.execute(sa.text("UPDATE exchange_messages SET status = 'acknowledged' WHERE kind = 'record'"))
            db.session.commit()  # the claims run on connections of their own
        assert set(got) == set(expected), f"{kind}: every pending message claimed once, lanes together"
        for message_id, payload in expected.items():
            assert got[message_id] == payload, (
                f"{kind} {message_id}: SQL and Python payloads differ in "
                f"{sorted(k for k in set(payload) | set(got[message_id]) if payload.get(k) != got[message_id].get(k))}")
    comments = [p["writingEvaluation"] for p in got.values() if p["writingEvaluation"]]
    assert comments and "13800138000" not in comments[0] and "王小明" not in comments[0], "the comment is masked"
    assert sum("defaultEval" in p for p in got.values()) == 1, "only the default rating says defaultEval"
    masked = [m for m, p in got.items() if p["writingEvaluation"]]
    assert masked and not set(masked) & set(kept), "a request with a comment is kept by stored_request (its length)"
    db.session.rollback()


def test_a_batch_locked_by_one_pusher_is_skipped_by_another_and_free_again_when_it_dies(
        db, app, reported, make_evaluation, clock):
    from feedback.exchange import fastpath, pusher

    for _ in range(3):
        make_evaluation(level=5)
    params = {"due_lane": "batch", "due_kind": "record", "now": clock.now + timedelta(days=1), "limit": 200,
              "tz": app.config["TIMEZONE"], "source": app.config["EXCHANGE_DATA_SOURCE"]}
    first, second = fastpath.Claims(), fastpath.Claims()
    try:
        taken = first.take("record", pusher._DUE, params)
        assert taken is not None and len(taken[1]) == 3, "the first pusher claims the three records"
        assert second.take("record", pusher._DUE, params) is None, "the second skips what the first holds, unblocked"
        first.close()  # as a killed pusher's connection ends: its locks go with it, nothing was written
        again = second.take("record", pusher._DUE, params)
        assert again is not None and len(again[1]) == 3, "the records are free again for the next pusher"
        assert {r.attempts for r in again[1]} == {1}, "the dead claim counted no attempt"
    finally:
        first.close()
        second.close()


def test_a_run_plans_its_statements_once_and_leaves_the_pools_connections_as_it_found_them(db, app):
    from feedback.exchange import fastpath

    claims = fastpath.Claims()
    try:
        during = {c.exec_driver_sql("SHOW plan_cache_mode").scalar() for c in claims.connections}
    finally:
        claims.close()
    assert during == {"force_generic_plan"}, "the run's connections plan each statement once"
    again = [db.engine.connect() for _ in range(fastpath.Claims.CONNECTIONS)]
    try:
        after = {c.exec_driver_sql("SHOW plan_cache_mode").scalar() for c in again}
    finally:
        for c in again:
            c.close()
    assert after == {"auto"}, "a connection back in the pool plans as PostgreSQL's default does"
