"""Failed API-key authentication is limited per address (issue 17): API_AUTH_FAILURE_LIMIT
(20 per minute) 401s, then 429 before any key is checked; a working key is never counted and
other addresses are not affected."""
from __future__ import annotations

from feedback.accounts import service


def test_failed_api_key_authentication_is_limited_per_address(app, db):
    app.config["API_AUTH_FAILURE_LIMIT"] = "3 per minute"
    _, plain = service.create_api_key("窗口系统", ["records:read"])
    db.session.commit()
    client = app.test_client()

    def get(key, ip):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return client.get("/api/v1/service-records", headers=headers, environ_base={"REMOTE_ADDR": ip}).status_code

    assert [get(plain, "203.0.113.3") for _ in range(5)] == [200] * 5  # good keys are not counted
    guesses = [get("fbk_deadbeef_" + "x" * 43, "203.0.113.3"), get("", "203.0.113.3"),
               get(plain[:-1] + "!", "203.0.113.3"), get("fbk_deadbeef_" + "y" * 43, "203.0.113.3")]
    assert guesses == [401, 401, 401, 429]
    assert get(plain, "203.0.113.3") == 429  # refused before any key is checked
    assert get(plain, "198.51.100.20") == 200
    assert get("fbk_deadbeef_" + "z" * 43, "198.51.100.20") == 401
