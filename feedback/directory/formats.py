"""The directory's file format: kinds, columns, header and sheet aliases, and the export.

The importer (``feedback.directory.importer``) reads this format, the export writes it, and
the admin pages list each kind's columns from it.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from sqlalchemy import select

from feedback.directory.models import Department, Hall, ServiceItem, Staff, Window
from feedback.extensions import db
from feedback.spreadsheets import append_xlsx_row, csv_row

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
                            ("code", "name", "parent_code", "credit_code", "area_code", "active")),
    "halls": KindSpec("halls", "大厅", Hall, "code", ("code", "name", "address", "area_code", "active")),
    "windows": KindSpec("windows", "窗口", Window, "code",
                        ("code", "name", "hall_code", "department_code", "active")),
    "staff": KindSpec("staff", "工作人员", Staff, "staff_number",
                      ("staff_number", "name", "department_code", "window_codes", "active")),
    "service_items": KindSpec("service_items", "服务事项", ServiceItem, "code",
                              ("code", "name", "department_code", "promised_days", "implementation_code",
                               "handle_item_code", "item_type", "record_type", "active")),
}
IMPORT_ORDER = ("departments", "halls", "windows", "staff", "service_items")

HEADER_ALIASES = {
    "编码": "code", "名称": "name", "上级部门编码": "parent_code", "地址": "address",
    "大厅编码": "hall_code", "部门编码": "department_code", "工号": "staff_number",
    "姓名": "name", "窗口编码": "window_codes", "承诺时限": "promised_days",
    "承诺办结时限": "promised_days", "启用": "active", "状态": "active",
    # National identifiers (feedback/directory/national.py)
    "实施编码": "implementation_code", "事项实施编码": "implementation_code",
    "业务办理项编码": "handle_item_code", "事项类型": "item_type", "事项类型代码": "item_type",
    "办件类型": "record_type", "统一社会信用代码": "credit_code", "社会信用代码": "credit_code",
    "行政区划代码": "area_code", "行政区划": "area_code", "区划代码": "area_code",
}
SHEET_ALIASES = {"部门": "departments", "大厅": "halls", "窗口": "windows",
                 "工作人员": "staff", "服务事项": "service_items", "事项": "service_items"}
TRUE_WORDS = {"", "1", "true", "yes", "y", "是", "启用", "有效"}
FALSE_WORDS = {"0", "false", "no", "n", "否", "停用", "无效"}
REQUIRED = {"code", "name", "staff_number", "hall_code", "department_code"}


def export_row(kind: str, obj: Any) -> dict[str, str]:
    """One row as the import format writes it."""
    active = "1" if obj.active else "0"
    if kind == "departments":
        return {"code": obj.code or "", "name": obj.name or "",
                "parent_code": obj.parent.code if obj.parent else "", "credit_code": obj.credit_code or "",
                "area_code": obj.area_code or "", "active": active}
    if kind == "halls":
        return {"code": obj.code or "", "name": obj.name or "", "address": obj.address or "",
                "area_code": obj.area_code or "", "active": active}
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
            "implementation_code": obj.implementation_code or "", "handle_item_code": obj.handle_item_code or "",
            "item_type": obj.item_type or "", "record_type": obj.record_type or "", "active": active}


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
    writer.writerows(csv_row(row) for row in export_rows(kind))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def export_xlsx() -> bytes:
    """One workbook with a sheet per kind, in the import format."""
    wb = Workbook()
    wb.remove(wb.active)
    for kind in IMPORT_ORDER:
        ws = wb.create_sheet(kind)
        append_xlsx_row(ws, KINDS[kind].columns)
        for row in export_rows(kind):
            append_xlsx_row(ws, (row[c] for c in KINDS[kind].columns))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
