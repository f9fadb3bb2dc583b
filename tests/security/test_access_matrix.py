"""Access matrix: every route of the app × every role, generated from the app's URL map.

RULES names, for every endpoint, who may use it; a new route without a rule fails
``test_every_route_has_an_access_rule`` with its name. For each (route, role) the test
sends one request with concrete URL arguments (one object of each kind from the
``targets`` fixture; a valid CSRF token on every POST, so the access rule, not CSRF, is
what answers) and checks the status the rule promises:

* ``LOGIN``: 302 to the login page (pages for logged-in users, visited without a session);
* 401: the API without a key, the tablet's JSON without its secret;
* 403: a logged-in user of the wrong role, a key without the scope, an unsigned webhook;
* 404: somebody else's object (a handler of another department, a key of another
  department, another user's notification): not even its existence is confirmed;
* the rule's ``ok`` status when allowed (what the view answers the request sent).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from flask import url_for

from tests.security.conftest import ROLES, SCOPES, USER_ROLES, fresh_csrf, role_client

LOGIN = "LOGIN"
NON_USERS = ["anonymous", "tablet", *[r for r in ROLES if r.startswith("api:")]]


def _users(ok, **per_role):
    """Pages guarded by a user role: non-users are sent to log in; per-role answers given."""
    out = dict.fromkeys(NON_USERS, LOGIN)
    out.update(dict.fromkeys(USER_ROLES, 403))
    out.update({role: (ok if v == "ok" else v) for role, v in per_role.items()})
    return out


def public(ok):
    return dict.fromkeys(ROLES, ok)


def admin(ok):
    return _users(ok, admin="ok")


def staff(ok):
    return _users(ok, **dict.fromkeys(USER_ROLES, "ok"))


def logged_in(ok):
    return staff(ok)


def staff_scoped(ok):
    """The department's staff list: window staff have no edit rights, another department 404."""
    return _users(ok, other_handler=404, handler="ok", supervisor="ok", admin="ok")


def tickets(ok):
    return _users(ok, other_handler="ok", handler="ok", supervisor="ok")


def tickets_scoped(ok):
    return _users(ok, other_handler=404, handler="ok", supervisor="ok")


def supervisor(ok):
    return _users(ok, supervisor="ok")


def supervisor_or_admin(ok):
    return _users(ok, supervisor="ok", admin="ok")


def window_staff(ok):
    return _users(ok, window_staff="ok")


def record_scoped(ok):
    return _users(ok, window_staff="ok", other_handler=404, handler="ok", supervisor="ok", admin="ok")


def own_notification(ok):
    return _users(ok, **{**dict.fromkeys(USER_ROLES, 404), "handler": "ok"})


def login_page(ok):
    out = public(ok)
    out.update(dict.fromkeys(USER_ROLES, 302))  # already signed in: to the user's home page
    return out


def tablet(ok, refused=401):
    out = public(refused)
    out["tablet"] = ok
    return out


def webhook():
    return public(403)  # no X-Twilio-Signature


def dev_only(ok):
    return admin(ok)


def api(scope, ok, scoped=False):
    """Bearer key with ``scope``; ``scoped``: the object belongs to 户政支队, so the key of
    another department gets 404 (a write names no object: that key gets ``ok`` too)."""
    out = public(401)
    for s in SCOPES:
        out[f"api:{s}"] = ok if s == scope else 403
    out["api:other"] = 404 if scoped else ok
    return out


@dataclass
class Rule:
    expect: dict
    method: str = "GET"
    data: dict = field(default_factory=dict)
    json: dict | None = None
    args: dict = field(default_factory=dict)  # overrides of the targets' URL arguments


RULES: dict[str, Rule] = {
    # public landing, health, static files, login
    "core.index": Rule(public(200)),
    "core.healthz": Rule(public(200)),
    "static": Rule(public(200)),
    "accounts.login": Rule(login_page(200)),
    "accounts.change_password": Rule(logged_in(200)),
    "accounts.logout": Rule(logged_in(302), "POST"),
    # rating by link, complaints (public, CSRF-protected forms)
    "rating.link": Rule(public(422), "POST"),
    "rating.labels": Rule(public(409), "POST"),  # the record is not rated by this browser
    "complaints.new": Rule(public(422), "POST"),
    "complaints.lookup": Rule(public(422), "POST"),
    "handling.rate": Rule(public(422), "POST"),
    # disclosure
    "public.index": Rule(public(200)),
    "public.results": Rule(public(200)),
    "public.result": Rule(public(200)),
    "public.stats": Rule(public(200)),
    "public.stats_units": Rule(public(200), args={"kind": "window"}),
    "public.rankings": Rule(public(200)),
    "public.data": Rule(public(200)),
    "public.results_data": Rule(public(200)),
    "public.stats_data": Rule(public(200), args={"fmt": "json"}),
    "public.feed": Rule(public(200)),
    "public.how_to_rate": Rule(public(200)),
    "public.display": Rule(public(303)),  # sets a display cookie, back to a local page
    "complaints.received": Rule(public(303)),  # no complaint filed in this session: to the lookup form
    "complaints.case": Rule(public(303)),  # no case looked up in this session: back to the lookup form
    "wall.board": Rule(public(200)),  # the hall wallboard: no login, no personal data
    # admin area
    "admin.home": Rule(admin(200)),
    "admin.users": Rule(admin(200)),
    "admin.user_new": Rule(admin(200), "POST"),
    "admin.user_edit": Rule(admin(200), "POST"),
    "admin.user_password": Rule(admin(302), "POST"),
    "admin.user_unlock": Rule(admin(302), "POST"),
    "admin.apikeys": Rule(admin(200), "POST"),
    "admin.apikey_revoke": Rule(admin(302), "POST"),
    "admin.audit_log": Rule(admin(200)),
    "admin.jobs": Rule(admin(200)),
    "admin.job_runs": Rule(admin(200)),
    "directory.index": Rule(admin(302)),
    "directory.list": Rule(admin(200)),
    "directory.create": Rule(admin(200), "POST"),
    # Missing fields keep the object's values; an unticked 启用 would deactivate it (needs confirm=yes).
    "directory.edit": Rule(admin(302), "POST", data={"active": "y"}),
    "directory.set_active": Rule(admin(302), "POST", data={"active": "1"}),
    "directory.head_add": Rule(admin(302), "POST", data={"username": "nobody-of-that-name"}),
    "directory.head_remove": Rule(admin(302), "POST"),
    "directory.import_": Rule(admin(200), "POST"),
    "directory.export_csv": Rule(admin(200)),
    "directory.export_xlsx": Rule(admin(200)),
    "calendar.index": Rule(admin(200)),
    "calendar.add_day": Rule(admin(200), "POST"),
    "calendar.set_active": Rule(admin(302), "POST", data={"active": "1"}),
    "calendar.import_": Rule(admin(200), "POST"),
    "calendar.mark_year": Rule(admin(200), "POST"),
    "calendar.unmark_year": Rule(admin(302), "POST"),
    "terminal.admin_terminals": Rule(admin(200), "POST"),
    "terminal.admin_revoke": Rule(admin(302), "POST"),
    "reasons.index": Rule(admin(422), "POST"),  # an empty form
    "reasons.set_active": Rule(admin(302), "POST", data={"active": "1"}, args={"code": 115}),
    "sms.admin.log": Rule(admin(200)),
    "exchange.index": Rule(admin(200)),
    "exchange.show": Rule(admin(200)),
    "exchange.repush": Rule(admin(302), "POST"),
    "exchange.pause": Rule(admin(302), "POST"),
    "exchange.resume": Rule(admin(302), "POST"),
    "exchange.backfill": Rule(admin(302), "POST"),  # an empty form: its errors flashed
    "sms.dev.simulator": Rule(dev_only(200), "POST"),
    "sms.dev.run_jobs": Rule(dev_only(302), "POST"),
    "voice.dev.simulator": Rule(dev_only(200), "POST"),
    # console (staff roles, scoped by department)
    "console.home": Rule(staff(200)),
    "console.directory_list": Rule(staff(200), args={"kind": "staff"}),
    "console.staff_edit": Rule(staff_scoped(200)),
    "notifications.index": Rule(staff(200)),
    "notifications.read": Rule(own_notification(302), "POST"),
    "notifications.read_all": Rule(staff(302), "POST"),
    "tickets.queue": Rule(tickets(200)),
    "tickets.overview": Rule(supervisor(200)),
    "tickets.export_csv": Rule(tickets(200)),
    "tickets.export_xlsx": Rule(tickets(200)),
    "tickets.detail": Rule(tickets_scoped(200)),
    "tickets.act": Rule(tickets_scoped(302), "POST", data={"note": "矩阵测试"}),
    "tickets.reveal_phone": Rule(tickets_scoped(200), "POST"),
    # 拨打回访电话: the assignee and supervisors; refusals (no registered phone here) are flashed: 302
    "voice.console.call": Rule(tickets_scoped(302), "POST"),
    "tickets.photo": Rule(tickets_scoped(200), args={"ticket_id": "complaint_ticket_id"}),
    "publications.index": Rule(supervisor(200)),
    "publications.start": Rule(supervisor(302), "POST", args={"ticket_id": "closed_ticket_id"}),
    "publications.review": Rule(supervisor(200)),
    "publications.save": Rule(supervisor(422), "POST"),
    "publications.not_personal": Rule(supervisor(302), "POST"),
    "publications.withdraw": Rule(supervisor(302), "POST"),
    # 约谈 and 抽查回访 (feedback/oversight): the supervision bureau only
    "oversight.talks": Rule(supervisor(200)),
    "oversight.record_talk": Rule(supervisor(422), "POST"),  # an empty form: refused with its errors
    "oversight.rechecks": Rule(supervisor(200)),
    "oversight.recheck": Rule(supervisor(200)),
    "oversight.record_recheck": Rule(supervisor(422), "POST"),
    "oversight.reveal_phone": Rule(supervisor(200), "POST"),
    # the monthly 通报 (feedback/reports): supervisors only; empty forms are refused with a flash (302)
    "reports.index": Rule(supervisor(200)),
    "reports.generate": Rule(supervisor(302), "POST"),
    "reports.show": Rule(supervisor(200)),
    "reports.cases": Rule(supervisor(302), "POST"),
    "reports.regenerate": Rule(supervisor(302), "POST"),
    "reports.sign": Rule(supervisor(302), "POST"),
    "reports.download_pdf": Rule(supervisor(200)),
    "reports.download_xlsx": Rule(supervisor(200)),
    # statistics drill-down: supervisors every unit, handlers their departments and below (else 404)
    "statistics.index": Rule(tickets(200)),
    "statistics.unit": Rule(tickets_scoped(200)),  # unit department:GA-HZ (户政支队), month 2026-11
    "statistics.rows": Rule(tickets_scoped(200)),
    "statistics.rows_csv": Rule(tickets_scoped(200)),
    # console statistics (/console/stats): supervisors every unit, handlers their departments (units by query)
    "stats_workbench.index": Rule(tickets(200)),
    "stats_workbench.download": Rule(tickets(200)),
    # 督办单: handlers see and answer their departments' orders, supervisors issue and withdraw (empty forms
    # are refused by the service: 422; an empty form from a ticket goes back to the ticket: 303)
    "orders.index": Rule(tickets(200)),
    "orders.export_csv": Rule(tickets(200)),  # a handler's own departments' orders only
    "orders.export_xlsx": Rule(tickets(200)),
    "orders.new": Rule(supervisor(422), "POST"),
    "orders.from_ticket": Rule(supervisor(303), "POST"),
    "orders.detail": Rule(tickets_scoped(200)),
    "orders.answer": Rule(_users(422, other_handler=404, handler="ok", supervisor=403), "POST"),
    "orders.withdraw": Rule(_users(422, other_handler=404, handler=403, supervisor="ok"), "POST"),
    "flags.index": Rule(supervisor(200)),  # L9: supervisors decide, not administrators
    "flags.decide": Rule(supervisor(302), "POST"),
    # the 办结 page and printable QR codes
    "counter.complete": Rule(window_staff(200)),
    "counter.qr": Rule(record_scoped(200)),
    "counter.qr_png": Rule(record_scoped(200)),
    # the counter tablet (paired by secret cookie)
    "terminal.pair": Rule(public(200), "POST"),
    "terminal.kiosk": Rule(tablet(200, refused=403)),
    "terminal.state": Rule(tablet(200)),
    "terminal.submit": Rule(tablet(422), "POST", json={}),
    "terminal.labels": Rule(tablet(422), "POST", json={}),
    "terminal.record_qr": Rule(tablet(200)),
    # The public case page of a bad review (a signed tracking token of the replied ticket).
    "terminal.case": Rule(public(200)),
    "terminal.case_qr": Rule(public(200)),
    # Twilio webhooks (signature instead of CSRF)
    "sms.webhooks.inbound": Rule(webhook(), "POST"),
    "sms.webhooks.status": Rule(webhook(), "POST"),
    "voice.webhooks.inbound": Rule(webhook(), "POST"),
    "voice.webhooks.gather": Rule(webhook(), "POST"),
    "voice.webhooks.recording": Rule(webhook(), "POST"),
    "voice.webhooks.status": Rule(webhook(), "POST"),
    "voice.webhooks.callback_answer": Rule(webhook(), "POST"),
    "voice.webhooks.callback_whisper": Rule(webhook(), "POST"),
    "voice.webhooks.callback_dial": Rule(webhook(), "POST"),
    "voice.webhooks.outbound_answer": Rule(webhook(), "POST"),
    # the JSON API
    "api.openapi": Rule(public(200)),
    "api.problem_doc": Rule(public(200), args={"code": "already-rated"}),
    "api.create_record": Rule(api("records:write", 422), "POST", json={}),
    "api.list_records": Rule(api("records:read", 200)),
    "api.get_record": Rule(api("records:read", 200, scoped=True)),
    "api.create_evaluation": Rule(api("ratings:write", 422), "POST", json={}),
    "api.list_evaluations": Rule(api("ratings:read", 200)),
    "api.get_evaluation": Rule(api("ratings:read", 200, scoped=True)),
    "api.create_complaint": Rule(api("complaints:write", 422), "POST", json={}),
    "api.list_complaints": Rule(api("complaints:read", 200)),
    "api.get_complaint": Rule(api("complaints:read", 200, scoped=True)),
}
# Leaves the session: last in each role's run.
LAST = ["accounts.logout"]


@pytest.fixture
def app_config(app_config):
    # The matrix sends more requests than the public limits allow; limits have their own tests.
    app_config.RATELIMIT_ENABLED = False
    return app_config


def url_args(app, targets, endpoint: str, rule: Rule) -> dict:
    """Concrete values for the URL's arguments: the targets' object of that kind."""
    derived = {"complaint_ticket_id": targets.ns.complaint_ticket.id, "closed_ticket_id": targets.ns.closed.id}
    werkzeug_rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    values = {}
    for name in werkzeug_rule.arguments:
        value = rule.args.get(name, targets.args[name])
        values[name] = derived.get(value, value) if isinstance(value, str) else value
    if endpoint == "handling.rate":
        values["token"] = targets.ns.handling_token
    if endpoint in ("terminal.case", "terminal.case_qr"):
        from feedback.terminal import tracking

        values["token"] = tracking.tracking_token(targets.ns.replied)
    return values


def check(client, app, targets, endpoint: str, rule: Rule, role: str, token: str) -> str | None:
    """Send the rule's request as ``role``; a failure message, or None."""
    with app.test_request_context():
        url = url_for(endpoint, **url_args(app, targets, endpoint, rule))
    headers = dict(client.api_headers)
    if rule.method == "GET":
        resp = client.get(url, headers=headers)
    elif rule.json is not None:
        resp = client.post(url, json=rule.json, headers=headers)
    else:
        resp = client.post(url, data={"csrf_token": token, **rule.data}, headers=headers)
    expected = rule.expect[role]
    status = resp.status_code
    if expected == LOGIN:
        location = resp.headers.get("Location", "")
        if status == 302 and "/login" in location:
            return None
        return f"{rule.method} {url} as {role}: {status} {location}, expected a redirect to /login"
    if status != expected:
        return f"{rule.method} {url} as {role}: {status}, expected {expected}"
    if expected == 404 and role not in ("anonymous",):
        body = resp.get_data(as_text=True)
        if "态度很差" in body or "13800138000" in body or "138****8000" in body:
            return f"{rule.method} {url} as {role}: a 404 that shows the ticket's content"
    return None


def test_every_route_has_an_access_rule(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    missing = sorted(endpoints - set(RULES))
    assert not missing, ("routes without an access rule in tests/security/test_access_matrix.py RULES "
                         f"(decide who may use them, then add them): {missing}")
    stale = sorted(set(RULES) - endpoints)
    assert not stale, f"RULES names endpoints the app no longer has: {stale}"


def test_every_rule_names_every_role(app):
    incomplete = {e: sorted(set(ROLES) - set(r.expect)) for e, r in RULES.items() if set(r.expect) != set(ROLES)}
    assert not incomplete


def test_access_matrix_over_every_route_and_role(app, db, targets, capsys):
    failures, checked = [], 0
    endpoints = [e for e in RULES if e not in LAST] + LAST
    rules_by_endpoint = {r.endpoint: r for r in app.url_map.iter_rules()}
    for role in ROLES:
        client = role_client(app, targets, role)
        token = fresh_csrf(client)
        for endpoint in endpoints:
            rule = RULES[endpoint]
            assert rule.method in rules_by_endpoint[endpoint].methods, f"{endpoint} has no {rule.method}"
            message = check(client, app, targets, endpoint, rule, role, token)
            checked += 1
            if message:
                failures.append(message)
    with capsys.disabled():
        print(f"\naccess matrix: {len(RULES)} routes × {len(ROLES)} roles = {checked} checks")
    assert checked == len(RULES) * len(ROLES)
    # What was refused changed nothing: the note was added once per role allowed to add it.
    from feedback.tickets.models import TicketEvent

    notes = db.session.query(TicketEvent).filter_by(ticket_id=targets.ns.ticket.id, kind="note").all()
    allowed = [r for r, v in RULES["tickets.act"].expect.items() if v == 302]
    assert len([n for n in notes if n.note == "矩阵测试"]) == len(allowed) == 2
    assert not failures, f"{len(failures)} of {checked} checks failed:\n" + "\n".join(failures)


def test_routes_answer_405_to_methods_they_do_not_have(app, targets):
    """A POST-only action is never run by a GET (a link or an image tag cannot trigger it)."""
    from werkzeug.exceptions import MethodNotAllowed

    client = role_client(app, targets, "admin")
    adapter = app.url_map.bind("localhost")
    failures, checked = [], 0
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods:
            continue
        with app.test_request_context():
            url = url_for(rule.endpoint, **url_args(app, targets, rule.endpoint, RULES[rule.endpoint]))
        try:
            adapter.match(url, method="GET")
            continue  # another route answers GET at this address (the form page of this action)
        except MethodNotAllowed:
            pass
        checked += 1
        status = client.get(url).status_code
        if status != 405:
            failures.append(f"GET {url}: {status}")
    assert checked >= 20
    assert not failures


def test_the_sms_simulator_does_not_exist_in_production(app, targets):
    app.config["ENV_NAME"] = "production"
    client = role_client(app, targets, "admin")
    assert client.get("/dev/sms").status_code == 404
    assert client.post("/dev/sms/run", data={"csrf_token": fresh_csrf(client)}).status_code == 404


def test_forged_or_foreign_tokens_get_404(app, targets):
    """Link tokens are signed: a guessed or altered token names nothing."""
    client = app.test_client()
    token = targets.args["token"]
    assert client.get(f"/e/{token[:-2]}xx").status_code == 404
    assert client.get(f"/h/{targets.ns.handling_token[:-2]}xx").status_code == 404
    # A rating token is not a handling token and vice versa (different salts).
    assert client.get(f"/h/{token}").status_code == 404
    assert client.get(f"/e/{targets.ns.handling_token}").status_code == 404


def test_a_tablet_of_another_window_sees_nothing_of_this_one(app, targets, db):
    """The tablet's secret is bound to its window: W01's cookie on W02's kiosk is unpaired."""
    client = role_client(app, targets, "tablet")
    other = targets.ns.city.other_window.code
    client.set_cookie("fb_terminal", targets.tablet_cookie, path="/terminal/")
    assert client.get(f"/terminal/{other}").status_code == 403
    assert client.get(f"/terminal/{other}/state", headers={"X-Terminal-Request": "1"}).status_code == 401
    # Without the custom header (a cross-site form cannot send one) the JSON is refused too.
    assert client.get(f"/terminal/{targets.ns.city.window.code}/state").status_code == 401
