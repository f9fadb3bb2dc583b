"""User accounts and API keys."""
from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint, false
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
    # The staff record (工号) the person behind the account also is, for any staff-facing role:
    # tickets about their own ratings are kept from them.
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # Created by `demo load`: its password is in the README, so it signs in only in development.
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on password change, deactivation and signing out; part of the session id, so every
    # session of the account (a copied cookie too) ends.
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


class LoginThrottle(db.Model):
    """登录限制: failed sign-ins counted in a window, per ``kind``:

    * ``source``: one address trying one account name — it alone is locked out of that account;
    * ``address``: one address trying any names (spraying) — locked out of every account;
    * ``account``: one account name from anywhere — never locks, alerts the administrators.

    ``account`` is an HMAC of the lower-cased name (never the typed text, which may be a
    password); a name nobody has is counted like one that exists, so the answers never tell
    which accounts exist. Updated only by single conditional statements (feedback/accounts/throttle.py).
    """

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("kind", "address", "account"),
                      Index("ix_login_throttles_window_started_at", "window_started_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(45), default="")
    account: Mapped[str] = mapped_column(String(64), default="")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
