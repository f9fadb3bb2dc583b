"""talks and re-checks: 约谈 records of units 末位 two months running; 抽查回访 draws and outcomes

Revision ID: 0022_talks_rechecks
Revises: 0021_supervision_orders
Create Date: 2026-12-05 12:00:00

- ``talks``: one per flagged unit (department, hall or window) and flag month: date, attendees,
  what was agreed, follow-up date, the supervisor who recorded it (feedback/oversight/talks.py).
- ``recheck_draws``: one per ISO week drawn (the weekly job ``recheck_draw`` is idempotent).
- ``rechecks``: each drawn ticket and the bureau's own callback (reached, confirmed, note, and
  the 督办单 issued when the department's account does not hold; no foreign key to the orders
  table, which another migration creates). No phone number is stored.
"""
from alembic import op
import sqlalchemy as sa

from feedback.db_types import UTCDateTime


revision = '0022_talks_rechecks'
down_revision = '0021_supervision_orders'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "talks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("unit_kind", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("talk_date", sa.Date(), nullable=False),
        sa.Column("attendees", sa.Text(), nullable=False),
        sa.Column("agreed", sa.Text(), nullable=False),
        sa.Column("follow_up_on", sa.Date(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("unit_kind", "unit_id", "month", name="uq_talks_unit_month"),
    )
    op.create_index("ix_talks_month", "talks", ["month"])
    op.create_table(
        "recheck_draws",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("drawn_at", UTCDateTime(), nullable=False),
        sa.Column("share", sa.Numeric(5, 4), nullable=False),
        sa.Column("eligible", sa.Integer(), nullable=False),
        sa.Column("drawn", sa.Integer(), nullable=False),
        sa.UniqueConstraint("week", name="uq_recheck_draws_week"),
    )
    op.create_table(
        "rechecks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("draw_id", sa.Integer(), sa.ForeignKey("recheck_draws.id"), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("departments.id")),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("reached", sa.Boolean()),
        sa.Column("confirmed", sa.Boolean()),
        sa.Column("note", sa.Text()),
        sa.Column("called_at", UTCDateTime()),
        sa.Column("recorded_by_id", sa.Integer(), sa.ForeignKey("users.id")),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.Column("order_id", sa.Integer()),
        sa.Column("order_number", sa.String(40)),
        sa.UniqueConstraint("draw_id", "ticket_id", name="uq_rechecks_draw_ticket"),
    )
    op.create_index("ix_rechecks_draw_id", "rechecks", ["draw_id"])
    op.create_index("ix_rechecks_ticket_id", "rechecks", ["ticket_id"])
    op.create_index("ix_rechecks_state_department", "rechecks", ["state", "department_id"])


def downgrade():
    op.drop_index("ix_rechecks_state_department", table_name="rechecks")
    op.drop_index("ix_rechecks_ticket_id", table_name="rechecks")
    op.drop_index("ix_rechecks_draw_id", table_name="rechecks")
    op.drop_table("rechecks")
    op.drop_table("recheck_draws")
    op.drop_index("ix_talks_month", table_name="talks")
    op.drop_table("talks")
