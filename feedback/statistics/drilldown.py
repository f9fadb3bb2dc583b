"""The rows behind every count, and every rate explained.

Which ratings, records or tickets counter X of unit U counts in month M is read from the same
definitions the statistics are computed from (definitions.py: the counter's cohort, its month
rule, the unit's column and the counter's condition), so a list and its figure cannot
disagree. The lists are for the console and its CSV: a phone number is masked
(contact.mask_phone), a citizen's name and free text are never shown. A handler sees the units
of their departments (:func:`unit_in_scope`) and, behind each figure, only the rows of their
departments (``scope``). ``explain`` gives each
rate of a unit and month with its numerator, denominator and rule, for the console's unit
page and the ``statistics explain`` command.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from sqlalchemy import case, cast, exists, func, select
from sqlalchemy.dialects.postgresql import JSONB

from feedback.complaints.models import Complaint
from feedback.contact import mask_phone
from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.directory.service import subtree_ids
from feedback.errors import NotFoundError
from feedback.evaluations.levels import CHANNELS, LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.statistics import service as stats
from feedback.statistics.definitions import ALL_RATES, COUNTER_DEFS, SCOPE_LABELS, Cohort, Counter, RateDef
from feedback.statistics.models import COUNTERS, STORED_COUNTERS, StatMonthly
from feedback.tickets.models import Ticket
from feedback.tickets.workflow import HANDLING_RATINGS, SOURCES, state_label

KIND_NAMES = {"all": "全市", "department": "部门", "department_tree": "部门", "hall": "大厅", "window": "窗口",
              "staff": "工作人员", "service_item": "服务事项"}
_MODELS = {"department": Department, "department_tree": Department, "hall": Hall, "window": Window,
           "staff": Staff, "service_item": ServiceItem}


class UnknownUnitError(NotFoundError, code="unknown-unit"):
    """A unit reference (kind:code) that names no unit."""


@dataclass(frozen=True)
class Unit:
    """One unit of the statistics: its kind, id, public code and name."""

    kind: str
    id: int
    code: str
    name: str

    @property
    def ref(self) -> str:
        """How the unit is written in URLs and on the command line: ``department:GA``, ``all``."""
        return "all" if self.kind == "all" else f"{self.kind}:{self.code}"

    @property
    def label(self) -> str:
        """The unit's name for a heading, saying which department figure it is (本部门 / 含下级部门)."""
        if self.kind == "all":
            return "全市"
        scope = SCOPE_LABELS.get(self.kind)
        code = f"工号 {self.code}" if self.kind == "staff" else self.code
        return f"{KIND_NAMES[self.kind]} {self.name}（{code}）" + (f" · {scope}" if scope else "")


def parse_unit(ref: str) -> Unit:
    """The unit a reference names: ``all``, ``department:CODE`` (本部门), ``department_tree:CODE``
    (含下级部门), ``hall:CODE``, ``window:CODE``, ``staff:NUMBER`` (工号) or ``service_item:CODE``.
    Raises UnknownUnitError."""
    ref = (ref or "").strip()
    if ref == "all":
        return Unit("all", 0, "all", "全市")
    kind, _, code = ref.partition(":")
    model = _MODELS.get(kind)
    if model is None or not code:
        raise UnknownUnitError(f"无法识别的统计单位“{ref}”：应为 all、department:编码、department_tree:编码、"
                               "hall:编码、window:编码、staff:工号 或 service_item:编码")
    column = model.staff_number if kind == "staff" else model.code
    row = None
    if "\x00" not in code:  # never in a code, and PostgreSQL refuses it in a query: not found, not a 400
        row = db.session.execute(select(model.id, model.name).where(column == code)).first()
    if row is None:
        raise UnknownUnitError(f"{KIND_NAMES[kind]}“{code}”不存在")
    return Unit(kind, row.id, code, row.name)


def unit_in_scope(unit: Unit, scope: set[int] | None) -> bool:
    """Whether a user with department ``scope`` (None: every department) may see this unit.

    Supervisors see every unit. A handler's ``scope`` is their departments and every department
    below them (accounts.department_scope), and a unit is theirs when it belongs to it:

    * a department (本部门 or 含下级部门) in the scope;
    * a window, a staff member or a service item (事项) whose owning department
      (``department_id`` of the directory row) is in the scope;
    * a hall that has windows and whose windows all belong to departments in the scope: a hall
      shared with another department (most city halls) is not theirs, because its figures are the
      sum of every department's windows there and cannot be cut down from the stored counts;
    * never the city (``all``).

    A unit being theirs lets them see its figures (stored counts); the rows listed behind a figure
    are narrowed further to the rows of their own departments (:func:`conditions` with ``scope``):
    a ticket of their window moved to another department, or a rating of their service item taken
    at another department's window, is counted in the figure but never listed to them.
    """
    return scope is None or unit.id in set(scoped_unit_ids(unit.kind, scope) or ())


def scoped_unit_ids(kind: str, scope: set[int] | None) -> list[int] | None:
    """The ids of the units of ``kind`` a user with department ``scope`` may see (the rule of
    :func:`unit_in_scope`, for a whole unit table); None when the user sees every unit."""
    if scope is None:
        return None
    departments = sorted(scope)
    if kind in ("department", "department_tree"):
        return departments
    if kind in ("window", "staff", "service_item"):
        model = _MODELS[kind]
        return list(db.session.scalars(select(model.id).where(model.department_id.in_(departments))
                                       .order_by(model.id)))
    if kind == "hall":
        foreign = func.sum(case((Window.department_id.in_(departments), 0), else_=1))
        return list(db.session.scalars(select(Window.hall_id).group_by(Window.hall_id).having(foreign == 0)
                                       .order_by(Window.hall_id)))
    return []


# ---------------------------------------------------------------- which rows count

def counter(name: str) -> Counter:
    """The definition of counter ``name``; NotFoundError if there is none."""
    found = COUNTER_DEFS.get(name)
    if found is None:
        raise NotFoundError(f"没有名为“{name}”的统计项")
    return found


def _unit_conditions(cohort: Cohort, unit: Unit) -> list:
    column = cohort.unit_column(unit.kind)
    if column is None:
        return []
    if unit.kind == "department_tree":
        return [column.in_(sorted(subtree_ids([unit.id])))]
    return [column == unit.id]


# A breakdown (breakdowns.py) divides one counter's rows: the channel mix the valid ratings,
# the reasons the valid bad ratings. Its drill-down lists that counter's rows with one condition more.
BREAKDOWN_COUNTERS = {"channel": "ratings", "reason": "bad"}
Breakdown = tuple[str, str]  # (dimension, key), e.g. ("channel", "sms"), ("reason", "115")


def breakdown_condition(breakdown: Breakdown):
    """The condition a rating meets to count under ``breakdown``; NotFoundError for an unknown one."""
    dimension, key = breakdown
    if dimension == "channel" and key in CHANNELS:
        return Evaluation.channel == key
    if dimension == "reason" and key.isdigit() and len(key) <= 9:
        code = int(key)
        if db.session.get_bind().dialect.name == "postgresql":
            return cast(Evaluation.reasons, JSONB).contains([code])
        cited = func.json_each(Evaluation.reasons).table_valued("value")
        return exists(select(1).select_from(cited).where(cited.c.value == code))
    raise NotFoundError(f"没有这项分布：{dimension}={key}")


def conditions(name: str, unit: Unit, month: str, breakdown: Breakdown | None = None,
               scope: set[int] | None = None) -> tuple[Cohort, list]:
    """The cohort of counter ``name`` and the conditions of its rows for ``unit`` in ``month``
    (only those counted under ``breakdown`` when given: it must divide counter ``name``; only
    those of a department in ``scope`` when given: a handler's rows, see :func:`unit_in_scope`)."""
    definition = counter(name)
    cohort = definition.cohort
    where = cohort.where(month) + _unit_conditions(cohort, unit)
    if scope is not None:
        # The row's department: the rated or serving department, the ticket's current holder.
        where.append(cohort.unit_column("department").in_(sorted(scope)))
    if definition.condition is not None:
        where.append(definition.condition)
    if breakdown is not None:
        if BREAKDOWN_COUNTERS.get(breakdown[0]) != name:
            raise NotFoundError(f"统计项“{name}”没有这项分布")
        where.append(breakdown_condition(breakdown))
    return cohort, where


def count(name: str, unit: Unit, month: str, breakdown: Breakdown | None = None,
          scope: set[int] | None = None) -> int:
    """Counter ``name`` of ``unit`` in ``month`` counted live from the source rows (the score
    summed); only the rows of departments in ``scope`` when given."""
    definition = counter(name)
    cohort, where = conditions(name, unit, month, breakdown, scope)
    aggregate = func.sum(definition.value()) if definition.value is not None else func.count()
    return int(db.session.scalar(select(aggregate).select_from(cohort.source).where(*where)) or 0)


# ---------------------------------------------------------------- listing them (masked)

COLUMNS = {  # cohort key -> (field, Chinese header) of each listed row
    "ratings": [("id", "评价编号"), ("rated_at", "评价时间"), ("level", "评价等级"), ("score", "分值"),
                ("channel", "评价渠道"), ("active", "主动评价"), ("real_name", "实名"), ("record_number", "办件编号"),
                ("phone", "联系电话"), ("department", "部门"), ("window", "窗口"), ("staff", "工号"),
                ("ticket_id", "工单号")],
    "records": [("id", "办件ID"), ("record_number", "办件编号"), ("completed_at", "办结时间"),
                ("service_item", "服务事项"), ("department", "部门"), ("window", "窗口"), ("staff", "工号"),
                ("phone", "联系电话"), ("rating", "评价"), ("channel", "评价渠道"), ("rated_at", "评价时间")],
    "tickets": [("id", "工单号"), ("source", "来源"), ("created_at", "生成时间"), ("department", "承办部门"),
                ("window", "窗口"), ("state", "状态"), ("level", "差评等级"), ("real_name", "实名"),
                ("phone", "联系电话"), ("due_at", "答复期限"), ("verified_at", "回访核实"), ("rectified_at", "整改"),
                ("replied_at", "答复群众"), ("on_time", "按时答复"), ("closed_at", "办结"),
                ("handling_rating", "办理结果评价")],
}


def _statement(cohort: Cohort, where: list):
    """The listing query of a cohort: its source and conditions, with the names it shows joined
    (each join matches at most one row, so the rows are exactly the counted ones)."""
    e, r, t = Evaluation, ServiceRecord, Ticket
    if cohort.key == "ratings":
        return (select(e.id, e.rated_at, e.level, e.channel, e.is_active_rating, e.real_name, r.record_number,
                       r.citizen_phone.label("phone"), Department.name.label("department"),
                       Window.name.label("window"), Staff.staff_number.label("staff"), t.id.label("ticket_id"))
                .select_from(cohort.source)
                .outerjoin(r, r.id == e.service_record_id).outerjoin(t, t.evaluation_id == e.id)
                .outerjoin(Department, Department.id == e.department_id).outerjoin(Window, Window.id == e.window_id)
                .outerjoin(Staff, Staff.id == e.staff_id)
                .where(*where).order_by(e.rated_at, e.id))
    if cohort.key == "records":
        return (select(r.id, r.record_number, r.completed_at, ServiceItem.name.label("service_item"),
                       Department.name.label("department"), Window.name.label("window"),
                       Staff.staff_number.label("staff"), r.citizen_phone.label("phone"), e.level,
                       e.channel, e.rated_at)
                .select_from(cohort.source)
                .outerjoin(ServiceItem, ServiceItem.id == r.service_item_id)
                .outerjoin(Department, Department.id == r.department_id).outerjoin(Window, Window.id == r.window_id)
                .outerjoin(Staff, Staff.id == r.staff_id)
                .where(*where).order_by(r.completed_at, r.id))
    return (select(t.id, t.source, t.created_at, Department.name.label("department"), Window.name.label("window"),
                   t.state, e.level, e.real_name, func.coalesce(r.citizen_phone, Complaint.contact_phone).label("phone"),
                   t.due_at, t.verified_at, t.rectified_at, t.replied_at, t.closed_at, t.handling_rating)
            .select_from(cohort.source)
            .outerjoin(r, r.id == e.service_record_id).outerjoin(Complaint, Complaint.id == t.complaint_id)
            .outerjoin(Department, Department.id == t.department_id).outerjoin(Window, Window.id == t.window_id)
            .where(*where).order_by(t.created_at, t.id))


def _yes_no(value) -> str:
    return "" if value is None else ("是" if value else "否")


def _shown(cohort: Cohort, row) -> dict[str, Any]:
    """One listed row as display values: phone masked, codes spelled out in Chinese."""
    out: dict[str, Any] = {"id": row.id, "phone": mask_phone(row.phone), "department": row.department or "",
                           "window": row.window or ""}
    if cohort.key == "ratings":
        level = LEVELS.get(row.level)
        out.update(rated_at=row.rated_at, level=level.label if level else row.level,
                   score=level.score if level else "", channel=CHANNELS.get(row.channel, row.channel),
                   active=_yes_no(row.is_active_rating), real_name=_yes_no(row.real_name),
                   record_number=row.record_number or "（匿名评价）", staff=row.staff or "", ticket_id=row.ticket_id)
    elif cohort.key == "records":
        level = LEVELS.get(row.level) if row.level is not None else None
        out.update(record_number=row.record_number, completed_at=row.completed_at, service_item=row.service_item or "",
                   staff=row.staff or "", rating=level.label if level else "未评价",
                   channel=CHANNELS.get(row.channel, row.channel or ""), rated_at=row.rated_at)
    else:
        level = LEVELS.get(row.level) if row.level is not None else None
        on_time = None if row.replied_at is None or row.due_at is None else row.replied_at <= row.due_at
        out.update(source=SOURCES.get(row.source, row.source), created_at=row.created_at,
                   department=row.department or "待分办", state=state_label(row.state),
                   level=level.label if level else "", real_name=_yes_no(row.real_name), due_at=row.due_at,
                   verified_at=row.verified_at, rectified_at=row.rectified_at, replied_at=row.replied_at,
                   on_time=_yes_no(on_time), closed_at=row.closed_at,
                   handling_rating=HANDLING_RATINGS.get(row.handling_rating or "", row.handling_rating or ""))
    return out


def rows(name: str, unit: Unit, month: str, page: int = 1, per_page: int = 100,
         breakdown: Breakdown | None = None, scope: set[int] | None = None) -> tuple[list[dict], int]:
    """One page of the rows counter ``name`` of ``unit`` counts in ``month`` (masked), and how
    many there are; only the rows of departments in ``scope`` when given (a handler's list)."""
    cohort, where = conditions(name, unit, month, breakdown, scope)
    total = int(db.session.scalar(select(func.count()).select_from(cohort.source).where(*where)) or 0)
    stmt = _statement(cohort, where).limit(per_page).offset((max(page, 1) - 1) * per_page)
    return [_shown(cohort, row) for row in db.session.execute(stmt)], total


def all_rows(name: str, unit: Unit, month: str, batch: int = 1000,
             breakdown: Breakdown | None = None, scope: set[int] | None = None) -> Iterator[dict]:
    """Every row counter ``name`` of ``unit`` counts in ``month`` (masked), read in batches (the
    CSV); only the rows of departments in ``scope`` when given (a handler's download)."""
    cohort, where = conditions(name, unit, month, breakdown, scope)
    result = db.session.execute(_statement(cohort, where).execution_options(yield_per=batch))
    for row in result:
        yield _shown(cohort, row)


# ---------------------------------------------------------------- every rate explained

@dataclass
class Explained:
    """One rate of a unit and month: its value, numerator and denominator (stored, and live when
    checked) and the rule that defines it."""

    rate: RateDef
    value: float | None
    num: int
    den: int
    num_counter: Counter
    den_counter: Counter
    live_num: int | None = None
    live_den: int | None = None

    @property
    def agrees(self) -> bool | None:
        """Whether the stored counts equal the live ones (None when not checked)."""
        if self.live_num is None:
            return None
        return (self.live_num, self.live_den) == (self.num, self.den)


def stored_counts(unit: Unit, month: str) -> dict[str, int]:
    """The stored counters of a unit and month, the channel counts too (zeros where no row is
    stored): its one StatMonthly row."""
    m = StatMonthly
    row = db.session.execute(select(*[getattr(m, c) for c in STORED_COUNTERS])
                             .where(m.unit_kind == unit.kind, m.unit_id == unit.id, m.month == month)).first()
    return {c: int(v or 0) for c, v in zip(STORED_COUNTERS, row)} if row else dict.fromkeys(STORED_COUNTERS, 0)


def explain(unit: Unit, month: str, live: bool = False) -> list[Explained]:
    """Every rate of ``unit`` in ``month`` from the stored counters; ``live`` also counts each
    numerator and denominator from the source rows (they differ only until the next refresh)."""
    counts = stored_counts(unit, month)
    rates = stats.Rates(counts)
    out = []
    for rate in ALL_RATES:
        item = Explained(rate, getattr(rates, rate.attr), counts[rate.num], counts[rate.den],
                         COUNTER_DEFS[rate.num], COUNTER_DEFS[rate.den])
        if live:
            item.live_num, item.live_den = count(rate.num, unit, month), count(rate.den, unit, month)
        out.append(item)
    return out


def format_value(rate: RateDef, value: float | None) -> str:
    """A rate as shown everywhere: a percentage with one decimal, the score with two, — when empty."""
    if value is None:
        return "—"
    return f"{value * 100:.1f}%" if rate.kind == "pct" else f"{value:.2f}"


def explain_text(unit: Unit, month: str, live: bool = False) -> str:
    """The ``statistics explain`` report: each rate with its numerator, denominator and rules (Chinese)."""
    lines = [f"{unit.label} · {month}"]
    if unit.kind in SCOPE_LABELS:
        lines.append("本部门：只含本部门自身的数据；含下级部门：本部门及其全部下级部门之和。")
    cohorts_seen: list[Cohort] = []
    for item in explain(unit, month, live):
        rate = item.rate
        lines.append("")
        lines.append(f"{rate.label}：{format_value(rate, item.value)} = {item.num} / {item.den}")
        lines.append(f"  分子：{item.num_counter.label}（{rate.num}）{item.num}")
        lines.append(f"  分母：{item.den_counter.label}（{rate.den}）{item.den}")
        lines.append(f"  口径：{rate.rule}")
        lines.append(f"  统计对象：{item.den_counter.cohort.label}")
        if item.agrees is not None:
            lines.append("  实时核对：一致" if item.agrees else
                         f"  实时核对：分子 {item.live_num}、分母 {item.live_den}（统计每分钟刷新，尚未刷新）")
        if item.den_counter.cohort not in cohorts_seen:
            cohorts_seen.append(item.den_counter.cohort)
    lines.append("")
    lines.append("统计对象的口径：")
    for cohort in cohorts_seen:
        lines.append(f"  {cohort.label}：{cohort.rule}")
    lines.append("无效评价（申诉成立、核查认定刷评）一律不计；分母为 0 的比率显示为“—”。")
    return "\n".join(lines)


def counter_labels() -> list[tuple[str, str, str]]:
    """(counter, Chinese label, cohort label) of every stored counter, in the stored order."""
    return [(name, COUNTER_DEFS[name].label, COUNTER_DEFS[name].cohort.label) for name in COUNTERS]

