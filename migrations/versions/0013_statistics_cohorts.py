"""statistics cohorts: every rate over one cohort; department figures rolled up over the tree

Revision ID: 0013_statistics_cohorts
Revises: 0012_department_queue
Create Date: 2026-12-01 22:00:00

Two counters join ``stat_monthly``: ``records_active`` (records completed in the month that
were actively rated: the numerator of 主动评价率, which used to count every active rating of
the month, anonymous walk-ins included, over the records) and ``bad_tickets`` (the
denominator of 差评回复率, bad-review tickets by the department holding them, as the
numerator). Rows of the new unit kind ``department_tree`` (含下级部门) need no schema change.
Every month already stored is marked dirty, so the next statistics refresh recomputes it
under the new definitions.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_statistics_cohorts'
down_revision = '0012_department_queue'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        batch_op.add_column(sa.Column('records_active', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('bad_tickets', sa.Integer(), nullable=False, server_default='0'))
    op.execute("INSERT INTO stat_dirty_months (month) SELECT DISTINCT month FROM stat_monthly")


def downgrade():
    op.execute("DELETE FROM stat_monthly WHERE unit_kind = 'department_tree'")
    with op.batch_alter_table('stat_monthly', schema=None) as batch_op:
        batch_op.drop_column('bad_tickets')
        batch_op.drop_column('records_active')
    op.execute("INSERT INTO stat_dirty_months (month) SELECT DISTINCT month FROM stat_monthly")
