"""API plumbing: bearer keys with scopes, problem+json, Idempotency-Key replays."""
from __future__ import annotations

import base64
import hashlib
import json
from functools import wraps
from typing import Any, Callable

from flask import g, jsonify, request

from feedback.errors import DomainError
from feedback.evaluations import idempotency
from feedback.evaluations.models import IdempotencyKey
from feedback.extensions import db

PROBLEM_BASE = "/api/v1/problems/"


class ApiProblem(Exception):
    """An error answered as application/problem+json."""

    def __init__(self, status: int, code: str, title: str, detail: str = "", **extra: Any):
        super().__init__(detail or title)
        self.status, self.code, self.title, self.detail, self.extra = status, code, title, detail, extra


def problem(status: int, code: str, title: str, detail: str = "", **extra: Any):
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


def _request_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


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
    digest = _request_hash(data)
    result = idempotency.run_once(scope, key, digest, work, refusals=(DomainError, ApiProblem))
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
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
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
