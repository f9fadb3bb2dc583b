"""/api/v1: service records and evaluations. Bearer API keys with scopes; problem+json errors."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, g, jsonify, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from feedback.accounts import service as accounts
from feedback.api.openapi import document
from feedback.contact import mask_phone
from feedback.api.support import (ApiProblem, decode_cursor, encode_cursor, from_domain, idempotent_write,
                                  json_body, problem, require_scope)
from feedback.directory import service as directory
from feedback.directory.models import Department, Window
from feedback.errors import DomainError
from feedback.evaluations import service as ratings
from feedback.evaluations.levels import CHANNELS, LEVELS, REASONS
from feedback.evaluations.models import Evaluation, ServiceRecord
from feedback.extensions import csrf, db, limiter

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer keys, not cookies: CSRF does not apply
bp.access = "API key with scope; openapi.json public"  # type: ignore[attr-defined]
PUBLIC_ENDPOINTS = {"api.openapi", "api.problem_doc"}


@bp.before_request
def authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return problem(401, "unauthenticated", "需要 API 密钥", "请在 Authorization 头中提供 Bearer 密钥")
    key = accounts.verify_api_key(header[7:].strip())
    if key is None:
        return problem(401, "unauthenticated", "API 密钥无效或已吊销")
    g.api_key = key
    g.api_scope = directory.subtree_ids([key.department_id]) if key.department_id else None
    return None


@bp.errorhandler(ApiProblem)
def api_problem(exc: ApiProblem):
    db.session.rollback()
    return problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError):
    db.session.rollback()
    return from_domain(exc)


def _key_scope_check(department_id: int) -> None:
    if g.api_scope is not None and department_id not in g.api_scope:
        raise ApiProblem(403, "out-of-department", "API 密钥无权操作该部门的数据")


def _parse_time(data: dict, field: str, required: bool) -> datetime | None:
    value = data.get(field)
    if value in (None, ""):
        if required:
            raise ApiProblem(422, "validation-error", f"缺少字段 {field}", field=field)
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiProblem(422, "validation-error", f"{field} 不是 ISO-8601 时间", field=field)
    if moment.tzinfo is None:
        raise ApiProblem(422, "validation-error", f"{field} 必须带时区（如 +08:00）", field=field)
    return moment


def _str(data: dict, field: str, required: bool = False, max_len: int = 200) -> str | None:
    value = data.get(field)
    if value is None or value == "":
        if required:
            raise ApiProblem(422, "validation-error", f"缺少字段 {field}", field=field)
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ApiProblem(422, "validation-error", f"{field} 必须是字符串", field=field)
    value = str(value)
    if len(value) > max_len:
        raise ApiProblem(422, "validation-error", f"{field} 过长", field=field)
    if "\x00" in value:  # PostgreSQL cannot store it; no code or name contains it
        raise ApiProblem(422, "validation-error", f"{field} 含有不允许的控制字符", field=field)
    return value


# ---------------------------------------------------------------- representations

def record_json(record: ServiceRecord) -> dict:
    return {
        "id": record.id, "record_number": record.record_number,
        "service_item_code": record.service_item.code, "service_item_name": record.service_item.name,
        "department_code": record.department.code,
        "hall_code": record.hall.code if record.hall else None,
        "window_code": record.window.code if record.window else None,
        "staff_number": record.staff.staff_number if record.staff else None,
        "completed_at": record.completed_at.isoformat(), "citizen_kind": record.citizen_kind,
        "citizen_phone_masked": mask_phone(record.citizen_phone) or None,
        "rated": record.evaluation is not None,
        "rating_deadline": ratings.rating_deadline(record).isoformat(),
        "rate_url": current_app.config["PUBLIC_URL"].rstrip("/") + url_for("rating.link", token=ratings.link_token(record)),
    }


def evaluation_json(ev: Evaluation) -> dict:
    level = LEVELS[ev.level]
    from feedback.tickets.models import Ticket

    ticket_id = db.session.scalar(select(Ticket.id).where(Ticket.evaluation_id == ev.id)) if ev.is_bad else None
    return {
        "id": ev.id, "record_number": ev.record.record_number if ev.record else None,
        "level": ev.level, "level_scheme": "score", "level_name": level.name, "level_label": level.label,
        "gbt39046": level.gbt39046, "score": level.score, "channel": ev.channel,
        "reasons": [{"code": c, "text": REASONS.get(c, "")} for c in ev.reasons],
        "comment": ev.comment, "rated_at": ev.rated_at.isoformat(),
        "department_code": ev.department.code, "window_code": ev.window.code if ev.window else None,
        "ticket_id": ticket_id, "flagged": ev.flagged, "invalid": ev.invalid,
    }


# ---------------------------------------------------------------- service records

@bp.post("/service-records")
@require_scope("records:write")
def create_record():
    """Register a completed service record (办件)."""
    data = json_body()

    def work():
        record = ratings.create_record(
            record_number=_str(data, "record_number", True, 64), service_item_code=_str(data, "service_item_code", True),
            window_code=_str(data, "window_code"), staff_number=_str(data, "staff_number"),
            completed_at=_parse_time(data, "completed_at", True), citizen_phone=_str(data, "citizen_phone", max_len=40),
            citizen_name=_str(data, "citizen_name", max_len=100), citizen_kind=_str(data, "citizen_kind") or "person")
        _key_scope_check(record.department_id)
        return record_json(record), 201

    return idempotent_write(data, work)


@bp.get("/service-records/<record_number>")
@require_scope("records:read")
def get_record(record_number: str):
    record = db.session.scalar(select(ServiceRecord).where(ServiceRecord.record_number == record_number))
    if record is None or (g.api_scope is not None and record.department_id not in g.api_scope):
        raise ApiProblem(404, "not-found", "办件不存在", record_number=record_number)
    return jsonify(record_json(record))


def _int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer query parameter in [low, high]; anything else is a 400 (never silently
    the default: ``limit=abc`` is a client's bug worth telling)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiProblem(400, "invalid-parameter", f"{name} 必须是 {low}–{high} 之间的整数", parameter=name)
    return value


def _page(stmt, model, to_json):
    limit = _int_arg("limit", 50, 1, 200)
    after = decode_cursor(request.args.get("cursor"))
    if after is not None:
        stmt = stmt.where(model.id < after)
    if g.api_scope is not None:
        stmt = stmt.where(model.department_id.in_(g.api_scope or {-1}))
    rows = list(db.session.scalars(stmt.order_by(model.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify({"items": [to_json(r) for r in rows],
                    "next_cursor": encode_cursor(rows[-1].id) if more else None})


def _filters(stmt, model, time_column):
    args = request.args
    if args.get("department_code"):
        dept = db.session.scalar(select(Department).where(Department.code == args["department_code"]))
        stmt = stmt.where(model.department_id == (dept.id if dept else -1))
    if args.get("window_code"):
        window = db.session.scalar(select(Window).where(Window.code == args["window_code"]))
        stmt = stmt.where(model.window_id == (window.id if window else -1))
    for name, op in (("since", "__ge__"), ("until", "__lt__")):
        if name in args:
            try:
                moment = _parse_time(dict(args), name, True)
            except ApiProblem as exc:
                raise ApiProblem(400, "invalid-parameter", exc.title, parameter=name)
            stmt = stmt.where(getattr(time_column, op)(moment))
    return stmt


@bp.get("/service-records")
@require_scope("records:read")
def list_records():
    stmt = _filters(select(ServiceRecord).options(selectinload(ServiceRecord.evaluation)), ServiceRecord,
                    ServiceRecord.completed_at)
    return _page(stmt, ServiceRecord, record_json)


# ---------------------------------------------------------------- evaluations

@bp.post("/evaluations")
@require_scope("ratings:write")
@limiter.limit("600 per minute", key_func=lambda: f"apikey:{getattr(g, 'api_key', None) and g.api_key.id}")
def create_evaluation():
    """Rate a service record: level by name, or by number with an explicit level_scheme."""
    data = json_body()

    def work():
        number = _str(data, "record_number", True, 64)
        # The answer names the department and window: loaded with the record (two round trips fewer).
        record = db.session.scalar(select(ServiceRecord).where(ServiceRecord.record_number == number)
                                   .options(joinedload(ServiceRecord.department), joinedload(ServiceRecord.window)))
        if record is None:
            raise ApiProblem(422, "unknown-reference", f"办件编号 {number} 不存在", field="record_number",
                             value=number)
        _key_scope_check(record.department_id)
        reasons = data.get("reasons") or []
        if not isinstance(reasons, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in reasons):
            raise ApiProblem(422, "validation-error", "reasons 必须是评价指标代码（整数）的数组", field="reasons")
        comment = data.get("comment")
        if comment is not None and not isinstance(comment, str):
            raise ApiProblem(422, "validation-error", "comment 必须是字符串", field="comment")
        ev = ratings.rate(record=record, level=ratings.level_from_input(data.get("level"), data.get("level_scheme")),
                          channel=_str(data, "channel") or "pc", reasons=reasons, comment=comment,
                          rated_at=_parse_time(data, "rated_at", False), api_key_id=g.api_key.id)
        return evaluation_json(ev), 201

    return idempotent_write(data, work)


@bp.get("/evaluations/<int:evaluation_id>")
@require_scope("ratings:read")
def get_evaluation(evaluation_id: int):
    ev = db.session.get(Evaluation, evaluation_id)
    if ev is None or (g.api_scope is not None and ev.department_id not in g.api_scope):
        raise ApiProblem(404, "not-found", "评价不存在")
    return jsonify(evaluation_json(ev))


@bp.get("/evaluations")
@require_scope("ratings:read")
def list_evaluations():
    stmt = _filters(select(Evaluation), Evaluation, Evaluation.rated_at)
    level = _int_arg("level", None, 1, 5)
    if level:
        stmt = stmt.where(Evaluation.level == level)
    if "channel" in request.args:
        if request.args["channel"] not in CHANNELS:
            raise ApiProblem(400, "invalid-parameter", "channel 不是已知的评价渠道", parameter="channel")
        stmt = stmt.where(Evaluation.channel == request.args["channel"])
    return _page(stmt, Evaluation, evaluation_json)


# ---------------------------------------------------------------- documents

@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this API."""
    return jsonify(document())


@bp.get("/problems/<code>")
def problem_doc(code: str):
    """Human-readable description of a problem type."""
    return jsonify({"type": f"/api/v1/problems/{code}", "see": "/api/v1/openapi.json"})


# Complaints live in their own area; their routes hang on this blueprint.
from feedback.complaints import api as _complaints_api  # noqa: E402,F401
