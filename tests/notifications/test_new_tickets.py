"""Every new bad-review or complaint ticket tells the responsible department's handlers, in the
transaction that opens the ticket."""
from __future__ import annotations

import sqlalchemy as sa

from feedback.notifications import service as notifications
from feedback.notifications.models import Notification


def _notes(db, ticket_id):
    db.session.expire_all()
    return db.session.scalars(sa.select(Notification).where(Notification.ticket_id == ticket_id)
                              .order_by(Notification.user_id)).all()


def test_a_bad_review_ticket_notifies_the_departments_handlers_and_nobody_else(db, city, make_ticket):
    ticket = make_ticket()
    notes = _notes(db, ticket.id)
    assert [(n.user_id, n.kind) for n in notes] == [(city.users.handler2.id, "new_ticket")], \
        f"expected one 新工单 notification for 户政支队's handler, got {[(n.user_id, n.kind) for n in notes]}"
    note = notes[0]
    assert note.title == f"新差评工单 #{ticket.id}", note.title
    assert "答复期限 2026-11-30 23:59" in note.body, note.body
    assert "13800138000" not in note.body + note.title, "a notification must not carry the citizen's number"
    assert notifications.unread_count(city.users.handler2) == 1
    assert notifications.unread_count(city.users.other) == 0, "another department's handler was told"


def test_a_complaint_ticket_notifies_its_departments_handlers(db, city, make_ticket):
    ticket = make_ticket(source="complaint")
    notes = _notes(db, ticket.id)
    assert [n.user_id for n in notes] == [city.users.handler2.id], [n.user_id for n in notes]
    assert notes[0].title == f"新投诉工单 #{ticket.id}"


def test_a_complaint_in_triage_notifies_the_supervisors(db, city, make_ticket):
    ticket = make_ticket(source="complaint", department=None)
    notes = _notes(db, ticket.id)
    assert [n.user_id for n in notes] == [city.users.supervisor.id], [n.user_id for n in notes]
    assert "请分办" in notes[0].body


def test_a_rolled_back_opening_tells_nobody(db, city, make_evaluation):
    from feedback.tickets.models import Ticket
    before = db.session.scalar(sa.select(sa.func.count(Notification.id)))
    evaluation = make_evaluation(level=5)
    from feedback.tickets import service as tickets
    evaluation.level = 1
    tickets.open_for_evaluation(evaluation)
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == before + 1, \
        "the notification is written in the flush that inserts the ticket"
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == before
    assert db.session.scalar(sa.select(sa.func.count(Ticket.id))) == 0


def test_a_ticket_opened_at_night_is_shown_from_the_next_working_morning(db, city, clock, make_ticket):
    clock.set("2026-11-23T14:30:00+00:00")  # 22:30 Beijing, Monday
    ticket = make_ticket()
    note = _notes(db, ticket.id)[0]
    assert note.deliver_after.isoformat().startswith("2026-11-24T01:00"), note.deliver_after  # 09:00 Beijing


def test_a_complaint_leaving_triage_tells_the_receiving_departments_handlers(db, city, make_ticket):
    from feedback.tickets import service as tickets
    ticket = make_ticket(source="complaint", department=None)
    tickets.move(ticket, city.users.supervisor, city.other, note="属市场监管局职责")
    db.session.commit()
    notes = _notes(db, ticket.id)
    assert sorted((n.user_id, n.title) for n in notes) == sorted([
        (city.users.other.id, f"转来投诉工单 #{ticket.id}"), (city.users.supervisor.id, f"新投诉工单 #{ticket.id}")]), \
        [(n.user_id, n.title) for n in notes]


def test_with_no_handler_of_its_own_the_nearest_department_above_is_told_in_one_read(db, city, make_ticket):
    """户政支队's only handler leaves: the handlers of its parent 市公安局 are told, except the
    one whose account is the rated staff member's own. The recipients come from one statement
    over the department's chain, not from the whole directory."""
    city.users.handler2.active = False
    own = city.users.window_staff  # linked to 王小明, the staff member the default bad rating names
    own.role = "handler"
    own.departments = [city.parent]
    db.session.commit()
    sent: list[str] = []

    def note(conn, cursor, statement, *args):
        sent.append(" ".join(statement.split()))

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        ticket = make_ticket()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    notes = _notes(db, ticket.id)
    assert [n.user_id for n in notes] == [city.users.handler.id], \
        f"expected 市公安局's handler alone, got {[n.user_id for n in notes]}"
    reads = [s[:120] for s in sent if s.startswith(("SELECT", "WITH")) and ("user_departments" in s or "department_heads" in s)]
    assert len(reads) == 1, "the recipients of a new ticket are read in one statement:\n" + "\n".join(reads)


def test_a_department_whose_only_handler_is_the_rated_staff_member_passes_the_news_up(db, city, make_ticket):
    """户政支队's only handler is the staff member the rating names: they are not told (nobody hears
    of their own rating) and the department counts as having no handler, so 市公安局's handler is
    told, not nobody."""
    city.users.handler2.staff_id = city.users.window_staff.staff_id  # the staff member the default rating names
    db.session.commit()
    ticket = make_ticket()
    assert ticket.staff_id == city.users.handler2.staff_id, "the default bad rating names another staff member"
    told = [n.user_id for n in _notes(db, ticket.id)]
    assert told == [city.users.handler.id], \
        f"expected 市公安局's handler alone, got {told} (handler2 is {city.users.handler2.id})"
