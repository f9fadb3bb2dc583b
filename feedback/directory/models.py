"""Directory models. Rows that ratings point to are deactivated, never deleted."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.extensions import db

staff_windows = Table(
    "staff_windows",
    db.metadata,
    Column("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
    Column("window_id", ForeignKey("windows.id", ondelete="CASCADE"), primary_key=True),
)


class DirectoryEntry:
    """What every directory row has: an id, an active flag (rows are deactivated, never deleted),
    when it was created and last changed, and its name as its text."""

    id: Mapped[int] = mapped_column(primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __str__(self) -> str:
        return self.name  # type: ignore[attr-defined]


class CodedEntry(DirectoryEntry):
    """A directory row identified by a unique code (departments, halls, windows, service items)."""

    code: Mapped[str] = mapped_column(String(40), unique=True)


class Department(CodedEntry, db.Model):
    """部门: a government body; departments form a tree (city → district → bureau)."""

    __tablename__ = "departments"

    name: Mapped[str] = mapped_column(String(120), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    credit_code: Mapped[str | None] = mapped_column(String(18))  # 统一社会信用代码 (GB 32100)
    area_code: Mapped[str | None] = mapped_column(String(12))  # 行政区划代码 (12 digits)

    parent: Mapped["Department | None"] = relationship(remote_side="Department.id", back_populates="children")
    children: Mapped[list["Department"]] = relationship(back_populates="parent")


class Hall(CodedEntry, db.Model):
    """政务服务大厅/中心: a physical service centre."""

    __tablename__ = "halls"

    name: Mapped[str] = mapped_column(String(120), index=True)
    address: Mapped[str] = mapped_column(String(200), default="")
    area_code: Mapped[str | None] = mapped_column(String(12))  # 行政区划代码 (12 digits)

    windows: Mapped[list["Window"]] = relationship(back_populates="hall")


class Window(CodedEntry, db.Model):
    """窗口: a counter in a hall, owned by one department."""

    __tablename__ = "windows"

    name: Mapped[str] = mapped_column(String(120))
    hall_id: Mapped[int] = mapped_column(ForeignKey("halls.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)

    hall: Mapped[Hall] = relationship(back_populates="windows")
    department: Mapped[Department] = relationship()
    staff: Mapped[list["Staff"]] = relationship(secondary=staff_windows, back_populates="windows")

    def __str__(self) -> str:
        return f"{self.name}（{self.code}）"


class Staff(DirectoryEntry, db.Model):
    """工作人员: a person serving at windows, identified by a staff number (工号)."""

    __tablename__ = "staff"

    staff_number: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(60), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)

    department: Mapped[Department] = relationship()
    windows: Mapped[list[Window]] = relationship(secondary=staff_windows, back_populates="staff",
                                                 order_by="Window.code")

    def __str__(self) -> str:
        return f"{self.name}（工号 {self.staff_number}）"


class ServiceItem(CodedEntry, db.Model):
    """政务服务事项: a catalogued service with its promised handling time.

    Its national identifiers (feedback/directory/national.py): the 实施编码 and 业务办理项编码 of
    the province's catalogue, the 事项类型 (GB/T 39046 A.1) and the 办件类型 (即办件/承诺件). An
    item without a 实施编码 was created locally: it is never reported to the province.
    """

    __tablename__ = "service_items"

    name: Mapped[str] = mapped_column(String(200), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    promised_days: Mapped[int] = mapped_column(Integer, default=0)
    implementation_code: Mapped[str | None] = mapped_column(String(31))  # 实施编码 (taskCode)
    handle_item_code: Mapped[str | None] = mapped_column(String(33))  # 业务办理项编码 (taskHandleItem)
    item_type: Mapped[str | None] = mapped_column(String(2))  # 事项类型 (taskType, A.1)
    record_type: Mapped[str] = mapped_column(String(1), default="2", server_default="2")  # 1 即办件 · 2 承诺件

    department: Mapped[Department] = relationship()

    @property
    def is_local(self) -> bool:
        """True for an item without a 实施编码 (本地事项): it is never reported."""
        return not self.implementation_code


class DepartmentHead(db.Model):
    """部门负责人: a user who receives level-1 escalations (超期预警) of a department's tickets.

    A fact of the organisation (any role may be a head; usually a handler of that department).
    A department without a head escalates to the heads of its nearest ancestor that has one.
    """

    __tablename__ = "department_heads"
    __table_args__ = (UniqueConstraint("department_id", "user_id", name="uq_department_heads"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User")
    department = relationship("Department")
