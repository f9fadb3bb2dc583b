"""Driving a ticket to its end for the disclosure tests (ratings and tickets come from the root factories)."""
from __future__ import annotations

from datetime import datetime

from feedback.tickets import service as tickets


def work(clock, ticket, actor, *, until: str = "closed", reply_at: datetime | None = None,
         verdict: str = "satisfied", measures: str = "补充了材料清单，并对窗口人员进行了业务培训。",
         reply_text: str = "已为您补办，感谢监督。", outcome: str = "rectified", findings: str = "情况属实"):
    """Take ``ticket`` through accept → verify → rectify → reply → the citizen's verdict.

    ``until`` stops early ('accepted', 'rectifying', 'replied'); ``reply_at`` moves the clock
    before the reply (to answer late).
    """
    tickets.accept(ticket, actor)
    if until == "accepted":
        return ticket
    tickets.verify(ticket, actor, callback_at=None, contact="本人", reached=True, findings=findings)
    tickets.rectify(ticket, actor, outcome=outcome, measures=measures)
    if until == "rectifying":
        return ticket
    if reply_at is not None:
        clock.set(reply_at)
    tickets.reply(ticket, actor, text=reply_text)
    if until == "replied":
        return ticket
    tickets.rate_handling(ticket, verdict, "link")
    if ticket.state == "reopened":
        tickets.review(ticket, actor, decision="close", note="已复核，维持办理结果")
    return ticket
