"""Accounts: password hashing, login with lockout, department scopes, API keys."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from sqlalchemy import func, select

from feedback.accounts import throttle
from feedback.accounts.models import ApiKey, Role, User
from feedback.audit import service as audit
from feedback.clock import utcnow
from feedback.directory import service as directory
from feedback.directory.models import Department, Staff
from feedback.errors import ConflictError, NotFoundError, ValidationError
from feedback.extensions import db
from feedback.notifications import service as notifications

_hasher = PasswordHasher()
# A hash of a random password: a refused sign-in that must not check the account's own hash
# (no such user, deactivated, a demo account outside development, a locked source) checks this
# one, so every refusal costs the same Argon2 work and says the same thing.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
REFUSED = "用户名或密码错误"
# Staff-facing roles: the person behind such an account may be on the staff list (工号) too.
STAFF_FACING = (Role.HANDLER, Role.WINDOW_STAFF, Role.SUPERVISOR)

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


def _staff_for(role: Role, staff_number: str | None, current: Staff | None = None) -> Staff | None:
    """The staff record (工号) the person behind a staff-facing account also is, checked: it
    exists, and is active unless it is the account's ``current`` link. None when no number."""
    number = (staff_number or "").strip()
    if not number:
        return None
    if role not in STAFF_FACING:
        raise ValidationError("系统管理员账号不能关联工号")
    staff = db.session.scalar(select(Staff).where(Staff.staff_number == number))
    if staff is None:
        raise ValidationError(f"工号 {number} 不存在，请先在工作人员名录中添加")
    if not staff.active and staff is not current:
        raise ValidationError(f"工号 {number} 的工作人员已停用")
    return staff


def get_by_username(username: str) -> User:
    """The account named ``username`` (any case); NotFoundError when there is none."""
    user = db.session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if user is None:
        raise NotFoundError(f"用户 {username} 不存在")
    return user


def link_staff(user: User, staff_number: str | None, *, actor: User | None = None) -> None:
    """Link the account to the staff record ``staff_number`` (None or empty: unlink), checked as
    in the admin form and audited (``user.staff_link``, before and after). A handler or
    supervisor linked to a staff member never sees the tickets about that member's ratings."""
    staff = _staff_for(user.role_enum, staff_number, current=user.staff)
    before = user.staff.staff_number if user.staff else None
    user.staff = staff
    audit.record("user.staff_link", actor=actor, obj=user, before=before,
                 after=staff.staff_number if staff else None)


def _departments_by_codes(codes: list[str]) -> list[Department]:
    found = []
    for code in codes:
        dept = db.session.scalar(select(Department).where(Department.code == code))
        if dept is None:
            raise ValidationError(f"部门编码 {code} 不存在")
        found.append(dept)
    return found


def authenticate(username: str, password: str, ip: str | None = None) -> User:
    """Check credentials from address ``ip``; LoginError when refused.

    Every refusal says the same (:data:`REFUSED`, or that this source is locked — which a name
    nobody has gets too) and checks exactly one Argon2 hash: the account's own only when it
    exists, is active and may sign in here; a dummy hash otherwise. Each guess is claimed
    before the check (``throttle.claim``), so parallel attempts cannot check more than the
    lockout allows; LOGIN_MAX_FAILURES from one address lock that address out of that account
    only, so a stranger can never lock an administrator out. Lockouts and guessing from many
    addresses are audited and told to the administrators. Every attempt is audited, never with
    the typed name of an account that does not exist (it may be a password).
    """
    now = utcnow()
    attempt = throttle.Attempt.of(username, ip, now)
    with db.session.no_autoflush:  # nothing of the session's may hold the database before the counters
        user = db.session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if not throttle.claim(attempt):
        _safe_verify(_DUMMY_HASH, password)
        _audit_attempt("login.locked", user, attempt, ip, reason="source locked")
        raise LoginError(f"登录失败次数过多，已临时锁定，请 {throttle.minutes_left(attempt)} 分钟后再试或联系管理员")
    refusal = _refusal(user)
    checked = _safe_verify(user.password_hash if user is not None and refusal is None else _DUMMY_HASH, password)
    if checked and user is not None and refusal is None:
        throttle.succeeded(attempt)
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        user.last_login_at = now
        audit.record("login.success", actor=user, obj=user, ip=ip)
        return user
    failure = throttle.failed(attempt)
    locked = [kind for kind, yes in (("source", failure.locked_source), ("address", failure.locked_address)) if yes]
    _audit_attempt("login.lockout" if locked else "login.failed", user, attempt, ip,
                   reason=refusal or "bad password", **({"locked": locked} if locked else {}))
    _alert_administrators(user, ip, failure, now)
    if locked:
        raise LoginError(f"登录失败次数过多，已临时锁定 {current_app.config['LOGIN_LOCKOUT_MINUTES']} 分钟")
    raise LoginError(REFUSED)


def _refusal(user: User | None) -> str | None:
    """Why an account may not sign in whatever the password (None: it may)."""
    if user is None:
        return "unknown user"
    if not user.active:
        return "inactive"
    if user.is_demo and current_app.config["ENV_NAME"] != "development":
        return "demo account outside development"
    return None


def _audit_attempt(action: str, user: User | None, attempt: throttle.Attempt, ip: str | None, **detail) -> None:
    # The typed name is kept as a digest prefix only: it tells repeated guesses of one name
    # apart without keeping a password typed into the user-name box.
    audit.record(action, actor=user, obj=user, ip=ip, username_digest=attempt.account[:16], **detail)


def _alert_administrators(user: User | None, ip: str | None, failure: throttle.Failure, now: datetime) -> None:
    """Audit and notify every active administrator (console, at once) of a source locked out of
    an account, an address locked out of every account, or LOGIN_ACCOUNT_ALERT_FAILURES failures
    on one account from anywhere; each at most once per account/address and window."""
    cfg = current_app.config
    window = int(cfg["LOGIN_FAILURE_WINDOW_MINUTES"])
    where = ip or "未知地址"
    alerts = []
    if user is not None and failure.locked_source:
        alerts.append((f"source:{user.id}:{where}", f"账户 {user.username} 登录失败次数过多",
                       f"来自 {where} 的登录连续失败 {cfg['LOGIN_MAX_FAILURES']} 次，已暂停该地址登录此账户 "
                       f"{cfg['LOGIN_LOCKOUT_MINUTES']} 分钟；其他地址不受影响。如非本人所为，请留意该地址。"))
    if failure.locked_address:
        alerts.append((f"address:{where}", f"地址 {where} 登录失败次数过多",
                       f"{window} 分钟内来自 {where} 的登录失败 {cfg['LOGIN_ADDRESS_MAX_FAILURES']} 次（多个用户名），"
                       f"已暂停该地址登录 {cfg['LOGIN_LOCKOUT_MINUTES']} 分钟。"))
    if user is not None and failure.account_failures == int(cfg["LOGIN_ACCOUNT_ALERT_FAILURES"]):
        audit.record("login.attack", obj=user, ip=ip, failures=failure.account_failures, window_minutes=window)
        alerts.append((f"account:{user.id}", f"账户 {user.username} 正被多处尝试登录",
                       f"{window} 分钟内该账户登录失败 {failure.account_failures} 次（来自多个地址）。"
                       "账户不会因此锁定；如非本人所为，请核查并考虑重置密码。"))
    if not alerts:
        return
    admins = db.session.scalars(select(User.id).where(User.role == Role.ADMIN.value, User.active.is_(True))).all()
    bucket = int(now.timestamp()) // (window * 60)
    notifications.notify_many([
        notifications.notification_row(admin_id, kind="login_alert", title=title, body=body, now=now,
                                       deliver_after=now, dedupe_key=f"login:{key}:{bucket}:{admin_id}"[:160])
        for key, title, body in alerts for admin_id in admins])


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
    user.is_demo = False  # the README's password is gone
    audit.record("user.password_change", actor=user, obj=user)


def sign_out(user: User, ip: str | None = None) -> None:
    """Sign out: the session version moves on, so this session — and every other session of
    the account, a copied cookie included — is no longer accepted (audited)."""
    user.session_version += 1
    audit.record("logout", actor=user, obj=user, ip=ip)


def set_password(user: User, new_password: str, actor: User) -> None:
    """An administrator resets a password: other sessions end, every source's lockout of the
    account is lifted, and a demo account becomes an ordinary one (its README password is gone)."""
    check_password_strength(new_password, user.username)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    user.session_version += 1
    user.is_demo = False
    throttle.unlock(user.username)
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
    staff = _staff_for(role_enum, staff_number, current=user.staff)
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
    """Lift every source address's lockout of the account (audited with how many)."""
    sources = throttle.unlock(user.username)
    audit.record("user.unlock", actor=actor, obj=user, sources=sources)


def locked_sources(users: list[User]) -> dict[int, int]:
    """For the admin's user list: user id → source addresses locked out of it now."""
    counts = throttle.locked_sources([u.username for u in users], utcnow())
    return {u.id: counts[u.username] for u in users if u.username in counts}


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
