"""A bad rating's ticket in the rating's one statement (issue 22; evaluations/quick.py).

The full path opens the ticket through the ORM (``tickets.service.open_for_evaluation``) and
its flush hooks: the ticket with its deadlines and first deadline check, the 'opened' event, the
ticket's statistics change-log row, the new-ticket notifications of its department's handlers;
the rating's ledger message goes in the fast lane and takes its record's pending message with
it. About ten round trips and most of a bad rating's time, on the path that must answer as fast
as a good one. Here the same rows are data-modifying CTEs appended to the rating's statement.

What depends on the calendar is computed here, before the statement, by the same functions
the full path runs (on a ticket object that is never added to the session), once for a
record with a phone (a 回访 deadline too) and once without: the statement picks by the record
it finds. What depends on the rows (the ticket id, the department's handlers) is the
statement's.

The rules copied, each named where it lives:
* the ticket: ``tickets.service.open_for_evaluation`` and ``set_deadlines``; its first check:
  ``deadlines.service.first_check_at`` (the ``before_flush`` hook);
* the event: ``tickets.service.add_event`` ('opened', by 系统; no ledger step);
* the change log: ``statistics.service._changes`` for a new ticket (its row, month of opening);
* the ledger: ``exchange.ledger.rating_given`` for a bad rating (fast lane, ``_promote``: the
  record's message while pending and not being sent);
* the notifications: ``notifications.new_tickets`` with ``deadlines.service.Recipients``
  (step 0): the active handlers of the nearest department up the tree that has any besides
  the accounts of the rated staff member; delivered from the next working-hours moment.
"""
from __future__ import annotations

import json
from datetime import datetime

from feedback.calendar.days import shared_calendar
from feedback.deadlines.service import first_check_at
from feedback.notifications import new_tickets
from feedback.notifications.service import next_working_moment
from feedback.statistics.months import month_of
from feedback.tickets.models import Ticket
from feedback.tickets.service import set_deadlines

# Appended to the rating's statement (rec, ev); the WITH becomes WITH RECURSIVE for ``up``.
SQL = """, ticket AS (
    INSERT INTO tickets (source, evaluation_id, department_id, hall_id, window_id, staff_id, state, is_open,
                         created_at, verify_due_at, reply_due_at, due_at, due_provisional, next_deadline_check_at,
                         escalation_level, reply_count, reopened_count, moved_count)
    SELECT 'evaluation', ev.id, ev.department_id, rec.hall_id, ev.window_id, rec.staff_id, 'new', TRUE, %(now)s,
           CASE WHEN rec.real_name THEN %(verify_due)s::timestamptz END,
           %(reply_due)s::timestamptz, %(reply_due)s::timestamptz,
           CASE WHEN rec.real_name THEN %(provisional_real)s::boolean ELSE %(provisional)s::boolean END,
           CASE WHEN rec.real_name THEN %(check_real)s::timestamptz ELSE %(check)s::timestamptz END, 0, 0, 0, 0
    FROM ev JOIN rec ON TRUE
    RETURNING id
), opened AS (
    INSERT INTO ticket_events (ticket_id, at, actor_id, actor_label, kind, note, data)
    SELECT ticket.id, %(now)s, NULL, '系统', 'opened', '差评自动生成工单', %(event_data)s::json FROM ticket
), ticket_change AS (
    INSERT INTO stat_changes (month, cohort, row_id, department_id, hall_id, window_id, staff_id, service_item_id)
    SELECT %(ticket_month)s, 'tickets', ticket.id, 0, 0, 0, 0, 0 FROM ticket
), promoted AS (
    UPDATE exchange_messages SET lane = 'fast' WHERE id IN (
        SELECT m.id FROM exchange_messages m JOIN rec ON m.subject_key = 'REC-' || rec.id JOIN ev ON TRUE
        WHERE m.status = 'pending' FOR UPDATE OF m SKIP LOCKED)
), up AS (
    SELECT d.id, d.parent_id, 0 AS depth FROM departments d JOIN rec ON d.id = rec.department_id
    UNION ALL
    SELECT d.id, d.parent_id, up.depth + 1 FROM departments d JOIN up ON d.id = up.parent_id WHERE up.depth < 64
), handlers AS (
    SELECT u.id AS user_id, min(up.depth) AS depth
    FROM up JOIN user_departments ud ON ud.department_id = up.id JOIN users u ON u.id = ud.user_id JOIN rec ON TRUE
    WHERE u.active AND u.role = 'handler' AND (rec.staff_id IS NULL OR u.staff_id IS DISTINCT FROM rec.staff_id)
    GROUP BY u.id
), told AS (
    SELECT h.user_id FROM handlers h WHERE h.depth = (SELECT min(depth) FROM handlers)
), notified AS (
    INSERT INTO notifications (user_id, ticket_id, kind, title, body, provisional, created_at, deliver_after,
                               read_at, dedupe_key)
    SELECT told.user_id, ticket.id, %(kind)s::text, %(title)s::text || ticket.id,
           CASE WHEN rec.real_name THEN %(note_real)s::text ELSE %(note)s::text END,
           CASE WHEN rec.real_name THEN %(provisional_real)s::boolean ELSE %(provisional)s::boolean END,
           %(now)s, %(deliver_after)s::timestamptz, NULL, %(kind)s::text || ':' || ticket.id || ':' || told.user_id
    FROM told JOIN ticket ON TRUE JOIN rec ON TRUE
    ORDER BY told.user_id
    ON CONFLICT DO NOTHING
)"""


def params(level: int, channel: str, now: datetime) -> dict:
    """The statement's parameters that depend on the calendar and the rating, not on its rows."""
    calendar = shared_calendar()
    plans = {}
    for real_name in (False, True):
        # A ticket as open_for_evaluation makes it, never added to the session: the deadlines,
        # the first check and the notification's text come from the full path's own functions.
        ticket = Ticket(source="evaluation", state="new", is_open=True, created_at=now, department_id=0)
        set_deadlines(ticket, now, verify=real_name)
        ticket.next_deadline_check_at = first_check_at(ticket, calendar)
        plans[real_name] = ticket
    anonymous, real = plans[False], plans[True]
    return {
        "verify_due": real.verify_due_at, "reply_due": anonymous.reply_due_at,
        "provisional": bool(anonymous.due_provisional), "provisional_real": bool(real.due_provisional),
        "check": anonymous.next_deadline_check_at, "check_real": real.next_deadline_check_at,
        "event_data": json.dumps({"level": level, "channel": channel}, ensure_ascii=False),
        "ticket_month": month_of(now),
        "kind": new_tickets.KIND, "title": new_tickets.title_prefix("evaluation", moved=False),
        "note": new_tickets.body_text(anonymous), "note_real": new_tickets.body_text(real),
        "deliver_after": next_working_moment(now, calendar),
    }
