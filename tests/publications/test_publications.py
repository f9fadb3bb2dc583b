"""Publishing rectification results: the draft, the personal-data scan, approval, withdrawal."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from feedback.audit.models import AuditEvent
from feedback.publications import service as pubs
from feedback.publications.models import Publication
from feedback.tickets import service as tickets
from tests.conftest import login, post_form
from tests.public.helpers import work

PHONE = "13912345678"
ID_NUMBER = "11010519491231002X"  # a valid GB 11643 checksum
PHONE_RE = re.compile(r"1[3-9]\d[\s-]?\d{4}[\s-]?\d{4}")
ID_RE = re.compile(r"\d{17}[\dXx]")


@pytest.fixture
def closed(db, clock, city, make_ticket):
    """A real-name bad review whose measures and reply name the citizen, the staff and the phone."""
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc))
    ticket = make_ticket(level=1, reasons=[115], citizen_phone=PHONE, citizen_name="李大春")
    clock.set(datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc))
    work(clock, ticket, city.users.supervisor,
         measures=f"已致电李大春（{PHONE}）核实；对窗口人员王小明进行批评教育，补充了材料清单。",
         reply_text="已为您补办户籍迁移，并对窗口人员进行了培训。")
    db.session.commit()
    return ticket


def test_check_digit_decides_what_counts_as_an_id_number():
    assert pubs.valid_id_number(ID_NUMBER)
    assert pubs.valid_id_number("110105194912310029") is False  # wrong check digit
    assert pubs.valid_id_number("11010519491231002") is False


def test_the_scan_finds_phone_numbers_in_any_format_id_numbers_and_the_tickets_names(app, closed):
    text = ("请联系 +86 139-1234-5678 或 139 1234 5678 或 １３９１２３４５６７８；座机 0571-88776655；"
            f"证件 {ID_NUMBER}；无效证件 110105194912310029；办事人李大春，窗口王小明。")
    hits = {(h["kind"], h["masked"]): h["count"] for h in pubs.scan(text, closed)}
    assert hits[("phone", "139****5678")] == 3  # the same number three ways is one hit, counted 3 times
    assert ("phone", "057****6655") in hits
    assert hits[("id_number", "1101**********002X")] == 1
    assert ("name", "李**") in hits
    assert ("name", "王**") in hits
    assert len(hits) == 5  # the invalid ID number is not reported, not even as a phone number


def test_the_draft_is_prefilled_from_the_ticket_without_phone_or_names(db, clock, closed, city):
    pub = pubs.draft_for(closed, city.users.supervisor)
    assert "补充了材料清单" in pub.public_text
    assert "已为您补办户籍迁移" in pub.public_text
    assert PHONE not in pub.public_text
    assert "李大春" not in pub.public_text
    assert "王小明" not in pub.public_text
    assert pub.state == "draft"
    assert pub.open_hits == []
    assert pubs.draft_for(closed, city.users.supervisor).id == pub.id  # one publication per ticket


def test_publish_is_refused_until_every_hit_is_resolved(db, clock, closed, city):
    pub = pubs.draft_for(closed, city.users.supervisor)
    pubs.save_text(pub, "整改完成，回访电话 13912345678，热线 12345，办事人李大春满意。", city.users.supervisor)
    kinds = sorted(h["kind"] for h in pub.open_hits)
    assert kinds == ["name", "phone"]
    with pytest.raises(pubs.UnresolvedHitsError) as exc:
        pubs.publish(pub, city.users.supervisor)
    assert "2 处" in exc.value.message
    assert "139****5678" in exc.value.message
    # Resolved by editing: the phone number is gone from the text.
    pubs.save_text(pub, "整改完成，热线 12345，办事人李大春满意。", city.users.supervisor)
    assert [h["kind"] for h in pub.open_hits] == ["name"]
    assert any(h["kind"] == "phone" and h["status"] == "edited" and not h["present"] for h in pub.hits)
    # Resolved by a reason: marked "not personal data".
    name_hit = pub.open_hits[0]
    with pytest.raises(pubs.ValidationError):
        pubs.mark_not_personal(pub, name_hit["id"], "  ", city.users.supervisor)
    pubs.mark_not_personal(pub, name_hit["id"], "群众书面同意公开", city.users.supervisor)
    assert pub.open_hits == []
    # Putting the phone number back reopens its hit.
    pubs.save_text(pub, "热线 12345，回访 139-1234-5678，办事人李大春满意。", city.users.supervisor)
    assert [h["kind"] for h in pub.open_hits] == ["phone"]
    pubs.save_text(pub, "整改完成，热线 12345，办事人李大春满意。", city.users.supervisor)
    pubs.publish(pub, city.users.supervisor)
    db.session.commit()
    assert pub.state == "published"
    assert pub.approved_by_id == city.users.supervisor.id
    assert pub.department_id == city.child.id
    assert pub.level == 1
    assert pub.reasons == [115]
    assert pub.outcome == "rectified"
    assert pub.on_time is True
    assert pub.handling_rating == "satisfied"
    assert pub.month == "2026-11"
    actions = [a for (a,) in db.session.execute(select(AuditEvent.action).where(
        AuditEvent.object_type == "Publication").order_by(AuditEvent.id))]
    assert actions == ["publication.hit_not_personal", "publication.publish"]
    with pytest.raises(pubs.PublicationStateError):
        pubs.save_text(pub, "改一下", city.users.supervisor)


def test_only_closed_tickets_without_an_upheld_appeal_can_be_published(db, clock, city, make_ticket):
    clock.set(datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc))
    open_ticket = make_ticket(level=2, citizen_phone=None)
    with pytest.raises(pubs.NotEligibleError):
        pubs.draft_for(open_ticket, city.users.supervisor)
    appealed = make_ticket(level=1, reasons=[], citizen_phone=None)
    tickets.appeal(appealed, city.users.handler, reason="恶意差评")  # the department files, a supervisor decides
    tickets.decide_appeal(appealed, city.users.supervisor, upheld=True, note="属实")
    assert appealed.state == "closed"
    with pytest.raises(pubs.NotEligibleError):
        pubs.draft_for(appealed, city.users.supervisor)
    db.session.commit()
    rows, total = pubs.awaiting()
    assert total == 0


def test_withdrawal_is_audited_and_the_public_page_shows_only_that_it_was_withdrawn(db, client, clock, closed, city):
    pub = pubs.draft_for(closed, city.users.supervisor)
    pubs.publish(pub, city.users.supervisor)
    db.session.commit()
    page = client.get(f"/public/results/{pub.id}").get_data(as_text=True)
    assert "补充了材料清单" in page
    clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    with pytest.raises(pubs.ValidationError):
        pubs.withdraw(pub, city.users.supervisor, "")
    pubs.withdraw(pub, city.users.supervisor, "群众要求撤回")
    db.session.commit()
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "publication.withdraw"))
    assert event.detail["reason"] == "群众要求撤回"
    assert event.actor_id == city.users.supervisor.id
    page = client.get(f"/public/results/{pub.id}").get_data(as_text=True)
    assert "已撤回" in page
    assert "2026-11-20" in page
    assert "补充了材料清单" not in page
    assert "群众要求撤回" not in page
    listing = client.get("/public/results").get_data(as_text=True)
    assert "已撤回" in listing
    assert "补充了材料清单" not in listing
    with pytest.raises(pubs.PublicationStateError):
        pubs.withdraw(pub, city.users.supervisor, "再撤一次")


def test_only_supervisors_reach_the_publication_console(db, client, closed, city):
    assert client.get("/console/publications/").status_code == 302  # to the login page
    login(client, city.users.handler.username)
    assert client.get("/console/publications/").status_code == 403


def test_a_supervisor_publishes_through_the_console_and_no_personal_data_reaches_the_public(db, client, closed, city):
    login(client, city.users.supervisor.username)
    listing = client.get("/console/publications/").get_data(as_text=True)
    assert f'data-ticket="{closed.id}"' in listing
    resp = post_form(client, f"/console/publications/ticket/{closed.id}", {}, form_url="/console/publications/")
    assert resp.status_code == 302
    review_url = resp.headers["Location"]
    pub_id = int(review_url.rstrip("/").rsplit("/", 1)[1])
    first = client.get(review_url).get_data(as_text=True)
    assert PHONE not in first
    assert "139****5678" in first  # the ticket's measures are shown masked
    # The supervisor adds an ID number and the phone: approval is refused and the text kept.
    text = f"整改完成。身份证 {ID_NUMBER}，电话 {PHONE}。"
    resp = post_form(client, review_url, {"public_text": text, "action": "publish", "confirm": "yes"},
                     form_url=review_url)
    assert resp.status_code == 302
    page = client.get(review_url).get_data(as_text=True)
    assert "2 处" in page
    assert "待处理" in page
    resp = post_form(client, review_url, {"public_text": "整改完成，已对窗口人员进行培训。", "action": "publish",
                                          "confirm": "yes"}, form_url=review_url)
    assert resp.status_code == 302
    page = client.get(review_url).get_data(as_text=True)
    assert "已批准公示" in page
    assert "已公示" in page
    public_pages = [client.get(u) for u in ("/public/", "/public/results", f"/public/results/{pub_id}",
                                            "/public/data/results.csv", "/public/data/results.json",
                                            "/public/feed.atom")]
    for resp in public_pages:
        body = resp.get_data(as_text=True)
        assert resp.status_code == 200
        assert not PHONE_RE.search(body), resp.request.path
        assert not ID_RE.search(body), resp.request.path
        assert "李大春" not in body
        assert "王小明" not in body
    assert "已对窗口人员进行培训" in public_pages[2].get_data(as_text=True)


def test_publishing_without_the_ticked_confirmation_is_refused_and_nothing_is_published(db, client, closed, city):
    login(client, city.users.supervisor.username)
    resp = post_form(client, f"/console/publications/ticket/{closed.id}", {}, form_url="/console/publications/")
    review_url = resp.headers["Location"]
    pub_id = int(review_url.rstrip("/").rsplit("/", 1)[1])
    page = client.get(review_url).get_data(as_text=True)
    assert 'name="confirm" value="yes" required' in page, "the publish form lacks its 确认公示 checkbox"
    before = db.session.get(Publication, pub_id).public_text
    resp = post_form(client, review_url, {"public_text": "整改完成，已培训窗口人员。", "action": "publish"},
                     form_url=review_url)
    body = resp.get_data(as_text=True)
    assert resp.status_code == 422, "publishing without confirm=yes must be refused"
    assert "请先勾选“确认公示”" in body, "the refusal must say what to do"
    assert "整改完成，已培训窗口人员。" in body, "the typed text must be kept on the refused page"
    db.session.expire_all()
    pub = db.session.get(Publication, pub_id)
    assert pub.state == "draft", "nothing may be published without the confirmation"
    assert pub.public_text == before, "a refused approval stores nothing"
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "publication.publish")) is None
    assert f"/public/results/{pub_id}" not in client.get("/public/results").get_data(as_text=True)
    # Saving (not publishing) needs no confirmation.
    resp = post_form(client, review_url, {"public_text": "整改完成，已培训窗口人员。", "action": "save"},
                     form_url=review_url)
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Publication, pub_id).state == "draft"


def test_the_results_filters_list_only_units_that_have_public_results(db, client, closed, city):
    """A province has thousands of departments and halls: the filter menus list those with results."""
    def menu(html: str, name: str) -> list[str]:
        body = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
        return re.findall(r'<option value="\d+"[^>]*>([^<]*)</option>', body)

    empty = client.get("/public/results").get_data(as_text=True)
    assert menu(empty, "department") == []
    assert menu(empty, "hall") == []
    assert menu(empty, "service_item") == []
    pub = pubs.draft_for(closed, city.users.supervisor)
    pubs.publish(pub, city.users.supervisor)
    db.session.commit()
    listing = client.get("/public/results").get_data(as_text=True)
    assert menu(listing, "department") == ["户政支队"]  # not 市场监管局, which has no result
    assert menu(listing, "hall") == ["市民中心"]
    assert menu(listing, "service_item") == ["户口迁移"]
    pubs.withdraw(pub, city.users.supervisor, "群众要求撤回")
    db.session.commit()
    assert menu(client.get("/public/results").get_data(as_text=True), "department") == ["户政支队"]  # shown as 已撤回
