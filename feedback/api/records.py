"""/api/v1/service-records: service records (办件) registered by window systems."""
from __future__ import annotations

from flask import current_app, g, jsonify, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from feedback.api.openapi import (PAGE_PARAMETERS, PLACE_AND_TIME_PARAMETERS, create_operation, get_operation,
                                  list_operation)
from feedback.api.support import (ApiProblem, Routes, check_department, idempotent_write, in_key_scope, json_body, page,
                                  place_and_time_filters, text_field, time_field)
from feedback.contact import mask_phone
from feedback.directory.national import APPLICANT_TYPES, CERTIFICATE_TYPES, SERVICE_NUMBER_RANGE
from feedback.evaluations import service as ratings
from feedback.evaluations.links import link_token
from feedback.evaluations.models import ServiceRecord
from feedback.extensions import db


def _code_names(table: dict[str, str]) -> str:
    """"1 自然人, 2 企业法人 …" for a code table's description."""
    return ", ".join(f"{code} {name}" for code, name in table.items())


SCHEMAS = {
    "RecordIn": {"type": "object", "required": ["record_number", "service_item_code", "completed_at"],
                 "properties": {
                     "record_number": {"type": "string", "maxLength": 64},
                     "service_item_code": {"type": "string"}, "window_code": {"type": "string"},
                     "staff_number": {"type": "string"},
                     "completed_at": {"type": "string", "format": "date-time"},
                     "citizen_phone": {"type": "string", "description": "normalised to E.164, China by default"},
                     "citizen_name": {"type": "string", "maxLength": 100},
                     "citizen_kind": {"type": "string", "enum": ["person", "company"],
                                      "description": "default: person for applicant_type 1, else company"},
                     "applicant_type": {"type": "string", "enum": sorted(APPLICANT_TYPES),
                                        "description": "申请人类型 (userProp): " + _code_names(APPLICANT_TYPES)
                                                       + "; default: 1 for a person, 2 for a company"},
                     "certificate_type": {"type": "string", "enum": sorted(CERTIFICATE_TYPES),
                                          "description": "证件类型 (userPageType): " + _code_names(CERTIFICATE_TYPES)},
                     "national_number": {"type": "string", "maxLength": 64,
                                         "description": "办件编号 unique nationwide (projectNo); default: the province "
                                                        "code before record_number unless it begins with it"},
                     "service_number": {"type": "integer", "minimum": SERVICE_NUMBER_RANGE[0],
                                        "maximum": SERVICE_NUMBER_RANGE[1], "default": 1,
                                        "description": "服务序号 (serviceNumber)"}}},
    "Record": {"type": "object", "required": ["id", "record_number", "national_number", "completed_at", "rated"],
               "properties": {
                   "id": {"type": "integer"}, "record_number": {"type": "string"},
                   "service_item_code": {"type": "string"}, "service_item_name": {"type": "string"},
                   "department_code": {"type": "string"}, "hall_code": {"type": "string", "nullable": True},
                   "window_code": {"type": "string", "nullable": True},
                   "staff_number": {"type": "string", "nullable": True},
                   "completed_at": {"type": "string", "format": "date-time"},
                   "citizen_kind": {"type": "string"},
                   "applicant_type": {"type": "string"}, "certificate_type": {"type": "string", "nullable": True},
                   "national_number": {"type": "string"}, "service_number": {"type": "integer"},
                   "implementation_code": {"type": "string", "nullable": True,
                                           "description": "the item's 实施编码; null: a local item, never reported"},
                   "handle_item_code": {"type": "string", "nullable": True,
                                        "description": "the item's 业务办理项编码"},
                   "citizen_phone_masked": {"type": "string", "nullable": True},
                   "rated": {"type": "boolean"},
                   "rating_deadline": {"type": "string", "format": "date-time"},
                   "rate_url": {"type": "string",
                                "description": "the citizen's rating link; only for keys with records:write"}}},
}
routes = Routes(SCHEMAS)


def record_json(record: ServiceRecord) -> dict:
    """The API's representation of a service record, with its rating deadline, and its rating
    link only for a key that may register records: the link rates the record, so a read scope
    must not hand it out (records:read is for dashboards and reconciliation)."""
    body = {
        "id": record.id, "record_number": record.record_number,
        "service_item_code": record.service_item.code, "service_item_name": record.service_item.name,
        "department_code": record.department.code,
        "hall_code": record.hall.code if record.hall else None,
        "window_code": record.window.code if record.window else None,
        "staff_number": record.staff.staff_number if record.staff else None,
        "completed_at": record.completed_at.isoformat(), "citizen_kind": record.citizen_kind,
        "applicant_type": record.applicant_type, "certificate_type": record.certificate_type,
        "national_number": record.national_number, "service_number": record.service_number,
        "implementation_code": record.service_item.implementation_code,
        "handle_item_code": record.service_item.handle_item_code,
        "citizen_phone_masked": mask_phone(record.citizen_phone) or None,
        "rated": record.evaluation is not None,
        "rating_deadline": ratings.rating_deadline(record).isoformat(),
    }
    if "records:write" in g.api_key.scope_set:
        body["rate_url"] = current_app.config["PUBLIC_URL"].rstrip("/") + url_for("rating.link",
                                                                                token=link_token(record))
    return body


@routes.post("/service-records", "records:write",
              create_operation("Register a completed service record (办件)", "RecordIn", "Record",
                               (400, 401, 403, 409, 415, 422)))
def create_record():
    """Register a completed service record (办件) in a department of the key's subtree."""
    data = json_body()

    def work():
        record = ratings.create_record(
            record_number=text_field(data, "record_number", True, 64),
            service_item_code=text_field(data, "service_item_code", True),
            window_code=text_field(data, "window_code"), staff_number=text_field(data, "staff_number"),
            completed_at=time_field(data, "completed_at", True),
            citizen_phone=text_field(data, "citizen_phone", max_len=40),
            citizen_name=text_field(data, "citizen_name", max_len=100),
            citizen_kind=text_field(data, "citizen_kind"),
            applicant_type=text_field(data, "applicant_type"),
            certificate_type=text_field(data, "certificate_type"),
            national_number=text_field(data, "national_number"),
            service_number=_service_number(data))
        check_department(record.department_id)
        return record_json(record), 201

    return idempotent_write(data, work)


def _service_number(data: dict) -> int | None:
    """The body's service_number: absent is None (1), else a whole number (checked by the service)."""
    value = data.get("service_number")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ApiProblem(422, "invalid-national-code", "服务序号应为 1–99 的整数", field="service_number")
    return value


@routes.get("/service-records/<record_number>", "records:read",
             get_operation("One record", "record_number", "string", "The record", "Record"))
def get_record(record_number: str):
    """One service record by its number; 404 when unknown or outside the key's departments."""
    record = db.session.scalar(select(ServiceRecord).where(ServiceRecord.record_number == record_number))
    if record is None or not in_key_scope(record.department_id):
        raise ApiProblem(404, "not-found", "办件不存在", record_number=record_number)
    return jsonify(record_json(record))


@routes.get("/service-records", "records:read",
             list_operation("List records, newest first", "Record", PAGE_PARAMETERS + PLACE_AND_TIME_PARAMETERS))
def list_records():
    """A page of service records, newest first, by department, window and completion time."""
    stmt = place_and_time_filters(select(ServiceRecord).options(selectinload(ServiceRecord.evaluation)),
                                  ServiceRecord, ServiceRecord.completed_at)
    return page(stmt, ServiceRecord, record_json)
