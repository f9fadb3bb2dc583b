"""Department heads (部门负责人): who answers for a department's overdue tickets (level-1 escalations)."""
from __future__ import annotations

from sqlalchemy import select

from feedback.accounts.models import User
from feedback.audit import service as audit
from feedback.directory.models import Department, DepartmentHead
from feedback.errors import ValidationError
from feedback.extensions import db


def heads_of(department_id: int) -> list:
    """The users registered as heads of one department (not of its ancestors)."""
    return list(db.session.scalars(select(User).join(DepartmentHead, DepartmentHead.user_id == User.id)
                                   .where(DepartmentHead.department_id == department_id).order_by(User.username)))


def set_head(department_code: str, username: str, *, actor=None, remove: bool = False) -> bool:
    """Register (or with ``remove`` unregister) a user as head of a department; audited.

    Returns False when nothing changed.
    """
    dept = db.session.scalar(select(Department).where(Department.code == department_code))
    if dept is None:
        raise ValidationError(f"部门编码 {department_code} 不存在")
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ValidationError(f"用户 {username} 不存在")
    if not remove and not user.active:
        raise ValidationError(f"用户 {username} 已停用，不能设为部门负责人")
    row = db.session.scalar(select(DepartmentHead).where(DepartmentHead.department_id == dept.id,
                                                         DepartmentHead.user_id == user.id))
    if remove:
        if row is None:
            return False
        db.session.delete(row)
    else:
        if row is not None:
            return False
        db.session.add(DepartmentHead(department_id=dept.id, user_id=user.id))
    audit.record("department_head.remove" if remove else "department_head.add", actor=actor, obj=dept,
                 username=username)
    db.session.flush()
    return True
