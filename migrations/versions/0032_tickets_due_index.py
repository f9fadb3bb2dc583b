"""tickets: every ticket in deadline order (the queue with 全部（含已办结） or 已办结 read a page
from the index instead of sorting every ticket ever opened)

Revision ID: 0032_tickets_due_index
Revises: 0031_stat_fillfactor
Create Date: 2026-12-02 22:05:00
"""
from alembic import op


revision = '0032_tickets_due_index'
down_revision = '0031_stat_fillfactor'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_tickets_due_id", "tickets", ["due_at", "id"])


def downgrade():
    op.drop_index("ix_tickets_due_id", table_name="tickets")
