"""What every statistic counts: three cohorts, the counters over them, and the rates of DOMAIN.md.

A rate is one counter over another counter *of the same cohort*, and the numerator's rows are
the denominator's rows with one condition more, so no rate can pass 100 % (tests/statistics
drives random histories through the real services to check it). The cohorts:

* 评价 (ratings): valid ratings (an invalid one — appeal upheld, fraud review — is excluded
  everywhere) in the month of ``rated_at``, for the units the rating names (department, hall,
  window, staff, service item; an anonymous walk-in rating names its window's).
  好评率, 差评率, 主动评价好评率, 平均分.
* 办件 (records): service records completed in the month, for the units the record names.
  主动评价率 = those of them with a valid active (non-default) rating, whenever it came; 未评率
  (console only) = those with no valid rating at all. An
  anonymous rating has no record: it counts in 好评率 and 差评率, never in 主动评价率.
* 工单 (tickets): tickets opened in the month (tickets of invalid ratings excluded), for the
  department that holds the ticket now (after a 转办 the receiving one, numerator and
  denominator alike), the hall, window and staff member the ticket names (a complaint's hall
  and window too) and the rated service item. 差评回复率, 回访整改率, 按时整改率, 回访整改满意率;
  回访及时率 (console only) = real-name bad-review tickets verified by their verification deadline.

One definition serves both sides: ``service.compute_month`` sums each counter over its cohort
grouped by unit, and the console drill-down (drilldown.py) lists the cohort's rows of one unit
and month where the same condition holds, so a figure and its list cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import and_, case, func, or_, true
from sqlalchemy.orm import outerjoin

from feedback.evaluations.levels import CHANNELS, LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.statistics.months import month_bounds
from feedback.tickets.models import Ticket
from feedback.tickets.workflow import HANDLING_RATINGS

# "department": the department's own figures (本部门); "department_tree": rolled up over the
# department and every department below it (含下级部门), summed from the "department" rows.
UNIT_KINDS = ("all", "department", "department_tree", "hall", "window", "staff", "service_item")
GROUPED_KINDS = ("department", "hall", "window", "staff", "service_item")  # one GROUP BY each
SCOPE_LABELS = {"department": "本部门", "department_tree": "含下级部门"}

e, r, t = Evaluation, ServiceRecord, Ticket


@dataclass(frozen=True, eq=False)
class Cohort:
    """The rows one family of counters counts: a table (joined to what the conditions read), the
    condition every row meets, the column whose local month places a row, and the column naming
    each kind of unit."""

    key: str
    label: str  # what one row is, in Chinese
    rule: str  # which rows, which month, which units (Chinese)
    time_column: Any
    units: dict[str, Any]
    source: Any
    valid: Any

    def where(self, month: str) -> list:
        """The conditions of the cohort's rows in ``month``."""
        start, end = month_bounds(month)
        return [self.time_column >= start, self.time_column < end, self.valid]

    def unit_column(self, kind: str):
        """The column naming a unit of ``kind`` (the department's for 'department_tree'), None for 'all'."""
        if kind == "all":
            return None
        return self.units["department" if kind == "department_tree" else kind]


RATINGS = Cohort(
    "ratings", "评价",
    "当月（北京时间，按评价时间）的有效评价，计入评价所指的部门、大厅、窗口、工作人员和服务事项（匿名评价计入其窗口）；"
    "无效评价（申诉成立、核查认定刷评）一律不计。",
    e.rated_at,
    {"department": e.department_id, "hall": e.hall_id, "window": e.window_id, "staff": e.staff_id,
     "service_item": e.service_item_id},
    Evaluation, e.invalid.is_(False))
RECORDS = Cohort(
    "records", "办件",
    "当月（北京时间，按办结时间）办结的办件，计入办件所属的部门、大厅、窗口、工作人员和服务事项；"
    "办件无论何时评价，都计入办结的月份。",
    r.completed_at,
    {"department": r.department_id, "hall": r.hall_id, "window": r.window_id, "staff": r.staff_id,
     "service_item": r.service_item_id},
    outerjoin(ServiceRecord, Evaluation, and_(e.service_record_id == r.id, e.invalid.is_(False))), true())
TICKETS = Cohort(
    "tickets", "工单",
    "当月（北京时间，按工单生成时间）生成的差评工单和投诉工单，计入现在承办工单的部门（转办后计入接收部门，分子分母相同）、"
    "工单所指的大厅、窗口和工作人员（投诉所指的大厅、窗口同样计入）以及差评的服务事项；无效评价的工单不计。",
    t.created_at,
    {"department": t.department_id, "hall": t.hall_id, "window": t.window_id, "staff": t.staff_id,
     "service_item": e.service_item_id},
    outerjoin(Ticket, Evaluation, e.id == t.evaluation_id), or_(e.id.is_(None), e.invalid.is_(False)))
COHORTS = (RATINGS, RECORDS, TICKETS)


@dataclass(frozen=True, eq=False)
class Counter:
    """One stored count: the rows of ``cohort`` where ``condition`` holds (every row when None);
    ``value`` (the score) is summed over those rows instead of counting them."""

    name: str
    cohort: Cohort
    label: str  # what is counted, in Chinese
    condition: Any = None
    value: Callable[[], Any] | None = None

    def aggregate(self):
        """The SQL aggregate of this counter over a GROUP BY of its cohort."""
        if self.value is not None:
            v = self.value()
            return func.sum(v if self.condition is None else case((self.condition, v), else_=0))
        if self.condition is None:
            return func.count()
        return func.sum(case((self.condition, 1), else_=0))


def score_expression():
    """The score column of DOMAIN.md (非常满意 10 … 非常不满意 0) of a rating's level."""
    return case(*[(e.level == v, lv.score) for v, lv in LEVELS.items()], else_=0)


_GOOD, _BAD, _ACTIVE = e.level >= 3, e.level <= 2, e.is_active_rating.is_(True)
_CLOSED = t.closed_at.is_not(None)
_BAD_TICKET = t.evaluation_id.is_not(None)
_REALNAME_BAD = and_(_BAD_TICKET, e.real_name.is_(True))

COUNTER_DEFS: dict[str, Counter] = {c.name: c for c in (
    Counter("records", RECORDS, "办件"),
    Counter("records_active", RECORDS, "已被群众主动评价的办件", and_(e.id.is_not(None), _ACTIVE)),
    Counter("records_unrated", RECORDS, "没有任何有效评价的办件（系统默认评价也算已评）", e.id.is_(None)),
    Counter("ratings", RATINGS, "有效评价"),
    Counter("good", RATINGS, "好评（基本满意及以上）", _GOOD),
    Counter("bad", RATINGS, "差评（不满意、非常不满意）", _BAD),
    *[Counter(f"level{v}", RATINGS, f"“{lv.label}”评价", e.level == v) for v, lv in sorted(LEVELS.items())],
    Counter("score_sum", RATINGS, "评价分值合计", value=score_expression),
    Counter("active", RATINGS, "主动评价（不含系统默认评价）", _ACTIVE),
    Counter("active_good", RATINGS, "主动评价中的好评", and_(_ACTIVE, _GOOD)),
    Counter("tickets", TICKETS, "工单"),
    Counter("tickets_closed", TICKETS, "已办结工单", _CLOSED),
    Counter("tickets_on_time", TICKETS, "在期限内答复群众的已办结工单", and_(_CLOSED, t.replied_at <= t.due_at)),
    Counter("bad_tickets", TICKETS, "差评工单", _BAD_TICKET),
    Counter("bad_replied", TICKETS, "已答复群众的差评工单", and_(_BAD_TICKET, t.replied_at.is_not(None))),
    Counter("realname_bad", TICKETS, "实名差评工单", _REALNAME_BAD),
    Counter("realname_bad_rectified", TICKETS, "已回访核实并整改的实名差评工单",
            and_(_REALNAME_BAD, t.verified_at.is_not(None), t.rectified_at.is_not(None))),
    Counter("realname_bad_verified_on_time", TICKETS, "在回访核实期限内完成回访核实的实名差评工单",
            and_(_REALNAME_BAD, t.verified_at.is_not(None), t.verify_due_at.is_not(None),
                 t.verified_at <= t.verify_due_at)),
    Counter("handling_rated", TICKETS, "群众评价了办理结果的工单", t.handling_rating.in_(list(HANDLING_RATINGS))),
    Counter("handling_satisfied", TICKETS, "群众对办理结果满意或基本满意的工单",
            t.handling_rating.in_(("satisfied", "basically_satisfied"))),
    # The channel mix (评价渠道): stored like the counters above (models.CHANNEL_COUNTERS).
    *[Counter(f"channel_{code}", RATINGS, f"经{label}的有效评价", e.channel == code) for code, label in CHANNELS.items()],
)}


@dataclass(frozen=True)
class RateDef:
    """One rate of DOMAIN.md: counter ``num`` over counter ``den`` (the same cohort), its rule in Chinese."""

    attr: str
    label: str
    num: str
    den: str
    rule: str
    kind: str = "pct"  # pct: a fraction shown as a percentage; score: the average score (0–10)


RATES = (
    RateDef("good_rate", "好评率", "good", "ratings", "好评（基本满意、满意、非常满意）÷ 全部有效评价"),
    RateDef("bad_rate", "差评率", "bad", "ratings", "差评（不满意、非常不满意）÷ 全部有效评价"),
    RateDef("active_rate", "主动评价率", "records_active", "records",
            "当月办结的办件中被群众主动评价（不含系统默认评价）的办件 ÷ 当月办结的办件；匿名评价没有办件，不计入"),
    RateDef("active_good_rate", "主动评价好评率", "active_good", "active", "主动评价中的好评 ÷ 主动评价"),
    RateDef("bad_reply_rate", "差评回复率", "bad_replied", "bad_tickets",
            "已答复群众的差评工单 ÷ 差评工单（计入现在承办工单的部门）"),
    RateDef("rectify_rate", "回访整改率", "realname_bad_rectified", "realname_bad",
            "已回访核实并整改的实名差评工单 ÷ 实名差评工单"),
    RateDef("on_time_rate", "按时整改率", "tickets_on_time", "tickets_closed",
            "在期限（含批准的延期）内答复群众的已办结工单 ÷ 已办结工单；答复群众即停止计时"),
    RateDef("handling_satisfaction_rate", "回访整改满意率", "handling_satisfied", "handling_rated",
            "群众评价办理结果为“满意”或“基本满意”的工单 ÷ 群众评价了办理结果的工单（未评价的不计）"),
    RateDef("average_score", "平均分", "score_sum", "ratings",
            "有效评价的平均分：非常满意 10 分、满意 8 分、基本满意 6 分、不满意 3 分、非常不满意 0 分", kind="score"),
)
# Rates shown only inside the console (/console/stats, the drill-down), never published.
INTERNAL_RATES = (
    RateDef("unrated_rate", "未评率", "records_unrated", "records",
            "当月办结的办件中没有任何有效评价（含系统默认评价即算已评）的办件 ÷ 当月办结的办件"),
    RateDef("verify_on_time_rate", "回访及时率", "realname_bad_verified_on_time", "realname_bad",
            "在回访核实期限内完成回访核实的实名差评工单 ÷ 实名差评工单（计入现在承办工单的部门）"),
)
ALL_RATES = RATES + INTERNAL_RATES
RATE_BY_ATTR = {rate.attr: rate for rate in ALL_RATES}

# The columns whose change can move a count, per model: the dirty-month marker (service.py)
# ignores changes to any other column (a deadline sweep's bookkeeping, an erased phone number).
WATCHED = {
    Evaluation: ("rated_at", "invalid", "level", "channel", "reasons", "is_active_rating", "real_name", "department_id",
                 "hall_id", "window_id", "staff_id", "service_item_id", "service_record_id"),
    ServiceRecord: ("completed_at", "department_id", "hall_id", "window_id", "staff_id", "service_item_id"),
    Ticket: ("created_at", "evaluation_id", "department_id", "hall_id", "window_id", "staff_id", "closed_at",
             "replied_at", "due_at", "verify_due_at", "verified_at", "rectified_at", "handling_rating"),
}
