"""The API against its own OpenAPI document, with schemathesis: for every operation,
generated requests (valid and invalid per the schema) with a key of every scope; no answer
is a 5xx and every answer matches the document (status code, content type, body schema),
and a request the schema forbids is refused with a 4xx.

The number of examples is bounded (SCHEMATHESIS_EXAMPLES per operation and mode) so the
run takes well under a minute; `FEEDBACK_SCHEMATHESIS_EXAMPLES=500` for a long run.
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_schema_conformance, status_code_conformance)

from tests.security.conftest import SCOPES

EXAMPLES = int(os.environ.get("FEEDBACK_SCHEMATHESIS_EXAMPLES", "50"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def app_config(app_config):
    app_config.RATELIMIT_ENABLED = False  # the generated requests come from one key
    return app_config


@pytest.fixture
def all_scopes_key(app, db, targets):
    from feedback.accounts import service as accounts

    _, plain = accounts.create_api_key("schemathesis", SCOPES)
    db.session.commit()
    return plain


def test_the_api_answers_every_generated_request_as_its_openapi_document_says(app, db, all_scopes_key, capsys):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {all_scopes_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9, [op.label for op in operations]
    counts: dict[str, int] = {}
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            counts[f"{op.label} [{mode.value}]"] = _exercise(op, mode, headers, db)
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nschemathesis: {total} cases over {len(operations)} operations "
              f"({EXAMPLES} per operation and mode at most)")
    assert total >= len(operations) * 2 * min(EXAMPLES, 5)


def _exercise(op, mode: GenerationMode, headers: dict, db) -> int:
    """Run up to EXAMPLES generated cases of one operation; the number run."""
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    declared = {p.name for p in op.query}
    ran = [0]

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case):
        ran[0] += 1
        # Edited in place, so schemathesis re-judges whether the case is still invalid: the
        # key is always sent (a missing key is the access matrix's business), and query
        # parameters the document does not name are dropped (like most HTTP APIs, this one
        # ignores them rather than refusing them).
        if case.headers is None:
            case.headers = {}
        case.headers.update(headers)
        if case.query:
            for name in [k for k in case.query if k not in declared]:
                del case.query[name]
        response = case.call()
        case.validate_response(response, checks=checks, headers=headers)
        db.session.rollback()

    run()
    return ran[0]
