"""A bad API rating opens its ticket in the rating's one statement (evaluations/quick_ticket.py)
and writes what the ORM path writes.

As in test_quick.py, each case rates one record through the quick path and a twin through the
full path (QUICK_RATINGS off) with the same input, and compares every row each wrote: the rating,
its change-log rows, its ledger message and its record's (promoted to the fast lane), the
ticket with its deadlines and first check, its 'opened' event, its change-log row, the
new-ticket notifications (who is told, title, text, delivery moment) and the stored answer; ids
and numbers replaced by what they name.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text

from feedback.exchange import ledger
from tests.evaluations.test_quick import Sent, _answers, _plain, _written

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _ticket_written(db, evaluation_id: int, record_id: int, users: dict[int, str]) -> dict:
    """Every row the ticket of rating ``evaluation_id`` brought, ids replaced by what they name."""
    conn = db.session.connection()
    ticket = dict(conn.execute(text("SELECT * FROM tickets WHERE evaluation_id = :e"),
                               {"e": evaluation_id}).mappings().one())
    ticket_id = ticket.pop("id")
    ticket.pop("evaluation_id")
    events = [{k: v for k, v in e.items() if k not in ("id", "ticket_id")} for e in conn.execute(
        text("SELECT * FROM ticket_events WHERE ticket_id = :t ORDER BY id"), {"t": ticket_id}).mappings()]
    changes = conn.execute(text("SELECT month, department_id, hall_id, window_id, staff_id, service_item_id "
                                "FROM stat_changes WHERE cohort = 'tickets' AND row_id = :t"), {"t": ticket_id}).all()
    notes = []
    for n in conn.execute(text("SELECT * FROM notifications WHERE ticket_id = :t ORDER BY id"),
                          {"t": ticket_id}).mappings():
        n = dict(n)
        for name in ("id", "ticket_id"):
            n.pop(name)
        n["user_id"] = users[n["user_id"]]
        n["title"] = n["title"].replace(str(ticket_id), "<ticket>")
        n["dedupe_key"] = n["dedupe_key"].replace(f":{ticket_id}:", ":<ticket>:")
        notes.append(n)
    record_message = dict(conn.execute(text("SELECT lane, status FROM exchange_messages WHERE subject_key = :k"),
                                       {"k": ledger.record_key(record_id)}).mappings().one())
    return {"ticket": ticket, "events": events, "changes": [tuple(c) for c in changes], "notifications": notes,
            "record_message": record_message, "ticket_id": ticket_id}


CASES = {
    # the department's own handler told; a 回访 deadline (the record has a phone); a key
    "real name, reasons and comment, a key": ({"level": 1, "level_scheme": "score", "reasons": "BAD1",
                                               "comment": "态度差", "reason_required": True},
                                              {"citizen_phone": "+8613800138000"}, True, None),
    # no handler of its own: the nearest department above is told; no phone, no 回访 deadline
    "anonymous, the handler above told, no key": ({"level": "dissatisfied", "channel": "qr"}, {}, False,
                                                  "no_own_handler"),
    # the department's only handler is the rated staff member: the department above is told
    "the only handler rated": ({"level": 2, "level_scheme": "score", "comment": "慢"}, {}, True, "handler_rated"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_bad_api_rating_opens_its_ticket_in_one_statement_as_the_orm_path_does(
        app, client, db, city, api_key, make_record, clock, case):
    given, record_columns, with_key, setting = CASES[case]
    given = dict(given)
    if given.get("reasons") == "BAD1":
        from feedback.evaluations import reasons

        given["reasons"] = [next(c for c in reasons.catalogue().active_codes() if c // 100 == 1)]
    city.item.implementation_code = "11330100MB0000000A4330117001000"  # reported: the record's message pending
    if setting == "no_own_handler":
        city.users.handler2.active = False
    elif setting == "handler_rated":
        city.users.handler2.staff_id = city.staff.id
    db.session.commit()
    users = {u.id: name for name, u in vars(city.users).items()}
    headers = api_key()
    # The key verified once and cached (API_KEY_CACHE_SECONDS), as on a busy server.
    assert client.get("/api/v1/evaluations/0", headers=headers).status_code in (403, 404)
    results, sents = {}, {}
    for quick in (True, False):
        app.config["QUICK_RATINGS"] = quick
        record = make_record(**record_columns)
        extra = {"Idempotency-Key": uuid.uuid4().hex} if with_key else {}
        with Sent(db.engine) as sent:
            resp = client.post("/api/v1/evaluations", json={**given, "record_number": record.record_number},
                               headers={**headers, **extra})
        assert resp.status_code == 201, (quick, resp.get_json())
        body = resp.get_json()
        rows = {**_written(db, body["id"]), **_ticket_written(db, body["id"], record.id, users)}
        assert body["ticket_id"] == rows.pop("ticket_id"), f"quick={quick}: the answer names another ticket"
        results[quick], sents[quick] = (body, rows), sent
    (quick_body, quick_rows), (full_body, full_rows) = results[True], results[False]
    assert len(sents[True].writes) == 1 and sents[True].writes[0].startswith("WITH RECURSIVE rec AS"), \
        f"the quick path did not write in one statement: {sents[True].statements}"
    assert len(sents[False].writes) >= 8, sents[False].statements
    assert _plain(quick_body) == _plain(full_body) | {"ticket_id": quick_body["ticket_id"]}
    for part in full_rows:
        assert quick_rows[part] == full_rows[part], f"{part} differ:\nquick {quick_rows[part]}\nfull  {full_rows[part]}"
    ticket, told = quick_rows["ticket"], [n["user_id"] for n in quick_rows["notifications"]]
    assert quick_rows["message"]["lane"] == "fast" and quick_rows["record_message"] == {"lane": "fast",
                                                                                      "status": "pending"}
    assert (ticket["verify_due_at"] is not None) is bool(record_columns.get("citizen_phone"))
    assert ticket["due_at"] > clock.now and ticket["next_deadline_check_at"] is not None
    assert told == {None: ["handler2"], "no_own_handler": ["handler"], "handler_rated": ["handler"]}[setting]
    if with_key:
        stored = _answers(db, "api:%")
        assert [_plain(a["body"]) for a in stored] == [_plain(quick_body), _plain(full_body)]


def test_a_bad_rating_the_full_path_must_refuse_or_place_is_left_to_it(app, client, db, city, api_key, make_record,
                                                                         clock):
    """A bad rating without reason when the caller says it could ask, a rated record, a closed
    window: the quick statement writes nothing and the full path answers."""
    headers = api_key()

    def post(record, **body):
        return client.post("/api/v1/evaluations", headers=headers,
                           json={"record_number": record.record_number, "level": 1, "level_scheme": "score", **body})

    record = make_record()
    resp = post(record, reason_required=True)
    assert resp.status_code == 422 and resp.get_json()["type"].endswith("reason-required"), resp.get_json()
    assert post(record, comment="差").status_code == 201
    again = post(record, comment="差")
    assert again.status_code == 409 and again.get_json()["type"].endswith("already-rated")
    late = make_record(completed_at=clock.now - timedelta(days=8))
    resp = post(late, comment="差")
    assert resp.status_code == 422 and resp.get_json()["type"].endswith("rating-window-closed")
    count = db.session.connection().execute(text("SELECT count(*) FROM tickets")).scalar()
    assert count == 1, f"{count} tickets for one accepted bad rating"


def test_a_bad_tablet_rating_opens_its_ticket_in_one_statement_and_names_the_case_page(
        app, tablet, db, city, make_record, clock):
    from tests.conftest import TABLET

    city.item.implementation_code = "11330100MB0000000A4330117001000"
    db.session.commit()
    clock.set(clock.now + timedelta(minutes=10))  # the tablet was paired at the start: taps come after
    users = {u.id: name for name, u in vars(city.users).items()}
    payload = {"level": 1, "comment": "等了很久", "rated_at": (clock.now - timedelta(minutes=1)).isoformat(),
               "sent_at": clock.now.isoformat()}
    results, sents = {}, {}
    for quick in (True, False):
        app.config["QUICK_RATINGS"] = quick
        record = make_record(citizen_phone="+8613800138000")
        key = uuid.uuid4().hex
        with Sent(db.engine) as sent:
            resp = tablet.post("/terminal/W01/ratings", json={**payload, "record_id": record.id},
                               headers={**TABLET, "Idempotency-Key": key})
        assert resp.status_code == 201, (quick, resp.get_json())
        body = resp.get_json()
        rows = {**_written(db, body["id"]), **_ticket_written(db, body["id"], record.id, users)}
        ticket_id = rows.pop("ticket_id")
        assert body["case"]["number"] == str(ticket_id), f"quick={quick}: the case names another ticket"
        # The case page the answer links to shows that ticket.
        page = tablet.get(body["case"]["path"])
        assert page.status_code == 200 and f"{ticket_id}" in page.get_data(as_text=True)
        again = tablet.post("/terminal/W01/ratings", json={**payload, "record_id": record.id},
                            headers={**TABLET, "Idempotency-Key": key})
        assert again.status_code == 201 and again.get_json() == body, f"quick={quick}: the replay differs"
        results[quick], sents[quick] = (body, rows), sent
    (quick_body, quick_rows), (full_body, full_rows) = results[True], results[False]
    writes = sents[True].writes
    assert len(writes) == 2 and writes[0].startswith("WITH RECURSIVE rec AS") and "idempotency_keys" in writes[1], \
        f"the quick path wrote more than the statement and its answer: {sents[True].statements}"

    def without_case(body):
        return {k: v for k, v in _plain(body).items() if k != "case"}

    assert without_case(quick_body) == without_case(full_body)
    assert {k: v for k, v in quick_body["case"].items() if k not in ("number", "path", "url")} == \
        {k: v for k, v in full_body["case"].items() if k not in ("number", "path", "url")} == {"sms": True, "days": 5}
    for part in full_rows:
        assert quick_rows[part] == full_rows[part], f"{part} differ:\nquick {quick_rows[part]}\nfull  {full_rows[part]}"
    assert quick_rows["rating"]["terminal_id"] is not None and quick_rows["ticket"]["verify_due_at"] is not None
    assert [n["user_id"] for n in quick_rows["notifications"]] == ["handler2"]
