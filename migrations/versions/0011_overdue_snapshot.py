"""overdue snapshot: 当前超期工单 per department, taken by each statistics refresh; statistics version

Revision ID: 0011_overdue_snapshot
Revises: 0010_bench_indexes
Create Date: 2026-11-23 16:10:00

The public statistics page counted open overdue tickets live on every request: an index
scan over every overdue ticket (tens of thousands at province scale). The refresh job now
stores the count per department each minute; the page reads at most one row per department.
Indexes on the SMS log's times let the contact erasure job blank old numbers and texts.
``stat_state.version`` moves whenever the monthly rows change, so what is read from them
(the 红黑榜 ranks) can be kept until it moves.
"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = '0011_overdue_snapshot'
down_revision = '0010_bench_indexes'
branch_labels = None
depends_on = None


def upgrade():
    # The contact erasure job walks the SMS log by time (phone numbers and texts past retention).
    op.create_index('ix_outbound_sms_created_at', 'outbound_sms', ['created_at'], unique=False)
    op.create_index('ix_sms_invitations_invited_at', 'sms_invitations', ['invited_at'], unique=False)
    op.create_index('ix_sms_follow_ups_asked_at', 'sms_follow_ups', ['asked_at'], unique=False)
    op.create_table(
        'stat_overdue',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=True),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stat_overdue')),
    )
    with op.batch_alter_table('stat_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('overdue_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    op.drop_index('ix_sms_follow_ups_asked_at', table_name='sms_follow_ups')
    op.drop_index('ix_sms_invitations_invited_at', table_name='sms_invitations')
    op.drop_index('ix_outbound_sms_created_at', table_name='outbound_sms')
    with op.batch_alter_table('stat_state', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('overdue_at')
    op.drop_table('stat_overdue')
