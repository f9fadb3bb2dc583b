"""A rate-limit store (Redis) that stops answering: the limits the code counts itself (failed
API keys, accepted complaints) go on in each process's memory, like the decorated routes',
instead of failing the request with a 500."""
from __future__ import annotations

import pytest

from tests.bench.stack import free_port
from tests.security.test_rate_limits import COMPLAINT, _complain


@pytest.fixture
def app_config(app_config):
    app_config.RATELIMIT_STORAGE_URI = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    app_config.RATELIMIT_STORAGE_TIMEOUT_SECONDS = 0.2
    app_config.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    app_config.API_AUTH_FAILURE_LIMIT = "3 per minute"
    return app_config


def test_failed_api_keys_are_still_counted_and_answered_401_then_429(app, client):
    answers = [client.post("/api/v1/evaluations", json={}, headers={"Authorization": "Bearer wrong"}).status_code
               for _ in range(5)]
    assert 500 not in answers, f"the store being down failed the request: {answers}"
    assert answers[:3] == [401, 401, 401] and answers[3:] == [429, 429], (
        f"three failures allowed, then refused, counted in memory while the store is down: {answers}")


def test_a_complaint_is_accepted_while_the_store_is_down(app, client, db, city):
    status = _complain(client, phone=COMPLAINT["contact_phone"])
    assert status == 303, f"the complaint went through (303 to its receipt), not {status}"
