"""Job run history shown on the admin jobs page, and how far each periodic job has got."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db


class JobRun(db.Model):
    """作业运行记录: one run of one scheduled job, its duration, result and error."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_name_started", "name", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the --now of a what-if run
    host: Mapped[str] = mapped_column(String(120), default="")
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class JobWatermark(db.Model):
    """How far a periodic job has got (e.g. auto-rating: every record completed before
    ``value`` is settled), so each run reads only what is new since the last one."""

    __tablename__ = "job_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[datetime] = mapped_column(UTCDateTime)
    last_id: Mapped[int | None] = mapped_column(BigInteger)  # a job reading rows by id: the last one settled
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
