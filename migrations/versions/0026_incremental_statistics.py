"""incremental statistics: per-cell counts and the change log the refresh consumes

Revision ID: 0026_incremental_statistics
Revises: 0025_citizen_corrections
Create Date: 2026-12-02 05:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0026_incremental_statistics'
down_revision = '0025_citizen_corrections'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'stat_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('cohort', sa.String(length=16), nullable=False),
        sa.Column('row_id', sa.Integer(), nullable=True),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('hall_id', sa.Integer(), nullable=False),
        sa.Column('window_id', sa.Integer(), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('service_item_id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stat_changes')),
    )
    op.create_table(
        'stat_cells',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('cohort', sa.String(length=16), nullable=False),
        sa.Column('department_id', sa.Integer(), nullable=False),
        sa.Column('hall_id', sa.Integer(), nullable=False),
        sa.Column('window_id', sa.Integer(), nullable=False),
        sa.Column('staff_id', sa.Integer(), nullable=False),
        sa.Column('service_item_id', sa.Integer(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stat_cells')),
        sa.UniqueConstraint('month', 'cohort', 'department_id', 'hall_id', 'window_id', 'staff_id', 'service_item_id',
                            name='uq_stat_cells_key'),
    )
    op.create_index('ix_stat_tickets_dept_created', 'tickets', ['department_id', 'created_at'], unique=False)
    # The cells start empty: every stored month is rebuilt (cells included) by the next refresh.
    op.execute("INSERT INTO stat_dirty_months (month) SELECT DISTINCT month FROM stat_monthly")


def downgrade():
    op.drop_index('ix_stat_tickets_dept_created', table_name='tickets')
    op.drop_table('stat_cells')
    op.drop_table('stat_changes')
