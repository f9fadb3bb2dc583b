"""The queue's deadline state: one state, one tone, the deadlines behind it in one unit."""
from __future__ import annotations

from datetime import datetime

import pytest

from feedback.tickets import queue


@pytest.mark.parametrize("now,text,tone,lines", [
    ("2026-11-23T10:00:00+08:00", "剩 5 个工作日", "green",
     [("核实期限", "2026-11-24 23:59"), ("答复期限", "2026-11-30 23:59")]),
    ("2026-11-25T10:00:00+08:00", "核实已超期", "red",
     [("核实期限", "2026-11-24 23:59（已过）"), ("答复期限", "2026-11-30 23:59（剩 3 个工作日）")]),
    ("2026-11-30T10:00:00+08:00", "今日到期 · 剩 13 小时", "red",
     [("核实期限", "2026-11-24 23:59（已过）"), ("答复期限", "2026-11-30 23:59")]),
    ("2026-12-02T10:00:00+08:00", "已超期 2 个工作日", "red",
     [("核实期限", "2026-11-24 23:59（已过）"), ("答复期限", "2026-11-30 23:59")]),
])
def test_a_real_name_ticket_reads_as_one_state(make_ticket, now, text, tone, lines):
    ticket = make_ticket()
    state = queue.deadline_state(ticket, datetime.fromisoformat(now))
    assert (state.text, state.tone) == (text, tone)
    assert state.lines == lines, state.lines


def test_an_escalated_ticket_is_red_with_its_level_and_the_reply_countdown_beside_it(make_ticket):
    ticket = make_ticket(citizen_phone=None)
    ticket.escalation_level = 1
    state = queue.deadline_state(ticket, datetime.fromisoformat("2026-11-24T10:00:00+08:00"))
    assert (state.text, state.tone) == ("一级预警", "red")
    assert ("答复期限", "2026-11-30 23:59（剩 4 个工作日）") in state.lines
    assert ("预警", "一级预警（部门负责人）") in state.lines


def test_a_verified_ticket_no_longer_shows_its_verification_deadline(make_ticket, city):
    from feedback.tickets import service as t
    ticket = make_ticket()
    t.accept(ticket, city.users.handler)
    ticket.verified_at = datetime.fromisoformat("2026-11-24T10:00:00+08:00")
    state = queue.deadline_state(ticket, datetime.fromisoformat("2026-11-26T10:00:00+08:00"))
    assert state.text == "剩 2 个工作日" and not state.verify_overdue
    assert [label for label, _ in state.lines] == ["答复期限"]
