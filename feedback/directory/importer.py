"""Directory import: CSV (one kind) or XLSX (a sheet per kind), validated whole.

Any error aborts the file and nothing is saved; each is reported as
"第 N 行，X 列（column）：原因". Headers are documented in the README.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any
from zipfile import BadZipFile

from openpyxl import load_workbook
from sqlalchemy import select

from feedback.audit import service as audit
from feedback.directory import national
from feedback.directory.formats import (CODE_RE, FALSE_WORDS, HEADER_ALIASES, IMPORT_ORDER, KINDS, REQUIRED,
                                        SHEET_ALIASES, TRUE_WORDS)
from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.extensions import db
from feedback.spreadsheets import from_csv_cell


@dataclass
class ImportError_:
    """One problem in an import file, located by sheet, row and column."""

    row: int
    column: str
    message: str
    sheet: str = ""
    letter: str = ""

    def __str__(self) -> str:
        where = f"工作表 {self.sheet}，" if self.sheet else ""
        col = f"{self.letter} 列（{self.column}）" if self.letter else f"{self.column} 列"
        return f"{where}第 {self.row} 行，{col}：{self.message}"


class ImportFailed(Exception):
    """The file had errors; nothing was saved."""

    def __init__(self, errors: list[ImportError_]):
        super().__init__(f"{len(errors)} 处错误")
        self.errors = errors


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line per kind: how many rows were created and updated."""
        parts = []
        for kind in IMPORT_ORDER:
            c, u = self.created.get(kind, 0), self.updated.get(kind, 0)
            if c or u:
                parts.append(f"{KINDS[kind].label}：新增 {c}，更新 {u}")
        return "；".join(parts) or "文件中没有数据行"


@dataclass
class _Table:
    kind: str
    sheet: str
    header: list[str]  # canonical names, by position
    raw_header: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (1-based row number in the file, values)


def _letter(index: int) -> str:
    s = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        s = chr(65 + rem) + s
    return s


def read_tables(filename: str, content: bytes, kind: str | None = None) -> list[_Table]:
    """Parse a CSV or XLSX file into tables of cells; raises ImportFailed on shape errors."""
    lower = filename.lower()
    if lower.endswith(".xlsx"):
        return _read_xlsx(content, kind)
    if lower.endswith(".csv") or lower.endswith(".txt"):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = content.decode("gb18030")
            except UnicodeDecodeError:
                raise ImportFailed([ImportError_(1, "-", "文件编码无法识别，请保存为 UTF-8 或 GBK 编码的 CSV")])
        reader = csv.reader(io.StringIO(text, newline=""))  # the csv module reads line ends itself
        try:
            rows = list(reader)
        except csv.Error as exc:
            raise ImportFailed([ImportError_(reader.line_num, "-", f"CSV 格式错误：{exc}")])
        return [_make_table(rows, kind, sheet="", filename=filename)]
    raise ImportFailed([ImportError_(0, "-", "只支持 .csv 和 .xlsx 文件")])


def _read_xlsx(content: bytes, kind: str | None) -> list[_Table]:
    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError):
        raise ImportFailed([ImportError_(0, "-", "不是有效的 XLSX 文件")])
    tables = []
    for ws in wb.worksheets:
        rows = [["" if v is None else str(v) for v in row] for row in ws.iter_rows(values_only=True)]
        if not any(any(c.strip() for c in r) for r in rows):
            continue
        sheet_kind = kind or SHEET_ALIASES.get(ws.title, ws.title if ws.title in KINDS else None)
        tables.append(_make_table(rows, sheet_kind, sheet=ws.title, filename=""))
    return tables


def _make_table(rows: list[list[str]], kind: str | None, sheet: str, filename: str) -> _Table:
    while rows and not any(c.strip() for c in rows[0]):
        rows = rows[1:]
    if not rows:
        raise ImportFailed([ImportError_(1, "-", "文件为空，第一行应为表头", sheet=sheet)])
    raw_header = [c.strip() for c in rows[0]]
    header = [HEADER_ALIASES.get(h, h.lower()) for h in raw_header]
    if kind is None:
        kind = _guess_kind(header, filename)
    if kind not in KINDS:
        raise ImportFailed([ImportError_(1, "-", "无法判断数据类型：请使用文档中的表头，"
                                                 "或在工作表名/命令参数中指明类型", sheet=sheet)])
    spec = KINDS[kind]
    errors = []
    for i, h in enumerate(header):
        if h and h not in spec.columns:
            errors.append(ImportError_(1, raw_header[i], f"未知的列名，{spec.label}允许的列为："
                                       + "、".join(spec.columns), sheet=sheet, letter=_letter(i)))
    for col in spec.columns:
        if col not in header and col in REQUIRED:
            errors.append(ImportError_(1, col, "缺少必需的列", sheet=sheet))
    dupes = {h for h in header if h and header.count(h) > 1}
    for h in sorted(dupes):
        errors.append(ImportError_(1, h, "列名重复", sheet=sheet))
    if errors:
        raise ImportFailed(errors)
    data_rows = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
            raise ImportFailed([ImportError_(number, _letter(len(header)), "该行的列数多于表头",
                                             sheet=sheet)])
        values = {header[i]: (from_csv_cell(row[i].strip()) if i < len(row) else "")
                  for i in range(len(header)) if header[i]}
        data_rows.append((number, values))
    return _Table(kind, sheet, header, raw_header, data_rows)


def _guess_kind(header: list[str], filename: str) -> str | None:
    stem = re.sub(r"\.[a-z]+$", "", filename.lower().rsplit("/", 1)[-1])
    for kind in KINDS:
        if stem.startswith(kind) or stem.startswith(kind.rstrip("s")):
            return kind
    cols = set(header)
    if "staff_number" in cols:
        return "staff"
    if "hall_code" in cols:
        return "windows"
    if "promised_days" in cols or "implementation_code" in cols:
        return "service_items"
    if "parent_code" in cols or "credit_code" in cols:
        return "departments"
    if "address" in cols:
        return "halls"
    return None


class _Importer:
    """Validates and applies tables in dependency order inside the caller's transaction."""

    def __init__(self, tables: list[_Table], actor: Any):
        self.tables = sorted(tables, key=lambda t: IMPORT_ORDER.index(t.kind))
        self.actor = actor
        self.errors: list[ImportError_] = []
        self.result = ImportResult()

    def err(self, table: _Table, row: int, column: str, message: str) -> None:
        letter = _letter(table.header.index(column)) if column in table.header else ""
        raw = table.raw_header[table.header.index(column)] if column in table.header else column
        self.errors.append(ImportError_(row, raw, message, sheet=table.sheet, letter=letter))

    def run(self) -> ImportResult:
        for table in self.tables:
            getattr(self, f"_apply_{table.kind}")(table)
        if self.errors:
            raise ImportFailed(self.errors)
        return self.result

    # -- helpers
    def _common(self, table: _Table, number: int, values: dict[str, str], key: str) -> bool:
        ok = True
        for col in KINDS[table.kind].columns:
            if col in REQUIRED and col in values and not values[col]:
                self.err(table, number, col, "不能为空")
                ok = False
        if values.get(key) and not CODE_RE.match(values[key]):
            self.err(table, number, key, "只能包含字母、数字、下划线、点和连字符，最长 40 位")
            ok = False
        if "name" in values and len(values["name"]) > 120:
            self.err(table, number, "name", "名称过长（最多 120 个字符）")
            ok = False
        active = values.get("active", "").lower()
        if active not in TRUE_WORDS and active not in FALSE_WORDS:
            self.err(table, number, "active", f"无法识别“{values['active']}”，请填写 1/0、是/否 或 启用/停用")
            ok = False
        return ok

    def _national(self, table: _Table, number: int, values: dict[str, str]) -> dict[str, Any] | None:
        """The national codes of a row (only the columns the file has), canonical, or None after
        reporting every malformed one at its row and column (national.check_directory_codes)."""
        attrs, errors = national.check_directory_codes(values)
        for error in errors:
            self.err(table, number, error.field, error.message)
        return None if errors else attrs

    def _seen_key(self, table: _Table, seen: dict[str, int], number: int, key_col: str, value: str) -> bool:
        if value in seen:
            self.err(table, number, key_col, f"编码 {value} 与第 {seen[value]} 行重复")
            return False
        seen[value] = number
        return True

    def _upsert(self, table: _Table, model: type, key_col: str, key: str, attrs: dict[str, Any]) -> Any:
        obj = db.session.scalar(select(model).where(getattr(model, key_col) == key))
        if obj is None:
            obj = model(**{key_col: key})
            db.session.add(obj)
            self.result.created[table.kind] = self.result.created.get(table.kind, 0) + 1
        else:
            self.result.updated[table.kind] = self.result.updated.get(table.kind, 0) + 1
        for name, value in attrs.items():
            setattr(obj, name, value)
        return obj

    def _dept(self, table: _Table, number: int, column: str, code: str) -> Department | None:
        dept = db.session.scalar(select(Department).where(Department.code == code))
        if dept is None:
            self.err(table, number, column, f"部门编码 {code} 不存在")
        return dept

    @staticmethod
    def _active(values: dict[str, str]) -> bool:
        return values.get("active", "").lower() not in FALSE_WORDS

    def _rows(self, table: _Table, key: str):
        """(row number, values) of each row that passes the common checks and whose ``key``
        was not already given on an earlier row of the file."""
        seen: dict[str, int] = {}
        for number, values in table.rows:
            if self._common(table, number, values, key) and self._seen_key(table, seen, number, key, values[key]):
                yield number, values

    # -- kinds
    def _apply_departments(self, table: _Table) -> None:
        pending = []
        for number, values in self._rows(table, "code"):
            codes = self._national(table, number, values)
            if codes is None:
                continue
            obj = self._upsert(table, Department, "code", values["code"],
                               {"name": values["name"], "active": self._active(values), **codes})
            pending.append((number, obj, values.get("parent_code", "")))
        db.session.flush()
        parent_of = dict(db.session.execute(select(Department.id, Department.parent_id)).all())
        for number, obj, parent_code in pending:
            parent = self._dept(table, number, "parent_code", parent_code) if parent_code else None
            if parent_code and parent is None:
                continue
            parent_of[obj.id] = parent.id if parent else None
        for number, obj, parent_code in pending:
            node, hops = parent_of.get(obj.id), 0
            while node is not None and hops < 10000:
                if node == obj.id:
                    self.err(table, number, "parent_code", "上级部门形成了循环（不能是本部门或其下级部门）")
                    break
                node, hops = parent_of.get(node), hops + 1
        if not self.errors:
            for _, obj, _ in pending:
                obj.parent_id = parent_of.get(obj.id)
        db.session.flush()

    def _apply_halls(self, table: _Table) -> None:
        for number, values in self._rows(table, "code"):
            codes = self._national(table, number, values)
            if codes is not None:
                self._upsert(table, Hall, "code", values["code"],
                             {"name": values["name"], "address": values.get("address", ""),
                              "active": self._active(values), **codes})
        db.session.flush()

    def _apply_windows(self, table: _Table) -> None:
        for number, values in self._rows(table, "code"):
            hall = db.session.scalar(select(Hall).where(Hall.code == values["hall_code"]))
            if hall is None:
                self.err(table, number, "hall_code", f"大厅编码 {values['hall_code']} 不存在")
            dept = self._dept(table, number, "department_code", values["department_code"])
            if hall and dept:
                self._upsert(table, Window, "code", values["code"],
                             {"name": values["name"], "hall": hall, "department": dept,
                              "active": self._active(values)})
        db.session.flush()

    def _apply_staff(self, table: _Table) -> None:
        for number, values in self._rows(table, "staff_number"):
            dept = self._dept(table, number, "department_code", values["department_code"])
            windows = []
            for code in filter(None, (c.strip() for c in re.split(r"[;；,，\s]+", values.get("window_codes", "")))):
                window = db.session.scalar(select(Window).where(Window.code == code))
                if window is None:
                    self.err(table, number, "window_codes", f"窗口编码 {code} 不存在")
                else:
                    windows.append(window)
            if dept:
                obj = self._upsert(table, Staff, "staff_number", values["staff_number"],
                                   {"name": values["name"], "department": dept,
                                    "active": self._active(values)})
                if "window_codes" in values:
                    obj.windows = windows
        db.session.flush()

    def _apply_service_items(self, table: _Table) -> None:
        for number, values in self._rows(table, "code"):
            days_raw = values.get("promised_days", "") or "0"
            try:
                days = int(float(days_raw)) if re.fullmatch(r"\d+(\.0+)?", days_raw) else -1
            except ValueError:
                days = -1
            if days < 0 or days > 365:
                self.err(table, number, "promised_days", f"“{days_raw}”不是 0–365 之间的整数")
                continue
            codes = self._national(table, number, values)
            dept = self._dept(table, number, "department_code", values["department_code"])
            if dept and codes is not None:
                self._upsert(table, ServiceItem, "code", values["code"],
                             {"name": values["name"], "department": dept, "promised_days": days,
                              "active": self._active(values), **codes})
        db.session.flush()


def import_file(filename: str, content: bytes, *, kind: str | None = None, actor: Any = None) -> ImportResult:
    """Validate and apply a directory file (CSV of one kind, or XLSX with a sheet per kind).

    Rows are matched by their code (staff by 工号): existing rows are updated, new rows
    created. Raises ImportFailed listing every error as "第 N 行，X 列：原因"; the caller
    must then roll back, so nothing of the file is saved.
    """
    if kind is not None and kind not in KINDS:
        raise ImportFailed([ImportError_(0, "-", f"未知的数据类型 {kind}")])
    tables = read_tables(filename, content, kind)
    if not tables:
        raise ImportFailed([ImportError_(1, "-", "文件中没有可导入的工作表")])
    with db.session.no_autoflush:
        result = _Importer(tables, actor).run()
    audit.record("directory.import", actor=actor, filename=filename[-120:],
                 created=result.created, updated=result.updated)
    return result
