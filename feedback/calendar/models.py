"""Calendar models: administrators' day entries and the years they entered in full."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db

HOLIDAY = "holiday"
WORKDAY = "workday"
KINDS = (HOLIDAY, WORKDAY)
KIND_LABELS = {HOLIDAY: "放假", WORKDAY: "调休上班"}


class CalendarDay(db.Model):
    """工作日历条目: an administrator's ruling on one date (放假 or 调休上班).

    Entries are stored by date, not by year, because a year's make-up workdays can fall
    at the end of the previous year. They win over the ``chinesecalendar`` package and
    are switched off (``active``), never deleted, so the history stays readable.
    """

    __tablename__ = "calendar_days"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(60))
    source: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    created_by = relationship("User")

    @property
    def kind_label(self) -> str:
        """放假 or 调休上班."""
        return KIND_LABELS.get(self.kind, self.kind)

    def __str__(self) -> str:
        return f"{self.date.isoformat()} {self.kind_label} {self.name}"


class CalendarYear(db.Model):
    """已录入年度: a year whose official arrangement an administrator entered in full.

    Without this mark a year beyond ``chinesecalendar`` is provisional even if it has
    some entries: one entered holiday does not make a year's arrangement complete.
    """

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(200), default="")
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    imported_by = relationship("User")
