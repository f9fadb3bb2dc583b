"""The OpenAPI 3 document of /api/v1 (kept beside the views it describes)."""
from __future__ import annotations

from feedback.evaluations.levels import CHANNELS, REASONS


def _problem_ref():
    return {"description": "Problem", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _errors(*codes: int) -> dict:
    return {str(c): _problem_ref() for c in codes}


def document() -> dict:
    """Build the OpenAPI document."""
    idem = {"name": "Idempotency-Key", "in": "header", "required": False,
            "description": "Replays with the same key return the original result; reuse with another body is 422.",
            "schema": {"type": "string", "maxLength": 128}}
    page_params = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        {"name": "department_code", "in": "query", "schema": {"type": "string"}},
        {"name": "window_code", "in": "query", "schema": {"type": "string"}},
        {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    ]
    from feedback.complaints.api import openapi_paths

    complaint_paths, complaint_schemas = openapi_paths()
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "好差评 API", "version": "1.0.0",
                 "description": "Service records and ratings. Levels inside the product: 5 = 非常满意 … 1 = 非常不满意 "
                                "(`score` scheme); GB/T 39046 numbers them the other way (`gbt39046`: 1 = 非常满意)."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/service-records": {
                "post": {"summary": "Register a completed service record (办件)", "parameters": [idem],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RecordIn"}}}},
                         "responses": {"201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}}},
                                       **_errors(400, 401, 403, 409, 415, 422)}},
                "get": {"summary": "List records, newest first", "parameters": page_params,
                        "responses": {"200": {"description": "A page", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["items", "next_cursor"],
                            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
                                           "next_cursor": {"type": "string", "nullable": True}}}}}},
                                      **_errors(400, 401, 403)}},
            },
            "/service-records/{record_number}": {
                "get": {"summary": "One record", "parameters": [{"name": "record_number", "in": "path", "required": True, "schema": {"type": "string"}}],
                        "responses": {"200": {"description": "The record", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}}},
                                      **_errors(400, 401, 403, 404)}},
            },
            "/evaluations": {
                "post": {"summary": "Rate a record (one rating per record)", "parameters": [idem],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EvaluationIn"}}}},
                         "responses": {"201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Evaluation"}}}},
                                       **_errors(400, 401, 403, 409, 415, 422, 429)}},
                "get": {"summary": "List ratings, newest first",
                        "parameters": page_params + [{"name": "level", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 5}},
                                                     {"name": "channel", "in": "query", "schema": {"type": "string", "enum": sorted(CHANNELS)}}],
                        "responses": {"200": {"description": "A page", "content": {"application/json": {"schema": {
                            "type": "object", "required": ["items", "next_cursor"],
                            "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Evaluation"}},
                                           "next_cursor": {"type": "string", "nullable": True}}}}}},
                                      **_errors(400, 401, 403)}},
            },
            "/evaluations/{evaluation_id}": {
                "get": {"summary": "One rating", "parameters": [{"name": "evaluation_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                        "responses": {"200": {"description": "The rating", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Evaluation"}}}},
                                      **_errors(400, 401, 403, 404)}},
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status"],
                            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                           "status": {"type": "integer"}, "detail": {"type": "string"}},
                            "additionalProperties": True},
                "RecordIn": {"type": "object", "required": ["record_number", "service_item_code", "completed_at"],
                             "properties": {
                                 "record_number": {"type": "string", "maxLength": 64},
                                 "service_item_code": {"type": "string"}, "window_code": {"type": "string"},
                                 "staff_number": {"type": "string"},
                                 "completed_at": {"type": "string", "format": "date-time"},
                                 "citizen_phone": {"type": "string", "description": "normalised to E.164, China by default"},
                                 "citizen_name": {"type": "string", "maxLength": 100},
                                 "citizen_kind": {"type": "string", "enum": ["person", "company"]}}},
                "Record": {"type": "object", "required": ["id", "record_number", "completed_at", "rated"],
                           "properties": {
                               "id": {"type": "integer"}, "record_number": {"type": "string"},
                               "service_item_code": {"type": "string"}, "service_item_name": {"type": "string"},
                               "department_code": {"type": "string"}, "hall_code": {"type": "string", "nullable": True},
                               "window_code": {"type": "string", "nullable": True},
                               "staff_number": {"type": "string", "nullable": True},
                               "completed_at": {"type": "string", "format": "date-time"},
                               "citizen_kind": {"type": "string"},
                               "citizen_phone_masked": {"type": "string", "nullable": True},
                               "rated": {"type": "boolean"},
                               "rating_deadline": {"type": "string", "format": "date-time"},
                               "rate_url": {"type": "string"}}},
                "EvaluationIn": {"type": "object", "required": ["record_number", "level"],
                                 "properties": {
                                     "record_number": {"type": "string"},
                                     "level": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "string"}],
                                               "description": "a number (with level_scheme) or a name: very_satisfied … / 非常满意 …"},
                                     "level_scheme": {"type": "string", "enum": ["score", "gbt39046"]},
                                     "channel": {"type": "string", "enum": sorted(CHANNELS)},
                                     "reasons": {"type": "array", "items": {"type": "integer", "enum": sorted(REASONS)}},
                                     "comment": {"type": "string"},
                                     "rated_at": {"type": "string", "format": "date-time"}}},
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
                                   "department_code": {"type": "string"}, "window_code": {"type": "string", "nullable": True},
                                   "ticket_id": {"type": "integer", "nullable": True},
                                   "flagged": {"type": "boolean"}, "invalid": {"type": "boolean"}}},
            },
        },
    }
    doc["paths"].update(complaint_paths)
    doc["components"]["schemas"].update(complaint_schemas)
    return doc
