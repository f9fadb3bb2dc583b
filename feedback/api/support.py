"""API plumbing shared by the resource modules: bearer-key scopes, problem+json, reading
JSON fields and query parameters, pages with cursors, Idempotency-Key replays, and
``Routes``, the routes and OpenAPI operations a resource module declares."""
from __future__ import annotations

import base64
import re
from datetime import datetime
from functools import wraps
from typing import Any, Callable

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from feedback.actions import commit_once
from feedback.directory.models import Department, Window
from feedback.errors import DomainError
from feedback.extensions import db
from feedback.idempotency.models import IdempotencyKey
from feedback.idempotency.service import request_hash

PROBLEM_BASE = "/api/v1/problems/"


class ApiProblem(Exception):
    """An error answered as application/problem+json."""

    def __init__(self, status: int, code: str, title: str, detail: str = "", **extra: Any):
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail, self.extra = status, code, title, detail, extra


def problem(status: int, code: str, title: str, detail: str = "", **extra: Any):
    """An application/problem+json response: type, title, status, detail when given and the
    extra members that are not None; a 401 also names the Bearer scheme."""
    body = {"type": PROBLEM_BASE + code, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    resp = jsonify(body)
    resp.status_code = status
    resp.mimetype = "application/problem+json"
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="feedback"'
    return resp


def from_domain(exc: DomainError):
    """The problem response of a domain error: its status, code and message, its details as members."""
    return problem(exc.status, exc.code, exc.message, exc.message, **exc.detail)


def require_scope(scope: str) -> Callable:
    """Refuse the request with 403 unless the API key carries ``scope``."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if scope not in g.api_key.scope_set:
                raise ApiProblem(403, "insufficient-scope", "API 密钥缺少权限范围", f"需要 {scope}",
                                 required_scope=scope)
            return view(*args, **kwargs)
        wrapped.required_scope = scope  # type: ignore[attr-defined]
        return wrapped
    return decorate


def json_body() -> dict:
    """The request's JSON object, or a 400/415 problem."""
    if not request.is_json:
        raise ApiProblem(415, "unsupported-media-type", "请求体必须是 application/json")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiProblem(400, "malformed-json", "请求体不是有效的 JSON 对象")
    return data


def idempotent_write(data: dict, work: Callable[[], tuple[dict, int]]):
    """Run a write once per Idempotency-Key: replays get the stored status and body.

    The key row is inserted first, in the same transaction as the work, so a concurrent
    duplicate waits on the unique index and then reads the winner's answer. Reusing a
    key for a different body is refused (422).
    """
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        body, status = work()
        db.session.commit()
        return jsonify(body), status
    if len(key) > 128:
        raise ApiProblem(400, "invalid-idempotency-key", "Idempotency-Key 最长 128 个字符")
    scope = f"api:{g.api_key.id}:{request.path}"
    digest = request_hash(data)
    result = commit_once(scope, key, digest, work, refusals=(DomainError, ApiProblem))
    if isinstance(result, IdempotencyKey):
        return _replay(result, digest)
    body, status = result
    return jsonify(body), status


def _replay(stored: IdempotencyKey, digest: str):
    if stored.request_hash != digest:
        raise ApiProblem(422, "idempotency-key-reused", "Idempotency-Key 已用于另一个不同的请求")
    resp = jsonify(stored.body)
    resp.status_code = stored.status
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def encode_cursor(last_id: int) -> str:
    """The opaque cursor of the page after the row ``last_id``."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The row id a cursor continues after; None without a cursor, a 400 problem for a forged one."""
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = text.split(":", 1)
        if kind != "id":
            raise ValueError
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "invalid-cursor", "分页游标无效")


# ---------------------------------------------------------------- the key's departments

def in_key_scope(department_id: int | None) -> bool:
    """Whether the request's API key may see rows of ``department_id``: a key bound to a
    department sees its subtree, an unbound key sees everything."""
    return g.api_scope is None or department_id in g.api_scope


def check_department(department_id: int) -> None:
    """Refuse (403) a write into a department outside the API key's subtree."""
    if not in_key_scope(department_id):
        raise ApiProblem(403, "out-of-department", "API 密钥无权操作该部门的数据")


# ---------------------------------------------------------------- fields of a JSON body

def time_field(data: dict, field: str, required: bool) -> datetime | None:
    """An ISO-8601 moment with its offset from ``data[field]``; None when absent and not
    required; a 422 problem naming the field otherwise."""
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


def text_field(data: dict, field: str, required: bool = False, max_len: int = 200) -> str | None:
    """``data[field]`` as a string of at most ``max_len`` characters (a number is taken as its
    digits); None when absent and not required; a 422 problem naming the field otherwise."""
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


# ---------------------------------------------------------------- lists

def int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
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


def place_and_time_filters(stmt, model, time_column):
    """``stmt`` narrowed by the query's department_code, window_code, since and until (an
    unknown code matches nothing; a bad moment is a 400 naming the parameter)."""
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
                moment = time_field(dict(args), name, True)
            except ApiProblem as exc:
                raise ApiProblem(400, "invalid-parameter", exc.title, parameter=name)
            stmt = stmt.where(getattr(time_column, op)(moment))
    return stmt


def page(stmt, model, to_json: Callable[[Any], dict]):
    """One page of ``stmt``'s rows in the key's departments, newest first: ``limit`` rows
    (50 by default, at most 200) after the ``cursor``, and the cursor of the next page."""
    limit = int_arg("limit", 50, 1, 200)
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


# ---------------------------------------------------------------- routes and their documentation

class Routes:
    """The routes of one resource module, each with the scope it requires and its OpenAPI
    operation, and the schemas they name: declared next to the view functions, put on the
    API blueprint by ``register`` (the endpoint is the function's name: ``api.create_record``).
    A route cannot be declared without a scope: deny by default."""

    def __init__(self, schemas: dict[str, dict]):
        self.schemas = schemas
        self._routes: list[tuple[str, str, Callable, dict]] = []

    def route(self, rule: str, method: str, scope: str, operation: dict) -> Callable:
        """Declare ``rule`` for ``method`` on the decorated view, refused (403) to keys without
        ``scope`` and documented by ``operation``."""
        def decorate(view: Callable) -> Callable:
            self._routes.append((rule, method, require_scope(scope)(view), operation))
            return view
        return decorate

    def get(self, rule: str, scope: str, operation: dict) -> Callable:
        """Declare a GET route (see ``route``)."""
        return self.route(rule, "GET", scope, operation)

    def post(self, rule: str, scope: str, operation: dict) -> Callable:
        """Declare a POST route (see ``route``)."""
        return self.route(rule, "POST", scope, operation)

    def register(self, bp: Blueprint) -> None:
        """Add every declared route to ``bp``."""
        for rule, method, view, _ in self._routes:
            bp.add_url_rule(rule, view_func=view, methods=[method])

    def paths(self) -> dict[str, dict]:
        """The OpenAPI paths object of the declared routes (``<int:id>`` becomes ``{id}``)."""
        paths: dict[str, dict] = {}
        for rule, method, _, operation in self._routes:
            paths.setdefault(re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule), {})[method.lower()] = operation
        return paths
