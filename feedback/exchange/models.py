"""The exchange ledger: one row per reportable event, with its delivery to the province."""
from __future__ import annotations

import json
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Index, Integer, SmallInteger, String, Text, select, text
from sqlalchemy.orm import Mapped, mapped_column

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db

# The statuses of a message that is not done with (pending, sending, or failed until re-pushed):
# the partial indexes on PostgreSQL hold these (migration 0030).
OPEN_STATUSES = "status IN ('pending', 'sending', 'failed')"
STATUSES = ("pending", "sending", "acknowledged", "failed", "skipped")
STATUS_LABELS = {"pending": "待上报", "sending": "上报中", "acknowledged": "已确认", "failed": "失败",
                 "skipped": "不上报"}
KINDS = ("record", "evaluation", "evaluation_invalidated", "complaint", "rectification", "supervision",
         "supervision_order")
KIND_LABELS = {"record": "办件", "evaluation": "评价", "evaluation_invalidated": "评价作废",
               "complaint": "投诉", "rectification": "整改反馈", "supervision": "督办/预警",
               "supervision_order": "督办单"}


class ExchangeMessage(db.Model):
    """上报消息: one event to report upward (a record, a rating, a rectification step …).

    Written in the transaction of its cause. ``subject_key`` names the event locally
    (``EVA-123``) and is unique, so a backfill never queues it twice; ``message_id`` (the
    data source plus the key) is the remote's dedupe key, so a resend after a lost answer is
    recognised there. The row holds no personal data: the payload is built from the subject
    at send time and what is stored of the request is masked.
    """

    __tablename__ = "exchange_messages"
    __table_args__ = (
        # The id last: a push run resumes its scan after the last batch it claimed (fastpath.Claims).
        # On PostgreSQL the due and parent indexes hold the open messages only: an acknowledged
        # one (nearly all of them, in time) costs its outcome's UPDATE two index entries fewer,
        # and the indexes stay the size of the backlog. The queries that use them say the status
        # (pending, sending or failed), which PostgreSQL needs to pick a partial index. SQLite
        # would not see that ``status = 'pending'`` implies the predicate: it keeps them whole.
        Index("ix_exchange_messages_due", "status", "lane", "kind", "next_attempt_at", "id",
              postgresql_where=text(OPEN_STATUSES)),
        Index("ix_exchange_messages_day", "business_date", "kind", "status"),
        Index("ix_exchange_messages_depends_on", "depends_on",
              postgresql_where=text(f"depends_on IS NOT NULL AND {OPEN_STATUSES}"),
              sqlite_where=text("depends_on IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject_key: Mapped[str] = mapped_column(String(60), unique=True)
    message_id: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    subject_id: Mapped[int] = mapped_column(Integer)
    lane: Mapped[str] = mapped_column(String(10), default="batch")  # fast | batch
    depends_on: Mapped[str | None] = mapped_column(String(60))  # subject_key sent first (indexed above)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim: Mapped[str | None] = mapped_column(String(32))  # the push run holding it while 'sending'
    remote_id: Mapped[str | None] = mapped_column(String(100))
    # The request that last carried this message: its batch in exchange_requests (where a
    # push stores each request once), or the item itself (masked) in rows written before.
    request_id: Mapped[int | None] = mapped_column(Integer)
    last_request: Mapped[str | None] = mapped_column(Text)  # masked
    last_answer: Mapped[str | None] = mapped_column(Text)  # none once acknowledged (the remote id says it)
    last_error: Mapped[str | None] = mapped_column(String(300))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_at: Mapped[datetime] = mapped_column(UTCDateTime)
    business_date: Mapped[date] = mapped_column(Date)
    produced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    backfilled: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def request_text(self) -> str | None:
        """What was last sent of this message (masked): its item, out of its batch's request."""
        if self.last_request or self.request_id is None:
            return self.last_request
        body = db.session.scalar(select(ExchangeRequest.body).where(ExchangeRequest.id == self.request_id))
        for item in json.loads(body or "[]"):
            if item.get("messageId") == self.message_id:
                return json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        return None

    @property
    def answer_text(self) -> str | None:
        """The remote's last answer about this message."""
        if self.last_answer or self.status != "acknowledged":
            return self.last_answer
        return json.dumps({"status": "acknowledged", "remoteId": self.remote_id}, ensure_ascii=False)

    @property
    def status_label(self) -> str:
        """The status in Chinese."""
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def kind_label(self) -> str:
        """The kind in Chinese."""
        return KIND_LABELS.get(self.kind, self.kind)


class ExchangeRequest(db.Model):
    """One request of a push run, stored once for the messages it carried (their
    ``request_id``): the items as sent, masked as :func:`feedback.exchange.mapping.stored_request`
    keeps them (free text by its length, no personal data), in a JSON array. A 补报 of millions
    of messages stores each request's text once, not once per message."""

    __tablename__ = "exchange_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    lane: Mapped[str] = mapped_column(String(10))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    size: Mapped[int] = mapped_column(Integer)  # messages carried
    body: Mapped[str] = mapped_column(Text)


class ExchangeControl(db.Model):
    """The one row (id 1) holding whether pushing is paused, by whom and why."""

    __tablename__ = "exchange_control"

    id: Mapped[int] = mapped_column(primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(200), default="")
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(80), default="")


class ExchangeReconciliation(db.Model):
    """对账: one day's local counts beside what the province acknowledged, as checked."""

    __tablename__ = "exchange_reconciliations"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    local_count: Mapped[int] = mapped_column(Integer)
    produced: Mapped[int] = mapped_column(Integer)
    acknowledged: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    matches: Mapped[bool] = mapped_column(Boolean)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
