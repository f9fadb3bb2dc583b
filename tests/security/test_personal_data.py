"""Personal data stays private: after a full scenario (records with phones and names,
ratings by terminal, link and SMS with comments full of personal data, a complaint with a
phone and an ID number, tickets worked, answered, escalated and published), no public
page, public download, feed, public-facing screen or SMS to somebody else contains a
phone number, an ID number or an evaluator's name. And the audit trail cannot be changed
through any code path.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import url_for
from twilio.request_validator import RequestValidator

from feedback.audit import service as audit
from feedback.audit.models import AuditEvent, AuditImmutableError
from feedback.evaluations import links
from tests.conftest import csrf_from
from tests.security.conftest import role_client
from tests.security.test_access_matrix import LOGIN, RULES, url_args

ROOT = Path(__file__).resolve().parents[2]
MOBILE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?!\d)")
TWILIO_TOKEN = "pd-twilio-token"


def id_number(first17: str) -> str:
    """A GB 11643 ID number with its check digit."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights)) % 11]


CITIZENS = {  # phone -> (name, ID number)
    "+8613812345678": ("欧阳建国", id_number("11010519491231002")),
    "+8613987654321": ("司马光明", id_number("44030519880101123")),
    "+8613611112222": ("诸葛晓梅", id_number("32010219750615201")),
    "+8613522223333": ("上官婉清", id_number("51010719900303304")),
}
NAMES = [name for name, _ in CITIZENS.values()]


def flatten(text: str) -> str:
    """Full-width digits and letters as ASCII, so a number cannot hide behind its form."""
    return unicodedata.normalize("NFKC", text)


def findings(text: str, *, allowed_phone: str | None = None, allowed_name: str | None = None) -> list[str]:
    """Phone numbers, ID numbers and evaluators' names in ``text`` (the recipient's own excepted)."""
    text = flatten(text)
    out = []
    for m in MOBILE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))[-11:]
        if allowed_phone is None or "+86" + digits != allowed_phone:
            out.append(f"phone {m.group(0)!r}")
    out += [f"ID number {m.group(0)!r}" for m in ID_NUMBER.finditer(text)]
    out += [f"name {n}" for n in NAMES if n in text and n != allowed_name]
    return out


@pytest.fixture
def app_config(app_config):
    app_config.RATELIMIT_ENABLED = False
    app_config.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    return app_config


def _signed_sms(client, phone: str, body: str, sid: str):
    params = {"MessageSid": sid, "From": phone, "To": "+15005550006", "Body": body}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature("https://feedback.example.gov.cn/sms/inbound", params)
    resp = client.post("/sms/inbound", data=params, headers={"X-Twilio-Signature": signature})
    assert resp.status_code == 200
    return resp


@pytest.fixture
def scenario(app, db, targets, clock, make_user):
    """The full scenario, driven through the HTTP pages a citizen uses and the services the
    console calls; returns the targets."""
    from feedback.evaluations import service as ratings
    from feedback.directory import heads as department_heads
    from feedback.publications import service as pubs
    from feedback.sms import sender
    from feedback.sms import service as sms
    from feedback.statistics import service as stats
    from feedback.tickets import service as t
    from feedback.tickets.models import Ticket

    city, users = targets.ns.city, targets.ns.city.users
    head = make_user("handler", departments=[city.parent], username="head_ga", phone="+8613700000001")
    users.supervisor.phone = "+8613700000002"
    users.handler.phone = "+8613700000003"
    department_heads.set_head("GA", "head_ga")
    db.session.commit()
    phones = list(CITIZENS)

    def record(number, phone, minutes_ago=5):
        name, _ = CITIZENS[phone]
        r = ratings.create_record(record_number=number, service_item_code=city.item.code,
                                  window_code=city.window.code, staff_number=city.staff.staff_number,
                                  completed_at=clock.now - timedelta(minutes=minutes_ago), citizen_phone=phone,
                                  citizen_name=name)
        db.session.commit()
        return r

    def comment_for(phone):
        name, idn = CITIZENS[phone]
        return f"我是{name}，身份证{idn}，电话 {phone[3:6]} {phone[6:10]} {phone[10:]}，窗口让我跑了三趟"

    # 1. A rating by link (/e/<token>) with a bad level, reasons and a comment full of personal data.
    anon = app.test_client()
    r1 = record("PD-1", phones[0])
    url = f"/e/{links.link_token(r1)}"
    token = csrf_from(anon.get(url).get_data(as_text=True))
    resp = anon.post(url, data={"csrf_token": token, "level": "1", "step": "reasons", "reasons": "115",
                                "comment": comment_for(phones[0])}, follow_redirects=True)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    # 2. A complaint on the public form: phone, name and ID number in the text.
    name, idn = CITIZENS[phones[1]]
    token = csrf_from(anon.get("/complaints/new").get_data(as_text=True))
    resp = anon.post("/complaints/new", data={
        "csrf_token": token, "description": f"我叫{name}，身份证号{idn}，手机+86 139-8765-4321，窗口要求额外材料",
        "occurred_at": "2026-11-23T09:30", "contact_phone": "+86 139 8765 4321", "contact_name": name,
        "department": str(city.child.id), "hall": "", "window": str(city.window.id)})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/complaints/received")
    receipt = anon.get(resp.headers["Location"])
    assert receipt.status_code == 200 and 'id="case-number"' in receipt.get_data(as_text=True)
    assert not findings(receipt.get_data(as_text=True)), "the receipt page must not repeat personal data"
    # 3. An SMS invitation answered 1, then the reason with personal data, then a 投诉.
    r3 = record("PD-3", phones[2], minutes_ago=30)
    assert sms.invite(r3, clock.now) is not None
    db.session.commit()
    _signed_sms(anon, phones[2], "1", "SMpd000001")
    _signed_sms(anon, phones[2], comment_for(phones[2]), "SMpd000002")
    _signed_sms(anon, phones[2], f"投诉 {comment_for(phones[2])}", "SMpd000003")
    # 4. A terminal rating (the kiosk JSON) of a record with a name and phone.
    r4 = record("PD-4", phones[3])
    tablet = role_client(app, targets, "tablet")
    resp = tablet.post(f"/terminal/{city.window.code}/ratings", headers={**tablet.api_headers, "Idempotency-Key": "pd-4"},
                       json={"record_id": r4.id, "level": 2, "reasons": [213], "comment": comment_for(phones[3]),
                             "rated_at": clock.now.isoformat()})
    assert resp.status_code == 201, resp.get_data(as_text=True)[:300]
    db.session.expire_all()
    # 5. Every ticket worked as handlers write in real life: names and numbers in the measures
    #    and the reply; answered, rated by the citizen, closed and published. One stays open.
    open_tickets = db.session.scalars(sa.select(Ticket).where(
        Ticket.state.in_(("new", "accepted", "verified")), Ticket.id != targets.ns.ticket.id).order_by(Ticket.id)).all()
    assert len(open_tickets) >= 5
    left_open = open_tickets[-1]
    for ticket in open_tickets[:-1]:
        if ticket.state == "new":
            t.accept(ticket, users.handler)
        if ticket.state == "accepted":
            t.verify(ticket, users.handler, callback_at=None, contact="本人", reached=True,
                     findings="已与办事人电话核实，情况属实")
        phone = t.citizen_phone(ticket) or phones[0]
        # The name the ticket knows (record or complaint form); a complaint by SMS has none,
        # and a name the system cannot know is for the supervisor's review to catch.
        known = [n for n, label in pubs.ticket_names(ticket) if label == "姓名（群众）"]
        cname = known[0] if known else "投诉人"
        t.rectify(ticket, users.handler, outcome="fixed_at_once",
                  measures=f"已致电{cname}（{phone[3:6]}-{phone[6:10]}-{phone[10:]}）核实，对窗口人员王小明批评教育，补充材料清单。")
        t.reply(ticket, users.handler, text=f"{cname}您好：已为您补办，感谢监督。")
        t.rate_handling(ticket, "satisfied", "link")
        db.session.commit()
        pub = pubs.draft_for(ticket, users.supervisor)
        pubs.publish(pub, users.supervisor)
        db.session.commit()
    # 6. The open ticket escalates (texts to the department head and the supervisor).
    from feedback.deadlines import service as deadlines

    deadlines.sweep(clock.now + timedelta(days=20))
    db.session.commit()
    sms.send_invitations(clock.now + timedelta(days=20))
    sender.send_due(clock.now + timedelta(days=20, hours=2))
    stats.refresh(clock.now)
    db.session.commit()
    targets.ns.left_open = left_open
    targets.ns.head = head
    return targets


def _public_urls(app, targets) -> list[str]:
    """Every GET route an anonymous visitor may open, with every object of its kind."""
    from feedback.evaluations.models import ServiceRecord
    from feedback.extensions import db
    from feedback.publications.models import Publication
    from feedback.tickets import service as t
    from feedback.tickets.models import Ticket

    urls = []
    with app.test_request_context():
        for endpoint, rule in RULES.items():
            if rule.method != "GET" and "GET" not in next(r for r in app.url_map.iter_rules()
                                                          if r.endpoint == endpoint).methods:
                continue
            if rule.expect["anonymous"] in (LOGIN, 401, 403, 404) or endpoint.startswith("api.") and \
                    endpoint not in ("api.openapi", "api.problem_doc"):
                continue
            args = url_args(app, targets, endpoint, rule)
            if endpoint == "public.result":
                urls += [url_for(endpoint, pub_id=p) for p in db.session.scalars(sa.select(Publication.id))]
            elif endpoint in ("public.results_data", "public.stats_data"):
                urls += [url_for(endpoint, fmt=f) for f in ("csv", "json")]
            elif endpoint == "rating.link":
                urls += [url_for(endpoint, token=links.link_token(r)) for r in db.session.scalars(sa.select(ServiceRecord))]
            elif endpoint == "handling.rate":
                urls += [url_for(endpoint, token=t.handling_token(x)) for x in db.session.scalars(sa.select(Ticket))]
            elif endpoint == "terminal.case":  # the public case page of every ticket
                from feedback.terminal import tracking

                urls += [url_for(endpoint, token=tracking.tracking_token(x)) for x in db.session.scalars(sa.select(Ticket))]
            else:
                urls.append(url_for(endpoint, **args))
    for name in NAMES[:2]:
        urls += [f"/public/results?q={name}", f"/public/results?q={name[0]}"]
    urls += ["/public/results?q=138", "/public/data/results.csv?from=2026-01&to=2026-12",
             "/public/stats?from=2026-11&to=2026-11", "/public/rankings?month=2026-11"]
    return urls


def test_no_public_page_download_or_feed_shows_a_phone_id_number_or_evaluator_name(app, db, scenario):
    from feedback.publications.models import Publication

    assert db.session.scalar(sa.select(sa.func.count()).select_from(Publication)
                             .where(Publication.state == "published")) >= 5
    client = app.test_client()
    leaks, fetched = [], 0
    for url in _public_urls(app, scenario):
        resp = client.get(url)
        assert resp.status_code < 500, url
        fetched += 1
        body = resp.get_data(as_text=True)
        for echoed in re.findall(r"[?&]q=([^&]+)", url):  # the search box shows what was typed
            body = body.replace(f'value="{echoed}"', "")
        found = findings(body)
        if found:
            leaks.append(f"{url}: {found}")
    # The counter tablet faces the public: its page and its JSON.
    tablet = role_client(app, scenario, "tablet")
    code = scenario.ns.city.window.code
    for url in (f"/terminal/{code}", f"/terminal/{code}/state"):
        resp = tablet.get(url, headers=tablet.api_headers)
        fetched += 1
        if found := findings(resp.get_data(as_text=True)):
            leaks.append(f"{url} (tablet): {found}")
    assert fetched >= 30
    assert not leaks, "\n".join(leaks)
    # The check itself finds what it looks for (the published texts had these before redaction).
    assert findings("已致电欧阳建国（138-1234-5678）")
    assert findings("电话 +86 139 8765 4321")
    assert findings(f"证件{CITIZENS['+8613987654321'][1]}")
    assert findings("１３８１２３４５６７８")


def test_no_sms_carries_somebody_elses_phone_id_number_or_name(app, db, scenario):
    from feedback.accounts.models import User
    from feedback.sms.models import OutboundSms

    texts = db.session.scalars(sa.select(OutboundSms)).all()
    staff_phones = {u.phone for u in db.session.scalars(sa.select(User)) if u.phone}
    to_staff = [m for m in texts if m.to_phone in staff_phones]
    assert to_staff, "the escalation should have texted the head and the supervisor"
    assert len({m.to_phone for m in texts if m.to_phone in CITIZENS}) >= 3
    leaks = []
    for m in texts:
        own_name = CITIZENS.get(m.to_phone, (None,))[0]
        if found := findings(m.body, allowed_phone=m.to_phone, allowed_name=own_name):
            leaks.append(f"SMS {m.id} ({m.purpose}) to {m.to_phone}: {found}: {m.body}")
    assert not leaks, "\n".join(leaks)


def test_the_rated_staff_member_cannot_learn_who_rated_them(app, db, scenario):
    """The window staff account of the rated staff member: no ticket pages, and nothing it can
    open shows an evaluator's full number, ID number or name next to a rating."""
    client = role_client(app, scenario, "window_staff")
    assert client.get(f"/console/tickets/{scenario.ns.left_open.id}").status_code == 403
    leaks = []
    for endpoint, rule in RULES.items():
        if rule.method != "GET" or rule.expect["window_staff"] != 200:
            continue
        with app.test_request_context():
            url = url_for(endpoint, **url_args(app, scenario, endpoint, rule))
        resp = client.get(url)
        if not resp.mimetype.startswith(("text/", "application/json")):
            continue  # the QR code PNG
        body = resp.get_data(as_text=True)
        if found := [f for f in findings(body) if not f.startswith("name")]:
            leaks.append(f"{url}: {found}")
        if any(n in body for n in NAMES) and ("非常不满意" in body or "不满意" in body):
            leaks.append(f"{url}: an evaluator's name beside a bad rating")
    assert not leaks, "\n".join(leaks)


# ---------------------------------------------------------------- the audit trail

def test_audit_rows_cannot_be_changed_through_the_orm_in_any_way(app, db):
    event = audit.record("test.event", note="原始")
    db.session.commit()
    event_id = event.id
    attempts = {
        "attribute change": lambda: setattr(db.session.get(AuditEvent, event_id), "action", "tampered"),
        "delete": lambda: db.session.delete(db.session.get(AuditEvent, event_id)),
        "bulk update": lambda: db.session.execute(sa.update(AuditEvent).values(action="tampered")),
        "bulk delete": lambda: db.session.execute(sa.delete(AuditEvent)),
        "query update": lambda: db.session.query(AuditEvent).update({"action": "tampered"}),
        "query delete": lambda: db.session.query(AuditEvent).delete(),
    }
    for what, attempt in attempts.items():
        with pytest.raises((AuditImmutableError, sa.exc.DBAPIError)):
            attempt()
            db.session.flush()
            db.session.commit()
        db.session.rollback()
        db.session.expire_all()
        row = db.session.get(AuditEvent, event_id)
        assert row is not None, what
        assert row.action == "test.event", what
        assert row.detail == {"note": "原始"}, what


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_trigger_refuses_raw_update_and_delete_on_the_audit_table(app, db):
    audit.record("test.event")
    db.session.commit()
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events",
                      "UPDATE audit_events SET detail = '{}' WHERE id = (SELECT min(id) FROM audit_events)"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text(statement))
    assert db.session.scalar(sa.select(AuditEvent.action)) == "test.event"


def test_no_code_in_the_app_updates_or_deletes_audit_rows():
    """Belt and braces for the paths the ORM guard cannot see (raw SQL strings)."""
    offenders = []
    pattern = re.compile(r"(update|delete\s+from)\s+audit_events|(update|delete)\(\s*AuditEvent", re.I)
    for path in list((ROOT / "feedback").rglob("*.py")) + list((ROOT / "jobs").rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and not line.strip().startswith("#"):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders


def test_no_admin_page_offers_to_change_the_audit_log(app, targets):
    client = role_client(app, targets, "admin")
    html = client.get("/admin/audit").get_data(as_text=True)
    assert "<form" not in html.split("<main", 1)[-1] or 'method="post"' not in html.lower().split("<main", 1)[-1]
    audit_routes = [r for r in app.url_map.iter_rules() if "audit" in r.rule]
    assert all(r.methods <= {"GET", "HEAD", "OPTIONS"} for r in audit_routes), audit_routes
