"""The PostgreSQL path of a push batch: one statement claims it (row locks) and builds its
payloads, one statement stores its outcomes.

A 补报 pushes millions of records and ratings; per message, the generic path (pusher.py with
mapping.py) costs a Python object per row, a Python dict per payload and an UPDATE per
outcome. Here PostgreSQL does that work in C on its own core while the pusher waits for the
gateway: the due rows are locked by a ``SELECT … FOR UPDATE SKIP LOCKED`` (so two pushers
never claim the same row nor wait for each other, see :class:`Claims`), joined to their
records and ratings, and returned with each item already written as the compact JSON text
that goes on the wire and is signed (the adapter sends it as it is, :func:`_item`); the
outcomes of a batch go back in one ``UPDATE … FROM`` a JSON array of (id, remote id) pairs for
the acknowledged and ``json_to_recordset(…)`` for the rest.

The payloads are the ones :mod:`feedback.exchange.mapping` builds, field for field
(tests/exchange/test_fastpath.py compares both on the same rows): the builders there stay the
definition, and the generic path serves SQLite and the other kinds. Two fields need Python
and are filled in afterwards, for the few items that have them (those are decoded, filled and
encoded by the adapter): a rating's comment (masked by
:func:`feedback.privacy.service.mask_personal`) and ``defaultEval`` (present only for a default
rating).
"""
from __future__ import annotations

import json
import queue
from datetime import datetime

from psycopg.rows import namedtuple_row
from sqlalchemy import Integer, Text, bindparam, case, cast, func, literal, literal_column, select, text, tuple_
from sqlalchemy.dialects.postgresql import aggregate_order_by

from feedback.directory.models import Department, Hall, ServiceItem
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.exchange.mapping import CHANNEL_CODES, masked_text
from feedback.exchange.models import ExchangeMessage
from feedback.extensions import db

KINDS = ("record", "evaluation")  # the bulk of a 补报; other kinds take the generic builders

_T = ExchangeMessage.__table__
_E, _R, _I = Evaluation.__table__, ServiceRecord.__table__, ServiceItem.__table__
_D, _H = Department.__table__, Hall.__table__


def applies() -> bool:
    """Whether this path serves the session's database (PostgreSQL)."""
    return db.session.get_bind().dialect.name == "postgresql"


def _s(value: str):
    return cast(literal(value), Text)


def _wire(column):
    """mapping.wire_time in SQL: ``yyyyMMddHHmmss`` in the configured zone, '' for none."""
    return func.coalesce(func.to_char(func.timezone(bindparam("tz", type_=Text), column), "YYYYMMDDHH24MISS"), "")


def _or(column, default):
    """``value or default`` of the builders: NULL and the empty value give the default."""
    empty = "" if isinstance(default, str) else 0
    return func.coalesce(func.nullif(column, empty), default if not isinstance(default, str) else _s(default))


def _record_pairs() -> list[tuple[str, object]]:
    accepted = _wire(_R.c.completed_at)
    return [
        ("projectNo", _R.c.national_number), ("serviceNumber", _or(_R.c.service_number, 1)),
        ("taskCode", func.coalesce(_I.c.implementation_code, _s(""))),
        ("taskHandleItem", func.coalesce(_I.c.handle_item_code, _s(""))), ("taskName", _I.c.name),
        ("deptCode", func.coalesce(_D.c.credit_code, _s(""))), ("deptName", _D.c.name),
        ("areaCode", func.coalesce(func.nullif(_H.c.area_code, ""), func.nullif(_D.c.area_code, ""), _s(""))),
        ("proStatus", _s("3")), ("acceptDate", accepted), ("userProp", _or(_R.c.applicant_type, "1")),
    ]


def _reasons():
    """``",".join(str(r) for r in reasons)`` in SQL, in the list's order."""
    elements = (func.json_array_elements_text(_E.c.reasons).table_valued("value", with_ordinality="n")
                .render_derived(name="reason"))
    joined = (select(func.string_agg(elements.c.value, aggregate_order_by(literal_column("','"), elements.c.n)))
              .select_from(elements).scalar_subquery())
    # Most ratings (the good ones) have none: the subquery runs only for a list with something in it.
    return case((func.json_typeof(_E.c.reasons) != "array", _s("")), (func.json_array_length(_E.c.reasons) == 0, _s("")),
                else_=func.coalesce(joined, _s("")))


def _pairs(kind: str) -> list[tuple[str, object]]:
    source = bindparam("source", type_=Text)
    if kind == "record":
        accepted = _wire(_R.c.completed_at)
        return _record_pairs() + [
            ("serviceName", _s("办结")), ("taskType", func.coalesce(_I.c.item_type, _s(""))),
            ("resultDate", accepted), ("promiseDay", _or(_I.c.promised_days, 0)),
            ("projectType", _or(_I.c.record_type, "2")), ("certKey", _s("")), ("serviceTime", accepted),
            ("dataSource", source)]
    channel = case(*[(_E.c.channel == name, code) for name, code in CHANNEL_CODES.items()], else_=5)
    return _record_pairs() + [
        ("assessNumber", cast(literal(1), Integer)), ("certKey", _s("")), ("pf", channel),
        ("satisfaction", _E.c.level), ("evalDetail", _reasons()), ("writingEvaluation", _s("")),
        ("assessTime", _wire(_E.c.rated_at)), ("evaversion", _or(_E.c.reasons_version, 1)),
        ("dataSource", source)]


def _item(kind: str, message_id):
    """The item as sent (``messageId`` first, then the payload) as compact JSON text, written
    the way :func:`feedback.exchange.adapters.national_json.canonical_json` writes it (PostgreSQL's
    ``to_json`` escapes a string as Python's ``json.dumps(…, ensure_ascii=False)`` does), so
    the adapter sends and signs it as it is. ``json_build_object`` would put a space on each side
    of every colon."""
    parts = [literal_column("""'{"messageId":'"""), func.to_json(message_id)]
    for key, expr in _pairs(kind):
        parts += [literal_column(f"""',"{key}":'"""), func.coalesce(cast(func.to_json(expr), Text), _s("null"))]
    parts.append(literal_column("'}'"))
    return func.concat(*parts)


def _claim_statement(kind: str, due, resume: bool, limit: int):
    """Lock up to ``limit`` due messages of ``kind`` (``due``: pusher._DUE, the id query),
    skipping those another pusher holds, and return them (attempts counting this one) with
    their payloads when ``kind`` has them in SQL (None for a subject that is gone).

    ``resume``: only after (``:after_at``, ``:after_id``) in the due index's order, where the
    run's previous batch of this lane and kind ended. The rows before it were just stored and
    their index entries are dead until a vacuum; a scan from the start would step over all of
    them again (the first scan after each batch cost twice a resumed one)."""
    picked = (due.with_only_columns(_T.c.id, _T.c.message_id, _T.c.subject_id, _T.c.next_attempt_at,
                                    (_T.c.attempts + 1).label("attempts"))
              .order_by(None).order_by(_T.c.next_attempt_at, _T.c.id).with_for_update(skip_locked=True, of=_T)
              .limit(literal_column(str(int(limit)))))  # written out: the plan is made for it
    if resume:
        picked = picked.where(tuple_(_T.c.next_attempt_at, _T.c.id) > tuple_(
            bindparam("after_at", type_=_T.c.next_attempt_at.type), bindparam("after_id", type_=Integer)))
    if kind not in KINDS:
        return picked
    claimed = picked.cte("claimed")
    if kind == "record":
        joined = claimed.outerjoin(_R, _R.c.id == claimed.c.subject_id)
        extra = [literal_column("NULL").label("comment"), literal_column("NULL").label("citizen_name"),
                 literal_column("NULL").label("channel")]
        present = _R.c.id
    else:
        joined = claimed.outerjoin(_E, _E.c.id == claimed.c.subject_id).outerjoin(
            _R, _R.c.id == _E.c.service_record_id)
        extra = [_E.c.comment, _R.c.citizen_name, _E.c.channel]
        present = _E.c.id
    joined = (joined.outerjoin(_I, _I.c.id == _R.c.service_item_id).outerjoin(_D, _D.c.id == _R.c.department_id)
              .outerjoin(_H, _H.c.id == _R.c.hall_id))
    item = case((present.is_not(None), _item(kind, claimed.c.message_id)), else_=None).label("item")
    return (select(claimed.c.id, claimed.c.message_id, claimed.c.subject_id, claimed.c.next_attempt_at,
                   claimed.c.attempts, item, *extra)
            .select_from(joined).order_by(claimed.c.id))


_CLAIMS: dict[tuple[str, bool, int], tuple[str, object]] = {}


def _statement(kind: str, due, resume: bool, limit: int, dialect) -> tuple[str, object]:
    """The claim statement compiled once for ``dialect``: its SQL text and the compiled form
    (whose ``construct_params`` gives the parameters, the statement's own literals included)."""
    compiled = _CLAIMS.get((kind, resume, limit))
    if compiled is None:
        statement = _claim_statement(kind, due, resume, limit).compile(dialect=dialect)
        compiled = _CLAIMS[kind, resume, limit] = (str(statement), statement)
    return compiled


def _fetch(connection, kind: str, due, resume: bool, params: dict) -> list:
    """Run a claim on ``connection``'s driver connection, in the transaction the SQLAlchemy
    connection holds (begun here, so its commit and rollback end it): rows as named tuples.
    Straight through psycopg: SQLAlchemy's result rows cost a third of a claim's time in
    Python (a backfill claims ten thousand batches); the statement is prepared by the server
    after a few runs, as SQLAlchemy's would be. No column here needs a result type's processing:
    psycopg gives ``timestamptz`` as an aware datetime."""
    if not connection.in_transaction():
        connection.begin()
    sql, compiled = _statement(kind, due, resume, int(params["limit"]), connection.dialect)
    cursor = connection.connection.driver_connection.cursor(row_factory=namedtuple_row)
    try:
        cursor.execute(sql, compiled.construct_params(params), prepare=True)
        return cursor.fetchall()
    finally:
        cursor.close()


class Claims:
    """The batches of one push run on PostgreSQL. A batch is claimed by locking its rows
    (``FOR UPDATE SKIP LOCKED``) in a transaction of its own, held while its request is under
    way and ended by the statement that stores its outcomes: no claim is written, and a pusher
    that dies mid-batch leaves nothing behind (its locks end with its connection; the rows were
    never changed). Four connections serve in turn: one holds the batch under way, up to two
    the batches whose outcomes are being stored (one after another, by the store thread), and
    the next batch is claimed on the fourth, so a slow store does not hold up the next claim;
    a connection is free again once its batch is stored (:meth:`stored`) or given back
    (:meth:`give_back`), and a claim waits for a free one."""

    CONNECTIONS = 4

    def __init__(self) -> None:
        self.connections = [db.engine.connect() for _ in range(self.CONNECTIONS)]
        # The run's statements are the same ten thousand times over, with values that do not
        # change their plan (the batch size is written into the claim): planned once, not at
        # every execution (a claim's plan took a millisecond of PostgreSQL's time, a fifth of
        # its execution). Reset before the connections go back to the pool (close).
        for connection in self.connections:
            connection.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            connection.commit()
        self.free: queue.SimpleQueue = queue.SimpleQueue()
        for connection in self.connections:
            self.free.put(connection)
        self.after: dict[tuple[str, str], tuple] = {}  # (lane, kind) → where its last batch ended

    def take(self, kind: str, due, params: dict):
        """Claim a batch of ``kind`` (params: due_lane, due_kind, now, limit, tz, source):
        (connection, rows (id, message_id, subject_id, attempts) by id, payloads by message id
        (the item's JSON text as PostgreSQL wrote it, or a dict where Python filled a field in)
        and what the ledger keeps of each request by message id — both None when a SQL payload
        is not this kind's), or None when nothing is ready.

        The stored request is the item's JSON text as PostgreSQL wrote it, for every item
        without free text; a rating's comment is masked here and its request written by
        :func:`feedback.exchange.mapping.stored_request` (the text's length, not the text)."""
        connection, key = self.free.get(), (params["due_lane"], kind)  # waits while all are busy
        rows = []
        if key in self.after:  # after the last batch; then, if nothing is left there, from the start
            after_at, after_id = self.after.pop(key)
            rows = _fetch(connection, kind, due, True, {**params, "after_at": after_at, "after_id": after_id})
        if not rows:
            rows = _fetch(connection, kind, due, False, params)
        if not rows:
            self.give_back(connection)
            return None
        if kind not in KINDS:
            self.after[key] = max((row.next_attempt_at, row.id) for row in rows)
            return connection, rows, None, None
        built: dict[str, dict | str | None] = {}
        stored: dict[str, str] = {}
        last = (rows[0].next_attempt_at, 0)
        # Rows unpacked as tuples (a Row's attributes cost a lookup each, on 2 M rows of a 补报).
        for row_id, message_id, _, next_at, _, item, comment, citizen_name, channel in rows:
            if (next_at, row_id) > last:
                last = (next_at, row_id)
            if item is None:
                built[message_id] = None
            elif comment or channel == "default":  # the fields Python fills in
                payload = built[message_id] = _load(item)
                del payload["messageId"]
                if channel == "default":
                    payload["defaultEval"] = 1
                if comment:
                    payload["writingEvaluation"] = masked_text(comment, [citizen_name])
            else:  # sent as PostgreSQL wrote it, and kept so
                built[message_id] = stored[message_id] = item
        self.after[key] = last
        return connection, rows, built, stored

    def give_back(self, connection) -> None:
        """End a batch's transaction without storing anything (its rows unlocked, unchanged)."""
        connection.rollback()
        self.free.put(connection)

    def stored(self, connection) -> None:
        """The batch of ``connection`` is stored (committed): the connection is free."""
        self.free.put(connection)

    def close(self) -> None:
        """End the run: whatever was not stored is given back (rolled back), the connections closed."""
        for connection in self.connections:
            if connection.closed:
                continue
            try:
                connection.rollback()
                connection.exec_driver_sql("RESET plan_cache_mode")
                connection.commit()
            except Exception:  # noqa: BLE001 - a broken connection: the pool must not keep it
                connection.invalidate()
            finally:
                connection.close()


_SET = """
   SET status = v.status, next_attempt_at = v.next_attempt_at, remote_id = v.remote_id,
       request_id = CASE WHEN v.sent THEN {request} ELSE m.request_id END, last_request = NULL,
       last_answer = v.last_answer, last_error = v.last_error,
       acknowledged_at = v.acknowledged_at, attempts = m.attempts + 1, last_attempt_at = :now, claim = NULL
  FROM (SELECT CAST(a->>0 AS integer) AS _id, 'acknowledged' AS status, CAST(NULL AS timestamptz) AS next_attempt_at,
               a->>1 AS remote_id, CAST(NULL AS text) AS last_answer, CAST(NULL AS text) AS last_error,
               CAST(:now AS timestamptz) AS acknowledged_at, true AS sent
          FROM json_array_elements(CAST(:acks AS json)) AS a
        UNION ALL
        SELECT * FROM json_to_recordset(CAST(:rows AS json))
               AS o(_id integer, status text, next_attempt_at timestamptz, remote_id text, last_answer text,
                    last_error text, acknowledged_at timestamptz, sent boolean)) AS v
 WHERE m.id = v._id"""
_APPLY = text("UPDATE exchange_messages AS m" + _SET.format(request="NULL"))
# The request stored in the same statement (and round trip) as the outcomes it brought.
_APPLY_SENT = text("""
WITH request AS (INSERT INTO exchange_requests (kind, lane, sent_at, size, body)
                 VALUES (:kind, :lane, :sent_at, :size, :body) RETURNING id)
UPDATE exchange_messages AS m""" + _SET.format(request="(SELECT id FROM request)"))

_load = json.JSONDecoder().decode
_ROWS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=datetime.isoformat).encode


def apply(connection, acks: list[tuple[int, str | None]], rows: list[dict], request: dict | None,
          now: datetime) -> None:
    """Store a batch's outcomes and its request (kind, lane, sent_at, size, body; None when
    nothing was sent) on the connection holding its locks, in one statement, and commit:
    ``acks`` (id, remote id) for the acknowledged messages (most of them; acknowledged at
    ``now``), ``rows`` (pusher._row dicts) for the others. Both travel as JSON text: psycopg
    writes arrays of text element by element in Python, JSON is one C call, and a pair per
    acknowledged message is a fraction of a row object to write."""
    if acks or rows:
        connection.execute(_APPLY if request is None else _APPLY_SENT,
                           {"acks": _ROWS(acks), "rows": _ROWS(rows), "now": now, **(request or {})})
    connection.commit()
