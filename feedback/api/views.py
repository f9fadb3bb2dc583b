"""/api/v1: the JSON API blueprint. Bearer API keys with scopes; problem+json errors.

The resources (service records, evaluations, complaints) declare their routes and OpenAPI
operations in their own modules; this one puts them on the blueprint and into the document.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from feedback.accounts import throttle
from feedback.api import complaints, evaluations, keys, records
from feedback.api.openapi import document
from feedback.api.support import ApiProblem, from_domain, problem
from feedback.errors import DomainError
from feedback.extensions import csrf, db

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer keys, not cookies: CSRF does not apply
bp.access = "API key with scope; openapi.json public"  # type: ignore[attr-defined]
PUBLIC_ENDPOINTS = {"api.openapi", "api.problem_doc"}
RESOURCES = (records.routes, evaluations.routes, complaints.routes)
for resource in RESOURCES:
    resource.register(bp)


@bp.before_request
def authenticate():
    """Deny by default: every endpoint but the documents needs a valid bearer API key, which
    sets ``g.api_key`` and ``g.api_scope`` (the key's department subtree, None for all)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    # Failed authentications are limited per address (API_AUTH_FAILURE_LIMIT): past it, no key is checked.
    if throttle.api_failures_exhausted(request.remote_addr):
        return problem(429, "too-many-failures", "API 密钥认证失败次数过多", "请稍后再试")
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        throttle.api_failure(request.remote_addr)
        return problem(401, "unauthenticated", "需要 API 密钥", "请在 Authorization 头中提供 Bearer 密钥")
    # From a cache of a few seconds (API_KEY_CACHE_SECONDS): revocation holds within that time.
    verified = keys.verify(header[7:].strip())
    if verified is None:
        throttle.api_failure(request.remote_addr)
        return problem(401, "unauthenticated", "API 密钥无效或已吊销")
    g.api_key, g.api_scope = verified
    return None


@bp.errorhandler(ApiProblem)
def api_problem(exc: ApiProblem):
    """Answer an ApiProblem as problem+json after rolling back the request's work."""
    db.session.rollback()
    return problem(exc.status, exc.code, exc.title, exc.detail, **exc.extra)


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError):
    """Answer a domain error as problem+json after rolling back the request's work."""
    db.session.rollback()
    return from_domain(exc)


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this API."""
    return jsonify(document(RESOURCES))


@bp.get("/problems/<code>")
def problem_doc(code: str):
    """Human-readable description of a problem type."""
    return jsonify({"type": f"/api/v1/problems/{code}", "see": "/api/v1/openapi.json"})
