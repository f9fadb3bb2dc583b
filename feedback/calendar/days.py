"""Working days (工作日): which days count, and when a deadline of N working days ends.

Precedence for one date: an active administrator entry (放假 / 调休上班) wins; then the
``chinesecalendar`` package (1.11.0 knows 2004–2026); then the plain rule, Monday to
Friday work and weekends off. A year is *known* when an administrator marked its
official arrangement as entered (``calendar import`` or the admin page) or when the
package covers it. Days of any other year are *provisional*: they are computed with the
plain rule and every deadline that touches them says so, so the ticket sweep can
recompute it once the year's arrangement arrives. Nothing here crashes on a year the
package does not know, and nothing silently guesses.

A known year's end is not final either: next year's arrangement can still move the last days
of December (2018-12-29, a Saturday, became a 调休 workday for the 2019 New Year). So a
deadline counted from a December day, or whose days include the last
YEAR_END_PROVISIONAL_DAYS days of December, is provisional until the next year is known.

The administrator's entries are written by ``entries.py``, import files read by
``importer.py``, and the admin page's year lists built by ``overview.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

import chinese_calendar
from flask import current_app
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from feedback.calendar.models import WORKDAY, CalendarDay, CalendarYear
from feedback.clock import as_utc, local_zone
from feedback.errors import ValidationError
from feedback.extensions import db

# Where a day's ruling comes from; also the three states of a year.
ORIGIN_ADMIN = "admin"
ORIGIN_PACKAGE = "chinesecalendar"
ORIGIN_PROVISIONAL = "provisional"
ORIGIN_LABELS = {
    ORIGIN_ADMIN: "管理员录入",
    ORIGIN_PACKAGE: "chinesecalendar",
    ORIGIN_PROVISIONAL: "临时（无官方安排）",
}

REASON_LABELS = {
    "admin holiday": "放假（管理员录入）",
    "admin workday": "调休上班（管理员录入）",
    "statutory holiday": "法定节假日",
    "make-up workday": "调休上班",
    "weekend": "周末",
    "workday": "工作日",
}
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
PACKAGE_SOURCE = f"chinesecalendar {getattr(chinese_calendar, '__version__', '')}".strip()
DEFAULT_ADMIN_SOURCE = "管理员录入"
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}
MAX_WORKING_DAYS = 3650


@dataclass(frozen=True)
class DayInfo:
    """The status of one calendar day (in Asia/Shanghai).

    ``reason`` is one of 'admin holiday', 'admin workday', 'statutory holiday',
    'make-up workday', 'weekend', 'workday'. ``origin`` says where the ruling came
    from: 'admin', 'chinesecalendar' or 'provisional'. ``provisional`` is a property of
    the day's year: True when neither an administrator nor the package knows the year,
    even if that one date has an administrator entry.
    """

    is_workday: bool
    reason: str
    name: str = ""
    source: str = ""
    provisional: bool = False
    origin: str = ORIGIN_PACKAGE

    @property
    def reason_label(self) -> str:
        """The reason in Chinese, e.g. 调休上班（管理员录入）."""
        return REASON_LABELS.get(self.reason, self.reason)

    @property
    def is_override(self) -> bool:
        """True when an administrator entry decided this day."""
        return self.reason.startswith("admin ")


@dataclass(frozen=True)
class Deadline:
    """A deadline of ``working_days`` working days from ``start``.

    ``due_at`` is 23:59:59 Asia/Shanghai of working day N, as aware UTC. ``days`` holds
    every calendar day from the day after creation to the due day with its status, so
    the computation can be explained. ``provisional`` is True when any of these days lies
    in a year without official data, or it runs from or through the end of a December whose
    next year's arrangement is not known yet (``awaiting_years``): the deadline must be
    recomputed when that data arrives.
    """

    start: datetime
    working_days: int
    due_at: datetime
    provisional: bool
    days: list[tuple[date, DayInfo]]
    awaiting_years: tuple[int, ...] = ()

    @property
    def due_date(self) -> date:
        """The local calendar day the deadline ends on."""
        return self.days[-1][0]

    @property
    def provisional_years(self) -> list[int]:
        """The years without official data that this deadline depends on (a year whose
        arrangement may still move the December days it counts included)."""
        return sorted({d.year for d, info in self.days if info.provisional} | set(self.awaiting_years))


@dataclass(frozen=True)
class ExplainedDay:
    """One line of a deadline explanation: a day, its status and its working-day number."""

    date: date
    info: DayInfo
    ordinal: int | None  # 1..N for counted working days, None for days off

    @property
    def weekday(self) -> str:
        """周一 … 周日."""
        return WEEKDAYS[self.date.weekday()]

    @property
    def text(self) -> str:
        """A short Chinese description, e.g. "第3个工作日（调休上班：国庆节调休上班）"."""
        info = self.info
        if self.ordinal is not None:
            head = f"第{self.ordinal}个工作日"
            if info.reason in ("make-up workday", "admin workday"):
                head += f"（{info.reason_label}：{info.name}）" if info.name else f"（{info.reason_label}）"
        elif info.reason == "weekend":
            head = "周末，不计"
        else:
            head = f"{info.reason_label}，不计" + (f"：{info.name}" if info.name else "")
        return head


class _Entry(NamedTuple):
    kind: str
    name: str
    source: str


@lru_cache(maxsize=None)
def package_supports(year: int) -> bool:
    """Whether the installed ``chinesecalendar`` has data for ``year``.

    Probed, not hard-coded, so upgrading the package extends the known years.
    """
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


class WorkingCalendar:
    """A snapshot of the calendar data for many look-ups.

    It reads the marked years once and each touched year's entries once, so a sweep
    computing thousands of deadlines issues a handful of queries. Build a new one after
    the calendar changes. The module-level functions build one per call, except
    add_working_days: a ticket's deadlines use the transaction's (shared_calendar).
    """

    def __init__(self, zone: ZoneInfo | None = None):
        self.zone = zone or local_zone()
        self._marked: dict[int, str] | None = None
        self._entries: dict[int, dict[date, _Entry]] = {}

    # -- data
    def _marked_years(self) -> dict[int, str]:
        if self._marked is None:
            self._marked = {year: source for year, source in
                            db.session.execute(select(CalendarYear.year, CalendarYear.source))}
        return self._marked

    def _year_entries(self, year: int) -> dict[date, _Entry]:
        if year not in self._entries:
            rows = db.session.execute(
                select(CalendarDay.date, CalendarDay.kind, CalendarDay.name, CalendarDay.source)
                .where(CalendarDay.active.is_(True),
                       CalendarDay.date >= date(year, 1, 1), CalendarDay.date <= date(year, 12, 31)))
            self._entries[year] = {r.date: _Entry(r.kind, r.name, r.source) for r in rows}
        return self._entries[year]

    # -- queries
    def year_source(self, year: int) -> str:
        """'admin' (officially entered), 'chinesecalendar', or 'provisional'."""
        if year in self._marked_years():
            return ORIGIN_ADMIN
        if package_supports(year):
            return ORIGIN_PACKAGE
        return ORIGIN_PROVISIONAL

    def day_status(self, d: date) -> DayInfo:
        """The status of one local calendar day; see the module docstring for precedence."""
        if isinstance(d, datetime):
            # chinese_calendar would silently take .date() of a UTC moment: refuse.
            raise TypeError("day_status takes a date; convert a datetime to local time first")
        year_source = self.year_source(d.year)
        provisional = year_source == ORIGIN_PROVISIONAL
        entry = self._year_entries(d.year).get(d)
        if entry is not None:
            workday = entry.kind == WORKDAY
            return DayInfo(workday, "admin workday" if workday else "admin holiday", entry.name,
                           entry.source or DEFAULT_ADMIN_SOURCE, provisional, ORIGIN_ADMIN)
        weekend = d.weekday() >= 5
        if package_supports(d.year):
            # The package's own dicts, as get_holiday_detail reads them (make-up days
            # first), without its per-call range check over every known date.
            english = chinese_calendar.workdays.get(d)
            if english:
                return DayInfo(True, "make-up workday", HOLIDAY_NAMES.get(english, english) + "调休上班",
                               PACKAGE_SOURCE, False, ORIGIN_PACKAGE)
            english = chinese_calendar.holidays.get(d)
            if english:
                return DayInfo(False, "statutory holiday", HOLIDAY_NAMES.get(english, english),
                               PACKAGE_SOURCE, False, ORIGIN_PACKAGE)
            return DayInfo(not weekend, "weekend" if weekend else "workday", "", PACKAGE_SOURCE, False,
                           ORIGIN_PACKAGE)
        source = self._marked_years().get(d.year, "") if not provisional else ""
        return DayInfo(not weekend, "weekend" if weekend else "workday", "", source, provisional, year_source)

    def is_workday(self, d: date) -> bool:
        """``day_status(d).is_workday`` without building the day's description: the counts of
        working days between two dates (a queue page of badges walks hundreds of days)."""
        entry = self._year_entries(d.year).get(d)
        if entry is not None:
            return entry.kind == WORKDAY
        if package_supports(d.year):
            if chinese_calendar.workdays.get(d):
                return True
            if chinese_calendar.holidays.get(d):
                return False
        return d.weekday() < 5

    def local_date(self, moment: datetime) -> date:
        """The Asia/Shanghai calendar day of an aware moment."""
        if moment.tzinfo is None:
            raise ValueError("an aware datetime is required (UTC or local), got a naive one")
        return moment.astimezone(self.zone).date()

    def add_working_days(self, start: datetime, n: int) -> Deadline:
        """The deadline of ``n`` working days from ``start``; see ``add_working_days``."""
        if not 1 <= n <= MAX_WORKING_DAYS:
            raise ValueError(f"n must be between 1 and {MAX_WORKING_DAYS}, got {n}")
        day = self.local_date(start)
        days: list[tuple[date, DayInfo]] = []
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            info = self.day_status(day)
            days.append((day, info))
            if info.is_workday:
                counted += 1
        due_local = datetime.combine(day, time(23, 59, 59), tzinfo=self.zone)
        awaiting = self._year_end_awaiting(self.local_date(start), days)
        return Deadline(start=as_utc(start), working_days=n,
                        due_at=due_local.astimezone(timezone.utc),
                        provisional=any(info.provisional for _, info in days) or bool(awaiting), days=days,
                        awaiting_years=awaiting)

    def _year_end_awaiting(self, start_day: date, days: list[tuple[date, DayInfo]]) -> tuple[int, ...]:
        """The next years whose unknown arrangement may still move this deadline's December days:
        for a deadline counted from a December day, or one whose days reach the last
        YEAR_END_PROVISIONAL_DAYS days of a December."""
        tail = int(current_app.config.get("YEAR_END_PROVISIONAL_DAYS", 7))
        years = set()
        if start_day.month == 12:
            years.add(start_day.year + 1)
        years.update(d.year + 1 for d, _ in days if d.month == 12 and d.day > 31 - tail)
        return tuple(sorted(y for y in years if self.year_source(y) == ORIGIN_PROVISIONAL))

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Signed count of working days after ``start``'s local day up to ``end``'s; see module function."""
        a, b = self.local_date(start), self.local_date(end)
        if b < a:
            return -self._count(b, a)
        return self._count(a, b)

    def _count(self, after: date, until: date) -> int:
        count = 0
        day = after
        while day < until:
            day += timedelta(days=1)
            if self.is_workday(day):
                count += 1
        return count


_SHARED = "working_calendar"  # Session.info key of the transaction's calendar snapshot


def shared_calendar() -> WorkingCalendar:
    """The calendar as the current transaction reads it, read once however many deadlines the
    transaction computes (a bad rating: its ticket's two deadlines and its notification's
    delivery time). Dropped when the transaction ends and when a calendar entry or year is
    written in it, so what an administrator enters counts from the next computation on."""
    session = db.session()
    calendar = session.info.get(_SHARED)
    if calendar is None:
        calendar = session.info[_SHARED] = WorkingCalendar()
    return calendar


@event.listens_for(Session, "after_transaction_end")
def _drop_at_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_SHARED, None)


@event.listens_for(Session, "after_flush")
def _drop_on_calendar_write(session: Session, flush_context) -> None:
    if any(isinstance(obj, (CalendarDay, CalendarYear)) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info.pop(_SHARED, None)


def day_status(d: date) -> DayInfo:
    """The status of one local (Asia/Shanghai) calendar day.

    An active administrator entry wins, then ``chinesecalendar``, then weekdays-work;
    ``provisional`` is True when the year is known to neither.
    """
    return WorkingCalendar().day_status(d)


def year_source(year: int) -> str:
    """How a year is known: 'admin' (officially entered), 'chinesecalendar' or 'provisional'."""
    return WorkingCalendar().year_source(year)


def add_working_days(start: datetime, n: int) -> Deadline:
    """The deadline of ``n`` (≥ 1) working days for something created at ``start``.

    ``start`` must be aware (UTC or any zone). The day of creation never counts: day 1 is
    the first working day after the Asia/Shanghai calendar day of ``start``, and the
    deadline ends at 23:59:59 Asia/Shanghai of day N (returned as aware UTC). Example:
    created 2026-09-30 (Wed), 5 days → 10-08, 10-09, 10-10 (make-up Saturday), 10-12,
    10-13, due 2026-10-13 23:59:59 +08:00. The result is provisional when any day it
    looked at lies in a year without official data; it never raises for such years.
    """
    return shared_calendar().add_working_days(start, n)


def working_days_between(start: datetime, end: datetime) -> int:
    """Working days after ``start``'s local day, up to and including ``end``'s local day.

    Both moments are aware and are converted to Asia/Shanghai first. The count is signed:
    negative, with the same rule reversed, when ``end`` lies on an earlier day, so
    ``working_days_between(now, due_at)`` is the countdown badge ("还剩 N 个工作日": 0 on the
    due day itself, 1 on the working day before it, and so on) and
    ``-working_days_between(now, due_at)`` the working days a ticket is overdue by. It
    agrees with ``add_working_days``: ``working_days_between(s, add_working_days(s, n).due_at)
    == n``. Days off between the two are not counted; the time of day is ignored.
    """
    return WorkingCalendar().working_days_between(start, end)


def parse_moment(text: str) -> datetime:
    """An ISO-8601 moment as aware UTC; without an offset it is read as local (Asia/Shanghai).

    Accepts "2026-09-30T10:00", "2026-09-30 10:00", "2026-09-30" (midnight),
    "2026-09-30T02:00Z" and "2026-09-30T10:00+08:00". Raises ValidationError otherwise.
    """
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise ValidationError(f"“{text}”不是 ISO-8601 时间，请写成 2026-09-30T10:00")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local_zone())
    return moment.astimezone(timezone.utc)


def explain(deadline: Deadline) -> list[ExplainedDay]:
    """Each day of a deadline, numbered when it counts, for the CLI and the admin page."""
    out = []
    ordinal = 0
    for d, info in deadline.days:
        if info.is_workday:
            ordinal += 1
            out.append(ExplainedDay(d, info, ordinal))
        else:
            out.append(ExplainedDay(d, info, None))
    return out

