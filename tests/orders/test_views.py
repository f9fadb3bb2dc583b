"""督办单 pages: a level-2 escalation becomes an order in one action, the handler answers it in
the console, lists are scoped, refusals are shown in Chinese."""
from __future__ import annotations

import sqlalchemy as sa

from feedback.orders.models import SupervisionOrder
from tests.conftest import csrf_from, login


def _escalated(db, make_ticket):
    ticket = make_ticket()
    ticket.escalation_level = 2
    db.session.commit()
    return ticket


def test_a_level_two_escalation_becomes_an_order_in_one_action(app, db, city, make_ticket):
    ticket = _escalated(db, make_ticket)
    client = app.test_client()
    login(client, "super")
    page = client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "转为督办单" in page and f"工单 #{ticket.id} 已超过答复期限" in page  # prefilled
    resp = client.post(f"/console/orders/from-ticket/{ticket.id}", data={
        "csrf_token": csrf_from(page), "content": f"工单 #{ticket.id} 超期，请书面报告", "due_working_days": "3"})
    order = db.session.scalars(sa.select(SupervisionOrder)).one()
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/console/orders/{order.id}")
    assert (order.ticket_id, order.department_id, order.source) == (ticket.id, city.child.id, "escalation")
    assert order.number in client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)


def test_no_one_action_button_below_level_two_or_for_handlers(app, db, city, make_ticket):
    ticket = make_ticket()
    client = app.test_client()
    login(client, "super")
    assert "转为督办单" not in client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    escalated = _escalated(db, make_ticket)
    handler = app.test_client()
    login(handler, "handler_ga")
    assert "转为督办单" not in handler.get(f"/console/tickets/{escalated.id}").get_data(as_text=True)
    page = handler.get("/console/orders").get_data(as_text=True)
    assert handler.post(f"/console/orders/from-ticket/{escalated.id}",
                        data={"csrf_token": csrf_from(page), "content": "x", "due_working_days": "3"}).status_code == 403


def test_a_supervisor_issues_to_a_department_and_bad_input_is_refused_in_chinese(app, db, city):
    client = app.test_client()
    login(client, "super")
    page = client.get("/console/orders/new").get_data(as_text=True)
    token = csrf_from(page)
    resp = client.post("/console/orders/new", data={"csrf_token": token, "department_id": str(city.other.id),
                                                     "content": "请报告窗口排队情况", "due_working_days": "31"})
    assert resp.status_code == 422 and "办理时限须为 1 至 30 个工作日" in resp.get_data(as_text=True)
    resp = client.post("/console/orders/new", data={"csrf_token": token, "department_id": str(city.other.id),
                                                     "content": "", "due_working_days": "5"})
    assert resp.status_code == 422 and "请填写督办内容" in resp.get_data(as_text=True)
    resp = client.post("/console/orders/new", data={"csrf_token": token, "department_id": str(city.other.id),
                                                     "content": "请报告窗口排队情况", "due_working_days": "5"})
    assert resp.status_code == 302
    assert db.session.scalars(sa.select(SupervisionOrder.number)).all() == ["督〔2026〕1号"]


def test_the_handler_answers_in_the_console_and_another_department_gets_404(app, db, city):
    from feedback.orders import service as orders

    order = orders.issue_order(actor=city.users.supervisor, content="请报告整改情况", due_working_days=5,
                               department=city.child)
    db.session.commit()
    other = app.test_client()
    login(other, "handler_scj")
    assert other.get(f"/console/orders/{order.id}").status_code == 404
    assert "督〔2026〕1号" not in other.get("/console/orders?list=all").get_data(as_text=True)

    handler = app.test_client()
    login(handler, "handler_hz")
    listing = handler.get("/console/orders").get_data(as_text=True)
    assert "督〔2026〕1号" in listing
    page = handler.get(f"/console/orders/{order.id}").get_data(as_text=True)
    assert "提交书面答复" in page
    resp = handler.post(f"/console/orders/{order.id}/answer", data={"csrf_token": csrf_from(page), "text": " "})
    assert resp.status_code == 422 and "请填写书面答复" in resp.get_data(as_text=True)
    resp = handler.post(f"/console/orders/{order.id}/answer",
                        data={"csrf_token": csrf_from(page), "text": "已增设导办岗位"})
    assert resp.status_code == 302
    db.session.refresh(order)
    assert order.status == "answered"
    assert "督〔2026〕1号" in handler.get("/console/orders?list=answered").get_data(as_text=True)

    supervisor = app.test_client()
    login(supervisor, "super")
    page = supervisor.get(f"/console/orders/{order.id}").get_data(as_text=True)
    assert "已增设导办岗位" in page and "已答复" in page


def test_odd_list_names_and_pages_fall_back_quietly(app, db, city):
    client = app.test_client()
    login(client, "super")
    for url in ("/console/orders?list=nope", "/console/orders?page=-3", "/console/orders?page=abc&list=all"):
        assert client.get(url).status_code == 200
