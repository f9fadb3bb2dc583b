"""Accounts: password hashing, login with lockout, department scopes, API keys."""
from __future__ import annotations

import hashlib
import math
import hmac
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from sqlalchemy import func, select

from feedback.accounts.models import ApiKey, Role, User
from feedback.audit import service as audit
from feedback.clock import utcnow
from feedback.directory import service as directory
from feedback.directory.models import Department, Staff
from feedback.errors import ConflictError, NotFoundError, ValidationError
from feedback.extensions import db

_hasher = PasswordHasher()
# A hash of a random password, so unknown usernames cost as much as known ones.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

API_SCOPES = {
    "records:write": "提交办件",
    "records:read": "读取办件",
    "ratings:write": "提交评价",
    "ratings:read": "读取评价",
    "complaints:write": "提交投诉",
    "complaints:read": "读取投诉",
    "tickets:read": "读取工单",
}


class LoginError(Exception):
    """Login refused; ``message`` is safe to show (never says whether the user exists)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return _hasher.hash(password)


def check_password_strength(password: str, username: str = "") -> None:
    """Refuse weak passwords with a specific Chinese message."""
    min_len = current_app.config["PASSWORD_MIN_LENGTH"]
    if len(password) < min_len:
        raise ValidationError(f"密码至少需要 {min_len} 个字符")
    classes = sum([any(c.isdigit() for c in password), any(c.isalpha() for c in password),
                   any(not c.isalnum() for c in password)])
    if classes < 2:
        raise ValidationError("密码需同时包含字母、数字或符号中的至少两类")
    if username and username.lower() in password.lower():
        raise ValidationError("密码不能包含用户名")


def create_user(username: str, password: str, role: Role | str, *, display_name: str = "",
                department_codes: list[str] | None = None, phone: str | None = None,
                actor: User | None = None, check_strength: bool = True, staff_number: str | None = None) -> User:
    """Create a user with a hashed password, role and department scope."""
    role = Role(role)
    username = username.strip()
    if not username:
        raise ValidationError("用户名不能为空")
    if db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise ConflictError(f"用户名 {username} 已存在")
    if check_strength:
        check_password_strength(password, username)
    departments = _departments_by_codes(department_codes or [])
    if role in (Role.HANDLER, Role.WINDOW_STAFF) and not departments:
        raise ValidationError("部门办理人员和窗口工作人员必须指定至少一个部门")
    staff = _staff_for(role, staff_number)
    user = User(username=username, display_name=display_name or username,
                password_hash=hash_password(password), role=role.value, phone=phone,
                password_changed_at=utcnow(), departments=departments, staff=staff)
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", actor=actor, obj=user, role=role.value,
                 departments=[d.code for d in departments], staff_number=staff.staff_number if staff else None)
    return user


def _staff_for(role: Role, staff_number: str | None) -> Staff | None:
    """The staff record a window-staff account acts as (its 工号), checked; None for other roles."""
    number = (staff_number or "").strip()
    if not number:
        return None
    if role != Role.WINDOW_STAFF:
        raise ValidationError("只有窗口工作人员账号可以关联工号")
    staff = db.session.scalar(select(Staff).where(Staff.staff_number == number))
    if staff is None:
        raise ValidationError(f"工号 {number} 不存在，请先在工作人员名录中添加")
    if not staff.active:
        raise ValidationError(f"工号 {number} 的工作人员已停用")
    return staff


def _departments_by_codes(codes: list[str]) -> list[Department]:
    found = []
    for code in codes:
        dept = db.session.scalar(select(Department).where(Department.code == code))
        if dept is None:
            raise ValidationError(f"部门编码 {code} 不存在")
        found.append(dept)
    return found


def authenticate(username: str, password: str, ip: str | None = None) -> User:
    """Check credentials, applying the lockout after repeated failures.

    Every attempt is audited. The error message is the same for an unknown user and
    a wrong password, so the form does not reveal which accounts exist.
    """
    cfg = current_app.config
    now = utcnow()
    user = db.session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if user is None:
        _safe_verify(_DUMMY_HASH, password)
        audit.record("login.failed", ip=ip, username=username[:64], reason="unknown user")
        raise LoginError("用户名或密码错误")
    if user.locked_until and user.locked_until > now:
        audit.record("login.locked", actor=user, obj=user, ip=ip)
        minutes = max(1, math.ceil((user.locked_until - now).total_seconds() / 60))
        raise LoginError(f"登录失败次数过多，账户已临时锁定，请 {minutes} 分钟后再试或联系管理员")
    if not _safe_verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= cfg["LOGIN_MAX_FAILURES"]:
            user.locked_until = now + timedelta(minutes=cfg["LOGIN_LOCKOUT_MINUTES"])
            user.failed_logins = 0
            audit.record("login.lockout", actor=user, obj=user, ip=ip)
            raise LoginError("登录失败次数过多，账户已临时锁定 "
                             f"{cfg['LOGIN_LOCKOUT_MINUTES']} 分钟")
        audit.record("login.failed", actor=user, obj=user, ip=ip, reason="bad password")
        raise LoginError("用户名或密码错误")
    if not user.active:
        audit.record("login.inactive", actor=user, obj=user, ip=ip)
        raise LoginError("账户已停用，请联系管理员")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record("login.success", actor=user, obj=user, ip=ip)
    return user


def _safe_verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def change_password(user: User, old_password: str, new_password: str) -> None:
    """Change a user's own password; other sessions of the user are signed out."""
    if not _safe_verify(user.password_hash, old_password):
        raise ValidationError("当前密码不正确")
    if old_password == new_password:
        raise ValidationError("新密码不能与当前密码相同")
    check_password_strength(new_password, user.username)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    user.session_version += 1
    audit.record("user.password_change", actor=user, obj=user)


def set_password(user: User, new_password: str, actor: User) -> None:
    """An administrator resets a password (and unlocks the account)."""
    check_password_strength(new_password, user.username)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    user.session_version += 1
    user.locked_until = None
    user.failed_logins = 0
    audit.record("user.password_reset", actor=actor, obj=user)


def update_user(user: User, *, actor: User, display_name: str, role: str, active: bool,
                department_codes: list[str], phone: str | None, staff_number: str | None = None) -> None:
    """Change a user's profile, role, scope or status (audited with before/after)."""
    role_enum = Role(role)
    departments = _departments_by_codes(department_codes)
    if role_enum in (Role.HANDLER, Role.WINDOW_STAFF) and not departments:
        raise ValidationError("部门办理人员和窗口工作人员必须指定至少一个部门")
    if user.id == actor.id and (not active or role_enum != Role.ADMIN):
        raise ValidationError("不能停用自己或取消自己的管理员角色")
    staff = _staff_for(role_enum, staff_number)
    before = {"role": user.role, "active": user.active,
              "departments": [d.code for d in user.departments],
              "staff_number": user.staff.staff_number if user.staff else None}
    user.display_name = display_name
    user.role = role_enum.value
    if user.active and not active:
        user.session_version += 1
    user.active = active
    user.departments = departments
    user.phone = phone or None
    user.staff = staff
    audit.record("user.update", actor=actor, obj=user, before=before,
                 after={"role": user.role, "active": user.active,
                        "departments": [d.code for d in departments],
                        "staff_number": staff.staff_number if staff else None})


def unlock(user: User, actor: User) -> None:
    """Lift a login lockout."""
    user.locked_until = None
    user.failed_logins = 0
    audit.record("user.unlock", actor=actor, obj=user)


def load_user(session_id: str) -> User | None:
    """Flask-Login loader: ``id:session_version``; stale versions are rejected."""
    try:
        user_id, version = (int(p) for p in session_id.split(":", 1))
    except ValueError:
        return None
    user = db.session.get(User, user_id)
    if user is None or user.session_version != version or not user.active:
        return None
    return user


def department_scope(user: User) -> set[int] | None:
    """Department ids a user may see: None means all (admin, supervisor).

    Handlers and window staff see their assigned departments and every department
    below them in the tree.
    """
    if user.has_role(Role.ADMIN, Role.SUPERVISOR):
        return None
    return directory.subtree_ids([d.id for d in user.departments])


# ---------------------------------------------------------------- API keys

def create_api_key(name: str, scopes: list[str], *, actor: User | None = None,
                   department_code: str | None = None) -> tuple[ApiKey, str]:
    """Create an API key; returns the row and the plain key, shown exactly once."""
    unknown = sorted(set(scopes) - set(API_SCOPES))
    if unknown:
        raise ValidationError(f"未知的权限范围：{', '.join(unknown)}")
    if not scopes:
        raise ValidationError("至少需要一个权限范围")
    department = None
    if department_code:
        department = _departments_by_codes([department_code])[0]
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    plain = f"fbk_{prefix}_{secret}"
    key = ApiKey(name=name, prefix=prefix, key_hash=_digest(plain), scopes=" ".join(sorted(set(scopes))),
                 department=department, created_by_id=getattr(actor, "id", None))
    db.session.add(key)
    db.session.flush()
    audit.record("apikey.create", actor=actor, obj=key, name=name, scopes=key.scopes)
    return key, plain


def _digest(plain: str) -> str:
    # API keys carry 256 bits of randomness, so a fast hash is enough at rest.
    return hashlib.sha256(plain.encode()).hexdigest()


def verify_api_key(plain: str) -> ApiKey | None:
    """Return the active key matching a presented bearer token, updating last use."""
    parts = plain.split("_")
    if len(parts) < 3 or parts[0] != "fbk":
        return None
    key = db.session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None or key.is_revoked:
        return None
    if not hmac.compare_digest(key.key_hash, _digest(plain)):
        return None
    now = utcnow()
    # Avoid a write per request: last use is precise to the minute.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        key.last_used_at = now
    return key


def revoke_api_key(key_id: int, actor: User | None = None) -> ApiKey:
    """Revoke a key; it stops working at once and stays listed."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError("API 密钥不存在")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record("apikey.revoke", actor=actor, obj=key)
    return key
