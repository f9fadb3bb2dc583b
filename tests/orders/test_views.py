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


def test_an_order_on_a_closed_ticket_is_refused_on_the_ticket_page(app, db, city, make_ticket):
    from feedback.tickets import service as t
    from tests.conftest import walk_to

    ticket = walk_to(make_ticket(), "replied", city.users)
    t.rate_handling(ticket, "satisfied", "link")
    db.session.commit()
    assert not ticket.is_open
    client = app.test_client()
    login(client, "super")
    page = client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert "转为督办单" not in page  # no button on a closed ticket
    resp = client.post(f"/console/orders/from-ticket/{ticket.id}", data={
        "csrf_token": csrf_from(page), "content": "请书面报告", "due_working_days": "3"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/console/tickets/{ticket.id}")
    shown = client.get(f"/console/tickets/{ticket.id}").get_data(as_text=True)
    assert f"工单 #{ticket.id} 已办结，不能再下发督办单" in shown
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SupervisionOrder)) == 0


def test_a_unit_outside_the_issuers_scope_is_refused_on_the_console(app, db, city, make_user, make_ticket):
    make_user("supervisor", departments=[city.parent], username="super_ga")  # 市公安局 and below
    foreign = make_ticket(window=city.other_window)  # 市场监管局's
    db.session.commit()
    client = app.test_client()
    login(client, "super_ga")
    page = client.get("/console/orders/new").get_data(as_text=True)
    assert f'<option value="{city.child.id}"' in page and f'<option value="{city.other.id}"' not in page  # scope
    token = csrf_from(page)
    resp = client.post("/console/orders/new", data={"csrf_token": token, "department_id": str(city.other.id),
                                                     "content": "请报告窗口排队情况", "due_working_days": "5"})
    assert resp.status_code == 403 and "“市场监管局”不在您的督办范围内" in resp.get_data(as_text=True)
    for odd in ("999999", "0", "99999999999999999999"):
        resp = client.post("/console/orders/new", data={"csrf_token": token, "department_id": odd,
                                                         "content": "请报告", "due_working_days": "5"})
        assert resp.status_code == 422 and "没有这个部门" in resp.get_data(as_text=True), odd
    resp = client.post(f"/console/orders/from-ticket/{foreign.id}", data={
        "csrf_token": token, "content": "请书面报告", "due_working_days": "3"}, follow_redirects=True)
    assert resp.status_code == 200 and "“市场监管局”不在您的督办范围内" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SupervisionOrder)) == 0


def _csv_rows(resp) -> list[list[str]]:
    import csv
    import io

    assert resp.status_code == 200 and resp.mimetype == "text/csv", resp.status_code
    assert "attachment" in resp.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))


def test_each_order_list_downloads_as_csv_and_xlsx_scoped_masked_and_formula_safe(app, db, city):
    import io
    from datetime import datetime, timezone

    from openpyxl import load_workbook

    from feedback.orders import service as orders

    boss = city.users.supervisor
    early = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)  # due long before the clock's 11-23
    evil = '=HYPERLINK("http://evil.example","点此")'
    own = orders.issue_order(actor=boss, content=evil, due_working_days=5, department=city.child)
    answered = orders.issue_order(actor=boss, content="请报告整改情况，群众电话 13800138000", due_working_days=5,
                                  department=city.child, now=early)
    orders.answer_order(answered, city.users.handler2, text="已整改，联系 13800138000 回访")
    foreign = orders.issue_order(actor=boss, content="请报告窗口排队情况", due_working_days=5, department=city.other,
                                 now=early)
    db.session.commit()

    handler = app.test_client()
    login(handler, "handler_hz")  # 户政支队: sees its two orders, never 市场监管局's
    page = handler.get("/console/orders?list=all").get_data(as_text=True)
    for fmt in ("csv", "xlsx"):
        assert f'href="/console/orders/export.{fmt}?list=all"' in page, fmt
    rows = _csv_rows(handler.get("/console/orders/export.csv?list=all"))
    assert rows[0] == list(orders.EXPORT_HEADERS)
    assert sorted(r[0] for r in rows[1:]) == sorted([own.number, answered.number]), "a handler gets their orders only"
    by_number = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert by_number[own.number]["督办内容"] == "'" + evil, "a formula is written as text"
    late = by_number[answered.number]
    assert (late["状态"], late["逾期答复"]) == ("已答复", "是")  # due 11-09, answered 11-23
    assert "13800138000" not in "".join(rows[0] + [c for r in rows[1:] for c in r]), "phone numbers are masked"
    assert [r[0] for r in _csv_rows(handler.get("/console/orders/export.csv?list=open"))[1:]] == [own.number]
    assert [r[0] for r in _csv_rows(handler.get("/console/orders/export.csv?list=overdue"))[1:]] == []
    assert [r[0] for r in _csv_rows(handler.get("/console/orders/export.csv?list=nope"))[1:]] == [own.number]
    other = app.test_client()
    login(other, "handler_scj")
    assert [r[0] for r in _csv_rows(other.get("/console/orders/export.csv?list=all"))[1:]] == [foreign.number]

    book = handler.get("/console/orders/export.xlsx?list=answered")
    assert book.status_code == 200 and "attachment" in book.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(book.data)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0] == list(orders.EXPORT_HEADERS) and [r[0] for r in values[1:]] == [answered.number]
    assert "13800138000" not in str(values)
    cells = {row[0].value: row for row in load_workbook(io.BytesIO(
        handler.get("/console/orders/export.xlsx?list=open").data)).active.iter_rows(min_row=2)}
    content = cells[own.number][orders.EXPORT_HEADERS.index("督办内容")]
    assert content.value == evil and content.data_type == "s", "a formula is stored as text"

    supervisor = app.test_client()
    login(supervisor, "super")
    overdue = _csv_rows(supervisor.get("/console/orders/export.csv?list=overdue"))
    assert [(r[0], r[9]) for r in overdue[1:]] == [(foreign.number, "已超期")]
    assert len(_csv_rows(supervisor.get("/console/orders/export.csv?list=all"))) == 4
    assert app.test_client().get("/console/orders/export.csv").status_code == 302  # to the login page
    clerk = app.test_client()
    login(clerk, "staff_ga01")
    assert clerk.get("/console/orders/export.xlsx").status_code == 403
