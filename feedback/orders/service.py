"""督办单 rules: issuing a numbered order, answering it, withdrawing it, and reading them.

Plain functions with explicit arguments; they flush, never commit (the view's run_action or
the caller commits). Every decision is audited (orders.issue / orders.answer /
orders.withdraw) and reported upward as a ``supervision_order`` ledger message
(feedback/exchange/ledger.py ``order_step``: ``issued`` and ``answered``).

Who may do what:

- issue: supervisors; a supervisor assigned to departments may issue only to those and
  below (their scope), one with none to every department. An order on a ticket goes to
  the ticket's department; a closed ticket, a ticket still in triage, empty content and a
  due of 0 or more than ORDER_DUE_MAX_WORKING_DAYS working days are refused;
- answer: the handlers of the order's department (their departments and below), in
  writing, while it is open or overdue (an overdue answer is kept and shown as late);
- withdraw: supervisors, with a reason, while it is open or overdue.
"""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from flask import current_app
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import joinedload

from feedback.accounts import service as accounts
from feedback.accounts.models import Role, User
from feedback.audit import service as audit
from feedback.calendar.days import WorkingCalendar
from feedback.clock import as_utc, format_local, local_zone, to_local, utcnow
from feedback.directory import service as directory
from feedback.deadlines.service import reminder_moment
from feedback.directory.models import Department
from feedback.errors import ConflictError, DomainError, NotFoundError, ValidationError
from feedback.exchange import ledger
from feedback.extensions import db, insert_ignoring_conflicts
from feedback.orders.models import SupervisionOrder, SupervisionOrderCounter
from feedback.privacy.service import mask_personal
from feedback.tickets import service as tickets
from feedback.tickets.models import Ticket

CONTENT_MAX = 2000
NUMBER_FORMAT = "督〔{year}〕{seq}号"
LISTS = {"open": "待答复", "overdue": "已超期", "answered": "已答复", "withdrawn": "已撤回", "all": "全部"}


class OrderOnClosedTicketError(ConflictError, code="order-on-closed-ticket"):
    """A 督办单 on a ticket that is already closed."""


class OrderOutOfScopeError(DomainError, code="order-out-of-scope", status=403):
    """The unit (or the order) lies outside the user's scope."""


class OrderInputError(ValidationError, code="order-invalid"):
    """Empty content or answer, a due out of range, neither or both of ticket and department."""


class OrderStateError(ConflictError, code="order-state"):
    """The order is no longer waiting for an answer (answered or withdrawn)."""


# ---------------------------------------------------------------- deadlines

def max_due_days() -> int:
    """ORDER_DUE_MAX_WORKING_DAYS: the longest deadline an order may give (30)."""
    return int(current_app.config["ORDER_DUE_MAX_WORKING_DAYS"])


def reminder_at(due_at: datetime, calendar: WorkingCalendar | None = None) -> datetime:
    """When an order's reminder goes: the same rule as the tickets' reminder
    (REMINDER_LEAD_WORKING_DAYS working days left, from 00:00 local of that day)."""
    return reminder_moment(due_at, calendar)


# ---------------------------------------------------------------- scope

def issuer_scope(actor: Any) -> set[int] | None:
    """Departments ``actor`` may issue orders to: None for every one (a supervisor without
    assigned departments), else a supervisor's assigned departments and below; anybody else
    none at all (an empty set)."""
    if actor is None or not getattr(actor, "has_role", None) or not actor.has_role(Role.SUPERVISOR):
        return set()
    assigned = [d.id for d in getattr(actor, "departments", []) or []]
    return directory.subtree_ids(assigned) if assigned else None


def visible_filter(user: User):
    """WHERE clauses limiting orders to what ``user`` sees: supervisors all, handlers their
    departments and below, anybody else nothing."""
    if user.has_role(Role.SUPERVISOR):
        return []
    if not user.has_role(Role.HANDLER):
        return [SupervisionOrder.id == -1]
    scope = accounts.department_scope(user)
    return [] if scope is None else [SupervisionOrder.department_id.in_(scope or {-1})]


def get_for_user(order_id: int, user: User) -> SupervisionOrder | None:
    """The order if ``user`` may see it, else None (the view answers 404)."""
    return db.session.scalar(select(SupervisionOrder).where(SupervisionOrder.id == order_id, *visible_filter(user)))


def can_answer(order: SupervisionOrder, user: Any) -> bool:
    """Whether ``user`` is a handler of the order's department (or above it) and it still waits."""
    if not order.is_pending or user is None or not user.has_role(Role.HANDLER):
        return False
    scope = accounts.department_scope(user)
    return scope is None or order.department_id in scope


def can_withdraw(order: SupervisionOrder, user: Any) -> bool:
    """Whether ``user`` may withdraw the order: a supervisor in scope, while it still waits."""
    if not order.is_pending or user is None or not user.has_role(Role.SUPERVISOR):
        return False
    scope = issuer_scope(user)
    return scope is None or order.department_id in scope


# ---------------------------------------------------------------- issuing

def _next_number(year: int) -> int:
    """The next sequence number of ``year``: the counter row is created once, then incremented
    under its row lock (concurrent issuers queue on it and get consecutive numbers)."""
    table = SupervisionOrderCounter.__table__
    db.session.execute(insert_ignoring_conflicts(table).values(year=year, last=0))
    return db.session.execute(update(table).where(table.c.year == year).values(last=table.c.last + 1)
                              .returning(table.c.last)).scalar_one()


def default_content(ticket: Ticket) -> str:
    """The prefilled text of an order made from a ticket's level-2 escalation (督办)."""
    due = to_local(ticket.due_at).strftime("%Y-%m-%d") if ticket.due_at else "—"
    return (f"工单 #{ticket.id} 已超过答复期限（{due}）且经二级预警仍未办结。请责任部门立即核实处理，"
            f"答复群众，并书面报告办理情况、超期原因和整改措施。")


def draft_for(ticket: Ticket, user: Any) -> dict | None:
    """The prefilled 督办单 a supervisor may issue in one action from a ticket's page: when the
    ticket is open, has a department in the user's scope and reached level 2 (督办); else None."""
    if not ticket.is_open or ticket.department_id is None or (ticket.escalation_level or 0) < 2:
        return None
    scope = issuer_scope(user)
    if scope is not None and ticket.department_id not in scope:
        return None
    return {"content": default_content(ticket), "days": int(current_app.config["ORDER_DEFAULT_DUE_WORKING_DAYS"]),
            "max_days": max_due_days()}


def issue_order(*, actor: Any, content: str, due_working_days: int, ticket: Ticket | None = None,
                department: Department | None = None, source: str = "manual",
                now: datetime | None = None) -> SupervisionOrder:
    """Issue a numbered 督办单 on ``ticket`` (to its department) or on ``department``.

    Refuses (typed errors, Chinese messages): a closed ticket (OrderOnClosedTicketError), a
    unit outside the issuer's scope (OrderOutOfScopeError), empty content, a due of 0 or
    more than ORDER_DUE_MAX_WORKING_DAYS working days, neither or both of ticket and
    department (OrderInputError). The deadline runs in working days from ``now``; the
    ticket's timeline, the audit log and the exchange ledger record it. Flushes.
    """
    now = as_utc(now or utcnow())
    content = (content or "").strip()
    if not content:
        raise OrderInputError("请填写督办内容", field="content")
    if len(content) > CONTENT_MAX:
        raise OrderInputError(f"督办内容不能超过 {CONTENT_MAX} 字", field="content")
    try:
        days = int(due_working_days)
    except (TypeError, ValueError):
        raise OrderInputError("办理时限须为整数个工作日", field="due_working_days") from None
    if days < 1 or days > max_due_days():
        raise OrderInputError(f"办理时限须为 1 至 {max_due_days()} 个工作日", field="due_working_days")
    if (ticket is None) == (department is None):
        raise OrderInputError("请选择督办的工单或部门（二者选一）", field="department")
    if source not in ("manual", "escalation", "recheck"):
        raise OrderInputError("未知的督办来源", field="source")
    if ticket is not None:
        if not ticket.is_open:
            raise OrderOnClosedTicketError(f"工单 #{ticket.id} 已办结，不能再下发督办单")
        if ticket.department_id is None:
            raise OrderInputError(f"工单 #{ticket.id} 尚未分办到部门，请先分办再督办", field="ticket")
        department = ticket.department or db.session.get(Department, ticket.department_id)
    assert department is not None
    scope = issuer_scope(actor)
    if not getattr(department, "active", True) or (scope is not None and department.id not in scope):
        raise OrderOutOfScopeError(f"“{department.name}”不在您的督办范围内，不能下发督办单")
    calendar = WorkingCalendar()
    deadline = calendar.add_working_days(now, days)
    year = to_local(now).year
    seq = _next_number(year)
    order = SupervisionOrder(year=year, seq=seq, number=NUMBER_FORMAT.format(year=year, seq=seq),
                             ticket_id=ticket.id if ticket is not None else None, department_id=department.id,
                             source=source, content=content, due_working_days=days, due_at=deadline.due_at,
                             due_provisional=deadline.provisional, status="open", issued_at=now,
                             issued_by_id=getattr(actor, "id", None),
                             remind_at=reminder_at(deadline.due_at, calendar))
    order.next_check_at = order.remind_at
    db.session.add(order)
    db.session.flush()
    if ticket is not None:
        tickets.add_event(ticket, "order_issued", actor=actor, at=now,
                          note=f"下发督办单 {order.number}，限 {days} 个工作日内书面答复", order_id=order.id)
    audit.record("orders.issue", actor=actor, obj=order, number=order.number, department=department.code,
                 ticket_id=order.ticket_id, due_working_days=days, source=source)
    ledger.order_step(order, "issued", now)
    db.session.flush()
    return order


# ---------------------------------------------------------------- answering, withdrawing

def answer_order(order: SupervisionOrder, actor: Any, *, text: str, now: datetime | None = None) -> SupervisionOrder:
    """The department's written answer (书面答复) by one of its handlers; late answers are kept
    (the order shows it was answered after its deadline). Flushes."""
    now = as_utc(now or utcnow())
    if actor is None or not actor.has_role(Role.HANDLER):
        raise OrderOutOfScopeError("只有责任部门的办理人员可以答复督办单")
    scope = accounts.department_scope(actor)
    if scope is not None and order.department_id not in scope:
        raise OrderOutOfScopeError(f"督办单 {order.number} 不属于您负责的部门")
    if not order.is_pending:
        raise OrderStateError(f"督办单 {order.number} {order.status_label}，不能再答复")
    text = (text or "").strip()
    if not text:
        raise OrderInputError("请填写书面答复", field="text")
    if len(text) > CONTENT_MAX:
        raise OrderInputError(f"书面答复不能超过 {CONTENT_MAX} 字", field="text")
    order.answer, order.answered_at, order.answered_by_id = text, now, actor.id
    order.status, order.next_check_at = "answered", None
    if order.ticket is not None:
        tickets.add_event(order.ticket, "order_answered", actor=actor, at=now,
                          note=f"书面答复督办单 {order.number}" + ("（逾期答复）" if order.answered_late else ""),
                          order_id=order.id)
    audit.record("orders.answer", actor=actor, obj=order, number=order.number, late=order.answered_late)
    ledger.order_step(order, "answered", now)
    db.session.flush()
    return order


def withdraw_order(order: SupervisionOrder, actor: Any, *, reason: str,
                   now: datetime | None = None) -> SupervisionOrder:
    """A supervisor withdraws an order still waiting for its answer (撤回), with a reason. Flushes."""
    now = as_utc(now or utcnow())
    scope = issuer_scope(actor)
    if actor is None or not actor.has_role(Role.SUPERVISOR) or (scope is not None and order.department_id not in scope):
        raise OrderOutOfScopeError("只有督查人员可以撤回督办单")
    if not order.is_pending:
        raise OrderStateError(f"督办单 {order.number} {order.status_label}，不能撤回")
    reason = (reason or "").strip()
    if not reason:
        raise OrderInputError("请填写撤回原因", field="reason")
    order.status, order.withdrawn_at, order.withdrawn_by_id = "withdrawn", now, actor.id
    order.withdraw_reason, order.next_check_at = reason[:CONTENT_MAX], None
    if order.ticket is not None:
        tickets.add_event(order.ticket, "order_withdrawn", actor=actor, at=now,
                          note=f"撤回督办单 {order.number}", order_id=order.id)
    audit.record("orders.withdraw", actor=actor, obj=order, number=order.number, reason=order.withdraw_reason)
    db.session.flush()
    return order


# ---------------------------------------------------------------- reading

def list_statement(user: User, which: str = "open", now: datetime | None = None):
    """SELECT of the orders ``user`` sees in list ``which`` (open | overdue | answered |
    withdrawn | all), soonest deadline first (answered: latest answer first).

    An open order past its deadline is listed as overdue even before the sweep marks it."""
    now = as_utc(now or utcnow())
    o = SupervisionOrder
    stmt = select(o).where(*visible_filter(user))
    if which == "open":
        stmt = stmt.where(o.status == "open", o.due_at >= now).order_by(o.due_at, o.id)
    elif which == "overdue":
        stmt = stmt.where(or_(o.status == "overdue", (o.status == "open") & (o.due_at < now))).order_by(o.due_at, o.id)
    elif which == "answered":
        stmt = stmt.where(o.status == "answered").order_by(o.answered_at.desc(), o.id.desc())
    elif which == "withdrawn":
        stmt = stmt.where(o.status == "withdrawn").order_by(o.withdrawn_at.desc(), o.id.desc())
    else:
        stmt = stmt.order_by(o.issued_at.desc(), o.id.desc())
    return stmt


def counts(user: User, now: datetime | None = None) -> dict[str, int]:
    """How many orders ``user`` sees in each list."""
    return {which: db.session.scalar(select(func.count()).select_from(list_statement(user, which, now)
                                                                       .order_by(None).subquery())) or 0
            for which in LISTS}


# The columns of export_rows, in order.
EXPORT_HEADERS = ("编号", "责任部门", "部门编码", "工单号", "来源", "督办内容", "办理时限（工作日）", "下发时间",
                  "答复期限", "状态", "答复时间", "逾期答复", "书面答复", "撤回时间", "撤回原因")


def export_rows(user: User, which: str = "open", now: datetime | None = None, *, limit: int = 50_000):
    """The orders of list ``which`` that ``user`` sees (list_statement: a handler only their
    departments' orders) as dicts for CSV/XLSX, in the list's order, Chinese headers and values.

    The statement, with the user's scope, is built now: the CSV streams after the request's
    session is gone. The free text (content, answer, withdrawal reason) leaves the system in a
    download, so phone and ID numbers in it are masked (privacy.mask_personal), as on the
    public pages; the cells are made formula-safe by the view (spreadsheets.csv_row /
    append_xlsx_row)."""
    now = as_utc(now or utcnow())
    stmt = (list_statement(user, which, now).limit(limit)
            .options(joinedload(SupervisionOrder.department)))

    def rows():
        for o in db.session.scalars(stmt.execution_options(yield_per=1000)):
            late = o.status == "open" and as_utc(o.due_at) < now  # overdue before the sweep marks it
            yield {
                "编号": o.number,
                "责任部门": o.department.name,
                "部门编码": o.department.code,
                "工单号": o.ticket_id or "",
                "来源": o.source_label,
                "督办内容": mask_personal(o.content) or "",
                "办理时限（工作日）": o.due_working_days,
                "下发时间": format_local(o.issued_at),
                "答复期限": format_local(o.due_at),
                "状态": "已超期" if late else o.status_label,
                "答复时间": format_local(o.answered_at),
                "逾期答复": ("是" if o.answered_late else "否") if o.answered_at else "",
                "书面答复": mask_personal(o.answer) or "",
                "撤回时间": format_local(o.withdrawn_at),
                "撤回原因": mask_personal(o.withdraw_reason) or "",
            }
    return rows()


def orders_for_ticket(ticket_id: int) -> list[SupervisionOrder]:
    """The orders issued on one ticket, oldest first."""
    return list(db.session.scalars(select(SupervisionOrder).where(SupervisionOrder.ticket_id == ticket_id)
                                   .order_by(SupervisionOrder.id)))


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The UTC bounds [start, end) of a local (Asia/Shanghai) month ``YYYY-MM``; OrderInputError
    for anything else."""
    try:
        year, mon = (int(part) for part in str(month).split("-"))
        first = date(year, mon, 1)
    except (TypeError, ValueError):
        raise OrderInputError(f"月份格式应为 YYYY-MM：{month}", field="month") from None
    nxt = date(year + (mon == 12), mon % 12 + 1, 1)
    zone = local_zone()
    return (as_utc(datetime.combine(first, time(0), tzinfo=zone)), as_utc(datetime.combine(nxt, time(0), tzinfo=zone)))


def orders_for_month(month: str) -> list[SupervisionOrder]:
    """The orders issued in the local month ``YYYY-MM`` (every department), by number."""
    start, end = month_bounds(month)
    return list(db.session.scalars(select(SupervisionOrder).where(
        SupervisionOrder.issued_at >= start, SupervisionOrder.issued_at < end)
        .order_by(SupervisionOrder.year, SupervisionOrder.seq)))


def issuable_departments(actor: Any) -> list[tuple[int, str]]:
    """(id, name) of the departments ``actor`` may issue an order to, for the form's menu."""
    scope = issuer_scope(actor)
    if scope is not None and not scope:
        return []
    return directory.department_choices(scope)


def ticket_by_id(ticket_id: int | None) -> Ticket:
    """The ticket an order form names, or NotFoundError when there is none with that id."""
    ticket = db.session.get(Ticket, ticket_id) if ticket_id else None
    if ticket is None:
        raise NotFoundError("没有这张工单")
    return ticket
