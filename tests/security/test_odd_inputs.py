"""No input is a 500: every route, every query parameter and form field, with the odd inputs a
hostile review sent (non-ASCII digits, extreme dates, CR/LF, NUL, huge integers, view argument
names in the query string).

Generated from the access matrix (tests/security/test_access_matrix.py): each route is sent
as a role that may use it, so the view itself (not the access check) meets the input. The
query parameter names are read from the source (every ``request.args.get("…")``), so a new
filter is fuzzed without anybody listing it. Each name is then sent alone to the routes that
look it up (request.args records the names a view reads, with and without a query string);
a route that never reads a name behaves as it did with every name at once.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Request, url_for
from werkzeug.datastructures import ImmutableMultiDict

from tests.security.conftest import fresh_csrf, role_client
from tests.security.test_access_matrix import LOGIN, RULES, url_args

ROOT = Path(__file__).resolve().parents[2]
ODD = ["²", "①", "٣", "１２", "0001-01-01", "9999-12-31T23:59:59", "0000-00-00", "2026-13", "10000-01-01",
       "a\r\nb", "x\x00y", "99999999999999999999999", "-99999999999999999999", "-1", "", " ", "'\"<>&;",
       "%", "1e309", "NaN", "ⅩⅡ", "\u202e1", "abc"]
# The roles, most privileged first, whose session most views accept.
PREFERRED = ["supervisor", "admin", "handler", "window_staff", "tablet", "anonymous"]


READ: set[str] = set()  # the query parameter names looked up since it was last cleared


class _RecordingArgs(ImmutableMultiDict):
    """``request.args`` that notes every name a view (or its template) looks up."""

    def __getitem__(self, key):
        READ.add(key)
        return super().__getitem__(key)

    def get(self, key, *args, **kwargs):
        READ.add(key)
        return super().get(key, *args, **kwargs)

    def getlist(self, key, *args, **kwargs):
        READ.add(key)
        return super().getlist(key, *args, **kwargs)

    def __contains__(self, key):
        READ.add(key)
        return super().__contains__(key)


class _RecordingRequest(Request):
    parameter_storage_class = _RecordingArgs


def _query_names() -> list[str]:
    names = set()
    for path in (ROOT / "feedback").rglob("*.py"):
        names.update(re.findall(r"request\.args\.get\(\s*\"([A-Za-z_]+)\"", path.read_text(encoding="utf-8")))
    return sorted(names)


def _role_for(rule) -> str | None:
    ok = [role for role, expected in rule.expect.items() if expected not in (LOGIN, 401, 403, 404)]
    for role in PREFERRED:
        if role in ok:
            return role
    return ok[0] if ok else None


@pytest.fixture
def app_config(app_config):
    app_config.RATELIMIT_ENABLED = False  # thousands of requests; limits have their own tests
    return app_config


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_query_string_makes_any_page_fail(app, db, targets, monkeypatch):
    monkeypatch.setattr(app, "request_class", _RecordingRequest)
    names = _query_names()
    view_args = {arg for rule in app.url_map.iter_rules() for arg in rule.arguments}
    failures, sent = [], 0
    read_by: dict[str, set[str]] = {}  # endpoint -> the listed names its view looks up
    clients: dict[str, object] = {}
    for endpoint, rule in sorted(RULES.items()):
        if rule.method != "GET" or endpoint in ("accounts.logout", "static"):
            continue
        role = _role_for(rule)
        if role is None:
            continue
        client = clients.get(role) or clients.setdefault(role, role_client(app, targets, role))
        with app.test_request_context():
            url = url_for(endpoint, **url_args(app, targets, endpoint, rule))
        READ.clear()
        _get(client, url, {})  # the names the view reads on its plain path
        for value in ODD:
            # Every filter at once, then view argument names as query parameters (url_for in
            # templates must not let them override the view's own arguments).
            for query in ({n: value for n in names}, {a: value for a in view_args}):
                resp = _get(client, url, query)
                sent += 1
                if resp.status_code >= 500:
                    failures.append(f"GET {url} as {role} with {value!r} in {sorted(query)[:3]}…: {resp.status_code}")
                    break
        read_by[endpoint] = READ & set(names)
        for name in sorted(read_by[endpoint]):
            for value in ("²", "99999999999999999999999", "9999-12-31", "a\r\nb"):
                resp = _get(client, url, {name: value})
                sent += 1
                if resp.status_code >= 500:
                    failures.append(f"GET {url}?{name}={value!r} as {role}: {resp.status_code}")
    assert sent > 1000
    # The recorder sees the lookups (a view reading filters, the pager's page).
    assert {"page", "state"} <= read_by["tickets.queue"], read_by.get("tickets.queue")
    assert sum(map(len, read_by.values())) > 50, read_by
    assert not failures, f"{len(failures)} of {sent} requests failed with a 5xx:\n" + "\n".join(failures)


def _get(client, url: str, query: dict):
    """GET with a query string; a streamed body (the CSV downloads) is read to its end, inside
    the request, so an error while streaming counts too."""
    resp = client.get(url, query_string=query, headers=client.api_headers)
    resp.get_data()
    resp.close()
    return resp


def _form_fields(client, url: str) -> set[str]:
    """The names of the form fields a page offers (inputs, selects, text areas)."""
    resp = client.get(url)
    if resp.status_code != 200 or "html" not in (resp.mimetype or ""):
        return set()
    html = resp.get_data(as_text=True)
    return set(re.findall(r"<(?:input|select|textarea)[^>]*\sname=\"([^\"]+)\"", html)) - {"csrf_token"}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_form_field_makes_any_post_fail(app, db, targets):
    failures, sent = [], 0
    for endpoint, rule in sorted(RULES.items()):
        if rule.method != "POST" or endpoint in ("accounts.logout",):
            continue
        role = _role_for(rule)
        if role is None:
            continue
        client = role_client(app, targets, role)
        token = fresh_csrf(client)
        with app.test_request_context():
            url = url_for(endpoint, **url_args(app, targets, endpoint, rule))
        if rule.json is not None:
            for value in ODD:
                body = {k: (value if isinstance(v, str) else v) for k, v in rule.json.items()}
                resp = client.post(url, json=body, headers=client.api_headers)
                sent += 1
                if resp.status_code >= 500:
                    failures.append(f"POST {url} as {role} JSON with {value!r}: {resp.status_code}")
            continue
        fields = set(rule.data) | _form_fields(client, url)
        for value in ODD:
            data = {"csrf_token": token, **{f: value for f in fields}}
            resp = client.post(url, data=data, headers=client.api_headers)
            sent += 1
            if resp.status_code >= 500:
                failures.append(f"POST {url} as {role} with {value!r} in {sorted(fields)}: {resp.status_code}")
    assert sent > 200
    assert not failures, f"{len(failures)} of {sent} requests failed with a 5xx:\n" + "\n".join(failures)
