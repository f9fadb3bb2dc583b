"""督办单 rules: issuing on a ticket or a department, numbering, refusals, answers in scope,
withdrawal, the month's orders and the exchange message of each step."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from feedback.audit.models import AuditEvent
from feedback.calendar.days import add_working_days
from feedback.exchange.mapping import payloads
from feedback.exchange.models import ExchangeMessage
from feedback.orders import service as orders
from feedback.orders.models import SupervisionOrder
from feedback.tickets.models import TicketEvent
from tests.conftest import walk_to
from tests.orders.conftest import bj


def _issue(city, **kw):
    kw.setdefault("actor", city.users.supervisor)
    kw.setdefault("content", "请于期限内书面报告整改情况")
    kw.setdefault("due_working_days", 3)
    if "ticket" not in kw:
        kw.setdefault("department", city.child)
    return orders.issue_order(**kw)


def test_an_order_on_a_ticket_goes_to_its_department_with_a_working_day_deadline(db, city, clock, make_ticket):
    ticket = make_ticket()
    order = _issue(city, ticket=ticket, now=clock.now)
    db.session.commit()
    assert order.number == "督〔2026〕1号"
    assert (order.ticket_id, order.department_id, order.status, order.source) == (ticket.id, city.child.id,
                                                                                 "open", "manual")
    assert order.due_at == add_working_days(clock.now, 3).due_at  # Thu 2026-11-26 23:59:59 Beijing
    assert order.due_at == bj(2026, 11, 26, 23, 59, 59)
    assert order.remind_at == bj(2026, 11, 26)
    event = db.session.scalars(sa.select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                            TicketEvent.kind == "order_issued")).one()
    assert "督〔2026〕1号" in event.note
    audit = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "orders.issue")).one()
    assert audit.actor_label == "super" and audit.detail["number"] == "督〔2026〕1号"
    assert order in orders.orders_for_ticket(ticket.id)


def test_an_order_on_a_department_has_no_ticket(db, city, clock):
    order = _issue(city, department=city.other, now=clock.now)
    assert order.ticket_id is None and order.department_id == city.other.id


def test_numbers_are_sequential_and_unique_per_year(db, city, clock):
    numbers = [_issue(city, now=clock.now).number for _ in range(3)]
    assert numbers == ["督〔2026〕1号", "督〔2026〕2号", "督〔2026〕3号"]
    # The local year decides: 2027-01-01 00:30 Beijing is still 2026 in UTC.
    assert _issue(city, now=bj(2027, 1, 4, 0, 30)).number == "督〔2027〕1号"
    assert _issue(city, now=bj(2026, 12, 31, 23, 0)).number == "督〔2026〕4号"
    db.session.commit()
    rows = db.session.execute(sa.select(SupervisionOrder.year, SupervisionOrder.seq)).all()
    assert len(rows) == len(set(rows)) == 5


def test_an_order_on_a_closed_ticket_is_refused(db, city, clock, make_ticket):
    from feedback.tickets import service as t

    ticket = walk_to(make_ticket(), "replied", city.users)
    t.rate_handling(ticket, "satisfied", "link")
    db.session.commit()
    with pytest.raises(orders.OrderOnClosedTicketError) as err:
        _issue(city, ticket=ticket)
    assert err.value.code == "order-on-closed-ticket"
    assert "已办结" in err.value.message


def test_a_unit_outside_the_issuers_scope_is_refused(db, city, make_user):
    district = make_user("supervisor", departments=[city.parent], username="super_ga")
    db.session.commit()
    assert _issue(city, actor=district, department=city.child).department_id == city.child.id  # below GA
    with pytest.raises(orders.OrderOutOfScopeError) as err:
        _issue(city, actor=district, department=city.other)
    assert "不在您的督办范围内" in err.value.message and err.value.code == "order-out-of-scope"
    with pytest.raises(orders.OrderOutOfScopeError):  # a handler issues no orders
        _issue(city, actor=city.users.handler, department=city.child)


@pytest.mark.parametrize("kw, message", [
    ({"content": "  "}, "请填写督办内容"),
    ({"due_working_days": 0}, "办理时限须为 1 至 30 个工作日"),
    ({"due_working_days": 31}, "办理时限须为 1 至 30 个工作日"),
    ({"due_working_days": "三"}, "办理时限须为整数个工作日"),
    ({"department": None}, "请选择督办的工单或部门"),
])
def test_empty_content_and_a_due_out_of_range_are_refused_in_chinese(db, city, kw, message):
    with pytest.raises(orders.OrderInputError) as err:
        _issue(city, **kw)
    assert message in err.value.message
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SupervisionOrder)) == 0


def test_a_handler_of_the_department_or_above_answers_and_others_are_refused(db, city, clock):
    users = city.users
    order = _issue(city, now=clock.now)
    with pytest.raises(orders.OrderOutOfScopeError):
        orders.answer_order(order, users.other, text="不是我们的")
    with pytest.raises(orders.OrderOutOfScopeError):
        orders.answer_order(order, users.supervisor, text="督查不答复")
    with pytest.raises(orders.OrderInputError):
        orders.answer_order(order, users.handler2, text=" ")
    assert orders.can_answer(order, users.handler) and orders.can_answer(order, users.handler2)
    assert not orders.can_answer(order, users.other)
    orders.answer_order(order, users.handler2, text="已整改：增设引导岗", now=bj(2026, 11, 24, 9))
    assert (order.status, order.answer, order.answered_by_id) == ("answered", "已整改：增设引导岗", users.handler2.id)
    assert not order.answered_late
    with pytest.raises(orders.OrderStateError):
        orders.answer_order(order, users.handler, text="再答一次")
    with pytest.raises(orders.OrderStateError):
        orders.withdraw_order(order, users.supervisor, reason="已答复")
    actions = db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.action.like("orders.%"))).all()
    assert sorted(actions) == ["orders.answer", "orders.issue"]


def test_a_handler_sees_only_his_departments_orders(db, city, clock):
    mine, theirs = _issue(city, now=clock.now), _issue(city, department=city.other, now=clock.now)
    assert orders.get_for_user(mine.id, city.users.handler) is mine
    assert orders.get_for_user(theirs.id, city.users.handler) is None
    assert orders.get_for_user(theirs.id, city.users.supervisor) is theirs
    listed = db.session.scalars(orders.list_statement(city.users.handler, "all")).all()
    assert listed == [mine]


def test_a_supervisor_withdraws_an_order_with_a_reason(db, city, clock):
    order = _issue(city, now=clock.now)
    with pytest.raises(orders.OrderInputError):
        orders.withdraw_order(order, city.users.supervisor, reason="")
    with pytest.raises(orders.OrderOutOfScopeError):
        orders.withdraw_order(order, city.users.handler, reason="不想办")
    orders.withdraw_order(order, city.users.supervisor, reason="重复下发")
    assert order.status == "withdrawn" and order.next_check_at is None
    assert db.session.scalar(sa.select(AuditEvent.action).where(AuditEvent.action == "orders.withdraw"))


def test_the_lists_split_open_overdue_and_answered(db, city, clock):
    first, second, third = (_issue(city, now=clock.now) for _ in range(3))
    orders.answer_order(third, city.users.handler, text="已办", now=clock.now)
    later = bj(2026, 11, 27, 9)  # after the deadline, before any sweep marked them
    assert db.session.scalars(orders.list_statement(city.users.supervisor, "open", later)).all() == []
    assert db.session.scalars(orders.list_statement(city.users.supervisor, "overdue", later)).all() == [first, second]
    assert db.session.scalars(orders.list_statement(city.users.supervisor, "answered", later)).all() == [third]
    assert orders.counts(city.users.supervisor, later) == {"open": 0, "overdue": 2, "answered": 1, "withdrawn": 0,
                                                           "all": 3}


def test_orders_for_month_takes_the_local_month(db, city):
    _issue(city, now=bj(2026, 10, 31, 23, 30))  # October in Beijing, still October in UTC
    nov = _issue(city, now=bj(2026, 11, 1, 0, 30))  # November in Beijing, October 31 in UTC
    dec = _issue(city, now=bj(2026, 12, 1, 9))
    assert orders.orders_for_month("2026-11") == [nov]
    assert orders.orders_for_month("2026-12") == [dec]
    assert orders.orders_for_month("2027-01") == []
    with pytest.raises(orders.OrderInputError):
        orders.orders_for_month("2026-13")


def test_each_step_is_an_exchange_message_whose_monitor_number_is_the_orders(db, city, clock, make_ticket):
    ticket = make_ticket()
    order = _issue(city, ticket=ticket, now=clock.now)
    orders.answer_order(order, city.users.handler, text="已整改，联系人 13812345678", now=bj(2026, 11, 24, 9))
    db.session.commit()
    messages = db.session.scalars(sa.select(ExchangeMessage).where(ExchangeMessage.kind == "supervision_order")
                                  .order_by(ExchangeMessage.id)).all()
    assert [m.subject_key for m in messages] == [f"ORD-{order.id}-issued", f"ORD-{order.id}-answered"]
    assert messages[1].depends_on == messages[0].subject_key
    built = payloads("supervision_order", messages)
    issued, answered = built[messages[0].message_id], built[messages[1].message_id]
    assert issued["monitorNo"] == answered["monitorNo"] == "督〔2026〕1号"
    assert (issued["step"], answered["step"], issued["warnType"], issued["ticketNo"]) == (
        "issued", "answered", "2", str(ticket.id))
    assert issued["dueTime"] == "20261126235959"
    assert "13812345678" not in answered["feedbackContent"]  # masked like every free text
    assert answered["feedbackTime"] == "20261124090000"


def test_table_11_lists_the_orders_of_the_range_beside_the_ticket_steps(db, city, clock):
    import json

    from feedback.exchange.datasets import export_dataset

    order = _issue(city, now=clock.now)
    orders.answer_order(order, city.users.handler2, text="已办", now=bj(2026, 11, 24, 9))
    _issue(city, now=bj(2026, 12, 2, 9))  # outside the range
    db.session.commit()
    out = json.loads(export_dataset("supervision", bj(2026, 11, 1).date(), bj(2026, 11, 30).date(), "json",
                                    tz="Asia/Shanghai"))
    assert [item["监察编号"] for item in out["items"]] == ["督〔2026〕1号"]
    item = out["items"][0]
    assert (item["监察预警类型代码"], item["监察规则编号"], item["责任部门"]) == ("2", "R-ORDER", "户政支队")
    assert item["督办发出时间"] == "20261123T100000" and item["状态产生时间"] == "20261124T090000"
    assert "已答复" in item["监察结果描述"]
