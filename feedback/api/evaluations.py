"""/api/v1/evaluations: ratings (评价) of service records from windows, terminals and platforms."""
from __future__ import annotations

from datetime import datetime

from flask import current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from feedback.actions import commit_quick
from feedback.api.openapi import (PAGE_PARAMETERS, PLACE_AND_TIME_PARAMETERS, create_operation, get_operation,
                                  list_operation)
from feedback.api.support import (ApiProblem, Routes, check_department, idempotent_write, in_key_scope, int_arg,
                                  json_body, page, place_and_time_filters, text_field, time_field)
from feedback.clock import as_utc, utcnow
from feedback.contact import clean_text
from feedback.errors import DomainError
from feedback.evaluations import quick
from feedback.evaluations import reasons as reason_codes
from feedback.evaluations import service as ratings
from feedback.evaluations.levels import CHANNELS, LEVELS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import db, limiter
from feedback.idempotency.service import request_hash
from feedback.tickets.models import Ticket


def evaluation_in_schema() -> dict:
    """The EvaluationIn schema, built per document: its reason codes are the catalogue's
    active ones (a retired or unknown code is refused as ``reason-not-for-level``)."""
    return {"type": "object", "required": ["record_number", "level"],
            "properties": {
                "record_number": {"type": "string"},
                "level": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "string"}],
                          "description": "a number (with level_scheme) or a name: very_satisfied … / 非常满意 …"},
                "level_scheme": {"type": "string", "enum": ["score", "gbt39046"]},
                # `default` (系统默认评价) is the auto_rating job's alone: refused here.
                "channel": {"type": "string", "enum": sorted(set(CHANNELS) - {"default"})},
                "reasons": {"type": "array", "items": {"type": "integer",
                                                       "enum": reason_codes.catalogue().active_codes()},
                            "description": "active reason codes (评价指标) of the rating's level; hundreds digit = level"},
                "comment": {"type": "string"},
                "reason_required": {"type": "boolean", "default": False,
                                    "description": "true when the citizen could give a reason (your form asked): "
                                                   "a bad rating without reasons and comment is then refused "
                                                   "as reason-required"},
                "rated_at": {"type": "string", "format": "date-time"}}}


SCHEMAS = {
    "EvaluationIn": evaluation_in_schema,
    "Evaluation": {"type": "object", "required": ["id", "level", "channel", "rated_at"],
                   "properties": {
                       "id": {"type": "integer"}, "record_number": {"type": "string", "nullable": True},
                       "level": {"type": "integer"}, "level_scheme": {"type": "string"},
                       "level_name": {"type": "string"}, "level_label": {"type": "string"},
                       "gbt39046": {"type": "integer"}, "score": {"type": "integer"},
                       "channel": {"type": "string"},
                       "reasons": {"type": "array", "items": {"type": "object", "properties": {
                           "code": {"type": "integer"}, "text": {"type": "string"}}}},
                       "comment": {"type": "string"}, "rated_at": {"type": "string", "format": "date-time"},
                       "reasons_version": {"type": "integer",
                                           "description": "the version of the reason code list it was given under"},
                       "department_code": {"type": "string"}, "window_code": {"type": "string", "nullable": True},
                       "ticket_id": {"type": "integer", "nullable": True},
                       "flagged": {"type": "boolean"}, "invalid": {"type": "boolean"}}},
}
LIST_PARAMETERS = PAGE_PARAMETERS + PLACE_AND_TIME_PARAMETERS + [
    {"name": "level", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 5}},
    {"name": "channel", "in": "query", "schema": {"type": "string", "enum": sorted(CHANNELS)}}]
routes = Routes(SCHEMAS)


def evaluation_json(ev: Evaluation, labels: dict[int, str] | None = None) -> dict:
    """The API's representation of a rating, in both level schemes, with the ticket a bad one
    opened; ``labels``: the reason labels (read from the catalogue when not given)."""
    if labels is None:
        labels = reason_codes.catalogue().labels() if ev.reasons else {}
    ticket_id = None
    if ev.is_bad:
        opened = ev.opened_ticket  # the rating of this request: its ticket is known
        ticket_id = opened.id if opened is not None else db.session.scalar(
            select(Ticket.id).where(Ticket.evaluation_id == ev.id))
    return {
        "id": ev.id, "record_number": ev.record.record_number if ev.record else None,
        **_given(ev.level, ev.channel, ev.reasons, ev.comment, ev.rated_at, labels),
        "reasons_version": ev.reasons_version,
        "department_code": ev.department.code, "window_code": ev.window.code if ev.window else None,
        "ticket_id": ticket_id, "flagged": ev.flagged, "invalid": ev.invalid,
    }


def _given(level_value: int, channel: str, reasons: list[int], comment: str, rated_at: datetime,
           labels: dict[int, str]) -> dict:
    """The members of a rating's representation that say what was given (the quick path
    builds the rest in the database)."""
    level = LEVELS[level_value]
    return {"level": level_value, "level_scheme": "score", "level_name": level.name, "level_label": level.label,
            "gbt39046": level.gbt39046, "score": level.score, "channel": channel,
            "reasons": [{"code": c, "text": labels.get(c, "")} for c in reasons],
            "comment": comment, "rated_at": rated_at.isoformat()}


def _quick_rating(data: dict):
    """A plain rating written in one statement (evaluations/quick.py), answered 201; None when
    the plain case does not hold, for the full path to write or refuse. Checks only what it must
    to know the case is plain; anything unusual goes to the full path, which says what is wrong."""
    if not quick.applies():
        return None
    number, channel, comment = data.get("record_number"), data.get("channel", "pc"), data.get("comment")
    given = data.get("reasons") or []
    key = request.headers.get("Idempotency-Key", "").strip()
    if (not isinstance(number, str) or not number or len(number) > 64 or "\x00" in number
            or channel not in CHANNELS or channel == "default" or len(key) > 128
            or not isinstance(data.get("reason_required", False), bool)
            or not isinstance(comment, (str, type(None))) or not isinstance(given, list)
            or not all(isinstance(r, int) and not isinstance(r, bool) for r in given)):
        return None
    reasons = sorted(set(given))
    now = utcnow()
    try:
        level = ratings.level_from_input(data.get("level"), data.get("level_scheme"))
        listed = reason_codes.catalogue() if reasons else None  # one read of the list, for codes and labels
        version = listed.check(reasons, level) if listed else quick.ANY_VERSION
        comment = clean_text(comment, current_app.config["COMMENT_MAX_LENGTH"])
        rated_at = as_utc(time_field(data, "rated_at", False) or now)
    except (DomainError, ApiProblem):
        return None
    if rated_at > now + ratings.CLOCK_SKEW:
        return None
    if LEVELS[level].is_bad and data.get("reason_required") and not reasons and not comment:
        return None  # refused by the full path (ReasonRequiredError), after "already rated"
    labels = listed.labels() if listed else {}
    body = {"record_number": number, **_given(level, channel, reasons, comment, rated_at, labels),
            "ticket_id": None, "flagged": False, "invalid": False}
    rating = quick.Rating(level=level, channel=channel, reasons=reasons, comment=comment, rated_at=rated_at,
                          version_cap=version)
    departments = None if g.api_scope is None else sorted(g.api_scope)
    answer = commit_quick(lambda: quick.rate(
        rating, find="number", body=body, drop=("record_id",), where={"number": number, "departments": departments},
        key=key or None, digest=request_hash(data) if key else None, scope=f"api:{g.api_key.id}:{request.path}",
        api_key_id=g.api_key.id, now=now))
    return (jsonify(answer), 201) if answer is not None else None


def _rate_limit_key() -> str:
    return f"apikey:{getattr(g, 'api_key', None) and g.api_key.id}"


@routes.post("/evaluations", "ratings:write",
              create_operation("Rate a record (one rating per record)", "EvaluationIn", "Evaluation",
                               (400, 401, 403, 409, 415, 422, 429)))
@limiter.limit("600 per minute", key_func=_rate_limit_key)
def create_evaluation():
    """Rate a service record: level by name, or by number with an explicit level_scheme."""
    data = json_body()
    quick_answer = _quick_rating(data)
    if quick_answer is not None:
        return quick_answer

    def work():
        number = text_field(data, "record_number", True, 64)
        # The answer names the department and window, and rate() asks whether the record has its
        # rating: all loaded with the record (three round trips fewer).
        record = db.session.scalar(select(ServiceRecord).where(ServiceRecord.record_number == number)
                                   .options(joinedload(ServiceRecord.department), joinedload(ServiceRecord.window),
                                            joinedload(ServiceRecord.evaluation)))
        if record is None:
            raise ApiProblem(422, "unknown-reference", f"办件编号 {number} 不存在", field="record_number",
                             value=number)
        check_department(record.department_id)
        reasons = data.get("reasons") or []
        if not isinstance(reasons, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in reasons):
            raise ApiProblem(422, "validation-error", "reasons 必须是评价指标代码（整数）的数组", field="reasons")
        comment = data.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise ApiProblem(422, "validation-error", "comment 必须是字符串", field="comment")
        # The caller says whether the citizen could give a reason; not by default, so a window
        # system that cannot ask never loses a bad rating to a refusal.
        reason_required = data.get("reason_required", False)
        if not isinstance(reason_required, bool):
            raise ApiProblem(422, "validation-error", "reason_required 必须是布尔值", field="reason_required")
        channel = text_field(data, "channel") or "pc"
        if channel == "default":
            # An "automatic" rating at any level, any time, left out of 主动评价: only the
            # auto_rating job gives it (基本满意, once the rating window closed unrated).
            raise ApiProblem(422, "default-channel-reserved",
                             "渠道 default（系统默认评价）只由系统在评价期限届满后自动给出，不能通过接口提交",
                             field="channel", value=channel)
        ev = ratings.rate(record=record, level=ratings.level_from_input(data.get("level"), data.get("level_scheme")),
                          channel=channel, reasons=reasons, comment=comment,
                          rated_at=time_field(data, "rated_at", False), api_key_id=g.api_key.id,
                          reason_required=reason_required, savepoint=False)
        return evaluation_json(ev), 201

    return idempotent_write(data, work)


@routes.get("/evaluations/<int:evaluation_id>", "ratings:read",
             get_operation("One rating", "evaluation_id", "integer", "The rating", "Evaluation"))
def get_evaluation(evaluation_id: int):
    """One rating by id; 404 when unknown or outside the key's departments."""
    ev = db.session.get(Evaluation, evaluation_id)
    if ev is None or not in_key_scope(ev.department_id):
        raise ApiProblem(404, "not-found", "评价不存在")
    return jsonify(evaluation_json(ev))


@routes.get("/evaluations", "ratings:read",
             list_operation("List ratings, newest first", "Evaluation", LIST_PARAMETERS))
def list_evaluations():
    """A page of ratings, newest first, by department, window, time, level and channel."""
    stmt = place_and_time_filters(select(Evaluation), Evaluation, Evaluation.rated_at)
    level = int_arg("level", None, 1, 5)
    if level:
        stmt = stmt.where(Evaluation.level == level)
    if "channel" in request.args:
        if request.args["channel"] not in CHANNELS:
            raise ApiProblem(400, "invalid-parameter", "channel 不是已知的评价渠道", parameter="channel")
        stmt = stmt.where(Evaluation.channel == request.args["channel"])
    labels = reason_codes.catalogue().labels()  # once per page, not per rating
    return page(stmt, Evaluation, lambda ev: evaluation_json(ev, labels))
