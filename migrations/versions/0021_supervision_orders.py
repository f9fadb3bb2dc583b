"""supervision orders (督办单) and their yearly numbering

Revision ID: 0021_supervision_orders
Revises: 0020_statistics_breakdowns
Create Date: 2026-12-10 12:00:00

- ``supervision_orders``: numbered orders (督〔2026〕12号) a supervisor issues on a ticket or a
  department, with the deadline in working days, the written answer, the withdrawal and the
  deadline sweep's steps (``reminded_at``, ``overdue_at``, ``next_check_at``) (feedback/orders).
- ``supervision_order_counters``: the last number of each year, incremented under its row lock.
"""
from alembic import op
import sqlalchemy as sa

from feedback.db_types import UTCDateTime


revision = '0021_supervision_orders'
down_revision = '0020_statistics_breakdowns'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "supervision_orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("ticket_id", sa.Integer(),
                  sa.ForeignKey("tickets.id", name="fk_supervision_orders_ticket_id_tickets")),
        sa.Column("department_id", sa.Integer(),
                  sa.ForeignKey("departments.id", name="fk_supervision_orders_department_id_departments"),
                  nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("due_working_days", sa.SmallInteger(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("due_provisional", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("issued_by_id", sa.Integer(),
                  sa.ForeignKey("users.id", name="fk_supervision_orders_issued_by_id_users")),
        sa.Column("answer", sa.Text()),
        sa.Column("answered_at", UTCDateTime()),
        sa.Column("answered_by_id", sa.Integer(),
                  sa.ForeignKey("users.id", name="fk_supervision_orders_answered_by_id_users")),
        sa.Column("withdrawn_at", UTCDateTime()),
        sa.Column("withdrawn_by_id", sa.Integer(),
                  sa.ForeignKey("users.id", name="fk_supervision_orders_withdrawn_by_id_users")),
        sa.Column("withdraw_reason", sa.Text()),
        sa.Column("remind_at", UTCDateTime(), nullable=False),
        sa.Column("reminded_at", UTCDateTime()),
        sa.Column("overdue_at", UTCDateTime()),
        sa.Column("next_check_at", UTCDateTime()),
        sa.UniqueConstraint("year", "seq", name="uq_supervision_orders_year_seq"),
        sa.UniqueConstraint("number", name="uq_supervision_orders_number"),
    )
    op.create_index("ix_supervision_orders_status_check", "supervision_orders", ["status", "next_check_at"])
    op.create_index("ix_supervision_orders_department_status", "supervision_orders", ["department_id", "status"])
    op.create_index("ix_supervision_orders_issued_at", "supervision_orders", ["issued_at"])
    op.create_index("ix_supervision_orders_ticket_id", "supervision_orders", ["ticket_id"])
    op.create_table(
        "supervision_order_counters",
        sa.Column("year", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("last", sa.Integer(), nullable=False),
    )


def downgrade():
    op.drop_table("supervision_order_counters")
    op.drop_index("ix_supervision_orders_ticket_id", table_name="supervision_orders")
    op.drop_index("ix_supervision_orders_issued_at", table_name="supervision_orders")
    op.drop_index("ix_supervision_orders_department_status", table_name="supervision_orders")
    op.drop_index("ix_supervision_orders_status_check", table_name="supervision_orders")
    op.drop_table("supervision_orders")
