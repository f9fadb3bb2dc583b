"""/admin/exchange in a real browser: an administrator watches messages go up to the real
fake gateway, finds a refused one in the error log, re-pushes it, pauses and resumes, and
queues a 补报 — on a tablet and on a phone."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.support.gateway import APP_KEY, APP_SECRET, start_gateway

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", ["tablet", "phone"], indirect=True)
def test_an_administrator_follows_the_ledger_re_pushes_a_refused_record_and_pauses(page, live_server, db, city,
                                                                                   make_evaluation, clock):
    from feedback.exchange import pusher

    with start_gateway() as gateway:
        live_server.app.config.update(EXCHANGE_ADAPTER="national-json", EXCHANGE_URL=gateway.url,
                                      EXCHANGE_APP_KEY=APP_KEY, EXCHANGE_APP_SECRET=APP_SECRET)
        city.item.implementation_code = "113416000000000000A3341600001"
        db.session.commit()
        refused = make_evaluation(level=1, reasons=[115], comment="态度差，我的电话13800138000")
        make_evaluation(level=5)
        make_evaluation(level=4, window=city.other_window)  # a local item: never reported
        gateway.control(refuse=[f"city-REC-{refused.service_record_id}"])
        pusher.push(clock.now)

        log_in(page, "boss")
        page.get_by_role("navigation", name="管理").get_by_role("link", name="数据上报").click()
        expect(page.get_by_role("heading", name="数据上报（省级平台）", level=1)).to_be_visible()
        expect(page.locator("#exchange-adapter")).to_have_text("national-json")
        expect(page.locator("#total-acknowledged")).to_have_text("2")
        expect(page.locator("#total-failed")).to_have_text("2")  # the refused record and its rating behind it
        expect(page.locator("#total-skipped")).to_have_text("2")
        row = page.locator("#exchange-days tbody tr[data-kind='record']")
        expect(row.locator("td")).to_have_text(["2026-11-23", "办件", "3", "1", "1", "0", "1", ""])

        page.get_by_label("状态").select_option(label="失败")
        page.get_by_role("button", name="查询").click()
        failed = page.locator("#exchange-messages tbody tr")
        expect(failed).to_have_count(2)
        record_row = page.locator("#exchange-messages tr", has_text=f"city-REC-{refused.service_record_id}")
        expect(record_row).to_contain_text("省平台拒收：数据校验不通过")
        record_row.get_by_role("link").click()
        expect(page.locator("#message-status")).to_have_text("失败")
        expect(page.locator("#message-request")).not_to_contain_text("13800138000")
        # Its item, found in the batch's stored request, and the remote's answer about it.
        expect(page.locator("#message-request")).to_contain_text(f'"messageId":"city-REC-{refused.service_record_id}"')
        expect(page.locator("#message-answer")).to_contain_text("rejected")
        gateway.control(refuse=[])
        page.get_by_role("button", name="重推这条消息").click()
        expect(page.locator(".flash-success")).to_contain_text("已重新排队")
        pusher.push(clock.now)
        page.reload()
        expect(page.locator("#total-acknowledged")).to_have_text("4")
        expect(page.locator("#total-failed")).to_have_text("0")
        assert gateway.stats()["duplicates"] == 0

        page.get_by_label("暂停原因").fill("省平台停机维护")
        page.get_by_role("button", name="暂停上报").click()
        expect(page.locator("#exchange-paused")).to_be_visible()
        expect(page.locator("#exchange-overview")).to_contain_text("省平台停机维护")
        assert pusher.push(clock.now)["paused"] is True
        page.get_by_role("button", name="恢复上报").click()
        expect(page.locator("#exchange-running")).to_be_visible()

        backfill = page.locator("#backfill-form")
        backfill.get_by_label("开始日期").fill("2026-11-30")
        backfill.get_by_label("结束日期").fill("2026-11-01")
        backfill.get_by_role("button", name="补报").click()
        expect(page.locator(".flash-error")).to_contain_text("开始日期不能晚于结束日期")
        backfill = page.locator("#backfill-form")
        backfill.get_by_label("开始日期").fill("2026-11-01")
        backfill.get_by_label("结束日期").fill("2026-11-30")
        backfill.get_by_role("button", name="补报").click()
        expect(page.locator(".flash-success")).to_contain_text("补报已排队：新增 0 条")
