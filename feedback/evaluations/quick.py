"""A plain rating in one statement on PostgreSQL (issue 22): the busiest write of the product.

``rate`` (service.py) writes a rating through the ORM in four statements after reading the
record: the rating, its statistics change-log rows, its ledger message and the stored answer
of its Idempotency-Key (for an SMS reply: the text and the thanks), each a round trip and each a
few hundred microseconds of SQLAlchemy. Almost every rating is the plain case: a known record in
the caller's reach, unrated, within its rating window, a good or neutral level. For that case
this module writes the same rows with one INSERT … SELECT chain (data-modifying CTEs) and
returns the stored answer: for the API (``find="number"``), the paired tablet (``"tablet"``, its
secret checked in the statement) and an SMS reply (``rate_sms``: the number's latest open
invitation).

It never refuses anything. Whenever the plain case does not hold (unknown or foreign record,
already rated, window closed, a time outside the bounds, a bad level that opens a ticket, a
record whose ledger message is missing, a key already used, a twin racing on the unique
indexes, an SMS that something else pending may claim), it writes nothing and returns None (or
raises a database error the caller rolls back), and the caller runs the full path, which gives
the precise answer. So the two paths cannot disagree on a refusal, and tests
(tests/evaluations/test_quick.py) prove that for an accepted rating they write the same rows
and answer the same body.

The rules copied from the full path, each named where it lives:
* the rating's columns: ``service.rate`` (units from the record, ``real_name`` when it has a
  phone, ``reasons_version`` no later than the current catalogue);
* the change log: ``statistics.service._changes`` for a new rating of a stored record (the
  rating's row, and the record's ``records_rated`` row in its completion month);
* the ledger: ``exchange.ledger.rating_given`` for a good rating (batch lane, after its record's
  message, skipped with it);
* the stored answer: ``idempotency.service.run_once`` (201 and the body);
* an SMS reply: ``sms.service.pending_for``, ``_over_inbound_limit``, ``_rate`` and ``_reply``;
  a text that is no rating, with an invitation open (``unrated_sms``): ``_act``'s "ambiguous".
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from flask import current_app

from feedback.clock import local_zone, to_local
from feedback.evaluations import quick_ticket
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.service import CLOCK_SKEW
from feedback.exchange.ledger import PARENT_SKIPPED
from feedback.extensions import db
from feedback.idempotency import service as idempotency
from feedback.statistics.months import month_of
from feedback.tickets.service import HANDLING_LINK_DAYS

_INT_MAX = 2**31 - 1
ANY_VERSION = _INT_MAX  # no list named: the rating keeps the current catalogue version

# The record, found by its number (the API) or by id at a paired tablet's window, in reach,
# unrated and rateable at this moment; nothing comes out of it otherwise.
_FIND = {
    "number": "FROM service_records r WHERE r.record_number = %(number)s "
              "AND (%(departments)s::int[] IS NULL OR r.department_id = ANY(%(departments)s::int[]))",
    "tablet": "FROM service_records r JOIN terminals t ON t.window_id = r.window_id "
              "JOIN windows tw ON tw.id = t.window_id "
              "WHERE r.id = %(record_id)s::int AND t.id = %(terminal_id)s::int AND tw.code = %(window_code)s "
              "AND t.revoked_at IS NULL AND t.secret_hash = %(secret_hash)s "
              "AND (t.paired_at IS NULL OR t.paired_at <= %(rated_at)s) AND r.completed_at <= %(rated_at)s",
    # The record of the number's latest open invitation, when nothing else may claim the text (an
    # open reason question, a ticket reply awaiting its handling rating) and the number is
    # within its hourly limit (sms/service.py: pending_for, _over_inbound_limit).
    "sms": "FROM service_records r WHERE r.id = ("
           "SELECT i.service_record_id FROM sms_invitations i "
           "LEFT JOIN evaluations e ON e.service_record_id = i.service_record_id "
           "WHERE i.phone = %(phone)s AND i.deadline_at > %(now)s AND e.id IS NULL "
           "ORDER BY i.invited_at DESC, i.id DESC LIMIT 1) "
           "AND NOT EXISTS (SELECT 1 FROM sms_follow_ups f WHERE f.phone = %(phone)s AND f.answered_at IS NULL "
           "AND f.expires_at > %(now)s) "
           "AND NOT EXISTS (SELECT 1 FROM outbound_sms o JOIN tickets tk ON tk.id = o.ticket_id "
           "WHERE o.to_phone = %(phone)s AND o.purpose = 'ticket_reply' AND tk.state = 'replied' "
           "AND o.created_at > %(survey_since)s) "
           "AND (SELECT count(*) FROM inbound_sms s WHERE s.from_phone = %(phone)s "
           "AND s.received_at > %(hour_ago)s) < %(hourly_limit)s::int",
}
_SCOPE = {"number": "%(scope)s", "tablet": "'terminal-window:' || rec.window_id"}

_SQL = """
WITH rec AS (
    SELECT r.id, r.record_number, r.department_id, r.hall_id, r.window_id, r.staff_id, r.service_item_id,
           r.completed_at, coalesce(r.citizen_phone, '') <> '' AS real_name
    {find}
      AND %(rated_at)s <= r.completed_at + %(window)s::interval
      AND %(rated_at)s >= r.completed_at - %(skew)s::interval
      AND NOT EXISTS (SELECT 1 FROM evaluations e WHERE e.service_record_id = r.id)
), parent AS (
    SELECT m.status FROM exchange_messages m JOIN rec ON m.subject_key = 'REC-' || rec.id
), ev AS (
    INSERT INTO evaluations (service_record_id, level, channel, reasons, comment, rated_at, created_at,
                             department_id, hall_id, window_id, staff_id, service_item_id, is_active_rating,
                             real_name, terminal_id, api_key_id, invalid, flagged, reasons_version)
    SELECT rec.id, %(level)s::smallint, %(channel)s, %(reasons)s::json, %(comment)s, %(rated_at)s, %(now)s,
           rec.department_id, rec.hall_id, rec.window_id, rec.staff_id, rec.service_item_id, TRUE,
           rec.real_name, %(terminal_id)s::int, %(api_key_id)s::int, FALSE, FALSE,
           least((SELECT c.version FROM reason_catalogue c WHERE c.id = 1), %(version_cap)s::int)
    FROM rec, parent
    RETURNING id, service_record_id, department_id, window_id, reasons_version
), changes AS (
    INSERT INTO stat_changes (month, cohort, row_id, department_id, hall_id, window_id, staff_id, service_item_id)
    SELECT %(month)s, 'ratings', ev.id, 0, 0, 0, 0, 0 FROM ev
    UNION ALL
    SELECT to_char(rec.completed_at AT TIME ZONE %(zone)s, 'YYYY-MM'), 'records_rated', rec.id, 0, 0, 0, 0, 0
    FROM rec, ev
), message AS (
    INSERT INTO exchange_messages (subject_key, message_id, kind, subject_id, lane, depends_on, attempts, event_at,
                                   business_date, produced_at, backfilled, status, next_attempt_at, last_error)
    SELECT 'EVA-' || ev.id, %(source)s || '-EVA-' || ev.id, 'evaluation', ev.id, %(lane)s, 'REC-' || rec.id, 0,
           %(rated_at)s, %(business_date)s, %(now)s, FALSE,
           CASE WHEN parent.status = 'skipped' THEN 'skipped' ELSE 'pending' END,
           CASE WHEN parent.status = 'skipped' THEN NULL ELSE %(now)s END,
           CASE WHEN parent.status = 'skipped' THEN %(parent_skipped)s END
    FROM ev, rec, parent
)"""
# The API's and the tablet's answer: what was given (the caller's ``body``) and what the
# database knows, stored under the Idempotency-Key (``_STORE``) or only returned (``_NO_STORE``).
_BODY = """, body AS (
    SELECT rec.window_id, (%(body)s::jsonb || jsonb_build_object(
               'id', ev.id, 'record_id', ev.service_record_id, 'reasons_version', ev.reasons_version,
               'department_code', d.code, 'window_code', w.code{ticket_id})) - %(drop)s::text[] AS body
    FROM ev JOIN rec ON TRUE JOIN departments d ON d.id = ev.department_id LEFT JOIN windows w ON w.id = ev.window_id
    {ticket}
)"""
_GOOD_BODY = _BODY.format(ticket_id="", ticket="")
_BAD_BODY = _BODY.format(ticket_id=", 'ticket_id', ticket.id", ticket="JOIN ticket ON TRUE")
_STORE = """, answer AS (
    INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at)
    SELECT {scope}, %(key)s, %(digest)s, 201, body.body::json, %(now)s FROM body JOIN rec ON TRUE
    RETURNING body
)
SELECT body FROM answer"""
_NO_STORE = "\nSELECT body::json FROM body"
# The text, stored with its outcome, and the answer it gets (sms/service.py: _done, _reply):
# ``source`` the rows it comes from, ``detail`` and ``evaluation`` its columns.
_SMS = """, inbound AS (
    INSERT INTO inbound_sms (message_sid, from_phone, to_phone, body, received_at, outcome, detail, evaluation_id,
                             service_record_id)
    SELECT %(sid)s, %(phone)s, %(to_phone)s, %(text)s, %(now)s, %(outcome)s, {detail}, {evaluation}, rec.id
    FROM {source}
    RETURNING id
), reply AS (
    INSERT INTO outbound_sms (to_phone, body, purpose, dedupe_key, state, attempts, next_attempt_at, created_at,
                              answers_inbound_id)
    SELECT %(phone)s, %(reply)s, 'reply', %(dedupe_key)s, 'queued', 0, %(now)s, %(now)s, inbound.id FROM inbound
)
SELECT id FROM inbound"""
# A text that rated: the rating's statement, then the text (its detail the record and the level).
_SMS_RATED = _SMS.format(detail="left(rec.record_number || %(detail)s, 300)", evaluation="ev.id",
                         source="ev JOIN rec ON TRUE")
# A text that is no rating while an invitation is open (sms/service.py: _act's "ambiguous"): the
# invited record found as for a rating, nothing rated, the text kept and asked again.
_SMS_UNRATED = ("WITH rec AS (SELECT r.id " + _FIND["sms"] + ")"
                + _SMS.format(detail="%(detail)s", evaluation="NULL::int", source="rec"))


@dataclass(frozen=True)
class Rating:
    """A plain rating to write: checked by the caller (a good or neutral level, reasons of the
    level, the cleaned comment, ``rated_at`` in UTC no later than now)."""

    level: int
    channel: str
    reasons: list[int]
    comment: str
    rated_at: datetime
    version_cap: int  # the catalogue version it may keep at most (the list the citizen saw)


def applies() -> bool:
    """Whether ratings take the one-statement path: on PostgreSQL with QUICK_RATINGS on (SQLite
    runs the full path)."""
    return current_app.config.get("QUICK_RATINGS", True) and db.session.get_bind().dialect.name == "postgresql"


# Each statement's text, made once: the psycopg connection prepares it after a few uses.
# A bad rating (key ``bad`` True) opens its ticket in the same statement (quick_ticket.py).
_BAD_SQL = _SQL.replace("WITH rec AS", "WITH RECURSIVE rec AS", 1) + quick_ticket.SQL
_STATEMENTS = {
    ("number", True, False): _SQL.format(find=_FIND["number"]) + _GOOD_BODY + _STORE.format(scope=_SCOPE["number"]),
    ("number", False, False): _SQL.format(find=_FIND["number"]) + _GOOD_BODY + _NO_STORE,
    ("number", True, True): _BAD_SQL.format(find=_FIND["number"]) + _BAD_BODY + _STORE.format(scope=_SCOPE["number"]),
    ("number", False, True): _BAD_SQL.format(find=_FIND["number"]) + _BAD_BODY + _NO_STORE,
    ("tablet", True, False): _SQL.format(find=_FIND["tablet"]) + _GOOD_BODY + _STORE.format(scope=_SCOPE["tablet"]),
    # The tablet's answer names the case page, whose signed link needs the ticket's id: the
    # statement returns what the answer needs and the answer is stored after it.
    ("tablet", False, True): _BAD_SQL.format(find=_FIND["tablet"]) + _BAD_BODY
    + "\nSELECT body.body::json, body.window_id, ticket.id, rec.real_name "
      "FROM body JOIN ticket ON TRUE JOIN rec ON TRUE",
    ("sms", False, False): _SQL.format(find=_FIND["sms"]) + _SMS_RATED,
}


def rate(rating: Rating, *, find: str, where: dict[str, Any], body: dict, drop: tuple[str, ...] = (),
         key: str | None = None, digest: str | None = None, scope: str | None = None,
         api_key_id: int | None = None, terminal_id: int | None = None,
         case: Callable[[int, bool], dict] | None = None, now: datetime) -> dict | None:
    """Write ``rating`` of the record ``find`` names (``number``: ``where`` gives ``number`` and
    ``departments``, the ids in the caller's reach or None; ``tablet``: ``record_id``,
    ``terminal_id``, ``window_code`` and ``secret_hash``) in the caller's transaction, with its
    change log, ledger message and, with ``key``, the stored answer; return the answer's body.

    ``body``: the answer without what the database knows; it gets ``id``, ``record_id``,
    ``reasons_version``, ``department_code`` and ``window_code``, less the names in ``drop``.
    None when the plain case does not hold: nothing was written, the caller runs the full path.
    A bad rating opens its ticket in the same statement (quick_ticket.py); at a tablet its answer
    gets ``case(ticket id, whether the record has a phone)`` (the case page) and is stored after.
    """
    if find == "tablet" and LEVELS[rating.level].is_bad:
        row = _run(rating, find, {**where, "body": json.dumps(body, ensure_ascii=False), "drop": [*drop, "ticket_id"]},
                   store=False, terminal_id=terminal_id, now=now)
        if row is None:
            return None
        answer, window_id, ticket_id, real_name = row
        answer["case"] = case(ticket_id, real_name)
        idempotency.store(f"terminal-window:{window_id}", key, digest, answer, 201)
        return answer
    row = _run(rating, find, {**where, "body": json.dumps(body, ensure_ascii=False), "drop": list(drop),
                               "scope": scope, "key": key, "digest": digest}, store=key is not None,
               api_key_id=api_key_id, terminal_id=terminal_id, now=now)
    return row[0] if row is not None else None


def rate_sms(rating: Rating, *, sid: str, phone: str, to_phone: str | None, text: str, reply: str,
             now: datetime) -> int | None:
    """Write ``rating`` (channel ``sms``, rated now) of the record of ``phone``'s latest open
    invitation, when nothing else may claim the text, with the text itself (``sid``, its
    outcome ``rated``) and the ``reply`` queued to the number; return the text's row id.
    None when the plain case does not hold (sms/service.py handles the text then)."""
    label = LEVELS[rating.level].label
    row = _run(rating, "sms", {**_sms_params(sid=sid, phone=phone, to_phone=to_phone, text=text, reply=reply, now=now),
                               "outcome": "rated", "detail": f"：{rating.level} {label}"}, store=False, now=now)
    return row[0] if row is not None else None


def unrated_sms(*, sid: str, phone: str, to_phone: str | None, text: str, detail: str, reply: str,
                now: datetime) -> int | None:
    """Store a text that is no rating (outcome ``ambiguous``, ``detail``) against the record of
    ``phone``'s latest open invitation, when nothing else may claim it, with the ``reply`` asking
    again queued to the number; return the text's row id. None when that case does not hold."""
    row = db.session.connection().exec_driver_sql(_SMS_UNRATED, {
        **_sms_params(sid=sid, phone=phone, to_phone=to_phone, text=text, reply=reply, now=now),
        "outcome": "ambiguous", "detail": detail[:300]}).first()
    return row[0] if row is not None else None


def _sms_params(*, sid: str, phone: str, to_phone: str | None, text: str, reply: str, now: datetime) -> dict:
    """The parameters of the SMS statements: the text, its answer, and what finds the invitation."""
    limit = int(current_app.config.get("SMS_INBOUND_LIMIT_PER_HOUR", 20))
    return {"phone": phone, "now": now, "survey_since": now - timedelta(days=HANDLING_LINK_DAYS),
            "hour_ago": now - timedelta(hours=1), "hourly_limit": limit if limit > 0 else _INT_MAX,
            "sid": sid, "to_phone": to_phone, "text": text, "reply": reply, "dedupe_key": f"reply:{sid}"}


def _run(rating: Rating, find: str, extra: dict[str, Any], *, store: bool, api_key_id: int | None = None,
         terminal_id: int | None = None, now: datetime):
    bad = LEVELS[rating.level].is_bad
    assert not bad or find in ("number", "tablet"), "an SMS bad rating asks why: the full path's"
    config = current_app.config
    params = {
        **(quick_ticket.params(rating.level, rating.channel, now) if bad else {}),
        **{"number": None, "departments": None, "record_id": None, "window_code": None, "secret_hash": None},
        **extra,
        "level": rating.level, "channel": rating.channel, "reasons": json.dumps(rating.reasons),
        "comment": rating.comment, "rated_at": rating.rated_at, "now": now, "version_cap": rating.version_cap,
        "window": timedelta(days=config["RATING_WINDOW_DAYS"]), "skew": CLOCK_SKEW,
        "terminal_id": terminal_id, "api_key_id": api_key_id,
        "month": month_of(rating.rated_at), "zone": local_zone().key, "business_date": to_local(rating.rated_at).date(),
        "source": config["EXCHANGE_DATA_SOURCE"], "parent_skipped": PARENT_SKIPPED,
        "lane": "fast" if bad else "batch",
    }
    # Every parameter is cast in the SQL: psycopg types a small int as int2 and a big one as
    # int4, and each combination would be prepared (and planned) again on every connection.
    return db.session.connection().exec_driver_sql(_STATEMENTS[find, store, bad], params).first()


