"""约谈 and 抽查回访 in a real browser: a supervisor records the talk with a unit ranked last two
months running, and works a re-check whose citizen denies the department's account, which
reopens the ticket with a 督办单."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from feedback.orders.models import SupervisionOrder
from feedback.oversight import rechecks
from feedback.oversight.models import Talk
from feedback.statistics.models import COUNTERS, StatMonthly
from feedback.tickets import service as t
from feedback.tickets.models import Ticket
from tests.browser.conftest import log_in, on_all_backends
from tests.conftest import walk_to

pytestmark = pytest.mark.browser


def stat_row(db, dept, month: str, ratings: int, good: int) -> None:
    counts = dict.fromkeys(COUNTERS, 0)
    counts.update(ratings=ratings, good=good, bad=ratings - good, records=ratings, score_sum=good * 8)
    db.session.add(StatMonthly(unit_kind="department", unit_id=dept.id, month=month, **counts))


@on_all_backends
def test_a_supervisor_records_a_talk_with_a_unit_last_two_months_running(page, live_server, db, city):
    for month in ("2026-09", "2026-10"):
        stat_row(db, city.parent, month, 50, 48)
        stat_row(db, city.child, month, 50, 45)
        stat_row(db, city.other, month, 50, 20)  # 市场监管局: last in September and October
    db.session.commit()

    log_in(page, "super")
    page.get_by_role("link", name="约谈").first.click()
    expect(page.get_by_role("heading", name="约谈", exact=True)).to_be_visible()
    row = page.locator(f'#flagged tr[data-unit="department:{city.other.id}"]')  # last month (October) by default
    expect(row).to_contain_text("市场监管局")
    expect(row.locator(".talk-status")).to_have_text("待约谈")

    form = page.get_by_role("form", name="登记约谈：市场监管局")
    form.get_by_label("约谈日期").fill("2026-11-20")
    form.get_by_label("参加人员").fill("督查局 李局长；市场监管局 张局长")
    form.get_by_label("约谈议定事项").fill("一个月内完成窗口服务整改，每周报送进度")
    form.get_by_label("跟进日期").fill("2026-11-10")  # before the talk: refused, what was typed kept
    form.get_by_role("button", name="登记约谈").click()
    expect(page.locator(".flash-error, [role=alert]").first).to_contain_text("跟进日期应晚于约谈日期")
    form = page.get_by_role("form", name="登记约谈：市场监管局")
    expect(form.get_by_label("参加人员")).to_have_value("督查局 李局长；市场监管局 张局长")
    form.get_by_label("跟进日期").fill("2026-12-20")
    form.get_by_role("button", name="登记约谈").click()

    expect(page.get_by_text("约谈已登记")).to_be_visible()
    expect(row.locator(".talk-status")).to_have_text("已约谈")
    expect(row).to_contain_text("2026-12-20")
    expect(page.get_by_role("form", name="登记约谈：市场监管局")).to_have_count(0)
    db.session.rollback()
    talk = db.session.scalars(sa.select(Talk)).one()
    assert (talk.unit_id, talk.month, talk.recorded_by_id) == (city.other.id, "2026-10", city.users.supervisor.id)


@on_all_backends
def test_a_supervisor_works_a_recheck_that_reopens_a_ticket_with_an_order(page, live_server, db, city, clock,
                                                                          make_ticket):
    closed_at = datetime.fromisoformat("2026-11-18T15:00:00+08:00")
    ticket = make_ticket(now=closed_at - timedelta(days=1))
    walk_to(ticket, "replied", city.users, now=closed_at - timedelta(hours=2))
    t.rate_handling(ticket, "satisfied", "link", now=closed_at)
    db.session.commit()
    rechecks.draw(clock.now)  # the weekly job: last week's closed real-name bad reviews
    db.session.commit()

    log_in(page, "super")
    page.get_by_role("link", name="抽查回访").first.click()
    row = page.locator(f'#pending tr[data-ticket="{ticket.id}"]')
    expect(row).to_contain_text("户政支队")
    row.get_by_role("link", name="回访").click()

    expect(page.locator("#masked-phone")).to_have_text("138****8000")
    page.get_by_role("button", name="显示完整号码").click()
    expect(page.locator("#full-phone")).to_have_text("+8613800138000")

    page.get_by_label("已联系上").check()
    page.get_by_label("不认可（部门说法不属实）").check()
    page.get_by_label("回访情况说明").fill("群众称部门从未回访，窗口问题也未整改")
    page.get_by_role("button", name="提交回访结果").click()

    expect(page.get_by_text("工单已重新打开，已下发督办单")).to_be_visible()
    expect(page.locator("#confirmed")).to_have_text("不认可")
    expect(page.locator("#order-number")).to_contain_text("督〔2026〕")
    expect(page.locator("#ticket-state")).to_have_text("整改中")

    page.get_by_role("link", name="返回抽查回访").click()
    counts = page.locator(f'#recheck-counts tr[data-department="{city.child.id}"]')
    expect(counts.locator("td")).to_have_text(["户政支队", "1", "1", "1", "0", "1"])

    db.session.rollback()
    reopened = db.session.get(Ticket, ticket.id)
    assert reopened.state == "rectifying" and reopened.is_open
    order = db.session.scalars(sa.select(SupervisionOrder).where(SupervisionOrder.ticket_id == ticket.id)).one()
    assert order.source == "recheck"
