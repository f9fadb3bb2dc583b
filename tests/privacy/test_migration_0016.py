"""Migration 0016 on a timeline written by the old code: the citizen's SMS answer moves to an
erasable row, the verification's findings and callback contact leave the events (they are on
the ticket), handlers' notes stay, the erasure job's ticket walk starts over, and the timeline
is append-only again afterwards — on SQLite and PostgreSQL."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import walk_to
from tests.privacy.conftest import NAME
from tests.privacy.test_erasure_reaches_every_copy import copies_left

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0016_erasable_contacts.py"


def _migration():
    spec = importlib.util.spec_from_file_location("migration_0016", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_0016_moves_contact_copies_off_the_timeline_and_keeps_it_append_only(
        app, db, city, clock, make_ticket):
    from flask_migrate import downgrade, upgrade

    from feedback.tickets.models import TicketEvent, TicketText

    ticket = make_ticket(now=clock.now)
    walk_to(ticket, "accepted", city.users, now=clock.now)
    db.session.commit()
    tid, handler_id = ticket.id, city.users.handler.id
    db.session.remove()
    migration = _migration()
    downgrade(revision=migration.down_revision)

    # What the old code wrote: the findings as the note, the contact in data, the SMS answer quoted.
    events = sa.Table("ticket_events", sa.MetaData(), autoload_with=db.engine)
    with db.engine.begin() as conn:
        at = conn.execute(sa.select(events.c.at).where(events.c.ticket_id == tid)).scalars().first()
        conn.execute(events.insert(), [
            {"ticket_id": tid, "at": at, "actor_id": None, "actor_label": "系统", "kind": "note",
             "note": f"群众短信补充差评原因：我是{NAME}，请回电", "data": {"channel": "sms"}},
            {"ticket_id": tid, "at": at, "actor_id": handler_id, "actor_label": "公安办理员", "kind": "verify",
             "note": f"已回电{NAME}，属实", "data": {"contact": NAME, "reached": True, "on_time": True}},
            {"ticket_id": tid, "at": at, "actor_id": handler_id, "actor_label": "公安办理员", "kind": "note",
             "note": "上午未接通，下午再联系", "data": {}},
        ])
        conn.execute(sa.text("INSERT INTO job_watermarks (name, value, updated_at) SELECT "
                             "'contact_erasure_tickets', at, at FROM ticket_events WHERE ticket_id = :t LIMIT 1"),
                     {"t": tid})
    assert copies_left(db.engine, only={"ticket_events"}), "the old timeline should hold the name"

    upgrade(revision="heads")

    assert copies_left(db.engine, only={"ticket_events", "audit_events"}) == []
    rows = db.session.scalars(sa.select(TicketEvent).where(TicketEvent.ticket_id == tid)
                              .order_by(TicketEvent.id)).all()
    sms, verify, handler_note = rows[-3:]
    assert (sms.note, sms.data) == ("群众短信补充差评原因", {"channel": "sms"})
    quoted = db.session.scalars(sa.select(TicketText).where(TicketText.event_id == sms.id)).one()
    assert (quoted.ticket_id, quoted.body, quoted.erased_at) == (tid, f"我是{NAME}，请回电", None)
    assert sms.shown_note == f"群众短信补充差评原因：我是{NAME}，请回电"
    assert (verify.note, verify.data) == ("", {"reached": True, "on_time": True})
    assert handler_note.note == "上午未接通，下午再联系"
    marks = sa.text("SELECT count(*) FROM job_watermarks WHERE name = 'contact_erasure_tickets'")
    assert db.session.scalar(marks) == 0
    db.session.remove()

    for statement in ("UPDATE ticket_events SET note = 'x'", "DELETE FROM ticket_events"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text(statement))


def test_migration_0016_revises_the_reason_catalogue():
    migration = _migration()
    assert (migration.revision, migration.down_revision) == ("0016_erasable_contacts", "0015_reason_catalogue")
