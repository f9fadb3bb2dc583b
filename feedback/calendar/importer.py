"""Loading a year's official arrangement (国务院办公厅放假安排) from a CSV or JSON file.

All or nothing: every row is checked first and every problem is reported with its row and
column (CSV) or item (JSON); only a clean file is written, as administrator entries, and
its years are marked as officially entered. The formats are documented in the README and
in :func:`import_arrangement`.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from openpyxl.utils import get_column_letter
from sqlalchemy import select

from feedback.audit import service as audit
from feedback.calendar.entries import MAX_YEAR, MIN_YEAR, NAME_MAX, SOURCE_MAX, stamp_year
from feedback.calendar.models import HOLIDAY, WORKDAY, CalendarDay
from feedback.errors import ValidationError
from feedback.extensions import db

HEADER_ALIASES = {"日期": "date", "类型": "kind", "名称": "name", "来源": "source", "依据": "source"}
COLUMNS = ("date", "kind", "name", "source")
REQUIRED_COLUMNS = ("date", "kind", "name")
KIND_ALIASES = {
    "holiday": HOLIDAY, "放假": HOLIDAY, "休": HOLIDAY, "假": HOLIDAY, "休息": HOLIDAY,
    "workday": WORKDAY, "上班": WORKDAY, "班": WORKDAY, "调休上班": WORKDAY, "补班": WORKDAY,
}
DATE_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


class CalendarImportFailed(ValidationError):
    """An import file had errors; nothing of it was saved. ``errors`` lists them all."""

    def __init__(self, errors: list["ImportIssue"]):
        super().__init__(f"导入失败：发现 {len(errors)} 处错误，未保存任何数据。请修改后重新上传。")
        self.errors = errors


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
        """The changes in one Chinese sentence, for the flash message and the CLI."""
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
    """The spreadsheet column letter of a 0-based column index (0 → A, 26 → AA)."""
    return get_column_letter(index + 1)


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
        stamp_year(year, file_source, actor)
    db.session.flush()
    audit.record("calendar.import", actor=actor, object_type="CalendarYear",
                 object_id=",".join(str(y) for y in years) or None, filename=(filename or "")[-120:],
                 years=years, created=result.created, updated=result.updated,
                 deactivated=[d.isoformat() for d in result.deactivated], source=file_source)
    return result
