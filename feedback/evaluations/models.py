"""Service records (办件), their evaluations (评价) and the reason code list (评价指标)."""
from __future__ import annotations

from datetime import datetime

from flask import current_app, has_app_context
from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.directory.national import national_number_for
from feedback.extensions import db


def default_national_number(context) -> str:
    """The 办件编号 of a record inserted without one: PROVINCE_CODE before its record number
    (feedback.evaluations.service.create_record sets it itself and refuses duplicates)."""
    province = current_app.config.get("PROVINCE_CODE", "34") if has_app_context() else "34"
    return national_number_for(context.get_current_parameters()["record_number"], province)


class ServiceRecord(db.Model):
    """办件: one completed handling of a service item for one citizen or company."""

    __tablename__ = "service_records"
    __table_args__ = (Index("ix_service_records_window_completed", "window_id", "completed_at"),
                      Index("ix_service_records_phone_completed", "citizen_phone", "completed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    record_number: Mapped[str] = mapped_column(String(64), unique=True)
    service_item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    citizen_phone: Mapped[str | None] = mapped_column(String(20))
    citizen_name: Mapped[str | None] = mapped_column(String(100))
    citizen_kind: Mapped[str] = mapped_column(String(10), default="person")  # person | company
    source: Mapped[str] = mapped_column(String(20), default="api")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    contact_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Marked at the counter (办结): elderly, or cannot read texts; invite to rate by phone call
    # (feedback/voice/outbound.py, when FEEDBACK_VOICE_OUTBOUND_CALLS is on).
    prefers_call: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # National identifiers (feedback/directory/national.py): 申请人类型 (userProp), 证件类型
    # (userPageType), the nationally unique 办件编号 (projectNo) and the 服务序号 (serviceNumber).
    applicant_type: Mapped[str] = mapped_column(String(1), default="1", server_default="1")
    certificate_type: Mapped[str | None] = mapped_column(String(3))
    national_number: Mapped[str] = mapped_column(String(64), unique=True, default=default_national_number)
    service_number: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")

    service_item: Mapped[ServiceItem] = relationship()
    department: Mapped[Department] = relationship()
    hall: Mapped[Hall | None] = relationship()
    window: Mapped[Window | None] = relationship()
    staff: Mapped[Staff | None] = relationship()
    evaluation: Mapped["Evaluation | None"] = relationship(back_populates="record", uselist=False)


class Evaluation(db.Model):
    """评价: one rating of one service record (or an anonymous walk-in rating at a terminal).

    Directory columns are copied from the record so statistics never join through it.
    """

    __tablename__ = "evaluations"
    __table_args__ = (Index("ix_evaluations_dept_rated", "department_id", "rated_at"),
                      Index("ix_evaluations_window_rated", "window_id", "rated_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    service_record_id: Mapped[int | None] = mapped_column(ForeignKey("service_records.id"), unique=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[str] = mapped_column(String(20))
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(Text, default="")
    rated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    hall_id: Mapped[int | None] = mapped_column(ForeignKey("halls.id"))
    window_id: Mapped[int | None] = mapped_column(ForeignKey("windows.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    service_item_id: Mapped[int | None] = mapped_column(ForeignKey("service_items.id"))
    is_active_rating: Mapped[bool] = mapped_column(Boolean, default=True)  # 主动评价 (not default)
    real_name: Mapped[bool] = mapped_column(Boolean, default=False)  # has a contact phone
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    invalidated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    flag_reason: Mapped[str | None] = mapped_column(String(200))
    # The version of the reason code list the rating was given under (see ReasonCatalogue).
    reasons_version: Mapped[int] = mapped_column(Integer, server_default="1")

    record: Mapped[ServiceRecord | None] = relationship(back_populates="evaluation")
    department: Mapped[Department] = relationship()
    window: Mapped[Window | None] = relationship()
    staff: Mapped[Staff | None] = relationship()
    service_item: Mapped[ServiceItem | None] = relationship()

    # The ticket this rating opened, on the instance that rate() returned (not stored: the
    # answer names it without asking the database again); None on a rating read back.
    opened_ticket = None

    @property
    def is_bad(self) -> bool:
        """Levels 1–2 are bad ratings and open a ticket."""
        return self.level <= 2


class ReasonCatalogue(db.Model):
    """评价指标版本: the one row (id 1) holding the version of the reason code list.

    Every change of the list (a code added, retired or reactivated) increments ``version``
    with one ``UPDATE``, whose row lock puts two administrators' changes one after the other;
    ``stamp`` is new on every change, so a process may keep the list it read until the stamp
    it reads differs (also after a rolled-back change, and across test databases).
    """

    __tablename__ = "reason_catalogue"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    stamp: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReasonCode(db.Model):
    """评价指标: a national label code offered with a rating of one level (its hundreds digit).

    Never deleted and never reused for another meaning: a retired code stays, with its label,
    for the ratings that carry it, and may be reactivated.
    """

    __tablename__ = "reason_codes"

    code: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    level: Mapped[int] = mapped_column(SmallInteger)
    label: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    added_in_version: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReasonCodeChange(db.Model):
    """One change of the reason code list (append-only): the version it made, the code and
    what happened to it (``added``, ``retired``, ``reactivated``). The list of any version is
    read from these rows, so a rating can be checked against the version it was given under."""

    __tablename__ = "reason_code_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, index=True)
    code: Mapped[int] = mapped_column(ForeignKey("reason_codes.code"))
    action: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
