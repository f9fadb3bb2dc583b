"""The units the public pages name: departments, halls, windows, staff and service items, by
their public code and name, and the department drill-down of the statistics page.

A department has two figures: its own (``department``, 本部门) and rolled up over the
departments below it (``department_tree``, 含下级部门); both are named as the department.

Staff appear only when PUBLISH_STAFF_STATS is on, and by name only when PUBLISH_STAFF_NAMES
is on too; otherwise by staff number (工号).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from flask import current_app
from sqlalchemy import select

from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.extensions import db
from feedback.statistics.definitions import SCOPE_LABELS as SCOPE_LABELS  # 本部门 / 含下级部门, for the templates

KIND_LABELS = {"all": "全市", "department": "部门", "department_tree": "部门", "hall": "大厅", "window": "窗口",
               "staff": "工作人员", "service_item": "服务事项"}
UNIT_MODELS = {"department": Department, "department_tree": Department, "hall": Hall, "window": Window,
               "staff": Staff, "service_item": ServiceItem}
SCOPE_CHILDREN = 200


def staff_published() -> bool:
    """Whether statistics of individual staff members are public (PUBLISH_STAFF_STATS)."""
    return bool(current_app.config.get("PUBLISH_STAFF_STATS"))


def staff_names_published() -> bool:
    """Whether published staff statistics also name the person, not just the staff number."""
    return staff_published() and bool(current_app.config.get("PUBLISH_STAFF_NAMES"))


def unit_names(kind: str, ids: Iterable[int]) -> dict[int, dict[str, str]]:
    """Public code and name of each unit; staff by staff number (names only if the setting allows).

    Plain columns (one query, windows joined to their hall), not ORM objects: a statistics
    page names up to a page of units per table on every request.
    """
    ids = sorted(set(ids))
    if kind == "all":
        return {0: {"code": "all", "name": "全市"}}
    model = UNIT_MODELS[kind]
    if not ids:
        return {}
    out = {}
    if kind == "staff":
        with_names = staff_names_published()
        for uid, number, name in db.session.execute(
                select(Staff.id, Staff.staff_number, Staff.name).where(Staff.id.in_(ids))):
            out[uid] = {"code": number, "name": f"{name}（工号 {number}）" if with_names else f"工号 {number}"}
    elif kind == "window":
        for uid, code, name, hall in db.session.execute(
                select(Window.id, Window.code, Window.name, Hall.name).outerjoin(Hall, Hall.id == Window.hall_id)
                .where(Window.id.in_(ids))):
            out[uid] = {"code": code, "name": f"{hall} · {name}" if hall else name}
    else:
        for uid, code, name in db.session.execute(select(model.id, model.code, model.name).where(model.id.in_(ids))):
            out[uid] = {"code": code, "name": name}
    return out


@dataclass
class ScopeOption:
    """One line of the chart-scope menu: a department, indented by its depth in the tree."""

    department_id: int
    name: str
    depth: int


def department_scope(selected_id: int | None) -> list[ScopeOption]:
    """The chart-scope menu as a drill-down of the department tree.

    A province has over a thousand departments: one menu of all of them is unusable on a
    phone and weighs more than the rest of the page. The menu lists the path from the top
    down to the chosen department, then that department's active sub-departments (at most
    SCOPE_CHILDREN, by code); with nothing chosen, the top departments and theirs.
    """
    path: list[tuple[int, str]] = []
    node = selected_id
    while node is not None and len(path) < 20:  # the bound only guards against a cycle
        row = db.session.execute(select(Department.id, Department.name, Department.parent_id)
                                 .where(Department.id == node)).first()
        if row is None:
            break
        path.insert(0, (row.id, row.name))
        node = row.parent_id
    options = [ScopeOption(did, name, depth) for depth, (did, name) in enumerate(path)]

    def children(parent_ids: list[int]) -> list[tuple[int, str, int | None]]:
        query = select(Department.id, Department.name, Department.parent_id).where(Department.active.is_(True))
        query = query.where(Department.parent_id.in_(parent_ids)) if parent_ids else query.where(
            Department.parent_id.is_(None))
        return list(db.session.execute(query.order_by(Department.code).limit(SCOPE_CHILDREN)))

    if path:
        options += [ScopeOption(did, name, len(path)) for did, name, _ in children([path[-1][0]])]
        return options
    tops = children([])
    below: dict[int, list[tuple[int, str]]] = {}
    for did, name, parent in children([top_id for top_id, _, _ in tops]) if tops else []:
        below.setdefault(parent, []).append((did, name))
    for top_id, top_name, _ in tops:
        options.append(ScopeOption(top_id, top_name, 0))
        options += [ScopeOption(did, name, 1) for did, name in below.get(top_id, [])]
    return options
