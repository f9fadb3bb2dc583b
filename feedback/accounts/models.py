"""User accounts and API keys."""
from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.clock import utcnow
from feedback.db_types import UTCDateTime
from feedback.directory.models import Department, Staff
from feedback.extensions import db


class Role(str, enum.Enum):
    """What a user may do; scoping by department applies to handlers and window staff."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    HANDLER = "handler"
    WINDOW_STAFF = "window_staff"

    @property
    def label(self) -> str:
        """The role's name in Chinese, as pages show it."""
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.ADMIN: "系统管理员",
    Role.SUPERVISOR: "督查人员（营商环境监督局）",
    Role.HANDLER: "部门办理人员",
    Role.WINDOW_STAFF: "窗口工作人员",
}

user_departments = Table(
    "user_departments",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, db.Model):
    """用户: a person who logs in to the console or admin pages."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on password change/logout-everywhere; part of the session id.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    departments: Mapped[list[Department]] = relationship(secondary=user_departments,
                                                         order_by="Department.code")
    staff: Mapped[Staff | None] = relationship()

    @property
    def role_enum(self) -> Role:
        """The account's role as a Role."""
        return Role(self.role)

    @property
    def is_active(self) -> bool:  # Flask-Login
        """Flask-Login: a deactivated account cannot log in."""
        return bool(self.active)

    def get_id(self) -> str:  # Flask-Login: invalidated when the password changes
        """Flask-Login: the id and the session version, so a password change signs out other sessions."""
        return f"{self.id}:{self.session_version}"

    def has_role(self, *roles: Role) -> bool:
        """Whether the account has one of ``roles``."""
        return self.role in {r.value for r in roles}


class ApiKey(db.Model):
    """API 密钥: a bearer key for a window system, terminal, hotline or platform."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(255), default="")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department | None] = relationship()

    @property
    def scope_set(self) -> set[str]:
        """The key's scopes as a set."""
        return set(self.scopes.split())

    @property
    def is_revoked(self) -> bool:
        """Whether the key was revoked (it is refused from then on)."""
        return self.revoked_at is not None
