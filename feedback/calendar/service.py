"""Working days (工作日): which days count, and when a deadline of N working days ends.

Precedence for one date: an active administrator entry (放假 / 调休上班) wins; then the
``chinesecalendar`` package (1.11.0 knows 2004–2026); then the plain rule, Monday to
Friday work and weekends off. A year is *known* when an administrator marked its
official arrangement as entered (``calendar import`` or the admin page) or when the
package covers it. Days of any other year are *provisional*: they are computed with the
plain rule and every deadline that touches them says so, so the ticket sweep can
recompute it once the year's arrangement arrives. Nothing here crashes on a year the
package does not know, and nothing silently guesses.

Import files (CSV or JSON) are documented in the README and in ``import_arrangement``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import chinese_calendar
from sqlalchemy import select

from feedback.audit import service as audit
from feedback.calendar.models import HOLIDAY, KIND_LABELS, KINDS, WORKDAY, CalendarDay, CalendarYear
from feedback.clock import as_utc, local_zone, utcnow
from feedback.errors import NotFoundError, ValidationError
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
MIN_YEAR, MAX_YEAR = 2000, 2100
NAME_MAX, SOURCE_MAX = 60, 200
MAX_WORKING_DAYS = 3650


class CalendarImportFailed(ValidationError):
    """An import file had errors; nothing of it was saved. ``errors`` lists them all."""

    def __init__(self, errors: list["ImportIssue"]):
        super().__init__(f"导入失败：发现 {len(errors)} 处错误，未保存任何数据")
        self.errors = errors


# ---------------------------------------------------------------- looking days up

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
    in a year without official data: the deadline must be recomputed when it arrives.
    """

    start: datetime
    working_days: int
    due_at: datetime
    provisional: bool
    days: list[tuple[date, DayInfo]]

    @property
    def due_date(self) -> date:
        """The local calendar day the deadline ends on."""
        return self.days[-1][0]

    @property
    def provisional_years(self) -> list[int]:
        """The years without official data that this deadline depends on."""
        return sorted({d.year for d, info in self.days if info.provisional})


@dataclass(frozen=True)
class ExplainedDay:
    """One line of a deadline explanation: a day, its status and its working-day number."""

    date: date
    info: DayInfo
    ordinal: int | None  # 1..N for counted working days, None for days off

    @property
    def weekday(self) -> str:
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
    the calendar changes (the module-level functions build one per call).
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
        return Deadline(start=as_utc(start), working_days=n,
                        due_at=due_local.astimezone(timezone.utc),
                        provisional=any(info.provisional for _, info in days), days=days)

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
            if self.day_status(day).is_workday:
                count += 1
        return count


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
    return WorkingCalendar().add_working_days(start, n)


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


# ---------------------------------------------------------------- administrator entries

def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("请填写名称（如：国庆节、国庆节调休上班）")
    if len(name) > NAME_MAX:
        raise ValidationError(f"名称最长 {NAME_MAX} 个字符")
    return name


def _clean_source(source: str | None) -> str:
    source = (source or "").strip() or DEFAULT_ADMIN_SOURCE
    if len(source) > SOURCE_MAX:
        raise ValidationError(f"来源最长 {SOURCE_MAX} 个字符")
    return source


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValidationError(f"年份应在 {MIN_YEAR}–{MAX_YEAR} 之间")


def set_day(d: date, kind: str, name: str, source: str = "", actor: Any = None) -> CalendarDay:
    """Enter (or change, or switch back on) the administrator's ruling for one date.

    ``kind`` is 'holiday' (放假) or 'workday' (调休上班). The entry wins over the
    package for that date. Audited as ``calendar.day.set`` with the changes.
    """
    if kind not in KINDS:
        raise ValidationError("类型只能是 holiday（放假）或 workday（调休上班）")
    _check_year(d.year)
    name, source = _clean_name(name), _clean_source(source)
    entry = db.session.scalar(select(CalendarDay).where(CalendarDay.date == d))
    before = _entry_snapshot(entry) if entry else {}
    if entry is None:
        entry = CalendarDay(date=d, created_by_id=getattr(actor, "id", None))
        db.session.add(entry)
    entry.kind, entry.name, entry.source, entry.active = kind, name, source, True
    db.session.flush()
    after = _entry_snapshot(entry)
    audit.record("calendar.day.set", actor=actor, obj=entry, date=d.isoformat(),
                 changes={k: [before.get(k), v] for k, v in after.items() if before.get(k) != v})
    return entry


def _entry_snapshot(entry: CalendarDay) -> dict[str, Any]:
    return {"kind": entry.kind, "name": entry.name, "source": entry.source, "active": entry.active}


def set_day_active(d: date, active: bool, actor: Any = None) -> CalendarDay:
    """Switch an administrator entry off (it stops counting) or back on; never deletes it.

    Raises NotFoundError when the date has no administrator entry.
    """
    entry = db.session.scalar(select(CalendarDay).where(CalendarDay.date == d))
    if entry is None:
        raise NotFoundError(f"{d.isoformat()} 没有管理员录入的条目")
    if entry.active != active:
        entry.active = active
        db.session.flush()
        audit.record(f"calendar.day.{'activate' if active else 'deactivate'}", actor=actor, obj=entry,
                     date=d.isoformat())
    return entry


def deactivate_day(d: date, actor: Any = None) -> CalendarDay:
    """Switch off the administrator entry of a date; the package or plain rule applies again."""
    return set_day_active(d, False, actor)


def reactivate_day(d: date, actor: Any = None) -> CalendarDay:
    """Switch a deactivated administrator entry back on."""
    return set_day_active(d, True, actor)


def mark_year_complete(year: int, source: str, actor: Any = None) -> CalendarYear:
    """Record that ``year``'s official arrangement has been entered in full.

    From then on the year's deadlines are no longer provisional: dates without an entry
    follow the package if it knows the year, else Monday–Friday. ``source`` names the
    notice (e.g. 国办发明电〔2026〕12号). Audited as ``calendar.year.mark``.
    """
    _check_year(year)
    source = (source or "").strip()
    if not source:
        raise ValidationError("请填写依据（如国务院办公厅通知文号）")
    if len(source) > SOURCE_MAX:
        raise ValidationError(f"依据最长 {SOURCE_MAX} 个字符")
    row = db.session.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year)
        db.session.add(row)
    row.source, row.imported_at, row.imported_by_id = source, utcnow(), getattr(actor, "id", None)
    db.session.flush()
    audit.record("calendar.year.mark", actor=actor, object_type="CalendarYear", object_id=year,
                 source=source)
    return row


def unmark_year(year: int, actor: Any = None) -> None:
    """Withdraw the "officially entered" mark of a year (its entries stay as they are)."""
    row = db.session.get(CalendarYear, year)
    if row is None:
        raise NotFoundError(f"{year} 年未标记为已录入")
    db.session.delete(row)
    db.session.flush()
    audit.record("calendar.year.unmark", actor=actor, object_type="CalendarYear", object_id=year)


# ---------------------------------------------------------------- import

HEADER_ALIASES = {"日期": "date", "类型": "kind", "名称": "name", "来源": "source", "依据": "source"}
COLUMNS = ("date", "kind", "name", "source")
REQUIRED_COLUMNS = ("date", "kind", "name")
KIND_ALIASES = {
    "holiday": HOLIDAY, "放假": HOLIDAY, "休": HOLIDAY, "假": HOLIDAY, "休息": HOLIDAY,
    "workday": WORKDAY, "上班": WORKDAY, "班": WORKDAY, "调休上班": WORKDAY, "补班": WORKDAY,
}
DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


@dataclass
class ImportIssue:
    """One problem in an import file, located by row and column (CSV) or item (JSON)."""

    message: str
    row: int = 0
    column: str = ""
    letter: str = ""
    item: str = ""  # JSON: "holidays 第 2 项"

    def __str__(self) -> str:
        if self.item:
            where = f"{self.item}，{self.column} 字段" if self.column else self.item
            return f"{where}：{self.message}"
        if self.row:
            col = f"{self.letter} 列（{self.column}）" if self.letter else f"{self.column} 列"
            return f"第 {self.row} 行，{col}：{self.message}" if self.column else \
                f"第 {self.row} 行：{self.message}"
        return f"文件：{self.message}"


@dataclass
class ImportResult:
    """What an import changed."""

    years: list[int] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    deactivated: list[date] = field(default_factory=list)

    def summary(self) -> str:
        years = "、".join(str(y) for y in self.years) or "无"
        text = f"已录入年度：{years}；新增 {self.created} 条，更新 {self.updated} 条"
        if self.deactivated:
            text += f"，停用文件中没有的原有条目 {len(self.deactivated)} 条（" + \
                    "、".join(d.isoformat() for d in self.deactivated) + "）"
        return text


@dataclass
class _Row:
    date: date
    kind: str
    name: str
    source: str


def _letter(index: int) -> str:
    s = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        s = chr(65 + rem) + s
    return s


def parse_date(text: str) -> date | None:
    """A date written as 2027-01-01, 2027/1/1, 2027.1.1 or 2027年1月1日; None if invalid."""
    match = DATE_RE.match((text or "").strip())
    if not match:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def import_arrangement(filename: str, content: bytes, actor: Any = None) -> ImportResult:
    """Load a year's official arrangement from a CSV or JSON file, all or nothing.

    CSV: a header ``date,kind,name`` with an optional ``source`` column (Chinese headers
    日期,类型,名称,来源 also work); ``kind`` is holiday/放假 or workday/调休上班; dates as
    2027-01-01. JSON: ``{"year": 2027, "source": "…", "holidays": [{"date": …, "name": …}
    or {"start": …, "end": …, "name": …}], "workdays": [{"date": …, "name": …}]}``.

    Every row is validated before anything is written; on any error CalendarImportFailed
    lists them all ("第 N 行，X 列：原因") and nothing is saved. Entries are upserted by
    date. The file's years (JSON: ``year``; CSV: every year with a holiday row, except a
    year whose rows all lie in December right before another year of the file, such as a
    New Year holiday starting on 12-30 or a make-up workday on 12-27) are marked as
    officially entered, and their older active entries that the file no longer lists are
    switched off, so re-importing a corrected file replaces the year. Audited as
    ``calendar.import``.
    """
    lower = (filename or "").lower()
    if lower.endswith(".json"):
        rows, years, file_source = _read_json(content, filename)
    elif lower.endswith((".csv", ".txt")):
        rows, years, file_source = _read_csv(content, filename)
    else:
        raise CalendarImportFailed([ImportIssue("只支持 .csv 和 .json 文件")])
    if not rows:
        raise CalendarImportFailed([ImportIssue("文件中没有数据行")])
    return _apply_import(rows, years, file_source, filename, actor)


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return content.decode("gb18030")
        except UnicodeDecodeError:
            raise CalendarImportFailed([ImportIssue("文件编码无法识别，请保存为 UTF-8 或 GBK 编码")])


def _validate_row(where: ImportIssue, raw_date: Any, raw_kind: Any, raw_name: Any, raw_source: Any,
                  default_source: str, errors: list[ImportIssue],
                  columns: dict[str, tuple[str, str]] | None = None) -> _Row | None:
    """Check one entry; append issues located at ``where`` (with per-field columns)."""

    def issue(col: str, message: str) -> None:
        label, letter = (columns or {}).get(col, (col, ""))
        errors.append(ImportIssue(message, row=where.row, column=label, letter=letter, item=where.item))

    ok = True
    d = parse_date(str(raw_date)) if isinstance(raw_date, str) else None
    if d is None:
        issue("date", "日期为空" if not raw_date else f"“{raw_date}”不是有效日期，请写成 2027-01-01")
        ok = False
    elif not MIN_YEAR <= d.year <= MAX_YEAR:
        issue("date", f"年份应在 {MIN_YEAR}–{MAX_YEAR} 之间")
        ok = False
    kind = KIND_ALIASES.get(str(raw_kind or "").strip().lower())
    if kind is None:
        issue("kind", f"“{raw_kind or ''}”无法识别，请填写 holiday（放假）或 workday（调休上班）")
        ok = False
    name = str(raw_name or "").strip() if isinstance(raw_name, (str, type(None))) else ""
    if not name:
        issue("name", "名称不能为空")
        ok = False
    elif len(name) > NAME_MAX:
        issue("name", f"名称过长（最多 {NAME_MAX} 个字符）")
        ok = False
    source = str(raw_source or "").strip() if isinstance(raw_source, (str, type(None))) else ""
    if len(source) > SOURCE_MAX:
        issue("source", f"来源过长（最多 {SOURCE_MAX} 个字符）")
        ok = False
    if not ok:
        return None
    return _Row(d, kind, name, source or default_source)


def _read_csv(content: bytes, filename: str) -> tuple[list[_Row], list[int], str]:
    text = _decode(content)
    reader = csv.reader(io.StringIO(text, newline=""))  # the csv module reads line ends itself
    try:
        table = list(reader)
    except csv.Error as exc:
        raise CalendarImportFailed([ImportIssue(f"CSV 格式错误：{exc}", row=reader.line_num)])
    numbered = [(i, r) for i, r in enumerate(table, start=1) if any(c.strip() for c in r)]
    if not numbered:
        raise CalendarImportFailed([ImportIssue("文件为空，第一行应为表头 date,kind,name")])
    header_no, raw_header = numbered[0]
    raw_header = [c.strip() for c in raw_header]
    header = [HEADER_ALIASES.get(h, h.lower()) for h in raw_header]
    errors: list[ImportIssue] = []
    for i, h in enumerate(header):
        if not h:
            continue  # spreadsheets add empty trailing columns
        if h not in COLUMNS:
            errors.append(ImportIssue("未知的列名，允许的列为：date、kind、name、source", row=header_no,
                                      column=raw_header[i], letter=_letter(i)))
        elif header.count(h) > 1 and header.index(h) != i:
            errors.append(ImportIssue("列名重复", row=header_no, column=raw_header[i], letter=_letter(i)))
    for col in REQUIRED_COLUMNS:
        if col not in header:
            errors.append(ImportIssue("缺少必需的列", row=header_no, column=col))
    if errors:
        raise CalendarImportFailed(errors)
    columns = {h: (raw_header[i], _letter(i)) for i, h in enumerate(header) if h}
    default_source = filename.rsplit("/", 1)[-1][:SOURCE_MAX] or "导入文件"
    rows: list[_Row] = []
    seen: dict[date, int] = {}
    for number, cells in numbered[1:]:
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            errors.append(ImportIssue("该行的列数多于表头", row=number, column="（多余）",
                                      letter=_letter(len(header))))
            continue
        values = {h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header) if h}
        row = _validate_row(ImportIssue("", row=number), values["date"], values["kind"], values["name"],
                            values.get("source", ""), default_source, errors, columns)
        if row is None:
            continue
        if row.date in seen:
            label, letter = columns["date"]
            errors.append(ImportIssue(f"日期 {row.date.isoformat()} 与第 {seen[row.date]} 行重复",
                                      row=number, column=label, letter=letter))
            continue
        seen[row.date] = number
        rows.append(row)
    if errors:
        raise CalendarImportFailed(errors)
    years = _csv_years(rows)
    sources = [r.source for r in rows if r.source != default_source]
    return rows, years, (sources[0] if sources else default_source)


def _csv_years(rows: list[_Row]) -> list[int]:
    """The years a CSV arranges: those with a holiday, minus a December run-up to the next."""
    holiday_years = {r.date.year for r in rows if r.kind == HOLIDAY}
    all_rows = rows
    years = set()
    for year in holiday_years:
        december_only = all(r.date.month == 12 for r in all_rows if r.date.year == year)
        if december_only and (year + 1) in holiday_years:
            continue
        years.add(year)
    return sorted(years)


def _read_json(content: bytes, filename: str) -> tuple[list[_Row], list[int], str]:
    try:
        data = json.loads(_decode(content))
    except json.JSONDecodeError as exc:
        raise CalendarImportFailed([ImportIssue(f"不是有效的 JSON（第 {exc.lineno} 行，第 {exc.colno} 列）：{exc.msg}")])
    if not isinstance(data, dict):
        raise CalendarImportFailed([ImportIssue('JSON 顶层应为对象：{"year": …, "holidays": […], "workdays": […]}')])
    errors: list[ImportIssue] = []
    unknown = sorted(set(data) - {"year", "source", "holidays", "workdays"})
    for key in unknown:
        errors.append(ImportIssue("未知的字段，允许的字段为 year、source、holidays、workdays", item=key))
    year = data.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not MIN_YEAR <= year <= MAX_YEAR:
        errors.append(ImportIssue(f"year 应为 {MIN_YEAR}–{MAX_YEAR} 之间的整数", item="year"))
        year = None
    source = data.get("source", "")
    if not isinstance(source, str) or len(source.strip()) > SOURCE_MAX:
        errors.append(ImportIssue(f"source 应为不超过 {SOURCE_MAX} 个字符的文本", item="source"))
        source = ""
    file_source = source.strip() or filename.rsplit("/", 1)[-1][:SOURCE_MAX] or "导入文件"
    rows: list[_Row] = []
    seen: dict[date, str] = {}
    for key, kind in (("holidays", HOLIDAY), ("workdays", WORKDAY)):
        items = data.get(key, [])
        if not isinstance(items, list):
            errors.append(ImportIssue("应为列表", item=key))
            continue
        for index, item in enumerate(items, start=1):
            where = ImportIssue("", item=f"{key} 第 {index} 项")
            if not isinstance(item, dict):
                errors.append(ImportIssue("应为对象，如 {\"date\": \"2027-01-01\", \"name\": \"元旦\"}",
                                          item=where.item))
                continue
            for extra in sorted(set(item) - {"date", "start", "end", "name", "source"}):
                errors.append(ImportIssue("未知的字段", item=where.item, column=extra))
            for d_text in _item_dates(item, where, errors):
                row = _validate_row(where, d_text, kind, item.get("name"), item.get("source"),
                                    file_source, errors)
                if row is None:
                    break
                if year is not None and row.date.year not in (year - 1, year):
                    errors.append(ImportIssue(f"{row.date.isoformat()} 不属于 {year} 年的安排"
                                              f"（只能是 {year} 年或上一年年底的日期）",
                                              item=where.item, column="date"))
                    break
                if row.date in seen:
                    errors.append(ImportIssue(f"日期 {row.date.isoformat()} 与 {seen[row.date]} 重复",
                                              item=where.item, column="date"))
                    break
                seen[row.date] = where.item
                rows.append(row)
    if errors:
        raise CalendarImportFailed(errors)
    return rows, [year] if year is not None else [], file_source


def _item_dates(item: dict, where: ImportIssue, errors: list[ImportIssue]) -> list[Any]:
    """The ISO dates of one JSON item: its ``date``, or every day from ``start`` to ``end``."""
    if "date" in item:
        if "start" in item or "end" in item:
            errors.append(ImportIssue("date 与 start/end 只能二选一", item=where.item, column="date"))
            return []
        return [item["date"]]
    if "start" not in item and "end" not in item:
        errors.append(ImportIssue("缺少 date（或 start 与 end）", item=where.item, column="date"))
        return []
    start = parse_date(item.get("start")) if isinstance(item.get("start"), str) else None
    end = parse_date(item.get("end")) if isinstance(item.get("end"), str) else None
    if start is None or end is None:
        column = "start" if start is None else "end"
        errors.append(ImportIssue("不是有效日期，请写成 2027-01-01", item=where.item, column=column))
        return []
    if end < start or (end - start).days > 31:
        errors.append(ImportIssue("end 应不早于 start，且区间不超过 31 天", item=where.item, column="end"))
        return []
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _apply_import(rows: list[_Row], years: list[int], file_source: str, filename: str,
                  actor: Any) -> ImportResult:
    result = ImportResult(years=years)
    dates = [r.date for r in rows]
    existing = {e.date: e for e in db.session.scalars(select(CalendarDay).where(CalendarDay.date.in_(dates)))}
    for row in rows:
        entry = existing.get(row.date)
        if entry is None:
            entry = CalendarDay(date=row.date, created_by_id=getattr(actor, "id", None))
            db.session.add(entry)
            result.created += 1
        elif (entry.kind, entry.name, entry.source, entry.active) != (row.kind, row.name, row.source, True):
            result.updated += 1
        entry.kind, entry.name, entry.source, entry.active = row.kind, row.name, row.source, True
    in_file = set(dates)
    for year in years:
        stale = db.session.scalars(select(CalendarDay).where(
            CalendarDay.active.is_(True), CalendarDay.date >= date(year, 1, 1),
            CalendarDay.date <= date(year, 12, 31)).order_by(CalendarDay.date))
        for entry in stale:
            if entry.date not in in_file:
                entry.active = False
                result.deactivated.append(entry.date)
        mark = db.session.get(CalendarYear, year)
        if mark is None:
            mark = CalendarYear(year=year)
            db.session.add(mark)
        mark.source, mark.imported_at, mark.imported_by_id = file_source, utcnow(), getattr(actor, "id", None)
    db.session.flush()
    audit.record("calendar.import", actor=actor, object_type="CalendarYear",
                 object_id=",".join(str(y) for y in years) or None, filename=(filename or "")[-120:],
                 years=years, created=result.created, updated=result.updated,
                 deactivated=[d.isoformat() for d in result.deactivated], source=file_source)
    return result


# ---------------------------------------------------------------- overview for administrators

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
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def weekday(self) -> str:
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
        return ORIGIN_LABELS[self.source]

    @property
    def provisional(self) -> bool:
        return self.source == ORIGIN_PROVISIONAL

    @property
    def holiday_count(self) -> int:
        return sum(1 for d in self.days if d.active and d.kind == HOLIDAY)

    @property
    def workday_count(self) -> int:
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
