"""Staff sessions end (issue 17, L1): signing out ends the session on the server, so a copied
cookie stops working; a session idle for SESSION_IDLE_MINUTES (30) or older than
SESSION_MAX_HOURS (12) ends too. A session's age is real time (time-machine moves it), not the
domain clock that tests and ``jobs run --now`` move by days."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import time_machine

from tests.conftest import login, post_form

START = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)


def _signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_signing_out_ends_the_session_for_a_copy_of_its_cookie_too(app, db, make_user):
    make_user("admin", username="alice")
    browser = app.test_client()
    login(browser, "alice")
    copy = app.test_client()
    copy.set_cookie("session", browser.get_cookie("session").value)
    assert _signed_in(copy)
    assert post_form(browser, "/logout", {}, form_url="/admin/").status_code == 302
    assert not _signed_in(browser)
    assert not _signed_in(copy)
    login(browser, "alice")  # signing in again works
    assert _signed_in(browser)


def test_a_session_left_idle_longer_than_the_idle_timeout_ends(app, db, make_user):
    make_user("admin", username="alice")
    client = app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        login(client, "alice")
        for _ in range(3):  # in use: each request renews it
            traveller.shift(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] - 1))
            assert _signed_in(client)
        traveller.shift(timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1))
        resp = client.get("/admin/")
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
        assert "登录已超时" in client.get("/login").get_data(as_text=True)


def test_a_session_in_constant_use_ends_after_the_absolute_timeout(app, db, make_user):
    make_user("admin", username="alice")
    client = app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        login(client, "alice")
        used = timedelta()
        while used + timedelta(minutes=20) < timedelta(hours=app.config["SESSION_MAX_HOURS"]):
            traveller.shift(timedelta(minutes=20))
            used += timedelta(minutes=20)
            assert _signed_in(client), used
        traveller.shift(timedelta(minutes=20))
        assert not _signed_in(client)
        login(client, "alice")
        assert _signed_in(client)


def test_the_timeouts_are_settings(app, db, make_user):
    app.config.update(SESSION_IDLE_MINUTES=5, SESSION_MAX_HOURS=1)
    make_user("admin", username="alice")
    client = app.test_client()
    with time_machine.travel(START, tick=False) as traveller:
        login(client, "alice")
        traveller.shift(timedelta(minutes=6))
        assert not _signed_in(client)
