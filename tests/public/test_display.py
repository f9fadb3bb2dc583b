"""大字版 and 高对比 on every citizen page: plain links that set a cookie and come back (no
script), remembered across pages, never an open redirect, never on staff pages."""
import re

import pytest

from feedback.evaluations import links

CITIZEN_PAGES = ["/", "/public/", "/public/rate", "/complaints/new", "/complaints/lookup"]


def _body_class(html: str) -> str:
    return re.search(r'<body class="([^"]*)"', html).group(1)


def test_both_switches_are_on_every_citizen_page_as_links_saying_what_they_do(client, db, city, make_record):
    pages = CITIZEN_PAGES + [f"/e/{links.link_token(make_record())}"]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        assert "切换到大字版" in html and "切换到高对比" in html, f"{path} lacks the display switches"
        assert "aria-pressed" not in html, f"{path}: aria-pressed is not allowed on a link"


def test_a_switch_sets_a_cookie_and_goes_back_to_the_page_and_every_citizen_page_honours_it(client, db, city,
                                                                                            make_record):
    resp = client.get("/public/display?text=large&next=/complaints/new%3Fhall%3D1")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith("/complaints/new?hall=1"), "the switch must come back to the page"
    assert "text_size=large" in resp.headers["Set-Cookie"]
    client.get("/public/display?contrast=high&next=/")
    pages = CITIZEN_PAGES + [f"/e/{links.link_token(make_record())}"]
    for path in pages:
        html = client.get(path).get_data(as_text=True)
        classes = _body_class(html).split()
        assert {"large-text", "high-contrast"} <= set(classes), f"{path} ignores the choice: {classes}"
        assert "恢复标准字号" in html and "恢复标准配色" in html, f"{path}: the switch must offer the way back"
        assert "css/citizen.css" in html
    # … and the way back.
    client.get("/public/display?text=normal&contrast=normal&next=/")
    assert _body_class(client.get("/complaints/new").get_data(as_text=True)).split() == []


def test_staff_pages_show_no_switch_and_ignore_the_cookie(client, city):
    client.get("/public/display?text=large&contrast=high&next=/")
    html = client.get("/login").get_data(as_text=True)
    assert "切换到大字版" not in html and "恢复标准字号" not in html
    assert "high-contrast" not in _body_class(html)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "/%0d%0aSet-Cookie:x=1", "", "evil.example"])
def test_the_switch_never_redirects_off_the_site(client, target):
    resp = client.get("/public/display", query_string={"text": "large", "next": target})
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert location in ("/", "http://localhost/") or location.startswith("/%0d"), \
        f"next={target!r} redirected to {location!r}"
    assert "evil" not in location


def test_an_unknown_choice_changes_nothing(client):
    resp = client.get("/public/display?text=huge&contrast=pink&next=/public/")
    assert resp.status_code == 303 and "Set-Cookie" not in resp.headers


def test_the_home_page_leads_to_the_complaint_form_and_to_how_to_rate(client, city):
    html = client.get("/").get_data(as_text=True)
    assert 'id="tile-complain" href="/complaints/new"' in html, "我要投诉 needs a link to the form"
    assert 'id="tile-rate" href="/public/rate"' in html, "我要评价 needs a destination"
    page = client.get("/public/rate").get_data(as_text=True)
    for way in ("评价平板", "短信", "二维码"):
        assert way in page
    assert 'href="/complaints/new">我要投诉</a>' in client.get("/public/stats").get_data(as_text=True), \
        "the public navigation needs a complaint entry"


def test_how_to_rate_names_the_rating_hotline_only_when_one_is_set(app, client):
    assert "拨打评价电话" not in client.get("/public/rate").get_data(as_text=True), \
        "no voice number configured: the phone way must not be offered"
    app.config["TWILIO_VOICE_NUMBER"] = "+8657112345"
    page = client.get("/public/rate").get_data(as_text=True)
    assert "拨打评价电话" in page and 'href="tel:+8657112345"' in page, "the hotline should be offered with its number"
