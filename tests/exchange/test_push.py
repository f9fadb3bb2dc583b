"""Pushing the ledger to a real fake provincial gateway process (national-json): order, the
fast lane, retries, refusals, lost answers, token expiry and an outage, each checked on both
sides — the ledger's statuses and the gateway's own counts (duplicates must stay 0)."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.support.gateway import APP_KEY, APP_SECRET, adapter_config


@pytest.fixture
def wired(app, db, city, gateway):
    """The app reporting to the gateway with national-json; the city's 户口迁移 is a national item."""
    app.config.update(EXCHANGE_ADAPTER="national-json", EXCHANGE_URL=gateway.url, EXCHANGE_APP_KEY=APP_KEY,
                      EXCHANGE_APP_SECRET=APP_SECRET, EXCHANGE_TIMEOUT_SECONDS=2.0, EXCHANGE_BATCH_SIZE=200)
    city.item.implementation_code = "113416000000000000A3341600001"
    city.child.credit_code = "91350100M000100Y43"
    db.session.commit()
    return gateway


def ledger(db, **where):
    from feedback.exchange.models import ExchangeMessage

    q = sa.select(ExchangeMessage).order_by(ExchangeMessage.id)
    for k, v in where.items():
        q = q.where(getattr(ExchangeMessage, k) == v)
    db.session.expire_all()
    return list(db.session.scalars(q))


def figure(request, text: str) -> None:
    """A figure for the note, listed under "fault figures" at the end of the run."""
    request.node.user_properties.append(("fault figure", text))


def push(clock, **kw):
    from feedback.exchange import pusher

    return pusher.push(clock.now, **kw)


def test_records_go_before_their_ratings_and_every_message_is_acknowledged_once(db, wired, make_evaluation, clock):
    for level in (5, 4, 1, 3):
        make_evaluation(level=level, reasons=[115] if level == 1 else None, comment="窗口态度差，电话13800138000")
    summary = push(clock)
    assert summary["acknowledged"] == 8, summary
    rows = ledger(db)
    assert {m.status for m in rows} == {"acknowledged"}
    assert all(m.remote_id for m in rows), "the remote's id is kept"
    stats = wired.stats()
    assert stats["order_violations"] == 0, "no rating reached the province before its record"
    assert stats["duplicates"] == 0 and stats["accepted"] == 8
    stored = json.dumps(wired.items("evaluation"), ensure_ascii=False)
    assert "13800138000" not in stored, "no phone number goes up"
    from feedback.exchange.models import ExchangeRequest

    bodies = db.session.scalars(sa.select(ExchangeRequest.body)).all()
    assert len(bodies) == summary["requests"], "each request is stored once"
    assert all("13800138000" not in body for body in bodies), "nor is one stored in the ledger"
    assert all(m.request_id and m.last_request is None for m in rows), "each message points at its request"
    for m in rows:
        item = json.loads(m.request_text)
        assert item["messageId"] == m.message_id, "a message's request is its own item, out of its batch"
        assert json.loads(m.answer_text) == {"status": "acknowledged", "remoteId": m.remote_id}
    commented = [json.loads(m.request_text) for m in rows if m.kind == "evaluation"]
    assert all(re.fullmatch(r"（\d+ 字）", i["writingEvaluation"]) for i in commented), \
        "free text is kept by its length only"
    levels = sorted(i["satisfaction"] for i in wired.items("evaluation").values()) if isinstance(
        wired.items("evaluation"), dict) else sorted(i["satisfaction"] for i in wired.items("evaluation"))
    assert levels == [1, 3, 4, 5], "levels keep the national link's direction (5 = 非常满意)"


def test_a_bad_rating_jumps_a_backlog_of_good_ones(db, app, wired, make_evaluation, clock):
    app.config["EXCHANGE_BATCH_SIZE"] = 5
    for _ in range(12):
        make_evaluation(level=5)
    bad = make_evaluation(level=1, reasons=[115], comment="差")
    push(clock, max_batches=2)
    by_key = {m.subject_key: m for m in ledger(db)}
    assert by_key[f"REC-{bad.service_record_id}"].status == "acknowledged"
    assert by_key[f"EVA-{bad.id}"].status == "acknowledged", "the bad rating went in the first two requests"
    assert sum(m.status == "acknowledged" for m in by_key.values()) == 2, "nothing else yet"


def test_an_answer_lost_after_the_gateway_accepted_is_resent_and_not_duplicated(request, db, wired, make_evaluation,
                                                                                 clock):
    ev = make_evaluation(level=4)
    wired.control(drop_answers=1)  # the record's request is stored, its answer never arrives
    first = push(clock)
    assert first["retry"] == 1 and first["acknowledged"] == 0, first
    clock.set(clock.now + timedelta(hours=1))
    push(clock)
    rows = ledger(db)
    assert {m.status for m in rows} == {"acknowledged"}, [(m.subject_key, m.status, m.last_error) for m in rows]
    stats = wired.stats()
    assert stats["duplicates"] == 0, "the stable message id made the resend a redelivery, not a second record"
    assert stats["redelivered"] == 1 and stats["accepted"] == 2
    figure(request, f"exchange, answer dropped after the gateway stored it ({db.engine.dialect.name}): "
                    f"{len(rows)} produced, {len(rows)} acknowledged, redelivered {stats['redelivered']}, "
                    f"duplicates {stats['duplicates']} (rating {ev.id})")


def test_a_message_refused_for_good_fails_with_the_reason_blocks_its_rating_and_is_never_retried(
        db, app, wired, make_evaluation, clock):
    from feedback.exchange import service

    ev = make_evaluation(level=5)
    wired.control(refuse=[f"city-REC-{ev.service_record_id}"])
    push(clock)
    rows = {m.subject_key: m for m in ledger(db)}
    record = rows[f"REC-{ev.service_record_id}"]
    assert record.status == "failed" and "数据校验不通过" in record.last_error, record.last_error
    requests_before = wired.stats()["requests"]
    for hours in (1, 5, 30):
        clock.set(clock.now + timedelta(hours=hours))
        push(clock)
    assert wired.stats()["requests"] == requests_before, "a refusal for good is not retried"
    rating = {m.subject_key: m for m in ledger(db)}[f"EVA-{ev.id}"]
    assert rating.status == "failed" and "重推" in rating.last_error, "its rating waits for an operator, visibly"
    wired.control(refuse=[])
    assert service.repush(actor=None, ids=[record.id], now=clock.now) == 2, "the record and the rating behind it"
    db.session.commit()
    push(clock)
    assert {m.status for m in ledger(db)} == {"acknowledged"}


def test_a_malformed_answer_and_an_outage_are_retried_with_back_off(db, wired, make_evaluation, clock):
    make_evaluation(level=5)
    wired.control(mode="malformed")
    summary = push(clock)
    assert summary["retry"] == 1 and summary.get("stopped"), summary
    record = ledger(db, kind="record")[0]
    assert record.status == "pending" and record.attempts == 1 and record.next_attempt_at > clock.now
    assert "502 Bad Gateway" in (record.last_answer or "") or record.last_error, record.last_error
    wired.control(mode="ok")
    assert push(clock)["requests"] == 0, "nothing is sent again before its back-off"
    clock.set(record.next_attempt_at + timedelta(seconds=1))
    push(clock)
    assert {m.status for m in ledger(db)} == {"acknowledged"}


def test_a_token_expiring_mid_run_is_renewed_without_losing_a_message(db, wired, make_evaluation, clock):
    make_evaluation(level=5)
    push(clock)
    wired.control(expire_tokens=True)
    make_evaluation(level=4)
    push(clock)
    assert {m.status for m in ledger(db)} == {"acknowledged"}
    assert wired.stats()["tokens_issued"] == 2, "one new token after access_token_invalid"


def test_a_local_items_record_and_rating_are_never_sent(db, wired, make_evaluation, city, clock):
    make_evaluation(level=1, reasons=[115], comment="差", window=city.other_window)
    push(clock)
    assert {m.status for m in ledger(db)} == {"skipped"}
    assert wired.stats()["requests"] == 0


def test_a_paused_exchange_sends_nothing_and_resumes_in_order(db, wired, make_evaluation, clock):
    from feedback.exchange import service

    service.set_paused(True, actor=None, reason="省平台维护")
    db.session.commit()
    make_evaluation(level=5)
    assert push(clock)["paused"] is True
    assert wired.stats()["requests"] == 0
    service.set_paused(False, actor=None)
    db.session.commit()
    push(clock)
    assert {m.status for m in ledger(db)} == {"acknowledged"}
    assert wired.stats()["order_violations"] == 0


def test_thirty_minutes_of_outage_while_ratings_keep_coming_end_with_every_message_acknowledged_once(
        request, db, wired, make_evaluation, clock):
    wired.control(mode="down")
    made = 0
    for minute in range(30):
        for level in (5, 1 if minute % 7 == 0 else 4):
            make_evaluation(level=level, reasons=[115] if level == 1 else None, comment="x" if level == 1 else None)
            made += 1
        push(clock)
        clock.set(clock.now + timedelta(minutes=1))
    assert not [m for m in ledger(db) if m.status == "acknowledged"]
    wired.control(mode="ok")
    for _ in range(200):
        if all(m.status == "acknowledged" for m in ledger(db)):
            break
        clock.set(clock.now + timedelta(minutes=1))
        push(clock)
    rows = ledger(db)
    assert all(m.status == "acknowledged" for m in rows), [(m.subject_key, m.status) for m in rows if m.status != "acknowledged"]
    stats = wired.stats()
    assert stats["accepted"] == 2 * made, "every record and rating arrived"
    assert stats["duplicates"] == 0, "and none twice"
    assert stats["order_violations"] == 0, "a record always before its rating"
    assert max(m.attempts for m in rows) < 30, "back-off kept the attempts bounded"
    figure(request, f"exchange, gateway down 30 simulated minutes ({db.engine.dialect.name}): {len(rows)} messages "
                    f"produced, {sum(m.status == 'acknowledged' for m in rows)} acknowledged, gateway accepted "
                    f"{stats['accepted']}, duplicates {stats['duplicates']}, order violations "
                    f"{stats['order_violations']}, at most {max(m.attempts for m in rows)} attempts a message")


def test_a_hung_gateway_times_out_and_the_batch_goes_once_it_answers_again(db, app, wired, make_evaluation, clock):
    app.config["EXCHANGE_TIMEOUT_SECONDS"] = 0.5
    make_evaluation(level=5)
    wired.control(mode="hang")
    summary = push(clock)
    assert summary["retry"] == 1 and summary.get("stopped"), summary
    assert "未应答" in ledger(db, kind="record")[0].last_error, ledger(db, kind="record")[0].last_error
    wired.control(mode="ok")
    clock.set(clock.now + timedelta(hours=1))
    push(clock)
    assert {m.status for m in ledger(db)} == {"acknowledged"}
    assert wired.stats()["duplicates"] == 0


def test_a_slow_answer_after_the_timeout_is_stored_remotely_once_and_acknowledged_on_the_resend(
        db, app, wired, make_evaluation, clock):
    import time

    app.config["EXCHANGE_TIMEOUT_SECONDS"] = 0.3
    make_evaluation(level=5)
    wired.control(delay=1.0)  # the gateway stores the record after the pusher gave up on it
    assert push(clock)["retry"] == 1
    deadline = time.monotonic() + 10
    while wired.stats()["accepted"] < 1:
        assert time.monotonic() < deadline, "the slow request never reached the gateway's store"
        time.sleep(0.05)  # polling the gateway, not timing the test
    wired.control(delay=0)
    clock.set(clock.now + timedelta(hours=1))
    push(clock)
    assert {m.status for m in ledger(db)} == {"acknowledged"}
    stats = wired.stats()
    assert stats["redelivered"] == 1 and stats["duplicates"] == 0 and stats["accepted"] == 2


def test_signed_and_encrypted_pushes_reach_a_gateway_that_requires_sm2_and_sm4(db, app, city, secure_gateway,
                                                                             make_evaluation, clock):
    app.config.update(adapter_config(secure_gateway, secure=True))
    city.item.implementation_code = "113416000000000000A3341600001"
    db.session.commit()
    make_evaluation(level=2, comment="等了很久")
    push(clock)
    assert {m.status for m in ledger(db)} == {"acknowledged"}
    assert secure_gateway.stats()["accepted"] == 2
