"""statistics breakdowns: channel mix and reasons per unit and month; 未评率 and 回访及时率

Revision ID: 0020_statistics_breakdowns
Revises: 0019_exchange_ledger
Create Date: 2026-12-03 09:00:00

- ``stat_breakdowns``: per unit and month, the valid ratings by channel and the valid bad
  ratings by reason code (the console statistics /console/stats read only these and
  ``stat_monthly``, never the ratings).
- Two counters join ``stat_monthly``: ``records_unrated`` (records completed in the month
  with no valid rating at all: 未评率) and ``realname_bad_verified_on_time`` (real-name
  bad-review tickets verified by their verification deadline: 回访及时率).

Every month already stored is marked dirty, so the next statistics refresh fills both.
"""
from alembic import op
import sqlalchemy as sa


revision = '0020_statistics_breakdowns'
down_revision = '0019_exchange_ledger'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        batch_op.add_column(sa.Column('records_unrated', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('realname_bad_verified_on_time', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.create_table(
        "stat_breakdowns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("unit_kind", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("dimension", sa.String(20), nullable=False),
        sa.Column("key", sa.String(20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.UniqueConstraint("month", "unit_kind", "unit_id", "dimension", "key",
                            name="uq_stat_breakdowns_unit_month_key"),
    )
    op.execute("INSERT INTO stat_dirty_months (month) SELECT DISTINCT month FROM stat_monthly")


def downgrade():
    op.drop_table("stat_breakdowns")
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        batch_op.drop_column('realname_bad_verified_on_time')
        batch_op.drop_column('records_unrated')
