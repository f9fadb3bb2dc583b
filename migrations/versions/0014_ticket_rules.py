"""ticket rules: the rework deadline, how a ticket closed, and open tickets of invalid ratings closed

Revision ID: 0014_ticket_rules
Revises: 0013_statistics_cohorts
Create Date: 2026-12-01 22:00:00

- ``tickets.reworked_at`` / ``rework_due_at``: a ticket sent back for rework after the
  citizen's 不满意 owes a new reply by REWORK_DUE_WORKING_DAYS from the supervisor's decision
  (it becomes ``due_at``, the deadline the sweep enforces).
- ``tickets.close_reason``: rated | unrated (未评价, closed by the close_unrated job) |
  supervisor | review | appeal_upheld | rating_invalid.
- Data: a rating declared invalid by the flagged-rating review (防刷评) used to leave its
  ticket open, escalating and counted overdue. Those tickets are closed here with the outcome
  ``rating_invalid``, as the review now does, each with a note on its timeline.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014_ticket_rules'
down_revision = '0013_statistics_cohorts'
branch_labels = None
depends_on = None

NOTE = "评价已被认定无效（防刷评复核），工单办结，不再预警、不计超期、不予公示"


def upgrade():
    op.add_column('tickets', sa.Column('reworked_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tickets', sa.Column('rework_due_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tickets', sa.Column('close_reason', sa.String(length=20), nullable=True))

    conn = op.get_bind()
    now = datetime.now(timezone.utc)
    if conn.dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)  # stored as naive UTC (feedback/db_types.py)
    ids = [row[0] for row in conn.execute(sa.text(
        "SELECT t.id FROM tickets t JOIN evaluations e ON e.id = t.evaluation_id "
        "WHERE t.is_open AND e.invalid ORDER BY t.id"))]
    if not ids:
        return
    tickets = sa.table('tickets', sa.column('id', sa.Integer), sa.column('state', sa.String),
                       sa.column('is_open', sa.Boolean), sa.column('closed_at', sa.DateTime(timezone=True)),
                       sa.column('outcome', sa.String), sa.column('close_reason', sa.String),
                       sa.column('next_deadline_check_at', sa.DateTime(timezone=True)))
    events = sa.table('ticket_events', sa.column('ticket_id', sa.Integer), sa.column('at', sa.DateTime(timezone=True)),
                      sa.column('actor_id', sa.Integer), sa.column('actor_label', sa.String),
                      sa.column('kind', sa.String), sa.column('note', sa.Text), sa.column('data', sa.JSON))
    for i in range(0, len(ids), 1000):
        chunk = ids[i:i + 1000]
        conn.execute(tickets.update().where(tickets.c.id.in_(chunk)).values(
            state='closed', is_open=False, closed_at=now, outcome='rating_invalid', close_reason='rating_invalid',
            next_deadline_check_at=None))
        conn.execute(events.insert(), [{"ticket_id": tid, "at": now, "actor_id": None, "actor_label": "系统",
                                        "kind": "rating_invalid", "note": NOTE, "data": {"migration": revision}}
                                       for tid in chunk])


def downgrade():
    # The tickets closed above stay closed: their ratings are invalid either way.
    op.drop_column('tickets', 'close_reason')
    op.drop_column('tickets', 'rework_due_at')
    op.drop_column('tickets', 'reworked_at')
