"""The OpenAPI 3 document of /api/v1: the pieces every operation is made of, and the whole.

Each resource module describes its own operations beside its routes (``Routes``);
``document`` puts them together with the parts every operation shares.
"""
from __future__ import annotations

from typing import Iterable

IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "Replays with the same key return the original result; reuse with another body is 422.",
                   "schema": {"type": "string", "maxLength": 128}}
PAGE_PARAMETERS = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                   {"name": "cursor", "in": "query", "schema": {"type": "string"}}]
PLACE_AND_TIME_PARAMETERS = [
    {"name": "department_code", "in": "query", "schema": {"type": "string"}},
    {"name": "window_code", "in": "query", "schema": {"type": "string"}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
]
PROBLEM_SCHEMA = {"type": "object", "required": ["type", "title", "status"],
                  "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                 "status": {"type": "integer"}, "detail": {"type": "string"}},
                  "additionalProperties": True}


def ref(schema: str) -> dict:
    """A JSON Schema reference to one of the document's named schemas."""
    return {"$ref": f"#/components/schemas/{schema}"}


def json_content(schema: dict | str) -> dict:
    """An ``application/json`` content map; a string names a schema of the document."""
    return {"application/json": {"schema": ref(schema) if isinstance(schema, str) else schema}}


def problems(*statuses: int) -> dict:
    """Responses for the given error statuses, each an application/problem+json Problem."""
    answer = {"description": "Problem", "content": {"application/problem+json": {"schema": ref("Problem")}}}
    return {str(status): answer for status in statuses}


def create_operation(summary: str, body: str, answer: str, errors: Iterable[int],
                     idempotency_key: dict = IDEMPOTENCY_KEY) -> dict:
    """A POST that takes the ``body`` schema, may carry an Idempotency-Key and answers 201
    with the ``answer`` schema, or a problem with one of ``errors``."""
    return {"summary": summary, "parameters": [idempotency_key],
            "requestBody": {"required": True, "content": json_content(body)},
            "responses": {"201": {"description": "Created", "content": json_content(answer)}, **problems(*errors)}}


def list_operation(summary: str, item: str, parameters: list[dict]) -> dict:
    """A GET answering a page of ``item`` rows (newest first) and the cursor of the next page."""
    page = {"type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": ref(item)},
                           "next_cursor": {"type": "string", "nullable": True}}}
    return {"summary": summary, "parameters": parameters,
            "responses": {"200": {"description": "A page", "content": json_content(page)},
                          **problems(400, 401, 403)}}


def get_operation(summary: str, parameter: str, parameter_type: str, description: str, answer: str) -> dict:
    """A GET of one row named by the path ``parameter``: the ``answer`` schema, or 404."""
    return {"summary": summary,
            "parameters": [{"name": parameter, "in": "path", "required": True, "schema": {"type": parameter_type}}],
            "responses": {"200": {"description": description, "content": json_content(answer)},
                          **problems(400, 401, 403, 404)}}


def document(resources: Iterable) -> dict:
    """The OpenAPI document of the API: the operations and schemas of every resource's
    ``Routes`` (see feedback.api.support; a schema given as a function is built per document),
    the bearer scheme and the Problem schema."""
    paths: dict = {}
    schemas = {"Problem": PROBLEM_SCHEMA}
    for routes in resources:
        for path, operations in routes.paths().items():
            paths.setdefault(path, {}).update(operations)
        # A schema may be a function: built now, from data (the reason codes' enum of EvaluationIn).
        schemas.update({name: schema() if callable(schema) else schema for name, schema in routes.schemas.items()})
    return {
        "openapi": "3.0.3",
        "info": {"title": "好差评 API", "version": "1.0.0",
                 "description": "Service records and ratings. Levels inside the product: 5 = 非常满意 … 1 = 非常不满意 "
                                "(`score` scheme); GB/T 39046 numbers them the other way (`gbt39046`: 1 = 非常满意). "
                                "Service records carry the national identifiers of the provincial exchange "
                                "(applicant_type 申请人类型, certificate_type 证件类型, national_number 办件编号, "
                                "service_number 服务序号): a malformed one is refused as `invalid-national-code` "
                                "(422), a national number another record has as `national-number-exists` (409)."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": schemas},
    }
