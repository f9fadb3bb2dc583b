"""CSRF on every state-changing form, cookie flags, security headers (a CSP without
'unsafe-inline' scripts, on every page) and the login lockout, over HTTP."""
from __future__ import annotations

import re
from urllib.parse import urlsplit
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import url_for

from feedback.audit.models import AuditEvent
from feedback.terminal import service as terminals
from tests.conftest import TEST_PASSWORD, csrf_from
from tests.security.conftest import ROLES, USER_ROLES, fresh_csrf, role_client
from tests.security.test_access_matrix import LOGIN, RULES, url_args

# POST routes that do not use cookies for authority and so need no CSRF token: the JSON API
# (bearer keys), the tablet's JSON (a secret cookie *and* a custom header no form can send)
# and Twilio's webhooks (signed). Everything else that accepts POST must refuse it without one.
CSRF_EXEMPT = {"api.create_record", "api.create_evaluation", "api.create_complaint", "terminal.submit",
               "terminal.labels", "sms.webhooks.inbound", "sms.webhooks.status",
               *(f"voice.webhooks.{name}" for name in ("inbound", "gather", "recording", "status", "callback_answer",
                                                       "callback_whisper", "callback_dial", "outbound_answer"))}
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.I)


@pytest.fixture
def app_config(app_config):
    app_config.RATELIMIT_ENABLED = False
    return app_config


def snapshot(db) -> dict[str, list]:
    """Every row of every table, for 'nothing changed' (the city is small)."""
    db.session.expire_all()
    out = {}
    with db.engine.connect() as conn:
        meta = sa.MetaData()
        meta.reflect(bind=conn)
        for name, table in sorted(meta.tables.items()):
            rows = conn.execute(sa.select(table)).all()
            out[name] = sorted(repr(tuple(r)) for r in rows)
    return out


def allowed_user(endpoint: str) -> str | None:
    """A role the access rule lets use ``endpoint`` (a user if any, else anonymous)."""
    expect = RULES[endpoint].expect
    for role in [*USER_ROLES, "anonymous"]:
        if expect[role] not in (LOGIN, 401, 403, 404):
            return role
    return None


def test_every_state_changing_form_refuses_a_post_without_a_csrf_token_and_changes_nothing(app, db, targets):
    post_routes = sorted(r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods)
    assert set(CSRF_EXEMPT) <= set(post_routes)
    clients = {role: role_client(app, targets, role) for role in ["anonymous", *USER_ROLES]}
    before = snapshot(db)
    refused = []
    for endpoint in post_routes:
        if endpoint in CSRF_EXEMPT:
            continue
        role = allowed_user(endpoint)
        assert role, f"{endpoint}: nobody may post to it?"
        with app.test_request_context():
            url = url_for(endpoint, **url_args(app, targets, endpoint, RULES[endpoint]))
        # The data a valid submission would carry (the matrix's), minus the token; and with a
        # token of another session (a token is bound to its session).
        data = dict(RULES[endpoint].data, note="跨站请求", active="0", level="5", verdict="satisfied",
                    description="跨站请求伪造测试内容", contact_phone="13800138000")
        for token in (None, fresh_csrf(app.test_client())):
            payload = dict(data, **({"csrf_token": token} if token else {}))
            resp = clients[role].post(url, data=payload)
            if resp.status_code != 400:
                refused.append(f"POST {url} as {role} ({'foreign token' if token else 'no token'}): "
                               f"{resp.status_code}, expected 400")
    assert not refused, "\n".join(refused)
    after = snapshot(db)
    changed = [t for t in before if before[t] != after[t]]
    assert not changed, f"a refused POST changed {changed}"
    assert len(post_routes) - len(CSRF_EXEMPT) >= 35


def test_the_same_post_with_the_token_goes_through(app, db, targets):
    """The refusal above is the token's doing: the note is added once it is there."""
    client = role_client(app, targets, "handler")
    url = f"/console/tickets/{targets.ns.ticket.id}/note"
    assert client.post(url, data={"note": "有令牌"}).status_code == 400
    assert client.post(url, data={"note": "有令牌", "csrf_token": fresh_csrf(client)}).status_code == 302


def _production_app(db_url, **extra):
    from feedback import create_app
    from feedback.config import Config

    cfg = Config(ENV_NAME="production", SECRET_KEY="x" * 40, SQLALCHEMY_DATABASE_URI=db_url,
                 PUBLIC_URL="https://feedback.example.gov.cn", RATELIMIT_ENABLED=False)
    cfg.extra.update(extra)
    return create_app(cfg)


def _cookie(resp, name):
    for header in resp.headers.getlist("Set-Cookie"):
        if header.startswith(name + "="):
            return header
    raise AssertionError(f"no {name} cookie set: {resp.headers.getlist('Set-Cookie')}")


def test_production_cookies_are_secure_httponly_and_samesite(db_url, targets, clock):
    """The defaults of a production deployment (no override): session and tablet cookies."""
    from feedback.extensions import db

    app = _production_app(db_url, CLOCK=clock)
    with app.app_context():
        _, code = terminals.issue_pairing_code(db.session.merge(targets.ns.city.window), actor=None)
        db.session.commit()
    client = app.test_client()
    base = "https://feedback.example.gov.cn"
    page = client.get("/login", base_url=base)
    # Over HTTPS Flask-WTF also wants a same-origin Referer (WTF_CSRF_SSL_STRICT).
    assert client.post("/login", base_url=base, data={"username": "boss", "password": TEST_PASSWORD, "csrf_token":
                       csrf_from(page.get_data(as_text=True))}).status_code == 400
    resp = client.post("/login", base_url=base, headers={"Referer": base + "/login"}, data={"username": "boss", "password": TEST_PASSWORD,
                                                      "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 302
    session = _cookie(resp, "session")
    assert "Secure" in session
    assert "HttpOnly" in session
    assert "SameSite=Lax" in session
    tablet = app.test_client()
    page = tablet.get("/terminal/pair", base_url=base)
    resp = tablet.post("/terminal/pair", base_url=base, headers={"Referer": base + "/terminal/pair"}, data={
        "window_code": "W01", "code": code, "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 302
    cookie = _cookie(resp, "fb_terminal")
    assert all(flag in cookie for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/terminal/"))
    assert app.config["WTF_CSRF_ENABLED"] is True
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_every_page_sends_the_security_headers_and_a_csp_without_inline_scripts(app, targets):
    """Every GET route of the matrix, as a role allowed to see it: CSP (no 'unsafe-inline' or
    'unsafe-eval' in script-src), nosniff, frame denial, referrer policy; no page carries an
    inline script, an on*= handler or a javascript: URL (the CSP would block them anyway)."""
    clients = {}
    failures, pages = [], 0
    for endpoint, rule in RULES.items():
        if rule.method != "GET":
            continue
        role = next((r for r in ROLES if rule.expect[r] not in (LOGIN, 401, 403, 404)), None)
        client = clients.get(role) or clients.setdefault(role, role_client(app, targets, role))
        with app.test_request_context():
            url = url_for(endpoint, **url_args(app, targets, endpoint, rule))
        resp = client.get(url, headers=client.api_headers, base_url="https://feedback.example.gov.cn")
        pages += 1
        h = resp.headers
        csp = h.get("Content-Security-Policy", "")
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        script_src = directives.get("script-src", directives.get("default-src", []))
        if not script_src or "'unsafe-inline'" in script_src or "'unsafe-eval'" in script_src:
            failures.append(f"{url}: script-src {script_src}")
        if directives.get("frame-ancestors") != ["'none'"] or directives.get("object-src") != ["'none'"]:
            failures.append(f"{url}: CSP {csp!r}")
        for name, value in (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                            ("Referrer-Policy", "same-origin")):
            if h.get(name) != value:
                failures.append(f"{url}: {name}={h.get(name)}")
        if not h.get("Strict-Transport-Security", "").startswith("max-age="):
            failures.append(f"{url}: no HSTS over HTTPS")
        if resp.mimetype == "text/html":
            body = resp.get_data(as_text=True)
            for pattern in (INLINE_SCRIPT, EVENT_HANDLER, JS_URL):
                if m := pattern.search(body):
                    failures.append(f"{url}: inline script {m.group(0)[:80]!r}")
    assert pages >= 50
    assert not failures, "\n".join(failures)


def test_pages_with_personal_data_are_not_cached(app, targets):
    client = role_client(app, targets, "handler")
    for url in (f"/console/tickets/{targets.ns.ticket.id}", "/console/tickets", "/console/"):
        assert client.get(url).headers.get("Cache-Control") == "no-store", url
    anon = app.test_client()
    assert anon.get("/complaints/new").headers.get("Cache-Control") == "no-store"


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one_until_the_lockout_ends(
        app, db, targets, clock):
    client = app.test_client()

    def attempt(password):
        page = client.get("/login")
        return client.post("/login", data={"username": "handler_ga", "password": password,
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})

    for _ in range(5):
        assert attempt("wrong-password-1").status_code == 401
    locked = attempt(TEST_PASSWORD)
    assert locked.status_code == 401
    assert "锁定" in locked.get_data(as_text=True)
    assert client.get("/console/").status_code == 302  # not signed in
    actions = [a for (a,) in db.session.execute(sa.select(AuditEvent.action).where(
        AuditEvent.action.like("login.%"))).all()]
    assert actions.count("login.lockout") == 1
    assert "login.locked" in actions
    clock.set(clock.now + timedelta(minutes=16))
    assert attempt(TEST_PASSWORD).status_code == 302
    assert client.get("/console/").status_code == 200


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(app, targets):
    client = app.test_client()
    answers = []
    for username in ("handler_ga", "nobody_here"):
        page = client.get("/login")
        resp = client.post("/login", data={"username": username, "password": "wrong-password-1",
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})
        body = re.sub(r'value="[^"]*"', "", resp.get_data(as_text=True))
        answers.append((resp.status_code, body.replace(username, "")))
    assert answers[0] == answers[1]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_login_never_redirects_off_site(app, targets, target):
    client = app.test_client()
    page = client.get("/login")
    resp = client.post("/login", query_string={"next": target}, data={
        "username": "super", "password": TEST_PASSWORD, "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 302
    location = resp.headers["Location"]
    # Same site: a path (browsers read "/\\host" and "//host" as another host; an encoded
    # %5C is a harmless path character).
    assert location.startswith("/"), location
    assert not location.startswith("//"), location
    assert "\\" not in location, location
    assert urlsplit(location).netloc in ("", "localhost")
    assert "javascript" not in location
