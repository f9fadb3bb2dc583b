"""The figures of a monthly bulletin, read once into a plain JSON snapshot.

Everything the PDF and the XLSX show comes from the snapshot (render.py), so an archived
bulletin can be rendered again from its stored figures and a signed one never changes.
Sources: the pre-aggregated statistics (StatMonthly through statistics.service.totals), the
红黑榜 (public/rankings.py), the 末位 units and their 约谈 (oversight.talks.bulletin_rows), the
month's 督办单 (orders.service.orders_for_month), the deadline steps (overdue and 督办 tickets)
and, for typical cases, published rectification results only (their published text).
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from feedback.clock import format_local, utcnow
from feedback.deadlines.models import STEPS, TicketDeadlineStep
from feedback.directory.models import Department, Window
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.reasons import LABELS
from feedback.extensions import db
from feedback.orders import service as orders
from feedback.oversight import talks
from feedback.public.rankings import ranking
from feedback.publications.models import Publication
from feedback.statistics import service as stats
from feedback.statistics.models import COUNTERS
from feedback.statistics.months import month_bounds
from feedback.tickets.models import Ticket
from feedback.tickets.workflow import HANDLING_RATINGS, OUTCOMES, STATES

RANKED_KINDS = {"department": "部门", "hall": "大厅", "window": "窗口"}
OVERDUE_LIST_MAX = 2000  # tickets listed (the count is always complete)
ORDER_STATUS = {"open": "待答复", "answered": "已答复", "overdue": "已超期", "withdrawn": "已撤回"}
SOURCE_LABELS = {"evaluation": "差评", "complaint": "投诉"}


def shift_month(month: str, delta: int) -> str:
    """The month ``delta`` months after ``month`` (before it when negative)."""
    y, m = (int(p) for p in month.split("-"))
    index = y * 12 + m - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _counts(rates: stats.Rates | None) -> dict[str, int]:
    return dict(rates.counts) if rates is not None else dict.fromkeys(COUNTERS, 0)


def subtree(department: Department) -> list[tuple[Department, int]]:
    """``department`` and every department below it, in tree order, each with its depth."""
    children: dict[int | None, list[Department]] = {}
    for d in db.session.scalars(select(Department).order_by(Department.code)):
        children.setdefault(d.parent_id, []).append(d)
    out: list[tuple[Department, int]] = []
    stack = [(department, 0)]
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        if node.id in seen:  # guards against a cycle in the tree
            continue
        seen.add(node.id)
        out.append((node, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(node.id, [])))
    return out


def city_tree() -> list[tuple[Department, int]]:
    """Every department in tree order (top departments by code), each with its depth."""
    tops = db.session.scalars(select(Department).where(Department.parent_id.is_(None)).order_by(Department.code))
    return [pair for top in tops for pair in subtree(top)]


def _unit_rows(month: str, previous: str, department: Department | None) -> tuple[dict, list[dict], bool]:
    """(headline, per-department rows, has_children): the city's or the department's figures."""
    if department is None:
        now = stats.totals("all", [month]).get(0)
        prev = stats.totals("all", [previous]).get(0)
        headline = {"label": "全市", "now": _counts(now), "prev": _counts(prev)}
        tree = city_tree()
        has_children = bool(tree)
    else:
        now = stats.totals("department_tree", [month], [department.id]).get(department.id)
        prev = stats.totals("department_tree", [previous], [department.id]).get(department.id)
        headline = {"label": f"{department.name}（含下级部门）", "now": _counts(now), "prev": _counts(prev)}
        tree = subtree(department)
        has_children = len(tree) > 1
    ids = [d.id for d, _ in tree]
    tree_now, tree_prev = stats.totals("department_tree", [month], ids), stats.totals("department_tree", [previous], ids)
    own_now, own_prev = stats.totals("department", [month], ids), stats.totals("department", [previous], ids)
    rows = []
    for d, depth in tree:
        if department is not None and d.id == department.id and has_children:
            # The department itself: its own figures (本部门); the headline is its 含下级部门 sum.
            now_c, prev_c, scope = _counts(own_now.get(d.id)), _counts(own_prev.get(d.id)), "本部门"
        else:
            now_c, prev_c, scope = _counts(tree_now.get(d.id)), _counts(tree_prev.get(d.id)), "含下级部门"
        if department is None and not any(now_c.values()) and not any(prev_c.values()):
            continue  # the city's bulletin lists departments with figures in either month
        rows.append({"code": d.code, "name": d.name, "depth": depth, "scope": scope, "now": now_c, "prev": prev_c})
    return headline, rows, has_children


def _rankings(month: str, scope_ids: set[int] | None) -> dict[str, dict]:
    """红榜 and 黑榜 of departments, halls and windows (within the scope for a department)."""
    window_dept: dict[int, int] = {}
    if scope_ids is not None:
        window_dept = dict(db.session.execute(select(Window.id, Window.department_id)).all())
    out = {}
    for kind, label in RANKED_KINDS.items():
        if scope_ids is not None and kind == "hall":
            continue  # a hall serves many departments: not part of one department's bulletin
        board = ranking(kind, month)

        def keep(row) -> bool:
            if scope_ids is None:
                return True
            return (row.unit_id if kind == "department" else window_dept.get(row.unit_id)) in scope_ids

        def rows(group) -> list[dict]:
            return [{"rank": r.extra.get("rank"), "code": r.code, "name": r.name, "counts": dict(r.rates.counts),
                     "last": bool(r.extra.get("last"))} for r in group if keep(r)]

        out[kind] = {"label": label, "red": rows(board.red), "black": rows(board.black),
                     "ranked": board.ranked_total, "min_ratings": board.min_ratings}
    return out


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_local(value, "%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "、".join(str(_text(v)) for v in value)
    return value


def _talk_rows(month: str, scope_ids: set[int] | None) -> list[dict]:
    """The 末位 units (two months running) and their 约谈 status (oversight.talks)."""
    window_dept: dict[int, int] = {}
    if scope_ids is not None:
        window_dept = dict(db.session.execute(select(Window.id, Window.department_id)).all())
    out = []
    for row in talks.bulletin_rows(month):
        kind, uid = row.get("unit_kind"), row.get("unit_id")
        if scope_ids is not None:
            dept = uid if kind == "department" else window_dept.get(uid) if kind == "window" else None
            if dept not in scope_ids:
                continue
        out.append({"kind": RANKED_KINDS.get(kind, kind), "name": row.get("unit_name", ""),
                    "status": row.get("status", ""), "talk_date": _text(row.get("talk_date")) or "",
                    "attendees": _text(row.get("attendees")) or "", "agreed": _text(row.get("agreed")) or "",
                    "follow_up_on": _text(row.get("follow_up_on")) or ""})
    return out


def _order_rows(month: str, scope_ids: set[int] | None) -> list[dict]:
    """The 督办单 issued in the month (orders.service), in scope."""
    issued = [o for o in orders.orders_for_month(month) if scope_ids is None or o.department_id in scope_ids]
    names = dict(db.session.execute(select(Department.id, Department.name)).all())
    return [{"number": o.number, "department": names.get(o.department_id, ""), "ticket_id": o.ticket_id,
             "content": o.content, "issued_at": _text(o.issued_at), "due_at": _text(o.due_at),
             "status": ORDER_STATUS.get(o.status, o.status), "answered_at": _text(o.answered_at) or ""}
            for o in sorted(issued, key=lambda o: (o.issued_at, o.id))]


def _overdue(month: str, scope_ids: set[int] | None) -> dict:
    """Tickets that became overdue (一级预警) or were escalated to the bureau (督办) in the month."""
    start, end = month_bounds(month)
    levels = {step: level for step, (_, level) in STEPS.items() if level >= 1}
    level_of: dict[int, int] = {}
    for tid, step in db.session.execute(
            select(TicketDeadlineStep.ticket_id, TicketDeadlineStep.step)
            .where(TicketDeadlineStep.step.in_(list(levels)), TicketDeadlineStep.outcome == "done",
                   TicketDeadlineStep.step_at >= start, TicketDeadlineStep.step_at < end)):
        level_of[tid] = max(level_of.get(tid, 0), levels[step])
    names = dict(db.session.execute(select(Department.id, Department.name)).all())
    rows = []
    ids = sorted(level_of)
    for i in range(0, len(ids), 500):
        for t in db.session.scalars(select(Ticket).where(Ticket.id.in_(ids[i:i + 500]))):
            if scope_ids is not None and t.department_id not in scope_ids:
                continue
            rows.append({"ticket_id": t.id, "department": names.get(t.department_id, "待分办"),
                         "source": SOURCE_LABELS.get(t.source, t.source), "created": _text(t.created_at),
                         "due": _text(t.due_at) or "", "level": level_of[t.id],
                         "level_label": "二级预警（督办）" if level_of[t.id] >= 2 else "一级预警（超期）",
                         "state": STATES.get(t.state, t.state)})
    rows.sort(key=lambda r: (-r["level"], r["ticket_id"]))
    return {"total": len(rows), "escalated": sum(1 for r in rows if r["level"] >= 2), "rows": rows[:OVERDUE_LIST_MAX]}


def eligible_cases_query(month: str, scope_ids: set[int] | None):
    """Published rectification results of the month (of ratings or complaints of ``month``) in scope."""
    stmt = select(Publication).where(Publication.state == "published", Publication.month == month)
    if scope_ids is not None:
        stmt = stmt.where(Publication.department_id.in_(list(scope_ids)))
    return stmt.order_by(Publication.published_at, Publication.id)


def case_row(pub: Publication) -> dict:
    """A typical case as the bulletin shows it: the published fields and the published text only."""
    level = LEVELS.get(pub.level) if pub.level is not None else None
    where = "，".join(x for x in (pub.hall.name if pub.hall else "", pub.window.name if pub.window else "") if x)
    return {"publication_id": pub.id, "ticket_id": pub.ticket_id,
            "department": pub.department.name if pub.department else "", "where": where,
            "item": pub.service_item.name if pub.service_item else "",
            "source": SOURCE_LABELS.get(pub.source, pub.source or ""), "level": level.label if level else "",
            "reasons": "、".join(str(LABELS.get(c, c)) for c in (pub.reasons or [])),
            "outcome": OUTCOMES.get(pub.outcome, pub.outcome or ""),
            "on_time": "按时办结" if pub.on_time else ("超期办结" if pub.on_time is False else ""),
            "handling": HANDLING_RATINGS.get(pub.handling_rating, "未评价"),
            "occurred": _text(pub.occurred_at) or "", "published": _text(pub.published_at) or "",
            "text": pub.public_text or ""}


def collect(month: str, department: Department | None, cases: list[Publication], *,
            now: datetime | None = None, current_month: str | None = None) -> dict:
    """Every figure of the bulletin of ``month`` for the city (``department`` None) or a
    department and those below it, as a JSON-able snapshot (counts, not rates: render.py
    computes each rate from its counts with the statistics' own definitions)."""
    now = now or utcnow()
    previous = shift_month(month, -1)
    scope_ids = None if department is None else {d.id for d, _ in subtree(department)}
    headline, units, has_children = _unit_rows(month, previous, department)
    counts = headline["now"]
    return {
        "month": month, "previous": previous,
        "scope": {"kind": "city" if department is None else "department",
                  "code": department.code if department else None,
                  "name": department.name if department else "全市", "has_children": has_children},
        "generated_at": format_local(now, "%Y-%m-%d %H:%M"),
        "in_progress": current_month == month,
        "empty": not (counts.get("ratings") or counts.get("records") or counts.get("tickets")),
        "headline": headline, "units": units,
        "rankings": _rankings(month, scope_ids),
        "talks": _talk_rows(month, scope_ids),
        "orders": _order_rows(month, scope_ids),
        "overdue": _overdue(month, scope_ids),
        "cases": [case_row(p) for p in cases],
        "signature": None,
    }
