"""Access matrix: every console, ticket and complaint route × every role.

A handler of another department gets 404 for a ticket (never its content); window staff
and administrators have no ticket pages; the public complaint pages are open to all.
The test fails when a route of these blueprints is missing from the matrix.
"""
import pytest

from feedback.complaints.models import ComplaintPhoto
from feedback.tickets import service as t
from tests.conftest import TEST_PASSWORD, walk_to

ROLES = ["anonymous", "window_staff", "other_handler", "handler", "supervisor", "admin"]
USERNAMES = {"window_staff": "staff_ga01", "other_handler": "handler_scj", "handler": "handler_ga",
             "supervisor": "super", "admin": "boss"}
LOGIN = 302  # anonymous visitors are sent to the login page

# endpoint -> (method, url template, form data, {role: status})
MATRIX = {
    "console.home": ("GET", "/console/", {}, dict(zip(ROLES, [LOGIN, 200, 200, 200, 200, 200]))),
    "console.directory_list": ("GET", "/console/directory/windows/", {},
                               dict(zip(ROLES, [LOGIN, 200, 200, 200, 200, 200]))),
    "console.staff_edit": ("GET", "/console/directory/staff/{staff_id}", {},
                           dict(zip(ROLES, [LOGIN, 403, 404, 200, 200, 200]))),
    "tickets.queue": ("GET", "/console/tickets", {}, dict(zip(ROLES, [LOGIN, 403, 200, 200, 200, 403]))),
    "tickets.overview": ("GET", "/console/tickets/overview", {},
                         dict(zip(ROLES, [LOGIN, 403, 403, 403, 200, 403]))),
    "tickets.export_csv": ("GET", "/console/tickets/export.csv", {},
                           dict(zip(ROLES, [LOGIN, 403, 200, 200, 200, 403]))),
    "tickets.export_xlsx": ("GET", "/console/tickets/export.xlsx", {},
                            dict(zip(ROLES, [LOGIN, 403, 200, 200, 200, 403]))),
    "tickets.detail": ("GET", "/console/tickets/{ticket_id}", {},
                       dict(zip(ROLES, [LOGIN, 403, 404, 200, 200, 403]))),
    "tickets.act": ("POST", "/console/tickets/{ticket_id}/note", {"note": "矩阵测试"},
                    dict(zip(ROLES, [LOGIN, 403, 404, 302, 302, 403]))),
    "tickets.reveal_phone": ("POST", "/console/tickets/{ticket_id}/phone", {},
                             dict(zip(ROLES, [LOGIN, 403, 404, 200, 200, 403]))),
    "tickets.photo": ("GET", "/console/tickets/{complaint_ticket_id}/photos/{photo_id}", {},
                      dict(zip(ROLES, [LOGIN, 403, 404, 200, 200, 403]))),
    "complaints.new": ("GET", "/complaints/new", {}, dict.fromkeys(ROLES, 200)),
    "complaints.lookup": ("GET", "/complaints/lookup", {}, dict.fromkeys(ROLES, 200)),
    # Only the browser session that looked the case up sees it; anyone else goes to the lookup.
    "complaints.case": ("GET", "/complaints/case", {}, dict.fromkeys(ROLES, 303)),
    # Only the browser session that filed the complaint sees its receipt; anyone else goes to the lookup.
    "complaints.received": ("GET", "/complaints/received", {}, dict.fromkeys(ROLES, 303)),
    "handling.rate": ("GET", "/h/{token}", {}, dict.fromkeys(ROLES, 200)),
}

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def app_config(app_config):
    app_config.WTF_CSRF_ENABLED = False  # access is what is tested here; CSRF has its own tests
    return app_config


@pytest.fixture
def params(db, city, make_ticket):
    from feedback.complaints.service import Upload

    ticket = make_ticket()
    t.accept(ticket, city.users.handler)  # the handler is the assignee (may reveal the phone)
    replied = walk_to(make_ticket(), "replied", city.users)
    complaint_ticket = make_ticket(source="complaint", photos=[Upload("a.png", PNG)])
    db.session.commit()
    photo = db.session.query(ComplaintPhoto).one()
    return {"ticket_id": ticket.id, "staff_id": city.staff.id, "complaint_ticket_id": complaint_ticket.id,
            "photo_id": photo.id, "token": t.handling_token(replied)}


def test_the_matrix_covers_every_route_of_these_blueprints(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules()
                 if r.endpoint.split(".")[0] in ("console", "tickets", "handling", "complaints")}
    assert endpoints == set(MATRIX), f"routes missing from the access matrix: {endpoints - set(MATRIX)}"


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(app, city, params, role):
    client = app.test_client()
    if role != "anonymous":
        resp = client.post("/login", data={"username": USERNAMES[role], "password": TEST_PASSWORD})
        assert resp.status_code == 302
    failures = []
    for endpoint, (method, template, data, expected) in MATRIX.items():
        url = template.format(**params)
        resp = client.open(url, method=method, data=data)
        if resp.status_code != expected[role]:
            failures.append(f"{method} {url} as {role}: {resp.status_code}, expected {expected[role]}")
        if expected[role] == 404:
            body = resp.get_data(as_text=True)
            assert "态度很差" not in body
            assert "138****8000" not in body
    assert not failures, "\n".join(failures)
