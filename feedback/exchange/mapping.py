"""The payload of each message, built from its subject at send time (EXCHANGE.md's fields).

Nothing personal goes up: no phone, no name, no ID number; free text (a comment, a reply,
a complaint) has phone and ID numbers masked and the citizen's name replaced. Levels keep
the national link's direction (5 = 非常满意); channels are the national codes 1–7; times are
``yyyyMMddHHmmss`` Beijing time. Subjects are loaded in bulk, one query per kind per batch.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from feedback.clock import to_local
from feedback.complaints.models import Complaint
from feedback.directory.models import Department, Hall, ServiceItem
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db
from feedback.orders.models import SupervisionOrder
from feedback.privacy.service import mask_personal
from feedback.tickets.models import Ticket, TicketEvent

# Our channel names → the national 评价渠道 code (pf). A default rating (the window closed
# unrated) is reported as given at the hall's other terminals, and says so in ``defaultEval``.
CHANNEL_CODES = {"pc": 1, "mobile": 2, "qr": 3, "hall_tablet": 4, "hall_terminal": 5, "phone": 6, "sms": 7,
                 "default": 5}
VERDICT_CODES = {"satisfied": "1", "basically_satisfied": "2", "dissatisfied": "3"}
WARNING_TYPES = {"overdue": "1", "supervised": "2"}  # 监察预警类型: 1 超期预警, 2 督办
RULES = {"overdue": "R-OVERDUE", "supervised": "R-SUPERVISE"}
TEXT_LIMIT = 1000
FREE_TEXT = ("writingEvaluation", "complaintContent", "content", "superviseContent", "feedbackContent")


def wire_time(moment: datetime | None) -> str:
    """``yyyyMMddHHmmss`` in Beijing time (empty for no time)."""
    return to_local(moment).strftime("%Y%m%d%H%M%S") if moment else ""


def masked_text(value: str | None, names=()) -> str:
    """Free text as it goes up: phone and ID numbers and ``names`` masked, at most TEXT_LIMIT long."""
    return (mask_personal(value or "", names) or "")[:TEXT_LIMIT]


def _area(department, hall=None) -> str:
    return (getattr(hall, "area_code", None) or getattr(department, "area_code", None) or "")


def _record_fields(record: ServiceRecord) -> dict:
    item, dept = record.service_item, record.department
    return {
        "projectNo": record.national_number, "serviceNumber": record.service_number or 1,
        "taskCode": item.implementation_code or "", "taskHandleItem": item.handle_item_code or "",
        "taskName": item.name, "deptCode": dept.credit_code or "", "deptName": dept.name,
        "areaCode": _area(dept, record.hall), "proStatus": "3", "acceptDate": wire_time(record.completed_at),
        "userProp": record.applicant_type or "1",
    }


def record_payload(record: ServiceRecord) -> dict:
    """The service-record message (办件)."""
    item, fields = record.service_item, _record_fields(record)
    done = fields["acceptDate"]  # wire_time(record.completed_at), written once
    return {**fields, "serviceName": "办结", "taskType": item.item_type or "",
            "resultDate": done, "promiseDay": item.promised_days or 0,
            "projectType": item.record_type or "2", "certKey": "", "serviceTime": done,
            "dataSource": current_app.config["EXCHANGE_DATA_SOURCE"]}


def evaluation_payload(evaluation: Evaluation) -> dict:
    """The rating message: level 5..1 as given (5 = 非常满意), labels, masked text."""
    record = evaluation.record
    out = {**_record_fields(record), "assessNumber": 1, "certKey": "",
           "pf": CHANNEL_CODES.get(evaluation.channel, 5), "satisfaction": evaluation.level,
           "evalDetail": ",".join(str(r) for r in evaluation.reasons or []),
           "writingEvaluation": masked_text(evaluation.comment, [record.citizen_name]),
           "assessTime": wire_time(evaluation.rated_at), "evaversion": evaluation.reasons_version or 1,
           "dataSource": current_app.config["EXCHANGE_DATA_SOURCE"]}
    if evaluation.channel == "default":
        out["defaultEval"] = 1
    return out


def invalidation_payload(evaluation: Evaluation) -> dict:
    """The 评价作废 message: which rating, when it was found invalid."""
    record = evaluation.record
    return {"projectNo": record.national_number, "serviceNumber": record.service_number or 1,
            "assessNumber": 1, "invalidTime": wire_time(evaluation.invalidated_at),
            "reason": "经核实认定为无效评价", "dataSource": current_app.config["EXCHANGE_DATA_SOURCE"]}


def complaint_payload(complaint: Complaint) -> dict:
    """The complaint message (办事互动, GB/T 39046 table 10's first part)."""
    dept = complaint.department
    return {"complaintNo": complaint.case_number, "complaintTime": wire_time(complaint.created_at),
            "complaintContent": masked_text(complaint.description, [complaint.contact_name]),
            "complaintSource": complaint.source, "deptCode": getattr(dept, "credit_code", None) or "",
            "deptName": getattr(dept, "name", ""), "areaCode": _area(dept, complaint.hall),
            "dataSource": current_app.config["EXCHANGE_DATA_SOURCE"]}


def _parent_fields(ticket: Ticket) -> dict:
    if ticket.evaluation is not None and ticket.evaluation.record is not None:
        record = ticket.evaluation.record
        return {"projectNo": record.national_number, "serviceNumber": record.service_number or 1,
                "assessNumber": 1}
    if ticket.complaint is not None:
        return {"complaintNo": ticket.complaint.case_number}
    return {}


def _citizen_names(ticket: Ticket) -> list:
    names = []
    if ticket.evaluation is not None and ticket.evaluation.record is not None:
        names.append(ticket.evaluation.record.citizen_name)
    if ticket.complaint is not None:
        names.append(ticket.complaint.contact_name)
    return names


def step_payload(event: TicketEvent) -> dict:
    """A rectification step (整改、答复、群众评价办理结果、办结) or a supervision step (预警、督办)."""
    ticket = event.ticket
    dept = ticket.department
    base = {**_parent_fields(ticket), "ticketNo": str(ticket.id), "deptCode": getattr(dept, "credit_code", None) or "",
            "deptName": getattr(dept, "name", ""), "areaCode": _area(dept, ticket.hall),
            "dataSource": current_app.config["EXCHANGE_DATA_SOURCE"]}
    names = _citizen_names(ticket)
    if event.kind in WARNING_TYPES:
        return {**base, "monitorNo": f"JC-{event.id}", "ruleNo": RULES[event.kind],
                "warnType": WARNING_TYPES[event.kind], "superviseContent": masked_text(event.note, names),
                "superviseTime": wire_time(event.at), "dueTime": wire_time(ticket.due_at)}
    content = {"rectify": ticket.measures, "reply": ticket.reply_text}.get(event.kind) or event.note
    out = {**base, "step": event.kind, "stepTime": wire_time(event.at), "content": masked_text(content, names),
           "dueTime": wire_time(ticket.due_at)}
    if event.kind in ("handling_rated", "reopened", "close", "unrated_closed") and ticket.handling_rating:
        out["verdict"] = VERDICT_CODES.get(ticket.handling_rating, "")
    if event.kind in ("close", "unrated_closed"):
        out["closeReason"] = ticket.close_reason or ""
    return out


def order_payload(order, step: str) -> dict:
    """A 督办单 step (``issued`` or ``answered``, GB/T 39046 table 11): ``monitorNo`` is the
    order's number, warnType 2 (督办), rule R-ORDER; the answer's text when answered."""
    dept, ticket = order.department, order.ticket
    base = {**(_parent_fields(ticket) if ticket is not None else {}), "ticketNo": str(ticket.id) if ticket else "",
            "deptCode": getattr(dept, "credit_code", None) or "", "deptName": getattr(dept, "name", ""),
            "areaCode": _area(dept, getattr(ticket, "hall", None)),
            "dataSource": current_app.config["EXCHANGE_DATA_SOURCE"]}
    names = _citizen_names(ticket) if ticket is not None else []
    out = {**base, "monitorNo": order.number, "ruleNo": "R-ORDER", "warnType": WARNING_TYPES["supervised"],
           "step": step, "superviseContent": masked_text(order.content, names), "superviseTime": wire_time(order.issued_at),
           "dueTime": wire_time(order.due_at)}
    if step == "answered":
        out.update(feedbackContent=masked_text(order.answer, names), feedbackTime=wire_time(order.answered_at))
    return out


_ORDER_MESSAGE = re.compile(r"ORD-(\d+)-(issued|answered)$")


def _order_payloads(messages) -> dict[str, dict | None]:
    orders = _load(SupervisionOrder, [m.subject_id for m in messages], joinedload(SupervisionOrder.department),
                   selectinload(SupervisionOrder.ticket).options(
                       joinedload(Ticket.hall), selectinload(Ticket.evaluation).joinedload(Evaluation.record),
                       selectinload(Ticket.complaint)))
    out: dict[str, dict | None] = {}
    for m in messages:
        found = _ORDER_MESSAGE.search(m.message_id)
        order = orders.get(m.subject_id)
        out[m.message_id] = order_payload(order, found.group(2)) if order is not None and found else None
    return out


def _load(model, ids: list[int], *options) -> dict[int, object]:
    return {obj.id: obj for obj in db.session.scalars(select(model).where(model.id.in_(ids)).options(*options))}


# Records and ratings, the bulk of what goes up (a 补报 sends millions), are read as plain rows
# of just the columns the builders above use, in one joined query, not as ORM objects (whose
# per-object cost was most of the pusher's time); a builder reading another attribute fails
# loudly here, so a new field is added to these lists.
_COLUMNS = {
    "e_": (Evaluation, ("level", "channel", "reasons", "comment", "rated_at", "reasons_version", "invalidated_at")),
    "r_": (ServiceRecord, ("national_number", "service_number", "completed_at", "applicant_type", "citizen_name")),
    "i_": (ServiceItem, ("implementation_code", "handle_item_code", "name", "item_type", "promised_days",
                         "record_type")),
    "d_": (Department, ("credit_code", "name", "area_code")),
    "h_": (Hall, ("area_code",)),
}


def _plain_subjects(kind: str, ids: list[int]) -> dict[int, SimpleNamespace]:
    """Records (``kind`` "record") or ratings with their record, item, department and hall,
    as namespaces with the attributes the builders read."""
    prefixes = ("r_", "i_", "d_", "h_") if kind == "record" else ("e_", "r_", "i_", "d_", "h_")
    columns, spans, at = [], {}, 0
    for prefix in prefixes:
        model, names = _COLUMNS[prefix]
        columns += [getattr(model, name) for name in ("id", *names)]
        spans[prefix] = (at, at + 1 + len(names), names)
        at += 1 + len(names)
    q = select(*columns)
    if kind == "record":
        q = q.select_from(ServiceRecord).where(ServiceRecord.id.in_(ids))
    else:
        q = (q.select_from(Evaluation).outerjoin(ServiceRecord, ServiceRecord.id == Evaluation.service_record_id)
             .where(Evaluation.id.in_(ids)))
    q = (q.outerjoin(ServiceItem, ServiceItem.id == ServiceRecord.service_item_id)
         .outerjoin(Department, Department.id == ServiceRecord.department_id)
         .outerjoin(Hall, Hall.id == ServiceRecord.hall_id))
    seen: dict[str, dict] = {prefix: {} for prefix in prefixes}

    def part(row: tuple, prefix: str, **links) -> SimpleNamespace | None:
        start, end, names = spans[prefix]
        key = row[start]
        if key is None:
            return None
        obj = seen[prefix].get(key)
        if obj is None:
            obj = seen[prefix][key] = SimpleNamespace(id=key, **dict(zip(names, row[start + 1:end])), **links)
        return obj

    out = {}
    for row in db.session.connection().execute(q):  # Core rows: no ORM layer in between
        record = part(row, "r_", service_item=part(row, "i_"), department=part(row, "d_"), hall=part(row, "h_"))
        out[row[0]] = record if kind == "record" else part(row, "e_", record=record)
    return out


def payloads(kind: str, messages) -> dict[str, dict | None]:
    """Each message's payload by message id (None when its subject no longer exists);
    ``messages`` are ledger rows (anything with ``message_id`` and ``subject_id``)."""
    ids = [m.subject_id for m in messages]
    if kind == "supervision_order":
        return _order_payloads(messages)
    if kind == "record":
        subjects = _plain_subjects(kind, ids)
        build = record_payload
    elif kind in ("evaluation", "evaluation_invalidated"):
        subjects = _plain_subjects(kind, ids)
        build = evaluation_payload if kind == "evaluation" else invalidation_payload
    elif kind == "complaint":
        subjects = _load(Complaint, ids, joinedload(Complaint.department), joinedload(Complaint.hall))
        build = complaint_payload
    else:
        subjects = _load(TicketEvent, ids, joinedload(TicketEvent.ticket).options(
            joinedload(Ticket.department), joinedload(Ticket.hall),
            selectinload(Ticket.evaluation).joinedload(Evaluation.record), selectinload(Ticket.complaint)))
        build = step_payload
    return {m.message_id: (build(subjects[m.subject_id]) if m.subject_id in subjects else None) for m in messages}


def stored_request(item: dict) -> str:
    """What the ledger keeps of a sent item: its fields, free text reduced to its length
    (the text itself is the citizen's and stays in its own, erasable row)."""
    kept = {k: (f"（{len(v)} 字）" if k in FREE_TEXT and isinstance(v, str) and v else v) for k, v in item.items()}
    return _COMPACT(kept)


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # json.dumps(…, same options)
