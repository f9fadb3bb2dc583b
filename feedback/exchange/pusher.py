"""Pushing the ledger upward: claim a batch, send it through the adapter, record each outcome.

Order: the fast lane (bad ratings and their records) before the batch lane; within a lane,
records before ratings before the rest; a message whose parent (``depends_on``) is not yet
acknowledged waits. Two pushers never send the same message:
- on PostgreSQL a batch is claimed by locking its rows (``FOR UPDATE SKIP LOCKED``) in a
  transaction of its own that ends when its outcomes are stored (fastpath.Claims); a pusher
  killed mid-batch leaves its rows pending, untouched, and the next run sends them again;
- elsewhere (SQLite) by one conditional UPDATE to 'sending' with a lease, committed before the
  request; a pusher killed mid-batch leaves rows 'sending' whose lease runs out (:func:`reclaim`).
Either way a batch sent again carries the same ``message_id``, which the remote dedupes on.
While one batch's request is under way the next is claimed (:func:`push`).
"""
from __future__ import annotations

import json
import logging
import random
import time
import uuid
from typing import NamedTuple
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, bindparam, exists, func, insert, literal_column, select, update
from sqlalchemy.orm import aliased

from feedback.exchange import fastpath
from feedback.exchange.adapters import make_adapter
from feedback.exchange.adapters.base import Adapter, Delivery, Outgoing, TransientError
from feedback.exchange.mapping import payloads, stored_request
from feedback.exchange.models import ExchangeControl, ExchangeMessage, ExchangeRequest
from feedback.extensions import db

log = logging.getLogger("feedback.exchange")

ORDER = ("record", "evaluation", "evaluation_invalidated", "complaint", "rectification", "supervision",
         "supervision_order")
LANES = ("fast", "batch")
BLOCKED = "所属办件或评价上报失败，待其重推后一并上报"
GONE = "本地数据已不存在，无法上报"


def is_paused() -> bool:
    """Whether an operator paused pushing (the ledger still fills)."""
    return bool(db.session.scalar(select(ExchangeControl.paused).where(ExchangeControl.id == 1)))


def reclaim(now: datetime) -> int:
    """Put back to pending the messages whose sending lease ran out (their pusher died)."""
    done = db.session.execute(update(ExchangeMessage).where(
        ExchangeMessage.status == "sending", ExchangeMessage.next_attempt_at <= now).values(
        status="pending", claim=None, last_error="上报中断（进程退出或超时），重新排队")).rowcount or 0
    db.session.commit()
    return done


def block_orphans(now: datetime) -> int:
    """Fail the pending messages whose parent failed for good (they would wait forever);
    re-pushing the parent brings them back (:func:`feedback.exchange.service.repush`)."""
    parent = aliased(ExchangeMessage)
    done = db.session.execute(update(ExchangeMessage).where(
        ExchangeMessage.status == "pending", ExchangeMessage.depends_on.is_not(None),
        exists().where(parent.subject_key == ExchangeMessage.depends_on, parent.status == "failed"),
    ).values(status="failed", last_error=BLOCKED, next_attempt_at=None, last_attempt_at=now)
    .execution_options(synchronize_session=False)).rowcount or 0
    db.session.commit()
    return done


def promote_parents() -> int:
    """A pending message of the fast lane takes its still-pending parent with it, as a bad
    rating takes its record when it is given (:func:`feedback.exchange.ledger.rating_given`);
    a 补报 queues them apart. Otherwise each bad rating of a backlog would wait for its record's
    turn in the batch lane and then go up alone, one request per rating."""
    child = aliased(ExchangeMessage)
    parents = select(ExchangeMessage.id).where(
        ExchangeMessage.status == "pending", ExchangeMessage.lane == "batch",
        ExchangeMessage.subject_key.in_(select(child.depends_on).where(
            child.status == "pending", child.lane == "fast", child.depends_on.is_not(None)))
    ).with_for_update(skip_locked=True, of=ExchangeMessage)  # one another pusher is sending: no need
    done = db.session.execute(update(ExchangeMessage).where(ExchangeMessage.id.in_(parents.scalar_subquery()))
                              .values(lane="fast").execution_options(synchronize_session=False)).rowcount or 0
    db.session.commit()
    return done


_TABLE = ExchangeMessage.__table__
_PARENT = _TABLE.alias("parent")
# The statements of each batch are Core, run on the session's connection (in its transaction)
# without the ORM layer. The due messages of one lane and kind, oldest due first, whose parent (if any) is
# acknowledged. Built once: a push run asks it several times per batch. The parent's status is
# a correlated scalar subquery, one index lookup per candidate row (an EXISTS under OR becomes
# a hashed subplan reading every acknowledged message on each call). The ORDER BY is the due
# index's own order: adding the id made PostgreSQL sort every due message of the kind for each
# batch (a backfill's messages share one next_attempt_at); ties come in index order.
# 'pending' is written into the SQL, not bound: PostgreSQL's partial due index (models.py)
# serves only a statement whose status it can read at planning time, prepared ones included.
_PENDING = literal_column("'pending'")
_DUE = (select(_TABLE.c.id)
        .where(_TABLE.c.status == _PENDING, _TABLE.c.lane == bindparam("due_lane"),
               _TABLE.c.kind == bindparam("due_kind"),
               _TABLE.c.next_attempt_at <= bindparam("now"),
               _TABLE.c.depends_on.is_(None) | (select(_PARENT.c.status).where(
                   _PARENT.c.subject_key == _TABLE.c.depends_on).scalar_subquery() == "acknowledged"))
        .order_by(_TABLE.c.next_attempt_at).limit(bindparam("limit")))


_ANY_DUE = (select(_TABLE.c.id).where(_TABLE.c.status == _PENDING, _TABLE.c.lane == bindparam("lane"),
                                      _TABLE.c.kind == bindparam("kind"), _TABLE.c.next_attempt_at <= bindparam("now"))
            .limit(1))


def _claim(ids: list[int], now: datetime, token: str, lease: datetime) -> list:
    """Claim the still-pending ones of ``ids`` (one conditional UPDATE, committed); the
    claimed rows (id, message_id, subject_id, attempts), by id."""
    claimed = db.session.connection().execute(
        update(_TABLE).where(_TABLE.c.id.in_(ids), _TABLE.c.status == "pending")
        .values(status="sending", claim=token, attempts=_TABLE.c.attempts + 1, next_attempt_at=lease,
                last_attempt_at=now)
        .returning(_TABLE.c.id, _TABLE.c.message_id, _TABLE.c.subject_id, _TABLE.c.attempts)).all()
    db.session.commit()
    return sorted(claimed, key=lambda row: row.id)


def backoff(attempts: int) -> timedelta:
    """The wait before the next try: doubling from EXCHANGE_RETRY_BASE_SECONDS up to
    EXCHANGE_RETRY_MAX_SECONDS, with jitter (so a recovered province is not hit by every
    pusher's backlog in the same second)."""
    cfg = current_app.config
    ceiling = min(int(cfg["EXCHANGE_RETRY_BASE_SECONDS"]) * 2 ** max(attempts - 1, 0),
                  int(cfg["EXCHANGE_RETRY_MAX_SECONDS"]))
    return timedelta(seconds=ceiling * (0.5 + random.random() / 2))


_APPLY = (update(_TABLE)
          .where(_TABLE.c.id == bindparam("_id"), _TABLE.c.claim == bindparam("_claim"))
          .values(status=bindparam("status"), next_attempt_at=bindparam("next_attempt_at"),
                  remote_id=bindparam("remote_id"), request_id=func.coalesce(bindparam("request_id"), _TABLE.c.request_id),
                  last_request=None, last_answer=bindparam("last_answer"), last_error=bindparam("last_error"),
                  acknowledged_at=bindparam("acknowledged_at"), claim=None))


_ANSWER = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(…, ensure_ascii=False), one encoder


def _retry_or_fail(msg, now: datetime, reason: str) -> tuple[str, datetime | None, str]:
    if msg.attempts >= int(current_app.config["EXCHANGE_MAX_ATTEMPTS"]):
        return "failed", None, f"重试 {msg.attempts} 次仍未成功：{reason}"[:300]
    return "pending", now + backoff(msg.attempts), reason[:300]


@dataclass
class Batch:
    """A claimed batch: its kind, the claim token, the claimed rows (id, message_id, subject_id,
    attempts) and each message's payload by message id: a dict, or on PostgreSQL the item's JSON text
    (fastpath.Claims.take); None: its subject is gone."""

    lane: str
    kind: str
    token: str | None  # the claim written by _claim (None: row locks on ``connection``)
    messages: list
    built: dict
    connection: Connection | None = None  # PostgreSQL: the transaction holding the rows' locks
    stored: dict = field(default_factory=dict)  # what the ledger keeps of a request, when already written


def _take(now: datetime, limit: int, spent: set, claims: fastpath.Claims | None) -> Batch | None:
    """Claim the next batch, with its payloads built: the first lane and kind, in order, with
    due messages whose parents are acknowledged; on PostgreSQL by row locks (``claims``),
    elsewhere by the conditional UPDATE of :func:`_claim`. A lane and kind found with nothing
    due at all goes into ``spent`` and is not asked again this run: with ``now`` fixed, nothing
    becomes due during a run, only ready (its parent acknowledged); what another process queues
    meanwhile waits for the next run."""
    cfg = current_app.config
    for lane in LANES:
        for kind in ORDER:
            if (lane, kind) in spent:
                continue
            due = {"due_lane": lane, "due_kind": kind, "now": now, "limit": limit}
            if claims is not None:
                taken = claims.take(kind, _DUE, {**due, "tz": cfg.get("TIMEZONE", "Asia/Shanghai"),
                                                 "source": cfg["EXCHANGE_DATA_SOURCE"]})
                if taken is not None:
                    connection, messages, built, stored = taken
                    return Batch(lane, kind, None, messages, payloads(kind, messages) if built is None else built,
                                 connection, stored or {})
            elif ids := sorted(db.session.connection().scalars(_DUE, due)):
                token = uuid.uuid4().hex
                lease = now + timedelta(seconds=int(cfg["EXCHANGE_SENDING_LEASE_SECONDS"]))
                messages = _claim(ids, now, token, lease)
                return Batch(lane, kind, token, messages, payloads(kind, messages))
            if db.session.connection().scalar(_ANY_DUE, {"lane": lane, "kind": kind, "now": now}) is None:
                spent.add((lane, kind))
    return None


def _release(batch: Batch, claims: fastpath.Claims | None) -> None:
    """Give back a claimed batch that was never sent (the run stopped before it)."""
    if batch.connection is not None:
        claims.give_back(batch.connection)
        return
    db.session.execute(update(_TABLE).where(_TABLE.c.claim == batch.token).values(
        status="pending", claim=None, attempts=_TABLE.c.attempts - 1, next_attempt_at=_TABLE.c.last_attempt_at))
    db.session.commit()


class Sent(NamedTuple):
    """What became of a batch's request: the messages sent, and the remote's answer or error."""

    outgoing: list[Outgoing]
    delivery: Delivery | None
    error: TransientError | None

    @property
    def refused(self) -> bool:
        """Whether the remote failed as a whole (the run stops)."""
        return bool(self.outgoing) and self.error is not None


def _send(app, adapter: Adapter, batch: Batch) -> Sent:
    """The request of one batch (run in the sender thread: no database work here)."""
    outgoing = [Outgoing(m.message_id, batch.kind, text=built) if isinstance(built, str)
                else Outgoing(m.message_id, batch.kind, built)
                for m in batch.messages if (built := batch.built.get(m.message_id)) is not None]
    if not outgoing:
        return Sent(outgoing, None, None)
    with app.app_context():
        try:
            return Sent(outgoing, adapter.send(batch.kind, outgoing), None)
        except TransientError as exc:
            return Sent(outgoing, None, exc)


def _record(batch: Batch, sent: Sent, now: datetime, summary: dict, claims: fastpath.Claims | None = None) -> None:
    """Store each outcome of a sent batch, and the request once (exchange_requests): each
    message it carried points at it."""
    outgoing, delivery, error = sent
    token, rows, kept, acks = batch.token, [], [], []  # acks: (id, remote id) of the acknowledged
    for msg in batch.messages:
        if batch.built.get(msg.message_id) is None:
            rows.append(_row(msg, token, "failed", None, None, GONE, None, sent=False))
            summary["failed"] += 1
    if outgoing:
        by_id = {m.message_id: m for m in batch.messages}
        summary["requests"] += 1
        outcomes = {o.message_id: o for o in delivery.outcomes} if delivery else {}
        for item in outgoing:
            msg = by_id[item.message_id]
            kept.append(batch.stored.get(item.message_id)
                        or stored_request({"messageId": item.message_id, **item.payload}))
            outcome = outcomes.get(item.message_id)
            if outcome is not None and outcome.status == "acknowledged":
                # The answer is the remote id (ExchangeMessage.answer_text): nothing more to keep.
                acks.append((msg.id, outcome.remote_id))
            elif outcome is not None and outcome.status == "rejected":
                reason = f"省平台拒收：{outcome.reason or '未说明原因'}"
                rows.append(_row(msg, token, "failed", None, None, reason,
                                 _ANSWER({"status": "rejected", "reason": outcome.reason})))
                summary["rejected"] += 1
            else:
                reason = error.reason if error else (outcome.reason if outcome else "应答中没有这条消息")
                status, next_at, reason = _retry_or_fail(msg, now, reason)
                answer = (error.answer if error else _ANSWER({"status": "retry"}))
                rows.append(_row(msg, token, status, next_at, None, reason, (answer or "")[:2000]))
                summary["failed" if status == "failed" else "retry"] += 1
    summary["acknowledged"] += len(acks)
    request = {"kind": batch.kind, "lane": batch.lane, "sent_at": now, "size": len(kept),
               "body": "[" + ",".join(kept) + "]"} if kept else None
    if batch.connection is not None:
        fastpath.apply(batch.connection, acks, rows, request, now)
        claims.stored(batch.connection)
        return
    by_id = {m.id: m for m in batch.messages}
    rows += [_row(by_id[i], token, "acknowledged", None, remote_id, None, None, acknowledged_at=now)
             for i, remote_id in acks]
    connection = db.session.connection()
    if request is not None:
        request_id = connection.execute(insert(ExchangeRequest).values(request).returning(ExchangeRequest.id)).scalar()
        for row in rows:
            if row["sent"]:
                row["request_id"] = request_id
    if rows:
        connection.execute(_APPLY, rows)
    db.session.commit()


def _row(msg, token, status, next_at, remote_id, error, answer, acknowledged_at=None, sent: bool = True) -> dict:
    """One outcome as _APPLY and fastpath.apply take it (``sent``: carried by the batch's request)."""
    return {"_id": msg.id, "_claim": token, "status": status, "next_attempt_at": next_at, "remote_id": remote_id,
            "last_answer": answer, "last_error": error, "acknowledged_at": acknowledged_at, "sent": sent,
            "request_id": None}


class _Stores:
    """Where the outcomes of sent batches are stored: in the calling thread (the session's
    connection, SQLite), or on PostgreSQL in a thread of its own, one batch after another, each
    on the connection holding its locks. An error of a store is raised by the next call."""

    def __init__(self, app, now: datetime, summary: dict, claims: fastpath.Claims | None) -> None:
        self.app, self.now, self.summary, self.claims = app, now, summary, claims
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="exchange-store") if claims is not None else None
        self.futures: list = []
        self.fast = False  # a batch of the fast lane is among those being stored

    def record(self, batch: Batch, sent: Sent) -> None:
        """Store ``sent``'s outcomes (now, or queued behind the stores under way)."""
        self._check()
        self.fast = self.fast or batch.lane == "fast"
        if self.pool is None:
            _record(batch, sent, self.now, self.summary)
            return
        self.futures.append(self.pool.submit(self._store, batch, sent))

    def _store(self, batch: Batch, sent: Sent) -> None:
        with self.app.app_context():
            try:
                _record(batch, sent, self.now, self.summary, self.claims)
            except BaseException:
                try:
                    self.claims.give_back(batch.connection)  # its locks end; the rows are sent again later
                except Exception:  # noqa: BLE001 - a broken connection: its locks ended with it
                    log.exception("exchange push: a batch's connection could not be given back")
                raise

    def busy(self) -> bool:
        """Whether a store is under way or queued."""
        self._check()
        return bool(self.futures)

    def wait(self) -> None:
        """Wait until every store so far is done (raising the first error)."""
        while self.futures:
            self.futures.pop(0).result()
        self.fast = False

    def _check(self) -> None:
        while self.futures and self.futures[0].done():
            self.futures.pop(0).result()

    def close(self) -> None:
        """Wait for the stores under way and end the thread."""
        if self.pool is not None:
            try:
                self.wait()
            finally:
                self.pool.shutdown(wait=True)


def push(now: datetime, *, adapter: Adapter | None = None, budget_seconds: float | None = None,
         max_batches: int | None = None) -> dict:
    """Send what is due, fast lane first, until nothing is due or the run's time budget
    (EXCHANGE_RUN_SECONDS of real time) is spent. Returns counts by outcome."""
    cfg = current_app.config
    summary = {"reclaimed": reclaim(now), "blocked": block_orphans(now), "promoted": promote_parents(),
               "requests": 0, "acknowledged": 0, "rejected": 0, "retry": 0, "failed": 0, "paused": False,
               "adapter": cfg["EXCHANGE_ADAPTER"]}
    if is_paused():
        summary["paused"] = True
        return summary
    own = adapter is None
    adapter = adapter or make_adapter(cfg)
    if not adapter.sends:
        return summary
    budget = float(cfg["EXCHANGE_RUN_SECONDS"] if budget_seconds is None else budget_seconds)
    size = int(cfg["EXCHANGE_BATCH_SIZE"])
    started, batches, spent = time.monotonic(), 0, set()
    app = current_app._get_current_object()
    claims = fastpath.Claims() if fastpath.applies() else None
    inflight = None  # (batch, future): the request under way in the sender thread
    # While one batch's request is under way (sender thread), its predecessor's outcomes are
    # stored and the next batch is claimed and built. One request at a time, and a rating is
    # claimed only once its record's acknowledgement is committed (the claim does not see it
    # before), so the order holds; behind a batch of the fast lane nothing is claimed ahead, so
    # its bad ratings are not overtaken by the batch lane. On PostgreSQL the outcomes are
    # stored by a third thread on the batch's own connection, so the database stores one batch
    # while it claims the next (two backends at work), and this thread waits for neither.
    stores = _Stores(app, now, summary, claims)
    with ThreadPoolExecutor(1, thread_name_prefix="exchange-send") as sender:
        try:
            while True:
                more = time.monotonic() - started < budget and (max_batches is None or batches < max_batches)
                ahead = inflight is None or inflight[0].lane == "batch"
                if stores.fast:  # the fast lane's ratings wait for their records' acknowledgements
                    stores.wait()
                storing = stores.busy()
                batch = _take(now, size, spent, claims) if more and ahead else None
                if inflight is None:
                    if batch is None:
                        if more and storing:  # what is being stored may make a rating ready: once more
                            stores.wait()
                            continue
                        break
                    inflight, batches = (batch, sender.submit(_send, app, adapter, batch)), batches + 1
                    continue
                done, future = inflight
                inflight, sent = None, future.result()
                if batch is not None and not sent.refused:  # the next request goes while this one is stored
                    inflight, batch, batches = (batch, sender.submit(_send, app, adapter, batch)), None, batches + 1
                stores.record(done, sent)
                if sent.refused:
                    if batch is not None:
                        _release(batch, claims)
                    summary["stopped"] = "省平台暂时无法送达，本轮停止，稍后重试"
                    break
        finally:
            if inflight is not None:  # an error in this thread: still store what the remote said
                db.session.rollback()
                try:
                    stores.record(inflight[0], inflight[1].result())
                except Exception:  # the first error is the one to raise; the lease covers the rest
                    log.exception("exchange push: the outcomes of the batch under way were not stored")
            try:
                stores.close()
            finally:
                if claims is not None:
                    claims.close()
                if own:
                    adapter.close()
    summary["blocked"] += block_orphans(now)  # behind a refusal of this run: shown failed at once
    if summary["rejected"] or summary["failed"]:
        log.warning("exchange push: %s", summary)
    return summary
