"""erasable contacts: the append-only timeline keeps references, never a citizen's contact data

Revision ID: 0016_erasable_contacts
Revises: 0015_reason_catalogue
Create Date: 2026-12-01 22:30:00

- ``ticket_texts``: free text a timeline step quotes that may name the citizen (their SMS
  answer to the follow-up question); the event stays append-only and points at nothing
  personal, the text row is erasable (``body`` NULL, ``erased_at``).
- ``tickets.contact_erased_at``: when contact erasure reached the ticket (the job's claim).
- Data: ``ticket_events`` held copies contact erasure could not reach — the verification's
  findings (``note``) and callback contact (``data.contact``), and the citizen's SMS answer
  (``note`` "群众短信补充差评原因：…"). The answers move to ``ticket_texts``; the findings
  and the contact are on the ticket already (``tickets.findings``, ``callback_contact``), so
  the events only lose their copies. The append-only triggers are lifted for exactly these
  statements and put back at once (PostgreSQL: in the same transaction).
- The job's ticket watermark is reset, so its next runs walk every ticket closed before the
  cut-off once more and erase what the old job left (findings masked, the citizen's texts,
  photos, the moved answers); comments of records and details of inbound texts whose contact
  was erased already are erased here.

Downgrade drops the table and the column and puts nothing back on the timeline: the answers
are in the ratings' comments, the findings and contacts on the tickets.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016_erasable_contacts'
down_revision = '0015_reason_catalogue'
branch_labels = None
depends_on = None

SMS_NOTE = "群众短信补充差评原因"
SMS_PREFIX = SMS_NOTE + "："
ERASED_SMS_TEXT = "（短信内容已按保存期限清除）"  # feedback/privacy/service.py ERASED_TEXT
ERASED_CITIZEN_TEXT = "（已按保存期限清除）"  # feedback/privacy/service.py


def upgrade():
    op.create_table('ticket_texts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['ticket_events.id'], name=op.f('fk_ticket_texts_event_id_ticket_events')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_texts_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_texts')),
    sa.UniqueConstraint('event_id', name=op.f('uq_ticket_texts_event_id'))
    )
    with op.batch_alter_table('ticket_texts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ticket_texts_ticket_id'), ['ticket_id'], unique=False)
    op.add_column('tickets', sa.Column('contact_erased_at', sa.DateTime(timezone=True), nullable=True))

    postgresql = op.get_bind().dialect.name == 'postgresql'
    # The citizen's SMS answers: copied out first (an INSERT, which the triggers allow).
    op.execute(sa.text(
        "INSERT INTO ticket_texts (ticket_id, event_id, body, created_at) "
        "SELECT ticket_id, id, substr(note, :start), at FROM ticket_events "
        "WHERE kind = 'note' AND actor_id IS NULL AND note LIKE :pattern"
    ).bindparams(start=len(SMS_PREFIX) + 1, pattern=SMS_PREFIX + "%"))
    _lift_append_only_guard(postgresql)
    op.execute(sa.text("UPDATE ticket_events SET note = :note WHERE id IN (SELECT event_id FROM ticket_texts)")
               .bindparams(note=SMS_NOTE))
    without_contact = ("(data::jsonb - 'contact')::json" if postgresql else "json_remove(data, '$.contact')")
    op.execute(f"UPDATE ticket_events SET note = '', data = {without_contact} WHERE kind = 'verify'")
    _restore_append_only_guard(postgresql)

    # What the old job left behind: its ticket walk starts over; the rest is erased here.
    op.execute("DELETE FROM job_watermarks WHERE name = 'contact_erasure_tickets'")
    op.execute(sa.text(
        "UPDATE evaluations SET comment = :erased WHERE comment <> '' AND comment <> :erased "
        "AND service_record_id IN (SELECT id FROM service_records WHERE contact_erased_at IS NOT NULL)"
    ).bindparams(erased=ERASED_CITIZEN_TEXT))
    op.execute(sa.text("UPDATE inbound_sms SET detail = :erased WHERE body = :erased AND detail <> :erased")
               .bindparams(erased=ERASED_SMS_TEXT))


def _lift_append_only_guard(postgresql: bool) -> None:
    """Let this migration's UPDATEs through the ticket_events triggers of 0005_tickets."""
    if postgresql:
        op.execute("ALTER TABLE ticket_events DISABLE TRIGGER ticket_events_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS ticket_events_no_update")


def _restore_append_only_guard(postgresql: bool) -> None:
    """Put the triggers back exactly as 0005_tickets made them."""
    if postgresql:
        op.execute("ALTER TABLE ticket_events ENABLE TRIGGER ticket_events_append_only")
    else:
        op.execute("""
            CREATE TRIGGER ticket_events_no_update
            BEFORE UPDATE ON ticket_events
            BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END
        """)


def downgrade():
    op.drop_column('tickets', 'contact_erased_at')
    with op.batch_alter_table('ticket_texts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ticket_texts_ticket_id'))

    op.drop_table('ticket_texts')
