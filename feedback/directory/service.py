"""Directory rules: the department tree, saving entities, import and export.

Import files use the headers documented in the README (English, or the Chinese
aliases below). A file is validated whole; any error aborts it and nothing is saved.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import or_, select

from feedback.audit import service as audit
from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.errors import ValidationError
from feedback.extensions import db

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class KindSpec:
    """How one directory kind looks in files and on admin pages."""

    name: str
    label: str
    model: type
    key: str  # natural key column
    columns: tuple[str, ...]


KINDS: dict[str, KindSpec] = {
    "departments": KindSpec("departments", "部门", Department, "code",
                            ("code", "name", "parent_code", "active")),
    "halls": KindSpec("halls", "大厅", Hall, "code", ("code", "name", "address", "active")),
    "windows": KindSpec("windows", "窗口", Window, "code",
                        ("code", "name", "hall_code", "department_code", "active")),
    "staff": KindSpec("staff", "工作人员", Staff, "staff_number",
                      ("staff_number", "name", "department_code", "window_codes", "active")),
    "service_items": KindSpec("service_items", "服务事项", ServiceItem, "code",
                              ("code", "name", "department_code", "promised_days", "active")),
}
IMPORT_ORDER = ("departments", "halls", "windows", "staff", "service_items")

HEADER_ALIASES = {
    "编码": "code", "名称": "name", "上级部门编码": "parent_code", "地址": "address",
    "大厅编码": "hall_code", "部门编码": "department_code", "工号": "staff_number",
    "姓名": "name", "窗口编码": "window_codes", "承诺时限": "promised_days",
    "承诺办结时限": "promised_days", "启用": "active", "状态": "active",
}
SHEET_ALIASES = {"部门": "departments", "大厅": "halls", "窗口": "windows",
                 "工作人员": "staff", "服务事项": "service_items", "事项": "service_items"}
TRUE_WORDS = {"", "1", "true", "yes", "y", "是", "启用", "有效"}
FALSE_WORDS = {"0", "false", "no", "n", "否", "停用", "无效"}
REQUIRED = {"code", "name", "staff_number", "hall_code", "department_code"}


# ---------------------------------------------------------------- tree and scope

def subtree_ids(root_ids: Iterable[int]) -> set[int]:
    """The given departments and all their descendants."""
    roots = set(root_ids)
    if not roots:
        return set()
    children: dict[int | None, list[int]] = {}
    for dept_id, parent_id in db.session.execute(select(Department.id, Department.parent_id)):
        children.setdefault(parent_id, []).append(dept_id)
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(children.get(current, []))
    return seen


def department_choices(scope: set[int] | None = None, include_inactive: bool = False) -> list[tuple[int, str]]:
    """(id, indented name) pairs in tree order, for select boxes."""
    depts = list(db.session.scalars(select(Department).order_by(Department.code)))
    by_parent: dict[int | None, list[Department]] = {}
    for d in depts:
        by_parent.setdefault(d.parent_id, []).append(d)
    out: list[tuple[int, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for d in by_parent.get(parent, []):
            if (include_inactive or d.active) and (scope is None or d.id in scope):
                out.append((d.id, "　" * depth + d.name + ("（已停用）" if not d.active else "")))
            walk(d.id, depth + 1)

    walk(None, 0)
    return out


def department_path(dept: Department) -> str:
    """"市政府 / 区政府 / 局" style path of a department."""
    names = []
    seen = set()
    while dept is not None and dept.id not in seen:
        seen.add(dept.id)
        names.append(dept.name)
        dept = dept.parent
    return " / ".join(reversed(names))


def scoped_department_filter(model: type, scope: set[int] | None):
    """A WHERE clause limiting ``model`` rows to a department scope (None = all)."""
    if scope is None:
        return True
    column = model.id if model is Department else model.department_id
    return column.in_(scope or {-1})


# ---------------------------------------------------------------- listing

def search(kind: str, q: str = "", *, scope: set[int] | None = None, show_inactive: bool = True,
           page: int = 1, per_page: int = 50) -> tuple[list[Any], int]:
    """A page of one kind, filtered by a search text and the viewer's scope."""
    spec = KINDS[kind]
    model = spec.model
    stmt = select(model)
    if model is not Hall:
        stmt = stmt.where(scoped_department_filter(model, scope))
    elif scope is not None:
        stmt = stmt.where(Hall.id.in_(select(Window.hall_id).where(Window.department_id.in_(scope or {-1}))))
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(getattr(model, spec.key).ilike(like), model.name.ilike(like)))
    if not show_inactive:
        stmt = stmt.where(model.active.is_(True))
    total = db.session.scalar(select(db.func.count()).select_from(stmt.subquery())) or 0
    rows = list(db.session.scalars(stmt.order_by(getattr(model, spec.key))
                                   .limit(per_page).offset((page - 1) * per_page)))
    return rows, total


def get_in_scope(kind: str, obj_id: int, scope: set[int] | None) -> Any | None:
    """One row of a kind if it exists and lies in the viewer's scope, else None."""
    model = KINDS[kind].model
    obj = db.session.get(model, obj_id)
    if obj is None or scope is None:
        return obj
    if model is Department:
        return obj if obj.id in scope else None
    if model is Hall:
        return obj if any(w.department_id in scope for w in obj.windows) else None
    return obj if obj.department_id in scope else None


# ---------------------------------------------------------------- saving one entity

def save(kind: str, obj: Any | None, data: dict[str, Any], *, actor: Any = None) -> Any:
    """Create (obj None) or update one directory row from validated form data.

    The natural key must be unique; a department may not become its own ancestor.
    Every change is audited with the fields that changed.
    """
    spec = KINDS[kind]
    model = spec.model
    key_value = data[spec.key].strip()
    if not CODE_RE.match(key_value):
        raise ValidationError("编码只能包含字母、数字、下划线、点和连字符，最长 40 位")
    clash = db.session.scalar(select(model).where(getattr(model, spec.key) == key_value))
    if clash is not None and clash is not obj:
        raise ValidationError(f"{spec.label}编码 {key_value} 已存在")
    _check_references(data)
    creating = obj is None
    if creating:
        obj = model()
        db.session.add(obj)
    before = _snapshot(kind, obj) if not creating else {}
    windows = data.pop("windows", None)
    for name, value in data.items():
        setattr(obj, name, value.strip() if isinstance(value, str) else value)
    if windows is not None:
        obj.windows = windows
    if model is Department and obj.parent_id is not None:
        _check_no_cycle(obj)
    db.session.flush()
    after = _snapshot(kind, obj)
    changes = {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
    audit.record(f"directory.{kind}.{'create' if creating else 'update'}", actor=actor, obj=obj,
                 changes=changes)
    return obj


def _check_references(data: dict[str, Any]) -> None:
    for column, model, label in (("department_id", Department, "部门"), ("parent_id", Department, "上级部门"),
                                 ("hall_id", Hall, "大厅")):
        if data.get(column) is not None and db.session.get(model, data[column]) is None:
            raise ValidationError(f"所选{label}不存在")


def set_active(kind: str, obj: Any, active: bool, *, actor: Any = None) -> None:
    """Deactivate or reactivate a row. Rows are never deleted: ratings point to them."""
    if obj.active == active:
        return
    obj.active = active
    audit.record(f"directory.{kind}.{'activate' if active else 'deactivate'}", actor=actor, obj=obj)


def _check_no_cycle(dept: Department) -> None:
    seen = {dept.id}
    parent = db.session.get(Department, dept.parent_id) if dept.parent_id else None
    while parent is not None:
        if parent.id in seen or parent is dept:
            raise ValidationError("上级部门不能是本部门或其下级部门")
        seen.add(parent.id)
        parent = parent.parent


def _snapshot(kind: str, obj: Any) -> dict[str, Any]:
    return {k: v for k, v in export_row(kind, obj).items()}


# ---------------------------------------------------------------- export

def export_row(kind: str, obj: Any) -> dict[str, str]:
    """One row as the import format writes it."""
    active = "1" if obj.active else "0"
    if kind == "departments":
        return {"code": obj.code or "", "name": obj.name or "",
                "parent_code": obj.parent.code if obj.parent else "", "active": active}
    if kind == "halls":
        return {"code": obj.code or "", "name": obj.name or "", "address": obj.address or "",
                "active": active}
    if kind == "windows":
        return {"code": obj.code or "", "name": obj.name or "",
                "hall_code": obj.hall.code if obj.hall else "",
                "department_code": obj.department.code if obj.department else "", "active": active}
    if kind == "staff":
        return {"staff_number": obj.staff_number or "", "name": obj.name or "",
                "department_code": obj.department.code if obj.department else "",
                "window_codes": ";".join(w.code for w in obj.windows), "active": active}
    return {"code": obj.code or "", "name": obj.name or "",
            "department_code": obj.department.code if obj.department else "",
            "promised_days": str(obj.promised_days if obj.promised_days is not None else ""),
            "active": active}


def export_rows(kind: str) -> list[dict[str, str]]:
    """Every row of a kind in the import format, ordered by key."""
    spec = KINDS[kind]
    rows = db.session.scalars(select(spec.model).order_by(getattr(spec.model, spec.key)))
    return [export_row(kind, r) for r in rows]


def export_csv(kind: str) -> bytes:
    """A CSV file (UTF-8 with BOM, so Excel opens Chinese correctly)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=KINDS[kind].columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(export_rows(kind))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def export_xlsx() -> bytes:
    """One workbook with a sheet per kind, in the import format."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for kind in IMPORT_ORDER:
        ws = wb.create_sheet(kind)
        ws.append(list(KINDS[kind].columns))
        for row in export_rows(kind):
            ws.append([row[c] for c in KINDS[kind].columns])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ---------------------------------------------------------------- import

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
        rows = list(csv.reader(io.StringIO(text)))
        return [_make_table(rows, kind, sheet="", filename=filename)]
    raise ImportFailed([ImportError_(0, "-", "只支持 .csv 和 .xlsx 文件")])


def _read_xlsx(content: bytes, kind: str | None) -> list[_Table]:
    from openpyxl import load_workbook
    from zipfile import BadZipFile

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
        values = {header[i]: (row[i].strip() if i < len(row) else "") for i in range(len(header)) if header[i]}
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
    if "promised_days" in cols:
        return "service_items"
    if "parent_code" in cols:
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

    # -- kinds
    def _apply_departments(self, table: _Table) -> None:
        seen: dict[str, int] = {}
        pending = []
        for number, values in table.rows:
            if not self._common(table, number, values, "code"):
                continue
            if not self._seen_key(table, seen, number, "code", values["code"]):
                continue
            obj = self._upsert(table, Department, "code", values["code"],
                               {"name": values["name"], "active": self._active(values)})
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
        seen: dict[str, int] = {}
        for number, values in table.rows:
            if self._common(table, number, values, "code") and \
                    self._seen_key(table, seen, number, "code", values["code"]):
                self._upsert(table, Hall, "code", values["code"],
                             {"name": values["name"], "address": values.get("address", ""),
                              "active": self._active(values)})
        db.session.flush()

    def _apply_windows(self, table: _Table) -> None:
        seen: dict[str, int] = {}
        for number, values in table.rows:
            if not (self._common(table, number, values, "code")
                    and self._seen_key(table, seen, number, "code", values["code"])):
                continue
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
        seen: dict[str, int] = {}
        for number, values in table.rows:
            if not (self._common(table, number, values, "staff_number")
                    and self._seen_key(table, seen, number, "staff_number", values["staff_number"])):
                continue
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
        seen: dict[str, int] = {}
        for number, values in table.rows:
            if not (self._common(table, number, values, "code")
                    and self._seen_key(table, seen, number, "code", values["code"])):
                continue
            days_raw = values.get("promised_days", "") or "0"
            try:
                days = int(float(days_raw)) if re.fullmatch(r"\d+(\.0+)?", days_raw) else -1
            except ValueError:
                days = -1
            if days < 0 or days > 365:
                self.err(table, number, "promised_days", f"“{days_raw}”不是 0–365 之间的整数")
                continue
            dept = self._dept(table, number, "department_code", values["department_code"])
            if dept:
                self._upsert(table, ServiceItem, "code", values["code"],
                             {"name": values["name"], "department": dept, "promised_days": days,
                              "active": self._active(values)})
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
