"""Tell the responsible department's handlers of every new bad-review or complaint ticket.

Written in the ticket's own transaction (an ``after_flush`` hook on the session, so every way
a ticket is opened — tablet, link, SMS, phone, complaint form, API — is covered and a rolled
back opening tells nobody); a ticket moved to another department is new to its handlers.
Recipients are those of the deadline sweep: the handlers assigned to the ticket's department
or, if none, to its nearest ancestor with some; a complaint still in triage (no department)
goes to the supervisors. Nobody is told of a ticket on their own rating, and a department
whose only handler is the rated staff member passes it up. Delivery follows the console's
rule: shown from the next working-hours moment.
"""
from __future__ import annotations

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from feedback.clock import format_local, utcnow
from feedback.tickets.models import Ticket

KIND = "new_ticket"


def title_prefix(source: str, *, moved: bool) -> str:
    """The notification's title before the ticket's id (evaluations/quick_ticket.py writes it too)."""
    what = "差评工单" if source == "evaluation" else "投诉工单"
    return f"{'转来' if moved else '新'}{what} #"


def _title(ticket) -> str:
    moved = inspect(ticket).persistent and inspect(ticket).attrs.department_id.history.deleted
    return f"{title_prefix(ticket.source, moved=bool(moved))}{ticket.id}"


def body_text(ticket) -> str:
    """The notification's text: the ticket's deadlines (and a ticket still to be assigned)."""
    parts = []
    if ticket.verify_due_at is not None:
        parts.append(f"核实期限 {format_local(ticket.verify_due_at)}")
    if ticket.due_at is not None:
        parts.append(f"答复期限 {format_local(ticket.due_at)}")
    if ticket.department_id is None:
        parts.append("部门不确定，请分办")
    return "；".join(parts)


def notify_new_tickets(session: Session, tickets: list) -> None:
    """Write one notification per recipient of each ticket in ``tickets`` (just inserted)."""
    from feedback.deadlines.service import Recipients  # late: deadlines imports notifications
    from feedback.notifications.models import Notification
    from feedback.notifications.service import next_working_moment
    from feedback.extensions import insert_ignoring_conflicts

    people = Recipients(departments=[t.department_id for t in tickets], assignees=[t.assignee_id for t in tickets])
    rows = []
    deliver: dict = {}
    for t in tickets:
        now = t.created_at or utcnow()
        if now not in deliver:
            deliver[now] = next_working_moment(now)
        for uid, _capacity in people.for_step(t, 0):
            rows.append({"user_id": uid, "ticket_id": t.id, "kind": KIND, "title": _title(t)[:200],
                         "body": body_text(t), "provisional": bool(t.due_provisional), "created_at": now,
                         "deliver_after": deliver[now], "read_at": None,
                         "dedupe_key": f"{KIND}:{t.id}:{uid}"})
    if rows:
        # The session is flushing: write through its connection, not through the session.
        session.connection().execute(insert_ignoring_conflicts(Notification.__table__).values(rows))


@event.listens_for(Session, "after_flush")
def _new_tickets_flushed(session: Session, flush_context) -> None:
    fresh = [obj for obj in session.new if isinstance(obj, Ticket) and obj.is_open]
    # A ticket moved to another department (转办, or a complaint leaving triage) is new to that
    # department's handlers: they are told once too (the attribute history still holds the
    # change during after_flush).
    fresh += [obj for obj in session.dirty if isinstance(obj, Ticket) and obj.is_open
              and obj.department_id is not None and inspect(obj).attrs.department_id.history.deleted]
    if fresh:
        notify_new_tickets(session, fresh)
