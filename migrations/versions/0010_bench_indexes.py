"""bench indexes: the open ticket queue in deadline order (issue 4's benchmark at 1,000,000 tickets)

Revision ID: 0010_bench_indexes
Revises: 0009_deadlines
Create Date: 2026-11-23 12:20:00

The queue (feedback/tickets/service.py queue_statement) reads ``WHERE is_open … ORDER BY
due_at, id LIMIT 50`` plus a count capped at 10,001 rows, with optional filters on state,
source, escalation level, department and assignee. At 1,000,000 tickets (67,000 open) a
filtered count was a bitmap heap scan over every open ticket's heap page (26,000 pages,
~100 ms cold); this partial index holds only open tickets, in queue order, with the filter
columns included, so the page and the count are index(-only) scans of a ~5 MB index.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_bench_indexes'
down_revision = '0009_deadlines'
branch_labels = None
depends_on = None

QUEUE_INCLUDE = ['state', 'source', 'escalation_level', 'department_id', 'assignee_id', 'staff_id']


def upgrade():
    op.create_index('ix_tickets_queue_open', 'tickets', ['due_at', 'id'], unique=False,
                    postgresql_where=sa.text('is_open'), postgresql_include=QUEUE_INCLUDE,
                    sqlite_where=sa.text('is_open'))


def downgrade():
    op.drop_index('ix_tickets_queue_open', table_name='tickets')
