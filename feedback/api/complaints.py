"""/api/v1/complaints: complaints (投诉) from hotlines and platforms.

The lookup secret is never in an API answer (answers are stored for idempotent replays):
it goes to the citizen by SMS.
"""
from __future__ import annotations

from flask import g, jsonify
from sqlalchemy import select

from feedback.api.openapi import IDEMPOTENCY_KEY, PAGE_PARAMETERS, create_operation, get_operation, list_operation
from feedback.api.support import (ApiProblem, Routes, check_department, idempotent_write, in_key_scope, json_body, page,
                                  text_field, time_field)
from feedback.complaints import service as complaints
from feedback.complaints.models import Complaint
from feedback.contact import mask_phone
from feedback.directory.models import Department, Hall, Window
from feedback.extensions import db
from feedback.tickets.workflow import HANDLING_RATINGS, OUTCOMES

SCHEMAS = {
    "ComplaintIn": {"type": "object", "required": ["description", "contact_phone"], "properties": {
        "description": {"type": "string", "minLength": complaints.DESCRIPTION_MIN,
                        "maxLength": complaints.DESCRIPTION_MAX},
        "contact_phone": {"type": "string", "description": "normalised to E.164, China by default"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "department_code": {"type": "string"}, "hall_code": {"type": "string"},
        "window_code": {"type": "string", "description": "decides department and hall"},
        "location": {"type": "string", "maxLength": 200}, "contact_name": {"type": "string", "maxLength": 100}}},
    "Complaint": {"type": "object", "required": ["case_number", "created_at", "triage_state"], "properties": {
        "case_number": {"type": "string"}, "source": {"type": "string", "enum": ["web", "api", "sms"]},
        "created_at": {"type": "string", "format": "date-time"},
        "occurred_at": {"type": "string", "format": "date-time", "nullable": True},
        "department_code": {"type": "string", "nullable": True}, "hall_code": {"type": "string", "nullable": True},
        "window_code": {"type": "string", "nullable": True},
        "triage_state": {"type": "string", "enum": ["routed", "pending", "triaged"]},
        "contact_phone_masked": {"type": "string", "nullable": True},
        "ticket_id": {"type": "integer", "nullable": True}, "state": {"type": "string", "nullable": True},
        "reply_due_at": {"type": "string", "format": "date-time", "nullable": True},
        "replied_at": {"type": "string", "format": "date-time", "nullable": True},
        "outcome": {"type": "string", "nullable": True}, "handling_rating": {"type": "string", "nullable": True},
        "lookup_secret_sent_by_sms": {"type": "boolean"}}},
}
# The document has always shown this operation's key without the description.
_IDEMPOTENCY_KEY = {name: value for name, value in IDEMPOTENCY_KEY.items() if name != "description"}
routes = Routes(SCHEMAS)


def complaint_json(c: Complaint) -> dict:
    """The API's representation of a complaint and the state of its ticket (never the lookup secret)."""
    ticket = complaints.ticket_of(c)
    return {
        "case_number": c.case_number, "source": c.source, "created_at": c.created_at.isoformat(),
        "occurred_at": c.occurred_at.isoformat() if c.occurred_at else None,
        "department_code": c.department.code if c.department else None,
        "hall_code": c.hall.code if c.hall else None, "window_code": c.window.code if c.window else None,
        "triage_state": c.triage_state, "contact_phone_masked": mask_phone(c.contact_phone) or None,
        "ticket_id": ticket.id if ticket else None, "state": ticket.state if ticket else None,
        "reply_due_at": ticket.due_at.isoformat() if ticket and ticket.due_at else None,
        "replied_at": ticket.replied_at.isoformat() if ticket and ticket.replied_at else None,
        "outcome": OUTCOMES.get(ticket.outcome) if ticket and ticket.outcome else None,
        "handling_rating": HANDLING_RATINGS.get(ticket.handling_rating) if ticket and ticket.handling_rating else None,
        "lookup_secret_sent_by_sms": True,
    }


def _by_code(model, field: str, code: str | None):
    if not code:
        return None
    row = db.session.scalar(select(model).where(model.code == code))
    if row is None:
        raise ApiProblem(422, "unknown-reference", f"{field} {code} 不存在", field=field, value=code)
    return row


@routes.post("/complaints", "complaints:write",
              create_operation("File a complaint (投诉); the lookup secret goes to the citizen by SMS",
                               "ComplaintIn", "Complaint", (400, 401, 403, 415, 422), _IDEMPOTENCY_KEY))
def create_complaint():
    """File a complaint (投诉); the citizen receives the case number and lookup secret by SMS."""
    data = json_body()

    def work():
        dept = _by_code(Department, "department_code", text_field(data, "department_code"))
        hall = _by_code(Hall, "hall_code", text_field(data, "hall_code"))
        window = _by_code(Window, "window_code", text_field(data, "window_code"))
        department_id = window.department_id if window else (dept.id if dept else None)
        if department_id is not None:
            check_department(department_id)
        complaint, _secret = complaints.create_complaint(
            description=text_field(data, "description", True, 2000),
            contact_phone=text_field(data, "contact_phone", True, 40),
            occurred_at=time_field(data, "occurred_at", False), department_id=dept.id if dept else None,
            hall_id=hall.id if hall else None, window_id=window.id if window else None,
            location_text=text_field(data, "location", max_len=200) or "",
            contact_name=text_field(data, "contact_name", max_len=100), source="api", api_key_id=g.api_key.id)
        return complaint_json(complaint), 201

    return idempotent_write(data, work)


@routes.get("/complaints/<case_number>", "complaints:read",
             get_operation("One complaint and the state of its ticket", "case_number", "string", "The complaint",
                           "Complaint"))
def get_complaint(case_number: str):
    """One complaint by case number: visible to keys of its departments and to the key that filed it."""
    c = db.session.scalar(select(Complaint).where(Complaint.case_number == case_number))
    if c is None or not (in_key_scope(c.department_id) or c.api_key_id == g.api_key.id):
        raise ApiProblem(404, "not-found", "投诉不存在", case_number=case_number)
    return jsonify(complaint_json(c))


@routes.get("/complaints", "complaints:read",
             list_operation("List complaints, newest first", "Complaint", PAGE_PARAMETERS))
def list_complaints():
    """A page of the complaints in the key's departments, newest first."""
    return page(select(Complaint), Complaint, complaint_json)
