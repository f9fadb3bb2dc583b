"""Directory rules: the department tree, saving entities, import and export.

Import files use the headers documented in the README (English, or the Chinese
aliases below). A file is validated whole; any error aborts it and nothing is saved.
"""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import or_, select

from feedback.audit import service as audit
from feedback.directory import national
from feedback.directory.formats import CODE_RE, KINDS, export_row
from feedback.directory.models import Department, Hall, ServiceItem, Window
from feedback.errors import ValidationError
from feedback.extensions import db

# ---------------------------------------------------------------- tree and scope

def subtree_ids(root_ids: Iterable[int]) -> set[int]:
    """The given departments and all their descendants."""
    roots = set(root_ids)
    if not roots:
        return set()
    children: dict[int | None, list[int]] = {}
    for dept_id, parent_id in db.session.execute(select(Department.id, Department.parent_id)):
        children.setdefault(parent_id, []).append(dept_id)
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(children.get(current, []))
    return seen


def department_choices(scope: set[int] | None = None, include_inactive: bool = False) -> list[tuple[int, str]]:
    """(id, indented name) pairs in tree order, for select boxes.

    Plain columns, not ORM objects: a province has over a thousand departments, and loading
    them as instances on every queue page put thousands of short-lived ORM states in the
    cyclic garbage collector per request, which crashed gunicorn workers under load (a double
    free inside CPython 3.11.7 when the GC runs SQLAlchemy's weakref callbacks mid-attribute-store).
    """
    rows = db.session.execute(
        select(Department.id, Department.parent_id, Department.name, Department.active).order_by(Department.code))
    by_parent: dict[int | None, list[tuple[int, str, bool]]] = {}
    for dept_id, parent_id, name, active in rows:
        by_parent.setdefault(parent_id, []).append((dept_id, name, active))
    out: list[tuple[int, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for dept_id, name, active in by_parent.get(parent, []):
            if (include_inactive or active) and (scope is None or dept_id in scope):
                out.append((dept_id, "　" * depth + name + ("（已停用）" if not active else "")))
            walk(dept_id, depth + 1)

    walk(None, 0)
    return out


def department_path(dept: Department) -> str:
    """"市政府 / 区政府 / 局" style path of a department."""
    names = []
    seen = set()
    while dept is not None and dept.id not in seen:
        seen.add(dept.id)
        names.append(dept.name)
        dept = dept.parent
    return " / ".join(reversed(names))


def department_area_code(dept: Department | None) -> str | None:
    """The 行政区划代码 of a department: its own, else its nearest ancestor's (a bureau lies in
    its city); None when no department up the tree has one."""
    seen = set()
    while dept is not None and dept.id not in seen:
        if dept.area_code:
            return dept.area_code
        seen.add(dept.id)
        dept = dept.parent
    return None


def scoped_department_filter(model: type, scope: set[int] | None):
    """A WHERE clause limiting ``model`` rows to a department scope (None = all)."""
    if scope is None:
        return True
    column = model.id if model is Department else model.department_id
    return column.in_(scope or {-1})


# ---------------------------------------------------------------- listing

def search(kind: str, q: str = "", *, scope: set[int] | None = None, show_inactive: bool = True,
           page: int = 1, per_page: int = 50) -> tuple[list[Any], int]:
    """A page of one kind, filtered by a search text and the viewer's scope."""
    spec = KINDS[kind]
    model = spec.model
    stmt = select(model)
    if model is not Hall:
        stmt = stmt.where(scoped_department_filter(model, scope))
    elif scope is not None:
        stmt = stmt.where(Hall.id.in_(select(Window.hall_id).where(Window.department_id.in_(scope or {-1}))))
    if q:
        like = f"%{q.strip()}%"
        matches = [getattr(model, spec.key).ilike(like), model.name.ilike(like)]
        if model is ServiceItem:
            matches.append(ServiceItem.implementation_code.ilike(like))
        stmt = stmt.where(or_(*matches))
    if not show_inactive:
        stmt = stmt.where(model.active.is_(True))
    total = db.session.scalar(select(db.func.count()).select_from(stmt.subquery())) or 0
    rows = list(db.session.scalars(stmt.order_by(getattr(model, spec.key))
                                   .limit(per_page).offset((page - 1) * per_page)))
    return rows, total


def get_in_scope(kind: str, obj_id: int, scope: set[int] | None) -> Any | None:
    """One row of a kind if it exists and lies in the viewer's scope, else None."""
    model = KINDS[kind].model
    obj = db.session.get(model, obj_id)
    if obj is None or scope is None:
        return obj
    if model is Department:
        return obj if obj.id in scope else None
    if model is Hall:
        return obj if any(w.department_id in scope for w in obj.windows) else None
    return obj if obj.department_id in scope else None


# ---------------------------------------------------------------- saving one entity

def save(kind: str, obj: Any | None, data: dict[str, Any], *, actor: Any = None) -> Any:
    """Create (obj None) or update one directory row from validated form data.

    The natural key must be unique; a department may not become its own ancestor.
    Every change is audited with the fields that changed.
    """
    spec = KINDS[kind]
    model = spec.model
    key_value = data[spec.key].strip()
    if not CODE_RE.match(key_value):
        raise ValidationError("编码只能包含字母、数字、下划线、点和连字符，最长 40 位")
    clash = db.session.scalar(select(model).where(getattr(model, spec.key) == key_value))
    if clash is not None and clash is not obj:
        raise ValidationError(f"{spec.label}编码 {key_value} 已存在")
    _check_references(data)
    codes, errors = national.check_directory_codes({k: v for k, v in data.items() if k in national.DIRECTORY_COLUMNS})
    if errors:
        raise ValidationError(errors[0].message, field=errors[0].field)
    data.update(codes)
    creating = obj is None
    if creating:
        obj = model()
        db.session.add(obj)
    before = _snapshot(kind, obj) if not creating else {}
    windows = data.pop("windows", None)
    for name, value in data.items():
        setattr(obj, name, value.strip() if isinstance(value, str) else value)
    if windows is not None:
        obj.windows = windows
    if model is Department and obj.parent_id is not None:
        _check_no_cycle(obj)
    db.session.flush()
    after = _snapshot(kind, obj)
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    audit.record(f"directory.{kind}.{'create' if creating else 'update'}", actor=actor, obj=obj,
                 changes=changes)
    return obj


def _check_references(data: dict[str, Any]) -> None:
    for column, model, label in (("department_id", Department, "部门"), ("parent_id", Department, "上级部门"),
                                 ("hall_id", Hall, "大厅")):
        if data.get(column) is not None and db.session.get(model, data[column]) is None:
            raise ValidationError(f"所选{label}不存在")


def set_active(kind: str, obj: Any, active: bool, *, actor: Any = None) -> None:
    """Deactivate or reactivate a row. Rows are never deleted: ratings point to them."""
    if obj.active == active:
        return
    obj.active = active
    audit.record(f"directory.{kind}.{'activate' if active else 'deactivate'}", actor=actor, obj=obj)


def _check_no_cycle(dept: Department) -> None:
    seen = {dept.id}
    parent = db.session.get(Department, dept.parent_id) if dept.parent_id else None
    while parent is not None:
        if parent.id in seen or parent is dept:
            raise ValidationError("上级部门不能是本部门或其下级部门")
        seen.add(parent.id)
        parent = parent.parent


def _snapshot(kind: str, obj: Any) -> dict[str, Any]:
    return {k: v for k, v in export_row(kind, obj).items()}
