"""Bulk writes to the tickets' append-only timeline (``ticket_events``), for batch jobs.

One event at a time goes through ``tickets.service.add_event``; a job that records
hundreds of steps at once (the deadline sweep) builds rows here and writes them in one
statement per chunk.
"""
from __future__ import annotations

from datetime import datetime

from feedback.exchange import ledger
from feedback.extensions import db
from feedback.tickets.models import TicketEvent
from feedback.tickets.workflow import EVENT_LABELS

SYSTEM_ACTOR = "系统"


def event_row(ticket_id: int, kind: str, note: str, *, at: datetime, data: dict) -> dict:
    """One system event of a ticket's timeline as a plain dict for :func:`append_events`."""
    if kind not in EVENT_LABELS:
        raise ValueError(f"unknown timeline event kind {kind!r}: add its label to workflow.EVENT_LABELS")
    return {"ticket_id": ticket_id, "at": at, "actor_id": None, "actor_label": SYSTEM_ACTOR, "kind": kind,
            "note": note, "data": data}


def append_events(rows: list[dict], chunk: int = 1000) -> None:
    """Append event rows made by :func:`event_row` in the caller's transaction; the steps
    reported upward (超期预警, 督办) get their exchange messages in the same transaction."""
    table = TicketEvent.__table__
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        if not any(ledger.step_kind(r["kind"]) for r in part):
            db.session.execute(table.insert(), part)
            continue
        made = db.session.execute(table.insert().returning(table.c.id, table.c.ticket_id, table.c.kind, table.c.at),
                                  part)
        ledger.ticket_steps([tuple(r) for r in made])
