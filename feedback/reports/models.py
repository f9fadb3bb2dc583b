"""Monthly bulletins (月度通报): one per month and scope, a draft until a supervisor signs it.

A signed bulletin is an archive: its PDF and XLSX bytes and the figures they were rendered
from (``snapshot``) are stored and never regenerated, so downloading a past month's bulletin
returns exactly what was signed, whatever ratings arrive later.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db

STATUSES = {"draft": "草稿", "signed": "已签发"}
CITY_SCOPE = "city"


def scope_key(department_id: int | None) -> str:
    """The stored scope of a bulletin: 'city', or 'department:<id>' for a department and its subtree."""
    return CITY_SCOPE if department_id is None else f"department:{department_id}"


class MonthlyReport(db.Model):
    """月度通报: the bulletin of one month for the city or one department (and those below it)."""

    __tablename__ = "monthly_reports"
    __table_args__ = (UniqueConstraint("month", "scope", name="uq_monthly_reports_month_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, local
    scope: Mapped[str] = mapped_column(String(40))  # see scope_key
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    cases: Mapped[list] = mapped_column(JSON, default=list)  # chosen publication ids, in order
    snapshot: Mapped[dict] = mapped_column(JSON, default=dict)  # every figure the files show
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary)
    xlsx: Mapped[bytes | None] = mapped_column(LargeBinary)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    xlsx_sha256: Mapped[str | None] = mapped_column(String(64))
    generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    prepared_by_job: Mapped[bool] = mapped_column(default=False)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    department = relationship("Department")
    signed_by = relationship("User", foreign_keys=[signed_by_id])

    @property
    def status_label(self) -> str:
        """草稿 or 已签发."""
        return STATUSES.get(self.status, self.status)

    @property
    def signed(self) -> bool:
        """True once a supervisor has signed it (the archive is then final)."""
        return self.status == "signed"
