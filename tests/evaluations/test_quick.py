"""The one-statement rating (feedback/evaluations/quick.py) writes what the ORM path writes.

On PostgreSQL a plain rating from the API or a paired tablet is written by one INSERT … SELECT
chain; anything else falls through to the full path. Each test rates one record through the
quick path and a twin record through the full path (QUICK_RATINGS off) with the same input, and
compares every row the two wrote (the rating, its statistics change-log rows, its ledger message,
the stored Idempotency-Key answer) and the answers, the ids and numbers aside. The statement
count shows which path ran, so a quick path that silently fell through fails here too.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import event, text

from feedback.exchange import ledger
from feedback.exchange.models import ExchangeMessage
from tests.conftest import TABLET

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


class Sent:
    """The statements sent to the engine while it is active."""

    def __init__(self, engine):
        self.engine, self.statements = engine, []

    def _note(self, conn, cursor, statement, *args):
        self.statements.append(" ".join(statement.split())[:80])

    @property
    def writes(self) -> list[str]:
        """The statements that write (reads of the catalogue, the key or the terminal aside)."""
        return [s for s in self.statements if not s.startswith("SELECT")]

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._note)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._note)


def _written(db, evaluation_id: int) -> dict:
    """Every row a rating wrote, ids and numbers replaced by what they name."""
    conn = db.session.connection()
    ev = dict(conn.execute(text("SELECT * FROM evaluations WHERE id = :i"), {"i": evaluation_id}).mappings().one())
    record_id = ev.pop("service_record_id")
    for name in ("id", "created_at"):
        ev.pop(name)
    changes = sorted(
        (r.month, r.cohort, {evaluation_id: "rating", record_id: "record"}.get(r.row_id, r.row_id),
         r.department_id, r.hall_id, r.window_id, r.staff_id, r.service_item_id)
        for r in conn.execute(text("SELECT * FROM stat_changes WHERE (cohort = 'ratings' AND row_id = :e) "
                                   "OR (cohort = 'records_rated' AND row_id = :r)"), {"e": evaluation_id, "r": record_id}))
    message = dict(conn.execute(text("SELECT * FROM exchange_messages WHERE subject_key = :k"),
                                {"k": ledger.evaluation_key(evaluation_id)}).mappings().one())
    assert message.pop("message_id") == ledger.message_id_for(ledger.evaluation_key(evaluation_id))
    assert message.pop("depends_on") == ledger.record_key(record_id)
    assert message.pop("subject_id") == evaluation_id
    for name in ("id", "subject_key"):
        message.pop(name)
    return {"rating": ev, "changes": changes, "message": message}


def _answers(db, scope_like: str) -> list[dict]:
    rows = db.session.connection().execute(text("SELECT scope, status, body FROM idempotency_keys WHERE scope LIKE :s "
                                                "ORDER BY id"), {"s": scope_like}).mappings().all()
    return [dict(r) for r in rows]


def _plain(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("id", "record_id", "record_number")}


def _good_code(level: int) -> int:
    from feedback.evaluations import reasons

    return next(code for code in reasons.catalogue().active_codes() if code // 100 == level)


API_CASES = {
    "a name, no key": ({"level": "very_satisfied"}, False),
    "score, channel, reasons, comment with control characters": (
        {"level": 4, "level_scheme": "score", "channel": "qr", "reasons": "GOOD4",
         "comment": " 办得快\x07 ", "reason_required": True}, True),
    "gbt39046 scheme, a time given": ({"level": 3, "level_scheme": "gbt39046", "rated_at": "TAP"}, True),
}


@pytest.mark.parametrize("case", API_CASES, ids=list(API_CASES))
def test_an_api_rating_in_one_statement_writes_and_answers_what_the_orm_path_does(
        app, client, db, city, api_key, make_record, clock, case):
    given, with_key = API_CASES[case]
    given = dict(given)
    if given.get("reasons") == "GOOD4":
        given["reasons"] = [_good_code(4)]
    if given.get("rated_at") == "TAP":
        given["rated_at"] = (clock.now - timedelta(minutes=2)).isoformat()
    city.item.implementation_code = "11330100MB0000000A4330117001000"  # reported to the province
    db.session.commit()
    headers = api_key(department_code=city.window.department.code)
    # The key verified once and cached (API_KEY_CACHE_SECONDS), as on a busy server.
    assert client.get("/api/v1/evaluations/0", headers=headers).status_code == 403
    phone = "+8613800138000"
    results, sents = {}, {}
    for quick in (True, False):
        app.config["QUICK_RATINGS"] = quick
        number = make_record(citizen_phone=phone).record_number
        extra = {"Idempotency-Key": uuid.uuid4().hex} if with_key else {}
        with Sent(db.engine) as sent:
            resp = client.post("/api/v1/evaluations", json={**given, "record_number": number}, headers={**headers, **extra})
        assert resp.status_code == 201, (quick, resp.get_json())
        body = resp.get_json()
        assert body["record_number"] == number
        results[quick] = (body, _written(db, body["id"]), len(sent.statements))
        sents[quick] = sent
    (quick_body, quick_rows, quick_n), (full_body, full_rows, full_n) = results[True], results[False]
    quick_sent = sents[True]
    # Reason codes are checked against the catalogue, whose version row is read first.
    expected = 2 if given.get("reasons") else 1
    assert quick_n == expected, f"the quick path sent {quick_n} statements: {quick_sent}"
    assert full_n > expected
    assert _plain(quick_body) == _plain(full_body)
    assert quick_rows == full_rows
    assert quick_rows["rating"]["real_name"] is True and quick_rows["message"]["status"] == "pending"
    if with_key:
        stored = _answers(db, "api:%")
        assert len(stored) == 2 and stored[0]["scope"] == stored[1]["scope"]
        assert [a["status"] for a in stored] == [201, 201]
        assert _plain(stored[0]["body"]) == _plain(stored[1]["body"]) == _plain(quick_body)
        assert stored[0]["body"]["id"] == quick_body["id"]


def test_a_tablet_rating_in_one_statement_writes_and_answers_what_the_orm_path_does(
        app, tablet, db, city, make_record, clock):
    city.item.implementation_code = "11330100MB0000000A4330117001000"  # reported to the province
    db.session.commit()
    clock.set(clock.now + timedelta(minutes=10))  # the tablet was paired at the start: taps come after
    results, sents = {}, {}
    payload = {"level": 5, "reasons": [_good_code(5)], "comment": "谢谢", "reasons_version": 1,
               "rated_at": (clock.now - timedelta(minutes=1)).isoformat(),
               "sent_at": clock.now.isoformat()}
    for quick in (True, False):
        app.config["QUICK_RATINGS"] = quick
        record_id = make_record().id
        with Sent(db.engine) as sent:
            resp = tablet.post("/terminal/W01/ratings", json={**payload, "record_id": record_id},
                               headers={**TABLET, "Idempotency-Key": uuid.uuid4().hex})
        assert resp.status_code == 201, (quick, resp.get_json())
        body = resp.get_json()
        assert body["record_id"] == record_id
        results[quick] = (body, _written(db, body["id"]))
        sents[quick] = sent
    (quick_body, quick_rows), (full_body, full_rows) = results[True], results[False]
    assert len(sents[True].writes) == 1 and sents[True].writes[0].startswith("WITH rec AS"), sents[True].statements
    assert len(sents[False].writes) >= 4, sents[False].statements
    assert _plain(quick_body) == _plain(full_body)
    assert set(quick_body) == {"id", "level", "record_id", "flagged", "received", "case"}
    assert quick_rows == full_rows
    assert quick_rows["rating"]["terminal_id"] is not None and quick_rows["rating"]["reasons_version"] == 1
    stored = _answers(db, "terminal-window:%")
    assert [_plain(a["body"]) for a in stored] == [_plain(quick_body)] * 2


def test_a_record_whose_item_is_local_gets_a_skipped_message_on_either_path(app, client, db, city, api_key,
                                                                            make_record):
    assert not city.item.implementation_code  # a local item: its records are never reported
    headers = api_key()
    statuses = []
    for quick in (True, False):
        app.config["QUICK_RATINGS"] = quick
        number = make_record().record_number
        resp = client.post("/api/v1/evaluations", json={"record_number": number, "level": 5,
                                                        "level_scheme": "score"}, headers=headers)
        assert resp.status_code == 201
        statuses.append(_written(db, resp.get_json()["id"])["message"])
    assert statuses[0] == statuses[1]
    assert statuses[0]["status"] == "skipped" and statuses[0]["last_error"] == ledger.PARENT_SKIPPED


def test_what_is_not_plain_goes_the_full_way_and_is_answered_as_before(app, client, db, city, api_key, make_record,
                                                                       clock):
    """A record with no ledger message, a replay, a reused key, a rated record, a closed window, a
    record outside the key's departments: the quick statement writes nothing for them and the
    full path gives its answer (a bad rating, which opens its ticket in the quick statement
    too, is tests/evaluations/test_quick_ticket.py's)."""
    from feedback.tickets.models import Ticket

    headers = api_key(department_code=city.window.department.code)

    def post(body, key=None):
        extra = {"Idempotency-Key": key} if key else {}
        return client.post("/api/v1/evaluations", json=body, headers={**headers, **extra})

    bad = make_record()
    resp = post({"record_number": bad.record_number, "level": 1, "level_scheme": "score", "reasons": [115]})
    assert resp.status_code == 201 and resp.get_json()["ticket_id"] is not None
    assert db.session.get(Ticket, resp.get_json()["ticket_id"]) is not None

    # A record from before the ledger: its message is written first, then the rating's after it.
    orphan = make_record()
    db.session.execute(text("DELETE FROM exchange_messages WHERE subject_key = :k"),
                       {"k": ledger.record_key(orphan.id)})
    db.session.commit()
    resp = post({"record_number": orphan.record_number, "level": 5, "level_scheme": "score"})
    assert resp.status_code == 201
    assert {m.subject_key for m in db.session.query(ExchangeMessage).filter(ExchangeMessage.subject_id.in_(
        [orphan.id, resp.get_json()["id"]]))} >= {ledger.record_key(orphan.id), ledger.evaluation_key(resp.get_json()["id"])}

    record = make_record()
    body = {"record_number": record.record_number, "level": 5, "level_scheme": "score"}
    first = post(body, key="k-1")
    again = post(body, key="k-1")
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    reused = post({**body, "level": 4}, key="k-1")
    assert reused.status_code == 422 and reused.get_json()["type"].endswith("idempotency-key-reused")
    twice = post(body, key="k-2")
    assert twice.status_code == 409 and twice.get_json()["type"].endswith("already-rated")

    late = make_record(completed_at=clock.now - timedelta(days=8))
    resp = post({"record_number": late.record_number, "level": 5, "level_scheme": "score"})
    assert resp.status_code == 422 and resp.get_json()["type"].endswith("rating-window-closed")

    foreign = make_record(window=city.other_window)
    resp = post({"record_number": foreign.record_number, "level": 5, "level_scheme": "score"})
    assert resp.status_code == 403 and resp.get_json()["type"].endswith("out-of-department")
    unknown = post({"record_number": "NO-SUCH", "level": 5, "level_scheme": "score"})
    assert unknown.status_code == 422 and unknown.get_json()["type"].endswith("unknown-reference")


def test_a_revoked_or_foreign_tablet_and_a_tap_before_the_record_are_not_plain(app, tablet, db, city, make_record,
                                                                              clock):
    from feedback.evaluations.models import Evaluation
    from feedback.terminal import service as terminals
    from feedback.terminal.models import Terminal

    def rate(record, **extra):
        return tablet.post("/terminal/W01/ratings", headers={**TABLET, "Idempotency-Key": uuid.uuid4().hex},
                           json={"record_id": record.id, "level": 5, "rated_at": clock.now.isoformat(), **extra})

    clock.set(clock.now + timedelta(minutes=10))  # the tablet was paired at the start
    # A tap before the record's completion is moved to it and flagged (the full path's).
    early = make_record(completed_at=clock.now - timedelta(minutes=1))
    resp = rate(early, rated_at=(clock.now - timedelta(minutes=30)).isoformat())
    assert resp.status_code == 201 and resp.get_json()["flagged"] is True
    assert db.session.get(Evaluation, resp.get_json()["id"]).rated_at == early.completed_at

    other = make_record(window=city.other_window)
    assert rate(other).status_code == 404

    terminal = db.session.query(Terminal).filter_by(window_id=city.window.id).one()
    terminals.revoke_terminal(terminal, actor=city.users.admin)
    db.session.commit()
    fresh = make_record()
    assert rate(fresh).status_code == 401
    assert db.session.query(Evaluation).filter_by(service_record_id=fresh.id).count() == 0


def _text_both_ways(app, client, db, make_record, clock, body: str, phones: tuple[str, str]) -> dict:
    """``body`` sent from a number with one open invitation, once the quick way and once the full
    way (QUICK_RATINGS off), each from its own number: per path, the statements sent, the invited
    record, the stored text and its queued answer (checked to belong together)."""
    from feedback.sms import service as sms
    from tests.sms.conftest import AUTH_TOKEN, FROM_NUMBER, post_inbound

    app.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER)
    conn = db.session.connection
    out = {}
    for quick, phone in zip((True, False), phones):
        app.config["QUICK_RATINGS"] = quick
        record = make_record(citizen_phone=phone, completed_at=clock.now - timedelta(minutes=30))
        assert sms.invite(record, clock.now) is not None
        db.session.commit()
        with Sent(db.engine) as sent:
            assert post_inbound(client, body, phone=phone).status_code == 200
        inbound = dict(conn().execute(text("SELECT * FROM inbound_sms WHERE from_phone = :p"), {"p": phone})
                       .mappings().one())
        reply = dict(conn().execute(text("SELECT * FROM outbound_sms WHERE answers_inbound_id = :i"),
                                    {"i": inbound["id"]}).mappings().one())
        assert inbound["service_record_id"] == record.id and reply["to_phone"] == phone
        assert reply["dedupe_key"] == f"reply:{inbound['message_sid']}"
        for name in ("id", "message_sid", "from_phone", "service_record_id"):
            inbound.pop(name)
        for name in ("id", "to_phone", "dedupe_key", "answers_inbound_id"):
            reply.pop(name)
        out[quick] = SimpleNamespace(sent=sent, record=record, inbound=inbound, reply=reply)
    statements = out[True].sent.statements
    assert statements and all(s.startswith("WITH rec AS") for s in statements), statements
    return out


def test_an_sms_rating_in_one_statement_writes_what_the_orm_path_does(app, client, db, city, make_record, clock):
    city.item.implementation_code = "11330100MB0000000A4330117001000"
    db.session.commit()
    paths = _text_both_ways(app, client, db, make_record, clock, "满意 4", ("+8613800138001", "+8613800138002"))
    results = {}
    for quick, path in paths.items():
        inbound = path.inbound
        assert inbound["outcome"] == "rated" and inbound.pop("detail") == f"{path.record.record_number}：4 满意"
        results[quick] = (_written(db, inbound.pop("evaluation_id")), inbound, path.reply)
    assert len(paths[False].sent.writes) >= 5, paths[False].sent.statements
    assert results[True] == results[False]
    assert results[True][2]["body"].endswith("感谢您的评价（满意）！我们会继续改进服务。")
    assert results[True][2]["state"] == "queued"


@pytest.mark.parametrize("body", ["好的", "你们几点下班？", "10分"])
def test_a_text_that_is_no_rating_in_one_statement_writes_what_the_orm_path_does(app, client, db, city, make_record,
                                                                                   clock, body):
    """With an invitation open, a text that rates nothing is kept as ambiguous against the invited
    record and asked again, in one statement, exactly as the full path keeps and answers it."""
    paths = _text_both_ways(app, client, db, make_record, clock, body, ("+8613800138011", "+8613800138012"))
    for path in paths.values():
        assert path.inbound["outcome"] == "ambiguous" and path.inbound["evaluation_id"] is None, path.inbound
        assert db.session.connection().execute(text("SELECT count(*) FROM evaluations WHERE service_record_id = :r"),
                                               {"r": path.record.id}).scalar() == 0
    assert len(paths[False].sent.writes) >= 2, paths[False].sent.statements
    assert (paths[True].inbound, paths[True].reply) == (paths[False].inbound, paths[False].reply)
    assert "请只回复一个数字" in paths[True].reply["body"]


def _two_invitations(app, db, make_record, clock, phone: str) -> str:
    """Two records of ``phone`` completed 40 and 30 minutes ago, each invited (Twilio set up)."""
    from feedback.sms import service as sms
    from tests.sms.conftest import AUTH_TOKEN, FROM_NUMBER

    app.config.update(TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER)
    for minutes in (40, 30):
        assert sms.invite(make_record(citizen_phone=phone, completed_at=clock.now - timedelta(minutes=minutes)),
                          clock.now) is not None
    db.session.commit()
    return phone


def test_a_text_that_is_no_rating_goes_the_full_way_when_something_else_may_claim_it(app, client, db, city,
                                                                                      make_record, clock):
    """No invitation open (no_pending), the reason question of a bad rating open (its answer),
    the hourly limit reached (kept, not answered): the quick statement writes nothing."""
    from feedback.sms.models import InboundSms
    from tests.sms.conftest import post_inbound

    app.config["SMS_INBOUND_LIMIT_PER_HOUR"] = 3
    phone = _two_invitations(app, db, make_record, clock, "+8613800138022")
    assert post_inbound(client, "好的", phone="+8613800138021", sid="SM-none").status_code == 200
    assert post_inbound(client, "1", phone=phone, sid="SM-bad").status_code == 200
    assert post_inbound(client, "排队太久了", phone=phone, sid="SM-reason").status_code == 200
    assert post_inbound(client, "好的", phone=phone, sid="SM-over-1").status_code == 200
    assert post_inbound(client, "好的", phone=phone, sid="SM-over-2").status_code == 200
    outcomes = {i.message_sid: i.outcome for i in db.session.query(InboundSms)}
    assert outcomes == {"SM-none": "no_pending", "SM-bad": "rated", "SM-reason": "comment",
                        "SM-over-1": "ambiguous", "SM-over-2": "rate_limited"}, outcomes


def test_an_sms_text_that_is_not_a_plain_rating_goes_the_full_way(app, client, db, city, make_record, clock):
    """A bad rating (its reason question), a second text while the question is open, a repeated
    MessageSid: the quick statement writes nothing and the full path answers each as before."""
    from feedback.sms.models import InboundSms, OutboundSms, SmsFollowUp
    from tests.sms.conftest import post_inbound

    phone = _two_invitations(app, db, make_record, clock, "+8613800138003")
    assert post_inbound(client, "1", phone=phone, sid="SM-bad").status_code == 200
    assert db.session.query(SmsFollowUp).filter_by(phone=phone).count() == 1
    # The open question claims a good level too (a bare level with another invitation open
    # rates that one: the full path's rule), and the same MessageSid again changes nothing.
    assert post_inbound(client, "5", phone=phone, sid="SM-good").status_code == 200
    assert post_inbound(client, "5", phone=phone, sid="SM-good").status_code == 200
    outcomes = {i.message_sid: i.outcome for i in db.session.query(InboundSms).filter_by(from_phone=phone)}
    assert outcomes == {"SM-bad": "rated", "SM-good": "rated"}
    assert db.session.query(OutboundSms).filter(OutboundSms.to_phone == phone,
                                                OutboundSms.purpose.in_(["reply", "follow_up"])).count() == 2
