"""GB/T 39046-2020 datasets: tables 9 (评价), 10 (投诉) and 11 (电子监察) as JSON, XML or CSV files.

``flask exchange export`` writes them for the province (or an auditor) by local date range.
Every file names the standard, its table, the date range and the time format; table 9 also
says which way its 满意度代码 runs, because the standard's direction (附录A.8: 1 = 非常满意)
is the opposite of the vendor links' (5 = 非常满意):

- JSON: one object, ``{"dataset", "standard", "title", "from", "to", "时间格式",
  "满意度代码说明" (table 9), "items": [...]}``, the items keyed by the standard's item names;
- XML: root ``<dataset>`` with the same header fields as attributes, one ``<item>`` a row,
  whose children are named by the item names (Chinese element names are valid XML);
- CSV: UTF-8 with a BOM, a first line starting with "#" stating the same header (no ASCII comma
  or quote in it, so it is one cell wherever it is read; a reader skips it as a comment), then
  the header row of item names and one row an item. Cells are protected against formula
  injection (``feedback.spreadsheets.csv_row``).

Times are ``YYYYMMDDThhmmss`` in the export's zone (Asia/Shanghai); an absent value is "".

What each table holds (decisions; the lead's CLI only picks the dataset and range):

- 表9, ratings rated in the range. Only valid ratings: a rating found invalid (申诉成立, 防刷评)
  is left out, as the exchange reports invalidations as messages of their own. 评价次数 is 1:
  a record is rated once (一次一评). 评价渠道 is the national code of ``CHANNEL_CODES``; the
  automatic rating (channel ``default``, 系统默认评价) has no national channel and is written
  with an empty 评价渠道. 评价人 is the surname and asterisks (王**) or 匿名, never a full name
  or a phone number; 文字评价 has phone and ID numbers and the citizen's name masked.
- 表10, complaints filed in the range, with the ticket they opened. 投诉标题 is made from the
  complained-about unit and the case number (complaints have no title); 被投诉人 is the window
  the citizen named (complaints name no person); 承办单位代码 is the handling department's
  统一社会信用代码 ("" while unknown); 承办人 the assignee, else whoever signed for the ticket;
  承诺时限 the first reply deadline, 延期时限 the extended one; 超期天数 the working days
  (feedback.calendar) the reply came after the deadline in force — or, unanswered, that the
  ticket was closed or is today after it — else 0.
- 表11, the ticket steps 超期预警 (``overdue``, 监察预警类型代码 1 预警, rule R-OVERDUE) and
  督办 (``supervised``, 代码 2 督办, rule R-SUPERVISE) written in the range. 监察编号 is
  "JC-<event id>" (stable across exports); 督办发出时间 and 状态产生时间 are both when the deadline
  sweep recorded the step; 机构名称 and 责任部门 the ticket's department (its current one);
  办件编号 and 事项类型代码 are "" for a complaint's ticket (no 办件). Table 11 lists no 行政区划.
  It also lists the 督办单 issued in the range (feedback/orders): 监察编号 the order's number
  (督〔2026〕12号), 代码 2 督办, rule R-ORDER, 状态产生时间 its latest change, 监察结果描述 its status
  and answer time.
"""
from __future__ import annotations

import csv
import heapq
import io
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Callable, Iterable, Iterator
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import aliased

from feedback.accounts.models import User
from feedback.calendar.days import WorkingCalendar
from feedback.clock import as_utc, utcnow
from feedback.complaints.models import Complaint
from feedback.contact import CONTROL_RE
from feedback.directory.models import Department, Hall, ServiceItem, Window
from feedback.directory.national import CHANNEL_CODES
from feedback.errors import ValidationError
from feedback.evaluations.levels import LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.orders.models import SupervisionOrder
from feedback.privacy.service import mask_personal
from feedback.spreadsheets import csv_row
from feedback.tickets.models import Ticket, TicketEvent
from feedback.tickets.workflow import EVENT_LABELS, STATES

STANDARD = "GB/T 39046-2020"
TIME_FORMAT = "%Y%m%dT%H%M%S"
TIME_FORMAT_NOTE = "YYYYMMDDThhmmss（北京时间）"
FORMATS = ("json", "xml", "csv")
CHUNK = 1000  # rows fetched from the database at a time
ANONYMOUS = "匿名"
SATISFACTION_CODES_NOTE = ("满意度代码按 GB/T 39046 附录A.8：1 非常满意 · 2 满意 · 3 基本满意 · 4 不满意 · "
                           "5 非常不满意（与省级接口的 5 = 非常满意 方向相反）")
COMPLAINT_SOURCES = {"web": "网站", "api": "合作平台接口", "sms": "短信", "phone": "电话"}
# 监察预警类型代码 and 监察规则编号 of the two supervision steps (this system's codes).
SUPERVISION_KINDS = {"overdue": ("1", "R-OVERDUE"), "supervised": ("2", "R-SUPERVISE")}
SUPERVISION_TYPE_NOTE = "监察预警类型代码：1 预警（超期预警）· 2 督办"


@dataclass(frozen=True)
class Dataset:
    """One GB/T 39046 table: its key on the command line, table number, title and item names
    in the standard's order."""

    key: str
    table: str
    title: str
    items: tuple[str, ...]

    @property
    def standard(self) -> str:
        """'GB/T 39046-2020 表9' and so on."""
        return f"{STANDARD} {self.table}"


DATASETS: dict[str, Dataset] = {
    "evaluation": Dataset("evaluation", "表9", "政务服务绩效评价", (
        "办件编号", "评价渠道", "评价人", "评价时间", "评价次数", "满意度", "满意度代码", "文字评价", "行政区划")),
    "complaint": Dataset("complaint", "表10", "办事互动（投诉）", (
        "投诉标题", "投诉人", "被投诉单位", "被投诉人", "投诉内容", "投诉来源", "投诉时间", "承办单位代码",
        "承办单位名称", "承办人", "承办时间", "反馈信息", "反馈时间", "承诺时限", "延期时限", "延期原因",
        "超期天数", "行政区划")),
    "supervision": Dataset("supervision", "表11", "电子监察", (
        "办件编号", "督办内容", "机构名称", "事项类型代码", "督办发出时间", "监察编号", "监察规则编号",
        "监察预警类型代码", "状态产生时间", "监察结果描述", "责任部门")),
}


class DatasetError(ValidationError, ValueError, code="dataset-error"):
    """An export that cannot be made: unknown dataset or format, or a range that ends before it
    starts. The message is in Chinese and English (the command line shows it)."""


# ---------------------------------------------------------------- public entry points

def export_dataset(dataset: str, date_from: date, date_to: date, fmt: str, *, tz: tzinfo | str,
                   now: datetime | None = None) -> bytes:
    """The file of ``dataset`` (evaluation | complaint | supervision) for the local days
    ``date_from``..``date_to`` (both included, in ``tz``) in ``fmt`` (json | xml | csv).

    ``now`` (default: the clock) is the moment an unanswered ticket's 超期天数 runs to.
    Raises :class:`DatasetError` (a ValueError) for an unknown dataset or format or a
    range whose end is before its start. See :func:`iter_dataset` to write it in pieces.
    """
    return b"".join(iter_dataset(dataset, date_from, date_to, fmt, tz=tz, now=now))


def iter_dataset(dataset: str, date_from: date, date_to: date, fmt: str, *, tz: tzinfo | str,
                 now: datetime | None = None) -> Iterator[bytes]:
    """The file of :func:`export_dataset` in pieces of bytes, read from the database CHUNK
    rows at a time, so a year of a province's ratings never sits in memory at once.

    The arguments are checked when it is called, before any piece is made, so a bad one
    raises here, never half way through a file.
    """
    spec, writer, zone = _check(dataset, date_from, date_to, fmt, tz)
    start = datetime.combine(date_from, time(0), tzinfo=zone).astimezone(timezone.utc)
    end = datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=zone).astimezone(timezone.utc)
    rows = ROWS[spec.key](start, end, zone, as_utc(now) if now else utcnow())
    header = _header(spec, date_from, date_to)
    return (piece.encode("utf-8") for piece in writer(spec, header, rows))


def gb_time(moment: datetime | None, tz: tzinfo) -> str:
    """``moment`` as GB/T 39046 writes times, ``YYYYMMDDThhmmss`` in ``tz``; "" for None."""
    return as_utc(moment).astimezone(tz).strftime(TIME_FORMAT) if moment else ""


def mask_name(name: str | None) -> str:
    """How a citizen's name leaves the system: the first character and one * for each other
    (王小明 → 王**); 匿名 when there is none."""
    name = (name or "").strip()
    if not name:
        return ANONYMOUS
    return name[0] + "*" * max(1, len(name) - 1)


def satisfaction_code(level: int) -> str:
    """The GB/T 39046 附录A.8 满意度代码 of our level: 5 非常满意 → "1" … 1 非常不满意 → "5"."""
    return str(LEVELS[level].gbt39046)


def _check(dataset: str, date_from: date, date_to: date, fmt: str, tz: tzinfo | str):
    spec = DATASETS.get(dataset)
    if spec is None:
        raise DatasetError(f"未知的数据集“{dataset}”，可选 {'、'.join(DATASETS)} / "
                           f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}", field="dataset")
    writer = WRITERS.get(fmt)
    if writer is None:
        raise DatasetError(f"未知的文件格式“{fmt}”，可选 {'、'.join(FORMATS)} / "
                           f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}", field="format")
    if date_from > date_to:
        raise DatasetError(f"起始日期 {date_from.isoformat()} 晚于截止日期 {date_to.isoformat()} / "
                           f"the range starts ({date_from.isoformat()}) after it ends ({date_to.isoformat()})",
                           field="from")
    return spec, writer, ZoneInfo(tz) if isinstance(tz, str) else tz


def _header(spec: Dataset, date_from: date, date_to: date) -> dict[str, str]:
    header = {"dataset": spec.key, "standard": spec.standard, "title": spec.title,
              "from": date_from.isoformat(), "to": date_to.isoformat(), "时间格式": TIME_FORMAT_NOTE}
    if "满意度代码" in spec.items:
        header["满意度代码说明"] = SATISFACTION_CODES_NOTE
    if "监察预警类型代码" in spec.items:
        header["监察预警类型代码说明"] = SUPERVISION_TYPE_NOTE
    return header


def _chunked(stmt) -> Iterator[Any]:
    """The rows of ``stmt`` fetched CHUNK at a time (a server-side cursor on PostgreSQL)."""
    yield from db.session.execute(stmt.execution_options(yield_per=CHUNK))


# ---------------------------------------------------------------- table 9: ratings

def _evaluation_rows(start: datetime, end: datetime, zone: tzinfo, now: datetime) -> Iterator[dict]:
    stmt = (select(Evaluation.level, Evaluation.channel, Evaluation.comment, Evaluation.rated_at,
                   ServiceRecord.national_number, ServiceRecord.citizen_name, Department.area_code)
            .outerjoin(ServiceRecord, ServiceRecord.id == Evaluation.service_record_id)
            .join(Department, Department.id == Evaluation.department_id)
            .where(Evaluation.invalid.is_(False), Evaluation.rated_at >= start, Evaluation.rated_at < end)
            .order_by(Evaluation.rated_at, Evaluation.id))
    for r in _chunked(stmt):
        level = LEVELS[r.level]
        yield {
            "办件编号": r.national_number or "",
            "评价渠道": str(CHANNEL_CODES.get(r.channel, "")),
            "评价人": mask_name(r.citizen_name),
            "评价时间": gb_time(r.rated_at, zone),
            "评价次数": 1,  # one rating per record (一次一评)
            "满意度": level.label,
            "满意度代码": satisfaction_code(level.value),
            "文字评价": mask_personal(r.comment, [r.citizen_name]) or "",
            "行政区划": r.area_code or "",
        }


# ---------------------------------------------------------------- table 10: complaints

def _complaint_rows(start: datetime, end: datetime, zone: tzinfo, now: datetime) -> Iterator[dict]:
    complained = aliased(Department)
    handling = aliased(Department)
    assignee = aliased(User)
    signed_by = (select(TicketEvent.actor_label).where(TicketEvent.ticket_id == Ticket.id,
                                                       TicketEvent.kind == "accept")
                 .order_by(TicketEvent.id).limit(1).scalar_subquery())
    stmt = (select(Complaint.case_number, Complaint.contact_name, Complaint.description, Complaint.source,
                   Complaint.created_at, complained.name.label("complained_name"),
                   complained.area_code.label("complained_area"), Window.name.label("window_name"),
                   Hall.name.label("hall_name"), Ticket.accepted_at, Ticket.reply_text, Ticket.replied_at,
                   Ticket.reply_due_at, Ticket.extended_due_at, Ticket.extension_reason, Ticket.due_at,
                   Ticket.closed_at, Ticket.callback_contact, handling.name.label("handling_name"),
                   handling.credit_code, handling.area_code.label("handling_area"),
                   assignee.display_name.label("assignee_name"), signed_by.label("signed_by"))
            .outerjoin(Ticket, Ticket.complaint_id == Complaint.id)
            .outerjoin(complained, complained.id == Complaint.department_id)
            .outerjoin(handling, handling.id == Ticket.department_id)
            .outerjoin(assignee, assignee.id == Ticket.assignee_id)
            .outerjoin(Window, Window.id == Complaint.window_id)
            .outerjoin(Hall, Hall.id == Window.hall_id)
            .where(Complaint.created_at >= start, Complaint.created_at < end)
            .order_by(Complaint.created_at, Complaint.id))
    calendar = WorkingCalendar(zone=zone)  # one snapshot of the calendar for the whole file
    for r in _chunked(stmt):
        names = [r.contact_name, r.callback_contact]
        unit = r.complained_name or r.handling_name or ""
        yield {
            "投诉标题": f"关于{unit or '待分办单位'}的投诉（{r.case_number}）",
            "投诉人": mask_name(r.contact_name),
            "被投诉单位": unit,
            "被投诉人": f"{r.hall_name} {r.window_name}" if r.window_name else "",
            "投诉内容": mask_personal(r.description, names) or "",
            "投诉来源": COMPLAINT_SOURCES.get(r.source, r.source or ""),
            "投诉时间": gb_time(r.created_at, zone),
            "承办单位代码": r.credit_code or "",
            "承办单位名称": r.handling_name or "",
            "承办人": r.assignee_name or r.signed_by or "",
            "承办时间": gb_time(r.accepted_at, zone),
            "反馈信息": mask_personal(r.reply_text, names) or "",
            "反馈时间": gb_time(r.replied_at, zone),
            "承诺时限": gb_time(r.reply_due_at, zone),
            "延期时限": gb_time(r.extended_due_at, zone),
            "延期原因": mask_personal(r.extension_reason, names) or "",
            "超期天数": _late_days(calendar, r.due_at, r.replied_at or r.closed_at or now),
            "行政区划": r.handling_area or r.complained_area or "",
        }


def _late_days(calendar: WorkingCalendar, due_at: datetime | None, end: datetime) -> int:
    """Working days ``end`` lies after the local day of ``due_at`` (0 when on time or no deadline)."""
    if due_at is None:
        return 0
    return max(0, calendar.working_days_between(as_utc(due_at), as_utc(end)))


# ---------------------------------------------------------------- table 11: supervision

def _supervision_rows(start: datetime, end: datetime, zone: tzinfo, now: datetime) -> Iterator[dict]:
    stmt = (select(TicketEvent.id, TicketEvent.kind, TicketEvent.note, TicketEvent.at, Ticket.state,
                   Ticket.replied_at, Department.name.label("department_name"), ServiceRecord.national_number,
                   ServiceItem.item_type)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .outerjoin(Department, Department.id == Ticket.department_id)
            .outerjoin(Evaluation, Evaluation.id == Ticket.evaluation_id)
            .outerjoin(ServiceRecord, ServiceRecord.id == Evaluation.service_record_id)
            .outerjoin(ServiceItem, ServiceItem.id == Evaluation.service_item_id)
            .where(TicketEvent.kind.in_(tuple(SUPERVISION_KINDS)), TicketEvent.at >= start, TicketEvent.at < end)
            .order_by(TicketEvent.at, TicketEvent.id))
    for r in _chunked(stmt):
        type_code, rule = SUPERVISION_KINDS[r.kind]
        result = f"{EVENT_LABELS[r.kind]}；工单当前状态：{STATES.get(r.state, r.state)}"
        if r.replied_at:
            result += f"，已于 {gb_time(r.replied_at, zone)} 答复群众"
        yield {
            "_at": as_utc(r.at),
            "办件编号": r.national_number or "",
            "督办内容": r.note or EVENT_LABELS[r.kind],
            "机构名称": r.department_name or "",
            "事项类型代码": r.item_type or "",
            "督办发出时间": gb_time(r.at, zone),
            "监察编号": f"JC-{r.id}",
            "监察规则编号": rule,
            "监察预警类型代码": type_code,
            "状态产生时间": gb_time(r.at, zone),
            "监察结果描述": result,
            "责任部门": r.department_name or "",
        }


def _order_rows(start: datetime, end: datetime, zone: tzinfo) -> list[dict]:
    """督办单 issued in the range (a few a day, read at once): 监察编号 the order's number,
    代码 2 督办, rule R-ORDER; 状态产生时间 its latest change (answer, overdue mark, withdrawal)."""
    stmt = (select(SupervisionOrder).where(SupervisionOrder.issued_at >= start, SupervisionOrder.issued_at < end)
            .order_by(SupervisionOrder.issued_at, SupervisionOrder.id))
    rows = []
    for o in db.session.scalars(stmt):
        record = o.ticket.evaluation.record if o.ticket is not None and o.ticket.evaluation is not None else None
        item = record.service_item if record is not None else None
        changed = o.answered_at or o.withdrawn_at or o.overdue_at or o.issued_at
        result = f"督办单{o.status_label}，限 {gb_time(o.due_at, zone)} 前书面答复"
        if o.answered_at:
            result += f"，已于 {gb_time(o.answered_at, zone)} 答复" + ("（逾期）" if o.answered_late else "")
        rows.append({"_at": as_utc(o.issued_at), "_id": o.id,
                     "办件编号": getattr(record, "national_number", None) or "", "督办内容": o.content,
                     "机构名称": o.department.name, "事项类型代码": getattr(item, "item_type", None) or "",
                     "督办发出时间": gb_time(o.issued_at, zone), "监察编号": o.number, "监察规则编号": "R-ORDER",
                     "监察预警类型代码": "2", "状态产生时间": gb_time(changed, zone), "监察结果描述": result,
                     "责任部门": o.department.name})
    return rows


def _table11_rows(start: datetime, end: datetime, zone: tzinfo, now: datetime) -> Iterator[dict]:
    """Table 11: the tickets' supervision steps and the 督办单, in time order."""
    yield from heapq.merge(_supervision_rows(start, end, zone, now), _order_rows(start, end, zone),
                           key=lambda row: row["_at"])


ROWS: dict[str, Callable[[datetime, datetime, tzinfo, datetime], Iterator[dict]]] = {
    "evaluation": _evaluation_rows, "complaint": _complaint_rows, "supervision": _table11_rows}


# ---------------------------------------------------------------- writers

def _clean(value: Any) -> Any:
    """Text without control characters (XML 1.0 cannot hold them; no reader wants them)."""
    return CONTROL_RE.sub("", value) if isinstance(value, str) else value


def _json(spec: Dataset, header: dict, rows: Iterable[dict]) -> Iterator[str]:
    head = json.dumps(header, ensure_ascii=False)
    yield head[:-1] + ', "items": ['
    separator = "\n"
    for row in rows:
        yield separator + json.dumps({name: _clean(row[name]) for name in spec.items}, ensure_ascii=False)
        separator = ",\n"
    yield "\n]}\n"


def _xml(spec: Dataset, header: dict, rows: Iterable[dict]) -> Iterator[str]:
    attributes = " ".join(f"{name}={quoteattr(value)}" for name, value in header.items())
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<dataset {attributes}>\n'
    for row in rows:
        item = ET.Element("item")
        for name in spec.items:
            ET.SubElement(item, name).text = str(_clean(row[name]))
        yield "  " + ET.tostring(item, encoding="unicode") + "\n"
    yield "</dataset>\n"


def _csv(spec: Dataset, header: dict, rows: Iterable[dict]) -> Iterator[str]:
    notes = [f"{header['standard']} {header['title']}", f"{header['from']} 至 {header['to']}",
             f"时间格式 {TIME_FORMAT_NOTE}"]
    notes += [header[key] for key in ("满意度代码说明", "监察预警类型代码说明") if key in header]
    # One comment line: full-width punctuation only, so it stays one cell in any reader.
    yield "\ufeff# " + "；".join(notes).replace(",", "，").replace('"', "“") + "\r\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=spec.items, lineterminator="\r\n")
    writer.writeheader()
    for n, row in enumerate(rows, 1):
        writer.writerow(csv_row({name: _clean(row[name]) for name in spec.items}))
        if n % CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


WRITERS: dict[str, Callable[[Dataset, dict, Iterable[dict]], Iterator[str]]] = {
    "json": _json, "xml": _xml, "csv": _csv}
