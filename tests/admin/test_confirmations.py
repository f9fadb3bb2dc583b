"""Irreversible actions need an explicit confirmation on the server too (a page without
JavaScript, or a hand-made POST, cannot skip it); a new account's role is chosen explicitly."""
from __future__ import annotations

import re

import sqlalchemy as sa

from feedback.accounts import service as accounts
from feedback.accounts.models import ApiKey, User
from feedback.directory.models import Window
from feedback.sms.models import OutboundSms
from feedback.tickets import service as t
from feedback.tickets.models import Ticket
from tests.conftest import login, post_form


def test_an_api_key_is_revoked_only_with_the_confirmation(client, db, city):
    key, _ = accounts.create_api_key("市政务服务网", ["ratings:write"])
    db.session.commit()
    login(client, "boss")
    post_form(client, f"/admin/apikeys/{key.id}/revoke", {}, form_url="/admin/apikeys")
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).revoked_at is None, "revoked without 确认吊销"
    post_form(client, f"/admin/apikeys/{key.id}/revoke", {"confirm": "yes"}, form_url="/admin/apikeys")
    db.session.expire_all()
    assert db.session.get(ApiKey, key.id).revoked_at is not None


def test_a_unit_is_deactivated_only_with_the_confirmation_and_reactivated_without(client, db, city):
    login(client, "boss")
    url = f"/admin/directory/windows/{city.window.id}/active"
    resp = post_form(client, url, {"active": "0"}, form_url="/admin/directory/windows/", follow_redirects=True)
    assert "请先勾选“确认停用”" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Window, city.window.id).active is True
    post_form(client, url, {"active": "0", "confirm": "yes"}, form_url="/admin/directory/windows/")
    db.session.expire_all()
    assert db.session.get(Window, city.window.id).active is False
    post_form(client, url, {"active": "1"}, form_url="/admin/directory/windows/")
    db.session.expire_all()
    assert db.session.get(Window, city.window.id).active is True, "reactivating needs no confirmation"


def test_a_new_account_has_no_default_role(client, db, city):
    login(client, "boss")
    page = client.get("/admin/users/new").get_data(as_text=True)
    assert '<option value="">请选择角色</option>' in page
    assert "selected" not in page.split('name="role"')[1].split("</select>")[0], "a role is preselected"
    resp = post_form(client, "/admin/users/new", {"username": "wang5", "display_name": "王五",
                                                  "password": "Abcdef12345!", "active": "y"})
    assert "请选择角色" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(User).where(User.username == "wang5")) is None


def test_the_reply_is_previewed_with_its_length_and_sent_only_when_confirmed(client, db, city, clock, make_ticket):
    ticket = make_ticket()
    t.accept(ticket, city.users.handler)
    t.verify(ticket, city.users.handler, callback_at=clock.now, contact="评价人本人", reached=True, findings="属实")
    t.rectify(ticket, city.users.handler, outcome="fixed_at_once", measures="已整改")
    db.session.commit()
    login(client, "handler_ga")
    text = "您反映的问题已整改。" * 8
    url = f"/console/tickets/{ticket.id}/reply"
    page = post_form(client, url, {"text": text}, form_url=f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert 'id="sms-preview-body"' in page and text in page
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "rectifying"
    assert db.session.scalar(sa.select(sa.func.count(OutboundSms.id)).where(OutboundSms.ticket_id == ticket.id)) == 0
    body = page.split('id="sms-preview-body">')[1].split("</p>")[0]
    assert f"共 <strong>{len(body)}</strong> 个字，按 <strong>{-(-len(body) // 67)}</strong> 条短信发送" in page
    post_form(client, url, {"text": text, "confirm": "yes"}, form_url=f"/console/tickets/{ticket.id}")
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).state == "replied"
    sms = db.session.scalars(sa.select(OutboundSms).where(OutboundSms.ticket_id == ticket.id)).one()
    # The link's signed token carries the moment it was signed (real time): the preview's and the
    # sent text's may differ in those characters only, never in length (the count stays exact).
    link = re.compile(r"/h/[\w.-]+")
    assert len(sms.body) == len(body), "the preview's length differs from the text sent"
    assert link.sub("/h/…", sms.body) == link.sub("/h/…", body), "the preview differs from the text sent"
