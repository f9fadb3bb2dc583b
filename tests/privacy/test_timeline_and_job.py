"""The append-only records hold references, never contact data; the ticket page shows the texts
from their erasable rows until the job erases them; the job's decisions, one by one."""
from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from feedback.audit.models import AuditEvent
from feedback.privacy import service as privacy
from feedback.tickets.models import ERASED_LABEL, Ticket, TicketText
from tests.conftest import login
from tests.privacy.conftest import NAME, NATIONAL
from tests.privacy.test_erasure_reaches_every_copy import copies_left

RETENTION = timedelta(days=181)


def _page(client, ticket_id: int) -> str:
    resp = client.get(f"/console/tickets/{ticket_id}")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_the_timeline_and_the_audit_log_hold_no_contact_data_while_the_page_shows_it_from_erasable_rows(
        app, db, citizen_traces):
    assert copies_left(db.engine, only={"ticket_events", "audit_events"}) == []
    rated = db.session.get(Ticket, citizen_traces.rated)
    verify = next(e for e in rated.events if e.kind == "verify")
    assert (verify.note, "contact" in verify.data, verify.data["reached"]) == ("", False, True)
    answer = next(e for e in rated.events if e.kind == "note" and e.data.get("channel") == "sms")
    assert answer.note == "群众短信补充差评原因"
    quoted = db.session.scalars(sa.select(TicketText).where(TicketText.event_id == answer.id)).one()
    assert NAME in quoted.body and quoted.erased_at is None

    client = app.test_client()
    login(client, "handler_ga")
    page = _page(client, rated.id)
    assert f"群众短信补充差评原因：窗口让我跑了三趟。我是{NAME}" in page  # the timeline quotes it
    assert f"已回电{NAME}（{NATIONAL}）" in page  # the verification, on the timeline and the card
    assert ERASED_LABEL not in page


def test_after_the_retention_period_the_page_says_what_was_erased(app, db, clock, citizen_traces):
    clock.set(citizen_traces.closed_at + RETENTION)
    summary = privacy.erase_contacts(clock.now)
    assert summary["tickets"] == 3 and summary["photos"] == 2, summary
    assert summary["records"] == 1 and summary["complaints"] == 2, summary
    db.session.remove()

    client = app.test_client()
    login(client, "handler_ga")
    page = _page(client, citizen_traces.rated)
    assert f"群众短信补充差评原因：{ERASED_LABEL}" in page
    assert "回访对象已按保存期限清除" in page
    assert "已回电某某（***），反映属实" in page  # the handler's findings stay, masked
    assert "评价内容</dt><dd>（已按保存期限清除）" in page
    assert NAME not in page and NATIONAL not in page
    page = _page(client, citizen_traces.web_complaint)
    assert 'id="complaint-erased"' in page and "投诉照片" not in page
    assert NAME not in page and NATIONAL not in page


def test_a_ticket_closed_less_than_the_retention_period_ago_keeps_everything(app, db, clock, citizen_traces):
    clock.set(citizen_traces.closed_at + timedelta(days=179))
    summary = privacy.erase_contacts(clock.now)
    assert (summary["tickets"], summary["texts"], summary["photos"]) == (0, 0, 0), summary
    db.session.remove()
    assert all(p.is_file() for p in citizen_traces.photo_files)
    rated = db.session.get(Ticket, citizen_traces.rated)
    assert rated.callback_contact == NAME and rated.contact_erased_at is None
    assert NAME in rated.evaluation.comment


def test_the_job_claims_each_ticket_once_and_audits_its_counts(app, db, clock, citizen_traces):
    clock.set(citizen_traces.closed_at + RETENTION)
    first = privacy.erase_contacts(clock.now)
    again = privacy.erase_contacts(clock.now + timedelta(hours=1))
    assert first["tickets"] == 3
    assert (again["tickets"], again["texts"], again["photos"], again["records"]) == (0, 0, 0, 0), again
    audits = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "privacy.contact_erasure")).all()
    assert [a.detail["tickets"] for a in audits] == [3]
    erased_at = db.session.scalars(sa.select(Ticket.contact_erased_at)).all()
    assert erased_at and all(at == clock.now for at in erased_at)


def test_handlers_text_keeps_its_facts_with_numbers_and_known_names_masked():
    masked = privacy.mask_personal(
        "已回电李雪梅女士（138-0013-8000），身份证 11010519491231002X，李雪梅反映属实；联系人：本人",
        ["李雪梅", "本人", None, "李"])
    assert masked == "已回电某某女士（***），身份证 ***，某某反映属实；联系人：本人"
    assert privacy.mask_personal(None, ["李雪梅"]) is None
