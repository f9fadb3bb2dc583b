"""What administrators see of the calendar: every year's state and listed days, and the
warnings that this or next year's official arrangement is still missing."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import chinese_calendar
from sqlalchemy import select

from feedback.calendar.days import (HOLIDAY_NAMES, ORIGIN_ADMIN, ORIGIN_LABELS, ORIGIN_PACKAGE, ORIGIN_PROVISIONAL,
                                    PACKAGE_SOURCE, WEEKDAYS, WorkingCalendar, package_supports, year_source)
from feedback.calendar.models import HOLIDAY, KIND_LABELS, WORKDAY, CalendarDay, CalendarYear
from feedback.clock import local_zone, utcnow
from feedback.extensions import db

@dataclass
class OverviewDay:
    """One day off or make-up workday of a year, as the admin page lists it."""

    date: date
    kind: str  # 'holiday' | 'workday'
    name: str
    source: str
    origin: str  # 'admin' | 'chinesecalendar'
    active: bool = True
    package_note: str = ""  # what the package says about an overridden date

    @property
    def kind_label(self) -> str:
        """放假 or 调休上班."""
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def weekday(self) -> str:
        """周一 … 周日."""
        return WEEKDAYS[self.date.weekday()]


@dataclass
class YearOverview:
    """A year's state and every day off / make-up workday the system knows for it."""

    year: int
    source: str  # 'admin' | 'chinesecalendar' | 'provisional'
    mark: CalendarYear | None
    days: list[OverviewDay]

    @property
    def source_label(self) -> str:
        """How the year is known, in Chinese (管理员录入, chinesecalendar, 临时)."""
        return ORIGIN_LABELS[self.source]

    @property
    def provisional(self) -> bool:
        """True when neither an administrator nor the package knows the year."""
        return self.source == ORIGIN_PROVISIONAL

    @property
    def holiday_count(self) -> int:
        """The active days off listed for the year."""
        return sum(1 for d in self.days if d.active and d.kind == HOLIDAY)

    @property
    def workday_count(self) -> int:
        """The active make-up workdays listed for the year."""
        return sum(1 for d in self.days if d.active and d.kind == WORKDAY)


def _package_days(year: int) -> dict[date, tuple[str, str]]:
    """The package's days off and make-up workdays of a year: date → (kind, Chinese name)."""
    if not package_supports(year):
        return {}
    out: dict[date, tuple[str, str]] = {}
    for d, english in chinese_calendar.holidays.items():
        if d.year == year:
            out[d] = (HOLIDAY, HOLIDAY_NAMES.get(english, english))
    for d, english in chinese_calendar.workdays.items():
        if d.year == year:
            out[d] = (WORKDAY, HOLIDAY_NAMES.get(english, english) + "调休上班")
    return out


def years_overview(now: datetime | None = None) -> list[YearOverview]:
    """Last, this and next year plus any year with entries: state and listed days.

    Each administrator entry (active or not) is listed with its source; the package's
    days are listed where no entry exists, and noted under an entry that overrides them.
    """
    moment = now or utcnow()
    current = moment.astimezone(local_zone()).year
    entries = list(db.session.scalars(select(CalendarDay).order_by(CalendarDay.date)))
    marks = {m.year: m for m in db.session.scalars(select(CalendarYear))}
    years = set(range(current - 1, current + 2)) | {e.date.year for e in entries} | set(marks)
    cal = WorkingCalendar()
    out = []
    for year in sorted(years):
        package = _package_days(year)
        days: dict[date, OverviewDay] = {
            d: OverviewDay(d, kind, name, PACKAGE_SOURCE, ORIGIN_PACKAGE) for d, (kind, name) in package.items()}
        for e in entries:
            if e.date.year != year:
                continue
            note = ""
            if e.date in package:
                kind, name = package[e.date]
                note = f"chinesecalendar：{KIND_LABELS[kind]}（{name}）"
            elif package_supports(year):
                note = "chinesecalendar：" + ("周末" if e.date.weekday() >= 5 else "工作日")
            days[e.date] = OverviewDay(e.date, e.kind, e.name, e.source, ORIGIN_ADMIN, e.active, note)
        out.append(YearOverview(year, cal.year_source(year), marks.get(year),
                                [days[d] for d in sorted(days)]))
    return out


def next_year_missing(now: datetime) -> int | None:
    """From November on (local time), next year if its arrangement is known nowhere, else None.

    Used to warn administrators to enter the State Council's notice before deadlines
    start running into a provisional year.
    """
    local = now.astimezone(local_zone())
    if local.month >= 11 and year_source(local.year + 1) == ORIGIN_PROVISIONAL:
        return local.year + 1
    return None


def current_year_missing(now: datetime) -> int | None:
    """This year (local time) if its arrangement is known nowhere, else None: deadlines are provisional."""
    year = now.astimezone(local_zone()).year
    return year if year_source(year) == ORIGIN_PROVISIONAL else None
