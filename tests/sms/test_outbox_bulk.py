"""The outbox's bulk writer (used by the deadline sweep): rows queued once, opt-outs never bypassed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from feedback.sms import outbox
from feedback.sms.models import OutboundSms


def test_rows_queued_in_bulk_are_written_once_per_dedupe_key(app, db, clock):
    now = clock.now
    rows = [outbox.queued_row("+8613800138000", "【临江】工单 #1 已超期", purpose="staff_notice",
                              dedupe_key="esc:overdue:1", send_after=now + timedelta(hours=7), now=now, ticket_id=None),
            outbox.queued_row("+8613900139000", "【临江】工单 #2 已超期", purpose="staff_notice",
                              dedupe_key="esc:overdue:2", send_after=now, now=now)]
    outbox.enqueue_many(rows)
    outbox.enqueue_many(rows)  # a re-run of the same step
    db.session.commit()
    stored = db.session.scalars(select(OutboundSms).order_by(OutboundSms.dedupe_key)).all()
    assert [m.dedupe_key for m in stored] == ["esc:overdue:1", "esc:overdue:2"]
    assert [m.state for m in stored] == ["queued", "queued"]
    assert stored[0].next_attempt_at == now + timedelta(hours=7)


def test_a_purpose_that_an_opt_out_blocks_cannot_take_the_bulk_path(app, db, clock):
    with pytest.raises(ValueError, match="enqueue"):
        outbox.queued_row("+8613800138000", "邀请", purpose="invitation", dedupe_key="inv:1",
                          send_after=clock.now, now=clock.now)
